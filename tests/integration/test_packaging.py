"""Packaging: docker/Dockerfile, docker/compose.yml, .dockerignore, the systemd units
in deploy/systemd and the Debian package of scripts/build-deb.sh.

No Docker engine is needed (none is used): the Dockerfile's runtime packages are
checked against this machine's apt index (Debian 12), the compose file is read as
YAML. The units are checked with systemd-analyze verify; the .deb is built from
ROTA_BUILD_DIR, inspected, simulated with apt-get and unpacked to run rotad.
The ASan pass (ROTA_BUILD_DIR ending in build-asan) skips the .deb tests: a package
of sanitizer binaries is not what ships, and the normal pass already builds it.
"""

import fnmatch
import functools
import glob
import os
import re
import shutil
import socket
import subprocess
import textwrap

import pytest

from conftest import BUILD, ROOT, ROTACTL, ROTAD, WORKER, Cluster, wait_until

ASAN = os.path.normpath(BUILD).endswith("build-asan")
DOCKERFILE = os.path.join(ROOT, "docker", "Dockerfile")
COMPOSE = os.path.join(ROOT, "docker", "compose.yml")
DOCKERIGNORE = os.path.join(ROOT, ".dockerignore")
UNITS = os.path.join(ROOT, "deploy", "systemd")
BINARIES = {"rotad": ROTAD, "rota-worker": WORKER, "rotactl": ROTACTL}
# Libraries of the sanitizer runtime and the base system (in every Debian image).
NOT_RUNTIME_DEPS = {"libc6", "libasan8", "libubsan1", "libgcc-s1", "libstdc++6"}


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=120, **kw)


# ---- Dockerfile ---------------------------------------------------------------------

def dockerfile_stages():
    """The Dockerfile's stages (text after each FROM), continuation lines joined."""
    text = open(DOCKERFILE).read()
    text = re.sub(r"\\\n", " ", text)
    text = "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#"))
    return re.split(r"(?mi)^\s*FROM\s+", text)[1:]


def runtime_packages():
    """Every package the last stage apt-get installs (options dropped)."""
    pkgs = []
    for m in re.finditer(r"apt-get\s+install\s+([^&;|\n]*)", dockerfile_stages()[-1]):
        pkgs += [w for w in m.group(1).split() if not w.startswith("-")]
    return pkgs


@functools.lru_cache(maxsize=None)
def needed_packages(binary):
    """The Debian packages of the libraries @binary links directly (readelf NEEDED,
    the path from ldd, the package from dpkg -S; one dpkg call, it is slow)."""
    needed = re.findall(r"\(NEEDED\).*\[(.+)\]", run(["readelf", "-d", binary]).stdout)
    paths = dict(re.findall(r"^\s*(\S+) => (\S+)", run(["ldd", binary]).stdout, re.M))
    candidates = {}
    for so in needed:
        assert so in paths, f"{binary}: ldd does not resolve {so}"
        candidates[so] = (paths[so], os.path.realpath(paths[so]))
    owners = {}
    out = run(["dpkg", "-S"] + sorted({p for c in candidates.values() for p in c})).stdout
    for line in out.splitlines():
        pkg, _, path = line.partition(": ")
        owners[path.strip()] = pkg.split(":")[0]
    pkgs = set()
    for so, cands in candidates.items():
        found = [owners[c] for c in cands if c in owners]
        assert found, f"{binary}: no package owns {cands}"
        pkgs.add(found[0])
    return frozenset(pkgs)


def test_dockerfile_runtime_packages_exist_in_debian():
    pkgs = runtime_packages()
    assert len(pkgs) >= 5, f"no runtime apt-get install found in the Dockerfile: {pkgs}"
    # One call (apt-cache takes about a second here): exit 0 only if every name is a
    # real package (unknown and purely virtual names fail); the records say which.
    r = run(["apt-cache", "show", "--no-all-versions"] + pkgs)
    found = set(re.findall(r"(?m)^Package: (\S+)", r.stdout))
    missing = sorted(set(pkgs) - found)
    assert r.returncode == 0 and not missing, \
        f"not in this Debian's apt index: {missing} (apt-cache: {r.stderr.strip()})"


def test_dockerfile_runtime_installs_what_the_binaries_link():
    pkgs = set(runtime_packages())
    for name, path in BINARIES.items():
        lacking = needed_packages(path) - NOT_RUNTIME_DEPS - pkgs
        assert not lacking, f"{name} links libraries of {lacking}: not in the runtime stage"
    # The readyz healthcheck of compose.yml runs curl in the image.
    assert "curl" in pkgs and "ca-certificates" in pkgs


def test_dockerfile_installs_the_three_binaries_as_user_rota():
    last = dockerfile_stages()[-1]
    copies = re.findall(r"(?m)^\s*COPY\s+--from=\S+\s+(\S+)\s+(\S+)", last)
    sources = {os.path.basename(s): d for s, d in copies}
    for name, path in BINARIES.items():
        assert name in sources, f"{name} not copied into the runtime image"
        # The source inside the build stage is build/<the same path as here>.
        rel = os.path.relpath(path, BUILD) if name != "rota-worker" else "worker/rota-worker"
        assert any(s.endswith("/build/" + rel) for s, _ in copies), (name, copies)
    users = re.findall(r"(?m)^\s*USER\s+(\S+)", last)
    assert users and users[-1] in ("rota", "10001"), f"runtime stage runs as {users or 'root'}"
    assert re.search(r"(useradd|adduser)\b[^\n]*\brota\b", last)
    assert "/var/lib/rota" in last


DEPS = os.path.join(ROOT, "scripts", "deps.sh")
TEST_ONLY = {"chromium", "prometheus", "python3-pytest", "nodejs", "npm", "clang-format",
             "clang-tidy", "libcmocka-dev", "systemd", "iptables"}


def deps_installs(tmp_path, *args):
    """What scripts/deps.sh @args would apt-get install on a machine with nothing: run
    with dpkg-query, apt-get, sudo and node stubbed (the stubs come first in PATH)."""
    stubs = tmp_path / "stubs"
    stubs.mkdir(parents=True)
    log = tmp_path / "apt.log"
    for name, body in {"dpkg-query": "exit 1",
                       "apt-get": f'echo "$*" >> {log}',
                       "sudo": 'exec "$@"',
                       "node": "echo 20"}.items():
        (stubs / name).write_text(f"#!/bin/sh\n{body}\n")
        (stubs / name).chmod(0o755)
    env = dict(os.environ, PATH=f"{stubs}:/usr/bin:/bin")
    r = run(["bash", DEPS, *args], env=env)
    assert r.returncode == 0, r.stderr
    installs = [l for l in log.read_text().splitlines() if l.startswith("install ")]
    assert len(installs) == 1, installs
    return {w for w in installs[0].split()[1:] if not w.startswith("-")}


def test_dockerfile_build_stage_installs_build_deps_only(tmp_path):
    """The build stage runs scripts/deps.sh --build, which installs the -dev package of
    every dependency() of meson.build (found through its .pc file here) and no test tool."""
    assert re.search(r"(?m)^RUN scripts/deps\.sh --build && scripts/build\.sh",
                     dockerfile_stages()[0])
    build = deps_installs(tmp_path, "--build")
    assert not build & TEST_ONLY, f"deps.sh --build installs test tools: {build & TEST_ONLY}"
    meson = open(os.path.join(ROOT, "meson.build")).read()
    names = re.findall(r"dependency\('([^']+)'\)", meson)  # required ones only
    names = [n for n in names if n != "threads"]
    assert "raft" in names and "libh2o" in names
    pcs = []
    for n in names:
        d = run(["pkg-config", "--variable=pcfiledir", n]).stdout.strip()
        assert d, f"pkg-config does not know {n}"
        pcs.append(os.path.join(d, n + ".pc"))
    out = run(["dpkg", "-S"] + pcs)
    assert out.returncode == 0, out.stderr
    owners = {l.split(":")[0] for l in out.stdout.splitlines()}
    for tool in ("build-essential", "pkg-config", "meson", "ninja-build"):
        owners.add(tool)
    assert owners <= build, f"deps.sh --build lacks {owners - build}"


def test_docker_deps_default_still_installs_everything(tmp_path):
    everything = deps_installs(tmp_path / "default")
    assert deps_installs(tmp_path / "build", "--build") <= everything
    assert TEST_ONLY - {"nodejs", "npm"} <= everything, TEST_ONLY - everything
    r = run(["bash", DEPS, "--bogus"])
    assert r.returncode == 2 and "usage" in r.stderr


def test_docker_check_script_parses():
    """scripts/docker-check.sh (run by hand: network, minutes) is valid bash and reads the
    stages from the Dockerfile instead of repeating the commands."""
    script = os.path.join(ROOT, "scripts", "docker-check.sh")
    assert run(["bash", "-n", script]).returncode == 0
    code = "\n".join(l for l in open(script) if not l.lstrip().startswith("#"))
    for word in runtime_packages() + ["groupadd", "useradd", "deps.sh", "build.sh"]:
        assert word not in code, f"docker-check.sh repeats the Dockerfile: {word}"
    if shutil.which("shellcheck"):
        r = run(["shellcheck", "-S", "warning", script])
        assert r.returncode == 0, r.stdout


def test_dockerignore_excludes_build_and_local_state():
    patterns = [l.strip().rstrip("/") for l in open(DOCKERIGNORE)
                if l.strip() and not l.startswith("#")]

    def ignored(path):
        return any(fnmatch.fnmatch(path, p.lstrip("/")) or
                   (p.startswith("**/") and fnmatch.fnmatch(os.path.basename(path), p[3:]))
                   for p in patterns)

    for path in ("build", "build-asan", "build-fuzz", ".rota", ".git", "docker/certs",
                 "certs", "tests/integration/__pycache__", "node_modules"):
        assert ignored(path), f".dockerignore lets {path} into the build context"
    for path in ("scripts/build.sh", "meson.build", "docker/Dockerfile", "rotad/main.c"):
        assert not ignored(path), f".dockerignore drops {path}, which the build needs"


# ---- compose.yml ----------------------------------------------------------------------

def compose():
    yaml = pytest.importorskip("yaml")
    return yaml.safe_load(open(COMPOSE))


def as_list(v):
    return v if isinstance(v, list) else ([] if v is None else v.split())


def test_compose_nodes_secure_and_healthchecked():
    services = compose()["services"]
    nodes = {n: s for n, s in services.items()
             if "rota-worker" not in " ".join(as_list(s.get("entrypoint")))}
    assert len(nodes) == 3, f"expected 3 rotad nodes, got {sorted(nodes)}"
    for name, s in nodes.items():
        cmd = as_list(s.get("command"))
        assert "--certs-dir" in cmd and "--insecure" not in cmd, f"{name} not in secure mode"
        test = " ".join(as_list(s.get("healthcheck", {}).get("test")))
        assert "/readyz" in test, f"{name}: healthcheck {test!r} does not ask /readyz"
        assert "https://" in test and "--cacert" in test, f"{name}: healthcheck without the CA"


def test_compose_has_two_workers():
    services = compose()["services"]
    workers = {n: s for n, s in services.items()
               if "rota-worker" in " ".join(as_list(s.get("entrypoint")) +
                                            as_list(s.get("command")))}
    assert workers, "no rota-worker service"
    replicas = sum(s.get("deploy", {}).get("replicas", 1) for s in workers.values())
    assert replicas >= 2, f"{replicas} worker(s)"
    for name, s in workers.items():
        env = s.get("environment", {})
        if isinstance(env, list):
            env = dict(e.split("=", 1) for e in env)
        args = " ".join(as_list(s.get("command")))
        servers = env.get("ROTA_SERVERS", "") + args
        assert servers.count("https://") >= 3, f"{name}: not all nodes, or not HTTPS"
        assert "ROTA_CA_FILE" in env or "--ca-file" in args, f"{name}: no CA file"
        assert "ROTA_TOKEN_FILE" in env or "ROTA_TOKEN" in env or "--token-file" in args
        assert not any("node.key" in v or v.split(":")[0].rstrip("/") == "./certs"
                       for v in s.get("volumes", [])), f"{name} can read the node key"


def test_compose_ports_bound_to_loopback():
    ports = [(n, str(p)) for n, s in compose()["services"].items()
             for p in s.get("ports", [])]
    assert ports, "no published ports"
    for name, p in ports:
        assert p.startswith("127.0.0.1:"), f"{name} publishes {p} on every interface"


# ---- systemd units ------------------------------------------------------------------

def unit_settings(path):
    out = {}
    for line in open(path):
        line = line.strip()
        if "=" in line and not line.startswith(("#", ";", "[")):
            k, v = line.split("=", 1)
            out.setdefault(k.strip(), []).append(v.strip())
    return out


def test_systemd_units_verify(tmp_path):
    """systemd-analyze verify needs the ExecStart binaries: the copies point at the
    build tree's. Its findings are warnings with exit 0, so any output fails."""
    if not os.path.exists("/usr/bin/systemd-analyze"):
        pytest.skip("no systemd-analyze")
    units = sorted(glob.glob(os.path.join(UNITS, "*.service")))
    assert {os.path.basename(u) for u in units} >= {"rotad.service", "rota-worker.service"}
    copies = []
    for u in units:
        text = open(u).read()
        for name, path in BINARIES.items():
            text = text.replace(f"/usr/bin/{name} ", f"{path} ")
        assert "/usr/bin/rota" not in text
        copy = tmp_path / os.path.basename(u)
        copy.write_text(text)
        copies.append(str(copy))
    r = run(["/usr/bin/systemd-analyze", "verify"] + copies)
    assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), \
        f"systemd-analyze verify: rc {r.returncode}\n{r.stdout}{r.stderr}"


@pytest.mark.parametrize("unit,binary,envfile", [
    ("rotad.service", "rotad", "/etc/rota/rotad.env"),
    ("rota-worker.service", "rota-worker", "/etc/rota/worker.env")])
def test_systemd_unit_hardening(unit, binary, envfile):
    s = unit_settings(os.path.join(UNITS, unit))
    one = {k: v[-1] for k, v in s.items()}
    expect = {"User": "rota", "DynamicUser": "no", "EnvironmentFile": envfile,
              "Restart": "on-failure", "ProtectSystem": "strict", "ProtectHome": "yes",
              "PrivateTmp": "yes", "NoNewPrivileges": "yes", "ProtectKernelTunables": "yes",
              "ProtectControlGroups": "yes", "LockPersonality": "yes",
              "LimitNOFILE": "65536", "Wants": "network-online.target"}
    for k, v in expect.items():
        assert one.get(k) == v, f"{unit}: {k}={one.get(k)}, want {v}"
    assert one["ExecStart"].startswith(f"/usr/bin/{binary} ")
    assert "network-online.target" in one["After"].split()
    assert one.get("StateDirectory", "").startswith("rota")
    assert set(one["RestrictAddressFamilies"].split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}
    assert "StartLimitIntervalSec" in s and "StartLimitBurst" in s
    if binary == "rota-worker":
        # Shell jobs: /bin/sh and whatever it runs need W+X mappings (JITs) at times.
        assert one.get("MemoryDenyWriteExecute", "no") == "no"
    # The example env file sets what the unit reads.
    example = os.path.join(UNITS, os.path.basename(envfile) + ".example")
    var = "ROTAD_OPTS" if binary == "rotad" else "ROTA_WORKER_OPTS"
    assert f"${var}" in one["ExecStart"] and re.search(rf"(?m)^{var}=", open(example).read())


# ---- Debian package -----------------------------------------------------------------

needs_deb = pytest.mark.skipif(ASAN or shutil.which("dpkg-deb") is None,
                               reason="the .deb is built from the normal build only")


@pytest.fixture(scope="module")
def deb(tmp_path_factory):
    out = tmp_path_factory.mktemp("deb")
    r = run([os.path.join(ROOT, "scripts", "build-deb.sh"), BUILD, str(out)])
    assert r.returncode == 0, f"build-deb.sh failed:\n{r.stdout}{r.stderr}"
    debs = glob.glob(str(out / "rota_*.deb"))
    assert len(debs) == 1 and r.stdout.strip() == debs[0], (debs, r.stdout)
    return debs[0]


@needs_deb
def test_deb_contents(deb):
    arch = run(["dpkg", "--print-architecture"]).stdout.strip()
    assert deb.endswith(f"_{arch}.deb")
    listing = run(["dpkg-deb", "-c", deb]).stdout
    files = {l.split()[-1].lstrip(".") for l in listing.splitlines()}
    for f in ("/usr/bin/rotad", "/usr/bin/rota-worker", "/usr/bin/rotactl",
              "/lib/systemd/system/rotad.service", "/lib/systemd/system/rota-worker.service",
              "/usr/share/doc/rota/operations.md"):
        assert f in files, f"{f} not in the package:\n{listing}"
    assert all(l.split()[1] == "root/root" for l in listing.splitlines())


@needs_deb
def test_deb_control_and_depends(deb):
    fields = {f: run(["dpkg-deb", "-f", deb, f]).stdout.strip()
              for f in ("Package", "Version", "Architecture", "Depends")}
    assert fields["Package"] == "rota"
    assert re.match(r"^[0-9][A-Za-z0-9.+~-]*$", fields["Version"]), fields["Version"]
    depends = {d.split()[0] for d in fields["Depends"].split(",")}
    # The raft and uv runtime packages, and every package a binary links.
    assert any(d.startswith("libraft") for d in depends), fields["Depends"]
    assert any(d.startswith("libuv") for d in depends), fields["Depends"]
    for name, path in BINARIES.items():
        lacking = needed_packages(path) - depends
        assert not lacking, f"{name} links {lacking}; Depends: {fields['Depends']}"
    assert "adduser" in depends  # postinst


@needs_deb
def test_deb_maintainer_scripts(deb, tmp_path):
    run(["dpkg-deb", "-e", deb, str(tmp_path / "DEBIAN")])
    postinst = tmp_path / "DEBIAN" / "postinst"
    text = postinst.read_text()
    assert os.access(postinst, os.X_OK)
    assert re.search(r"adduser --system --group[^\n]*--home /var/lib/rota", text)
    assert "/etc/rota" in text
    for script in ("postinst", "prerm", "postrm"):
        r = run(["sh", "-n", str(tmp_path / "DEBIAN" / script)])
        assert r.returncode == 0, f"{script}: {r.stderr}"


@needs_deb
def test_deb_installs_and_runs(deb, tmp_path):
    # Dependency resolution against this machine's apt index, without installing.
    if shutil.which("apt-get"):
        r = run(["apt-get", "install", "--simulate", "-q", deb])
        assert r.returncode == 0 and "Inst rota " in r.stdout, \
            f"apt-get install --simulate:\n{r.stdout}{r.stderr}"
    # Unpacked into a throwaway root: the packaged binaries run.
    root = tmp_path / "root"
    r = run(["dpkg-deb", "-x", deb, str(root)])
    assert r.returncode == 0, r.stderr
    for name in BINARIES:
        r = run([str(root / "usr" / "bin" / name), "--help"])
        assert "usage:" in r.stdout + r.stderr, f"{name} --help: rc {r.returncode} {r.stderr}"
    r = run([str(root / "usr" / "bin" / "rotad"), "--help"])
    assert r.returncode == 0


# ---- Vagrantfile ----------------------------------------------------------------------
# No VM runs here (no vagrant, no VirtualBox). What is checked instead: the provision
# scripts (single-quoted Ruby heredocs: pure bash) with bash -n and shellcheck, the files
# and units they use, their packages against scripts/deps.sh, rotad's options, and the
# host-side steps of the header (certificates, tokens) run for real against a local
# secure cluster, with the worker configured as the provision script configures it.

VAGRANTFILE = os.path.join(ROOT, "Vagrantfile")


def vagrant_scripts():
    """{NAME: bash text} of every NAME = <<~'SHELL' ... SHELL heredoc (Ruby's
    squiggly heredoc strips the common indentation, as textwrap.dedent)."""
    text = open(VAGRANTFILE).read()
    found = re.findall(r"^(\w+) = <<~'SHELL'\n(.*?)^SHELL$", text, re.S | re.M)
    return {name: textwrap.dedent(body) for name, body in found}


def vagrant_header_commands(step):
    """The commands of step @step ("1." ...) in the Vagrantfile's header comment,
    continuation lines joined; comment lines of prose are left out."""
    lines = []
    in_step = False
    for line in open(VAGRANTFILE):
        if not line.startswith("#"):
            break
        body = line[1:].rstrip("\n")
        m = re.match(r"^ (\d)\. ", body)
        if m:
            in_step = m.group(1) == str(step)
            continue
        if in_step and body.startswith("      "):
            lines.append(body.strip())
    cmds = []
    for l in lines:
        if cmds and cmds[-1].endswith("\\"):
            cmds[-1] = cmds[-1][:-1] + " " + l
        else:
            cmds.append(l)
    assert cmds, f"no commands in step {step}"
    return cmds


def test_vagrantfile_ruby_syntax():
    ruby = shutil.which("ruby")
    if ruby is None:
        pytest.skip("no ruby here (libruby is 25 MB: not in scripts/deps.sh); "
                    "the provision scripts are checked by the other tests")
    r = run([ruby, "-c", VAGRANTFILE])
    assert r.returncode == 0, r.stderr


def test_vagrant_provision_scripts_parse(tmp_path):
    scripts = vagrant_scripts()
    assert set(scripts) == {"PROVISION", "WORKER"}, scripts.keys()
    text = open(VAGRANTFILE).read()
    for name, body in scripts.items():
        assert body.startswith("#!/bin/bash\nset -euo pipefail\n"), name
        # Used by a provisioner (by name, not interpolated into a string).
        assert re.search(rf"inline: {name}\b", text), name
        f = tmp_path / f"{name}.sh"
        f.write_text(body)
        r = run(["bash", "-n", str(f)])
        assert r.returncode == 0, f"{name}: {r.stderr}"
        if shutil.which("shellcheck"):
            r = run(["shellcheck", "-s", "bash", str(f)])
            assert r.returncode == 0, f"{name}:\n{r.stdout}"
        # The inner heredocs end at column 0 (bash needs it) after the dedent.
        for m in re.finditer(r"<<(\w+)\n", body):
            assert re.search(rf"^{m.group(1)}$", body[m.end():], re.M), (name, m.group(1))


def test_vagrant_provision_uses_files_of_the_repo():
    scripts = vagrant_scripts()
    both = "\n".join(scripts.values())
    # Files of the synced folder ($src is /opt/rota, the repository).
    assert 'src=/opt/rota' in scripts["PROVISION"]
    used = re.findall(r'"\$src/([^"$]+)"', both)
    assert "scripts/build-deb.sh" in used
    # But vagrant-certs/: made on the host (step 1), ignored by git.
    for path in (p for p in used if not p.startswith("vagrant-certs")):
        assert os.path.exists(os.path.join(ROOT, path)), path
    assert os.access(os.path.join(ROOT, "scripts", "build-deb.sh"), os.X_OK)
    # The units it starts are the repository's, which the package installs.
    units = set(re.findall(r"systemctl \w+ ([\w-]+\.service)", both))
    assert units == {"rotad.service", "rota-worker.service"}, units
    deb_script = open(os.path.join(ROOT, "scripts", "build-deb.sh")).read()
    for u in units:
        assert os.path.exists(os.path.join(UNITS, u)), u
        assert f"deploy/systemd/{u}" in deb_script, u
    # The env files it writes are those the units read, with the examples' keys.
    for unit, env, example in (("rotad.service", "rotad.env", "rotad.env.example"),
                               ("rota-worker.service", "worker.env", "worker.env.example")):
        assert f"EnvironmentFile=/etc/rota/{env}" in open(os.path.join(UNITS, unit)).read()
        m = re.search(rf"cat > /etc/rota/{re.escape(env)} <<EOF\n(.*?)\nEOF$",
                      scripts["PROVISION"], re.S | re.M)
        assert m, env
        keys = {l.split("=")[0] for l in m.group(1).splitlines()}
        ex = {l.split("=")[0] for l in open(os.path.join(UNITS, example))
              if re.match(r"^[A-Z_]+=", l)}
        assert ex <= keys, (env, ex - keys)
        # Extra keys are options the program reads from its environment.
        for k in keys - ex:
            assert k in open(os.path.join(ROOT, "worker", "main.c")).read(), k
    # No daemon as root: the units' user, made by the package; key and token 0600 rota.
    for u in units:
        assert "User=rota" in open(os.path.join(UNITS, u)).read()
    assert "install -o rota -g rota -m 0600 \"$certs/node.key\"" in scripts["PROVISION"]
    assert "install -o rota -g rota -m 0600 \"$token\" /etc/rota/worker.token" in scripts["WORKER"]
    # The CA key and the admin token never reach a VM.
    text = open(VAGRANTFILE).read()
    assert '"vagrant-certs/ca.key"' in text and '"vagrant-certs/admin.token"' in text
    assert "ca.key" not in both


def test_vagrant_provision_packages_from_deps():
    """The build dependencies it installs are a subset of scripts/deps.sh's list."""
    assert run(["bash", "-n", os.path.join(ROOT, "scripts", "deps.sh")]).returncode == 0
    deps = open(os.path.join(ROOT, "scripts", "deps.sh")).read()
    # Every list of scripts/deps.sh (BUILD_PKGS, TEST_PKGS: the default installs both).
    listed = {w for m in re.finditer(r"PKGS=\((.*?)\)", deps, re.S) for w in m.group(1).split()}
    m = re.search(r"apt-get install ([^\n]*)", vagrant_scripts()["PROVISION"].replace("\\\n", " "))
    pkgs = [w for w in m.group(1).split()
            if not w.startswith("-") and not w.startswith(">")]
    assert "libraft-dev" in pkgs and "dpkg-dev" in pkgs
    extra = set(pkgs) - listed - {"ca-certificates"}
    assert not extra, f"not in scripts/deps.sh: {extra}"


def test_vagrant_rotad_options_exist():
    scripts = vagrant_scripts()
    m = re.search(r"^ROTAD_OPTS=(.*)$", scripts["PROVISION"], re.M)
    opts = [w for w in m.group(1).split() if w.startswith("--")]
    assert opts == ["--id", "--raft-addr", "--http-addr", "--cluster", "--certs-dir"]
    helptext = run([ROTAD, "--help"]).stdout
    for o in opts:
        assert o in helptext, o


def test_vagrant_host_steps(tmp_path):
    """Step 1 (certificates) as written; step 3 (tokens) as written against a local
    secure cluster (the address and directory replaced); then a rota-worker with the
    worker.env the provision script writes registers with that token."""
    work = tmp_path / "host"
    work.mkdir()

    def sh(cmd, subst):
        for a, b in subst:
            cmd = cmd.replace(a, b)
        r = subprocess.run(["bash", "-c", cmd], cwd=work, capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, f"{cmd}: {r.stderr}"

    certs = str(work / "vagrant-certs")
    for cmd in vagrant_header_commands(1):
        sh(cmd, [("build/ctl/rotactl", ROTACTL)])
    r = run(["openssl", "x509", "-in", os.path.join(certs, "node.crt"), "-noout", "-text"])
    for ip in ("192.168.56.11", "192.168.56.12", "192.168.56.13"):
        assert f"IP Address:{ip}" in r.stdout
    # A local cluster with certificates for 127.0.0.1, not bootstrapped (step 3 does).
    local = str(tmp_path / "local-certs")
    for args in (["create-ca"], ["create-node", "127.0.0.1"]):
        p = run([ROTACTL, "cert", args[0], "--certs-dir", local, *args[1:]])
        assert p.returncode == 0, p.stderr
    c = Cluster(3, ["--certs-dir", local])
    try:
        for n in c.nodes:
            n.start(["--cluster", c.spec] + c.flags)
        leader = c.wait_for_leader()
        for name in ("node.crt", "node.key", "ca.crt"):
            shutil.copy(os.path.join(local, name), certs)
        cmds = [x for x in vagrant_header_commands(3) if not x.startswith("vagrant ")]
        script = "\n".join(["set -euo pipefail"] + cmds)
        sh(script, [("build/ctl/rotactl", ROTACTL),
                    ("https://192.168.56.11:8001", f"https://{c.nodes[0].http}")])
        secrets = {}
        for name in ("admin.token", "worker.token"):
            path = os.path.join(certs, name)
            secrets[name] = open(path).read().strip()
            assert re.fullmatch(r"[0-9a-f]{64}", secrets[name]), name
            assert os.stat(path).st_mode & 0o077 == 0, name
        # The worker as configured by the provision script (node 1 of 3 VMs).
        block = re.search(r"cat > /etc/rota/worker.env <<EOF\n(.*?)\nEOF$",
                          vagrant_scripts()["PROVISION"], re.S | re.M).group(1)
        servers = ",".join(f"https://{n.http}" for n in c.nodes)
        env = dict(os.environ)
        for line in block.splitlines():
            k, _, v = line.partition("=")
            env[k] = (v.replace("$servers", servers).replace("$id", "1")
                      .replace("/etc/rota/certs/ca.crt", os.path.join(local, "ca.crt"))
                      .replace("/etc/rota/worker.token", os.path.join(certs, "worker.token")))
        assert env["ROTA_NAME"] == "worker-rota1"
        log = open(tmp_path / "worker.log", "wb")
        w = subprocess.Popen([WORKER] + env["ROTA_WORKER_OPTS"].split(), env=env,
                             stdout=log, stderr=subprocess.STDOUT)
        c.workers.append(w)
        admin = {"Authorization": f"Bearer {secrets['admin.token']}"}

        def registered():
            st, _, body = leader.req("GET", "/v1/workers", headers=admin)
            return st == 200 and [x for x in body["workers"] if x["name"] == "worker-rota1"]
        ws = wait_until(registered, timeout=20, what="the worker registered")
        assert ws[0]["host"] == socket.gethostname()
    finally:
        problems = c.stop()
    assert not problems, problems
