#!/usr/bin/env python3
"""The table for docs/performance.md: before (barrier off, 0005 functions)
vs after (barrier on, 0006 functions), and the barrier alone."""
import json, os, statistics
HERE = os.path.dirname(os.path.abspath(__file__))
t = {tuple(k.split("\t")): v for k, v in json.load(open(f"{HERE}/medians.json")).items()}
names = list(dict.fromkeys(k[0] for k in t))
def med(k): return statistics.median(t[k])
def fmt(x): return f"{x:.3f}" if x < 1 else f"{x:.2f}" if x < 10 else f"{x:.1f}" if x < 100 else f"{x:,.0f}"
print("| query | login | before: no barrier, 0005 functions (ms) | after: 0006 (ms) | after / before | barrier alone: on / off |")
print("|---|---|--:|--:|--:|--:|")
for n in names:
    for role in ("sbb_scoped", "sbb_all"):
        off5, off6, on6 = (med((n, role, c)) for c in ("off5", "off6", "on6"))
        login = "h07 only" if role == "sbb_scoped" else "`*`"
        r1, r2 = on6 / off5, on6 / off6
        b = lambda r: f"**{r:.2f}**" if r >= 1.3 and on6 >= 1 else f"{r:.2f}"
        print(f"| {n} | {login} | {fmt(off5)} | {fmt(on6)} | {b(r1)} | {b(r2)} |")
