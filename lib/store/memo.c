/*
 * The index memo, <root>/index.memo: what each index entry's manifest resolves
 * to (its id, size and creation time), so a lookup or a listing does not open
 * and parse every manifest and config of the store. A manifest blob never
 * changes (its name is its digest), so what it resolves to never changes: a
 * memo line is never stale, only unused (its entry gone) — dropped when the
 * memo is written again. Only image manifests are memoised; an index's
 * platform manifest depends on which children are present, and is resolved
 * each time.
 *
 * index.json stays the truth for names (other tools write it too); the memo
 * holds no name. It is a cache: written to a temporary file and renamed, not
 * fsynced, and checked on reading (a version line first, a sha256 of the
 * lines last); a missing, damaged or foreign one is ignored and rewritten.
 */
#include "store/internal.h"
#include "util/fs.h"
#include "util/hash.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MEMO_HEADER "imagebuild-index-memo 1\n"
#define MEMO_MAX (64u << 20)

struct ib_store__memo {
	ib_store__memo_entry *slots; /* open addressing on the top digest; used = 0: empty */
	size_t cap, n;
	int dirty;
	/*
	 * The handle's memo this one starts from, shared and never changed (a
	 * lookup does not copy 1,000 entries): read after `slots`, which hold
	 * only what this one added. refs counts the holders of a shared one.
	 */
	struct ib_store__memo *base;
	int refs;
};

static size_t slot_hash(const ib_digest *d)
{
	size_t h;
	memcpy(&h, d->bytes, sizeof h);
	return h;
}

static ib_store__memo_entry *slot_of(ib_store__memo *m, const ib_digest *top)
{
	size_t i = slot_hash(top) & (m->cap - 1);
	while (m->slots[i].used && !ib_digest_equal(&m->slots[i].top, top))
		i = (i + 1) & (m->cap - 1);
	return &m->slots[i];
}

static int grow(ib_store__memo *m)
{
	if ((m->n + 1) * 2 <= m->cap)
		return 0;
	size_t cap = m->cap ? m->cap * 2 : 256;
	ib_store__memo_entry *old = m->slots;
	size_t oldcap = m->cap;
	m->slots = ib_calloc(cap, sizeof *m->slots);
	if (!m->slots) {
		m->slots = old;
		return IB_ERROR;
	}
	m->cap = cap;
	for (size_t i = 0; i < oldcap; i++)
		if (old[i].used)
			*slot_of(m, &old[i].top) = old[i];
	free(old);
	return 0;
}

/* Room for `n` entries at most half full, before they are added (no rehash while reading). */
static int presize(ib_store__memo *m, size_t n)
{
	if (m->cap || !n)
		return 0;
	size_t cap = 256;
	while (cap < 2 * (n + 1))
		cap *= 2;
	if (!(m->slots = ib_calloc(cap, sizeof *m->slots)))
		return IB_ERROR;
	m->cap = cap;
	return 0;
}

static int add(ib_store__memo *m, const ib_store__memo_entry *e)
{
	if (grow(m) < 0)
		return IB_ERROR;
	ib_store__memo_entry *slot = slot_of(m, &e->top);
	if (!slot->used)
		m->n++;
	*slot = *e;
	slot->used = 1;
	return 0;
}

static int hex_value(unsigned char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* (internal.h) The memo's and the names file's digests; a NUL ends the reading at its first digit. */
int ib_store__parse_hex_field(ib_digest *d, char **p)
{
	const unsigned char *h = (const unsigned char *)*p;
	for (size_t i = 0; i < 32; i++) {
		int hi = hex_value(h[2 * i]), lo = hi < 0 ? -1 : hex_value(h[2 * i + 1]); /* (never past a NUL) */
		if (lo < 0)
			return -1;
		d->bytes[i] = (unsigned char)(hi << 4 | lo);
	}
	if (h[64] != ' ')
		return -1;
	*p += 65;
	return 0;
}

/*
 * One line: "<top> <manifest> <id> <size> <created|->" (hex digests), parsed
 * in place (no sscanf: a memo of 1,000 images is read by every lookup).
 */
static int parse_line(ib_store__memo_entry *e, char *line)
{
	memset(e, 0, sizeof *e);
	char *p = line;
	if (ib_store__parse_hex_field(&e->top, &p) < 0 || ib_store__parse_hex_field(&e->manifest, &p) < 0 ||
	    ib_store__parse_hex_field(&e->id, &p) < 0)
		return -1;
	char *size = p, *created = strchr(p, ' ');
	if (!created || strchr(created + 1, ' '))
		return -1;
	*created++ = '\0';
	if (!*size || strlen(created) >= sizeof e->created || !*created)
		return -1;
	if (strcmp(size, "-")) { /* "-": resolved, not summarised (no size, no created) */
		char *end = NULL;
		if (*size < '0' || *size > '9')
			return -1;
		errno = 0;
		e->size = strtoull(size, &end, 10);
		if (errno || !end || *end)
			return -1;
		e->summary = 1;
		if (strcmp(created, "-"))
			memcpy(e->created, created, strlen(created) + 1);
	}
	return 0;
}

const ib_store__memo_entry *ib_store__memo_get(ib_store__memo *m, const ib_digest *top);

/* One memo with every entry of `m` and of its base: what the handle keeps. */
static ib_store__memo *memo_flat(const ib_store__memo *m)
{
	ib_store__memo *d = ib_calloc(1, sizeof *d);
	if (!d)
		return NULL;
	d->refs = 1;
	const ib_store__memo *parts[2] = { m->base, m };
	if (presize(d, m->n + (m->base ? m->base->n : 0)) < 0)
		goto fail;
	for (size_t p = 0; p < 2; p++)
		for (size_t i = 0; parts[p] && i < parts[p]->cap; i++)
			if (parts[p]->slots[i].used && add(d, &parts[p]->slots[i]) < 0)
				goto fail;
	return d;
fail:
	ib_store__memo_free(d);
	return NULL;
}

/* Keep `m` (flattened) as the handle's memo (best effort: a cache of a cache). */
static void memo_keep(ib_store *s, const ib_store__memo *m)
{
	ib_store__memo *d = memo_flat(m);
	if (!d) {
		ib_error_clear();
		return;
	}
	pthread_mutex_lock(&s->cache_mu);
	ib_store__memo_free(s->memo_cache);
	s->memo_cache = d;
	pthread_mutex_unlock(&s->cache_mu);
}

static int memo_read(ib_store__memo *m, ib_store *s);

int ib_store__memo_load(ib_store__memo **out, ib_store *s)
{
	ib_store__memo *m = ib_calloc(1, sizeof *m);
	if (!m)
		return IB_ERROR;
	m->refs = 1;
	pthread_mutex_lock(&s->cache_mu);
	if (s->memo_cache) {
		m->base = s->memo_cache;
		__atomic_add_fetch(&m->base->refs, 1, __ATOMIC_ACQ_REL);
	}
	pthread_mutex_unlock(&s->cache_mu);
	*out = m;
	if (m->base)
		return 0;
	/* read once into the handle's memo (no copy), and start from it as from a kept one */
	ib_store__memo *read = ib_calloc(1, sizeof *read);
	if (!read)
		return IB_ERROR;
	read->refs = 1;
	int rc = memo_read(read, s);
	if (rc < 0) {
		ib_store__memo_free(read);
		return rc;
	}
	m->base = read;
	__atomic_add_fetch(&read->refs, 1, __ATOMIC_ACQ_REL);
	pthread_mutex_lock(&s->cache_mu);
	ib_store__memo_free(s->memo_cache);
	s->memo_cache = read;
	pthread_mutex_unlock(&s->cache_mu);
	return 0;
}

static int memo_read(ib_store__memo *m, ib_store *s)
{
	char *p = ib_store__path(s, "index.memo");
	ib_buf b = IB_BUF_INIT;
	if (!p)
		return IB_ERROR;
	int ok = ib_read_file(&b, p) == 0 && b.size < MEMO_MAX && b.size > strlen(MEMO_HEADER) &&
		 !memcmp(b.ptr, MEMO_HEADER, strlen(MEMO_HEADER));
	free(p);
	ib_error_clear();
	/* the last line: "sum <sha256 of everything before it>" */
	char *last = NULL;
	if (ok && b.ptr[b.size - 1] == '\n') {
		b.ptr[b.size - 1] = '\0';
		last = strrchr(b.ptr, '\n');
	}
	ib_digest want, have;
	char sum[80];
	if (!last || strncmp(last + 1, "sum ", 4) || snprintf(sum, sizeof sum, "sha256:%s", last + 5) >= (int)sizeof sum ||
	    ib_digest_parse(&want, sum) < 0 || ib_digest_of(&have, b.ptr, (size_t)(last + 1 - b.ptr)) < 0 ||
	    !ib_digest_equal(&want, &have)) {
		ib_error_clear();
		ib_buf_dispose(&b);
		return 0; /* none, or damaged: start empty, written again */
	}
	*last = '\0';
	size_t lines = 0;
	for (const char *q = b.ptr; (q = strchr(q, '\n')); q++)
		lines++;
	if (presize(m, lines) < 0) {
		ib_buf_dispose(&b);
		return IB_ERROR;
	}
	char *save = NULL;
	for (char *line = strtok_r(b.ptr + strlen(MEMO_HEADER), "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		ib_store__memo_entry e;
		if (parse_line(&e, line) == 0 && add(m, &e) < 0) {
			ib_buf_dispose(&b);
			return IB_ERROR;
		}
	}
	ib_buf_dispose(&b);
	return 0;
}

const ib_store__memo_entry *ib_store__memo_get(ib_store__memo *m, const ib_digest *top)
{
	if (!m)
		return NULL;
	if (m->cap) {
		ib_store__memo_entry *e = slot_of(m, top);
		if (e->used)
			return e;
	}
	return m->base ? ib_store__memo_get(m->base, top) : NULL;
}

int ib_store__memo_put(ib_store__memo *m, const ib_store__memo_entry *e)
{
	if (!m)
		return 0;
	const ib_store__memo_entry *have = ib_store__memo_get(m, &e->top);
	if (have && ib_digest_equal(&have->manifest, &e->manifest) && ib_digest_equal(&have->id, &e->id) &&
	    (have->summary || !e->summary))
		return 0; /* known (a summary is never replaced by less) */
	m->dirty = 1;
	return add(m, e);
}

int ib_store__memo_save(ib_store__memo *m, ib_store *s, json_t *index)
{
	if (!m || !m->dirty)
		return 0;
	ib_buf b = IB_BUF_INIT;
	int rc = ib_buf_puts(&b, MEMO_HEADER);
	/* the entries of this index only, in its order */
	json_t *list = json_object_get(index, "manifests");
	size_t i;
	json_t *je;
	json_array_foreach(list, i, je) {
		ib_digest top;
		if (rc < 0 || ib_store__descriptor(NULL, &top, NULL, je, "index.json") < 0) {
			ib_error_clear();
			continue;
		}
		const ib_store__memo_entry *e = ib_store__memo_get(m, &top);
		if (!e)
			continue;
		char t[IB_DIGEST_HEXLEN + 1], mh[IB_DIGEST_HEXLEN + 1], id[IB_DIGEST_HEXLEN + 1];
		ib_digest_hex(t, &e->top);
		ib_digest_hex(mh, &e->manifest);
		ib_digest_hex(id, &e->id);
		char size[24] = "-";
		if (e->summary)
			snprintf(size, sizeof size, "%" PRIu64, e->size);
		rc = ib_buf_printf(&b, "%s %s %s %s %s\n", t, mh, id, size,
				   e->summary && e->created[0] && !strpbrk(e->created, " \n\t") ? e->created : "-");
	}
	ib_digest d;
	char hex[IB_DIGEST_HEXLEN + 1];
	if (rc == 0 && (rc = ib_digest_of(&d, b.ptr, b.size)) == 0) {
		ib_digest_hex(hex, &d);
		rc = ib_buf_printf(&b, "sum %s\n", hex);
	}
	/* a cache: a damaged one fails its sum and is rebuilt */
	char *p = ib_store__path(s, "index.memo");
	if (rc == 0 && !p)
		rc = IB_ERROR;
	if (rc == 0)
		rc = ib_cache_write(p, b.ptr, b.size);
	if (rc == 0) {
		m->dirty = 0;
		memo_keep(s, m);
	}
	free(p);
	ib_buf_dispose(&b);
	return rc;
}

void ib_store__memo_free(ib_store__memo *m)
{
	if (!m || __atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	ib_store__memo_free(m->base);
	free(m->slots);
	free(m);
}
