"""Peak memory of a twcs import must stay flat as files grow (issue: bounded memory).

    python -m benchmarks.import_memory --rows 2000000 --cap-mb 1024

Generates a twcs-format CSV once (benchmarks/data/), imports it into a fresh database in a child
process and reports the child's peak RSS against the cap. Exits 1 when the cap is exceeded.
"""
from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
HEADER = "tweet_id,author_id,inbound,created_at,text,response_tweet_id,in_response_to_tweet_id\n"
BRANDS = [f"Brand{n}Care" for n in range(200)]


def write_twcs(path: Path, rows: int, seed: int = 5) -> None:
    """Customer mention / brand reply pairs with multi-line quoted text now and then."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".partial")
    with open(tmp, "w", encoding="utf-8") as out:
        out.write(HEADER)
        for tweet in range(1, rows + 1, 2):
            brand = rng.choice(BRANDS)
            customer = 100000 + rng.randrange(500000)
            minute = tweet // 2
            stamp = time.strftime("%a %b %d %H:%M:%S +0000 %Y", time.gmtime(1506816000 + minute * 7))
            later = time.strftime("%a %b %d %H:%M:%S +0000 %Y", time.gmtime(1506816000 + minute * 7 + 300))
            out.write(f'{tweet},{customer},True,{stamp},"@{brand} my order {tweet} is late?\nplease help",'
                      f"{tweet + 1},\n")
            if tweet + 1 <= rows:
                out.write(f"{tweet + 1},{brand},False,{later},@{customer} Sorry! Please DM us. ^JK,,{tweet}\n")
    tmp.rename(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--cap-mb", type=int, default=1024)
    args = parser.parse_args()
    csv = DATA / f"twcs_{args.rows}.csv"
    if not csv.exists():
        write_twcs(csv, args.rows)
    db = DATA / f"import_memory_{args.rows}.duckdb"
    for leftover in (db, db.with_name(db.name + ".wal")):
        leftover.unlink(missing_ok=True)
    started = time.perf_counter()
    child = subprocess.run(
        [sys.executable, "-c",
         "import sys; from pipeline.store import writer; from connectors.twcs import import_twcs\n"
         "with writer(sys.argv[1]) as s: print(import_twcs(s, sys.argv[2])[1].loaded)", str(db), str(csv)],
        capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    result = {"rows": args.rows, "loaded": int(child.stdout.strip()), "seconds": round(seconds, 1),
              "peak_rss_mb": round(peak_mb), "cap_mb": args.cap_mb, "within_cap": peak_mb <= args.cap_mb}
    print(json.dumps(result))
    return 0 if result["within_cap"] else 1


if __name__ == "__main__":
    sys.exit(main())
