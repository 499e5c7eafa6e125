/* Image commands: import, images, inspect, history, tag, rmi. */
#include "common.h"
#include "format.h"

#include <fnmatch.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <stdlib.h>
#include <string.h>

const cli_option cli_opts_import[] = {
	{ "change", 'c', 1, "INSTRUCTION", "Apply a Dockerfile instruction to the created image; repeatable" },
	{ "message", 'm', 1, "MESSAGE", "Set a commit message for the imported image" },
	{ NULL, 0, 0, NULL, NULL },
};

int cmd_import(ib_cli *cli, int argc, char **argv)
{
	const cli_option *opts = cli_opts_import;
	ib_image_config *config = NULL;
	ib_import_options io = IB_IMPORT_OPTIONS_INIT;
	int i = 1, k, status = 0;
	const char *v;
	if (ib_image_config_new(&config) < 0)
		return cli_fail("import");
	while ((k = cli_next_option(cli, argc, argv, &i, opts, &v)) >= 0) {
		/* the same Dockerfile instructions as commit --change */
		if (k == 0 && ib_commit_apply_change(config, v) < 0) {
			status = cli_fail("import --change");
			goto out;
		}
		if (k == 1)
			io.comment = v;
	}
	if (k == -2 || argc - i < 1 || argc - i > 2) {
		status = cli_usage(cli);
		goto out;
	}
	ib_store *s = cli_store(cli);
	if (!s) {
		status = 1;
		goto out;
	}
	io.config = config;
	io.name = argc - i == 2 ? argv[i + 1] : NULL;
	ib_digest id;
	int rc = !strcmp(argv[i], "-") ? (io.source = "-", ib_store_import_fd(&id, s, 0, &io))
				       : ib_store_import(&id, s, argv[i], &io);
	if (rc < 0) {
		status = cli_fail(NULL);
		goto out;
	}
	char ids[IB_DIGEST_STRLEN];
	ib_digest_fmt(ids, &id);
	printf("%s\n", ids);
out:
	ib_image_config_free(config);
	return status;
}

const cli_option cli_opts_images[] = {
	{ "quiet", 'q', 0, NULL, "Only show image IDs" },
	{ "all", 'a', 0, NULL, "Show all images (the store has no intermediate images: the same list)" },
	{ "format", 0, 1, "FORMAT", "Format output: table, table TEMPLATE, json, or a Go template ({{.ID}}..., {{.Platforms}})" },
	{ "no-trunc", 0, 0, NULL, "Don't truncate output" },
	{ "digests", 0, 0, NULL, "Show digests" },
	{ "filter", 'f', 1, "FILTER", "Filter output: reference=PATTERN, dangling=true|false, label=K[=V], before=IMAGE, since=IMAGE" },
	{ "tree", 0, 0, NULL, "List images as a tree: each image's platforms (a multi-platform image's manifests) under it" },
	{ NULL, 0, 0, NULL, NULL },
};
enum { IMG_QUIET, IMG_ALL, IMG_FORMAT, IMG_NO_TRUNC, IMG_DIGESTS, IMG_FILTER, IMG_TREE };

/* An image's inspect JSON (docker's keys), parsed; NULL after printing the error. */
static json_t *inspect_object(ib_store *s, const char *name)
{
	ib_image *img;
	ib_buf b = IB_BUF_INIT;
	json_t *j = NULL;
	if (ib_store_image_lookup(&img, s, name) < 0) {
		cli_fail(NULL);
		return NULL;
	}
	if (ib_image_inspect_json(&b, img) < 0)
		cli_fail(name);
	else if (!(j = json_loads(b.ptr, 0, NULL)))
		fprintf(stderr, "imagebuild: %s: the inspect JSON does not parse\n", name);
	ib_buf_dispose(&b);
	ib_image_free(img);
	return j;
}

static time_t parse_time(const char *t)
{
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	if (!t || !strptime(t, "%Y-%m-%dT%H:%M:%S", &tm))
		return 0;
	return timegm(&tm);
}

/* --filter, as docker images takes them: one key's values OR, keys AND. */
typedef struct {
	const char **ref, **label;
	size_t nref, nlabel;
	int dangling; /* -1: any */
	time_t before, since;
	int has_before, has_since;
} image_filters;

static int add_filter(image_filters *f, ib_store *s, const char *v)
{
	const char *eq = strchr(v, '=');
	if (!eq) {
		fprintf(stderr, "imagebuild images: bad format of filter (expected name=value): %s\n", v);
		return -1;
	}
	size_t kl = (size_t)(eq - v);
	const char *val = eq + 1;
	if (kl == 9 && !strncmp(v, "reference", 9))
		return cli_list_add(&f->ref, &f->nref, val);
	if (kl == 5 && !strncmp(v, "label", 5))
		return cli_list_add(&f->label, &f->nlabel, val);
	if (kl == 8 && !strncmp(v, "dangling", 8)) {
		if (!strcasecmp(val, "true") || !strcmp(val, "1"))
			f->dangling = 1;
		else if (!strcasecmp(val, "false") || !strcmp(val, "0"))
			f->dangling = 0;
		else {
			fprintf(stderr, "imagebuild images: invalid filter 'dangling=%s' (true or false)\n", val);
			return -1;
		}
		return 0;
	}
	if ((kl == 6 && !strncmp(v, "before", 6)) || (kl == 5 && !strncmp(v, "since", 5))) {
		json_t *j = inspect_object(s, val);
		if (!j)
			return -1;
		time_t t = parse_time(json_string_value(json_object_get(j, "Created")));
		json_decref(j);
		if (v[0] == 'b') {
			f->before = t;
			f->has_before = 1;
		} else {
			f->since = t;
			f->has_since = 1;
		}
		return 0;
	}
	fprintf(stderr, "imagebuild images: invalid filter '%.*s' (reference, dangling, label, before, since)\n",
		(int)kl, v);
	return -1;
}

/* Whether the label filters all match the labels of the image `id`. */
static int labels_match(const image_filters *f, ib_store *s, const char *id)
{
	if (!f->nlabel)
		return 1;
	json_t *j = inspect_object(s, id);
	if (!j)
		return -1;
	json_t *labels = json_object_get(json_object_get(j, "Config"), "Labels");
	int ok = 1;
	for (size_t i = 0; i < f->nlabel && ok; i++) {
		const char *eq = strchr(f->label[i], '=');
		char key[512];
		snprintf(key, sizeof key, "%.*s", eq ? (int)(eq - f->label[i]) : (int)strlen(f->label[i]), f->label[i]);
		json_t *have = json_object_get(labels, key);
		ok = have && (!eq || (json_is_string(have) && !strcmp(json_string_value(have), eq + 1)));
	}
	json_decref(j);
	return ok;
}

/* docker's CreatedAt: "2006-01-02 15:04:05 -0700 MST". */
static void created_at(char *out, size_t len, const char *rfc3339)
{
	time_t t = parse_time(rfc3339);
	struct tm tm;
	if (!t || !gmtime_r(&t, &tm) || !strftime(out, len, "%Y-%m-%d %H:%M:%S +0000 UTC", &tm))
		snprintf(out, len, "N/A");
}

/* ---- images --tree: docker image ls --tree's layout (docker 28, the containerd image store) ---- */

typedef struct {
	const ib_image_summary *row;  /* the group's first row */
	const char **names;           /* familiar names; none: <untagged> */
	size_t nnames;
	ib_image_platform_list *platforms;
	time_t created;
	uint64_t size, content;
	int used;
} tree_image;

enum { TREE_SPACING = 3 };

/* Display width of UTF-8 text (the tree's box characters are one column each). */
static size_t text_width(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

/* `s` in `width` columns: aligned (-1 left, 0 centre, 1 right), cut with "..." when longer, as docker's tree. */
static void tree_cell(const char *s, size_t width, int align)
{
	size_t w = text_width(s);
	if (w > width) {
		size_t keep = width > 3 ? width - 3 : 0, cols = 0;
		const char *p = s;
		while (*p && cols < keep) {
			p++;
			while (((unsigned char)*p & 0xc0) == 0x80)
				p++;
			cols++;
		}
		printf("%.*s...", (int)(p - s), s);
		return;
	}
	size_t fill = width - w, l = align < 0 ? 0 : align > 0 ? fill : fill / 2;
	printf("%*s%s%*s", (int)l, "", s, (int)(fill - l), "");
}

static int cmp_tree(const void *a, const void *b)
{
	const tree_image *x = a, *y = b;
	return x->created < y->created ? 1 : x->created > y->created ? -1 : 0; /* newest first */
}

static int cmp_len_desc(const void *a, const void *b)
{
	size_t x = strlen(*(const char *const *)a), y = strlen(*(const char *const *)b);
	return x < y ? 1 : x > y ? -1 : 0;
}

static void tree_details(size_t *widths, const char *id, uint64_t size, uint64_t content, int used, int any_used)
{
	char du[32], cs[32];
	cli_human_size(du, sizeof du, size);
	cli_human_size(cs, sizeof cs, content);
	const char *vals[] = { id, du, cs, used ? "U" : any_used ? " " : "" };
	static const int align[] = { -1, 1, 1, -1 };
	for (size_t c = 0; c < 4 && widths[c + 1]; c++) {
		printf("%*s", TREE_SPACING, "");
		tree_cell(vals[c], widths[c + 1], align[c]);
	}
}

static int print_tree(ib_store *s, const ib_image_list *list, const size_t *rows, size_t nrows)
{
	tree_image *ti = calloc(nrows ? nrows : 1, sizeof *ti);
	size_t n = 0;
	int rc = ti ? 0 : -1, any_used = 0;
	for (size_t k = 0; rc == 0 && k < nrows; k++) {
		const ib_image_summary *row = ib_image_list_get(list, rows[k]);
		tree_image *t = NULL;
		for (size_t g = 0; g < n && !t; g++)
			if (ib_digest_equal(&ti[g].row->manifest, &row->manifest))
				t = &ti[g];
		if (!t) {
			t = &ti[n++];
			t->row = row;
			t->created = parse_time(row->created);
			if (ib_store_image_platforms(&t->platforms, s, &row->manifest) < 0) {
				cli_fail("images --tree");
				rc = -1;
				break;
			}
			for (size_t i = 0; i < ib_image_platform_list_count(t->platforms); i++) {
				const ib_image_platform *p = ib_image_platform_list_get(t->platforms, i);
				t->size += p->size;
				t->content += p->content_size;
				t->used |= p->containers > 0;
			}
			any_used |= t->used;
		}
		ib_reference *ref = NULL;
		if (row->name && ib_reference_parse(&ref, row->name) == 0)
			cli_list_add(&t->names, &t->nnames, strdup(ib_reference_familiar(ref)));
		ib_reference_free(ref);
	}
	if (rc == 0) {
		qsort(ti, n, sizeof *ti, cmp_tree);
		/* docker's columns: the first as narrow as its values, the rest dropped when 12 columns would not stay */
		struct winsize ws;
		size_t cols = isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col ? ws.ws_col : 80;
		if (cols < 20)
			cols = 20;
		static const char *const titles[] = { "IMAGE", "ID", "DISK USAGE", "CONTENT SIZE", "EXTRA" };
		size_t widths[6] = { 0, 12, 10, 12, 5, 0 };
		size_t name_width = cols;
		for (size_t c = 1; c < 5; c++) {
			if (name_width < widths[c] + TREE_SPACING + 12) {
				for (size_t d = c; d < 5; d++)
					widths[d] = 0;
				break;
			}
			name_width -= widths[c] + TREE_SPACING;
		}
		size_t widest = strlen(titles[0]);
		for (size_t g = 0; g < n; g++) {
			for (size_t i = 0; i < ti[g].nnames; i++)
				if (strlen(ti[g].names[i]) > widest)
					widest = strlen(ti[g].names[i]);
			for (size_t i = 0; i < ib_image_platform_list_count(ti[g].platforms); i++) {
				/* docker counts the bytes of "└─ " (7) */
				size_t w = strlen(ib_image_platform_list_get(ti[g].platforms, i)->platform) + 7;
				if (w > widest)
					widest = w;
			}
		}
		widths[0] = name_width < widest ? name_width : widest;
		for (size_t c = 0; c < 5 && widths[c]; c++) {
			if (c)
				printf("%*s", TREE_SPACING, "");
			tree_cell(titles[c], widths[c], c == 2 || c == 3 ? 1 : -1);
		}
		printf("\n");
		for (size_t g = 0; g < n; g++) {
			tree_image *t = &ti[g];
			char id[IB_DIGEST_HEXLEN + 1];
			ib_digest_hex(id, &t->row->manifest);
			id[12] = '\0';
			if (!t->nnames) {
				tree_cell("<untagged>", widths[0], -1);
			} else {
				/* every name but the last (the shortest) on a line of its own */
				qsort(t->names, t->nnames, sizeof *t->names, cmp_len_desc);
				for (size_t i = 0; i + 1 < t->nnames; i++)
					printf("%s\n", t->names[i]);
				tree_cell(t->names[t->nnames - 1], widths[0], -1);
			}
			tree_details(widths, id, t->size, t->content, t->used, any_used);
			printf("\n");
			size_t np = ib_image_platform_list_count(t->platforms);
			for (size_t i = 0; i < np; i++) {
				const ib_image_platform *p = ib_image_platform_list_get(t->platforms, i);
				char name[300], pid[IB_DIGEST_HEXLEN + 1];
				snprintf(name, sizeof name, "%s %s", i + 1 < np ? "\u251c\u2500" : "\u2514\u2500",
					 *p->platform ? p->platform : "unknown");
				ib_digest_hex(pid, &p->manifest);
				pid[12] = '\0';
				tree_cell(name, widths[0], -1);
				tree_details(widths, pid, p->size, p->content_size, p->containers > 0, any_used);
				printf("\n");
			}
			printf("\n");
		}
	}
	for (size_t g = 0; ti && g < n; g++) {
		for (size_t i = 0; i < ti[g].nnames; i++)
			free((char *)ti[g].names[i]);
		free(ti[g].names);
		ib_image_platform_list_free(ti[g].platforms);
	}
	free(ti);
	return rc;
}

int cmd_images(ib_cli *cli, int argc, char **argv)
{
	const cli_option *opts = cli_opts_images;
	int i = 1, k, quiet = 0, notrunc = 0, digests = 0, tree = 0, status = CLI_EXIT_ERROR;
	size_t *tree_rows = NULL, ntree = 0;
	const char *v, *format = NULL;
	const char **filter_args = NULL;
	size_t nfilter_args = 0;
	image_filters flt = { NULL, NULL, 0, 0, -1, 0, 0, 0, 0 };
	ib_reference *filter = NULL;
	ib_image_list *list = NULL;
	cli_format *fmt = NULL;
	json_t *headers = NULL;
	while ((k = cli_next_option(cli, argc, argv, &i, opts, &v)) >= 0) {
		switch (k) {
		case IMG_QUIET: quiet = 1; break;
		case IMG_ALL: break;
		case IMG_FORMAT: format = v; break;
		case IMG_NO_TRUNC: notrunc = 1; break;
		case IMG_DIGESTS: digests = 1; break;
		case IMG_FILTER: cli_list_add(&filter_args, &nfilter_args, v); break;
		case IMG_TREE: tree = 1; break;
		}
	}
	if (k == -2 || i < argc - 1) {
		status = cli_usage(cli);
		goto out;
	}
	/* docker's refusals */
	if (tree && (quiet || notrunc || digests || format)) {
		fprintf(stderr, "imagebuild images: %s is not (yet) supported with --tree\n",
			quiet ? "--quiet" : notrunc ? "--no-trunc" : digests ? "--show-digest" : "--format");
		goto out;
	}
	/* docker images [REPOSITORY[:TAG]] */
	if (i == argc - 1 && ib_reference_parse(&filter, argv[i]) < 0) {
		status = cli_fail("images");
		goto out;
	}
	ib_store *s = cli_store(cli);
	if (!s) {
		status = 1;
		goto out;
	}
	for (size_t f = 0; f < nfilter_args; f++)
		if (add_filter(&flt, s, filter_args[f]) < 0)
			goto out;
	if (format && !quiet) {
		headers = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "Platforms", "PLATFORMS", "Containers", "CONTAINERS",
				    "CreatedAt", "CREATED AT", "CreatedSince", "CREATED", "Digest", "DIGEST", "ID",
				    "IMAGE ID", "Repository", "REPOSITORY", "SharedSize", "SHARED SIZE", "Size", "SIZE",
				    "Tag", "TAG", "UniqueSize", "UNIQUE SIZE", "VirtualSize", "SIZE");
		fmt = cli_format_new(format,
				     digests ? "{{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
					     : "{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}",
				     headers);
		if (!fmt)
			goto out;
	}
	if (ib_store_images(&list, s) < 0) {
		status = cli_fail("images");
		goto out;
	}
	if (!quiet && !fmt && !tree) {
		if (digests)
			printf("%-40s %-16s %-72s %-14s %-20s %s\n", "REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "CREATED",
			       "SIZE");
		else
			printf("%-40s %-16s %-14s %-20s %s\n", "REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE");
	}
	status = 0;
	for (size_t r = 0; r < ib_image_list_count(list); r++) {
		const ib_image_summary *row = ib_image_list_get(list, r);
		char hex[IB_DIGEST_HEXLEN + 1], size[32], since[64], at[64];
		ib_digest_hex(hex, &row->id);
		if (filter) {
			ib_reference *rr = NULL;
			int keep = row->name && ib_reference_parse(&rr, row->name) == 0 &&
				   !strcmp(ib_reference_repository(rr), ib_reference_repository(filter)) &&
				   (!ib_reference_tag_given(filter) ||
				    !strcmp(ib_reference_tag(rr) ? ib_reference_tag(rr) : "", ib_reference_tag(filter)));
			ib_reference_free(rr);
			if (!keep)
				continue;
		}
		char repo[512] = "<none>", tag[160] = "<none>", fam[700] = "";
		ib_reference *ref;
		if (row->name && ib_reference_parse(&ref, row->name) == 0) {
			const char *f = ib_reference_familiar(ref);
			const char *t = ib_reference_tag(ref);
			snprintf(repo, sizeof repo, "%.*s", (int)(strlen(f) - (t ? strlen(t) + 1 : 0)), f);
			snprintf(tag, sizeof tag, "%s", t ? t : "<none>");
			snprintf(fam, sizeof fam, "%s", f);
			ib_reference_free(ref);
		}
		if (flt.dangling >= 0 && flt.dangling != !row->name)
			continue;
		if (flt.nref) {
			int any = 0;
			for (size_t f = 0; f < flt.nref && !any; f++)
				any = row->name && (!fnmatch(flt.ref[f], fam, FNM_PATHNAME) ||
						    !fnmatch(flt.ref[f], repo, FNM_PATHNAME));
			if (!any)
				continue;
		}
		time_t created = parse_time(row->created);
		if ((flt.has_before && !(created < flt.before)) || (flt.has_since && !(created > flt.since)))
			continue;
		char idarg[IB_DIGEST_STRLEN];
		snprintf(idarg, sizeof idarg, "sha256:%s", hex);
		int lm = labels_match(&flt, s, idarg);
		if (lm < 0) {
			status = 1;
			break;
		}
		if (!lm)
			continue;
		if (tree) { /* printed once every row is known */
			size_t *t2 = realloc(tree_rows, (ntree + 1) * sizeof *tree_rows);
			if (!t2) {
				status = 1;
				break;
			}
			tree_rows = t2;
			tree_rows[ntree++] = r;
			continue;
		}
		char id[IB_DIGEST_STRLEN];
		snprintf(id, sizeof id, notrunc ? "sha256:%s" : "%.12s", hex);
		if (quiet) {
			printf("%s\n", id);
			continue;
		}
		/* the repository digest: of the manifest, for a name pulled or pushed (docker's RepoDigests) */
		char digest[IB_DIGEST_STRLEN + 520] = "<none>";
		/* docker's needDigest: --digests, or a format naming {{.Digest}} */
		if ((digests || (format && strstr(format, "{{.Digest}}"))) && row->name) {
			json_t *j = inspect_object(s, idarg);
			json_t *rd = json_object_get(j, "RepoDigests");
			for (size_t d = 0; d < json_array_size(rd); d++) {
				const char *x = json_string_value(json_array_get(rd, d)), *at_sign = x ? strchr(x, '@') : NULL;
				if (at_sign && (size_t)(at_sign - x) == strlen(repo) && !strncmp(x, repo, strlen(repo)))
					snprintf(digest, sizeof digest, "%s", at_sign + 1);
			}
			json_decref(j);
		}
		cli_human_size(size, sizeof size, row->size);
		cli_human_since(since, sizeof since, row->created);
		if (fmt) {
			created_at(at, sizeof at, row->created);
			json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "Containers", "N/A",
					      "CreatedAt", at, "CreatedSince", since, "Digest", digest, "ID", id,
					      "Repository", repo, "SharedSize", "N/A", "Size", size, "Tag", tag,
					      "UniqueSize", "N/A", "VirtualSize", size);
			/* {{.Platforms}} (not docker's): the platforms of the image the store has, comma-separated */
			if (o && strstr(format, ".Platforms")) {
				ib_image_platform_list *pl = NULL;
				ib_buf pb = IB_BUF_INIT;
				if (ib_store_image_platforms(&pl, s, &row->manifest) == 0) {
					for (size_t q = 0; q < ib_image_platform_list_count(pl); q++) {
						const ib_image_platform *ip = ib_image_platform_list_get(pl, q);
						if (ip->available && *ip->platform && pb.size)
							ib_buf_puts(&pb, ",");
						if (ip->available && *ip->platform)
							ib_buf_puts(&pb, ip->platform);
					}
				}
				ib_error_clear();
				json_object_set_new(o, "Platforms", json_string(pb.size ? pb.ptr : ""));
				ib_image_platform_list_free(pl);
				ib_buf_dispose(&pb);
			}
			int rc = o ? cli_format_row(fmt, o) : -1;
			json_decref(o);
			if (rc < 0) {
				status = 1;
				break;
			}
			continue;
		}
		if (digests)
			printf("%-40s %-16s %-72s %-14s %-20s %s\n", repo, tag, digest, id, since, size);
		else
			printf("%-40s %-16s %-14s %-20s %s\n", repo, tag, id, since, size);
	}
	if (tree && status == 0 && print_tree(s, list, tree_rows, ntree) < 0)
		status = 1;
out:
	if (fmt && cli_format_end(fmt) < 0)
		status = 1;
	free(tree_rows);
	json_decref(headers);
	ib_image_list_free(list);
	ib_reference_free(filter);
	free(filter_args);
	free(flt.ref);
	free(flt.label);
	return status;
}

const cli_option cli_opts_inspect[] = {
	{ "format", 'f', 1, "FORMAT", "Format output: json, or a Go template ({{.Id}}, {{json .Config}}...)" },
	{ "type", 0, 1, "TYPE", "Only inspect objects of the given type: image or container" },
	{ "platform", 0, 1, "OS/ARCH", "The image of this platform of a multi-platform image (never another's; without it: the host platform's, else one the store has)" },
	{ NULL, 0, 0, NULL, NULL },
};
enum { INS_FORMAT, INS_TYPE, INS_PLATFORM };

/* A container as docker inspect shows one, with the keys the store knows. */
static json_t *container_object(const ib_container_record *c)
{
	char image[IB_DIGEST_STRLEN], name[512];
	ib_digest_fmt(image, &c->image_id);
	snprintf(name, sizeof name, "/%s", c->name ? c->name : "");
	/* the store's state is "running", "created", "exited (CODE)"...: docker's Status and ExitCode */
	const char *state = c->state ? c->state : "";
	char status[64];
	int code = 0;
	snprintf(status, sizeof status, "%.*s", (int)strcspn(state, " "), state);
	const char *paren = strchr(state, '(');
	if (paren)
		code = atoi(paren + 1);
	return json_pack("{s:s,s:s,s:{s:s,s:b,s:i},s:s,s:s,s:{s:s}}", "Id", c->id, "Created",
			 c->created ? c->created : "", "State", "Status", status, "Running", !strcmp(status, "running"),
			 "ExitCode", code, "Image", image, "Name", c->name ? name : "", "Config", "Image",
			 c->image_name ? c->image_name : image);
}

int cmd_inspect(ib_cli *cli, int argc, char **argv)
{
	int i = 1, k, want_image = 1, want_container = 1;
	const char *v, *format = NULL, *platform = NULL;
	while ((k = cli_next_option(cli, argc, argv, &i, cli_opts_inspect, &v)) >= 0) {
		if (k == INS_FORMAT) {
			format = v;
		} else if (k == INS_PLATFORM) {
			platform = v;
			want_container = 0;
		} else if (!strcmp(v, "image")) {
			want_container = 0;
		} else if (!strcmp(v, "container")) {
			want_image = 0;
		} else {
			fprintf(stderr, "imagebuild inspect: \"%s\" is not a valid value for --type (image, container)\n", v);
			return CLI_EXIT_ERROR;
		}
	}
	if (k == -2 || i >= argc)
		return cli_usage(cli);
	cli_format *fmt = NULL;
	if (format && strcmp(format, "json") && !(fmt = cli_format_new(format, "", NULL)))
		return CLI_EXIT_ERROR;
	ib_store *s = cli_store(cli);
	if (!s) {
		cli_format_end(fmt);
		return 1;
	}
	int status = 0;
	json_t *all = json_array();
	for (; i < argc; i++) {
		json_t *obj = NULL;
		ib_image *img = NULL;
		ib_container_record *rec = NULL;
		if (want_image && ib_store_image_lookup_platform(&img, s, argv[i], platform) == 0) {
			ib_buf b = IB_BUF_INIT;
			if (ib_image_inspect_json(&b, img) < 0)
				status = cli_fail(argv[i]);
			else if (!(obj = json_loads(b.ptr, 0, NULL)))
				status = 1;
			ib_buf_dispose(&b);
			ib_image_free(img);
		} else if (want_container && ib_store_container_get(&rec, s, argv[i]) == 0) {
			obj = container_object(rec);
			ib_container_record_free(rec);
		} else {
			ib_error_clear();
			fprintf(stderr, "imagebuild: Error: No such %s: %s\n",
				want_image && want_container ? "object" : want_image ? "image" : "container", argv[i]);
			status = 1;
			continue;
		}
		if (!obj)
			continue;
		if (fmt) {
			if (cli_format_row(fmt, obj) < 0)
				status = 1;
			json_decref(obj);
		} else {
			json_array_append_new(all, obj);
		}
	}
	if (fmt) {
		if (cli_format_end(fmt) < 0)
			status = 1;
	} else {
		/* as docker: the array, indented (also for --format json) */
		char *d = json_dumps(all, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
		printf("%s\n", d ? d : "[]");
		free(d);
	}
	json_decref(all);
	return status;
}

const cli_option cli_opts_history[] = {
	{ "no-trunc", 0, 0, NULL, "Don't truncate output" },
	{ "quiet", 'q', 0, NULL, "Only show image IDs" },
	{ "format", 0, 1, "FORMAT", "Format output: table, table TEMPLATE, json, or a Go template ({{.ID}}...)" },
	{ "human", 'H', 0, NULL, "Print sizes and dates in human readable format (the default; --human=false is refused)", 1 },
	{ NULL, 0, 0, NULL, NULL },
};
enum { HIS_NO_TRUNC, HIS_QUIET, HIS_FORMAT, HIS_HUMAN };

int cmd_history(ib_cli *cli, int argc, char **argv)
{
	const cli_option *opts = cli_opts_history;
	int i = 1, k, notrunc = 0, quiet = 0, status = 0;
	const char *v, *format = NULL;
	while ((k = cli_next_option(cli, argc, argv, &i, opts, &v)) >= 0) {
		notrunc |= k == HIS_NO_TRUNC;
		quiet |= k == HIS_QUIET;
		if (k == HIS_FORMAT)
			format = v;
	}
	if (k == -2 || argc - i != 1)
		return cli_usage(cli);
	cli_format *fmt = NULL;
	json_t *headers = NULL;
	if (format && !quiet) {
		headers = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "ID", "IMAGE", "CreatedSince", "CREATED", "CreatedAt",
				    "CREATED AT", "CreatedBy", "CREATED BY", "Size", "SIZE", "Comment", "COMMENT");
		fmt = cli_format_new(format, "{{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}", headers);
		if (!fmt) {
			json_decref(headers);
			return CLI_EXIT_ERROR;
		}
	}
	ib_store *s = cli_store(cli);
	ib_image *img = NULL;
	if (!s) {
		status = 1;
		goto out;
	}
	if (ib_store_image_lookup(&img, s, argv[i]) < 0) {
		status = cli_fail(NULL);
		goto out;
	}
	char hex[IB_DIGEST_HEXLEN + 1];
	ib_digest_hex(hex, ib_image_id(img));
	if (!quiet && !fmt)
		printf("%-14s %-20s %-45s %-10s %s\n", "IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT");
	for (size_t h = 0; h < ib_image_history_count(img); h++) {
		ib_image_history_item it = IB_IMAGE_HISTORY_ITEM_INIT;
		ib_image_history_get(&it, img, h);
		char id[80], since[64], size[32], by[1024], at[64];
		if (h == 0)
			snprintf(id, sizeof id, notrunc ? "sha256:%s" : "%.12s", hex);
		else
			snprintf(id, sizeof id, "<missing>");
		if (quiet) {
			printf("%s\n", id);
			continue;
		}
		cli_human_since(since, sizeof since, it.created);
		/* as docker history: the content of the layer's files, not its tar */
		uint64_t content = 0;
		if (it.has_layer && ib_store_layer_content_size(&content, s, &it.layer) < 0) {
			status = cli_fail(NULL);
			goto out;
		}
		cli_human_size(size, sizeof size, content);
		snprintf(by, sizeof by, "%s", it.created_by ? it.created_by : "");
		if (!notrunc && strlen(by) > 45)
			strcpy(by + 42, "...");
		if (fmt) {
			created_at(at, sizeof at, it.created);
			json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "Comment", it.comment ? it.comment : "",
					      "CreatedAt", at, "CreatedBy", by, "CreatedSince", since, "ID", id, "Size", size);
			int rc = o ? cli_format_row(fmt, o) : -1;
			json_decref(o);
			if (rc < 0) {
				status = 1;
				goto out;
			}
			continue;
		}
		printf("%-14s %-20s %-45s %-10s %s\n", id, since, by, size, it.comment ? it.comment : "");
	}
out:
	if (fmt && cli_format_end(fmt) < 0)
		status = 1;
	json_decref(headers);
	ib_image_free(img);
	return status;
}

const cli_option cli_opts_tag[] = {
	{ NULL, 0, 0, NULL, NULL },
};

int cmd_tag(ib_cli *cli, int argc, char **argv)
{
	int i = 1, k;
	const char *v;
	while ((k = cli_next_option(cli, argc, argv, &i, cli_opts_tag, &v)) >= 0)
		;
	if (k == -2 || argc - i != 2)
		return cli_usage(cli);
	ib_store *s = cli_store(cli);
	if (!s)
		return 1;
	if (ib_store_tag(s, argv[i], argv[i + 1]) < 0)
		return cli_fail(NULL);
	return 0;
}

const cli_option cli_opts_rmi[] = {
	{ "force", 'f', 0, NULL, "Force removal of the image" },
	{ NULL, 0, 0, NULL, NULL },
};

int cmd_rmi(ib_cli *cli, int argc, char **argv)
{
	const cli_option *opts = cli_opts_rmi;
	int i = 1, k, status = 0;
	unsigned int flags = 0;
	const char *v;
	while ((k = cli_next_option(cli, argc, argv, &i, opts, &v)) >= 0)
		flags |= IB_STORE_REMOVE_FORCE;
	if (k == -2 || i >= argc)
		return cli_usage(cli);
	ib_store *s = cli_store(cli);
	if (!s)
		return 1;
	for (; i < argc; i++) {
		ib_buf report = IB_BUF_INIT;
		if (ib_store_image_remove(s, argv[i], flags, &report) < 0)
			status = cli_fail(NULL);
		else
			fputs(report.ptr ? report.ptr : "", stdout);
		ib_buf_dispose(&report);
	}
	return status;
}
