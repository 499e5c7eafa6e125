# Sourced by regen-expected.sh and run.sh (bash).
# compat_dir: this folder (the caller sets it); cases live in $compat_dir/cases/<name>/.
# shellcheck shell=bash disable=SC2154

# case_context CASE DEST: assemble the build context of CASE in DEST (which
# must not exist): the case's files without the control files (args,
# base-layers, setup.sh), with modes reset to 644/755 (git keeps only the x
# bit, and the checkout's umask may differ), then the case's setup.sh run in
# DEST for what git cannot hold (modes, owners, hardlinks, archives).
case_context() {
	src="$compat_dir/cases/$1"
	mkdir -p "$2" || return 1
	(cd "$src" && tar -cf - --exclude=./args --exclude=./base-layers \
		--exclude=./setup.sh .) | (cd "$2" && tar -xf - --no-same-owner) || return 1
	find "$2" -type d -exec chmod 755 {} + || return 1
	find "$2" -type f -perm -u+x -exec chmod 755 {} + || return 1
	find "$2" -type f ! -perm -u+x -exec chmod 644 {} + || return 1
	if [ -f "$src/setup.sh" ]; then
		(cd "$2" && sh -e "$src/setup.sh") || return 1
	fi
}

# case_args CASE: the extra build options of CASE, one argument a line. The
# case's `args` file has one option a line, `--build-arg K=V` or `--target X`
# (the value is everything after the first space).
case_args() {
	[ -f "$compat_dir/cases/$1/args" ] || return 0
	while IFS= read -r line || [ -n "$line" ]; do
		[ -n "$line" ] || continue
		case $line in
		*" "*) printf '%s\n%s\n' "${line%% *}" "${line#* }" ;;
		*) printf '%s\n' "$line" ;;
		esac
	done <"$compat_dir/cases/$1/args"
}

# case_base_layers CASE: how many layers of the final image are the base
# image's (1: ibcompat/busybox:base; 0 when the final stage is FROM scratch).
case_base_layers() {
	if [ -f "$compat_dir/cases/$1/base-layers" ]; then
		cat "$compat_dir/cases/$1/base-layers"
	else
		echo 1
	fi
}

case_names() {
	for d in "$compat_dir"/cases/*/; do
		basename "$d"
	done
}
