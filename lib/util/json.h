/* JSON through jansson: loading with errors that name the source, dumping to ib_buf. */
#ifndef IB_UTIL_JSON_H
#define IB_UTIL_JSON_H

#include <jansson.h>
#include "imagebuild/buffer.h"

/* Parse `len` bytes; `what` names the source in errors ("index.json", a path). */
int ib_json_loadb(json_t **out, const char *buf, size_t len, const char *what);
/* Parse a whole file. IB_ENOTFOUND when it does not exist. */
int ib_json_load_file(json_t **out, const char *path);

#define IB_JSON_SORTED 1 /* sort object keys (canonical form) */
#define IB_JSON_PRETTY 2 /* indent by 2 */
/* Append the JSON text of `j` to `out` (compact unless IB_JSON_PRETTY). */
int ib_json_dump(ib_buf *out, const json_t *j, int flags);

/* Borrowed string member, or NULL when missing or not a string. */
const char *ib_json_str(const json_t *obj, const char *key);
/* Set `key` to a new string (copied); error on OOM. */
int ib_json_set_str(json_t *obj, const char *key, const char *val);
/* Set `key`, taking the reference of `val` (even on failure). */
int ib_json_set_new(json_t *obj, const char *key, json_t *val);

#endif
