"""One markdown row of the bench tables from a load generator's JSON summary
(`synod bench --json`, `anchor-load --json`) on stdin: system, clients, writes/s,
p50, p99, p999 µs. Errors the generator counted go to stderr.

    ... --json | python3 scripts/bench_row.py LABEL
"""
import json
import sys

d = json.load(sys.stdin)
l = d["latency_us"]
cells = [sys.argv[1], d["clients"], round(d["ok_per_sec"]), l["p50"], l["p99"], l["p999"]]
print("| " + " | ".join(str(c) for c in cells) + " |")
if d.get("errors"):
    print(f"{sys.argv[1]}, {d['clients']} clients: {d['errors']} errors, first: {d['first_error']}",
          file=sys.stderr)
