# Sourced by shell tests: skip_or_fail REASON exits 77, or 1 under IB_TEST_STRICT=1.
skip_or_fail() {
	if [ "${IB_TEST_STRICT:-}" = 1 ]; then
		echo "FAIL (IB_TEST_STRICT=1 forbids skipping): $*" >&2
		exit 1
	fi
	echo "SKIP: $*" >&2
	exit 77
}
