/* A growable list of owned, NUL-terminated strings. */
#ifndef IB_UTIL_STRLIST_H
#define IB_UTIL_STRLIST_H

#include <stddef.h>

typedef struct {
	char **items; /* NULL-terminated when n > 0 (handy for argv/envp) */
	size_t n;
	size_t cap;
} ib_strlist;

#define IB_STRLIST_INIT { NULL, 0, 0 }

int ib_strlist_add(ib_strlist *l, const char *s);      /* copies s */
int ib_strlist_addn(ib_strlist *l, const char *s, size_t len);
int ib_strlist_take(ib_strlist *l, char *s);           /* takes ownership, even on failure */
void ib_strlist_sort(ib_strlist *l);                   /* byte order */
int ib_strlist_contains(const ib_strlist *l, const char *s);
void ib_strlist_clear(ib_strlist *l);                  /* frees the strings and the array */

#endif
