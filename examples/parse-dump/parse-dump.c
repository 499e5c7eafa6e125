/*
 * parse-dump: parse a Dockerfile and print its syntax tree in the format of
 * BuildKit's parser test results, one "(instruction ...)" line each.
 *
 *   parse-dump [--lines|--heredocs|--typed] <Dockerfile | ->
 *
 * --lines prints "root/index TAB start TAB end" per instruction, --heredocs
 * the heredocs, --typed the stages and typed instructions (which also
 * checks that every instruction has a meaning). Warnings go to stderr.
 */
#include <imagebuild.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *read_all(FILE *f, size_t *len)
{
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap);
	while (buf) {
		size_t r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (r == 0)
			break;
		if (n == cap) {
			char *bigger = realloc(buf, cap * 2);
			if (!bigger) {
				free(buf);
				return NULL;
			}
			buf = bigger;
			cap *= 2;
		}
	}
	if (buf && ferror(f)) {
		free(buf);
		return NULL;
	}
	*len = n;
	return buf;
}

static void print_lines(const ib_dockerfile *df)
{
	printf("root\t%d\t%d\n", ib_dockerfile_start_line(df), ib_dockerfile_end_line(df));
	for (size_t i = 0; i < ib_dockerfile_node_count(df); i++) {
		const ib_node *n = ib_dockerfile_node(df, i);
		printf("%zu\t%d\t%d\n", i, ib_node_start_line(n), ib_node_end_line(n));
	}
}

static void print_heredocs(const ib_dockerfile *df)
{
	for (size_t i = 0; i < ib_dockerfile_node_count(df); i++) {
		const ib_node *n = ib_dockerfile_node(df, i);
		for (size_t j = 0; j < ib_node_heredoc_count(n); j++) {
			const ib_heredoc *h = ib_node_heredoc(n, j);
			printf("%zu\t%s\t%u\t%s\t%s\t%zu bytes\n", i, h->name, h->fd,
			       h->expand ? "true" : "false", h->chomp ? "true" : "false",
			       h->content_len);
		}
	}
}

static void print_instruction(const ib_instruction *in)
{
	printf("  %d\t%s\t%s\n", in->line, ib_instruction_kind_name(in->kind), in->original);
}

static int print_typed(const ib_dockerfile *df)
{
	ib_instructions *ins;
	if (ib_instructions_parse(&ins, df) < 0)
		return -1;
	for (size_t i = 0; i < ib_instructions_meta_arg_count(ins); i++)
		print_instruction(ib_instructions_meta_arg(ins, i));
	for (size_t i = 0; i < ib_instructions_stage_count(ins); i++) {
		const ib_stage *st = ib_instructions_stage(ins, i);
		printf("stage %zu: %s%s%s%s%s\n", st->index, st->base,
		       st->name ? " AS " : "", st->name ? st->name : "",
		       st->platform ? " --platform=" : "", st->platform ? st->platform : "");
		for (size_t j = 0; j < st->instruction_count; j++)
			print_instruction(st->instructions[j]);
	}
	ib_instructions_free(ins);
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = "", *path = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strncmp(argv[i], "--", 2) && argv[i][2])
			mode = argv[i];
		else
			path = argv[i];
	}
	if (!path) {
		fprintf(stderr, "usage: %s [--lines|--heredocs|--typed] <Dockerfile | ->\n", argv[0]);
		return 2;
	}
	FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	if (!f) {
		perror(path);
		return 1;
	}
	size_t len = 0;
	char *buf = read_all(f, &len);
	if (f != stdin)
		fclose(f);
	if (!buf) {
		fprintf(stderr, "%s: read error\n", path);
		return 1;
	}

	ib_parse_options opts = IB_PARSE_OPTIONS_INIT;
	opts.filename = strcmp(path, "-") ? path : "<stdin>";
	ib_dockerfile *df = NULL;
	ib_buf out = IB_BUF_INIT;
	int rc = ib_dockerfile_parse(&df, buf, len, &opts);
	free(buf);
	if (rc == 0) {
		for (size_t i = 0; i < ib_dockerfile_warning_count(df); i++) {
			const ib_parse_warning *w = ib_dockerfile_warning(df, i);
			fprintf(stderr, "warning: %s:%d: %s\n", opts.filename, w->line, w->message);
		}
		if (!strcmp(mode, "--lines"))
			print_lines(df);
		else if (!strcmp(mode, "--heredocs"))
			print_heredocs(df);
		else if (!strcmp(mode, "--typed"))
			rc = print_typed(df);
		else if ((rc = ib_dockerfile_dump(&out, df)) == 0)
			fwrite(out.ptr ? out.ptr : "", 1, out.size, stdout);
	}
	if (rc < 0)
		fprintf(stderr, "parse-dump: %s\n", ib_error_last()->message);
	ib_buf_dispose(&out);
	ib_dockerfile_free(df);
	return rc < 0 ? 1 : 0;
}
