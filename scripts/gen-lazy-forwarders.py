#!/usr/bin/env python3
"""Forwarders for a library opened when first needed (lib/util/lazylib.h).

  scripts/gen-lazy-forwarders.py LIBVAR 'HEADER...' NAME... > file.c.inc

Reads the prototypes of NAME... from the preprocessed HEADERs (cc -E) and
prints one IB_LAZY_FN / IB_LAZY_VOID line per function, with parameters named
a0, a1...; the compiler checks each against the header when the file that
includes the output also includes the headers. Variadic functions are
refused (write those by hand). A name the headers do not declare is skipped
with a note on stderr.
"""
import re
import subprocess
import sys

lib, headers, names = sys.argv[1], sys.argv[2].split(), sys.argv[3:]
src = "".join("#include <%s>\n" % h for h in headers)
pp = subprocess.run(["cc", "-E", "-P", "-x", "c", "-"], input=src, capture_output=True, text=True, check=True).stdout
pp = re.sub(r"__attribute__\s*\(\(.*?\)\)", " ", " ".join(pp.split()))
QUAL = {"const", "volatile", "struct", "union", "enum", "unsigned", "signed", "short", "long", "restrict", "__restrict"}
BASIC = {"int", "char", "void", "short", "long", "float", "double", "unsigned", "signed"}


def split_params(p):
    out, depth, cur = [], 0, ""
    for c in p:
        if c == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
            continue
        depth += c == "("
        depth -= c == ")"
        cur += c
    if cur.strip():
        out.append(cur.strip())
    return out


def has_name(p):
    toks = re.findall(r"[A-Za-z_]\w*|\*|\[|\]|\(|\)", p)
    if not toks or not re.match(r"[A-Za-z_]", toks[-1]):
        return False
    rest = [t for t in toks[:-1] if re.match(r"[A-Za-z_]", t)]
    # a name when what precedes it is a whole type: a pointer, or an identifier that is not a qualifier
    if "*" in toks[:-1]:
        return True
    if toks[-1] in BASIC:
        return False
    return any(t not in QUAL for t in rest) and not (rest and rest[-1] in ("struct", "union", "enum"))


for name in names:
    m = re.search(r"(?:^|;|\})\s*(?:extern\s+)?([^;{}()]*?)\b%s\s*\(([^;{}]*?)\)\s*;" % re.escape(name), pp)
    if not m:
        print("skipped %s: not declared" % name, file=sys.stderr)
        continue
    ret, params = m.group(1).strip(), m.group(2).strip()
    if "..." in params:
        sys.exit("%s is variadic: write its forwarder by hand" % name)
    plist = [] if params in ("", "void") else split_params(params)
    decl, args = [], []
    for i, p in enumerate(plist):
        if has_name(p):
            p = re.sub(r"[A-Za-z_]\w*\s*$", "", p).rstrip()
        decl.append("%s a%d" % (p, i) if not p.endswith("*") else "%sa%d" % (p, i))
        args.append("a%d" % i)
    d = "(%s)" % (", ".join(decl) if decl else "void")
    a = "(%s)" % ", ".join(args)
    if ret == "void":
        print("IB_LAZY_VOID(%s, %s, %s, %s)" % (lib, name, d, a))
    else:
        fail = "NULL" if ret.endswith("*") else "(%s)ARCHIVE_FATAL" % ret if ret == "int" else "(%s)-1" % ret
        print("IB_LAZY_FN(%s, %s, %s, %s, %s, %s)" % (lib, ret, name, d, a, fail))
