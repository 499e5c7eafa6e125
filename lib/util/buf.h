/* Internal additions to the public ib_buf (include/imagebuild/buffer.h). */
#ifndef IB_UTIL_BUF_H
#define IB_UTIL_BUF_H

#include "imagebuild/buffer.h"
#include "util/error.h"

int ib_buf_putc(ib_buf *buf, char c);
int ib_buf_printf(ib_buf *buf, const char *fmt, ...) IB_PRINTF(2, 3);
void ib_buf_truncate(ib_buf *buf, size_t len);
/* Take the string out (caller frees with free()); the buffer becomes empty. NULL on OOM. */
char *ib_buf_detach(ib_buf *buf);
/* Never NULL: "" for an empty buffer. */
const char *ib_buf_cstr(const ib_buf *buf);

#endif
