/*
 * plan-print: parse and plan a Dockerfile, and print the stages in build
 * order with their base, the stages they need and their steps. Nothing runs
 * and no store is needed.
 *
 *   plan-print DOCKERFILE [TARGET [NAME=VALUE...]]
 */
#include <imagebuild.h>

#include <stdio.h>
#include <stdlib.h>

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;
	if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (buf = malloc((size_t)n + 1)) != NULL && fread(buf, 1, (size_t)n, f) == (size_t)n) {
		*len = (size_t)n;
	} else {
		free(buf);
		buf = NULL;
		perror(path);
	}
	if (f)
		fclose(f);
	return buf;
}

static const char *const base_kinds[] = { "scratch", "stage", "image" };

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s DOCKERFILE [TARGET [NAME=VALUE...]]\n", argv[0]);
		return 2;
	}
	size_t len;
	char *text = read_file(argv[1], &len);
	if (!text)
		return 1;

	ib_parse_options popts = IB_PARSE_OPTIONS_INIT;
	ib_plan_options opts = IB_PLAN_OPTIONS_INIT;
	popts.filename = argv[1];
	opts.target = argc > 2 ? argv[2] : NULL;
	opts.build_args = (const char *const *)argv + 3;  /* argv ends with NULL */
	if (argc <= 3)
		opts.build_args = NULL;

	ib_dockerfile *df = NULL;
	ib_instructions *ins = NULL;
	ib_plan *plan = NULL;
	int rc = ib_dockerfile_parse(&df, text, len, &popts);   /* the syntax tree */
	if (rc == 0)
		rc = ib_instructions_parse(&ins, df);            /* typed stages */
	if (rc == 0)
		rc = ib_plan_new(&plan, df, ins, &opts);         /* what to build, in order */
	if (rc < 0) {
		fprintf(stderr, "plan-print: %s\n", ib_error_last()->message);
	} else {
		for (size_t i = 0; i < ib_plan_stage_count(plan); i++) {
			const ib_plan_stage *s = ib_plan_stage_at(plan, i);
			printf("stage %zu", s->index);
			if (s->name)
				printf(" \"%s\"", s->name);
			printf(" from %s %s", base_kinds[s->base_kind], s->base);
			printf(", level %zu, needs [", s->level);
			for (size_t k = 0; k < s->dep_count; k++)
				printf("%s%zu", k ? " " : "", s->deps[k]);
			printf("]\n");
			for (size_t k = 0; k < s->stage->instruction_count; k++) {
				const ib_instruction *in = s->stage->instructions[k];
				printf("  %zu/%zu line %d: %s\n", k + 1, s->stage->instruction_count,
				       in->line, in->original);
			}
		}
		printf("target: stage %zu\n", ib_plan_target(plan)->index);
	}
	ib_plan_free(plan);
	ib_instructions_free(ins);
	ib_dockerfile_free(df);
	free(text);
	return rc < 0 ? 1 : 0;
}
