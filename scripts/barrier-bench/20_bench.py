#!/usr/bin/env python3
"""Each dashboard/report/ad hoc query x analyst login x configuration, in
one psql session, configurations interleaved within each round (order
rotated per round), round 0 discarded as warm-up. Configurations:
  on6  security_barrier on,  0006's scope functions (what 0006 ships)
  off6 security_barrier off, 0006's functions
  off5 security_barrier off, 0005's functions (the schema before 0006)
  on5  security_barrier on,  0005's functions
The login is taken with SET SESSION AUTHORIZATION (sets session_user,
which is what the scope checks), the view altered as postgres between.
Usage: python3 20_bench.py [rounds] > results.tsv ; plans go to plans/."""
import os, re, subprocess, sys, statistics, json
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from queries import QUERIES

HERE = os.path.dirname(os.path.abspath(__file__))
DB = os.environ.get("DB", "outreach_sb_bench")
PSQL = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-X", "-q", "-d", DB]
ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
ROLES = ["sbb_scoped", "sbb_all"]
CFGS = ["on6", "off6", "on5", "off5"]
ONLY = os.environ.get("ONLY")  # comma-separated query prefixes

def switch(cur, cfg):
    s = "RESET SESSION AUTHORIZATION;\n"
    if cur is None or cur[-1] != cfg[-1]:
        s += f"\\i {HERE}/{'31_fns_0006' if cfg[-1] == '6' else '30_fns_0005'}.sql\n"
    if cur is None or cur[:-1] != cfg[:-1]:
        s += f"ALTER VIEW outreach.daily_metrics SET (security_barrier = {'true' if cfg.startswith('on') else 'false'});\n"
    return s

def run(script):
    r = subprocess.run(PSQL, input=script, capture_output=True, text=True)
    if r.returncode != 0 or "ERROR" in r.stderr:
        sys.exit(r.stderr)
    return r.stdout

queries = {k: v for k, v in QUERIES.items() if not ONLY or k.split()[0] in ONLY.split(",")}

# 1. Plans with timing and result checksums, once per (query, role, config).
os.makedirs(f"{HERE}/plans", exist_ok=True)
script, cur = "", None
for qi, (name, sql) in enumerate(queries.items()):
    for role in ROLES:
        for cfg in CFGS:
            script += switch(cur, cfg); cur = cfg
            script += f"SET SESSION AUTHORIZATION {role};\n"
            script += f"\\echo '@@PLAN {name}\t{role}\t{cfg}'\nEXPLAIN (ANALYZE, BUFFERS) {sql};\n"
            if not name.startswith(("D3", "D4")):
                script += (f"\\echo '@@SUM {name}\t{role}\t{cfg}'\n"
                           f"SELECT count(*) || ' ' || md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM ({sql}) t;\n")
script += switch(cur, "on6")
out = run(script)
sums = {}
for block in out.split("@@")[1:]:
    head, _, body = block.partition("\n")
    kind, _, key = head.partition(" ")
    name, role, cfg = key.split("\t")
    if kind == "PLAN":
        fn = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_")
        with open(f"{HERE}/plans/{fn}.{role}.{cfg}.txt", "w") as f:
            f.write(f"-- {name} as {role}, {cfg}\n{sql if False else queries[name].strip()}\n\n{body}")
    else:
        sums.setdefault((name, role), {})[cfg] = [l.strip() for l in body.splitlines() if l.strip() and not l.strip().startswith(("?column?", "---", "("))][0]
for (name, role), by in sums.items():
    if len(set(by.values())) != 1:
        print(f"# RESULTS DIFFER {name} {role}: {by}", file=sys.stderr)
print(f"# result checksums identical across configurations for {sum(len(set(b.values())) == 1 for b in sums.values())}/{len(sums)} (query, login) pairs", file=sys.stderr)

# 2. Timed runs: EXPLAIN (ANALYZE, BUFFERS, TIMING OFF), configurations
# interleaved, order rotated each round.
script, cur = "", None
for r in range(ROUNDS + 1):
    for qi, (name, sql) in enumerate(queries.items()):
        for role in ROLES:
            k = (r + qi) % len(CFGS)
            order = CFGS[k:] + CFGS[:k]
            if r % 2: order = order[::-1]
            for cfg in order:
                script += switch(cur, cfg); cur = cfg
                script += f"SET SESSION AUTHORIZATION {role};\n"
                script += f"\\echo '@@{r}\t{name}\t{role}\t{cfg}'\nEXPLAIN (ANALYZE, BUFFERS, TIMING OFF) {sql};\n"
script += switch(cur, "on6")
out = run(script)
times = {}
for block in out.split("@@")[1:]:
    head, _, body = block.partition("\n")
    r, name, role, cfg = head.split("\t")
    m = re.search(r"Execution Time: ([\d.]+) ms", body)
    b = re.search(r"Buffers: (shared [^\n]*)", body)
    print(f"{r}\t{name}\t{role}\t{cfg}\t{m.group(1)}\t{b.group(1) if b else ''}")
    if r != "0":
        times.setdefault((name, role, cfg), []).append(float(m.group(1)))
# Merged into what earlier runs measured (ONLY= re-measures some queries).
old = json.load(open(f"{HERE}/medians.json")) if os.path.exists(f"{HERE}/medians.json") and ONLY else {}
old.update({"\t".join(k): v for k, v in times.items()})
with open(f"{HERE}/medians.json", "w") as f:
    json.dump(old, f, indent=0)
