#!/usr/bin/python3
"""Doxygen INPUT_FILTER for the public headers (see Doxyfile.in). The
headers are written in the plain-comment style of docs/STYLE.md; this shows
their comments to Doxygen as documentation without changing them:

- the header's opening comment becomes its `@file` description;
- a trailing comment after a field, enum value or #define,
  `int x; /* what */`, becomes `/**< what */`;
- a plain comment on lines of its own, right before a declaration, becomes
  `/** */` for it (except the `/* version N */` markers of option structs).

Function documentation is never made up here: docs/api/check-documented.py
requires a real `/** */` block before every IB_EXTERN."""
import re
import sys

TRAILING = re.compile(r'^(\s*(?:[^/\s*#][^/]*?[;,]|#define\s+\w+(?:\([^)]*\))?\s+\S.*?|[A-Z_0-9]+(?:\s*=\s*[^/]+?)?))(\s*)/\*(?![*!])')
VERSION_MARK = re.compile(r'^\s*/\*\s*version \d+\s*\*/\s*$')

lines = open(sys.argv[1], encoding='utf-8').read().split('\n')
out = list(lines)
first = True
i = 0
while i < len(lines):
    s = lines[i].lstrip()
    if s.startswith('/*'):
        # a comment on lines of its own: find its end
        j = i
        while '*/' not in lines[j][(lines[j].find('/*') + 2) if j == i else 0:]:
            j += 1
        if first:
            first = False
            if not s.startswith('/**'):
                out[i] = lines[i].replace('/*', '/** @file', 1)
        elif (not s.startswith(('/**', '/*!')) and not VERSION_MARK.match(lines[i])
              and j + 1 < len(lines) and lines[j + 1].strip()
              and not lines[j + 1].lstrip().startswith(('/*', '#if', '#endif', '#else', '}'))):
            out[i] = lines[i].replace('/*', '/**', 1)
        i = j + 1
        continue
    m = TRAILING.match(lines[i])
    if m:
        out[i] = m.group(1) + m.group(2) + '/**<' + lines[i][m.end():]
    i += 1
sys.stdout.write('\n'.join(out))
