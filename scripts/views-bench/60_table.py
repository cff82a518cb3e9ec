#!/usr/bin/env python3
"""Tables from medians.json (50_bench.py): per state, each query's median
execution time (ms) in each variant, new/plain and new/old, and the median
planning time of the new views. Markdown on stdout.
  python3 60_table.py            # every state measured
  python3 60_table.py none large # some states"""
import json, os, statistics, sys
HERE = os.path.dirname(os.path.abspath(__file__))
raw = json.load(open(f"{HERE}/medians.json"))
notes = {k.split("\t")[0]: v for k, v in raw.items() if k.endswith("\t_deltas")}
t = {tuple(k.split("\t")): v for k, v in raw.items() if not k.endswith("\t_deltas")}
ORDER = ["none", "small", "large", "recent", "stale_full", "stale_empty", "stale_trunc"]
states = sys.argv[1:] or [s for s in ORDER if s in notes]

def med(k, i=0):
    v = t.get(k)
    if v is None:
        return None
    if isinstance(v, str):
        return float("inf")
    return statistics.median(x[i] for x in v)

def fmt(x):
    if x is None:
        return "–"
    if x == float("inf"):
        return "timeout"
    return f"{x:.2f}" if x < 10 else f"{x:.1f}" if x < 100 else f"{x:,.0f}"

def ratio(a, b):
    if a is None or b is None:
        return "–"
    if a == float("inf"):
        return "∞"
    r = a / b
    return f"**{r:.2f}**" if r > 1.3 else f"{r:.2f}"

names = list(dict.fromkeys(k[1] for k in t))
for s in states:
    print(f"\n#### {s}\n\n{notes.get(s, '')}\n")
    print("| query | login | new ms | old ms | plain ms | new / plain | new / old | v7x ms | v7g ms | v7g / plain | new planning ms |")
    print("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for n in names:
        for login in ("su", "scoped"):
            new, old, plain, fix, gate = (med((s, n, login, v)) for v in ("new", "old", "plain", "v7x", "v7g"))
            if new is None:
                continue
            who = "postgres" if login == "su" else "scoped (h07)"
            print(f"| {n} | {who} | {fmt(new)} | {fmt(old)} | {fmt(plain)} | {ratio(new, plain)} | {ratio(new, old)} "
                  f"| {fmt(fix)} | {fmt(gate)} | {ratio(gate, plain)} | {fmt(med((s, n, login, 'new'), 1))} |")
