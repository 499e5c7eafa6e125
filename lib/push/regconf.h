/*
 * containers' registries.conf (version 2), as parsed by the C++ shim
 * (regconf_toml.cpp, toml++) into plain C data, and what the push layer
 * asks of it (regconf.c). C and C++ both include this header.
 */
#ifndef IB_PUSH_REGCONF_H
#define IB_PUSH_REGCONF_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A [[registry.mirror]]. */
typedef struct {
	char *location;
	int insecure;     /* 0 or 1 */
	char *pull_from;  /* pull-from-mirror: NULL (all), "all", "digest-only", "tag-only" */
} ib_push__mirror_conf;

/* A [[registry]]. */
typedef struct {
	char *prefix;     /* prefix, else location */
	char *location;
	int insecure;
	int blocked;
	int mirror_by_digest_only;
	ib_push__mirror_conf *mirrors;
	size_t n_mirrors;
} ib_push__registry_conf;

typedef struct {
	char **search;        /* unqualified-search-registries */
	size_t n_search;
	int has_search;       /* the key was there (maybe empty) */
	char *short_name_mode;
	ib_push__registry_conf *regs;
	size_t n_regs;
} ib_push__regconf;

/*
 * Parse registries.conf text (C++, toml++): 0; -1 with a message in `err`
 * for a file that is not TOML or not registries.conf v2 in shape; -2 out
 * of memory. Every string is malloc()ed: free with ib_push__regconf_dispose.
 */
int ib_push__regconf_parse_toml(ib_push__regconf *out, const char *text, size_t len, char *err, size_t errlen);
void ib_push__regconf_dispose(ib_push__regconf *c);

#ifdef __cplusplus
}
#endif

#endif
