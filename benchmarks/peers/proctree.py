"""Runs a command and measures its whole process tree: CPU, wall, peak RSS.

A PySpark job is a Python driver whose JVM is a child (started through
spark-submit's shell scripts, with a short-lived launcher JVM first) that the
driver never waits for: rusage of the driver alone misses the JVM. So this
process makes itself a child subreaper (prctl PR_SET_CHILD_SUBREAPER): every
descendant orphaned on the way is re-parented to it and reaped by it, and
after the command exits it waits until no descendant is left. Then two
measures of the tree's CPU (user + system):

  rusage   getrusage(RUSAGE_CHILDREN) after every descendant was reaped: each
           process's CPU is added up exactly once, by whoever reaped it.
  sampled  /proc/<pid>/stat of every descendant sampled every --interval s,
           the last sample of each process summed (misses each process's last
           interval; a cross-check that the JVM is in the first).

Peak RSS is ru_maxrss of the reaped children (the largest single process:
the JVM; a max, so it also covers children a launcher of this python reaped
before, a few MB) and, sampled, the largest VmHWM of a process named java.

The command's last stdout line that is a JSON object is merged with these
figures (cpu_seconds, wall_seconds, peak_rss_bytes, events_per_cpu_second
from its "events") and printed as one JSON line; its other output goes to
stderr.

Usage: proctree.py [--interval S] -- COMMAND ARGS...
"""

import argparse
import ctypes
import json
import os
import resource
import subprocess
import sys
import threading
import time

PR_SET_CHILD_SUBREAPER = 36
CLK_TCK = os.sysconf("SC_CLK_TCK")


def subreaper():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def read_stat(pid):
    """(comm, ppid, starttime, cpu seconds) of pid, None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            st = f.read()
    except OSError:
        return None
    comm = st[st.index("(") + 1 : st.rindex(")")]
    fields = st[st.rindex(")") + 2 :].split()
    # fields[0] is state (stat field 3): ppid 4, utime 14, stime 15, starttime 22.
    return comm, int(fields[1]), int(fields[19]), (int(fields[11]) + int(fields[12])) / CLK_TCK


def hwm_bytes(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class Sampler(threading.Thread):
    """Samples the CPU and VmHWM of every descendant of root."""

    def __init__(self, root, interval):
        super().__init__(daemon=True)
        self.root, self.interval = root, interval
        self.cpu = {}  # (pid, starttime) -> (comm, last cpu seconds)
        self.java_hwm = 0
        self.stop = threading.Event()

    def sample(self):
        stats = {}
        for p in os.listdir("/proc"):
            if p.isdigit():
                s = read_stat(int(p))
                if s is not None:
                    stats[int(p)] = s
        mine, frontier = set(), {self.root}
        while frontier:  # descendants of root by ppid
            frontier = {p for p, s in stats.items() if s[1] in frontier and p not in mine}
            mine |= frontier
        for p in mine:
            comm, _, start, cpu = stats[p]
            self.cpu[(p, start)] = (comm, cpu)
            if comm == "java":
                self.java_hwm = max(self.java_hwm, hwm_bytes(p))

    def run(self):
        while not self.stop.wait(self.interval):
            self.sample()


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--interval", type=float, default=0.1, help="sampling interval, seconds")
    ap.add_argument("--reap-timeout", type=float, default=120, help="seconds to wait for descendants after the command exits")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args(argv)
    cmd = a.cmd[1:] if a.cmd[:1] == ["--"] else a.cmd
    if not cmd:
        ap.error("no command")

    subreaper()
    # Children reaped before this (a launcher's, e.g. pyenv's shim, which
    # then exec'd this python) already count in RUSAGE_CHILDREN: not ours.
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    sampler = Sampler(os.getpid(), a.interval)
    sampler.start()
    last_json = None

    def relay():
        nonlocal last_json
        for line in child.stdout:
            s = line.strip()
            if s.startswith("{"):
                try:
                    last_json = json.loads(s)
                    continue
                except ValueError:
                    pass
            sys.stderr.write(line)

    reader = threading.Thread(target=relay, daemon=True)
    reader.start()

    # Reap the command and every orphan re-parented here, until none is left.
    status, deadline = None, None
    while True:
        try:
            pid, st = os.waitpid(-1, 0 if deadline is None else os.WNOHANG)
        except ChildProcessError:
            break
        if pid == child.pid:
            status = os.waitstatus_to_exitcode(st)
            child.returncode = status
            deadline = time.monotonic() + a.reap_timeout
        elif pid == 0:
            if time.monotonic() > deadline:
                print(f"proctree: descendants still running {a.reap_timeout} s after the command exited", file=sys.stderr)
                return 1
            time.sleep(0.05)
    wall = time.monotonic() - t0
    sampler.stop.set()
    sampler.join()
    reader.join(timeout=10)
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru.ru_utime - ru0.ru_utime) + (ru.ru_stime - ru0.ru_stime)
    sampled = sum(c for _, c in sampler.cpu.values())
    by_comm = {}
    for comm, c in sampler.cpu.values():
        by_comm[comm] = round(by_comm.get(comm, 0) + c, 2)

    rep = dict(last_json or {})
    rep.update(
        cpu_seconds=round(cpu, 3),
        wall_seconds=round(wall, 3),
        peak_rss_bytes=ru.ru_maxrss * 1024,
        cpu_seconds_sampled=round(sampled, 3),
        cpu_seconds_sampled_by_process=by_comm,
        processes_sampled=len(sampler.cpu),
        java_peak_hwm_bytes_sampled=sampler.java_hwm,
        exit_code=status,
        # How busy the machine was: CPU seconds stretch under contention too.
        loadavg_1min_at_end=float(open("/proc/loadavg").read().split()[0]),
    )
    if rep.get("events") and cpu > 0:
        rep["events_per_cpu_second"] = round(rep["events"] / cpu)
    print(json.dumps(rep), flush=True)
    return 0 if status == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
