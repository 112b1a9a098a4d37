#!/usr/bin/python3
"""Checks one fault run from its files and prints a JSON report and one
verdict line. Exit 0 when every safety figure is 0, 1 otherwise.

    tests/fault/check.py RUN_DIR [--json-only]

Files read in RUN_DIR (written by tests/fault/run):
  meta.json       nemeses, scheduler_only, seed, flags
  history.jsonl   every client request and answer
  nemesis.jsonl   every fault and heal
  exec-*.log      one line per execution: job_id attempt lease_token start_ns
  final.json      after drain: the job table, digest samples per node,
                  metrics per node, drain/convergence flags

Figures (see README.md): lost, unexpected, stale_accepted, double_accepted,
divergent, duplicates (+ lease expiries), failover p50/max, and a few more
(cancel_violations, unexecuted_accepted, same_token_reexec, unconverged,
undrained, nemesis_unmet).
"""

import glob
import json
import os
import sys

TERMINAL = {"completed", "failed", "cancelled"}
SAFETY = ("lost", "unexpected", "stale_accepted", "double_accepted", "divergent",
          "idempotency_conflicts", "cancel_violations", "unexecuted_accepted", "same_token_reexec")


def _jsonl(path):
    out = []
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        pass    # a torn last line of a killed run
    except OSError:
        pass
    return out


def _load(path, default):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def _pct(values, p):
    if not values:
        return None
    s = sorted(values)
    i = min(len(s) - 1, max(0, int(round(p / 100.0 * (len(s) - 1)))))
    return s[i]


def check(run_dir):
    meta = _load(os.path.join(run_dir, "meta.json"), {})
    final = _load(os.path.join(run_dir, "final.json"), {})
    hist = _jsonl(os.path.join(run_dir, "history.jsonl"))
    nem = _jsonl(os.path.join(run_dir, "nemesis.jsonl"))
    examples = {}

    def example(fig, item):
        lst = examples.setdefault(fig, [])
        if len(lst) < 5:
            lst.append(item)

    # --- client history ----------------------------------------------------------
    submitted = set()
    acked_ids = {}          # key -> set of ids answered ok
    first_ack = {}          # key -> first ok record
    cancel_ops = {}         # job id -> list of cancel answers (in order)
    ops = {"submit_invoke": 0, "submit_ok": 0, "submit_err": 0, "cancel_invoke": 0,
           "cancel_ok": 0, "cancel_409": 0, "cancel_err": 0, "gave_up": 0}
    writes_ok = []          # (invoke t, answer t, node) of successful submits
    open_invoke = {}
    idem_conflicts = 0      # 409 to a retry of the same key and body
    for r in hist:
        op, typ = r.get("op"), r.get("type")
        key = r.get("key")
        if typ == "gave_up":
            ops["gave_up"] += 1
            continue
        if op == "submit":
            if typ == "invoke":
                ops["submit_invoke"] += 1
                submitted.add(key)
                open_invoke[(r.get("thr"), key)] = r["t"]
            elif typ == "ok":
                ops["submit_ok"] += 1
                acked_ids.setdefault(key, set()).add(r.get("id"))
                first_ack.setdefault(key, r)
                writes_ok.append((open_invoke.get((r.get("thr"), key), r["t"]), r["t"],
                                  r.get("node")))
            else:
                ops["submit_err"] += 1
                if r.get("status") == 409:
                    idem_conflicts += 1
                    example("idempotency_conflicts", r)
        elif op == "cancel":
            if typ == "invoke":
                ops["cancel_invoke"] += 1
            else:
                jid = r.get("id") or (r.get("path") or "").rsplit("/", 1)[-1]
                st = r.get("status")
                if st == 200:
                    ops["cancel_ok"] += 1
                elif st == 409:
                    ops["cancel_409"] += 1
                else:
                    ops["cancel_err"] += 1
                cancel_ops.setdefault(r.get("key"), []).append(st)

    # --- final table ---------------------------------------------------------------
    jobs = final.get("jobs") or []
    by_id = {j["id"]: j for j in jobs}
    by_key = {}
    for j in jobs:
        by_key.setdefault(j.get("idempotency_key"), []).append(j)

    lost_missing = lost_not_terminal = 0
    for key, ids in acked_ids.items():
        for jid in ids:
            j = by_id.get(jid)
            if j is None:
                lost_missing += 1
                example("lost", {"key": key, "id": jid, "why": "missing",
                                 "ack": first_ack.get(key)})
            elif j.get("status") not in TERMINAL:
                lost_not_terminal += 1
                example("lost", {"key": key, "id": jid, "why": "not terminal",
                                 "status": j.get("status")})

    unexpected = 0
    for j in jobs:
        if j.get("idempotency_key") not in submitted:
            unexpected += 1
            example("unexpected", {"id": j["id"], "key": j.get("idempotency_key")})

    double = 0
    for key in submitted:
        ids = set(acked_ids.get(key, set())) | {j["id"] for j in by_key.get(key, [])}
        if len(ids) > 1:
            double += 1
            example("double_accepted", {"key": key, "ids": sorted(ids)})

    # --- executions (worker logs) -------------------------------------------------
    execs = {}              # job id -> {token: count}
    exec_lines = 0
    for path in sorted(glob.glob(os.path.join(run_dir, "exec-*.log"))):
        host = os.path.basename(path)[5:-4]
        try:
            with open(path) as f:
                lines = f.read().splitlines()
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) < 3:
                continue
            exec_lines += 1
            execs.setdefault(parts[0], {}).setdefault(parts[2], []).append(host)
    duplicates = 0
    same_token = 0
    for jid, toks in execs.items():
        if len(toks) > 1:
            duplicates += len(toks) - 1
            example("duplicates", {"id": jid, "executions": toks})
        for tok, hosts in toks.items():
            if len(hosts) > 1:
                same_token += len(hosts) - 1
                example("same_token_reexec", {"id": jid, "token": tok, "hosts": hosts})
    unknown_exec = sum(1 for jid in execs if jid not in by_id)

    # Acknowledged jobs left `running` whose current lease token was never
    # executed by any worker: the lease was committed but never delivered.
    stuck_undelivered = 0
    for key, ids in acked_ids.items():
        for jid in ids:
            j = by_id.get(jid)
            if j is not None and j.get("status") == "running" and \
                    str(j.get("lease_token")) not in execs.get(jid, {}):
                stuck_undelivered += 1
                example("stuck_undelivered_lease", {
                    "id": jid, "key": key, "worker_id": j.get("worker_id"),
                    "lease_token": j.get("lease_token"), "started_at": j.get("started_at"),
                    "executions": execs.get(jid)})

    # --- accepted results -----------------------------------------------------------
    stale = 0
    unexecuted = 0
    lost_attempts = 0
    statuses = {}
    for j in jobs:
        st = j.get("status")
        statuses[st] = statuses.get(st, 0) + 1
        hist_j = j.get("history") or []
        lost_attempts += sum(1 for h in hist_j if h.get("outcome") == "lost")
        done = [h for h in hist_j if h.get("outcome") == "completed"]
        bad = None
        if len(done) > 1:
            bad = "two completed outcomes"
        elif st == "completed":
            if len(done) != 1:
                bad = "completed without a completed attempt"
            else:
                last = max(hist_j, key=lambda h: h.get("attempt", 0))
                if str(done[0].get("lease_token")) != str(j.get("lease_token")):
                    bad = "accepted token is not the job's final token"
                elif last is not done[0]:
                    bad = "completed attempt is not the last attempt"
        elif done:
            bad = f"completed outcome on a {st} job"
        if bad:
            stale += 1
            example("stale_accepted", {"id": j["id"], "why": bad,
                                       "lease_token": j.get("lease_token"),
                                       "history": hist_j})
        if st == "completed" and done and j["id"] in by_id:
            tok = str(done[0].get("lease_token"))
            if tok not in execs.get(j["id"], {}):
                unexecuted += 1
                example("unexecuted_accepted", {"id": j["id"], "token": tok,
                                                "executions": execs.get(j["id"])})

    # --- cancellations ------------------------------------------------------------------
    cancel_viol = 0
    for key, answers in cancel_ops.items():
        ids = acked_ids.get(key) or set()
        j = by_id.get(next(iter(ids))) if ids else None
        if j is None:
            continue
        st = j.get("status")
        if 200 in answers and st != "cancelled":
            cancel_viol += 1
            example("cancel_violations", {"key": key, "answers": answers, "status": st})
        definite = [a for a in answers if a is not None and a < 500]
        earlier_unknown = answers and answers[0] not in (200, 409)
        if definite and definite[0] == 409 and not earlier_unknown and st == "cancelled":
            cancel_viol += 1
            example("cancel_violations", {"key": key, "answers": answers, "status": st,
                                          "why": "409 finished, yet cancelled"})

    # --- replicas -----------------------------------------------------------------------
    divergent_nodes = set()
    converged = False
    for sample in final.get("digests") or []:
        groups = {}
        for d in sample:
            if d and d.get("digest"):
                groups.setdefault(d["applied_index"], []).append(d)
        for idx, ds in groups.items():
            vals = {}
            for d in ds:
                vals.setdefault(d["digest"], []).append(d["node"])
            if len(vals) > 1:
                major = max(vals.values(), key=len)
                for nodes in vals.values():
                    if nodes is not major:
                        divergent_nodes.update(nodes)
                example("divergent", {"applied_index": idx, "digests": vals})
        present = [d for d in sample if d and d.get("digest")]
        if present and len(present) == len(sample) and \
                len({(d["digest"], d["applied_index"]) for d in present}) == 1:
            converged = True

    leases_lost_metric = 0
    for node, m in (final.get("metrics") or {}).items():
        leases_lost_metric += int(m.get("rota_leases_lost_total", 0))

    # --- failover -------------------------------------------------------------------------
    failovers = []
    for e in nem:
        # A leader SIGKILLed, or a full-disk leader that fail-stopped (the
        # harness notices the exit within 0.1 s).
        died = (e.get("action") == "kill" and e.get("was_leader")) or \
            (e.get("nemesis") == "disk-full" and e.get("action") == "outcome"
             and e.get("was_leader") and e.get("exit") is not None)
        if died and "node" in e:
            after = [a for (inv, a, node) in writes_ok if inv >= e["t"] and node != e["node"]]
            if after:
                failovers.append(round((min(after) - e["t"]) * 1000))
            else:
                example("failover", {"kill": e, "why": "no write after it"})

    # --- nemesis expectations -------------------------------------------------------------
    unmet = 0
    for e in nem:
        if e.get("nemesis") == "disk-full" and e.get("action") == "outcome":
            later = next((f for f in nem if f["t"] >= e["t"] and f.get("nemesis") == "disk-full"
                          and f.get("action") == "leader-now"), {})
            ok = e.get("exit") == 70 or (e.get("alive") and later.get("leader") != e.get("node"))
            if not ok:
                unmet += 1
                example("nemesis_unmet", e)
        if e.get("action") in ("not-caught-up", "not-voter"):
            unmet += 1
            example("nemesis_unmet", e)
    # disk-full: the others carry on while the full node is down.
    for i, e in enumerate(nem):
        if e.get("nemesis") == "disk-full" and e.get("action") == "outcome" and \
                e.get("exit") is not None:
            free = next((f for f in nem[i:] if f.get("nemesis") == "disk-full"
                         and f.get("action") == "free"), None)
            if free is None:
                continue
            n_ok = sum(1 for (inv, a, node) in writes_ok if e["t"] <= a <= free["t"])
            if n_ok == 0:
                unmet += 1
                example("nemesis_unmet", {"why": "no write acknowledged while the "
                                          "full node was down", "outcome": e})
    # Every node restart: applied the leader's commit index (as of the
    # restart) within 10 s, when a leader was healthy (fnemesis.catchup).
    catchup_secs = [e["secs"] for e in nem if e.get("action") == "catch-up"]
    catchup_slow = 0
    for e in nem:
        if e.get("action") == "catch-up-slow":
            catchup_slow += 1
            example("catchup_slow", e)
    faults = {}
    for e in nem:
        if e.get("nemesis") != "heal" and e.get("action") in (
                "kill", "stop", "cut", "drop", "down", "fill", "remove"):
            faults[e["nemesis"]] = faults.get(e["nemesis"], 0) + 1

    scheduler_only = bool(meta.get("scheduler_only", True))
    report = {
        "run": os.path.basename(os.path.normpath(run_dir)),
        "nemeses": meta.get("nemeses"),
        "faults": faults,
        "scheduler_only": scheduler_only,
        "ops": ops,
        "acknowledged": len(acked_ids),
        "indeterminate": len(submitted) - len(acked_ids),
        "jobs_in_table": len(jobs),
        "statuses": statuses,
        "executions": exec_lines,
        "lost": lost_missing + lost_not_terminal,
        "lost_missing": lost_missing,
        "lost_not_terminal": lost_not_terminal,
        "stuck_undelivered_lease": stuck_undelivered,
        "unexpected": unexpected,
        "stale_accepted": stale,
        "double_accepted": double,
        "divergent": len(divergent_nodes),
        "cancel_violations": cancel_viol,
        "idempotency_conflicts": idem_conflicts,
        "unexecuted_accepted": unexecuted,
        "same_token_reexec": same_token,
        "executions_of_unknown_jobs": unknown_exec,
        "duplicates": duplicates,
        "lease_expiries_metric": leases_lost_metric,
        "lost_attempts_in_history": lost_attempts,
        "failover_ms": failovers,
        "failover_p50_ms": _pct(failovers, 50),
        "failover_max_ms": max(failovers) if failovers else None,
        "drained": bool(final.get("drained")),
        "converged": converged,
        "nemesis_unmet": unmet,
        "catchup_s": catchup_secs,
        "catchup_max_s": max(catchup_secs) if catchup_secs else None,
        "catchup_void": sum(1 for e in nem if e.get("action") == "catch-up-void"),
        "catchup_slow": catchup_slow,
        "examples": examples,
    }
    reasons = [f"{k}={report[k]}" for k in SAFETY if report[k]]
    if scheduler_only and duplicates:
        reasons.append(f"duplicates={duplicates} with scheduler-only faults")
    if not final:
        reasons.append("no final.json")
    else:
        if not report["drained"]:
            reasons.append("undrained")
        if not converged:
            reasons.append("unconverged")
    if unmet:
        reasons.append(f"nemesis_unmet={unmet}")
    if catchup_slow:
        reasons.append(f"catchup_slow={catchup_slow} (a restarted node had not applied "
                       f"the leader's commit index as of its restart 10 s later)")
    report["verdict"] = "FAIL" if reasons else "PASS"
    report["reasons"] = reasons
    return report


def summary(r):
    fo = (f"failover p50={r['failover_p50_ms']}ms max={r['failover_max_ms']}ms"
          if r["failover_ms"] else "failover n/a")
    cs = r.get("catchup_s") or []
    cu = (f"catchup n={len(cs)} p50={_pct(cs, 50)}s max={max(cs)}s"
          if cs else "catchup n/a")
    return (f"acked={r['acknowledged']} indeterminate={r['indeterminate']} "
            f"lost={r['lost']} unexpected={r['unexpected']} "
            f"stale_accepted={r['stale_accepted']} double_accepted={r['double_accepted']} "
            f"divergent={r['divergent']} duplicates={r['duplicates']} "
            f"lease_expiries={r['lease_expiries_metric']}/{r['lost_attempts_in_history']} "
            f"{fo} {cu}")


def verdict_line(r):
    why = f" ({', '.join(r['reasons'])})" if r["reasons"] else ""
    return f"VERDICT {r['run']} [{','.join(r['nemeses'] or [])}]: {r['verdict']}{why} " \
           f"{summary(r)}"


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__)
        return 2
    r = check(argv[1])
    print(json.dumps(r, indent=1, sort_keys=True))
    print(verdict_line(r))
    return 0 if r["verdict"] == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
