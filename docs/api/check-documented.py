#!/usr/bin/python3
"""Every public function is documented: each IB_EXTERN declaration in the
public headers (include/imagebuild.h, include/imagebuild/**/*.h) must come
right after its own /** ... */ comment (blank lines are not allowed between
them, and one comment documents one declaration, as Doxygen reads it).

    check-documented.py INCLUDE_DIR

Prints file:line: name for each undocumented declaration; exit 1 if any.
Fast and independent of Doxygen (docs/api/Doxyfile.in checks the rest:
types, fields, enum values, macros)."""
import os
import re
import sys

DECL = re.compile(r'^\s*IB_EXTERN\s*\(')
NAME = re.compile(r'IB_EXTERN\s*\((?:[^()]|\([^()]*\))*\)\s*(\w+)\s*\(')


def headers(root):
    for d, _, files in os.walk(root):
        for f in sorted(files):
            if f.endswith('.h'):
                yield os.path.join(d, f)


def check(path):
    bad = []
    lines = open(path, encoding='utf-8').read().split('\n')
    # state for the previous significant line: was it the end of a /** */?
    in_comment = False
    doc_comment = False      # the comment being read started with /**
    prev_was_doc_end = False  # the line just before ended a /** */ block
    for i, line in enumerate(lines, 1):
        s = line.strip()
        if in_comment:
            if '*/' in s:
                in_comment = False
                prev_was_doc_end = doc_comment and s.endswith('*/')
            continue
        if s.startswith('/*'):
            doc_comment = s.startswith('/**') and not s.startswith('/**<')
            if '*/' in s[2:]:
                prev_was_doc_end = doc_comment and s.endswith('*/')
            else:
                in_comment = True
            continue
        if DECL.match(line) and not line.lstrip().startswith('#'):
            if not prev_was_doc_end:
                m = NAME.search(' '.join(lines[i - 1:i + 3]))
                bad.append((i, m.group(1) if m else s))
        prev_was_doc_end = False
    return bad


def main():
    root = sys.argv[1]
    files = [os.path.join(os.path.dirname(root.rstrip('/')), 'imagebuild.h')]
    files = [f for f in files if os.path.exists(f)] + list(headers(root))
    n = 0
    total = 0
    for path in files:
        for line, name in check(path):
            print(f'{os.path.relpath(path, os.path.dirname(root.rstrip("/")))}:{line}: '
                  f'{name} has no /** */ comment right before it')
            n += 1
        total += sum(1 for l in open(path, encoding='utf-8') if DECL.match(l))
    if total == 0:
        print('no IB_EXTERN declaration found under', root)
        return 1
    print(f'{total - n}/{total} public functions documented')
    return 1 if n else 0


if __name__ == '__main__':
    sys.exit(main())
