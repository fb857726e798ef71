#!/usr/bin/env python3
"""Stress benchmark: hundreds of short runs, many at once; none lost, none twice, and what the sweep costs.

    python bench/stress.py [--runs 500] [--num-envs 32] [--duration 0.2] [--quick]

One real sweep, as a user runs it, in a subprocess:

    python mlagents-learn.py stress.yaml --trainer "<python> tests/stand_in_trainer.py" --env=Fake
        --num-envs 32 --base-port <free range> --no-tensorboard --results-dir <tmp>

over --runs stand-in runs of --duration seconds (`stand_in: {duration: 0.2, points: 2,
n: {opt_values: [0, 1, ..., 499]}}`: the option `n` only makes the runs; the stand-in
ignores it).  Each stand-in keeps one record per launch (STAND_IN_RECORDS).

Checks (counted, reported as figures; the benchmark fails only if it cannot measure):
  - every run finished: summary.csv has one row per run, status "finished";
  - none lost: every run id has a record with exit code 0;
  - none twice: exactly one record (one launch) per run id;
  - at most --num-envs at once (the records' process creation .. end intervals), and
    no two runs that overlapped in time held the same port.
Costs: the sweep process's own CPU time and its share of the wall time, its peak
memory (VmHWM), measured as bench/scheduler.py does (waitid(WNOWAIT), then
/proc/<pid>/stat of the zombie; VmHWM polled), the trainers' CPU time beside it,
and the total wall time.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SCRIPT, STAND_IN, emit, figure, free_port_range, machine_busy_s, stop_sweep  # noqa: E402
from helpers import read_records  # noqa: E402  (tests/helpers.py)
from scheduler import sample_sweep  # noqa: E402  (the sweep's own CPU time and peak memory)

def stress_config(runs: int, duration: float) -> str:
    values = ", ".join(str(i) for i in range(runs))
    return ("behaviors:\n  B:\n    trainer_type: ppo\n    max_steps: 1000\n"
            f"stand_in:\n  duration: {duration}\n  points: 2\n  n: {{opt_values: [{values}]}}\n")


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one instant (an end before a start at the same time)."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals],
                    key=lambda event: (event[0], event[1]))
    most = now = 0
    for _, change in events:
        now += change
        most = max(most, now)
    return most


def port_clashes(records: list[dict[str, Any]]) -> int:
    """Pairs of runs that held the same port at the same time."""
    by_port: dict[int, list[tuple[float, float]]] = {}
    for rec in records:
        for port in rec["ports"]:
            by_port.setdefault(port, []).append((rec["start"], rec["end"] if rec["end"] is not None else float("inf")))
    clashes = 0
    for spans in by_port.values():
        spans.sort()
        clashes += sum(1 for (_, end), (start, _) in zip(spans, spans[1:]) if start < end)
    return clashes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--num-envs", type=int, default=32)
    parser.add_argument("--duration", type=float, default=0.2, help="seconds of 'training' per stand-in run")
    parser.add_argument("--quick", action="store_true", help="tiny: 40 runs, 8 at once")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder and say where")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.num_envs = 40, 8

    tmp = Path(tempfile.mkdtemp(prefix="bench-stress-"))
    try:
        records = tmp / "records"
        records.mkdir()
        config = tmp / "stress.yaml"
        config.write_text(stress_config(args.runs, args.duration))
        base_port = free_port_range(args.num_envs)
        command = [sys.executable, str(SCRIPT), str(config), "--trainer", f"{sys.executable} {STAND_IN}", "--env=Fake",
                   "--num-envs", str(args.num_envs), "--base-port", str(base_port), "--no-tensorboard",
                   "--results-dir", str(tmp / "results"), "--run-id", "stress"]
        log = tmp / "sweep.out"
        print(f"stress: {args.runs} stand-in runs of {args.duration:g} s, {args.num_envs} at once, "
              f"ports {base_port}-{base_port + args.num_envs - 1} ...", flush=True)
        busy = machine_busy_s()
        with open(log, "wb") as out:
            started = time.time()
            proc = subprocess.Popen(command, cwd=tmp, env={**os.environ, "STAND_IN_RECORDS": str(records)},
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        try:
            seen = sample_sweep(proc)
        finally:
            stop_sweep(proc)  # if we failed, not the sweep
        wall = seen["exited"] - started
        # The machine's busy time meanwhile, less the sweep's and its trainers': other sessions' share.
        others = machine_busy_s() - busy - seen["wait4_cpu"]
        output = log.read_text(encoding="utf-8", errors="replace")
        summary_path = tmp / "results" / "stress-sweep" / "summary.csv"
        if not summary_path.is_file():
            raise SystemExit(f"the sweep exited {proc.returncode} without a summary:\n{output[-3000:]}")
        with open(summary_path, encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
        recs = read_records(str(records))
        if not recs:
            raise SystemExit(f"no stand-in left a record; the sweep exited {proc.returncode}:\n{output[-3000:]}")

        run_ids = [f"stress-{i}" for i in range(args.runs)]
        statuses = Counter(row["status"] for row in rows)
        finished = {row["run"] for row in rows if row["status"] == "finished"}
        launches = Counter(rec["run_id"] for rec in recs)
        good = {rec["run_id"] for rec in recs if rec["exit_code"] == 0 and rec["end"] is not None}
        lost = [run_id for run_id in run_ids if run_id not in finished or run_id not in good]
        twice = sorted(run_id for run_id, count in launches.items() if count > 1)
        strangers = sorted(set(launches) - set(run_ids))
        # From the process's creation (`launched`, /proc) rather than the record's start, which comes
        # only after the stand-in's Python has started: on busy cores that is a good part of a short run.
        overlap = max_overlap([(rec["launched"], rec["end"] if rec["end"] is not None else float("inf")) for rec in recs])
        clashes = port_clashes(recs)
        errors = [rec for rec in recs if rec["error"]]
        trainers_cpu = seen["children_cpu"]
        own = seen["own_cpu"]
        # Own CPU rate while runs train (first launch -> last end), without start-up and summary.
        first, last = min(rec["launched"] for rec in recs), max(rec["end"] or 0.0 for rec in recs)
        inside = [(t, c) for t, c in seen["samples"] if first <= t <= last]
        steady = (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0]) if len(inside) >= 2 else None
        print(f"sweep exit {proc.returncode}, wall {wall:.1f} s; summary statuses {dict(statuses)}; "
              f"{len(recs)} records for {len(launches)} run ids; lost {len(lost)}, twice {len(twice)}, "
              f"unknown ids {len(strangers)}, trainer errors {len(errors)}; at most {overlap} at once; "
              f"port clashes {clashes}", flush=True)
        print(f"sweep's own CPU {own:.2f} s (wait4 total {seen['wait4_cpu']:.2f} - trainers {trainers_cpu:.2f} "
              f"= {seen['wait4_cpu'] - trainers_cpu:.2f} s), peak {seen['hwm_mb']:.0f} MiB; "
              f"CPU-bound floor (own + trainers' CPU) / {os.cpu_count()} cores = "
              f"{(own + trainers_cpu) / (os.cpu_count() or 1):.1f} s", flush=True)
        for what, items in (("lost", lost), ("twice", twice), ("unknown ids", strangers)):
            if items:
                print(f"  {what}: {', '.join(items[:20])}{' ...' if len(items) > 20 else ''}", flush=True)
        if proc.returncode != 0:
            print(f"  the sweep exited {proc.returncode}; its output ends:\n{output[-2000:]}", flush=True)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    cores = os.cpu_count() or 1
    figures = [
        figure("runs_finished", len(finished), "runs", f">= {args.runs}",
               f"summary.csv rows with status finished, of {args.runs} (sweep exit {proc.returncode})"),
        figure("runs_lost", len(lost), "runs", "<= 0", "not finished in summary.csv, or no record with exit 0"),
        figure("runs_twice", len(twice), "runs", "<= 0", "run ids launched more than once (records per run id > 1)"),
        figure("max_concurrent_runs", overlap, "runs", f"<= {args.num_envs}",
               "most runs alive at one instant (records: process created .. end written)"),
        figure("port_clashes", clashes, "pairs", "<= 0", "runs that held the same port at the same time"),
        figure("wall_s", wall, "s", None, "sweep process start -> exit"),
        figure("runs_per_s", args.runs / wall, "runs/s", None, f"{args.runs} runs / wall"),
        figure("wall_vs_cpu_floor", wall / ((own + trainers_cpu) / cores), "x", None,
               f"wall / ((sweep's + trainers' CPU) / {cores} cores): 1 = every core busy the whole time"),
        figure("others_cores", others / wall, "cores", None,
               "CPU other programs used meanwhile / wall (/proc/stat less the sweep's and trainers'): "
               "what the floor above did not have"),
        figure("sweep_cpu_s", own, "s", None, "the sweep process's own CPU time (utime + stime of the zombie)"),
        figure("sweep_cpu_share_pct", 100 * own / wall, "%", "< 5",
               "its own CPU / its wall time (of one core), start-up and summary included"),
        figure("sweep_cpu_share_steady_pct", None if steady is None else 100 * steady, "%", "< 5",
               "the same while runs train (first launch -> last end), from /proc samples every 0.5 s"),
        figure("sweep_cpu_ms_per_run", 1000 * own / args.runs, "ms", None, "its own CPU / runs"),
        figure("trainers_cpu_s", trainers_cpu, "s", None, "the stand-ins' CPU (the sweep's reaped children)"),
        figure("sweep_peak_rss_mb", seen["hwm_mb"], "MiB", None, "VmHWM of the sweep process, polled"),
    ]
    emit("stress", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
