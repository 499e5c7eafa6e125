/*
 * The steps that change only the image config (ENV, LABEL, CMD, ...), ARG,
 * and the history texts as BuildKit writes them.
 */
#include "build/internal.h"
#include "build/copy.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/path.h"
#include "util/strlist.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- history text as BuildKit writes it (Go's %q and %v) ---- */

static void go_quote(ib_buf *out, const char *str)
{
	ib_buf_putc(out, '"');
	for (const unsigned char *p = (const unsigned char *)str; *p; p++) {
		switch (*p) {
		case '"': ib_buf_puts(out, "\\\""); break;
		case '\\': ib_buf_puts(out, "\\\\"); break;
		case '\n': ib_buf_puts(out, "\\n"); break;
		case '\t': ib_buf_puts(out, "\\t"); break;
		case '\r': ib_buf_puts(out, "\\r"); break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				ib_buf_printf(out, "\\x%02x", *p);
			else
				ib_buf_putc(out, (char)*p);
		}
	}
	ib_buf_putc(out, '"');
}

/* ["a" "b"]: a Go string slice printed with %q */
static void go_quote_list(ib_buf *out, const char *const *items, size_t n)
{
	ib_buf_putc(out, '[');
	for (size_t i = 0; i < n; i++) {
		if (i)
			ib_buf_putc(out, ' ');
		go_quote(out, items[i]);
	}
	ib_buf_putc(out, ']');
}

/* Go's time.Duration.String(): "0s", "300ms", "1.5s", "1m0s", "1h0m0s" */
static void go_duration(ib_buf *out, int64_t ns)
{
	if (ns == 0) {
		ib_buf_puts(out, "0s");
		return;
	}
	if (ns < 0) {
		ib_buf_putc(out, '-');
		ns = -ns;
	}
	char frac[16];
	if (ns < 1000000000LL) {
		const char *unit = ns < 1000 ? "ns" : ns < 1000000 ? "\xc2\xb5s" : "ms";
		int64_t div = ns < 1000 ? 1 : ns < 1000000 ? 1000 : 1000000;
		int digits = ns < 1000 ? 0 : ns < 1000000 ? 3 : 6;
		ib_buf_printf(out, "%lld", (long long)(ns / div));
		if (digits && ns % div) {
			snprintf(frac, sizeof frac, "%0*lld", digits, (long long)(ns % div));
			for (int k = digits - 1; k > 0 && frac[k] == '0'; k--)
				frac[k] = '\0';
			ib_buf_printf(out, ".%s", frac);
		}
		ib_buf_puts(out, unit);
		return;
	}
	int64_t h = ns / 3600000000000LL, m = ns / 60000000000LL % 60, sec = ns / 1000000000LL % 60;
	int64_t rest = ns % 1000000000LL;
	if (h)
		ib_buf_printf(out, "%lldh", (long long)h);
	if (h || m)
		ib_buf_printf(out, "%lldm", (long long)m);
	ib_buf_printf(out, "%lld", (long long)sec);
	if (rest) {
		snprintf(frac, sizeof frac, "%09lld", (long long)rest);
		for (int k = 8; k > 0 && frac[k] == '0'; k--)
			frac[k] = '\0';
		ib_buf_printf(out, ".%s", frac);
	}
	ib_buf_putc(out, 's');
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---- EXPOSE and STOPSIGNAL, checked as Docker does ---- */

/* Go's strconv.ParseUint(s, 10, 16): digits only, at most 65535. */
static int port_number(unsigned *out, const char *s, size_t n)
{
	unsigned v = 0;
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		v = v * 10 + (unsigned)(s[i] - '0');
		if (v > 65535)
			return 0;
	}
	*out = v;
	return 1;
}

/* "80" or "8000-8010" (docker/go-connections nat.ParsePortRange). */
static int port_range(unsigned *lo, unsigned *hi, const char *s, size_t n)
{
	const char *dash = memchr(s, '-', n);
	if (!dash)
		return port_number(lo, s, n) && port_number(hi, s, n);
	return port_number(lo, s, (size_t)(dash - s)) &&
	       port_number(hi, dash + 1, n - (size_t)(dash + 1 - s)) && *hi >= *lo;
}

/*
 * One EXPOSE word as Docker's nat.ParsePortSpec reads it:
 * [[ip:]hostport:]port[-port][/proto], the protocol tcp (default), udp or
 * sctp in any case (lower-cased); a range gives one entry per port.
 */
static int expose_word(ib_strlist *out, const char *word)
{
	const char *colon = strrchr(word, ':');
	const char *cport = colon ? colon + 1 : word;
	if (colon) {
		/* host part: [ip:]hostport, the hostport a range too */
		const char *hp = word;
		const char *c1 = memchr(word, ':', (size_t)(colon - word));
		if (c1 && c1 != colon)
			hp = c1 + 1;
		unsigned hl, hh;
		if (colon > hp && !port_range(&hl, &hh, hp, (size_t)(colon - hp)))
			return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "EXPOSE `%s`: invalid hostPort", word);
	}
	const char *slash = strchr(cport, '/');
	size_t plen = slash ? (size_t)(slash - cport) : strlen(cport);
	char proto[16] = "tcp";
	if (slash && slash[1]) {
		size_t k = 0;
		for (const char *p = slash + 1; *p && k < sizeof proto - 1; p++)
			proto[k++] = (char)((*p >= 'A' && *p <= 'Z') ? *p - 'A' + 'a' : *p);
		proto[k] = '\0';
		if (strlen(slash + 1) >= sizeof proto || (strcmp(proto, "tcp") && strcmp(proto, "udp") && strcmp(proto, "sctp")))
			return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "EXPOSE `%s`: invalid protocol `%s` (tcp, udp or sctp)",
					     word, slash + 1);
	}
	unsigned lo, hi;
	if (plen == 0)
		return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "EXPOSE `%s`: no port specified", word);
	if (!port_range(&lo, &hi, cport, plen))
		return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD,
				     "EXPOSE `%s`: invalid port `%.*s` (0-65535, or a range low-high)", word, (int)plen, cport);
	for (unsigned p = lo; p <= hi; p++) {
		char *e = ib_sprintf("%u/%s", p, proto);
		if (!e || ib_strlist_take(out, e) < 0)
			return IB_ERROR;
	}
	return 0;
}

/* Docker's signal.ParseSignal (Linux): a non-zero number, or a name with or without SIG. */
static int signal_ok(const char *sig)
{
	static const char *const names[] = {
		"ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT",
		"KILL", "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM",
		"TRAP", "TSTP", "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ",
		"RTMIN", "RTMAX", NULL,
	};
	char *end = NULL;
	errno = 0;
	long n = strtol(sig, &end, 10);
	if (*sig && *sig != ' ' && *sig != '\t' && end && !*end && errno == 0)
		return n != 0 && n >= INT32_MIN && n <= INT32_MAX;
	char up[32];
	size_t k = 0;
	for (const char *p = sig; *p && k < sizeof up - 1; p++)
		up[k++] = (char)((*p >= 'a' && *p <= 'z') ? *p - 'a' + 'A' : *p);
	up[k] = '\0';
	if (strlen(sig) >= sizeof up)
		return 0;
	const char *name = strncmp(up, "SIG", 3) == 0 ? up + 3 : up;
	for (size_t i = 0; names[i]; i++)
		if (!strcmp(name, names[i]))
			return 1;
	/* RTMIN+1..RTMIN+15, RTMAX-14..RTMAX-1 */
	if (!strncmp(name, "RTMIN+", 6) || !strncmp(name, "RTMAX-", 6)) {
		long v = strtol(name + 6, &end, 10);
		int max = !strncmp(name, "RTMIN+", 6) ? 15 : 14;
		return name[6] >= '1' && name[6] <= '9' && end && !*end && v >= 1 && v <= max;
	}
	return 0;
}

/* ---- instructions that change only the config ---- */

/* CMD/ENTRYPOINT/SHELL argv: exec form as is; shell form through SHELL. */
static int command_list(ib_strlist *out, const ib_image_config *config, const ib_instr_cmd *c)
{
	if (c->json) {
		for (size_t i = 0; i < c->args.count; i++)
			if (ib_strlist_add(out, c->args.items[i]) < 0)
				return IB_ERROR;
		return 0;
	}
	size_t n = ib_image_config_list_count(config, IB_CONFIG_SHELL);
	if (n == 0) {
		ib_strlist_add(out, "/bin/sh");
		ib_strlist_add(out, "-c");
	}
	for (size_t i = 0; i < n; i++)
		ib_strlist_add(out, ib_image_config_list_get(config, IB_CONFIG_SHELL, i));
	return ib_strlist_add(out, c->args.count ? c->args.items[0] : "");
}

/* Expand `word` with m->env: into one string, or split into words. */
static int meta_expand(ib_buf *one, ib_strarray *list, const ib_build__meta *m, const char *word)
{
	ib_expand_options eo = IB_EXPAND_OPTIONS_INIT;
	eo.env = m->env;
	eo.escape = m->escape ? m->escape : '\\';
	return one ? ib_expand_word(one, word, &eo) : ib_expand_words(list, word, &eo);
}

/* WORKDIR's path: relative to the config's WORKDIR, cleaned. */
int ib_build__workdir_path(ib_buf *out, const ib_image_config *config, const char *value)
{
	if (value[0] == '/')
		return ib_path_clean(out, value);
	const char *wd = ib_image_config_get(config, IB_CONFIG_WORKDIR);
	ib_buf j = IB_BUF_INIT;
	int rc = ib_path_join(&j, wd && *wd ? wd : "/", value);
	if (rc == 0)
		rc = ib_path_clean(out, j.ptr);
	ib_buf_dispose(&j);
	return rc;
}

int ib_build__meta_apply(ib_image_config *config, const ib_instruction *in, ib_build__meta *m)
{
	ib_buf v = IB_BUF_INIT, hist = IB_BUF_INIT;
	ib_strlist l = IB_STRLIST_INIT, own_env = IB_STRLIST_INIT;
	ib_strarray words = IB_STRARRAY_INIT;
	int rc = 0;
	m->no_history = 0;
	if (!m->env) {
		/* without a builder: the words expand with the config's own Env */
		size_t n = ib_image_config_list_count(config, IB_CONFIG_ENV);
		for (size_t i = 0; rc == 0 && i < n; i++)
			rc = ib_strlist_add(&own_env, ib_image_config_list_get(config, IB_CONFIG_ENV, i));
		if (rc < 0)
			return rc;
		m->env = (const char *const *)own_env.items;
	}
	switch (in->kind) {
	case IB_INSTR_ENV:
	case IB_INSTR_LABEL: {
		/* every pair sees the environment from before the instruction
		 * (Docker: in `ENV A=2 B=$A`, B gets the old A) */
		ib_strlist keys = IB_STRLIST_INIT, vals = IB_STRLIST_INIT;
		ib_buf_puts(&hist, in->kind == IB_INSTR_ENV ? "ENV" : "LABEL");
		for (size_t i = 0; rc == 0 && i < ib_instruction_kv_count(in); i++) {
			const ib_instr_kv *kv = ib_instruction_kv(in, i);
			ib_buf key = IB_BUF_INIT;
			rc = meta_expand(&key, NULL, m, kv->key);
			if (rc == 0)
				rc = meta_expand(&v, NULL, m, kv->value);
			if (rc == 0)
				rc = ib_strlist_add(&keys, key.ptr);
			if (rc == 0)
				rc = ib_strlist_add(&vals, v.ptr);
			ib_buf_printf(&hist, " %s=%s", ib_buf_cstr(&key), ib_buf_cstr(&v));
			ib_buf_dispose(&key);
		}
		for (size_t i = 0; rc == 0 && i < keys.n; i++) {
			rc = in->kind == IB_INSTR_ENV ? ib_image_config_env_set(config, keys.items[i], vals.items[i])
						     : ib_image_config_label_set(config, keys.items[i], vals.items[i]);
			if (rc == 0 && in->kind == IB_INSTR_ENV && m->env_set)
				rc = ib_strlist_add(m->env_set, keys.items[i]) < 0 ? IB_ERROR
				     : ib_strlist_add(m->env_set, vals.items[i]);
		}
		ib_strlist_clear(&keys);
		ib_strlist_clear(&vals);
		break;
	}
	case IB_INSTR_MAINTAINER:
		rc = meta_expand(&v, NULL, m, in->u.value);
		if (rc == 0)
			rc = ib_image_config_set(config, IB_CONFIG_AUTHOR, v.ptr);
		ib_buf_printf(&hist, "MAINTAINER %s", ib_buf_cstr(&v));
		break;
	case IB_INSTR_USER:
		rc = meta_expand(&v, NULL, m, in->u.value);
		if (rc == 0)
			rc = ib_image_config_set(config, IB_CONFIG_USER, v.ptr);
		ib_buf_printf(&hist, "USER %s", ib_buf_cstr(&v));
		break;
	case IB_INSTR_WORKDIR: {
		ib_buf path = IB_BUF_INIT;
		rc = meta_expand(&v, NULL, m, in->u.value);
		if (rc == 0)
			rc = ib_build__workdir_path(&path, config, v.ptr);
		if (rc == 0)
			rc = ib_image_config_set(config, IB_CONFIG_WORKDIR, path.ptr);
		ib_buf_printf(&hist, "WORKDIR %s", ib_buf_cstr(&path));
		ib_buf_dispose(&path);
		break;
	}
	case IB_INSTR_STOPSIGNAL:
		rc = meta_expand(&v, NULL, m, in->u.value);
		if (rc == 0 && !signal_ok(v.ptr))
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "STOPSIGNAL: invalid signal `%s`", v.ptr);
		if (rc == 0)
			rc = ib_image_config_set(config, IB_CONFIG_STOPSIGNAL, v.ptr);
		ib_buf_printf(&hist, "STOPSIGNAL %s", ib_buf_cstr(&v));
		break;
	case IB_INSTR_EXPOSE: {
		/* history as BuildKit prints the Go map: sorted keys */
		ib_strlist ports = IB_STRLIST_INIT;
		for (size_t i = 0; rc == 0 && i < in->u.list.count; i++) {
			rc = meta_expand(NULL, &words, m, in->u.list.items[i]);
			ib_strlist found = IB_STRLIST_INIT;
			for (size_t w = 0; rc == 0 && w < words.count; w++)
				rc = expose_word(&found, words.strings[w]);
			for (size_t w = 0; rc == 0 && w < found.n; w++) {
				const char *port = found.items[w];
				rc = ib_image_config_list_add(config, IB_CONFIG_EXPOSED_PORTS, port);
				if (rc == 0 && !ib_strlist_contains(&ports, port))
					rc = ib_strlist_add(&ports, port);
			}
			ib_strlist_clear(&found);
		}
		if (ports.n > 1)
			qsort(ports.items, ports.n, sizeof *ports.items, cmp_str);
		ib_buf_puts(&hist, "EXPOSE map[");
		for (size_t i = 0; i < ports.n; i++)
			ib_buf_printf(&hist, "%s%s:{}", i ? " " : "", ports.items[i]);
		ib_buf_putc(&hist, ']');
		ib_strlist_clear(&ports);
		break;
	}
	case IB_INSTR_VOLUME:
		ib_buf_puts(&hist, "VOLUME [");
		for (size_t i = 0; rc == 0 && i < in->u.list.count; i++) {
			rc = meta_expand(&v, NULL, m, in->u.list.items[i]);
			if (rc == 0 && v.size == 0)
				rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "VOLUME specified can not be an empty string");
			if (rc == 0)
				rc = ib_image_config_list_add(config, IB_CONFIG_VOLUMES, v.ptr);
			ib_buf_printf(&hist, "%s%s", i ? " " : "", ib_buf_cstr(&v));
		}
		ib_buf_putc(&hist, ']');
		break;
	case IB_INSTR_CMD:
	case IB_INSTR_ENTRYPOINT:
	case IB_INSTR_SHELL: {
		ib_config_list which = in->kind == IB_INSTR_CMD ? IB_CONFIG_CMD
				       : in->kind == IB_INSTR_ENTRYPOINT ? IB_CONFIG_ENTRYPOINT
									  : IB_CONFIG_SHELL;
		if (in->kind == IB_INSTR_SHELL && !in->u.cmd.json) {
			rc = ib_error_setc(IB_EINVALID, IB_LAYER_BUILD, "SHELL requires the JSON form");
			break;
		}
		rc = command_list(&l, config, &in->u.cmd);
		if (rc == 0)
			rc = ib_image_config_list_set(config, which, (const char *const *)l.items, l.n);
		/* BuildKit (Docker 20.10) marks every CMD as ArgsEscaped */
		if (rc == 0 && in->kind == IB_INSTR_CMD)
			rc = ib_image_config_set_args_escaped(config, 1);
		/* a new ENTRYPOINT drops a CMD inherited from the base (not one set in this stage) */
		if (rc == 0 && in->kind == IB_INSTR_ENTRYPOINT && !m->cmd_set)
			rc = ib_image_config_list_set(config, IB_CONFIG_CMD, NULL, 0);
		if (rc == 0 && in->kind == IB_INSTR_CMD)
			m->cmd_set = 1;
		ib_buf_printf(&hist, "%s ", ib_instruction_kind_name(in->kind));
		if (in->kind == IB_INSTR_SHELL) {
			/* Go's %v of a slice: [/bin/sh -c] */
			ib_buf_putc(&hist, '[');
			for (size_t j = 0; j < l.n; j++)
				ib_buf_printf(&hist, "%s%s", j ? " " : "", l.items[j]);
			ib_buf_putc(&hist, ']');
		} else {
			go_quote_list(&hist, (const char *const *)l.items, l.n);
		}
		break;
	}
	case IB_INSTR_HEALTHCHECK: {
		const ib_instr_healthcheck *h = &in->u.healthcheck;
		ib_healthcheck t = IB_HEALTHCHECK_INIT;
		if (h->none) {
			const char *none[] = {"NONE"};
			rc = ib_image_config_set_healthcheck(config, none, 1, &t);
		} else {
			t.interval = h->interval;
			t.timeout = h->timeout;
			t.start_period = h->start_period;
			t.start_interval = h->start_interval;
			t.retries = h->retries;
			rc = ib_image_config_set_healthcheck(config, h->test.items, h->test.count, &t);
		}
		/* BuildKit prints the Go struct: &{["CMD" "x"] "5s" "3s" "0s" '\x03'} */
		ib_healthcheck shown = IB_HEALTHCHECK_INIT;
		ib_image_config_healthcheck(&shown, config);
		ib_buf_puts(&hist, "HEALTHCHECK &{");
		ib_strlist test = IB_STRLIST_INIT;
		size_t nt = ib_image_config_list_count(config, IB_CONFIG_HEALTHCHECK_TEST);
		for (size_t j = 0; j < nt; j++)
			ib_strlist_add(&test, ib_image_config_list_get(config, IB_CONFIG_HEALTHCHECK_TEST, j));
		go_quote_list(&hist, (const char *const *)test.items, test.n);
		ib_strlist_clear(&test);
		int64_t times[3] = {shown.interval, shown.timeout, shown.start_period};
		for (size_t j = 0; j < 3; j++) {
			ib_buf_puts(&hist, " \"");
			go_duration(&hist, times[j]);
			ib_buf_putc(&hist, '"');
		}
		if (shown.retries >= 32 && shown.retries < 127)
			ib_buf_printf(&hist, " '%c'}", shown.retries);
		else
			ib_buf_printf(&hist, " '\\x%02x'}", shown.retries & 0xff);
		break;
	}
	case IB_INSTR_ONBUILD:
		/* kept in the config; BuildKit adds no history entry for it */
		rc = ib_image_config_list_add(config, IB_CONFIG_ONBUILD, in->u.onbuild.trigger);
		m->no_history = 1;
		break;
	default:
		rc = ib_error_setc(IB_EUNSUPPORTED, IB_LAYER_BUILD, "%s does not change the image config alone",
				   ib_instruction_kind_name(in->kind));
	}
	if (rc == 0 && m->history)
		rc = ib_buf_set(m->history, ib_buf_cstr(&hist), hist.size);
	if (m->env == (const char *const *)own_env.items)
		m->env = NULL;
	ib_buf_dispose(&v);
	ib_buf_dispose(&hist);
	ib_strlist_clear(&l);
	ib_strlist_clear(&own_env);
	ib_strarray_dispose(&words);
	return rc;
}

int ib_build__do_meta(builder *b, stage_state *s, const ib_instruction *in)
{
	ib_strlist env = IB_STRLIST_INIT, set = IB_STRLIST_INIT;
	ib_buf hist = IB_BUF_INIT;
	ib_build__meta m;
	memset(&m, 0, sizeof m);
	int rc = ib_build__step_env(&env, s);
	m.env = (const char *const *)env.items;
	m.escape = b->escape;
	m.cmd_set = s->cmd_set;
	m.history = &hist;
	m.env_set = &set;
	if (rc == 0)
		rc = ib_build__meta_apply(s->config, in, &m);
	/* an ENV of an ARG's name sets the step environment too */
	for (size_t i = 0; rc == 0 && i + 1 < set.n; i += 2)
		rc = ib_build__env_over_args(s, set.items[i], set.items[i + 1]);
	if (rc == 0 && !b->no_history && !m.no_history)
		rc = ib_build__add_history(b, s, ib_buf_cstr(&hist), 1);
	if (rc < 0)
		ib_error_prefix("%s:%d", b->filename ? b->filename : "Dockerfile", in->line);
	ib_strlist_clear(&env);
	ib_strlist_clear(&set);
	ib_buf_dispose(&hist);
	return rc;
}

/* What `commit -c` and `import --change` take (Docker's commit takes these). */
int ib_build__apply_change(ib_image_config *config, const ib_instruction *in)
{
	switch (in->kind) {
	case IB_INSTR_CMD: case IB_INSTR_ENTRYPOINT: case IB_INSTR_ENV: case IB_INSTR_EXPOSE:
	case IB_INSTR_LABEL: case IB_INSTR_USER: case IB_INSTR_VOLUME: case IB_INSTR_STOPSIGNAL:
	case IB_INSTR_ONBUILD: case IB_INSTR_SHELL: case IB_INSTR_HEALTHCHECK: case IB_INSTR_MAINTAINER:
	case IB_INSTR_WORKDIR: {
		ib_build__meta m;
		memset(&m, 0, sizeof m);
		return ib_build__meta_apply(config, in, &m);
	}
	default:
		return ib_error_setc(IB_EINVALID, IB_LAYER_BUILD,
				     "%s cannot be applied as a change (CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL, "
				     "MAINTAINER, ONBUILD, SHELL, STOPSIGNAL, USER, VOLUME, WORKDIR can)",
				     ib_instruction_kind_name(in->kind));
	}
}

/* ARG: scope only (not in the image); Docker adds no history entry. */
int ib_build__do_arg(builder *b, stage_state *s, const ib_instruction *in)
{
	ib_buf hist = IB_BUF_INIT;
	for (size_t i = 0; i < ib_instruction_arg_count(in); i++) {
		const ib_instr_arg *a = ib_instruction_arg(in, i);
		ib_buf def = IB_BUF_INIT;
		const char *value = NULL;
		int rc = 0;
		if (a->has_default)
			rc = ib_build__expand_one(&def, b, s, a->default_value);
		if (rc == 0 && ib_plan_arg_value(&value, b->plan, a->name, a->has_default ? def.ptr : NULL) == 0)
			rc = ib_build__set_arg(s, a->name, value);
		if (rc == 0 && !ib_strlist_contains(&s->arg_names, a->name))
			rc = ib_strlist_add(&s->arg_names, a->name);
		/* history: the declaration, with its default (not the build argument) */
		if (rc == 0) {
			if (i == 0)
				ib_buf_puts(&hist, "ARG");
			if (a->has_default)
				ib_buf_printf(&hist, " %s=%s", a->name, def.ptr);
			else
				ib_buf_printf(&hist, " %s", a->name);
		}
		ib_buf_dispose(&def);
		if (rc < 0) {
			ib_buf_dispose(&hist);
			ib_error_prefix("line %d: ARG %s", in->line, a->name);
			return rc;
		}
	}
	free(s->arg_history);
	s->arg_history = ib_buf_detach(&hist);
	return s->arg_history ? 0 : IB_ERROR;
}

/* BuildKit records each ARG of a stage as an empty-layer history entry. */
int ib_build__arg_history(builder *b, stage_state *s)
{
	return ib_build__add_history(b, s, s->arg_history ? s->arg_history : "ARG", 1);
}
