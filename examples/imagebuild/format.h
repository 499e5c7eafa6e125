/*
 * --format as docker takes it: `json` (one object per line), `table`
 * (the command's default columns), `table TEMPLATE` (a header, aligned
 * columns) or a Go template of the subset docker's documentation shows:
 * {{.Field}}, {{.A.B}}, {{.}}, {{json .X}}, {{index .X 0}}, {{index .X "k"}},
 * {{join .X ","}}, {{lower .X}}, {{upper .X}}, \t and \n. Anything else is
 * refused with a clear error.
 */
#ifndef IMAGEBUILD_CLI_FORMAT_H
#define IMAGEBUILD_CLI_FORMAT_H

#include <jansson.h>
#include <stdio.h>

typedef struct cli_format cli_format;

/*
 * Parse `spec` for rows whose table columns, when spec is "table", are
 * `default_table` (a template), with `headers` the header of each field
 * (an object: {"ID": "IMAGE ID", ...}; borrowed). Returns NULL after
 * printing the error (exit 125).
 */
cli_format *cli_format_new(const char *spec, const char *default_table, json_t *headers);
/* Print (or, for tables, keep) one row. -1 after printing the error. */
int cli_format_row(cli_format *f, json_t *row);
/* Print what is kept (tables) and free. -1 when a row failed before. */
int cli_format_end(cli_format *f);
/* Whether the format is `json` (inspect prints its own JSON then). */
int cli_format_is_json(const cli_format *f);

#endif
