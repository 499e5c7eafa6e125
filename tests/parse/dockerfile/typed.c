/* The typed level: stages, every instruction and flag, errors, a single instruction. */
#include "tests.h"

typedef struct {
	ib_dockerfile *df;
	ib_instructions *ins;
} typed_df;

static typed_df typed_ok(const char *text)
{
	typed_df t = { parse_ok(text), NULL };
	if (ib_instructions_parse(&t.ins, t.df) < 0)
		fail_msg("typed parse failed: %s", ib_error_last()->message);
	return t;
}

static void typed_free(typed_df *t)
{
	ib_instructions_free(t->ins);
	ib_dockerfile_free(t->df);
}

/* The i-th instruction of the first stage. */
static const ib_instruction *first_stage(const typed_df *t, size_t i)
{
	const ib_stage *st = ib_instructions_stage(t->ins, 0);
	assert_non_null(st);
	assert_true(i < st->instruction_count);
	return st->instructions[i];
}

static void typed_error(const char *text, const char *needle)
{
	ib_dockerfile *df = parse_ok(text);
	ib_instructions *ins = (ib_instructions *)1;
	ib_assert_error_contains(ib_instructions_parse(&ins, df), needle);
	assert_int_equal(ib_error_last()->code, IB_ESYNTAX);
	assert_null(ins);
	ib_dockerfile_free(df);
}

static void stages_and_meta_args(void **state)
{
	(void)state;
	typed_df t = typed_ok("ARG BASE=alpine V\n"
			      "FROM --platform=linux/arm64 ${BASE} AS Builder\n"
			      "RUN make\n"
			      "FROM scratch\n"
			      "COPY --from=builder /out /\n");
	assert_int_equal(ib_instructions_meta_arg_count(t.ins), 1);
	const ib_instruction *arg = ib_instructions_meta_arg(t.ins, 0);
	assert_int_equal(arg->kind, IB_INSTR_ARG);
	assert_int_equal(ib_instruction_arg_count(arg), 2);
	assert_string_equal(ib_instruction_arg(arg, 0)->name, "BASE");
	assert_string_equal(ib_instruction_arg(arg, 0)->default_value, "alpine");
	assert_true(ib_instruction_arg(arg, 0)->has_default);
	assert_string_equal(ib_instruction_arg(arg, 1)->name, "V");
	assert_false(ib_instruction_arg(arg, 1)->has_default);
	assert_null(ib_instruction_arg(arg, 1)->default_value);

	assert_int_equal(ib_instructions_stage_count(t.ins), 2);
	const ib_stage *s0 = ib_instructions_stage(t.ins, 0), *s1 = ib_instructions_stage(t.ins, 1);
	assert_string_equal(s0->base, "${BASE}");
	assert_string_equal(s0->name, "builder");
	assert_string_equal(s0->platform, "linux/arm64");
	assert_int_equal(s0->line, 2);
	assert_int_equal(s0->instruction_count, 1);
	assert_int_equal(s0->from->kind, IB_INSTR_FROM);
	assert_string_equal(s1->base, "scratch");
	assert_null(s1->name);
	assert_null(s1->platform);
	assert_int_equal(s1->index, 1);
	assert_ptr_equal(ib_instructions_stage_by_name(t.ins, "BUILDER"), s0);
	assert_null(ib_instructions_stage_by_name(t.ins, "nope"));
	assert_null(ib_instructions_stage(t.ins, 2));
	const ib_instruction *cp = s1->instructions[0];
	assert_string_equal(cp->u.copy.from, "builder");
	assert_int_equal(cp->line, 5);
	assert_string_equal(ib_instruction_kind_name(cp->kind), "COPY");
	assert_null(ib_instruction_kind_name((ib_instruction_kind)99));
	typed_free(&t);
}

static void run_flags_and_mounts(void **state)
{
	(void)state;
	typed_df t = typed_ok("FROM a\n"
			      "RUN --mount=type=cache,target=/root/.cache,id=go,sharing=locked "
			      "--mount=type=secret,id=tok,required --mount=target=/src,rw "
			      "--mount=type=bind,from=b,source=/x,dst=/y,ro=false "
			      "--network=none --security=insecure make all\n"
			      "RUN [\"sh\", \"-c\", \"x\"]\n"
			      "RUN --mount=type=cache,target=/c,sharing=Private true\n");
	const ib_instruction *in = first_stage(&t, 0);
	const ib_instr_run *r = &in->u.run;
	/* BuildKit takes sharing= in any case */
	assert_string_equal(ib_instruction_mount(first_stage(&t, 2), 0)->sharing, "Private");
	assert_int_equal(r->args.count, 1);
	assert_string_equal(r->args.items[0], "make all");
	assert_false(r->json);
	assert_string_equal(r->network, "none");
	assert_string_equal(r->security, "insecure");
	assert_int_equal(ib_instruction_mount_count(in), 4);
	assert_int_equal(ib_instruction_mount(in, 0)->type, IB_RUN_MOUNT_CACHE);
	assert_string_equal(ib_instruction_mount(in, 0)->target, "/root/.cache");
	assert_string_equal(ib_instruction_mount(in, 0)->id, "go");
	assert_string_equal(ib_instruction_mount(in, 0)->sharing, "locked");
	assert_false(ib_instruction_mount(in, 0)->readonly);
	assert_string_equal(ib_instruction_mount(in, 0)->raw, "type=cache,target=/root/.cache,id=go,sharing=locked");
	assert_int_equal(ib_instruction_mount(in, 1)->type, IB_RUN_MOUNT_SECRET);
	assert_true(ib_instruction_mount(in, 1)->required);
	assert_true(ib_instruction_mount(in, 1)->readonly);
	assert_null(ib_instruction_mount(in, 1)->target);
	assert_int_equal(ib_instruction_mount(in, 2)->type, IB_RUN_MOUNT_BIND);
	assert_false(ib_instruction_mount(in, 2)->readonly);
	assert_string_equal(ib_instruction_mount(in, 3)->from, "b");
	assert_string_equal(ib_instruction_mount(in, 3)->source, "/x");
	assert_string_equal(ib_instruction_mount(in, 3)->target, "/y");
	assert_false(ib_instruction_mount(in, 3)->readonly);
	const ib_instr_run *j = &first_stage(&t, 1)->u.run;
	assert_true(j->json);
	assert_int_equal(j->args.count, 3);
	assert_string_equal(j->args.items[2], "x");
	typed_free(&t);

	typed_error("FROM a\nRUN --mount=type=nfs,target=/x true\n", "Dockerfile:2: RUN: --mount: unsupported mount type");
	typed_error("FROM a\nRUN --mount=type=cache true\n", "requires a target");
	typed_error("FROM a\nRUN --mount=target=/x,color=red true\n", "unexpected key `color`");
	/* mode/uid/gid: unsigned 32-bit numbers (octal mode), only where a file is made */
	typed_error("FROM a\nRUN --mount=type=cache,target=/c,uid=1000x true\n",
		    "Dockerfile:2: RUN: --mount: invalid value `1000x` for uid");
	typed_error("FROM a\nRUN --mount=type=cache,target=/c,gid=4294967296 true\n", "invalid value `4294967296` for gid");
	typed_error("FROM a\nRUN --mount=type=cache,target=/c,gid=-1 true\n", "invalid value `-1` for gid");
	typed_error("FROM a\nRUN --mount=type=secret,id=s,mode=0800 true\n", "invalid value `0800` for mode");
	typed_error("FROM a\nRUN --mount=type=bind,target=/c,uid=0 true\n", "uid not allowed for bind mounts");
	typed_error("FROM a\nRUN --mount=type=tmpfs,target=/c,mode=0755 true\n", "mode not allowed for tmpfs mounts");
	typed_error("FROM a\nRUN --network=bridge true\n", "unsupported network mode");
	typed_error("FROM a\nRUN --security=x true\n", "unsupported security mode");
	typed_error("FROM a\nRUN --mount true\n", "missing a value on flag: --mount");
	typed_error("FROM a\nRUN --bogus=1 true\n", "RUN: unknown flag: --bogus");
	typed_error("FROM a\nRUN --network=none --network=host true\n", "duplicate flag");
	typed_error("FROM a\nRUN\n", "RUN requires at least one argument");
}

static void run_heredoc(void **state)
{
	(void)state;
	typed_df t = typed_ok("FROM a\nRUN <<EOF\necho hi\nEOF\n");
	const ib_instruction *in = first_stage(&t, 0);
	assert_int_equal(ib_instruction_heredoc_count(in), 1);
	assert_string_equal(ib_instruction_heredoc(in, 0)->content, "echo hi\n");
	/* the accessors: out of range, another kind, NULL */
	assert_null(ib_instruction_heredoc(in, 1));
	assert_int_equal(ib_instruction_mount_count(in), 0);
	assert_null(ib_instruction_mount(in, 0));
	assert_int_equal(ib_instruction_kv_count(in), 0);
	assert_null(ib_instruction_kv(in, 0));
	assert_int_equal(ib_instruction_arg_count(in), 0);
	assert_null(ib_instruction_arg(in, 0));
	assert_int_equal(ib_instruction_heredoc_count(NULL), 0);
	assert_null(ib_instruction_heredoc(NULL, 0));
	typed_free(&t);
}

static void cmd_entrypoint_shell(void **state)
{
	(void)state;
	typed_df t = typed_ok("FROM a\nCMD [\"cat\", \"/x\"]\nENTRYPOINT exec app\nSHELL [\"/bin/bash\", \"-c\"]\nCMD []\n");
	const ib_instruction *cmd = first_stage(&t, 0);
	assert_int_equal(cmd->kind, IB_INSTR_CMD);
	assert_true(cmd->u.cmd.json);
	assert_int_equal(cmd->u.cmd.args.count, 2);
	const ib_instruction *ep = first_stage(&t, 1);
	assert_int_equal(ep->kind, IB_INSTR_ENTRYPOINT);
	assert_false(ep->u.cmd.json);
	assert_string_equal(ep->u.cmd.args.items[0], "exec app");
	const ib_instruction *sh = first_stage(&t, 2);
	assert_int_equal(sh->kind, IB_INSTR_SHELL);
	assert_string_equal(sh->u.cmd.args.items[1], "-c");
	assert_int_equal(first_stage(&t, 3)->u.cmd.args.count, 0);
	typed_free(&t);
	typed_error("FROM a\nSHELL /bin/sh -c\n", "SHELL requires the arguments to be in JSON form");
	typed_error("FROM a\nSHELL []\n", "SHELL requires at least one argument");
	typed_error("FROM a\nCMD --x echo\n", "CMD: unknown flag: --x");
}

static void env_label_arg(void **state)
{
	(void)state;
	typed_df t = typed_ok("FROM a\nENV A=1 B=\"x y\"\nENV C d e\nLABEL k=v\nARG X=\"q\"\n");
	const ib_instruction *env = first_stage(&t, 0);
	assert_int_equal(ib_instruction_kv_count(env), 2);
	assert_string_equal(ib_instruction_kv(env, 1)->key, "B");
	assert_string_equal(ib_instruction_kv(env, 1)->value, "\"x y\"");  /* raw, quotes kept */
	const ib_instruction *old = first_stage(&t, 1);
	assert_int_equal(ib_instruction_kv_count(old), 1);
	assert_string_equal(ib_instruction_kv(old, 0)->value, "d e");
	assert_int_equal(first_stage(&t, 2)->kind, IB_INSTR_LABEL);
	assert_string_equal(ib_instruction_arg(first_stage(&t, 3), 0)->default_value, "\"q\"");
	typed_free(&t);
	typed_error("FROM a\nENV\n", "ENV requires at least one argument");
	typed_error("FROM a\nENV =x\n", "ENV names can not be blank");
	typed_error("FROM a\nARG\n", "ARG requires at least one argument");
	typed_error("FROM a\nARG =x\n", "ARG names can not be blank");
	typed_error("FROM a\nLABEL --x=1 a=b\n", "LABEL: unknown flag");
}

static void copy_and_add(void **state)
{
	(void)state;
	typed_df t = typed_ok("FROM a\n"
			      "COPY --chown=1:2 --chmod=755 --link --parents --exclude=*.md --exclude=.git "
			      "a b <<EOF /dst/\nhello\nEOF\n"
			      "ADD --checksum=sha256:abc --keep-git-dir=true --link=false https://x/y.tgz /\n"
			      "COPY [\"a b\", \"/c d/\"]\n");
	const ib_instruction *in = first_stage(&t, 0);
	const ib_instr_copy *c = &in->u.copy;
	assert_int_equal(c->sources.count, 2);
	assert_string_equal(c->sources.items[1], "b");
	assert_string_equal(c->dest, "/dst/");
	assert_int_equal(ib_instruction_heredoc_count(in), 1);
	assert_string_equal(ib_instruction_heredoc(in, 0)->name, "EOF");
	assert_string_equal(ib_instruction_heredoc(in, 0)->content, "hello\n");
	assert_string_equal(c->chown, "1:2");
	assert_string_equal(c->chmod, "755");
	assert_true(c->link);
	assert_true(c->parents);
	assert_int_equal(c->excludes.count, 2);
	assert_string_equal(c->excludes.items[1], ".git");
	assert_null(c->from);
	const ib_instr_copy *a = &first_stage(&t, 1)->u.copy;
	assert_string_equal(a->checksum, "sha256:abc");
	assert_true(a->keep_git_dir);
	assert_false(a->link);
	assert_string_equal(a->sources.items[0], "https://x/y.tgz");
	const ib_instr_copy *j = &first_stage(&t, 2)->u.copy;
	assert_true(j->json);
	assert_string_equal(j->sources.items[0], "a b");
	assert_string_equal(j->dest, "/c d/");
	typed_free(&t);
	typed_error("FROM a\nCOPY x\n", "COPY requires at least two arguments");
	typed_error("FROM a\nADD --from=b x y\n", "ADD: unknown flag: --from");
	typed_error("FROM a\nCOPY --checksum=x a b\n", "COPY: unknown flag: --checksum");
	typed_error("FROM a\nCOPY --link=maybe a b\n", "expecting boolean value for flag --link");
	typed_error("FROM a\nCOPY x <<EOF\nhi\nEOF\n", "cannot have a heredoc as the destination");
}

static void simple_values(void **state)
{
	(void)state;
	typed_df t = typed_ok("FROM a\nUSER app:app\nWORKDIR /srv/x\nSTOPSIGNAL SIGTERM\n"
			      "MAINTAINER me <m@e>\nEXPOSE 80 443/udp\nVOLUME [\"/a\", \"/b\"]\nVOLUME /c /d\n");
	assert_string_equal(first_stage(&t, 0)->u.value, "app:app");
	assert_string_equal(first_stage(&t, 1)->u.value, "/srv/x");
	assert_string_equal(first_stage(&t, 2)->u.value, "SIGTERM");
	assert_string_equal(first_stage(&t, 3)->u.value, "me <m@e>");
	assert_int_equal(first_stage(&t, 4)->u.list.count, 2);
	assert_string_equal(first_stage(&t, 4)->u.list.items[1], "443/udp");
	assert_string_equal(first_stage(&t, 5)->u.list.items[1], "/b");
	assert_string_equal(first_stage(&t, 6)->u.list.items[0], "/c");
	typed_free(&t);
	typed_error("FROM a\nUSER\n", "USER requires exactly one argument");
	typed_error("FROM a\nWORKDIR\n", "WORKDIR requires exactly one argument");
	typed_error("FROM a\nEXPOSE\n", "EXPOSE requires at least one argument");
	typed_error("FROM a\nVOLUME [\" \"]\n", "VOLUME specified can not be an empty string");
	typed_error("FROM a\nSTOPSIGNAL\n", "STOPSIGNAL requires exactly one argument");
}

static void onbuild(void **state)
{
	(void)state;
	typed_df t = typed_ok("FROM a\nONBUILD   RUN make  \n");
	const ib_instruction *o = first_stage(&t, 0);
	assert_string_equal(o->u.onbuild.trigger, "RUN make");
	assert_string_equal(o->u.onbuild.keyword, "RUN");
	typed_free(&t);
	typed_error("FROM a\nONBUILD ONBUILD RUN x\n", "Chaining ONBUILD");
	typed_error("FROM a\nONBUILD FROM b\n", "FROM isn't allowed as an ONBUILD trigger");
	typed_error("FROM a\nONBUILD MAINTAINER b\n", "MAINTAINER isn't allowed");
	typed_error("FROM a\nONBUILD\n", "ONBUILD requires at least one argument");
	typed_error("FROM a\nONBUILD FOO x\n", "unknown instruction: FOO");
}

static void healthcheck(void **state)
{
	(void)state;
	typed_df t = typed_ok("FROM a\n"
			      "HEALTHCHECK --interval=1m30s --timeout=500ms --start-period=1.5s "
			      "--start-interval=2s --retries=3 CMD curl -f http://x/\n"
			      "HEALTHCHECK CMD [\"/bin/check\", \"-q\"]\n"
			      "HEALTHCHECK NONE\n");
	const ib_instr_healthcheck *h = &first_stage(&t, 0)->u.healthcheck;
	assert_false(h->none);
	assert_int_equal(h->test.count, 2);
	assert_string_equal(h->test.items[0], "CMD-SHELL");
	assert_string_equal(h->test.items[1], "curl -f http://x/");
	assert_true(h->interval == 90000000000LL);
	assert_true(h->timeout == 500000000LL);
	assert_true(h->start_period == 1500000000LL);
	assert_true(h->start_interval == 2000000000LL);
	assert_int_equal(h->retries, 3);
	const ib_instr_healthcheck *j = &first_stage(&t, 1)->u.healthcheck;
	assert_string_equal(j->test.items[0], "CMD");
	assert_string_equal(j->test.items[2], "-q");
	assert_true(j->interval == 0);
	const ib_instr_healthcheck *n = &first_stage(&t, 2)->u.healthcheck;
	assert_true(n->none);
	assert_string_equal(n->test.items[0], "NONE");
	typed_free(&t);
	typed_error("FROM a\nHEALTHCHECK NONE x\n", "HEALTHCHECK NONE takes no arguments");
	typed_error("FROM a\nHEALTHCHECK CMD\n", "Missing command after HEALTHCHECK CMD");
	typed_error("FROM a\nHEALTHCHECK CONNECT x\n", "Unknown type \"CONNECT\" in HEALTHCHECK");
	typed_error("FROM a\nHEALTHCHECK --interval=5 CMD x\n", "invalid duration `5`");
	typed_error("FROM a\nHEALTHCHECK --interval=10us CMD x\n", "cannot be less than 1ms");
	typed_error("FROM a\nHEALTHCHECK --retries=-1 CMD x\n", "--retries cannot be negative");
	typed_error("FROM a\nHEALTHCHECK --retries=x CMD x\n", "invalid --retries value");
	typed_error("FROM a\nHEALTHCHECK --color=red CMD x\n", "unknown flag: --color");
	typed_error("FROM a\nHEALTHCHECK\n", "HEALTHCHECK requires at least one argument");

	int64_t ns;
	assert_int_equal(ib_parse_duration(&ns, "1h2m3.5s"), 0);
	assert_true(ns == 3723500000000LL);
	assert_int_equal(ib_parse_duration(&ns, "0"), 0);
	assert_true(ns == 0);
	assert_int_equal(ib_parse_duration(&ns, "-1.5ms"), 0);
	assert_true(ns == -1500000LL);
	assert_int_equal(ib_parse_duration(&ns, "1x"), IB_EINVALID);
	assert_int_equal(ib_parse_duration(&ns, ""), IB_EINVALID);
}

static void meaning_errors(void **state)
{
	(void)state;
	typed_error("FROM a\nFOO bar\n", "Dockerfile:2: unknown instruction: FOO");
	typed_error("ARG x\nRUN true\n", "Dockerfile:2: RUN before the first FROM");
	typed_error("FROM a b\n", "FROM requires either one or three arguments");
	typed_error("FROM a TO b\n", "expected `AS`");
	typed_error("FROM a AS 1x\n", "invalid name for build stage");
	/* a duplicate stage name is a build check's warning (DuplicateStageName), not an error */
	typed_df dup = typed_ok("FROM a AS x\nFROM b AS X\n");
	assert_int_equal(ib_instructions_stage_count(dup.ins), 2);
	typed_free(&dup);
	typed_error("FROM --plat=x a\n", "FROM: unknown flag: --plat");
	/* without FROM: only meta args, no stage */
	typed_df t = typed_ok("ARG a\n");
	assert_int_equal(ib_instructions_stage_count(t.ins), 0);
	assert_int_equal(ib_instructions_meta_arg_count(t.ins), 1);
	assert_null(ib_instructions_meta_arg(t.ins, 1));
	typed_free(&t);
	assert_int_equal(ib_instructions_parse(NULL, NULL), IB_EINVALID);
	ib_instructions_free(NULL);
}

static void single_instruction(void **state)
{
	(void)state;
	ib_instruction *in = NULL;
	assert_int_equal(ib_instruction_parse_single(&in, "CMD [\"cat\",\"/app.txt\"]", NULL), 0);
	assert_int_equal(in->kind, IB_INSTR_CMD);
	assert_true(in->u.cmd.json);
	assert_int_equal(in->u.cmd.args.count, 2);
	assert_string_equal(in->u.cmd.args.items[1], "/app.txt");
	assert_int_equal(in->line, 1);
	assert_non_null(in->node);
	ib_instruction_free(in);

	assert_int_equal(ib_instruction_parse_single(&in, "ENV A=1 B=2", NULL), 0);
	assert_int_equal(ib_instruction_kv_count(in), 2);
	ib_instruction_free(in);

	ib_parse_options opts = IB_PARSE_OPTIONS_INIT;
	opts.filename = "commit -c";
	ib_assert_error_contains(ib_instruction_parse_single(&in, "BOGUS x", &opts),
				 "commit -c:1: unknown instruction: BOGUS");
	assert_null(in);
	ib_assert_error_contains(ib_instruction_parse_single(&in, "CMD a\nCMD b", NULL),
				 "expected a single instruction, found 2");
	ib_assert_error_contains(ib_instruction_parse_single(&in, "", NULL), "file with no instructions");
	assert_int_equal(ib_instruction_parse_single(&in, NULL, NULL), IB_EINVALID);
	ib_instruction_free(NULL);
}

DEFINE_GROUP(typed_tests,
	cmocka_unit_test(stages_and_meta_args),
	cmocka_unit_test(run_flags_and_mounts),
	cmocka_unit_test(run_heredoc),
	cmocka_unit_test(cmd_entrypoint_shell),
	cmocka_unit_test(env_label_arg),
	cmocka_unit_test(copy_and_add),
	cmocka_unit_test(simple_values),
	cmocka_unit_test(onbuild),
	cmocka_unit_test(healthcheck),
	cmocka_unit_test(meaning_errors),
	cmocka_unit_test(single_instruction))
