#!/usr/bin/env python3
"""The summary table from medians.json (written by 20_bench.py)."""
import json, os, statistics
HERE = os.path.dirname(os.path.abspath(__file__))
t = {tuple(k.split("\t")): v for k, v in json.load(open(f"{HERE}/medians.json")).items()}
names = list(dict.fromkeys(k[0] for k in t))
def med(k): return statistics.median(t[k])
def fmt(x): return f"{x:.3f}" if x < 1 else f"{x:.2f}" if x < 10 else f"{x:.1f}" if x < 100 else f"{x:.0f}"
print("| query | login | barrier off (0005 fns) ms | barrier off ms | barrier on ms (0006) | on / off | on / pre-0006 | barrier on, 0005 fns ms | runs |")
print("|---|---|--:|--:|--:|--:|--:|--:|--:|")
for n in names:
    for role in ("sbb_scoped", "sbb_all"):
        off5, off6, on6, on5 = (med((n, role, c)) for c in ("off5", "off6", "on6", "on5"))
        login = "scoped (h07)" if role == "sbb_scoped" else "'*'"
        print(f"| {n} | {login} | {fmt(off5)} | {fmt(off6)} | {fmt(on6)} | {on6/off6:.2f} | {on6/off5:.2f} | {fmt(on5)} | {len(t[(n, role, 'on6')])} |")
