#!/usr/bin/env python3
"""Draws a Chrome trace-event JSON file (skein::trace's, or any with "X"
slices and "s"/"f" flows) as an SVG timeline: one row per thread, a
rectangle per run slice, a line per flow (spawner -> spawned, notifier ->
woken). Standard library only.

  tools/trace_svg.py trace.json -o trace.svg [--width 1200] [--title TEXT]
  tools/trace_svg.py --check trace.json   # validity only: exits 1 listing problems

--check loads the file with json.load and checks what the test suite checks:
every event has ph/ts/pid/tid, every slice a dur >= 0, every flow end ("f",
with bp "e") a start ("s") with the same id and category, and every thread
that has slices a thread_name."""
import argparse
import colorsys
import hashlib
import json
import math
import sys
from xml.sax.saxutils import escape


def problems(doc) -> list:
    out = []
    if not isinstance(doc, dict) or not isinstance(doc.get("traceEvents"), list):
        return ["the top level is not an object with a traceEvents array"]
    starts, ends, named, sliced = {}, {}, set(), set()
    for i, e in enumerate(doc["traceEvents"]):
        if not isinstance(e, dict):
            out.append(f"event {i} is not an object")
            continue
        missing = [k for k in ("ph", "ts", "pid", "tid") if k not in e]
        if missing:
            out.append(f"event {i} has no {', '.join(missing)}")
            continue
        ph = e["ph"]
        if ph == "X":
            if not isinstance(e.get("dur"), (int, float)) or e["dur"] < 0:
                out.append(f"slice {i} has no dur >= 0")
            sliced.add((e["pid"], e["tid"]))
        elif ph == "s":
            starts[e.get("id")] = e.get("cat")
        elif ph == "f":
            if e.get("bp") != "e":
                out.append(f"flow end {i} is not bound to its enclosing slice (bp 'e')")
            ends[e.get("id")] = e.get("cat")
        elif ph == "M" and e.get("name") == "thread_name":
            named.add((e["pid"], e["tid"]))
    for fid, cat in ends.items():
        if fid not in starts:
            out.append(f"flow {fid} ends but never starts")
        elif starts[fid] != cat:
            out.append(f"flow {fid} starts as {starts[fid]} and ends as {cat}")
    for t in sorted(sliced - named):
        out.append(f"thread {t} has slices but no thread_name")
    return out


def color(name: str) -> str:
    h = int(hashlib.md5(name.encode()).hexdigest()[:6], 16) / 0xFFFFFF
    r, g, b = colorsys.hls_to_rgb(h, 0.62, 0.55)
    return "#%02x%02x%02x" % (int(r * 255), int(g * 255), int(b * 255))


def render(doc, width: int, title: str) -> str:
    events = doc["traceEvents"]
    names = {}
    for e in events:
        if e.get("ph") == "M" and e.get("name") == "thread_name":
            names[(e["pid"], e["tid"])] = e.get("args", {}).get("name", str(e["tid"]))
    slices = sorted((e for e in events if e.get("ph") == "X"), key=lambda e: (e["ts"], -e["dur"]))
    if not slices:
        raise SystemExit("trace_svg: no slices to draw")
    # Nesting depth per thread (a slice inside another one on the same thread).
    depth, open_, rows = {}, {}, {}
    for i, e in enumerate(slices):
        key = (e["pid"], e["tid"])
        stack = open_.setdefault(key, [])
        while stack and stack[-1] <= e["ts"]:
            stack.pop()
        depth[i] = len(stack)
        stack.append(e["ts"] + e["dur"])
        rows[key] = max(rows.get(key, 1), len(stack))
    t0 = min(e["ts"] for e in slices)
    t1 = max(e["ts"] + e["dur"] for e in slices)
    span = max(t1 - t0, 1e-3)
    left, right, top, lane, gap = 150, 20, 50, 26, 10
    plot = width - left - right
    threads = sorted(rows, key=lambda k: k[1])
    y_of, y = {}, top
    for k in threads:
        y_of[k] = y
        y += rows[k] * lane + gap
    height = y + 40

    def x(ts):
        return left + (ts - t0) / span * plot

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
           '<defs><marker id="a" viewBox="0 0 6 6" refX="6" refY="3" markerWidth="6" markerHeight="6" '
           'orient="auto"><path d="M0,0 L6,3 L0,6 z" fill="#333"/></marker></defs>',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{left}" y="20" font-size="14" font-weight="bold">{escape(title)}</text>']
    # Time axis.
    step = 10 ** math.floor(math.log10(span))  # then 1, 2 or 5 of that: 4 to 10 ticks
    for m in (0.1, 0.2, 0.5, 1, 2, 5):
        if span / (step * m) <= 10:
            step *= m
            break
    tick = 0.0
    axis_y = height - 25
    out.append(f'<line x1="{left}" y1="{axis_y}" x2="{left + plot}" y2="{axis_y}" stroke="#999"/>')
    while tick <= span:
        tx = x(t0 + tick)
        out.append(f'<line x1="{tx:.1f}" y1="{top - 5}" x2="{tx:.1f}" y2="{axis_y}" stroke="#eee"/>')
        label = f"{tick / 1000:g} ms" if step >= 100 else f"{tick:g} µs"
        out.append(f'<text x="{tx:.1f}" y="{axis_y + 15}" text-anchor="middle" fill="#555">{label}</text>')
        tick += step
    for k in threads:
        out.append(f'<text x="{left - 8}" y="{y_of[k] + lane - 7}" text-anchor="end">'
                   f'{escape(names.get(k, "tid " + str(k[1])))}</text>')
        out.append(f'<line x1="{left}" y1="{y_of[k] + rows[k] * lane + gap / 2}" x2="{left + plot}" '
                   f'y2="{y_of[k] + rows[k] * lane + gap / 2}" stroke="#ddd"/>')
    for i, e in enumerate(slices):
        key = (e["pid"], e["tid"])
        sx, w = x(e["ts"]), max(e["dur"] / span * plot, 1.0)
        sy = y_of[key] + depth[i] * lane
        tip = f'{e["name"]} ({e["dur"]:.1f} µs)'
        then = e.get("args", {}).get("then")
        if then:
            tip += f" then {then}"
        out.append(f'<rect x="{sx:.1f}" y="{sy + 2}" width="{w:.1f}" height="{lane - 4}" fill="{"#c8c8c8" if e.get("cat") == "block" else color(e["name"])}" '
                   f'stroke="#555" stroke-width="0.4"><title>{escape(tip)}</title></rect>')
        if w > 7 * len(e["name"]) * 0.9:
            out.append(f'<text x="{sx + 3:.1f}" y="{sy + lane - 8}" fill="#111">{escape(e["name"])}</text>')
    # Flows: "s" -> "f" with the same id.
    starts = {e["id"]: e for e in events if e.get("ph") == "s"}
    for e in events:
        if e.get("ph") != "f" or e.get("id") not in starts:
            continue
        s = starts[e["id"]]
        ks, kf = (s["pid"], s["tid"]), (e["pid"], e["tid"])
        if ks not in y_of or kf not in y_of:
            continue
        x1, y1 = x(s["ts"]), y_of[ks] + lane / 2
        x2, y2 = x(e["ts"]), y_of[kf] + lane / 2 + (2 if ks == kf else 0)
        stroke = "#1f5fbf" if e.get("cat") == "spawn" else "#c0392b"
        out.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{stroke}" '
                   f'stroke-width="0.8" stroke-opacity="0.7" marker-end="url(#a)"/>')
    lx = left + plot - 260
    out.append(f'<line x1="{lx}" y1="34" x2="{lx + 20}" y2="34" stroke="#1f5fbf"/>'
               f'<text x="{lx + 25}" y="38">spawn</text>'
               f'<line x1="{lx + 80}" y1="34" x2="{lx + 100}" y2="34" stroke="#c0392b"/>'
               f'<text x="{lx + 105}" y="38">wake (notifier → woken)</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("trace")
    ap.add_argument("-o", "--output", help="the SVG file (default: the trace's name with .svg)")
    ap.add_argument("--width", type=int, default=1200)
    ap.add_argument("--title", default=None)
    ap.add_argument("--check", action="store_true", help="only check the file's validity")
    a = ap.parse_args()
    with open(a.trace, encoding="utf-8") as f:
        doc = json.load(f)
    bad = problems(doc)
    if a.check:
        for p in bad:
            print(p)
        print(f"trace_svg: {a.trace}: {len(doc.get('traceEvents', []))} events, {len(bad)} problem(s)")
        return 1 if bad else 0
    if bad:
        print("\n".join(bad), file=sys.stderr)
        return 1
    out = a.output or (a.trace.rsplit(".", 1)[0] + ".svg")
    with open(out, "w", encoding="utf-8") as f:
        f.write(render(doc, a.width, a.title or a.trace))
    print(f"trace_svg: wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
