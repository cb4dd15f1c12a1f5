#!/usr/bin/env python3
"""Latency percentiles against offered load, as a standalone SVG (Python's standard library only).

    bench/latency-plot.py OUT.svg RATE=RESULTS.jsonl [RATE=RESULTS.jsonl ...]

Each RESULTS.jsonl is the rig's `results.jsonl` of one `MODES=rate` run at RATE requests per
second. Per target and rate it takes the median p50, p90 and p99 over the rounds (rounds the
rig marked starved or disturbed are left out when a clean one exists), draws one panel per
percentile (latency on a log scale, offered rate on the x axis, one line per target), and
prints the same figures as a Markdown table. A hollow marker is a rate the target did not
sustain (achieved under 97 % of offered) or answered with errors.
"""

import json
import math
import statistics
import sys

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
PCTS = [("p50_ms", "p50"), ("p90_ms", "p90"), ("p99_ms", "p99")]


def load(pairs):
    """{target: {rate: {"p50_ms": .., "p90_ms": .., "p99_ms": .., "rps": .., "errors": .., "cpu": ..}}}"""
    data = {}
    for pair in pairs:
        rate, path = pair.split("=", 1)
        rate = int(rate)
        rows = {}
        with open(path) as f:
            for line in f:
                r = json.loads(line)
                if r.get("mode") != "rate" or "failed" in r:
                    continue
                rows.setdefault(r["target"], []).append(r)
        for target, rs in rows.items():
            clean = [r for r in rs if not r.get("starved") and not r.get("disturbed")] or rs
            agg = {k: statistics.median(r[k] for r in clean if r.get(k) is not None) for k, _ in PCTS}
            agg["rps"] = statistics.median(r["rps"] for r in clean)
            agg["errors"] = sum(r.get("errors", 0) for r in clean)
            cpu = [r["cpu_us_per_req"] for r in clean if r.get("cpu_us_per_req")]
            agg["cpu"] = statistics.median(cpu) if cpu else None
            agg["rounds"] = f"{len(clean)}/{len(rs)}"
            data.setdefault(target, {})[rate] = agg
    return data


def sustained(rate, agg):
    return agg["rps"] >= 0.97 * rate and agg["errors"] == 0


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def svg(data, title):
    targets = sorted(data, key=lambda t: (t != "mse-gateway", t))
    rates = sorted({r for t in data.values() for r in t})
    vals = [a[k] for t in data.values() for a in t.values() for k, _ in PCTS if a.get(k)]
    lo = 10 ** math.floor(math.log10(min(vals)))
    hi = 10 ** math.ceil(math.log10(max(vals)))
    pw, ph, ml, mt, gap = 300, 260, 60, 50, 40
    width = ml + 3 * pw + 2 * gap + 20
    height = mt + ph + 110
    xmin, xmax = 0, max(rates) * 1.05

    def x(panel, rate):
        return ml + panel * (pw + gap) + pw * (rate - xmin) / (xmax - xmin)

    def y(ms):
        return mt + ph - ph * (math.log10(ms) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14">{esc(title)}</text>']
    for p, (key, name) in enumerate(PCTS):
        x0 = ml + p * (pw + gap)
        out.append(f'<text x="{x0 + pw / 2}" y="{mt - 10}" text-anchor="middle" font-size="13">{name}</text>')
        out.append(f'<rect x="{x0}" y="{mt}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>')
        decade = lo
        while decade <= hi * 1.001:
            for m in range(1, 10):
                v = decade * m
                if v > hi * 1.001:
                    break
                yy = y(v)
                out.append(f'<line x1="{x0}" x2="{x0 + pw}" y1="{yy:.1f}" y2="{yy:.1f}" '
                           f'stroke="{"#bbb" if m == 1 else "#eee"}"/>')
                if m == 1:
                    label = f"{v:g}"
                    out.append(f'<text x="{x0 - 4}" y="{yy + 4:.1f}" text-anchor="end">{label}</text>')
            decade *= 10
        for rate in rates:
            xx = x(p, rate)
            out.append(f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{mt}" y2="{mt + ph}" stroke="#eee"/>')
            out.append(f'<text x="{xx:.1f}" y="{mt + ph + 14}" text-anchor="middle">{rate / 1000:g}k</text>')
        out.append(f'<text x="{x0 + pw / 2}" y="{mt + ph + 30}" text-anchor="middle">offered req/s</text>')
        if p == 0:
            out.append(f'<text x="14" y="{mt + ph / 2}" text-anchor="middle" '
                       f'transform="rotate(-90 14 {mt + ph / 2})">latency, ms (log scale)</text>')
        for i, t in enumerate(targets):
            colour = COLOURS[i % len(COLOURS)]
            pts = [(r, a) for r, a in sorted(data[t].items()) if a.get(key)]
            path = " ".join(f"{x(p, r):.1f},{y(a[key]):.1f}" for r, a in pts)
            out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
            for r, a in pts:
                fill = colour if sustained(r, a) else "white"
                out.append(f'<circle cx="{x(p, r):.1f}" cy="{y(a[key]):.1f}" r="3.5" fill="{fill}" '
                           f'stroke="{colour}" stroke-width="1.5"><title>{esc(t)} at {r} req/s: '
                           f'{a[key]:.2f} ms ({a["rps"]:.0f} req/s served)</title></circle>')
    ly = mt + ph + 55
    for i, t in enumerate(targets):
        lx = ml + i * 160
        colour = COLOURS[i % len(COLOURS)]
        out.append(f'<line x1="{lx}" x2="{lx + 24}" y1="{ly}" y2="{ly}" stroke="{colour}" stroke-width="2"/>')
        out.append(f'<circle cx="{lx + 12}" cy="{ly}" r="3.5" fill="{colour}"/>')
        out.append(f'<text x="{lx + 30}" y="{ly + 4}">{esc(t)}</text>')
    out.append(f'<text x="{ml}" y="{ly + 25}" fill="#555">median over the rounds of each rate; '
               'hollow marker: rate not sustained (under 97 % served) or errors</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    data = load(sys.argv[2:])
    if not data:
        sys.exit("no rate rows in the results given")
    title = "Latency against offered load (oha, fixed rate, 32 keep-alive connections, GET /, one worker each)"
    with open(sys.argv[1], "w") as f:
        f.write(svg(data, title))
    rates = sorted({r for t in data.values() for r in t})
    print("| target | offered req/s | served req/s | p50 ms | p90 ms | p99 ms | CPU µs/req | rounds used | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for t in sorted(data, key=lambda t: (t != "mse-gateway", t)):
        for r in rates:
            a = data[t].get(r)
            if a:
                cpu = f"{a['cpu']:.1f}" if a["cpu"] else "-"
                print(f"| {t} | {r} | {a['rps']:.0f} | {a['p50_ms']:.2f} | {a['p90_ms']:.2f} | "
                      f"{a['p99_ms']:.2f} | {cpu} | {a['rounds']} | {a['errors']} |")


if __name__ == "__main__":
    main()
