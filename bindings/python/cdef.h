/*
 * The C API as the Python bindings see it: a curated copy of the public
 * headers, checked against them by the compiler (cffi API mode), so a
 * mismatch breaks the build instead of a user. `...;` lets structs grow.
 */

/* common.h */
int ib_init(void);
int ib_shutdown(void);

/* errors.h */
typedef enum {
	IB_OK = 0, IB_ERROR = -1, IB_ENOTFOUND = -3, IB_EEXISTS = -4, IB_EINVALID = -5,
	IB_ESYNTAX = -6, IB_EUNSUPPORTED = -7, IB_EUSER = -8
} ib_error_code;
typedef struct {
	int code;
	int layer;
	const char *message;
} ib_error;
const ib_error *ib_error_last(void);
void ib_error_clear(void);

/* buffer.h */
typedef struct {
	char *ptr;
	size_t size;
	...;
} ib_buf;
void ib_buf_dispose(ib_buf *buf);

/* digest.h */
#define IB_DIGEST_STRLEN ...
typedef struct {
	unsigned char bytes[32];
} ib_digest;
int ib_digest_parse(ib_digest *out, const char *str);
void ib_digest_fmt(char *out, const ib_digest *d);
int ib_digest_of(ib_digest *out, const void *data, size_t len);
int ib_digest_verify(const ib_digest *expected, const void *data, size_t len);

/* version.h */
void ib_version(int *major, int *minor, int *patch);
const char *ib_version_string(void);
