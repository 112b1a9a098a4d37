#!/usr/bin/python3
"""Summary of a bench/compare.sh results folder: Rota's rota-bench lines,
and the peers harness's BullMQ and Rota lines with the ratios the
performance issue asks for; PNG charts with gnuplot when it is installed.

    bench/compare.py bench/results/<time>
    bench/compare.py --pairs bench/results/pairs-<time>   (bench/pairs.sh)
"""

import json
import os
import shutil
import statistics
import subprocess
import sys


def lines(path):
    if not os.path.exists(path):
        return []
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
    return out


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def peers(rows, workload):
    """Medians of one workload: jobs/s, server µs per job, p50/p99."""
    rs = [r for r in rows if r.get("workload") == workload]
    if not rs:
        return None
    out = {"runs": len(rs)}
    if workload in ("w1", "w1bulk"):
        out["rate"] = median([r["submit"]["jobs_per_s"] for r in rs])
        out["p99"] = median([r["submit"].get("p99_ms") for r in rs])
    elif workload == "w2":
        out["rate"] = median([r["e2e"]["jobs_per_s"] for r in rs])
        out["p99"] = median([r["e2e"]["submit_to_start"]["p99_ms"] for r in rs])
    elif workload == "w3":
        out["rate"] = None
        out["p99"] = median([(r.get("delayed") or {}).get("lateness", {}).get("p99_ms")
                             for r in rs])
    out["cpu_us"] = median([r["server_cpu_s"] * 1e6 / r["n"] for r in rs
                            if r.get("server_cpu_s") is not None])
    return out


def fmt(x, unit=""):
    if x is None:
        return "-"
    return f"{x:,.0f}{unit}" if x >= 100 else f"{x:.1f}{unit}"


def ratio(a, b):
    return "-" if a is None or b in (None, 0) else f"{a / b:.2f}x"


def charts(out, bench):
    if shutil.which("gnuplot") is None:
        print("(no charts: gnuplot is not installed; apt-get install gnuplot-nox)")
        return
    script = []
    dat = os.path.join(out, "submit-progress.dat")
    if os.path.getsize(dat) if os.path.exists(dat) else 0:
        script += [
            "set terminal png size 800,400",
            f"set output '{os.path.join(out, 'submit-throughput.png')}'",
            "set title 'rota-bench submit: jobs/s over time'",
            "set xlabel 's'", "set ylabel 'jobs/s'", "set grid",
            f"plot '{dat}' using 1:2 with linespoints title 'jobs/s'",
        ]
    lat = os.path.join(out, "latency.dat")
    with open(lat, "w") as f:
        for b in bench:
            key = "latency_ms" if "latency_ms" in b else (
                "lateness_ms" if "lateness_ms" in b else "submit_to_start_ms")
            v = b.get(key) or {}
            if v:
                f.write(f"{b['mode']} {v.get('p50', 0)} {v.get('p99', 0)} {v.get('max', 0)}\n")
    script += [
        "reset",
        "set terminal png size 800,400",
        f"set output '{os.path.join(out, 'latency.png')}'",
        "set ylabel 'ms'", "set xlabel 'rota-bench mode'",
        "set title 'rota-bench latency percentiles (ms)'",
        "set style data histograms", "set style fill solid", "set logscale y",
        "set grid",
        f"plot '{lat}' using 2:xtic(1) title 'p50', '' using 3 title 'p99', '' using 4 title 'max'",
    ]
    subprocess.run(["gnuplot"], input="\n".join(script), text=True, check=False)
    print(f"charts: {out}/submit-throughput.png, {out}/latency.png")


def own(bench, bull_w1):
    """rota-bench's figures against issue 13's targets: single submits
    against BullMQ's W1 of the same sitting, bulk and e2e against their
    floors. e2e prints a submit line of its own (batches of 100) before its
    e2e line: the bulk run is the largest batch submit."""
    single = [b for b in bench if b.get("mode") == "submit" and b.get("batch") == 1]
    bulk = [b for b in bench if b.get("mode") == "submit" and (b.get("batch") or 1) > 1]
    bulk = max(bulk, key=lambda b: b.get("jobs", 0)) if bulk else None
    e2e = [b for b in bench if b.get("mode") == "e2e"]
    rate = single[0]["jobs_per_s"] if single else None
    vb = bull_w1.get("rate") if bull_w1 else None
    print("\nrota-bench against the targets:")
    print(f"  {'submit --spread, 1 per request, jobs/s':<40} {fmt(rate):>10}"
          f"   vs BullMQ W1 {fmt(vb)}: {ratio(rate, vb)} (target >= 1x)")
    print(f"  {'bulk, 100 per request, jobs/s':<40} "
          f"{fmt(bulk['jobs_per_s'] if bulk else None):>10}   (target >= 100,000)")
    print(f"  {'e2e completed jobs/s':<40} "
          f"{fmt(e2e[0]['completed_per_s'] if e2e else None):>10}   (target >= 10,000)")


def pair_rows(bull, bench, tmpfs=()):
    """bench/pairs.sh's runs, pair by pair: the k-th BullMQ W1 of each
    durability (the harness's label names it) with the k-th rota-bench
    single-submit run, and the k-th such run on tmpfs (TMPFS=1). Returns
    [(everysec, always, rota, rota_tmpfs)] jobs/s."""
    def w1(mode):
        return [r["submit"]["jobs_per_s"] for r in bull
                if r.get("workload") == "w1" and r.get("label", "").endswith(mode)]

    def single(runs):
        return [b["jobs_per_s"] for b in runs
                if b.get("mode") == "submit" and b.get("batch") == 1]
    cols = (w1("everysec"), w1("always"), single(bench), single(tmpfs))
    n = max(map(len, cols))
    return [tuple(c[k] if k < len(c) else None for c in cols) for k in range(n)]


def pairs(out):
    tmpfs_path = os.path.join(out, "rota-bench-tmpfs.jsonl")
    with_tmpfs = os.path.exists(tmpfs_path)
    rows = pair_rows(lines(os.path.join(out, "peers-bullmq.jsonl")),
                     lines(os.path.join(out, "rota-bench.jsonl")),
                     lines(tmpfs_path) if with_tmpfs else ())
    print("single submits in pairs (jobs/s; BullMQ's W1 of the peers harness, then "
          "rota-bench submit --spread, C=32):")
    head = (f"  {'pair':<5} {'BullMQ everysec':>16} {'BullMQ always':>14} {'Rota':>10} "
            f"{'Rota/everysec':>14} {'Rota/always':>12}")
    if with_tmpfs:
        head += f" {'Rota tmpfs':>11} {'tmpfs/everysec':>15}"
    print(head)
    ratios = ([], [], [])
    for k, (e, a, r, t) in enumerate(rows, 1):
        for col, (x, y) in zip(ratios, ((r, e), (r, a), (t, e))):
            if x is not None and y:
                col.append(x / y)
        line = (f"  {k:<5} {fmt(e):>16} {fmt(a):>14} {fmt(r):>10} "
                f"{ratio(r, e):>14} {ratio(r, a):>12}")
        if with_tmpfs:
            line += f" {fmt(t):>11} {ratio(t, e):>15}"
        print(line)
    r_every = ratios[0]
    print(f"  median of the ratios: {ratio(median(r_every), 1)} "
          f"against AOF everysec (issue 13's target: >= 1x), "
          f"{ratio(median(ratios[1]), 1)} against appendfsync always; "
          f"{sum(1 for x in r_every if x >= 1)} of {len(r_every)} pairs at or above 1x")
    if with_tmpfs:
        print(f"  on tmpfs (no disk wait in the commit): {ratio(median(ratios[2]), 1)} "
              f"against AOF everysec (median); "
              f"{sum(1 for x in ratios[2] if x >= 1)} of {len(ratios[2])} pairs at or above 1x")
    if any(None in row[:3] or (with_tmpfs and row[3] is None) for row in rows):
        print("  (a run is missing in some pair: see the logs in this folder)")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--pairs":
        pairs(sys.argv[2])
        return
    out = sys.argv[1]
    bench = lines(os.path.join(out, "rota-bench.jsonl"))
    print("rota-bench (fresh plain 3-node cluster, all nodes):")
    for b in bench:
        print("  " + json.dumps(b, separators=(",", ":")))
    bull = lines(os.path.join(out, "peers-bullmq.jsonl"))
    rota = lines(os.path.join(out, "peers-rota.jsonl"))
    own(bench, peers(bull, "w1") if bull else None)
    if bull and rota:
        print("\npeers harness, same sitting (medians):")
        print(f"  {'workload':<34} {'BullMQ':>12} {'Rota':>12} {'Rota/BullMQ':>12}")
        rows = [
            ("W1 jobs/s", "w1", "rate", ""),
            ("W1 server CPU per job", "w1", "cpu_us", " us"),
            ("W1-bulk jobs/s", "w1bulk", "rate", ""),
            ("W2 completed jobs/s", "w2", "rate", ""),
            ("W2 submit->start p99 ms", "w2", "p99", ""),
            ("W3 lateness p99 ms", "w3", "p99", ""),
        ]
        for label, wl, key, unit in rows:
            pb, pr = peers(bull, wl), peers(rota, wl)
            vb = pb.get(key) if pb else None
            vr = pr.get(key) if pr else None
            print(f"  {label:<34} {fmt(vb, unit):>12} {fmt(vr, unit):>12} {ratio(vr, vb):>12}")
        print("  targets (issue 13): W1 CPU <= 3x, W2 >= 1.5x, W3 p99 <= 50 ms "
              "(W1 jobs/s: rota-bench's, above)")
    charts(out, bench)


if __name__ == "__main__":
    main()
