"""Network namespaces, veth pairs and processes for the integration tests.

A Lab owns everything it makes: namespaces, processes started in them and a temporary
directory. Leaving the `with Lab(...)` block removes all of it, whether the test
passed, failed or was stopped; past `deadline` seconds (or on SIGTERM/SIGINT/SIGHUP)
the test gets a Terminated exception so that the cleanup still runs. DPDK file prefixes
taken with dpdk_prefix() lose their hugepage files and EAL runtime directory too.

Names carry the creating test's pid. meson kills a test's process group with SIGKILL
half a second after SIGTERM, which can cut the cleanup short; the next Lab of the same
name removes what tests that are no longer alive left behind.
"""

import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

_LIB = os.path.dirname(os.path.abspath(__file__))


class Terminated(BaseException):
    """The test ran past its deadline or was signalled; cleanup follows."""


def run(argv, timeout=60, check=True, **kwargs):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {r.returncode}: {r.stderr.strip()}")
    return r


def wait_for(fn, timeout, what, interval=0.1):
    """Polls fn() until it returns something truthy and returns that; raises naming
    `what` on timeout. Exceptions from fn() count as not yet, except AssertionError."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = fn()
            if last:
                return last
        except AssertionError:
            raise
        except Exception as exc:
            last = exc
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def namespaces():
    out = run(["ip", "netns", "list"]).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def free_hugepage_mb():
    free = size_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("HugePages_Free:"):
                free = int(line.split()[1])
            elif line.startswith("Hugepagesize:"):
                size_kb = int(line.split()[1])
    return free * size_kb // 1024


# EAL memory for vleafd: its tables take about 400 MB with the default limits (DIR-24-8, the
# IPv6 trie and its RIB, mbufs, LB flow tables).
VLEAFD_MEMORY_MB = 512


def vleafd_memory():
    """vleafd's EAL memory options: VLEAFD_MEMORY_MB, on hugepages when that many are free.
    -m reserves all of it at EAL start. With less, vleafd grows onto hugepages later, which a
    concurrent DPDK process may have taken since the check; it then fails deep in its set-up
    (an rte_fib6_create out of memory, which DPDK 22.11 reports as "Invalid argument":
    rte_rib6_free on its failure path overwrites rte_errno)."""
    if free_hugepage_mb() >= VLEAFD_MEMORY_MB:
        return ["-m", str(VLEAFD_MEMORY_MB)]
    return ["--no-huge", "-m", str(VLEAFD_MEMORY_MB)]


HUGEPAGE_DIR = "/dev/hugepages"
DPDK_RUN_DIR = "/var/run/dpdk"


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def delete_netns(name):
    """Kills what still runs in the namespace (daemons that forked too), then deletes it."""
    out = run(["ip", "netns", "pids", name], check=False).stdout
    for pid in out.split():
        try:
            os.kill(int(pid), signal.SIGCONT)  # a test may have stopped it
            os.kill(int(pid), signal.SIGKILL)
        except OSError:
            pass
    run(["ip", "netns", "del", name], check=False)


def remove_dpdk_files(prefix):
    """The hugepage files and the EAL runtime directory of one --file-prefix."""
    for path in glob.glob(os.path.join(HUGEPAGE_DIR, glob.escape(prefix) + "*")):
        try:
            os.unlink(path)
        except OSError:
            pass
    shutil.rmtree(os.path.join(DPDK_RUN_DIR, prefix), ignore_errors=True)


def hugepage_files(prefix, directory=HUGEPAGE_DIR):
    try:
        return sorted(f for f in os.listdir(directory) if f.startswith(prefix))
    except OSError:
        return []


class Proc:
    """A process in a namespace with its output in a log file."""

    def __init__(self, argv, log_path):
        self.log_path = log_path
        self._log = open(log_path, "w")
        self.popen = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT,
                                      start_new_session=True)
        self.pid = self.popen.pid

    def poll(self):
        return self.popen.poll()

    def wait(self, timeout=None):
        return self.popen.wait(timeout=timeout)

    def signal(self, sig):
        if self.popen.poll() is None:
            self.popen.send_signal(sig)

    def log(self):
        try:
            with open(self.log_path) as f:
                return f.read()
        except OSError:
            return ""

    def stop(self, timeout=5):
        if self.popen.poll() is None:
            try:
                self.popen.send_signal(signal.SIGCONT)  # a test may have stopped it
                self.popen.terminate()
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._log.close()


class Netns:
    def __init__(self, lab, name):
        self.lab = lab
        self.name = name

    def run(self, argv, check=True, timeout=60):
        return run(["ip", "netns", "exec", self.name] + list(argv), timeout=timeout, check=check)

    def ip(self, *args, check=True):
        return self.run(["ip"] + list(args), check=check)

    def sysctl(self, key, value):
        self.run(["sysctl", "-q", "-w", f"{key}={value}"])

    def add_addr(self, dev, addr):
        extra = ["nodad"] if ":" in addr else []  # IPv6 usable at once
        self.ip("addr", "add", addr, "dev", dev, *extra)

    def add_route(self, dst, via=None, dev=None):
        args = ["-6"] if (via and ":" in via) or ":" in dst else []
        args += ["route", "add", dst]
        if via:
            args += ["via", via]
        if dev:
            args += ["dev", dev]
        self.ip(*args)

    def mac(self, dev):
        out = self.ip("-br", "link", "show", "dev", dev).stdout.split()
        return out[2].lower()

    def link_exists(self, dev):
        return self.ip("link", "show", "dev", dev, check=False).stdout.strip() != ""

    def no_offloads(self, dev):
        """Real checksums on the wire: veth offloads would hand af_packet partial ones."""
        self.run(["ethtool", "-K", dev, "rx", "off", "tx", "off", "tso", "off", "gso", "off",
                  "gro", "off"], check=False)

    def kernel_ignores(self, dev):
        """The namespace's kernel keeps out of the traffic on `dev` (a DPDK af_packet port
        also feeds the kernel): no ARP answers, no IPv6, every IPv4 packet from it dropped
        (by a rule ahead of the local table, which moves from preference 0 to 100)."""
        self.sysctl(f"net.ipv4.conf.{dev}.arp_ignore", 8)
        self.sysctl(f"net.ipv6.conf.{dev}.disable_ipv6", 1)
        self.ip("rule", "add", "pref", "10", "iif", dev, "blackhole")
        rules = self.ip("rule", "show").stdout.splitlines()
        if any(r.startswith("0:") and r.endswith("lookup local") for r in rules):
            self.ip("rule", "add", "pref", "100", "lookup", "local")
            self.ip("rule", "del", "pref", "0", "lookup", "local")

    def popen(self, argv, name):
        p = Proc(["ip", "netns", "exec", self.name] + list(argv), self.lab.path(f"{name}.log"))
        self.lab.procs.append(p)
        return p

    def ping(self, dst, count=3, deadline=None, ttl=None, interval=0.2):
        """Returns (sent, received)."""
        argv = ["ping", "-n", "-q", "-c", str(count), "-i", str(interval)]
        argv += ["-w", str(deadline if deadline else count + 5)]
        if ttl is not None:
            argv += ["-t", str(ttl)]
        out = self.run(argv + [dst], check=False, timeout=(deadline or count + 5) + 10).stdout
        for line in out.splitlines():
            if "packets transmitted" in line:
                parts = line.split(",")
                sent = int(parts[0].split()[0])
                received = int(parts[1].split()[0])
                return sent, received
        return 0, 0


class Lab:
    def __init__(self, name, deadline=300):
        self.name = name
        self.tag = f"{name}{os.getpid()}"
        self.namespaces = []
        self.procs = []
        self.dpdk_prefixes = []
        self.dir = tempfile.mkdtemp(prefix=f"vleaf-{name}-")
        os.chmod(self.dir, 0o755)
        self.deadline = deadline
        self._veths = 0

    def __enter__(self):
        def stop(signum, _frame):
            raise Terminated(f"signal {signum}" if signum != signal.SIGALRM
                             else f"deadline of {self.deadline}s passed")
        self._old = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT,
                                                          signal.SIGHUP, signal.SIGALRM)}
        signal.alarm(self.deadline)
        self.sweep_stale()
        return self

    def __exit__(self, *exc):
        signal.alarm(0)
        # A second signal must not cut the cleanup short.
        for s in self._old:
            signal.signal(s, signal.SIG_IGN)
        try:
            self.cleanup()
        finally:
            for s, h in self._old.items():
                signal.signal(s, h)
        return False

    def cleanup(self):
        for p in reversed(self.procs):
            p.stop()
        for ns in self.namespaces:
            delete_netns(ns.name)
        for prefix in self.dpdk_prefixes:
            remove_dpdk_files(prefix)
        if os.environ.get("VLEAF_KEEP_LOGS"):
            print(f"logs kept in {self.dir}", flush=True)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def sweep_stale(self):
        """Removes namespaces and DPDK files of earlier Labs of this name whose test
        process is gone (killed before its cleanup finished)."""
        stale = re.compile(rf"^{re.escape(self.name)}(\d+)(-[\w-]+|[A-Za-z_]+)$")

        def dead(name):
            m = stale.match(name)
            return m is not None and not pid_alive(int(m.group(1)))
        for ns in namespaces():
            if dead(ns):
                delete_netns(ns)
        for base in (HUGEPAGE_DIR, DPDK_RUN_DIR):
            for path in glob.glob(os.path.join(base, glob.escape(self.name) + "*")):
                # hugepage files are "<prefix>map_<n>"; run directories are "<prefix>"
                prefix = re.sub(r"map_\d+$", "", os.path.basename(path))
                if dead(prefix):
                    remove_dpdk_files(prefix)

    def netns(self, short):
        ns = Netns(self, f"{self.tag}-{short}")
        run(["ip", "netns", "add", ns.name])
        self.namespaces.append(ns)
        ns.ip("link", "set", "lo", "up")
        return ns

    def veth(self, ns_a, name_a, ns_b, name_b):
        """A veth pair, `name_a` in ns_a and `name_b` in ns_b, both up. Created inside the
        namespaces, so the names never clash with the root namespace or other tests."""
        self._veths += 1
        run(["ip", "link", "add", "name", name_a, "netns", ns_a.name, "type", "veth",
             "peer", "name", name_b, "netns", ns_b.name])
        ns_a.ip("link", "set", name_a, "up")
        ns_b.ip("link", "set", name_b, "up")

    def path(self, name):
        p = os.path.join(self.dir, name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        return p

    def write(self, name, text, mode=0o644):
        p = self.path(name)
        with open(p, "w") as f:
            f.write(text)
        os.chmod(p, mode)
        return p

    def dpdk_prefix(self, name):
        """A unique EAL --file-prefix; its files are removed at the end."""
        prefix = f"{self.tag}{name}"
        self.dpdk_prefixes.append(prefix)
        return prefix


def tcp_transfer(src, dst, addr, port, nbytes):
    """Sends nbytes from namespace src to a sink in dst at addr:port; returns
    ((sent, sha256), (received, sha256))."""
    script = os.path.join(_LIB, "tcp_transfer.py")
    sink = subprocess.Popen(["ip", "netns", "exec", dst.name, sys.executable, script, "sink",
                             addr, str(port)], stdout=subprocess.PIPE, text=True)
    try:
        line = sink.stdout.readline().strip()
        if line != "listening":
            raise RuntimeError(f"tcp sink did not start: {line!r}")
        out = src.run([sys.executable, script, "source", addr, str(port), str(nbytes)],
                      timeout=60).stdout.split()
        got = sink.stdout.readline().split()
        sink.wait(timeout=30)
    finally:
        if sink.poll() is None:
            sink.kill()
            sink.wait()
    return (int(out[0]), out[1]), (int(got[0]), got[1]) if got else (0, "")
