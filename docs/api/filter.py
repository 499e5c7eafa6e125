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

# By the conventions of docs/STYLE.md ("Options"), what needs no comment of its own:
VERSION_FIELD = re.compile(r'^\s*unsigned int version;\s*$')
VERSION_MACRO = re.compile(r'^#define (IB_\w+)_VERSION \d+\s*$')
INIT_MACRO = re.compile(r'^#define (IB_\w+)_INIT\b')
HTML_OK = {'b', 'i', 'em', 'code', 'br', 'p', 'pre', 'tt', 'ul', 'li', 'ol'}


def escape(text):
    """<hex> and name@digest in prose are not HTML tags or commands."""
    text = re.sub(r'<(/?)([a-z][\w .-]*)>', lambda m: m.group(0) if m.group(2) in HTML_OK
                  else '&lt;' + m.group(1) + m.group(2) + '&gt;', text)
    return re.sub(r'(\w)@(\w)', r'\1\\@\2', text)


lines = open(sys.argv[1], encoding='utf-8').read().split('\n')
for k, line in enumerate(lines):
    if '/*' in line or line.lstrip().startswith('*'):
        lines[k] = escape(line)
    if VERSION_FIELD.match(line):
        lines[k] = line + ' /**< The version of the struct the caller fills (its *_VERSION macro). */'
    m = VERSION_MACRO.match(line)
    if m:
        lines[k] = line.rstrip() + f' /**< The current version of the struct that {m.group(1)}_INIT initialises. */'
    m = INIT_MACRO.match(line)
    if m and k > 0 and (not lines[k - 1].strip() or lines[k - 1].rstrip().endswith((';', '*/'))) \
            and '/**' not in lines[k - 1]:
        lines[k - 1] = lines[k - 1] + f' /** A static initializer: the current version ({m.group(1)}_VERSION) and every default. */'

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
