#!/usr/bin/env python3
"""Scheduler benchmark: how well the sweep keeps its slots busy, what it costs, and --dry-run at scale.

    python bench/scheduler.py [--runs 12] [--duration 3] [--num-envs 3] [--quick]

1. A real sweep, as a user runs it: `python mlagents-learn.py sweep.yaml --trainer
   "<python> tests/stand_in_trainer.py" --env=Fake --num-envs 3 --no-tensorboard ...`
   over --runs stand-in runs of --duration seconds each (opt_values on the learning
   rate; the stand-in ignores it).  Ideal makespan = ceil(runs / num_envs) * duration.
   - makespan ratios: the sweep process's whole life (Popen -> exit) and first run
     start -> last run end (the stand-ins' STAND_IN_RECORDS records), each / ideal;
   - the refill gap: in each slot (a slot owns its port), next run's start minus the
     previous run's end, as the records see them (includes the trainer's exit and the
     next one's exec + Python start-up: what a user sees, not only the sweep's 0.2 s
     tick), and split with the sweep's own clock (sweep_state.json) into reap delay
     (record end -> reaped), launch delay (reaped -> next launched) and trainer
     start-up (launched -> record start);
   - the sweep process's OWN CPU time as a share of wall time (see sample_sweep);
   - the sweep process's peak memory (VmHWM, polled while it lives).
   The same sweep again with a TensorBoard URL whose server accepts every
   connection and never answers, and a stop rule so that the sweep polls it
   (--poll-interval 0.5): its runs' makespan ratio and refill gaps, which a hung
   TensorBoard must not change (polls run on their own thread).
2. `--dry-run` of a 10,000-run grid (4 options x 10 values): wall time, and peak
   memory from os.wait4 (exact here: the dry run starts no child process).
3. option_labels on 2,000 and 20,000 options: the ratio of their times (10 when
   linear; it was quadratic, 20,000 options took minutes).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import statistics
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SCRIPT, STAND_IN, HungServer, emit, figure, load_script, median, proc_cpu, proc_hwm_mb, stop_sweep  # noqa: E402
from helpers import free_port, read_records  # noqa: E402  (tests/helpers.py)

SAMPLE_EVERY = 0.5  # /proc sampling period of the sweep process (shorter for --quick's short runs)
EXIT_CHECK = 0.05  # how often we look for the sweep's exit


def sweep_config(runs: int, duration: float, stop_rule: bool = False) -> str:
    rates = ", ".join(f"{(i + 1) * 1e-4:.4g}" for i in range(runs))
    rule = "    opt_stop: {tag: Score, min: 0}\n" if stop_rule else ""
    return ("behaviors:\n  B:\n    trainer_type: ppo\n    max_steps: 1000\n"
            f"    hyperparameters:\n      learning_rate: {{opt_values: [{rates}]}}\n{rule}"
            # points: 0 writes no event files, so the stand-in does not import tensorboard:
            # its start-up would otherwise count as the scheduler's overhead.
            f"stand_in:\n  duration: {duration}\n  points: 0\n")


def grid_config(shape: list[int]) -> str:
    """A config whose options multiply to prod(shape) runs: one option per entry of shape."""
    keys = ["learning_rate", "beta", "epsilon", "lambd", "batch_size", "buffer_size"]
    lines = ["behaviors:", "  B:", "    trainer_type: ppo", "    max_steps: 500000", "    hyperparameters:"]
    for key, count in zip(keys, shape):
        values = ", ".join(f"{(i + 1) * 0.001:.4g}" for i in range(count))
        lines.append(f"      {key}: {{opt_values: [{values}]}}")
    lines += ["    network_settings: {hidden_units: 128, num_layers: 2}",
              "    reward_signals: {extrinsic: {gamma: 0.99, strength: 1.0}}"]
    return "\n".join(lines) + "\n"


def sample_sweep(proc: subprocess.Popen, every: float = SAMPLE_EVERY) -> dict[str, Any]:
    """Watch the sweep until it exits; its own CPU time, CPU samples and peak memory.

    Own CPU: os.wait4's rusage would be wrong (it adds every child the sweep reaped,
    i.e. all the trainers), and so would getrusage(RUSAGE_CHILDREN) here.  Instead
    we wait for the exit with waitid(WEXITED | WNOWAIT), which leaves the sweep a
    zombie, and read /proc/<pid>/stat then: utime + stime are the sweep's own
    threads only, final, including its start-up and its summary at the end
    (cutime + cstime, beside them, are its reaped children).  Then we reap it with
    wait4; its total (own + reaped children) is printed beside the two, as a check.
    Peak memory: VmHWM is gone from a zombie's /proc/<pid>/status (its memory is
    freed before), so it is polled every `every` s; being a high-water mark,
    the last sample misses only a rise in the final half second.
    """
    pid = proc.pid
    samples: list[tuple[float, float]] = []  # (wall time, own CPU s)
    hwm = 0.0
    next_sample = 0.0
    while True:
        now = time.time()
        if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is not None:
            exited = now
            break
        if now >= next_sample:
            cpu = proc_cpu(pid)
            mem = proc_hwm_mb(pid)
            if cpu is not None:
                samples.append((now, cpu[0]))
            if mem is not None:
                hwm = max(hwm, mem)
            next_sample = now + every
        time.sleep(EXIT_CHECK)
    final = proc_cpu(pid)  # the zombie's final figures
    _, status, rusage = os.wait4(pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if final is None:
        raise RuntimeError(f"could not read the sweep's own CPU times from /proc/{pid}/stat")
    own, children = final
    total = rusage.ru_utime + rusage.ru_stime
    samples.append((exited, own))
    return {"exited": exited, "own_cpu": own, "children_cpu": children, "wait4_cpu": total,
            "samples": samples, "hwm_mb": hwm}


def bench_sweep(runs: int, duration: float, num_envs: int, tmp: Path, hung: HungServer | None = None) -> list[dict[str, Any]]:
    """The sweep's figures; with `hung`, its TensorBoard URL accepts and never answers, and a stop rule makes it poll."""
    tmp = tmp / ("hung" if hung else "plain")
    records = tmp / "records"
    records.mkdir(parents=True)
    config = tmp / "sweep.yaml"
    config.write_text(sweep_config(runs, duration, stop_rule=hung is not None))
    trainer = f"{sys.executable} {STAND_IN}"
    board = ["--tensorboard-url", hung.url, "--poll-interval", "0.5"] if hung else ["--no-tensorboard"]
    command = [sys.executable, str(SCRIPT), str(config), "--trainer", trainer, "--env=Fake",
               "--num-envs", str(num_envs), "--base-port", str(free_port()), *board,
               "--results-dir", str(tmp / "results"), "--run-id", "sched"]
    env = {**os.environ, "STAND_IN_RECORDS": str(records)}
    log = tmp / "sweep.out"
    print(f"sweep: {runs} runs x {duration:g} s, {num_envs} at once{', TensorBoard hung' if hung else ''} ...", flush=True)
    with open(log, "wb") as out:
        started = time.time()
        proc = subprocess.Popen(command, cwd=tmp, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        seen = sample_sweep(proc, min(SAMPLE_EVERY, duration / 4))
    finally:
        stop_sweep(proc)  # if we failed, not the sweep
    if proc.returncode != 0:
        raise SystemExit(f"the sweep exited {proc.returncode}:\n{log.read_text()[-3000:]}")
    recs = read_records(str(records))
    if len(recs) != runs or any(rec["exit_code"] != 0 or rec["end"] is None for rec in recs):
        raise SystemExit(f"expected {runs} finished runs, records: {recs}")

    ideal = math.ceil(runs / num_envs) * duration
    wall = seen["exited"] - started
    first_start = min(rec["start"] for rec in recs)
    last_end = max(rec["end"] for rec in recs)
    span = last_end - first_start
    slots: dict[tuple[int, ...], list[dict[str, Any]]] = {}
    for rec in recs:
        slots.setdefault(tuple(rec["ports"]), []).append(rec)
    gaps = []
    for lane in slots.values():
        lane.sort(key=lambda rec: rec["start"])
        gaps += [b["start"] - a["end"] for a, b in zip(lane, lane[1:])]
    run_over = [rec["end"] - rec["start"] - duration for rec in recs]
    # The gap split by the sweep's own clock (sweep_state.json: start = launched, end = reaped):
    # trainer's record end -> the sweep reaps it (its 0.2 s tick, plus the trainer's exit), and
    # the sweep launches the next run -> that trainer's record start (exec, Python, imports).
    state = json.loads((tmp / "results" / "sched-sweep" / "sweep_state.json").read_text())
    seen_by_sweep = {run["run_id"]: {"start": run["sessions"][0]["began"], "end": run["sessions"][-1]["ended"]}
                     for run in state["runs"]}
    detect = [seen_by_sweep[rec["run_id"]]["end"] - rec["end"] for rec in recs]
    startup = [rec["start"] - seen_by_sweep[rec["run_id"]]["start"] for rec in recs]
    launch = []  # the sweep reaps a run -> it has launched the next in that slot (its clock)
    for lane in slots.values():
        launch += [seen_by_sweep[b["run_id"]]["start"] - seen_by_sweep[a["run_id"]]["end"] for a, b in zip(lane, lane[1:])]
    packed = sum(rec["end"] - rec["start"] for rec in recs) / num_envs

    # CPU while runs train: between the first sample after the first start and
    # the last sample before the last end (start-up and summary excluded).
    inside = [(t, c) for t, c in seen["samples"] if first_start <= t <= last_end]
    steady = (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0]) if len(inside) >= 2 else None
    own, check = seen["own_cpu"], seen["wait4_cpu"] - seen["children_cpu"]
    if hung is not None:
        if hung.connections == 0:
            raise SystemExit("the sweep never asked the hung TensorBoard: the figures would not be of a hung one")
        return [
            figure("hung_tb_makespan_ratio_runs", span / ideal, "x", "<= 1.05",
                   f"with a TensorBoard that accepts and never answers ({hung.connections} connections): "
                   f"first run start -> last run end {span:.2f} s / ideal {ideal:g} s"),
            figure("hung_tb_refill_gap_median_s", median(gaps), "s", None,
                   f"a slot's next run start - previous run end, {len(gaps)} refills, TensorBoard hung"),
            figure("hung_tb_refill_gap_max_s", max(gaps) if gaps else None, "s"),
        ]
    print(f"sweep wall {wall:.2f} s, runs' span {span:.2f} s, ideal {ideal:g} s; slots {len(slots)}; "
          f"own CPU {own:.2f} s (wait4 total {seen['wait4_cpu']:.2f} - children {seen['children_cpu']:.2f} "
          f"= {check:.2f} s); trainers' CPU {seen['children_cpu']:.2f} s", flush=True)
    return [
        figure("makespan_ratio_sweep", wall / ideal, "x", "<= 1.05",
               f"sweep process start -> exit {wall:.2f} s / ideal {ideal:g} s"),
        figure("makespan_ratio_runs", span / ideal, "x", "<= 1.05",
               f"first run start -> last run end {span:.2f} s / ideal {ideal:g} s (records)"),
        figure("refill_gap_median_s", median(gaps), "s", None,
               f"a slot's next run start - previous run end, {len(gaps)} refills (records)"),
        figure("refill_gap_max_s", max(gaps) if gaps else None, "s"),
        figure("reap_delay_median_s", median(detect), "s", None,
               "a trainer's record end -> the sweep reaps it (sweep_state.json end)"),
        figure("launch_delay_median_s", median(launch), "s", None,
               "the sweep reaps a run -> its Popen of the next one in that slot has returned"),
        figure("trainer_startup_median_s", median(startup), "s", None,
               "the sweep launches a trainer -> its record start (exec, Python start-up)"),
        figure("makespan_ratio_packed", span / packed, "x", None,
               f"runs' span / (sum of the runs' own lengths {packed * num_envs:.1f} s / {num_envs} slots): "
               "what the gaps between runs add"),
        figure("run_overhead_median_s", median(run_over), "s", None,
               f"a stand-in run's record end - start - {duration:g} s (its start-up and save)"),
        figure("sweep_cpu_share_pct", 100 * own / wall, "%", "< 1",
               f"sweep's own CPU {own:.2f} s / its wall {wall:.1f} s, start-up and summary included"),
        figure("sweep_cpu_share_steady_pct", None if steady is None else 100 * steady, "%", "< 1",
               "own CPU rate while runs train (first start -> last end)"),
        figure("sweep_peak_rss_mb", seen["hwm_mb"], "MiB", None, "VmHWM of the sweep process, polled"),
    ]


def bench_dry_run(shape: list[int], repeats: int, tmp: Path) -> list[dict[str, Any]]:
    total = math.prod(shape)
    config = tmp / "grid.yaml"
    config.write_text(grid_config(shape))
    walls, cpus, peaks = [], [], []
    for attempt in range(repeats):
        out_dir = tmp / f"dry{attempt}"
        command = [sys.executable, str(SCRIPT), str(config), "--dry-run", "--trainer", f"{sys.executable} {STAND_IN}",
                   "--env=Fake", "--num-envs", "3", "--results-dir", str(out_dir), "--run-id", "grid",
                   "--max-runs", str(max(total, 1))]
        print(f"dry run {attempt + 1}/{repeats}: {total} runs ({'x'.join(map(str, shape))}) ...", flush=True)
        with open(tmp / "dry.out", "wb") as out:
            started = time.perf_counter()
            proc = subprocess.Popen(command, cwd=tmp, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
            _, status, rusage = os.wait4(proc.pid, 0)  # no children: wait4's rusage is the dry run's own
            took = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise SystemExit(f"the dry run exited {proc.returncode}:\n{(tmp / 'dry.out').read_text()[-3000:]}")
        written = len(list((out_dir / "grid-sweep" / "configs").glob("*.yaml")))
        if written != total:
            raise SystemExit(f"the dry run wrote {written} configs, not {total}")
        shutil.rmtree(out_dir)
        walls.append(took)
        cpus.append(rusage.ru_utime + rusage.ru_stime)
        peaks.append(rusage.ru_maxrss / 1024)
        print(f"  {took:.2f} s wall, {rusage.ru_utime:.2f} s user + {rusage.ru_stime:.2f} s system CPU, "
              f"{written} configs, peak {peaks[-1]:.0f} MiB", flush=True)
    name = "dry_run_10k" if total == 10_000 else f"dry_run_{total}"
    return [
        figure(f"{name}_s", statistics.median(walls), "s", "< 10" if total == 10_000 else None,
               f"--dry-run of {total} runs (expand, write configs + config_info.txt, print the plan), "
               f"median of {repeats}"),
        figure(f"{name}_cpu_s", statistics.median(cpus), "s", None, "its CPU time (user + system), median"),
        figure(f"{name}_peak_rss_mb", max(peaks), "MiB", None, "ru_maxrss from wait4"),
    ]


def bench_labels(small: int, repeats: int) -> list[dict[str, Any]]:
    """option_labels on `small` and 10 x `small` options: linear work is 10 times the time, quadratic 100."""
    mod = load_script()
    took = {}
    for count in (small, 10 * small):
        options = [mod.Option("B", ("hyperparameters", f"k{i % (count // 2)}" if i % 2 else f"k{i}"), (1,), True)
                   for i in range(count)]  # half the keys shared with another option: dotted paths
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            mod.option_labels(options)
            times.append(time.perf_counter() - started)
        took[count] = statistics.median(times)
    print(f"option_labels: {small} options {took[small] * 1000:.2f} ms, {10 * small} options "
          f"{took[10 * small] * 1000:.2f} ms", flush=True)
    return [
        figure("option_labels_large_ms", 1000 * took[10 * small], "ms", None, f"option_labels of {10 * small} options, median of {repeats}"),
        figure("option_labels_scaling", took[10 * small] / took[small], "x", "<= 20",
               f"its time for {10 * small} options / for {small}: 10 when linear, 100 when quadratic"),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=12)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per stand-in run")
    parser.add_argument("--num-envs", type=int, default=3)
    parser.add_argument("--grid", default="10x10x10x10", help="dry-run grid shape (default 10x10x10x10)")
    parser.add_argument("--dry-run-repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="tiny: 4 runs of 0.3 s, 2 at once, one 200-run dry run")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder and say where")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.duration, args.num_envs, args.grid, args.dry_run_repeats = 4, 0.3, 2, "2x10x10", 1
    shape = [int(n) for n in args.grid.split("x")]
    tmp = Path(tempfile.mkdtemp(prefix="bench-scheduler-"))
    try:
        figures = bench_sweep(args.runs, args.duration, args.num_envs, tmp)
        hung = HungServer(free_port(1))
        try:
            figures += bench_sweep(args.runs, args.duration, args.num_envs, tmp, hung)
        finally:
            hung.close()
        figures += bench_dry_run(shape, args.dry_run_repeats, tmp)
        figures += bench_labels(200 if args.quick else 2000, 3 if args.quick else 5)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    emit("scheduler", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
