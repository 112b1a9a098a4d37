"""Hosts made of network namespaces, one bridge, veth pairs and iptables.

Layout (all names carry the prefix ``rotaf-<pid>-`` so that a later run can
find and remove the leftovers of a run that died):

    rotaf-<pid>-br        namespace holding the bridge ``br0``
    rotaf-<pid>-<host>    one namespace per host, interface ``eth0``
                          (its peer ``v-<host>`` is a port of ``br0``)

Addresses are 10.231.<subnet>.0/24 and exist only inside these namespaces.
Every scheduler host gets an iptables chain ``ROTAF`` hooked into INPUT: the
nemeses only add rules to that chain and heal by flushing it.

The harness process itself joins the client host's namespace (setns on the
main thread before any other thread starts), so its client threads and its
control requests (cluster view, digests, metrics) originate there.
"""

import ctypes
import os
import re
import signal
import subprocess
import time

PREFIX = "rotaf-"
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def sh(args, check=True, timeout=20, quiet=False):
    """Runs a command (list); returns CompletedProcess. Bounded by timeout."""
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout, text=True)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: exit {p.returncode}: {p.stderr.strip()}")
    return p


def list_netns():
    p = sh(["ip", "netns", "list"], check=False)
    names = []
    for line in p.stdout.splitlines():
        if line.strip():
            names.append(line.split()[0])
    return names


def netns_pids(ns):
    p = sh(["ip", "netns", "pids", ns], check=False)
    return [int(x) for x in p.stdout.split() if x.strip().isdigit()]


def _pid_is_harness(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().split(b"\0")
    except OSError:
        return False
    return any(c.endswith(b"tests/fault/run") or c.endswith(b"fault/run") or c == b"run"
               for c in cmd)


def _kill_pids(pids, deadline_s=5.0):
    for pid in pids:
        for sig in (signal.SIGCONT, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if not any(os.path.exists(f"/proc/{p}") and _state(p) != "Z" for p in pids):
            return
        time.sleep(0.05)


def _state(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "X"


def remove_leftovers(log=print):
    """Removes namespaces, their processes and tmpfs mounts left by earlier
    runs of this harness whose process is gone (names with our prefix)."""
    me = os.getpid()
    pat = re.compile(r"^" + re.escape(PREFIX) + r"(\d+)-")
    stale = {}
    for ns in list_netns():
        m = pat.match(ns)
        if m and int(m.group(1)) != me and not _pid_is_harness(int(m.group(1))):
            stale.setdefault(int(m.group(1)), []).append(ns)
    # tmpfs mounts are named rotaf-<pid> (the source field of /proc/mounts).
    mounts = []
    try:
        with open("/proc/mounts") as f:
            for line in f:
                src, mnt = line.split()[:2]
                m = re.match(r"^" + re.escape(PREFIX) + r"(\d+)$", src)
                if m and int(m.group(1)) != me and not _pid_is_harness(int(m.group(1))):
                    mounts.append(mnt.replace("\\040", " "))
    except OSError:
        pass
    for pid, names in sorted(stale.items()):
        procs = []
        for ns in names:
            procs += netns_pids(ns)
        if procs:
            log(f"leftovers of run {pid}: stopping processes {sorted(set(procs))}")
            _kill_pids(sorted(set(procs)))
    for mnt in mounts:
        log(f"leftovers: umount {mnt}")
        sh(["umount", "-l", mnt], check=False)
    for pid, names in sorted(stale.items()):
        for ns in names:
            log(f"leftovers of run {pid}: deleting namespace {ns}")
            sh(["ip", "netns", "del", ns], check=False)


class Net:
    """Hosts on one bridge. ``hosts`` maps a host name (n1, w1, c1...) to its
    last address byte."""

    def __init__(self, hosts, subnet=1, log=print):
        self.tag = f"{PREFIX}{os.getpid()}"
        self.brns = f"{self.tag}-br"
        self.hosts = dict(hosts)
        self.subnet = subnet
        self.log = log
        self.created = []       # namespaces created, in order
        self.chains = set()     # hosts with the ROTAF chain
        self.mounts = []        # tmpfs mount points

    def ns(self, host):
        return f"{self.tag}-{host}"

    def ip(self, host):
        return f"10.231.{self.subnet}.{self.hosts[host]}"

    def setup(self):
        sh(["ip", "netns", "add", self.brns])
        self.created.append(self.brns)
        sh(["ip", "-n", self.brns, "link", "add", "br0", "type", "bridge"])
        sh(["ip", "-n", self.brns, "link", "set", "br0", "up"])
        sh(["ip", "-n", self.brns, "link", "set", "lo", "up"])
        for host in self.hosts:
            ns = self.ns(host)
            sh(["ip", "netns", "add", ns])
            self.created.append(ns)
            sh(["ip", "-n", self.brns, "link", "add", f"v-{host}", "type", "veth",
                "peer", "name", "eth0", "netns", ns])
            sh(["ip", "-n", self.brns, "link", "set", f"v-{host}", "master", "br0", "up"])
            sh(["ip", "-n", ns, "addr", "add", f"{self.ip(host)}/24", "dev", "eth0"])
            sh(["ip", "-n", ns, "link", "set", "eth0", "up"])
            sh(["ip", "-n", ns, "link", "set", "lo", "up"])

    def add_chain(self, host):
        ns = self.ns(host)
        sh(["ip", "netns", "exec", ns, "iptables", "-w", "-N", "ROTAF"])
        sh(["ip", "netns", "exec", ns, "iptables", "-w", "-I", "INPUT", "-j", "ROTAF"])
        self.chains.add(host)

    def drop_from(self, host, src_hosts, probability=None):
        """Drops packets arriving at host from src_hosts (all or at random)."""
        for src in src_hosts:
            rule = ["-A", "ROTAF", "-s", self.ip(src)]
            if probability is not None:
                rule += ["-m", "statistic", "--mode", "random",
                         "--probability", str(probability)]
            rule += ["-j", "DROP"]
            sh(["ip", "netns", "exec", self.ns(host), "iptables", "-w"] + rule)

    def heal(self, host):
        sh(["ip", "netns", "exec", self.ns(host), "iptables", "-w", "-F", "ROTAF"])

    def rules(self, host):
        return sh(["ip", "netns", "exec", self.ns(host), "iptables", "-w", "-S", "ROTAF"],
                  check=False).stdout

    def link(self, host, up):
        sh(["ip", "-n", self.brns, "link", "set", f"v-{host}", "up" if up else "down"])

    def enter(self, host):
        """Moves the calling thread (call it before starting threads) into host."""
        fd = os.open(f"/run/netns/{self.ns(host)}", os.O_RDONLY)
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                e = ctypes.get_errno()
                raise OSError(e, f"setns {self.ns(host)}: {os.strerror(e)}")
        finally:
            os.close(fd)

    def mount_tmpfs(self, path, size_mb):
        os.makedirs(path, exist_ok=True)
        sh(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", self.tag, path])
        self.mounts.append(path)

    def umount_all(self):
        for mnt in reversed(self.mounts):
            sh(["umount", "-l", mnt], check=False)
        self.mounts = []

    def teardown(self):
        for mnt in reversed(self.mounts):
            sh(["umount", "-l", mnt], check=False)
        self.mounts = []
        # Processes still in a namespace would keep it alive: the caller
        # stopped its own; wait briefly for job children of killed workers.
        for ns in self.created:
            end = time.monotonic() + 3
            while [p for p in netns_pids(ns) if p != os.getpid()] and time.monotonic() < end:
                time.sleep(0.1)
        for ns in reversed(self.created):
            sh(["ip", "netns", "del", ns], check=False)
        self.created = []
