"""Turns the JSON lines of `make bench-peers` into a Markdown table.

Lines (one per run, from .cache/peers.jsonl):
  sluice      `nexmark run --query qN --input DIR --json`, tagged "engine":
              "sluice" (cpu_seconds is the streaming run's, the process's
              getrusage; seconds its wall time)
  spark       proctree.py around spark_nexmark.py --repeat 1: cpu_seconds and
              wall_seconds of the whole process tree (JVM start-up, one cold
              query, shutdown); first_query_* the action alone
  spark warm  the same with --repeat 2: query_* is the second (warm) action
Check lines (from spark_nexmark.py --check, .cache/peers-check.jsonl) say
whether the answers were equal.

For each query: medians over the runs of CPU s, wall s, peak RSS and events
per CPU-second, and the sluice/Spark ratio of events per CPU-second (medians'
ratio, and the range over the interleaved rounds).

Usage: table.py --in FILE [--check FILE] [--results RESULTS.md]
  --results replaces (or appends) the "## Peers: Spark" section of that file.
"""

import argparse
import collections
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys

HEADING = "## Peers: Spark"


def load(path):
    rows = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if line:
                try:
                    rows.append(json.loads(line))
                except ValueError as e:
                    raise SystemExit(f"table.py: {path}:{n}: not JSON: {e}")
    return rows


def kind(r):
    if r.get("engine") == "sluice":
        return "sluice"
    if r.get("engine") == "spark":
        return "spark-warm" if r.get("query_runs", 1) >= 2 else "spark"
    raise SystemExit(f"table.py: a line of no known engine: {json.dumps(r)[:200]}")


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def fmt_rate(x):
    return f"{x / 1e3:.0f} K" if x == x else "—"


def fmt_range(xs, f="{:.2f}"):
    if not xs:
        return "—"
    lo, hi = min(xs), max(xs)
    return f.format(lo) if lo == hi else f"{f.format(lo)}–{f.format(hi)}"


def summarise(rows):
    """{query: {kind: [runs]}} in file order."""
    out = {}
    for r in rows:
        out.setdefault(r["query"], {}).setdefault(kind(r), []).append(r)
    return out


def figures(runs, cpu_key, wall_key):
    cpu = [r[cpu_key] for r in runs]
    wall = [r[wall_key] for r in runs]
    ev = [r["events"] / r[cpu_key] for r in runs if r[cpu_key] > 0]
    rss = [r.get("peak_rss_bytes", 0) / 2**20 for r in runs]
    return cpu, wall, ev, rss


def table(by_query):
    lines = [
        "| query | engine, what is measured | runs | output rows | CPU s median (range) | wall s median | peak RSS MiB | events per CPU-s (median) | sluice / this, events per CPU-s: medians (per round) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    summary = []
    for q in sorted(by_query):
        k = by_query[q]
        sl = k.get("sluice", [])
        s_cpu, s_wall, s_ev, s_rss = figures(sl, "cpu_seconds", "seconds")
        s_rows = sorted({r["output_rows"] for r in sl})
        lines.append(
            f"| {q} | sluice: streaming run (Parquet input) | {len(sl)} | {', '.join(map(str, s_rows))} | "
            f"{med(s_cpu):.2f} ({fmt_range(s_cpu)}) | {med(s_wall):.2f} | {med(s_rss):.0f} | {fmt_rate(med(s_ev))} | |"
        )
        variants = [
            ("spark", "Spark: whole process tree (JVM start-up + cold query + stop)", "cpu_seconds", "wall_seconds", True),
            ("spark", "Spark: first (cold) query action only", "first_query_cpu_seconds", "first_query_wall_seconds", False),
            ("spark-warm", "Spark: warm query action only (2nd in the session)", "query_cpu_seconds", "query_wall_seconds", False),
        ]
        for kk, what, ck, wk, show_rss in variants:
            runs = k.get(kk, [])
            if not runs:
                continue
            cpu, wall, ev, rss = figures(runs, ck, wk)
            rows = sorted({r["output_rows"] for r in runs})
            ratio = med(s_ev) / med(ev) if ev and s_ev else float("nan")
            per_round = [a / b for a, b in zip(s_ev, ev)]
            lines.append(
                f"| {q} | {what} | {len(runs)} | {', '.join(map(str, rows))} | {med(cpu):.2f} ({fmt_range(cpu)}) | "
                f"{med(wall):.2f} | {f'{med(rss):.0f}' if show_rss else '(same JVM)'} | {fmt_rate(med(ev))} | "
                f"**{ratio:.2f}×** ({fmt_range(per_round)}) |"
            )
            summary.append({"query": q, "versus": what, "ratio": round(ratio, 3)})
    return "\n".join(lines) + "\n", summary


def check_lines(rows):
    out = []
    for r in rows:
        c = r.get("check", {})
        verdict = "equal" if c.get("equal") else f"DIFFERENT ({c.get('why') or 'only Spark: ' + str(c.get('only_spark')) + ', only sluice: ' + str(c.get('only_sluice'))})"
        out.append(
            f"- {r['query']}: Spark {c.get('spark_rows')} rows, sluice {c.get('sluice_rows')} rows, "
            f"columns {', '.join(c.get('columns', []))}: row multisets **{verdict}** "
            f"(windows ending at or before the final watermark {r.get('final_watermark')}, sluice's {r.get('sluice_final_watermark', '?')})."
        )
    return "\n".join(out) + "\n" if out else ""


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def java_version():
    try:
        p = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30)
        return p.stderr.splitlines()[0].strip()
    except (OSError, subprocess.SubprocessError, IndexError):
        return "java: unknown"


def target_lines(summary, target=3.0):
    """Issue 12's target: sluice at least 3x Spark's events per CPU-second."""
    out = []
    for s in summary:
        if s["versus"].startswith("Spark: first"):
            continue
        met = "met" if s["ratio"] >= target else "not met"
        out.append(f"- {s['query']}, against {s['versus']}: {s['ratio']:.2f}× ({met})")
    return "\n".join(out) + "\n" if out else ""


def agreement(rows):
    """How far the two measures of the Spark tree's CPU are apart."""
    d = [(r["cpu_seconds"], r["cpu_seconds_sampled"]) for r in rows if r.get("engine") == "spark" and "cpu_seconds_sampled" in r]
    if not d:
        return "no Spark runs"
    worst = max(d, key=lambda x: abs(x[0] - x[1]))
    return (f"over {len(d)} Spark runs the sampled sum is within {max(abs(a - b) for a, b in d):.2f} s of the rusage figure "
            f"(largest gap: rusage {worst[0]:.2f} s, sampled {worst[1]:.2f} s; the sample misses each process's last interval)")


def startup(rows):
    st = [(r["startup_cpu_seconds"], r["startup_wall_seconds"]) for r in rows if r.get("engine") == "spark" and "startup_cpu_seconds" in r]
    if not st:
        return "an unknown share"
    return (f"{med([c for c, _ in st]):.2f} CPU s ({fmt_range([c for c, _ in st])}) and {med([w for _, w in st]):.2f} s of wall time "
            f"(medians over {len(st)} Spark processes)")


def batches(rows):
    """The batches each query's sluice runs took."""
    by = collections.defaultdict(set)
    for r in rows:
        if r.get("engine") == "sluice":
            by[r["query"]].add(r.get("batches"))
    return ", ".join(f"{q} {'/'.join(str(b) for b in sorted(v, key=str))}" for q, v in sorted(by.items())) or "none"


def go_version():
    try:
        p = subprocess.run(["go", "env", "GOVERSION"], capture_output=True, text=True, timeout=60)
        return p.stdout.strip() or "go: unknown"
    except (OSError, subprocess.SubprocessError):
        return "go: unknown"


def git_head():
    try:
        p = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=30)
        return p.stdout.strip() or "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


def section(rows, checks, tab, loadavg, summary, ended):
    sp = next((r for r in rows if r.get("engine") == "spark"), {})
    sl = next((r for r in rows if r.get("engine") == "sluice"), {})
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    rounds = max(collections.Counter(r["query"] for r in rows if r.get("engine") == "sluice").values(), default=0)
    confs = ", ".join(f"`{k}={v}`" for k, v in sp.get("configs", {}).items())
    return f"""{HEADING}

Written by `make bench-peers BENCH_PEERS_INPUT={sl.get('input') or sp.get('input')} BENCH_PEERS_RUNS={rounds}` (the runs below, then `benchmarks/peers/table.py --results`) on {now}, commit {git_head()}; the last run ended {ended}.
Machine: {os.cpu_count()} CPUs (nproc), {cpu_model()}, {java_version()}, Spark {sp.get('spark_version', '?')} (PySpark from PyPI, `scripts/spark`), sluice's runner built with `go build ./benchmarks/nexmark` ({go_version()}). Load while measured: {loadavg} (2 of it is the benchmark itself on 2 CPUs; more means other work shared the machine, which disturbs wall time more than CPU seconds).

Input: the same Parquet for both, `{sl.get('input') or sp.get('input')}` (`nexmark generate --events {sp.get('events', '?')} --event-rate {sp.get('event_rate', '?'):.0f}`; 9.2 M of the events are bids, the only table q5 and q7 read). Events per CPU-second counts all {sp.get('events', '?')} events for both engines.

Runs, interleaved per round (sluice, Spark, Spark warm; q5 then q7):
- sluice: `.cache/bin/nexmark run --query qN --input DIR --batch-events {sl.get('batch_events', '?')} --json` (AvailableNow stream, append mode, discarding sink; batches of at most {sl.get('batch_events', '?')} rows of each stream, in whole row groups: {batches(rows)}; CPU = getrusage of the streaming run, peak RSS = the process's).
- Spark: `python3 benchmarks/peers/proctree.py -- $(scripts/spark) benchmarks/peers/spark_nexmark.py --query qN --input DIR --repeat R --json`: a batch query over `spark.read.parquet`, run into the `noop` sink (every column materialised) with the rows counted by an Observation; `local[2]`, AQE on (default), and {confs}. Whole process tree: `proctree.py` is a child subreaper, so the JVM that the Python driver never waits for is reaped by it: CPU = getrusage(RUSAGE_CHILDREN) after every descendant was reaped (cross-checked against summing /proc/<pid>/stat samples of every descendant, see each line's cpu_seconds_sampled), peak RSS = the largest process's (the JVM). Query only: /proc/<jvm>/stat + the driver's times() around the action; R = 1 gives the cold first action, R = 2 a warm second action after a warm-up in the same session.

{tab}
Target (issue 12: sluice at least 3× Spark's events per CPU-second), medians' ratios:
{target_lines(summary)}
Spark's start-up (the Python driver launching the JVM until the SparkSession is ready) took {startup(rows)} of the whole run. The two measures of the Spark process tree's CPU: {agreement(rows)}. Spark's batch output has more rows than sluice's: batch computes every window, sluice's append mode only those closed by its final watermark (at 10 M events, 100 000 events/s: 1 more window of 10 for q7, 7 more of 54 for q5).

Answer check (`spark_nexmark.py --until-watermark --out … --check <sluice's nexmark run --out>`): Spark's batch answer restricted to the windows that end at or before the final watermark (max(bid.dateTime) − 4 s, the watermark after sluice's last batch, which is when its append mode emits a window) against sluice's streaming answer:
{checks}"""


def replace_section(doc, sec):
    sec = sec.rstrip("\n") + "\n"
    start = 0 if doc.startswith(HEADING + "\n") else doc.find("\n" + HEADING + "\n") + 1
    if doc.startswith(HEADING + "\n") or start > 0:
        rest = doc[start + len(HEADING):]
        i = rest.find("\n## ")
        end = start + len(HEADING) + i + 1 if i >= 0 else len(doc)
        tail = doc[end:]
        return doc[:start] + sec + ("\n" + tail if tail else "")
    return doc.rstrip("\n") + "\n\n" + sec


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--in", dest="inp", required=True)
    ap.add_argument("--check", help="JSON lines of spark_nexmark.py --check runs")
    ap.add_argument("--results", help="Markdown file whose Peers: Spark section to write")
    ap.add_argument("--loadavg", default="", help="load average to state (default: now)")
    a = ap.parse_args(argv)
    rows = load(a.inp)
    checks = load(a.check) if a.check and os.path.exists(a.check) else []
    tab, summary = table(summarise(rows))
    sys.stdout.write(tab)
    for s in summary:
        print(json.dumps(s))
    if a.results:
        la = a.loadavg
        if not la:
            ends = [r["loadavg_1min_at_end"] for r in rows if "loadavg_1min_at_end" in r]
            la = f"1-minute load average {fmt_range(ends)} at the end of the Spark runs" if ends else \
                "load average " + " ".join(open("/proc/loadavg").read().split()[:3]) + " (1, 5, 15 min) as the runs ended"
        ended = datetime.datetime.fromtimestamp(os.path.getmtime(a.inp), datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        doc = open(a.results).read() if os.path.exists(a.results) else ""
        sec = section(rows, check_lines(checks), tab, la, summary, ended)
        with open(a.results, "w") as f:
            f.write(replace_section(doc, sec))
    bad = [r["query"] for r in checks if not r.get("check", {}).get("equal")]
    if bad:
        print(f"table.py: the answers differ for {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
