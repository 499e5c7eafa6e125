#include "words.h"
#include "util/error.h"

#include <stdlib.h>

/* ib_strarray_dispose() is in lib/util/buffer.c. */

int ib_parse__strarray_add(ib_strarray *a, const char *s, size_t len)
{
	char *copy = ib_strndup(s, len);
	char **grown;

	if (!copy)
		return IB_ERROR;
	/* capacity is the next power of two >= count: grow when count is one */
	if ((a->count & (a->count - 1)) == 0) {
		size_t cap = a->count ? a->count * 2 : 1;
		grown = ib_realloc(a->strings, cap * sizeof(*grown));
		if (!grown) {
			free(copy);
			return IB_ERROR;
		}
		a->strings = grown;
	}
	a->strings[a->count++] = copy;
	return 0;
}
