#!/usr/bin/env python3
"""Keeps the README's code and output blocks identical to files that are built and run.

In README.md, a fenced block right after
    <!-- snippet: PATH#NAME -->   is the text between the lines holding
                                  `[readme:NAME]` and `[/readme:NAME]` in PATH (dedented);
    <!-- output: PATH#NAME -->    is the section of the expected-output file PATH
                                  that follows the line `[NAME]`, up to the next `[...]` line;
    <!-- output: PATH -->         is the whole file PATH.
The examples are built and their output is compared with examples/expected/
by ctest, and the consumer snippets are built by tests/consumers; this script
(ctest `readme_snippets`) checks that the README shows exactly those, and that
every cpp, cmake and lua block of the README is such a snippet.

    tools/readme.py            check (exit 1 on any difference)
    tools/readme.py --update   rewrite the README's blocks from the files"""
import argparse
import pathlib
import re
import sys
import textwrap

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
MARKER = re.compile(r"^<!-- (snippet|output): ([^#\s]+)(?:#(.+?))? -->$")
FENCE = re.compile(r"^```(\w*)$")
CHECKED_LANGS = {"cpp", "cmake", "lua"}


def snippet(path: pathlib.Path, name: str) -> str:
    lines = path.read_text().splitlines()
    begin = [i for i, l in enumerate(lines) if l.strip().endswith(f"[readme:{name}]")]
    end = [i for i, l in enumerate(lines) if l.strip().endswith(f"[/readme:{name}]")]
    if len(begin) != 1 or len(end) != 1 or end[0] <= begin[0]:
        raise ValueError(f"{path.relative_to(ROOT)}: needs exactly one [readme:{name}] ... [/readme:{name}]")
    return textwrap.dedent("\n".join(lines[begin[0] + 1 : end[0]])) + "\n"


def output(path: pathlib.Path, name: str | None) -> str:
    text = path.read_text()
    if name is None:
        return text
    lines = text.splitlines()
    try:
        start = lines.index(f"[{name}]") + 1
    except ValueError:
        raise ValueError(f"{path.relative_to(ROOT)}: no line [{name}]") from None
    stop = start
    while stop < len(lines) and not re.fullmatch(r"\[[^\]]+\]", lines[stop]):
        stop += 1
    return "\n".join(lines[start:stop]) + "\n"


def process(update: bool) -> int:
    lines = README.read_text().splitlines(keepends=True)
    out, errors, i, count = [], [], 0, 0
    while i < len(lines):
        line = lines[i]
        m = MARKER.match(line.rstrip("\n"))
        fence = FENCE.match(line.rstrip("\n"))
        if m:
            out.append(line)
            i += 1
            if i >= len(lines) or not FENCE.match(lines[i].rstrip("\n")):
                errors.append(f"README.md:{i}: a marker must be followed by a fenced block")
                continue
            out.append(lines[i])
            j = i + 1
            while j < len(lines) and lines[j].rstrip("\n") != "```":
                j += 1
            current = "".join(lines[i + 1 : j])
            kind, path, name = m.groups()
            try:
                want = snippet(ROOT / path, name) if kind == "snippet" else output(ROOT / path, name)
            except (OSError, ValueError) as e:
                errors.append(f"README.md:{i}: {e}")
                want = current
            if want != current:
                if update:
                    print(f"updated the block at README.md:{i + 1} from {path}{'#' + name if name else ''}")
                else:
                    errors.append(f"README.md:{i + 1}: the block differs from {path}{'#' + name if name else ''}")
            out.append(want if update else current)
            if j < len(lines):
                out.append(lines[j])  # the closing fence
            count += 1
            i = j + 1
            continue
        if fence and fence.group(1) in CHECKED_LANGS:
            errors.append(f"README.md:{i + 1}: a ```{fence.group(1)} block that no file checks "
                          "(put it in an example or a consumer test and add a <!-- snippet: ... --> marker)")
        if fence:  # copy the whole block
            j = i + 1
            while j < len(lines) and lines[j].rstrip("\n") != "```":
                j += 1
            out.extend(lines[i : j + 1])
            i = j + 1
            continue
        out.append(line)
        i += 1
    if update:
        README.write_text("".join(out))
    for e in errors:
        print(e, file=sys.stderr)
    if errors:
        if not update:
            print("run tools/readme.py --update after changing an example, or fix the README", file=sys.stderr)
        return 1
    print(f"README.md: {count} blocks match their sources")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--update", action="store_true", help="rewrite the README's blocks from their sources")
    return process(ap.parse_args().update)


if __name__ == "__main__":
    sys.exit(main())
