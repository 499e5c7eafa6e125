#!/bin/sh
# The layering check must fail on the fixture, naming every violation.
check=$1 fixture=$2
out=$("$check" "$fixture") && { echo "check-layering passed a tree with violations"; exit 1; }
echo "$out"
echo "$out" | grep -q "lib/parse/bad.c:3: layer 'parse' includes 'store'" || { echo "missed the lib/ violation"; exit 1; }
echo "$out" | grep -q "include/imagebuild/store.h:2: layer 'store' includes 'parse'" || { echo "missed the public header violation"; exit 1; }
echo "$out" | grep -q "include/imagebuild/sys/isolation.h:2: layer 'execute' includes 'store'" || { echo "missed the sys/ header violation"; exit 1; }
exit 0
