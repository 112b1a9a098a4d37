"""rota-worker --exec-dir DIR (worker/exec_dir.c, docs/worker.md): a job
whose type names an executable file in DIR runs it with the payload on
stdin; its stdout (JSON) is the result, stderr the output; exit 75 is
retried; only the types found in DIR are advertised, so a type not there
(or a name that escapes DIR, such as ../x) is never leased to the worker;
a file that escapes DIR after the scan is refused at run time."""

import json
import os
import subprocess

import pytest

from conftest import WORKER, done, module_cluster, submit, wait_until

PY = """#!/usr/bin/python3
import json, os, sys
payload = json.load(sys.stdin)
env = {k: os.environ.get(k) for k in
       ("ROTA_JOB_ID", "ROTA_JOB_ATTEMPT", "ROTA_JOB_TYPE", "ROTA_QUEUE")}
print("python says hi", file=sys.stderr)
json.dump({"payload": payload, "env": env}, sys.stdout)
"""

SCRIPTS = {
    "echo.py": PY,
    # The payload back inside an object, and a line on stderr.
    "wrap.sh": '#!/bin/sh\nprintf \'{"got":%s,"type":"%s"}\' "$(cat)" "$ROTA_JOB_TYPE"\n'
               'echo "shell says hi" >&2\n',
    "notjson.sh": "#!/bin/sh\necho 'hello, not json'\n",
    # 75 (EX_TEMPFAIL) on the first attempt, success on the next.
    "flaky.sh": '#!/bin/sh\n[ "$ROTA_JOB_ATTEMPT" = 1 ] && { echo busy >&2; exit 75; }\n'
                'echo \'{"attempt":\'"$ROTA_JOB_ATTEMPT"\'}\'\n',
    "fail.sh": "#!/bin/sh\necho broken >&2\nexit 3\n",
    # A JSON string of 70,000 bytes: over the default --output-limit (64 KiB).
    "big.sh": "#!/bin/sh\nprintf '\"'; head -c 70000 /dev/zero | tr '\\000' a; printf '\"'\n",
    "quiet.sh": "#!/bin/sh\ncat >/dev/null\n",
    # Its pid in PIDS/<job id>, then sleeps until stopped.
    "slow.sh": '#!/bin/sh\necho $$ > "$(dirname "$0")/../pids/$ROTA_JOB_ID"\nexec sleep 60\n',
    "late.sh": "#!/bin/sh\necho '{}'\n",
}


@pytest.fixture(scope="module")
def fn(request, tmp_path_factory):
    """A cluster and one worker with --exec-dir on queue "fn"."""
    if not os.path.exists(WORKER):
        pytest.fail(f"{WORKER} is not built")
    base = tmp_path_factory.mktemp("execdir")
    d = base / "fn"
    d.mkdir()
    (base / "pids").mkdir()
    for name, text in SCRIPTS.items():
        (d / name).write_text(text)
        (d / name).chmod(0o755)
    (d / "data.txt").write_text("not executable\n")  # Not a type.
    (d / "sub").mkdir()                               # Not a type.
    (d / ".hidden.sh").write_text("#!/bin/sh\n")      # Not a type.
    (d / ".hidden.sh").chmod(0o755)
    # ../x from inside DIR: it must never run (it would leave a marker).
    (base / "x").write_text(f"#!/bin/sh\ntouch {base}/escaped\necho '{{}}'\n")
    (base / "x").chmod(0o755)
    gen = module_cluster(request, flags=["--worker-ttl", "2000"])
    c = next(gen)
    c.start_worker("fn", queues="fn", extra=("--exec-dir", str(d)))
    c.base, c.fn_dir = base, d
    yield c
    next(gen, None)


def run(c, type_, payload=None, **kw):
    body = {"type": type_, "queue": "fn", **kw}
    if payload is not None:
        body["payload"] = payload
    return submit(c.leader(), body)


def test_exec_dir_advertises_the_executable_files(fn):
    def listed():
        ws = fn.leader().req("GET", "/v1/workers")[2]["workers"]
        return next((w for w in ws if w["name"] == "fn"), None)
    w = wait_until(listed, what="the worker registered")
    types = w["types"].split(",")
    for name in SCRIPTS:
        assert name in types, w
    for name in ("data.txt", "sub", ".hidden.sh", "shell"):
        assert name not in types, w
    assert "noop" in types  # The built-in executors stay.


def test_exec_dir_python_result_payload_and_env(fn):
    job = run(fn, "echo.py", {"a": [1, 2], "s": "é"})
    j = done(fn, job["id"])
    assert j["result"] == {"payload": {"a": [1, 2], "s": "é"}, "env": {
        "ROTA_JOB_ID": job["id"], "ROTA_JOB_ATTEMPT": "1",
        "ROTA_JOB_TYPE": "echo.py", "ROTA_QUEUE": "fn"}}, j
    assert j["output"] == "python says hi\n" and j["exit_code"] == 0
    # The plain GET (any node) shows the stored result too.
    node = fn.followers()[0]
    st, _, got = wait_until(lambda: (lambda r: r if r[2].get("result") else None)(
        node.req("GET", f"/v1/jobs/{job['id']}")), what="result on a follower")
    assert st == 200 and got["result"] == j["result"]


def test_exec_dir_shell_script(fn):
    job = run(fn, "wrap.sh", {"n": 7})
    j = done(fn, job["id"])
    assert j["result"] == {"got": {"n": 7}, "type": "wrap.sh"}, j
    assert j["output"] == "shell says hi\n"
    # No payload: the script reads {}. No stdout: no result.
    j = done(fn, run(fn, "wrap.sh")["id"])
    assert j["result"] == {"got": {}, "type": "wrap.sh"}, j
    j = done(fn, run(fn, "quiet.sh", {"x": 1})["id"])
    assert j["status"] == "completed" and j["result"] is None, json.dumps(j)


def test_exec_dir_non_json_or_too_long_stdout_fails(fn):
    job = run(fn, "notjson.sh", max_attempts=3)
    j = done(fn, job["id"], "failed")
    assert j["attempts"] == 1, j  # Not retried: the function broke its contract.
    assert j["last_error"].startswith("exec-dir: stdout is not JSON"), j
    assert j["result"] is None
    j = done(fn, run(fn, "big.sh", max_attempts=3)["id"], "failed")
    assert j["attempts"] == 1 and j["result"] is None, j
    assert j["last_error"] == "exec-dir: stdout is longer than 65536 bytes (--output-limit)", j


def test_exec_dir_exit_75_retried_other_exit_by_policy(fn):
    job = run(fn, "flaky.sh", max_attempts=3, backoff={"initial": "50ms"})
    j = done(fn, job["id"])
    assert j["attempts"] == 2 and j["result"] == {"attempt": 2}, j
    assert "EX_TEMPFAIL" in j["history"][0].get("error", ""), j
    job = run(fn, "fail.sh", max_attempts=2, backoff={"initial": "50ms"})
    j = done(fn, job["id"], "failed")
    assert j["attempts"] == 2 and j["exit_code"] == 3, j
    assert j["last_error"] == "exit status 3" and j["output"] == "broken\n", j


def test_exec_dir_unknown_and_escaping_types_never_leased(fn):
    """A type not in DIR, or a path such as ../x, is not advertised: the
    cluster never leases it to this worker (the job waits and says for
    what) and nothing outside DIR runs."""
    missing = run(fn, "missing.sh")
    escape = run(fn, "../x")
    # A later job on the same queue runs: the dispatcher has passed the two.
    done(fn, run(fn, "quiet.sh")["id"])
    for job, type_ in ((missing, "missing.sh"), (escape, "../x")):
        j = fn.job(job["id"])
        assert j["status"] == "pending" and j["attempts"] == 0, j
        assert j["waiting_for"] == f"a live worker on queue fn that runs type {type_}", j
    assert not (fn.base / "escaped").exists()
    for job in (missing, escape):
        assert fn.leader().req("DELETE", f"/v1/jobs/{job['id']}")[0] == 200


def test_exec_dir_checks_again_at_run_time(fn):
    """late.sh was scanned at start; replaced by a symlink out of DIR, it is
    refused when a job of that type runs (a failure, not retried)."""
    late = fn.fn_dir / "late.sh"
    late.unlink()
    late.symlink_to(fn.base / "x")
    j = done(fn, run(fn, "late.sh", max_attempts=3)["id"], "failed")
    assert j["attempts"] == 1 and "outside" in j["last_error"], j
    assert j["last_error"].startswith("exec-dir: "), j
    assert not (fn.base / "escaped").exists()


def test_exec_dir_cancel_and_timeout_kill_the_script(fn):
    def gone(pid):
        try:
            os.kill(pid, 0)
            return False
        except ProcessLookupError:
            return True

    def started(job_id):
        f = fn.base / "pids" / job_id
        wait_until(lambda: f.exists() and f.read_text().strip(), what="script started")
        return int(f.read_text())

    job = run(fn, "slow.sh")
    pid = started(job["id"])
    st, _, body = fn.followers()[0].req("DELETE", f"/v1/jobs/{job['id']}")
    assert st == 200 and body["status"] == "cancelled"
    wait_until(lambda: gone(pid), timeout=10, what="the script stopped")
    job = run(fn, "slow.sh", timeout="300ms", max_attempts=1)
    pid = started(job["id"])
    j = done(fn, job["id"], "failed")
    assert j["last_error"] == "timeout", j
    wait_until(lambda: gone(pid), timeout=10, what="the timed-out script stopped")


def test_exec_dir_bad_dir_refused_at_start(tmp_path):
    f = tmp_path / "file"
    f.write_text("")
    for d in (tmp_path / "nope", f):
        p = subprocess.run([WORKER, "--servers", "http://127.0.0.1:1", "--exec-dir", str(d)],
                           capture_output=True, text=True, timeout=10)
        assert p.returncode == 2 and "--exec-dir" in p.stderr, (p.returncode, p.stderr)
