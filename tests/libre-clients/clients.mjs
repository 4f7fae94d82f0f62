// clients.mjs URL SOURCE TARGET TEXT [API_KEY] — translates TEXT with two
// published LibreTranslate client libraries, unchanged, pointed at URL, and
// prints one line per client: "libretranslate: ..." and "translate: ...".
// The npm package libretranslate asks GET /languages first and checks both
// codes against it (SOURCE "auto" is its default); translate (engine
// "libre") posts JSON with api_key.
import { createRequire } from "node:module";
import Translate from "translate";

const require = createRequire(import.meta.url);
const { translate: libretranslate } = require("libretranslate");
const [url, source, target, text, key] = process.argv.slice(2);

try {
  console.log("libretranslate: " + await libretranslate({ query: text, source, target, apiurl: url, apiKey: key }));
} catch (e) {
  console.log("libretranslate: error: " + e.message);
}
if (source !== "auto") {
  try {
    const t = Translate.Translate({ engine: "libre", url: url + "/translate", key, from: source, to: target });
    console.log("translate: " + await t(text));
  } catch (e) {
    console.log("translate: error: " + e.message);
  }
}
