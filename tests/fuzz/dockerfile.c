/*
 * Dockerfile bytes: the syntax tree (lexer, heredocs, JSON forms, parser
 * directives), its dump, the typed instructions and the plan (stages, ARGs,
 * expansion of FROM). Every accessor is walked so what the parser built is
 * read back whole.
 */
#include "fuzz.h"
#include "imagebuild/parse.h"
#include "imagebuild/plan.h"
#include "imagebuild/errors.h"

static void walk_node(const ib_node *n)
{
	if (!n)
		return;
	IB_FUZZ_CHECK(ib_node_keyword(n) && ib_node_keyword_raw(n) && ib_node_original(n));
	for (size_t i = 0; i < ib_node_flag_count(n); i++)
		IB_FUZZ_CHECK(ib_node_flag(n, i) != NULL);
	for (size_t i = 0; i < ib_node_arg_count(n); i++) {
		size_t len = 0;
		const char *a = ib_node_arg(n, i, &len);
		IB_FUZZ_CHECK(a && a[len] == '\0');
	}
	for (size_t i = 0; i < ib_node_heredoc_count(n); i++) {
		const ib_heredoc *h = ib_node_heredoc(n, i);
		IB_FUZZ_CHECK(h && h->name && h->content && h->content[h->content_len] == '\0');
		ib_buf b = IB_BUF_INIT;
		if (ib_heredoc_chomp(&b, h) == 0)
			IB_FUZZ_CHECK(b.size <= h->content_len);
		ib_buf_dispose(&b);
	}
	IB_FUZZ_CHECK(ib_node_start_line(n) <= ib_node_end_line(n));
	ib_buf b = IB_BUF_INIT;
	(void)ib_node_dump(&b, n);
	ib_buf_dispose(&b);
	walk_node(ib_node_nested(n));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ib_dockerfile *df = NULL;
	if (ib_dockerfile_parse(&df, (const char *)data, size, NULL) < 0)
		return 0;
	IB_FUZZ_CHECK(ib_dockerfile_node_count(df) >= 1);
	for (size_t i = 0; i < ib_dockerfile_node_count(df); i++)
		walk_node(ib_dockerfile_node(df, i));
	for (size_t i = 0; i < ib_dockerfile_warning_count(df); i++)
		IB_FUZZ_CHECK(ib_dockerfile_warning(df, i)->message != NULL);
	(void)ib_dockerfile_directive(df, "syntax");
	(void)ib_dockerfile_directive(df, "escape");
	ib_buf dump = IB_BUF_INIT;
	IB_FUZZ_CHECK(ib_dockerfile_dump(&dump, df) == 0);
	ib_buf_dispose(&dump);

	ib_instructions *ins = NULL;
	if (ib_instructions_parse(&ins, df) == 0) {
		for (size_t i = 0; i < ib_instructions_stage_count(ins); i++) {
			const ib_stage *st = ib_instructions_stage(ins, i);
			IB_FUZZ_CHECK(st && st->from);
			if (st->name)
				IB_FUZZ_CHECK(ib_instructions_stage_by_name(ins, st->name) != NULL);
		}
		static const char *const args[] = { "A=1", "TARGETPLATFORM", NULL };
		ib_plan_options po = IB_PLAN_OPTIONS_INIT;
		po.build_args = args;
		ib_plan *plan = NULL;
		if (ib_plan_new(&plan, df, ins, &po) == 0) {
			IB_FUZZ_CHECK(ib_plan_target(plan) != NULL);
			ib_plan_free(plan);
		}
		ib_instructions_free(ins);
	}
	ib_dockerfile_free(df);

	/* one instruction on its own (commit -c, the Python bindings) */
	char *text = ib_fuzz_cstr(data, size);
	ib_instruction *one = NULL;
	if (ib_instruction_parse_single(&one, text, NULL) == 0)
		ib_instruction_free(one);
	free(text);
	return 0;
}
