#!/usr/bin/env python3
"""For each state of the pending deltas: set it, rebuild the plain tables,
check correctness (40_check.sql), save one plan per query x login x variant
(EXPLAIN ANALYZE BUFFERS) with a checksum of its result, then time every
query: one warm-up round and ROUNDS rounds of EXPLAIN (ANALYZE, BUFFERS,
TIMING OFF), the three variants interleaved, their order rotated each round.

Variants: new = outreach.* (0007), old = v6.* (0006, 15_keep_old_views.sql),
plain = plain.* (35_plain.sql), v7x = v7x.* (70_fix_views.sql: 0007 with
the anti-join stating region_level and day >= period_start; regional and
program queries only: its daily_metrics is 0007's), v7g = v7g.*
(72_gated_views.sql: 0007 with the anti-join skipped by a one-time test
when the deltas table is empty). A variant whose schema is missing is left
out; VARIANTS=new,old,plain picks. Logins: su = postgres (scope '*'),
scoped = vb_scoped (institution h07; daily_metrics only, every variant but
plain). "new" is whatever outreach.* holds: candidate_0007.sql as
00_create.sh applies it.

States (STATES=a,b,... to run some; default all):
  none         nothing pending (deltas truncated, analyzed)
  small        ~5,000 delta rows per table over the whole history, analyzed
  large        ~100k daily, ~500k regional, ~79k program delta rows over the
               whole history, analyzed
  recent       ~114k daily, ~492k regional, ~72k program delta rows on the
               last 15 days (live ingestion under load), analyzed
  stale_full   recent, ANALYZE, then DELETE every delta (what a fold does):
               statistics say ~500k regional rows, the tables hold none
  stale_empty  recent, DELETE every delta, ANALYZE (an autoanalyze right
               after a fold: 0 live rows over the dead pages), then recent
               again without ANALYZE: statistics say 0 rows per page
  stale_trunc  TRUNCATE, ANALYZE (0 rows, 0 pages), then recent without
               ANALYZE (the planner estimates from the file's size)

Usage: python3 50_bench.py [rounds] ; writes results.tsv (appends),
checks.tsv, sums.tsv, plans/<state>/, medians.json (merged)."""
import os, re, subprocess, sys, statistics, json, time
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from queries import QUERIES

DB = os.environ.get("DB", "outreach_views_bench")
PSQL = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-X", "-q", "-d", DB]
ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
TIMEOUT = os.environ.get("TIMEOUT", "120s")
VARIANTS = os.environ.get("VARIANTS", "new,old,plain,v7x,v7g").split(",")
SCHEMA = {"new": "outreach", "old": "v6", "plain": "plain", "v7x": "v7x", "v7g": "v7g"}
SMALL = dict(dpicks=3800, rpicks=950, ppicks=3800)
LARGE = dict(dpicks=76000, rpicks=95000, ppicks=60000)
RECENT = dict(dpicks=40000, rpicks=20000, ppicks=2000, dcopies=3, rcopies=8, pcopies=80, since="2026-11-20")
NONE = dict(dpicks=0, rpicks=0, ppicks=0)
DELTAS = "outreach.daily_deltas, outreach.regional_deltas, outreach.program_deltas"
ALL_STATES = ["none", "small", "large", "recent", "stale_full", "stale_empty", "stale_trunc"]
STATES = os.environ.get("STATES", ",".join(ALL_STATES)).split(",")
ONLY = os.environ.get("ONLY")  # comma-separated query prefixes
queries = {k: v for k, v in QUERIES.items() if not ONLY or k.split()[0] in ONLY.split(",")}

_have = subprocess.run(PSQL + ["-At", "-c", "SELECT string_agg(nspname, ',') FROM pg_namespace"],
                       capture_output=True, text=True).stdout.strip().split(",")
VARIANTS = [v for v in VARIANTS if SCHEMA[v] in _have]

def log(*a):
    print(time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)

def psql(script=None, file=None, vars={}, check=True):
    cmd = PSQL + [a for k, v in vars.items() for a in ("-v", f"{k}={v}")]
    if file:
        cmd += ["-v", "ON_ERROR_STOP=1", "-f", f"{HERE}/{file}"]
    r = subprocess.run(cmd, input=script, capture_output=True, text=True)
    if check and (r.returncode != 0 or "ERROR" in r.stderr):
        sys.exit(f"psql failed: {r.stderr}")
    return r.stdout, r.stderr

def deltas(picks, truncate=1):
    out, _ = psql(file="30_deltas.sql", vars={**picks, "truncate": truncate})
    return out.strip().splitlines()[-1]

def set_state(state):
    """Deltas for the state; returns a note on what the statistics say."""
    delete = "DELETE FROM outreach.daily_deltas; DELETE FROM outreach.regional_deltas; DELETE FROM outreach.program_deltas;"
    if state in ("none", "small", "large", "recent"):
        deltas({"none": NONE, "small": SMALL, "large": LARGE, "recent": RECENT}[state])
        psql(f"ANALYZE {DELTAS};")
    elif state == "stale_full":
        deltas(RECENT)
        psql(f"ANALYZE {DELTAS};")
        psql(delete)
    elif state == "stale_empty":
        deltas(RECENT)
        psql(f"{delete} ANALYZE {DELTAS};")
        deltas(RECENT, truncate=0)
    elif state == "stale_trunc":
        deltas(NONE)
        psql(f"ANALYZE {DELTAS};")
        deltas(RECENT, truncate=0)
    out, _ = psql("""\\pset format unaligned
\\pset tuples_only on
SELECT string_agg(format('%s: %s rows, pg_class %s tuples / %s pages, %s pages now',
       c.relname, (xpath('//n/text()', query_to_xml('SELECT count(*) AS n FROM outreach.' || c.relname, false, false, '')))[1]::text,
       c.reltuples, c.relpages, pg_relation_size(c.oid) / 8192), '; ' ORDER BY c.relname)
FROM pg_class c WHERE c.relnamespace = 'outreach'::regnamespace AND c.relname LIKE '%\\_deltas';""")
    return out.strip()

def login_sql(login):
    return "RESET SESSION AUTHORIZATION;\n" if login == "su" else "SET SESSION AUTHORIZATION vb_scoped;\n"

def cases():
    for name, (sql, logins) in queries.items():
        for login in logins:
            yield name, sql, login, [v for v in VARIANTS if not (login == "scoped" and v == "plain")
                                     and not (v == "v7x" and "daily_metrics" in sql)]

def run_state(state, out_tsv, checks_tsv, sums_tsv):
    t0 = time.time()
    note = set_state(state)
    log(f"[{state}] deltas set: {note}")
    psql(file="35_plain.sql")
    log(f"[{state}] plain tables rebuilt")
    out, err = psql(file="40_check.sql", vars={"plain": 1}, check=False)
    if "ERROR" in err:
        log(f"[{state}] !!! 40_check.sql failed: {err.strip()}")
    bad = 0
    for line in out.split("CHECK\t")[1:]:
        f = line.rstrip("\n").split("\t", 5)
        checks_tsv.write(f"{state}\t" + "\t".join(f[:5]) + "\n")
        if f[3] != "0" or f[4] != "0":
            bad += 1
            log(f"[{state}] !!! DIFFERENCE {f[0]} as {f[1]}: {f[3]} rows only in the first, {f[4]} only in the second{f[5]}")
    checks_tsv.flush()
    log(f"[{state}] correctness: {out.count('CHECK')} comparisons, {bad} with differences")
    # Plans (with timing) and result checksums.
    pdir = f"{HERE}/plans/{state}"
    os.makedirs(pdir, exist_ok=True)
    script = f"SET statement_timeout = '{TIMEOUT}';\n\\pset pager off\n"
    for name, sql, login, variants in cases():
        for v in variants:
            q = sql.format(S=SCHEMA[v])
            script += login_sql(login)
            script += f"\\echo '@@PLAN\t{name}\t{login}\t{v}'\nEXPLAIN (ANALYZE, BUFFERS, VERBOSE) {q};\n"
            script += (f"\\echo '@@SUM\t{name}\t{login}\t{v}'\n"
                       f"SELECT 'sum=' || count(*) || ' ' || md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM ({q}) t;\n")
    out, err = psql(script + "\\echo '@@END'\n", check=False)
    timed_out = set()
    sums = {}
    for block in out.split("@@")[1:-1]:
        head, _, body = block.partition("\n")
        kind, name, login, v = head.split("\t")
        fn = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_")
        if kind == "PLAN":
            if "Execution Time" not in body:
                timed_out.add((name, login, v))
            with open(f"{pdir}/{fn}.{login}.{v}.txt", "w") as f:
                f.write(f"-- {name} as {login}, {v} views, state {state}\n{queries[name][0].format(S=SCHEMA[v]).strip()}\n\n{body}")
        else:
            m = re.search(r"sum=(\S+ \S+)", body)
            sums.setdefault((name, login), {})[v] = m.group(1) if m else "timeout"
    for e in re.findall(r"ERROR:.*", err):
        log(f"[{state}] psql: {e}")
    for (name, login), by in sums.items():
        same = len(set(by.values())) == 1
        sums_tsv.write(f"{state}\t{name}\t{login}\t{'same' if same else 'DIFFER'}\t{json.dumps(by)}\n")
        if not same:
            log(f"[{state}] !!! RESULTS DIFFER {name} {login}: {by}")
    sums_tsv.flush()
    log(f"[{state}] plans saved; timed out: {sorted(timed_out) or 'none'}")
    # Timed rounds.
    script = f"SET statement_timeout = '{TIMEOUT}';\n"
    for r in range(ROUNDS + 1):
        for qi, (name, sql, login, variants) in enumerate(cases()):
            k = (r + qi) % len(variants)
            order = variants[k:] + variants[:k]
            if r % 2:
                order = order[::-1]
            for v in order:
                if (name, login, v) in timed_out:
                    continue
                script += login_sql(login)
                script += f"\\echo '@@{r}\t{name}\t{login}\t{v}'\nEXPLAIN (ANALYZE, BUFFERS, TIMING OFF) {sql.format(S=SCHEMA[v])};\n"
    out, err = psql(script + "\\echo '@@END'\n", check=False)
    times = {}
    for block in out.split("@@")[1:-1]:
        head, _, body = block.partition("\n")
        r, name, login, v = head.split("\t")
        m = re.search(r"Execution Time: ([\d.]+) ms", body)
        p = re.search(r"Planning Time: ([\d.]+) ms", body)
        b = re.search(r"Buffers: (shared [^\n]*)", body)
        ms = m.group(1) if m else "timeout"
        out_tsv.write(f"{state}\t{r}\t{name}\t{login}\t{v}\t{ms}\t{p.group(1) if p else ''}\t{b.group(1).strip() if b else ''}\n")
        if r != "0" and m:
            times.setdefault(f"{state}\t{name}\t{login}\t{v}", []).append([float(m.group(1)), float(p.group(1)) if p else 0.0])
    out_tsv.flush()
    for (name, login, v) in timed_out:
        times[f"{state}\t{name}\t{login}\t{v}"] = "timeout " + TIMEOUT
    log(f"[{state}] timed {ROUNDS} rounds in {time.time() - t0:.0f} s (whole state)")
    return times, note

med_path = f"{HERE}/medians.json"
medians = json.load(open(med_path)) if os.path.exists(med_path) else {}
with open(f"{HERE}/results.tsv", "a") as out_tsv, open(f"{HERE}/checks.tsv", "a") as checks_tsv, \
     open(f"{HERE}/sums.tsv", "a") as sums_tsv:
    for state in STATES:
        assert state in ALL_STATES, state
        times, note = run_state(state, out_tsv, checks_tsv, sums_tsv)
        medians.update(times)
        medians[f"{state}\t_deltas"] = note
        json.dump(medians, open(med_path, "w"), indent=0)
# Leave nothing pending.
set_state("none")
