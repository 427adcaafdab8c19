#!/usr/bin/env python3
"""The README's library snippet is an excerpt of examples/controller.c.

README.md holds, in the first ```c block after the line
"<!-- excerpt: examples/controller.c -->", exactly the lines of
examples/controller.c between "/* README: begin */" and "/* README: end */".
Fails, showing the first difference, when they drift apart.
"""
import difflib
import sys

readme_path, source_path = sys.argv[1], sys.argv[2]
readme = open(readme_path, encoding="utf-8").read().split("\n")
source = open(source_path, encoding="utf-8").read().split("\n")

try:
    begin = source.index("/* README: begin */")
    end = source.index("/* README: end */")
except ValueError:
    sys.exit(f"FAIL: {source_path} lacks the README: begin/end markers")
excerpt = source[begin + 1:end]

marker = "<!-- excerpt: examples/controller.c -->"
if marker not in readme:
    sys.exit(f"FAIL: {readme_path} lacks {marker}")
i = readme.index(marker) + 1
while i < len(readme) and readme[i].strip() != "```c":
    i += 1
if i == len(readme):
    sys.exit(f"FAIL: no ```c block after {marker} in {readme_path}")
j = i + 1
while j < len(readme) and readme[j].strip() != "```":
    j += 1
snippet = readme[i + 1:j]

if snippet != excerpt:
    diff = difflib.unified_diff(excerpt, snippet, source_path, readme_path, lineterm="", n=1)
    print("\n".join(list(diff)[:40]))
    sys.exit("FAIL: the README snippet is not the excerpt of examples/controller.c")
print(f"ok: README's snippet is lines {begin + 2}-{end} of {source_path} ({len(snippet)} lines)")
