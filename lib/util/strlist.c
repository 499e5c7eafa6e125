#include "util/strlist.h"
#include "util/error.h"

#include <stdlib.h>
#include <string.h>

int ib_strlist_take(ib_strlist *l, char *s)
{
	if (!s)
		return IB_ERROR;
	if (l->n + 2 > l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		char **p = ib_realloc(l->items, cap * sizeof *p);
		if (!p) {
			free(s);
			return IB_ERROR;
		}
		l->items = p;
		l->cap = cap;
	}
	l->items[l->n++] = s;
	l->items[l->n] = NULL;
	return 0;
}

int ib_strlist_add(ib_strlist *l, const char *s)
{
	char *c = ib_strdup(s);
	return c ? ib_strlist_take(l, c) : IB_ERROR;
}

int ib_strlist_addn(ib_strlist *l, const char *s, size_t len)
{
	char *c = ib_strndup(s, len);
	return c ? ib_strlist_take(l, c) : IB_ERROR;
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void ib_strlist_sort(ib_strlist *l)
{
	if (l->n > 1)
		qsort(l->items, l->n, sizeof *l->items, cmp);
}

int ib_strlist_contains(const ib_strlist *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->items[i], s) == 0)
			return 1;
	return 0;
}

void ib_strlist_clear(ib_strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->items[i]);
	free(l->items);
	l->items = NULL;
	l->n = l->cap = 0;
}
