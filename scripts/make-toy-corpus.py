#!/usr/bin/env python3
"""Generate the synthetic toy language pair in data/toy.

Source: a small English-like SVO language (adjective before noun, do-support
questions). Target: an invented language with noun-adjective order (adjectives
mirrored), articles/adjectives/auxiliaries agreeing in gender and number with
the noun, case on articles, verb-second main clauses, verb-final subordinate
clauses and a past tense built from auxiliary + participle (participle last).

The translation is a deterministic function of the source sentence: the
grammar is built so that no source string has two parses that translate
differently (clause coordination is always ", and"/", but"; PPs attach only to
the subject or the clause; clauses with a that-complement take no PP or adverb
of their own), and the generator checks it on every repeated source it meets.

Only random.Random.random() is used (stable across Python 3 versions for an
int seed) and nothing iterates over a hash-ordered set, so the same seed gives
byte-identical files whatever PYTHONHASHSEED is.

Usage: python3 scripts/make-toy-corpus.py --out data/toy [--seed N]
"""

import argparse
import os
import random
import sys

# ---------------------------------------------------------------------------
# Source lexicon (hand-written). Nouns carry the target gender: m, f or n.
# The gender is lexical and deliberately not guessable from the target form.

NOUNS = [  # (singular, plural, target gender)
    ("dog", "dogs", "m"), ("cat", "cats", "f"), ("bird", "birds", "n"),
    ("horse", "horses", "n"), ("cow", "cows", "f"), ("mouse", "mice", "f"),
    ("man", "men", "m"), ("woman", "women", "f"), ("child", "children", "n"),
    ("boy", "boys", "m"), ("girl", "girls", "f"), ("teacher", "teachers", "m"),
    ("farmer", "farmers", "m"), ("doctor", "doctors", "f"), ("king", "kings", "m"),
    ("queen", "queens", "f"), ("student", "students", "n"), ("baker", "bakers", "m"),
    ("soldier", "soldiers", "n"), ("friend", "friends", "f"), ("neighbor", "neighbors", "m"),
    ("house", "houses", "n"), ("garden", "gardens", "m"), ("tree", "trees", "f"),
    ("river", "rivers", "m"), ("city", "cities", "f"), ("village", "villages", "n"),
    ("table", "tables", "m"), ("chair", "chairs", "f"), ("book", "books", "n"),
    ("letter", "letters", "m"), ("apple", "apples", "f"), ("car", "cars", "n"),
    ("boat", "boats", "m"), ("bridge", "bridges", "f"), ("street", "streets", "n"),
    ("school", "schools", "f"), ("forest", "forests", "m"), ("mountain", "mountains", "n"),
    ("window", "windows", "n"), ("door", "doors", "f"), ("box", "boxes", "m"),
    ("cup", "cups", "f"), ("bottle", "bottles", "n"), ("flower", "flowers", "f"),
    ("ball", "balls", "m"), ("egg", "eggs", "n"), ("island", "islands", "f"),
]

ADJECTIVES = [
    "big", "small", "old", "young", "red", "green", "blue", "black", "white",
    "happy", "sad", "tall", "new", "good", "bad", "quiet", "loud", "fast",
    "slow", "cold", "warm", "strong", "clever", "hungry",
]

TRANSITIVE = [  # (base, 3sg, past)
    ("see", "sees", "saw"), ("like", "likes", "liked"), ("find", "finds", "found"),
    ("take", "takes", "took"), ("carry", "carries", "carried"),
    ("follow", "follows", "followed"), ("watch", "watches", "watched"),
    ("help", "helps", "helped"), ("call", "calls", "called"), ("visit", "visits", "visited"),
    ("paint", "paints", "painted"), ("open", "opens", "opened"), ("buy", "buys", "bought"),
    ("bring", "brings", "brought"), ("hold", "holds", "held"), ("want", "wants", "wanted"),
    ("love", "loves", "loved"), ("catch", "catches", "caught"), ("push", "pushes", "pushed"),
    ("build", "builds", "built"), ("clean", "cleans", "cleaned"), ("draw", "draws", "drew"),
    ("meet", "meets", "met"), ("forget", "forgets", "forgot"),
]

INTRANSITIVE = [
    ("sleep", "sleeps", "slept"), ("run", "runs", "ran"), ("sing", "sings", "sang"),
    ("laugh", "laughs", "laughed"), ("cry", "cries", "cried"), ("dance", "dances", "danced"),
    ("swim", "swims", "swam"), ("wait", "waits", "waited"), ("smile", "smiles", "smiled"),
    ("fall", "falls", "fell"), ("work", "works", "worked"), ("jump", "jumps", "jumped"),
]

SAY_VERBS = [  # take a "that" clause
    ("say", "says", "said"), ("think", "thinks", "thought"), ("know", "knows", "knew"),
    ("believe", "believes", "believed"), ("hope", "hopes", "hoped"), ("claim", "claims", "claimed"),
]

ADVERBS = ["today", "yesterday", "often", "sometimes", "always", "now", "never"]
PAST_ONLY_ADVERBS = ["yesterday"]

PREPOSITIONS = ["in", "on", "under", "near", "with", "behind", "without", "from"]

NUMBERS = ["two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]

# ---------------------------------------------------------------------------
# Target function words (hand-chosen) and endings.

DEF_ART = {  # (case, gender-or-pl) -> article; f/n do not mark nom vs acc
    ("nom", "m"): "le", ("nom", "f"): "la", ("nom", "n"): "lo", ("nom", "pl"): "li",
    ("acc", "m"): "len", ("acc", "f"): "la", ("acc", "n"): "lo", ("acc", "pl"): "lin",
    ("dat", "m"): "lem", ("dat", "f"): "lar", ("dat", "n"): "lom", ("dat", "pl"): "lim",
}
INDEF_ART = {  # singular only
    ("nom", "m"): "un", ("nom", "f"): "una", ("nom", "n"): "uno",
    ("acc", "m"): "unen", ("acc", "f"): "una", ("acc", "n"): "uno",
    ("dat", "m"): "unem", ("dat", "f"): "unar", ("dat", "n"): "unom",
}
DEMONSTRATIVE = {"m": "cel", "f": "cela", "n": "celo", "pl": "celi"}  # "this"/"these"
AUXILIARY = {"m": "esi", "f": "esa", "n": "eso", "pl": "esun"}        # past tense
ADJ_ENDING = {"m": "o", "f": "a", "n": "e", "pl": "i"}
NOUN_PLURAL_C, NOUN_PLURAL_V = "ok", "k"   # after a consonant / a vowel
VERB_SG, VERB_PL, VERB_PTCP = "et", "ent", "ut"

CONJ_NP = "e"            # NP coordination "and"
CONJ_CLAUSE = {"and": "e", "but": "mas"}
COMPLEMENTIZER = "ke"    # "that"
SUBORDINATOR = {"because": "kar", "when": "kvan"}

# ---------------------------------------------------------------------------
# Target content words: invented stems from a fixed generator, so that every
# --seed describes the same language and only the sentences change.

LEXICON_SEED = 20240521
CONSONANTS = "bdfgklmnprstvz"
VOWELS = "aeiou"
RARE_VOWELS = "öé"       # a little non-ASCII UTF-8 in the target


def pick(rng, seq):
    """Uniform choice using only rng.random() (stable across Python versions)."""
    return seq[int(rng.random() * len(seq))]


def make_stem(rng, syllables, final_consonant):
    out = []
    for _ in range(syllables):
        out.append(pick(rng, CONSONANTS))
        out.append(pick(rng, RARE_VOWELS) if rng.random() < 0.04 else pick(rng, VOWELS))
    if final_consonant:
        out.append(pick(rng, CONSONANTS))
    return "".join(out)


def build_target_lexicon():
    rng = random.Random(LEXICON_SEED)
    fixed = set(DEF_ART.values()) | set(INDEF_ART.values()) | set(DEMONSTRATIVE.values())
    fixed |= set(AUXILIARY.values()) | set(CONJ_CLAUSE.values()) | set(SUBORDINATOR.values())
    fixed |= {CONJ_NP, COMPLEMENTIZER, ".", ",", "?"}
    used_forms = set(fixed)
    used_stems = set()

    def fresh(forms_of_stem, syl_choices, final_consonant):
        while True:
            stem = make_stem(rng, pick(rng, syl_choices), final_consonant)
            forms = forms_of_stem(stem)
            if stem in used_stems or any(f in used_forms for f in forms) or \
                    len(set(forms)) != len(forms):
                continue
            used_stems.add(stem)
            used_forms.update(forms)
            return stem

    def noun_forms(stem):
        pl = stem + (NOUN_PLURAL_V if stem[-1] in VOWELS + RARE_VOWELS else NOUN_PLURAL_C)
        return [stem, pl]

    lex = {"noun": {}, "adj": {}, "verb": {}, "adv": {}, "prep": {}, "num": {}}
    for sg, _pl, _g in NOUNS:
        stem = fresh(noun_forms, [1, 2, 2], rng.random() < 0.6)
        lex["noun"][sg] = noun_forms(stem)
    for a in ADJECTIVES:
        lex["adj"][a] = fresh(lambda s: [s + e for e in ADJ_ENDING.values()], [1, 2], True)
    for base, _s, _p in TRANSITIVE + INTRANSITIVE + SAY_VERBS:
        lex["verb"][base] = fresh(lambda s: [s + VERB_SG, s + VERB_PL, s + VERB_PTCP],
                                  [1, 2], True)
    for a in ADVERBS:
        lex["adv"][a] = fresh(lambda s: [s], [2, 3], False)
    for p in PREPOSITIONS:
        lex["prep"][p] = fresh(lambda s: [s], [1], True)
    for n in NUMBERS:
        lex["num"][n] = fresh(lambda s: [s], [1, 2], rng.random() < 0.5)
    return lex


def check_source_lexicon():
    """Every source form must belong to exactly one word, or parses could differ."""
    owner = {}

    def claim(form, who):
        if form in owner and owner[form] != who:
            sys.exit("make-toy-corpus: source form %r is both %s and %s" % (form, owner[form], who))
        owner[form] = who

    for sg, pl, _g in NOUNS:
        claim(sg, "noun " + sg)
        claim(pl, "noun " + sg)
        if sg == pl:
            sys.exit("make-toy-corpus: noun %r has the same singular and plural" % sg)
    for a in ADJECTIVES:
        claim(a, "adj " + a)
    for base, s3, past in TRANSITIVE + INTRANSITIVE + SAY_VERBS:
        if len({base, s3, past}) != 3:  # "hit": present plural would equal past
            sys.exit("make-toy-corpus: verb %r has a repeated form" % base)
        for f in (base, s3, past):
            claim(f, "verb " + base)
    for w in ADVERBS + PREPOSITIONS + NUMBERS:
        claim(w, "word " + w)
    for w in ["the", "a", "an", "this", "these", "and", "but", "that", "because", "when",
              "do", "does", "did", ".", ",", "?"]:
        claim(w, "function " + w)


# ---------------------------------------------------------------------------
# Phrases. Each carries its source tokens and renders its target on demand.

class NP:
    def __init__(self, src, render, number, gender):
        self.src = src          # list of source tokens
        self.render = render    # case -> list of target tokens
        self.number = number    # "sg" / "pl"
        self.gender = gender    # "m"/"f"/"n" (None for coordinated NPs)

    def agr(self):
        """Agreement class of the NP: a gender when singular, else "pl"."""
        return self.gender if self.number == "sg" else "pl"


def gen_simple_np(rng, lex):
    sg, pl, gender = pick(rng, NOUNS)
    number = "pl" if rng.random() < 0.35 else "sg"
    r = rng.random()
    n_adj = 0 if r < 0.6 else (1 if r < 0.9 else 2)
    adjs = []
    while len(adjs) < n_adj:
        a = pick(rng, ADJECTIVES)
        if a not in adjs:
            adjs.append(a)
    r = rng.random()
    if number == "sg":
        det = "the" if r < 0.6 else ("a" if r < 0.9 else "this")
        num = None
    else:
        det = ("the" if r < 0.4 else "bare" if r < 0.6 else "num" if r < 0.8
               else "the num" if r < 0.9 else "these")
        num = pick(rng, NUMBERS) if "num" in det else None
    agr = gender if number == "sg" else "pl"
    noun_src = sg if number == "sg" else pl
    noun_tgt = lex["noun"][sg][0 if number == "sg" else 1]

    # Source: det [num] adj* noun ("an" before a vowel).
    rest = ([num] if num else []) + adjs + [noun_src]
    src = []
    if det in ("the", "the num"):
        src.append("the")
    elif det == "a":
        src.append("an" if rest[0][0] in "aeiou" else "a")
    elif det in ("this", "these"):
        src.append(det)
    src += rest

    # Target: det [num] noun adj* with the adjectives mirrored.
    adj_tgt = [lex["adj"][a] + ADJ_ENDING[agr] for a in reversed(adjs)]
    num_tgt = [lex["num"][num]] if num else []

    def render(case):
        if det in ("the", "the num"):
            head = [DEF_ART[(case, agr)]]
        elif det == "a":
            head = [INDEF_ART[(case, gender)]]
        elif det in ("this", "these"):
            head = [DEMONSTRATIVE[agr]]
        else:
            head = []
        return head + num_tgt + [noun_tgt] + adj_tgt

    return NP(src, render, number, gender)


def gen_pp(rng, lex):
    p = pick(rng, PREPOSITIONS)
    np_ = gen_simple_np(rng, lex)
    return [p] + np_.src, [lex["prep"][p]] + np_.render("dat")


def gen_np(rng, lex, p_coord, p_pp):
    """Subject/object NP: maybe two coordinated simple NPs, maybe one PP."""
    if rng.random() < p_coord:
        a, b = gen_simple_np(rng, lex), gen_simple_np(rng, lex)
        return NP(a.src + ["and"] + b.src,
                  lambda case: a.render(case) + [CONJ_NP] + b.render(case), "pl", None)
    np_ = gen_simple_np(rng, lex)
    if rng.random() < p_pp:
        pp_src, pp_tgt = gen_pp(rng, lex)
        inner = np_.render
        np_ = NP(np_.src + pp_src, lambda case: inner(case) + pp_tgt, np_.number, np_.gender)
    return np_


class Clause:
    """One clause; linearised as main (subject first), inverted (verb first:
    V2 after a fronted element, and questions), or subordinate (verb last)."""

    def __init__(self, rng, lex, depth, allow_front=False, question=False):
        self.lex = lex
        self.question = question
        self.tense = "past" if rng.random() < 0.4 else "pres"
        self.subj = gen_np(rng, lex, 0.08, 0.12)
        r = rng.random()
        p_say = 0.12 if depth == 0 else (0.06 if depth == 1 else 0.0)
        if r < p_say:
            self.vclass, self.verb = "say", pick(rng, SAY_VERBS)
        elif r < p_say + 0.33:
            self.vclass, self.verb = "intr", pick(rng, INTRANSITIVE)
        else:
            self.vclass, self.verb = "tr", pick(rng, TRANSITIVE)
        self.obj = gen_np(rng, lex, 0.06, 0.0) if self.vclass == "tr" else None
        self.comp = Clause(rng, lex, depth + 1) if self.vclass == "say" else None
        # A clause with a that-complement takes no PP/adverb of its own, so a
        # trailing PP/adverb always belongs to the innermost clause.
        self.pp = gen_pp(rng, lex) if self.comp is None and rng.random() < 0.22 else None
        self.front_adv = None
        self.end_adv = None
        if allow_front and rng.random() < 0.15:
            self.front_adv = self.pick_adverb(rng)
        elif self.comp is None and rng.random() < 0.10:
            self.end_adv = self.pick_adverb(rng)

    def pick_adverb(self, rng):
        adv = pick(rng, ADVERBS)
        if adv in PAST_ONLY_ADVERBS:
            self.tense = "past"
        return adv

    # -- source --------------------------------------------------------------
    def src(self):
        base, s3, past = self.verb
        out = [self.front_adv] if self.front_adv else []
        if self.question:
            aux = "did" if self.tense == "past" else ("does" if self.subj.number == "sg" else "do")
            out += [aux] + self.subj.src + [base]
        else:
            fin = past if self.tense == "past" else (s3 if self.subj.number == "sg" else base)
            out += self.subj.src + [fin]
        if self.obj:
            out += self.obj.src
        if self.comp:
            out += ["that"] + self.comp.src()
        if self.pp:
            out += self.pp[0]
        if self.end_adv:
            out.append(self.end_adv)
        return out

    # -- target --------------------------------------------------------------
    def verb_parts(self):
        stem = self.lex["verb"][self.verb[0]]
        if self.tense == "past":
            return AUXILIARY[self.subj.agr()], stem + VERB_PTCP
        return stem + (VERB_SG if self.subj.number == "sg" else VERB_PL), None

    def middle(self):
        out = [self.lex["adv"][self.end_adv]] if self.end_adv else []
        if self.obj:
            out += self.obj.render("acc")
        if self.pp:
            out += self.pp[1]
        return out

    def extraposed(self):
        return ([",", COMPLEMENTIZER] + self.comp.tgt("sub")) if self.comp else []

    def tgt(self, order):
        fin, ptcp = self.verb_parts()
        subj = self.subj.render("nom")
        tail = ([ptcp] if ptcp else [])
        if self.front_adv:
            assert order == "main"
            return ([self.lex["adv"][self.front_adv], fin] + subj + self.middle() + tail
                    + self.extraposed())
        if order == "main":
            return subj + [fin] + self.middle() + tail + self.extraposed()
        if order == "inv":
            return [fin] + subj + self.middle() + tail + self.extraposed()
        assert order == "sub"
        return subj + self.middle() + tail + [fin] + self.extraposed()


def gen_sentence(rng, lex):
    """One sentence pair (source tokens, target tokens)."""
    r = rng.random()
    if r < 0.50:    # simple main clause, maybe with a fronted adverb (V2)
        c = Clause(rng, lex, 0, allow_front=True)
        return c.src() + ["."], c.tgt("main") + ["."]
    if r < 0.63:    # clause coordination, always with a comma
        a = Clause(rng, lex, 1, allow_front=True)
        b = Clause(rng, lex, 1, allow_front=True)
        conj = "and" if rng.random() < 0.6 else "but"
        return (a.src() + [",", conj] + b.src() + ["."],
                a.tgt("main") + [",", CONJ_CLAUSE[conj]] + b.tgt("main") + ["."])
    if r < 0.75:    # main clause + trailing subordinate clause (verb-final)
        a = Clause(rng, lex, 1)
        b = Clause(rng, lex, 1)
        sub = "because" if rng.random() < 0.6 else "when"
        return (a.src() + [sub] + b.src() + ["."],
                a.tgt("main") + [",", SUBORDINATOR[sub]] + b.tgt("sub") + ["."])
    if r < 0.86:    # fronted subordinate clause: the main clause inverts (V2)
        b = Clause(rng, lex, 1)
        a = Clause(rng, lex, 1)
        sub = "because" if rng.random() < 0.6 else "when"
        return ([sub] + b.src() + [","] + a.src() + ["."],
                [SUBORDINATOR[sub]] + b.tgt("sub") + [","] + a.tgt("inv") + ["."])
    c = Clause(rng, lex, 0, question=True)   # yes/no question: verb first
    return c.src() + ["?"], c.tgt("inv") + ["?"]


# ---------------------------------------------------------------------------

def stats_line(name, lens):
    return "%s len min/mean/max %d/%.2f/%d" % (name, min(lens), sum(lens) / len(lens), max(lens))


def histogram(lens, width=5):
    top = max(lens)
    rows = []
    for lo in range(0, top + 1, width):
        n = sum(1 for x in lens if lo <= x < lo + width)
        if n:
            rows.append("  %2d-%2d %6d %5.1f%%" % (lo, lo + width - 1, n, 100.0 * n / len(lens)))
    return "\n".join(rows)


def main():
    ap = argparse.ArgumentParser(description="Generate the toy translation corpus.")
    ap.add_argument("--out", default="data/toy", help="output directory")
    ap.add_argument("--seed", type=int, default=1, help="sentence seed (the lexicon is fixed)")
    ap.add_argument("--train", type=int, default=20000)
    ap.add_argument("--valid", type=int, default=1000)
    ap.add_argument("--test", type=int, default=1000)
    ap.add_argument("--max-len", type=int, default=25, help="maximum tokens on either side")
    ap.add_argument("--min-len", type=int, default=3, help="minimum tokens on either side")
    args = ap.parse_args()
    if min(args.train, args.valid, args.test) < 1 or args.min_len < 1 or args.max_len < args.min_len:
        sys.exit("make-toy-corpus: sizes must be >= 1 and min-len <= max-len")

    check_source_lexicon()
    lex = build_target_lexicon()
    rng = random.Random(args.seed)
    total = args.train + args.valid + args.test
    seen = {}      # source line -> target line (also checks src -> tgt is a function)
    pairs = []
    attempts = 0
    while len(pairs) < total:
        attempts += 1
        if attempts > 50 * total:
            sys.exit("make-toy-corpus: cannot find %d distinct sentences" % total)
        src, tgt = gen_sentence(rng, lex)
        if not (args.min_len <= min(len(src), len(tgt)) and max(len(src), len(tgt)) <= args.max_len):
            continue
        s, t = " ".join(src), " ".join(tgt)
        if s in seen:
            if seen[s] != t:
                sys.exit("make-toy-corpus: ambiguous source %r -> %r / %r" % (s, seen[s], t))
            continue
        seen[s] = t
        pairs.append((s, t))

    splits = [("train", pairs[:args.train]),
              ("valid", pairs[args.train:args.train + args.valid]),
              ("test", pairs[args.train + args.valid:])]
    os.makedirs(args.out, exist_ok=True)
    for name, part in splits:
        for side, k in (("src", 0), ("tgt", 1)):
            path = os.path.join(args.out, "%s.%s" % (name, side))
            with open(path + ".tmp", "w", encoding="utf-8", newline="\n") as f:
                for p in part:
                    f.write(p[k] + "\n")
            os.replace(path + ".tmp", path)

    # Statistics and checks on what was written.
    print("make-toy-corpus: seed %d, %d candidates drawn, %d kept" % (args.seed, attempts, total))
    src_sets = {}
    for name, part in splits:
        sv = set(w for s, _ in part for w in s.split(" "))
        tv = set(w for _, t in part for w in t.split(" "))
        sl = [len(s.split(" ")) for s, _ in part]
        tl = [len(t.split(" ")) for _, t in part]
        src_sets[name] = set(s for s, _ in part)
        print("%-5s pairs %6d  vocab src %3d tgt %3d  %s  %s" % (
            name, len(part), len(sv), len(tv), stats_line("src", sl), stats_line("tgt", tl)))
    all_sv = set(w for s, _ in pairs for w in s.split(" "))
    all_tv = set(w for _, t in pairs for w in t.split(" "))
    print("all   vocab src %d tgt %d" % (len(all_sv), len(all_tv)))
    names = [n for n, _ in splits]
    for i in range(len(names)):
        within = len(splits[i][1]) - len(src_sets[names[i]])
        print("overlap within %-5s %d" % (names[i], within))
        for j in range(i + 1, len(names)):
            print("overlap %s/%s %d" % (names[i], names[j],
                                        len(src_sets[names[i]] & src_sets[names[j]])))
    sl = [len(s.split(" ")) for s, _ in pairs]
    tl = [len(t.split(" ")) for _, t in pairs]
    print("source length histogram (all splits):\n" + histogram(sl))
    print("target length histogram (all splits):\n" + histogram(tl))


if __name__ == "__main__":
    main()
