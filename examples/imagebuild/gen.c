/*
 * imagebuild __gen man DIR | bash | zsh: the man pages and the shell
 * completion, generated from the same command and option tables as
 * --help and the parser (meson runs it at build time and installs them).
 */
#include "common.h"

#include <stdlib.h>
#include <string.h>

/* roff text: backslashes doubled, '-' as \-, a leading '.' or '\'' escaped. */
static void roff(FILE *f, const char *s)
{
	if (*s == '.' || *s == '\'')
		fputs("\\&", f);
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\e", f);
		else if (*s == '-')
			fputs("\\-", f);
		else
			fputc(*s, f);
	}
}

static void man_options(FILE *f, const cli_option *opts, int add_help, int help_short)
{
	for (const cli_option *o = opts; o && o->long_name; o++) {
		fputs(".TP\n", f);
		if (o->short_name)
			fprintf(f, "\\fB\\-%c\\fR, ", o->short_name);
		fputs("\\fB\\-\\-", f);
		roff(f, o->long_name);
		fputs("\\fR", f);
		if (o->has_value) {
			fputs(" \\fI", f);
			roff(f, o->value_name ? o->value_name : "VALUE");
			fputs("\\fR", f);
		}
		fputc('\n', f);
		roff(f, o->help ? o->help : "");
		fputc('\n', f);
	}
	if (add_help)
		fprintf(f, ".TP\n%s\\fB\\-\\-help\\fR\nPrint usage\n", help_short ? "\\fB\\-h\\fR, " : "");
}

static int short_used(const cli_option *opts, char c)
{
	for (const cli_option *o = opts; o && o->long_name; o++)
		if (o->short_name == c)
			return 1;
	return 0;
}

static FILE *open_page(const char *dir, const char *name)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s.1", dir, name);
	FILE *f = fopen(path, "w");
	if (!f)
		perror(path);
	return f;
}

static int close_page(FILE *f)
{
	int bad = ferror(f);
	if (fclose(f) != 0 || bad) {
		perror("imagebuild __gen man");
		return -1;
	}
	return 0;
}

static int gen_man(const char *dir)
{
	FILE *f = open_page(dir, "imagebuild");
	if (!f)
		return 1;
	fprintf(f, ".TH IMAGEBUILD 1 \"\" \"imagebuild %s\" \"imagebuild Manual\"\n", IB_VERSION);
	fputs(".SH NAME\nimagebuild \\- build, run and move OCI images without a daemon\n"
	      ".SH SYNOPSIS\n\\fBimagebuild\\fR [\\fIOPTIONS\\fR] \\fICOMMAND\\fR [\\fIARG\\fR...]\n"
	      ".SH DESCRIPTION\nA docker\\-like command line on libimagebuild. Each command has its own page,\n"
	      "\\fBimagebuild\\-\\fR\\fICOMMAND\\fR(1), and prints its options with \\fB\\-\\-help\\fR.\n"
	      "Options are parsed as docker's: \\fB\\-tNAME\\fR, \\fB\\-t NAME\\fR, \\fB\\-\\-tag=NAME\\fR, \\fB\\-\\-tag NAME\\fR,\n"
	      "clustered flags (\\fB\\-it\\fR), \\fB\\-\\-\\fR; flags also take \\fB=true\\fR or \\fB=false\\fR.\n"
	      ".SH OPTIONS\n",
	      f);
	man_options(f, cli_global_opts, 0, 0);
	fputs(".SH COMMANDS\n", f);
	for (size_t c = 0; c < cli_ncommands; c++) {
		fprintf(f, ".TP\n\\fBimagebuild\\-%s\\fR(1)\n", cli_commands[c].name);
		roff(f, cli_commands[c].summary);
		fputc('\n', f);
	}
	fputs(".SH MANAGEMENT COMMANDS\nAs docker's, each the same as the command it names:\n", f);
	for (const cli_alias *a = cli_aliases; a->group; a++)
		fprintf(f, ".TP\n\\fBimagebuild %s %s\\fR\n\\fBimagebuild\\-%s\\fR(1)\n", a->group, a->name, a->command);
	fputs(".SH ENVIRONMENT\n.TP\n\\fBIMAGEBUILD_ROOT\\fR\nThe store, when \\fB\\-\\-root\\fR is not given "
	      "(else /var/lib/imagebuild for root, $XDG_DATA_HOME/imagebuild otherwise).\n"
	      ".TP\n\\fBSOURCE_DATE_EPOCH\\fR\nThe time of builds, commits and imports, as BuildKit takes it.\n"
	      ".SH EXIT STATUS\nAs docker's:\n.TP\n\\fB0\\fR\nSuccess.\n"
	      ".TP\n\\fB1\\fR\nThe command failed (a build failed, an image was not found...).\n"
	      ".TP\n\\fB125\\fR\nA bad option or operand; for \\fBrun\\fR and \\fBexec\\fR, any error of imagebuild "
	      "itself (as opposed to the container's).\n"
	      ".TP\n\\fB126\\fR\n\\fBrun\\fR, \\fBexec\\fR: the command cannot be executed.\n"
	      ".TP\n\\fB127\\fR\n\\fBrun\\fR, \\fBexec\\fR: the command was not found.\n"
	      ".TP\n\\fB130\\fR, \\fB143\\fR\nInterrupted by SIGINT or SIGTERM (the work is cancelled and cleaned up).\n"
	      ".PP\nOtherwise \\fBrun\\fR and \\fBexec\\fR exit with the container's status (128 + its signal).\n"
	      ".SH SEE ALSO\n",
	      f);
	for (size_t c = 0; c < cli_ncommands; c++)
		fprintf(f, "\\fBimagebuild\\-%s\\fR(1)%s\n", cli_commands[c].name, c + 1 < cli_ncommands ? "," : "");
	if (close_page(f) < 0)
		return 1;

	for (size_t c = 0; c < cli_ncommands; c++) {
		const cli_command *cmd = &cli_commands[c];
		char name[128];
		snprintf(name, sizeof name, "imagebuild-%s", cmd->name);
		if (!(f = open_page(dir, name)))
			return 1;
		fputs(".TH ", f);
		for (const char *p = name; *p; p++)
			fputc(*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p, f);
		fprintf(f, " 1 \"\" \"imagebuild %s\" \"imagebuild Manual\"\n.SH NAME\nimagebuild\\-%s \\- ", IB_VERSION,
			cmd->name);
		roff(f, cmd->summary);
		fprintf(f, "\n.SH SYNOPSIS\n\\fBimagebuild %s\\fR [\\fIOPTIONS\\fR] ", cmd->name);
		roff(f, cmd->usage);
		fputs("\n.SH DESCRIPTION\n", f);
		roff(f, cmd->summary);
		fputs(".\n", f);
		int aliases = 0;
		for (const cli_alias *a = cli_aliases; a->group; a++)
			if (!strcmp(a->command, cmd->name))
				fprintf(f, "%s\\fBimagebuild %s %s\\fR", aliases++ ? ", " : "\n.PP\nAliases: ", a->group, a->name);
		if (aliases)
			fputs(".\n", f);
		fputs(".SH OPTIONS\n", f);
		man_options(f, cmd->opts, 1, !short_used(cmd->opts, 'h'));
		fputs(".SH SEE ALSO\n\\fBimagebuild\\fR(1)\n", f);
		if (close_page(f) < 0)
			return 1;
	}
	return 0;
}

/* The words of a command's options: all of them, or those taking a value. */
static void words(FILE *f, const cli_option *opts, int values_only, int add_help)
{
	const char *sep = "";
	for (const cli_option *o = opts; o && o->long_name; o++) {
		if (values_only && !o->has_value)
			continue;
		fprintf(f, "%s--%s", sep, o->long_name);
		sep = " ";
		if (o->short_name)
			fprintf(f, " -%c", o->short_name);
	}
	if (add_help)
		fprintf(f, "%s--help%s", sep, short_used(opts, 'h') ? "" : " -h");
}

static void gen_bash(FILE *f)
{
	fputs("# bash completion for imagebuild (generated by `imagebuild __gen bash`)\n"
	      "_imagebuild()\n{\n"
	      "\tlocal cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}\n"
	      "\tlocal i cmd= group= opts= vopts=\n"
	      "\tfor ((i = 1; i < COMP_CWORD; i++)); do\n"
	      "\t\tcase ${COMP_WORDS[i]} in\n"
	      "\t\t--root) ((i++)) ;;\n"
	      "\t\t-*) ;;\n"
	      "\t\t*)\n"
	      "\t\t\tif [ -z \"$group\" ]; then\n"
	      "\t\t\t\tcase ${COMP_WORDS[i]} in\n\t\t\t\t",
	      f);
	for (size_t g = 0; cli_groups[g][0]; g++)
		fprintf(f, "%s%s", g ? "|" : "", cli_groups[g][0]);
	fputs(") group=${COMP_WORDS[i]}; continue ;;\n\t\t\t\tesac\n\t\t\tfi\n"
	      "\t\t\tcmd=${COMP_WORDS[i]}\n\t\t\t[ -z \"$group\" ] || cmd=\"$group $cmd\"\n\t\t\tbreak ;;\n"
	      "\t\tesac\n\tdone\n",
	      f);
	fputs("\tif [ -z \"$cmd\" ]; then\n\t\tcase $group in\n", f);
	for (size_t g = 0; cli_groups[g][0]; g++) {
		fprintf(f, "\t\t%s) COMPREPLY=($(compgen -W \"", cli_groups[g][0]);
		const char *sep = "";
		for (const cli_alias *a = cli_aliases; a->group; a++)
			if (!strcmp(a->group, cli_groups[g][0])) {
				fprintf(f, "%s%s", sep, a->name);
				sep = " ";
			}
		fputs(" --help\" -- \"$cur\")) ;;\n", f);
	}
	fputs("\t\t*)\n\t\t\tcase $prev in --root) COMPREPLY=($(compgen -d -- \"$cur\")); return ;; esac\n"
	      "\t\t\tCOMPREPLY=($(compgen -W \"",
	      f);
	for (size_t g = 0; cli_groups[g][0]; g++)
		fprintf(f, "%s ", cli_groups[g][0]);
	for (size_t c = 0; c < cli_ncommands; c++)
		fprintf(f, "%s ", cli_commands[c].name);
	words(f, cli_global_opts, 0, 0);
	fputs("\" -- \"$cur\")) ;;\n\t\tesac\n\t\treturn\n\tfi\n\tcase $cmd in\n", f);
	for (size_t c = 0; c < cli_ncommands; c++) {
		const cli_command *cmd = &cli_commands[c];
		fprintf(f, "\t%s", cmd->name);
		for (const cli_alias *a = cli_aliases; a->group; a++)
			if (!strcmp(a->command, cmd->name))
				fprintf(f, "|\"%s %s\"", a->group, a->name);
		fputs(")\n\t\topts=\"", f);
		words(f, cmd->opts, 0, 1);
		fputs("\"\n\t\tvopts=\"", f);
		words(f, cmd->opts, 1, 0);
		fputs("\" ;;\n", f);
	}
	fputs("\t*) return ;;\n\tesac\n"
	      "\tif [[ \" $vopts \" == *\" $prev \"* ]]; then\n"
	      "\t\tCOMPREPLY=($(compgen -f -- \"$cur\"))\n"
	      "\telif [[ $cur == -* ]]; then\n"
	      "\t\tCOMPREPLY=($(compgen -W \"$opts\" -- \"$cur\"))\n"
	      "\telse\n"
	      "\t\tCOMPREPLY=($(compgen -f -- \"$cur\"))\n"
	      "\tfi\n}\ncomplete -o filenames -F _imagebuild imagebuild\n",
	      f);
}

/* Text inside a zsh single-quoted _arguments spec: no quote, no brackets, no colon. */
static void zsh_text(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		if (*s == '\'')
			fputs("'\\''", f);
		else if (*s == '[')
			fputc('(', f);
		else if (*s == ']')
			fputc(')', f);
		else if (*s == ':')
			fputc(' ', f);
		else
			fputc(*s, f);
	}
}

static int is_path(const char *value_name)
{
	return value_name && (strstr(value_name, "FILE") || strstr(value_name, "PATH") || strstr(value_name, "DIR"));
}

/* One _arguments spec: '*-t+[help]:NAME: ' or '--tag=[...]...', '-q[help]'. */
static void zsh_spec(FILE *f, const cli_option *o, const char *flag, int is_short)
{
	fprintf(f, " \\\n\t\t'%s%s%s[", o->has_value ? "*" : "", flag,
		o->has_value ? (is_short ? "+" : "=") : "");
	zsh_text(f, o->help);
	fputc(']', f);
	if (o->has_value) {
		fputc(':', f);
		zsh_text(f, o->value_name ? o->value_name : "VALUE");
		fputs(is_path(o->value_name) ? ":_files" : ": ", f);
	}
	fputc('\'', f);
}

static void zsh_specs(FILE *f, const cli_option *opts, int add_help)
{
	for (const cli_option *o = opts; o && o->long_name; o++) {
		char flag[128];
		if (o->short_name) {
			snprintf(flag, sizeof flag, "-%c", o->short_name);
			zsh_spec(f, o, flag, 1);
		}
		snprintf(flag, sizeof flag, "--%s", o->long_name);
		zsh_spec(f, o, flag, 0);
	}
	if (add_help) {
		if (!short_used(opts, 'h'))
			fputs(" \\\n\t\t'-h[Print usage]'", f);
		fputs(" \\\n\t\t'--help[Print usage]'", f);
	}
}

static void gen_zsh(FILE *f)
{
	fputs("#compdef imagebuild\n# zsh completion for imagebuild (generated by `imagebuild __gen zsh`)\n\n", f);
	for (size_t c = 0; c < cli_ncommands; c++) {
		const cli_command *cmd = &cli_commands[c];
		fprintf(f, "_imagebuild_%s() {\n\t_arguments -s -S", cmd->name);
		zsh_specs(f, cmd->opts, 1);
		fputs(" \\\n\t\t'*: :_files'\n}\n\n", f);
	}
	for (size_t g = 0; cli_groups[g][0]; g++) {
		fprintf(f, "_imagebuild_group_%s() {\n\tlocal -a subs\n\tsubs=(", cli_groups[g][0]);
		for (const cli_alias *a = cli_aliases; a->group; a++)
			if (!strcmp(a->group, cli_groups[g][0])) {
				fprintf(f, "\n\t\t'%s:", a->name);
				zsh_text(f, cli_find_command(a->command)->summary);
				fputc('\'', f);
			}
		fputs("\n\t)\n\tif (( CURRENT == 2 )); then\n\t\t_describe -t commands 'command' subs\n\t\treturn\n\tfi\n"
		      "\tshift words\n\t(( CURRENT-- ))\n\tcase $words[1] in\n",
		      f);
		for (const cli_alias *a = cli_aliases; a->group; a++)
			if (!strcmp(a->group, cli_groups[g][0]))
				fprintf(f, "\t%s) _imagebuild_%s ;;\n", a->name, a->command);
		fputs("\tesac\n}\n\n", f);
	}
	fputs("_imagebuild() {\n\tlocal -a commands\n\tlocal curcontext=$curcontext state line\n\tcommands=(", f);
	for (size_t g = 0; cli_groups[g][0]; g++)
		fprintf(f, "\n\t\t'%s:%s'", cli_groups[g][0], cli_groups[g][1]);
	for (size_t c = 0; c < cli_ncommands; c++) {
		fprintf(f, "\n\t\t'%s:", cli_commands[c].name);
		zsh_text(f, cli_commands[c].summary);
		fputc('\'', f);
	}
	fputs("\n\t)\n\t_arguments -C", f);
	for (const cli_option *o = cli_global_opts; o->long_name; o++) {
		char flag[128];
		if (o->short_name) {
			snprintf(flag, sizeof flag, "-%c", o->short_name);
			zsh_spec(f, o, flag, 1);
		}
		snprintf(flag, sizeof flag, "--%s", o->long_name);
		zsh_spec(f, o, flag, 0);
	}
	fputs(" \\\n\t\t'1: :->command' \\\n\t\t'*:: :->args'\n\tcase $state in\n"
	      "\tcommand) _describe -t commands 'imagebuild command' commands ;;\n"
	      "\targs)\n\t\tcase $words[1] in\n",
	      f);
	for (size_t g = 0; cli_groups[g][0]; g++)
		fprintf(f, "\t\t%s) _imagebuild_group_%s ;;\n", cli_groups[g][0], cli_groups[g][0]);
	for (size_t c = 0; c < cli_ncommands; c++)
		fprintf(f, "\t\t%s) _imagebuild_%s ;;\n", cli_commands[c].name, cli_commands[c].name);
	fputs("\t\tesac ;;\n\tesac\n}\n\n_imagebuild \"$@\"\n", f);
}

int cli_gen(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "man"))
		return gen_man(argv[2]);
	if (argc == 2 && !strcmp(argv[1], "bash")) {
		gen_bash(stdout);
		return fflush(stdout) == 0 ? 0 : 1;
	}
	if (argc == 2 && !strcmp(argv[1], "zsh")) {
		gen_zsh(stdout);
		return fflush(stdout) == 0 ? 0 : 1;
	}
	fprintf(stderr, "Usage: imagebuild __gen man DIR|bash|zsh\n");
	return CLI_EXIT_ERROR;
}
