import re,glob,os,sys
def norm(p):
    body = open(p).read().split("QUERY PLAN",1)[1]
    out=[]
    for l in body.splitlines():
        if re.search(r"^Planning:$|(Planning|Execution) Time|Buffers:|Memory|Heap Blocks|Timing:|Functions:|Options:|Batches|^\(", l.strip()): continue
        l = re.sub(r"\(cost=[^)]*\)", "", l); l = re.sub(r"\(actual[^)]*\)", "", l)
        l = re.sub(r"Rows Removed by Filter: \d+", "Rows Removed by Filter: N", l)
        out.append(l.rstrip())
    return out
for f in sorted(glob.glob("plans/*.on6.txt")):
    for other in ("off6","off5","on5"):
        g = f.replace(".on6.", f".{other}.")
        same = norm(f)==norm(g)
        if not same: print("DIFF", os.path.basename(f), "vs", other)
