#include "util/json.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/fs.h"

#include <stdlib.h>

int ib_json_loadb(json_t **out, const char *buf, size_t len, const char *what)
{
	json_error_t err;
	json_t *j = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
	if (!j)
		return ib_error_setc(IB_EINVALID, IB_LAYER_UTIL, "%s: invalid JSON at line %d column %d: %s",
				     what, err.line, err.column, err.text);
	*out = j;
	return 0;
}

int ib_json_load_file(json_t **out, const char *path)
{
	ib_buf b = IB_BUF_INIT;
	int rc = ib_read_file(&b, path);
	if (rc < 0)
		return rc;
	rc = ib_json_loadb(out, ib_buf_cstr(&b), b.size, path);
	ib_buf_dispose(&b);
	return rc;
}

static int dump_cb(const char *buffer, size_t size, void *data)
{
	return ib_buf_put(data, buffer, size) < 0 ? -1 : 0;
}

int ib_json_dump(ib_buf *out, const json_t *j, int flags)
{
	size_t jf = JSON_ENCODE_ANY;
	jf |= (flags & IB_JSON_PRETTY) ? JSON_INDENT(2) : JSON_COMPACT;
	if (flags & IB_JSON_SORTED)
		jf |= JSON_SORT_KEYS;
	if (json_dump_callback(j, dump_cb, out, jf) != 0)
		return ib_error_current() ? IB_ERROR : ib_error_set(IB_LAYER_UTIL, "cannot encode JSON");
	return 0;
}

const char *ib_json_str(const json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

int ib_json_set_new(json_t *obj, const char *key, json_t *val)
{
	if (!val || json_object_set_new(obj, key, val) != 0)
		return ib_error_oom();
	return 0;
}

int ib_json_set_str(json_t *obj, const char *key, const char *val)
{
	return ib_json_set_new(obj, key, json_string(val));
}
