"""rotad's configuration: YAML file, ROTA_* environment, flags, --help and
bad values."""

import os
import shutil
import subprocess
import tempfile

from conftest import ROTAD, free_port, request, wait_until


def run(args, env=None, timeout=10):
    return subprocess.run([ROTAD] + args, capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_help_and_bad_values():
    p = run(["--help"])
    assert p.returncode == 0 and "--raft-addr" in p.stdout and "ROTA_" in p.stdout
    for bad in (["--id", "x"], ["--max-body", "-5"], ["--nope"],
                ["--cluster", "1@127.0.0.1:1", "--join", "http://x"],
                ["--log-level", "loud"], ["stray"]):
        p = run(bad)
        assert p.returncode == 2, (bad, p.stderr)
        assert p.stderr.startswith("rotad: ")


def test_yaml_env_and_flag_precedence():
    d = tempfile.mkdtemp(prefix="rota-cfg-")
    http_yaml, http_flag = free_port(), free_port()
    raft = free_port()
    cfg = os.path.join(d, "rota.yaml")
    with open(cfg, "w") as f:
        f.write(f"id: 7\ndata_dir: {d}/data\nraft-addr: 127.0.0.1:{raft}\n"
                f"http_addr: 127.0.0.1:{http_yaml}\nmax_body: 2048\ninsecure: true\n")
    env = dict(os.environ, ROTA_CONFIG=cfg, ROTA_MAX_BODY="4096")
    # The flag wins over YAML for the HTTP address; env wins over YAML for max_body.
    p = subprocess.Popen([ROTAD, "--http-addr", f"127.0.0.1:{http_flag}"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        addr = f"127.0.0.1:{http_flag}"
        wait_until(lambda: request(addr, "GET", "/readyz")[0] == 200, what="single node ready")
        status, _, view = request(addr, "GET", "/v1/cluster")
        assert view["self"] == 7 and view["leader"]["id"] == 7 and view["secure"] is False
        assert view["nodes"][0]["raft_addr"] == f"127.0.0.1:{raft}"
        big = b'{"type":"a","payload":{"s":"' + b"x" * 3000 + b'"}}'
        assert request(addr, "POST", "/v1/jobs", raw=big)[0] == 201   # < 4096 (env)
        big = b'{"type":"a","payload":{"s":"' + b"x" * 5000 + b'"}}'
        status, _, body = request(addr, "POST", "/v1/jobs", raw=big)
        assert status == 413 and body["error"]["code"] == "too_large"
        assert os.path.isdir(os.path.join(d, "data", "raft"))
    finally:
        p.terminate()
        out = p.communicate(timeout=10)[0].decode()
    assert p.returncode == 0
    shutil.rmtree(d, ignore_errors=True)
    for event in ('msg="started"', 'msg="bootstrapped"', 'msg="leader changed"', 'msg="stopped"',
                  'msg="insecure mode"', 'mode=insecure'):
        assert event in out, out


def test_config_secure_by_default():
    """Without --certs-dir rotad refuses to start unless --insecure is said;
    both at once is an error too; a certs dir without the files says which
    one is missing and how to make it."""
    d = tempfile.mkdtemp(prefix="rota-cfg-")
    base = ["--data-dir", f"{d}/data", "--raft-addr", f"127.0.0.1:{free_port()}",
            "--http-addr", f"127.0.0.1:{free_port()}"]
    p = run(base)
    assert p.returncode == 2 and "--certs-dir" in p.stderr and "--insecure" in p.stderr
    p = run(base + ["--insecure", "--certs-dir", d])
    assert p.returncode == 2 and "not both" in p.stderr
    env = dict(os.environ, ROTA_INSECURE="maybe")
    p = run(base, env=env)
    assert p.returncode == 2 and "insecure" in p.stderr
    p = run(base + ["--certs-dir", d])
    assert p.returncode == 1 and "ca.crt cannot be read" in p.stderr, p.stderr
    shutil.rmtree(d, ignore_errors=True)
