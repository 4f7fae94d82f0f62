// serve/form.h — a form's fields (application/x-www-form-urlencoded or
// multipart/form-data, as LibreTranslate's clients and page post them) as the
// JSON object a JSON body would have given: each field a string, "q" given
// more than once an array of strings, "beam", "nbest" and "alternatives" a
// number when they read as a whole number, "attention" true or false when
// they say so (other values stay strings, and the request's reader refuses
// them). A file part of a multipart form is refused (400).
#ifndef NMT_SERVE_FORM_H
#define NMT_SERVE_FORM_H

#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <stddef.h>

// Whether the Content-Type is a form this reader takes.
int form_type(const char *type);
// The fields of body (len bytes, the whole body of con's request); NULL with
// err (400) when the form is malformed, holds a NUL, invalid UTF-8 or a file.
cJSON *form_fields(struct MHD_Connection *con, const char *body, size_t len, char *err, size_t errlen);

#endif
