/*
 * The names file, <root>/index.names: every entry of index.json as a lookup
 * or a listing needs it (name, descriptor, repository digests) with what its
 * manifest resolves to (the memo's id and summary), so a read-only lookup
 * neither parses index.json with jansson nor reads the memo.
 *
 * It is keyed by the sha256 of the index.json bytes it was made from: every
 * reader reads and hashes index.json (a flat read, no parse) and believes the
 * names file only when its key is that hash, so an edit of index.json by any
 * writer — this library, skopeo, umoci, an editor — is seen at once, with no
 * racy window (no stat(2) identity is trusted). Like the memo it is a cache:
 * written to a temporary file and renamed, not fsynced, checked on reading (a
 * version line first, the key, a sha256 of the lines last); a missing,
 * stale, damaged or foreign one is ignored, and the reader that resolved the
 * index the slow way (image.c) writes it again. Written only for an index
 * whose every entry resolved and whose strings it can hold; otherwise there
 * is none and lookups take the slow way.
 *
 * Line format, after the header, "key <hex>" and "span <open> <close>" (the
 * byte offsets of the manifests array's '[' and ']' in index.json, or "- -"):
 *   <offset|-> <length|-> <top> <manifest|-> <id|-> <size> <mediaType|-> <image size|-> <created|-> <name|-> <repo digests|->
 * offset and length: the entry's bytes in index.json (known, for every entry,
 * when the span is: the file is in this library's layout, image.c splices
 * it); digests in hex; manifest and id "-" for an index or manifest list
 * (resolved each time: its platform manifest depends on which children are
 * present); the repository digests, space-separated, run to the end of the
 * line.
 */
#include "store/internal.h"
#include "util/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NAMES_HEADER "imagebuild-index-names 2\n"
#define NAMES_MAX (64u << 20)
#define NAMES_MAP_MIN (64u << 10)

/* The next field up to a space: NUL-terminated in place, *p past the space; NULL when none. */
static char *field(char **p)
{
	char *f = *p, *sp = strchr(f, ' ');
	if (!sp || sp == f)
		return NULL;
	*sp = '\0';
	*p = sp + 1;
	return f;
}

static int parse_u64(uint64_t *out, const char *s)
{
	if (*s < '0' || *s > '9')
		return -1;
	char *end = NULL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || !end || *end)
		return -1;
	*out = v;
	return 0;
}

static const char *dash_null(const char *s)
{
	return strcmp(s, "-") ? s : NULL;
}

/* "<offset> <length> " or "- - " at *p: *ranged 1 or 0; *p moves past it */
static int parse_range(uint64_t *off, uint64_t *len, int *ranged, char **p)
{
	if (!strncmp(*p, "- - ", 4)) {
		*p += 4;
		*ranged = 0;
		return 0;
	}
	char *o = field(p), *l = o ? field(p) : NULL;
	*ranged = 1;
	return l && parse_u64(off, o) == 0 && parse_u64(len, l) == 0 ? 0 : -1;
}

static int parse_line(ib_store__names_entry *e, int *ranged, char *line)
{
	memset(e, 0, sizeof *e);
	char *p = line, *f;
	if (parse_range(&e->off, &e->len, ranged, &p) < 0 || ib_store__parse_hex_field(&e->top, &p) < 0)
		return -1;
	if (!strncmp(p, "- - ", 4)) {
		p += 4;
	} else {
		if (ib_store__parse_hex_field(&e->manifest, &p) < 0 || ib_store__parse_hex_field(&e->id, &p) < 0)
			return -1;
		e->resolved = 1;
	}
	char *dsize = field(&p), *mt = dsize ? field(&p) : NULL, *size = mt ? field(&p) : NULL;
	char *created = size ? field(&p) : NULL, *name = created ? field(&p) : NULL;
	if (!name || !*p || parse_u64(&e->dsize, dsize) < 0)
		return -1;
	e->top_type = dash_null(mt);
	if (strcmp(size, "-")) {
		if (!e->resolved || parse_u64(&e->size, size) < 0)
			return -1;
		e->summary = 1;
		e->created = dash_null(created);
	} else if (strcmp(created, "-")) {
		return -1;
	}
	e->name = dash_null(name);
	e->digests = dash_null(p);
	for (f = p; *f; f++)
		if (*f == '\t' || *f == '\r')
			return -1;
	return 0;
}

void ib_store__names_free(ib_store__names *n)
{
	if (!n || __atomic_sub_fetch(&n->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	free(n->buf);
	free(n->e);
	free(n);
}

/* `v` (NULL stays NULL) kept in the arena at *a, or one of the usual media types (not copied). */
static const char *keep(char **a, const char *v)
{
	static const char *const common[] = { IB_MEDIA_TYPE_OCI_MANIFEST, IB_MEDIA_TYPE_OCI_INDEX,
					      IB_MEDIA_TYPE_DOCKER_MANIFEST, IB_MEDIA_TYPE_DOCKER_LIST };
	if (!v)
		return NULL;
	for (size_t i = 0; i < sizeof common / sizeof *common; i++)
		if (!strcmp(v, common[i]))
			return common[i];
	size_t len = strlen(v) + 1;
	char *c = memcpy(*a, v, len);
	*a += len;
	return c;
}

/*
 * The names file, if it is whole and keyed `key`; NULL otherwise (errors
 * cleared). Mapped, not read: only the strings are copied out (an arena
 * touched as far as they go), so a 1,000-image file costs a few page faults.
 */
static ib_store__names *names_read(ib_store *s, const ib_digest *key)
{
	char *p = ib_store__path(s, "index.names");
	ib_store__names *n = NULL;
	char *scratch = NULL, *small = NULL;
	void *map = MAP_FAILED;
	struct stat st;
	int fd = p ? open(p, O_RDONLY | O_CLOEXEC) : -1;
	size_t hlen = strlen(NAMES_HEADER), size = 0;
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t)NAMES_MAX ||
	    (size = (size_t)st.st_size) < hlen + 4 + 65 + 4 + 65)
		goto out;
	/* a small file is read (a mapping costs more than it saves), a large one mapped */
	if (size < NAMES_MAP_MIN) {
		if (!(small = ib_malloc(size)) || ib_pread_full(fd, small, size, 0) != (ssize_t)size)
			goto out;
	} else if ((map = mmap(NULL, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0)) == MAP_FAILED) {
		goto out;
	}
	const char *b = small ? small : map;
	if (memcmp(b, NAMES_HEADER, hlen) || b[size - 1] != '\n')
		goto out;
	/* the last line: "sum <sha256 of everything before it>" */
	const char *last = memrchr(b, '\n', size - 1);
	char hex[IB_DIGEST_HEXLEN + 2], *q = hex;
	ib_digest want, have, k;
	if (!last || (size_t)(b + size - (last + 1)) != 4 + IB_DIGEST_HEXLEN + 1 || memcmp(last + 1, "sum ", 4))
		goto out;
	memcpy(hex, last + 5, IB_DIGEST_HEXLEN);
	hex[IB_DIGEST_HEXLEN] = ' ';
	if (ib_store__parse_hex_field(&want, &q) < 0 || ib_digest_of(&have, b, (size_t)(last + 1 - b)) < 0 ||
	    !ib_digest_equal(&want, &have))
		goto out;
	/* the key: the index.json bytes these names were made from */
	const char *kl = b + hlen, *first = kl + 4 + IB_DIGEST_HEXLEN + 1, *end = last + 1;
	if (first > end || memcmp(kl, "key ", 4) || kl[4 + IB_DIGEST_HEXLEN] != '\n')
		goto out;
	memcpy(hex, kl + 4, IB_DIGEST_HEXLEN);
	q = hex;
	if (ib_store__parse_hex_field(&k, &q) < 0 || !ib_digest_equal(&k, key))
		goto out;
	/* "span <open> <close>" or "span - -": where the manifests array is, when the entries' ranges are known */
	const char *sl = first, *snl = first < end ? memchr(first, '\n', (size_t)(end - first)) : NULL;
	char spanline[64];
	uint64_t sopen = 0, sclose = 0;
	int sranged = 0;
	if (!snl || (size_t)(snl - sl) < 5 || (size_t)(snl - sl) + 2 > sizeof spanline || memcmp(sl, "span ", 5))
		goto out;
	memcpy(spanline, sl + 5, (size_t)(snl - sl) - 5);
	spanline[snl - sl - 5] = ' ';
	spanline[snl - sl - 4] = '\0';
	q = spanline;
	if (parse_range(&sopen, &sclose, &sranged, &q) < 0 || *q || (sranged && sopen >= sclose))
		goto out;
	first = snl + 1;
	size_t lines = 0;
	for (const char *c = first; c < end && (c = memchr(c, '\n', (size_t)(end - c))); c++)
		lines++;
	size_t scap = 1024;
	n = ib_calloc(1, sizeof *n);
	if (!n || !(n->e = ib_calloc(lines ? lines : 1, sizeof *n->e)) || !(n->buf = ib_malloc((size_t)(end - first) + 1)) ||
	    !(scratch = ib_malloc(scap)))
		goto fail;
	n->refs = 1;
	n->key = *key;
	n->ranged = sranged;
	n->open = sopen;
	n->close = sclose;
	char *arena = n->buf;
	for (const char *l = first; l < end;) {
		const char *nl = memchr(l, '\n', (size_t)(end - l));
		size_t ll = (size_t)(nl - l);
		if (ll + 1 > scap) {
			char *bigger = ib_realloc(scratch, scap = ll + 1);
			if (!bigger)
				goto fail;
			scratch = bigger;
		}
		memcpy(scratch, l, ll);
		scratch[ll] = '\0';
		ib_store__names_entry *e = &n->e[n->n];
		int lranged = 0;
		if (parse_line(e, &lranged, scratch) < 0 || lranged != sranged)
			goto fail; /* one bad line: none of it is believed */
		e->top_type = keep(&arena, e->top_type);
		e->created = keep(&arena, e->created);
		e->name = keep(&arena, e->name);
		e->digests = keep(&arena, e->digests);
		n->n++;
		l = nl + 1;
	}
	goto out;
fail:
	ib_store__names_free(n);
	n = NULL;
out:
	ib_error_clear();
	if (map != MAP_FAILED)
		munmap(map, size);
	if (fd >= 0)
		close(fd);
	free(scratch);
	free(small);
	free(p);
	return n;
}

int ib_store__names_load(ib_store__names **out, ib_store *s)
{
	*out = NULL;
	ib_digest key;
	if (ib_store__index_key(&key, s) < 0) {
		ib_error_clear();
		return 0;
	}
	return ib_store__names_load_key(out, s, &key);
}

int ib_store__names_load_key(ib_store__names **out, ib_store *s, const ib_digest *k)
{
	*out = NULL;
	ib_digest key = *k;
	ib_store__names *n = NULL;
	pthread_mutex_lock(&s->cache_mu);
	if (s->names_cache && ib_digest_equal(&s->names_cache->key, &key)) {
		n = s->names_cache;
		__atomic_add_fetch(&n->refs, 1, __ATOMIC_ACQ_REL);
	}
	pthread_mutex_unlock(&s->cache_mu);
	if (!n && (n = names_read(s, &key))) {
		__atomic_add_fetch(&n->refs, 1, __ATOMIC_ACQ_REL);
		pthread_mutex_lock(&s->cache_mu);
		ib_store__names_free(s->names_cache);
		s->names_cache = n;
		pthread_mutex_unlock(&s->cache_mu);
	}
	*out = n;
	return 0;
}

/* A string the file can hold as one field: non-empty, not "-", no white space. */
static int plain(const char *v)
{
	return *v && strcmp(v, "-") && !strpbrk(v, " \t\r\n");
}

int ib_store__names_save(ib_store *s, const ib_digest *key, const ib_store__names_entry *e, size_t n,
			 const uint64_t *span)
{
	ib_buf b = IB_BUF_INIT;
	int rc = ib_store__names_save_buf(s, key, e, n, span, &b);
	ib_buf_dispose(&b);
	return rc;
}

int ib_store__names_save_buf(ib_store *s, const ib_digest *key, const ib_store__names_entry *e, size_t n,
			     const uint64_t *span, ib_buf *buf)
{
	ib_buf b = *buf, old = IB_BUF_INIT;
	*buf = (ib_buf)IB_BUF_INIT;
	ib_buf_clear(&b);
	char hex[IB_DIGEST_HEXLEN + 1];
	ib_digest_hex(hex, key);
	int rc = ib_buf_grow(&b, 128 + n * (3 * (IB_DIGEST_HEXLEN + 1) + 160));
	if (rc == 0)
		rc = ib_buf_printf(&b, "%skey %s\n", NAMES_HEADER, hex);
	if (rc == 0)
		rc = span ? ib_buf_printf(&b, "span %" PRIu64 " %" PRIu64 "\n", span[0], span[1]) : ib_buf_puts(&b, "span - -\n");
	for (size_t i = 0; rc == 0 && i < n; i++) {
		const ib_store__names_entry *x = &e[i];
		if ((x->top_type && !plain(x->top_type)) || (x->name && !plain(x->name)) ||
		    (x->summary && x->created && !plain(x->created)) || (x->summary && !x->resolved) ||
		    (x->digests && (!strcmp(x->digests, "-") || strpbrk(x->digests, "\t\r\n")))) {
			ib_buf_dispose(&b);
			return 0; /* not something this file can say: none, lookups take the slow way */
		}
		/* put, not printf: a writer formats 1,000 lines of this */
		char line[3 * (IB_DIGEST_HEXLEN + 1) + 96], *q = line;
		if (span) {
			q += snprintf(q, 48, "%" PRIu64 " %" PRIu64 " ", x->off, x->len);
		} else {
			memcpy(q, "- - ", 4);
			q += 4;
		}
		ib_digest_hex(q, &x->top);
		q += IB_DIGEST_HEXLEN;
		*q++ = ' ';
		if (x->resolved) {
			ib_digest_hex(q, &x->manifest);
			q += IB_DIGEST_HEXLEN;
			*q++ = ' ';
			ib_digest_hex(q, &x->id);
			q += IB_DIGEST_HEXLEN;
			*q++ = ' ';
		} else {
			memcpy(q, "- - ", 4);
			q += 4;
		}
		q += snprintf(q, 24, "%" PRIu64 " ", x->dsize);
		if (rc == 0)
			rc = ib_buf_put(&b, line, (size_t)(q - line));
		const char *f[5] = { x->top_type, NULL, x->summary ? x->created : NULL, x->name,
				     x->digests && *x->digests ? x->digests : NULL };
		char size[24];
		if (x->summary) {
			snprintf(size, sizeof size, "%" PRIu64, x->size);
			f[1] = size;
		}
		for (size_t k = 0; rc == 0 && k < 5; k++)
			rc = ib_buf_puts(&b, f[k] ? f[k] : "-") < 0 || ib_buf_puts(&b, k < 4 ? " " : "\n") < 0 ? IB_ERROR : 0;
	}
	ib_digest d;
	if (rc == 0 && (rc = ib_digest_of(&d, b.ptr, b.size)) == 0) {
		ib_digest_hex(hex, &d);
		rc = ib_buf_printf(&b, "sum %s\n", hex);
	}
	char *p = rc == 0 ? ib_store__path(s, "index.names") : NULL;
	if (rc == 0 && !p)
		rc = IB_ERROR;
	/* the same bytes there already: nothing to write (a no-op writes nothing); another key: read no further */
	size_t head = strlen(NAMES_HEADER) + 4 + IB_DIGEST_HEXLEN + 1;
	char have[128];
	int fd = rc == 0 ? open(p, O_RDONLY | O_CLOEXEC) : -1;
	ssize_t got = fd >= 0 ? pread(fd, have, head, 0) : -1;
	if (fd >= 0)
		close(fd);
	if (rc == 0 && got == (ssize_t)head && !memcmp(have, b.ptr, head) && ib_read_file(&old, p) == 0 &&
	    old.size == b.size && !memcmp(old.ptr, b.ptr, b.size)) {
		ib_buf_dispose(&old);
		ib_buf_dispose(&b);
		free(p);
		return 0;
	}
	ib_error_clear();
	ib_buf_dispose(&old);
	/* a cache: a torn one fails its sum and is rebuilt */
	if (rc == 0)
		rc = ib_cache_write(p, b.ptr, b.size);
	free(p);
	ib_buf_dispose(&b);
	return rc;
}
