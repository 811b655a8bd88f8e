#!/usr/bin/env python3
"""Checks the links of README.md and docs/ (a ctest): every relative link
names a file that exists, and every #anchor a heading of that file (GitHub's
rule: lower case, punctuation dropped, spaces to hyphens, -1, -2 ... for
repeats). Links to outside the repository are not followed.

Exits 1 listing every broken link as file:line: link."""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
LINK = re.compile(r"(?<!!)\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")


def slug(text: str) -> str:
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links keep their text
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)  # drops punctuation, backticks included; keeps _ and -
    return text.replace(" ", "-")


def lines_outside_code(path: pathlib.Path):
    fenced = False
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield n, line


def anchors(path: pathlib.Path, cache={}) -> set:
    if path not in cache:
        seen, out = {}, set()
        for _, line in lines_outside_code(path):
            m = HEADING.match(line)
            if not m:
                continue
            s = slug(m.group(2))
            k = seen.get(s, 0)
            out.add(s if k == 0 else f"{s}-{k}")
            seen[s] = k + 1
        for m in re.finditer(r'<a\s+(?:name|id)="([^"]+)"', path.read_text()):
            out.add(m.group(1))
        cache[path] = out
    return cache[path]


def main() -> int:
    files = [ROOT / "README.md"] + sorted((ROOT / "docs").rglob("*.md"))
    bad, count = [], 0
    for f in files:
        for n, line in lines_outside_code(f):
            for m in LINK.finditer(re.sub(r"`[^`]*`", "", line)):
                target = m.group(1)
                if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, mailto: ...
                    continue
                count += 1
                file_part, _, anchor = target.partition("#")
                dest = (f.parent / file_part).resolve() if file_part else f
                rel = f.relative_to(ROOT).as_posix()
                if not dest.exists():
                    bad.append(f"{rel}:{n}: {target} (no such file)")
                elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                    bad.append(f"{rel}:{n}: {target} (no heading #{anchor} in {dest.relative_to(ROOT).as_posix()})")
                elif not str(dest).startswith(str(ROOT)):
                    bad.append(f"{rel}:{n}: {target} (outside the repository)")
    for b in bad:
        print(b)
    print(f"check_docs: {len(files)} files, {count} links, {len(bad)} broken")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
