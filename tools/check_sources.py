#!/usr/bin/env python3
"""Source rules that a compiler does not enforce, checked over include/ (a ctest).

- Deadlines come from detail::deadline_after (include/skein/detail/deadline.hpp),
  which saturates: `now() + d` overflows for a large d (signed overflow, and a
  deadline in the past), so it may appear nowhere else.

Exits 1 listing every violation as file:line: rule."""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
RULES = [
    (re.compile(r"now\s*\(\s*\)\s*\+"),
     "`now() + d` can overflow: use detail::deadline_after(d)",
     {"include/skein/detail/deadline.hpp"}),
]


def strip_comments(line: str) -> str:
    return line.split("//", 1)[0]


def main() -> int:
    bad = []
    files = sorted((ROOT / "include").rglob("*.hpp"))
    for f in files:
        rel = f.relative_to(ROOT).as_posix()
        for n, line in enumerate(f.read_text().splitlines(), 1):
            code = strip_comments(line)
            for rx, why, allowed in RULES:
                if rel not in allowed and rx.search(code):
                    bad.append(f"{rel}:{n}: {why}\n    {line.strip()}")
    for b in bad:
        print(b)
    print(f"check_sources: {len(files)} headers, {len(bad)} violation(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
