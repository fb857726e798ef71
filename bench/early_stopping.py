#!/usr/bin/env python3
"""Early-stopping benchmark: what a sweep costs and what opt_stop saves, on real training.

    python bench/early_stopping.py [--quick] [--only stopping|throughput] [--repeats 3]
                                   [--halving-step 4000] [--halving-factor 3] [--median-step 2000]
                                   [--median-min-runs 2] [--poll-interval 2] [--no-reversed]

One grid on the bundled headless environment (examples/MoveToTarget, single.yaml)
with the real mlagents-learn (.venv/bin/mlagents-learn): learning_rate
[3e-3, 1e-3, 1e-4] x hidden_units [64, 32, 16] = 9 runs of 20,000 steps, one
TensorBoard point every 2,000 steps.  Every sweep is a subprocess, as a user runs it:

    python mlagents-learn.py <config> --env=.venv/bin/MoveToTarget
        --trainer .venv/bin/mlagents-learn --num-envs 2 --tensorboard-url <ours>
        --poll-interval 2 --results-dir <tmp> --run-id <variant> --base-port <free>

Stopping (the grid at --num-envs 2):
  (a) full        no opt_stop: every run trains to max_steps;
  (a') full-again (a) once more: how often the full grid finds its own winner again,
                  the most any rule can reach when settings are this close;
  (c) threshold   opt_stop {tag: Environment/Cumulative Reward, step: 8000, min: 0.0};
  then --repeats times (default 3), in the grid's order and reversed (both value
  lists reversed, so the worst settings train first):
  (h) halving     opt_stop {tag: ..., rule: halving, step: 4000, factor: 3};
  (b) median      opt_stop {tag: ..., rule: median, step: 2000, min_runs: 2}.
For each: steps trained (sum over runs of the step of the run's final checkpoint,
mlagents' run_logs/training_status.json: what it really trained, stopped runs
included; the sum of summary.csv's "last step" column, the last TensorBoard point,
is reported beside it and undercounts a stopped run by up to one summary period),
wall time (the sweep process's Popen -> exit, pauses and restarts included), both
as ratios to (a); the best run (the summary's first row, by final reward) and
whether it is (a)'s best combination, or within noise of it.

Noise: every combination that trained to the end in (a) AND in another sweep was
trained twice with the same settings (mlagents picks a new random seed each time);
`reward_noise` is the median |difference| of those pairs' final rewards.  A variant's
winner is "within noise" when (a)'s final reward of that combination is at most
`reward_noise` below (a)'s best.

Throughput (the grid, no opt_stop, at --num-envs 1 and 2; the --num-envs 2 sweep is
(a) when both parts run): steps trained / the sweep's wall time, and their ratio.

A TensorBoard of our own (tests/helpers.TensorBoardServer, --reload_interval 1, as
bench/poll.py) serves every sweep, so the sweep starts none; one TensorBoard serves
all the sweeps of one benchmark run (each has its own run ids).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CLK_TCK, ROOT, SCRIPT, emit, figure, free_port_range, machine_busy_s, stop_sweep  # noqa: E402
from helpers import TensorBoardServer  # noqa: E402  (tests/helpers.py)

EXAMPLE = ROOT / "examples" / "MoveToTarget"
ENV = ROOT / ".venv" / "bin" / "MoveToTarget"  # the demo environment's console script (scripts/install_mlagents.py)
BASE_CONFIG = EXAMPLE / "single.yaml"
TRAINER = ROOT / ".venv" / "bin" / "mlagents-learn"
BEHAVIOR = "MoveToTarget"
TAG = "Environment/Cumulative Reward"
SWEEP_TIMEOUT = 3600.0  # only keeps a hung sweep from hanging the benchmark


@dataclass
class Grid:
    learning_rates: list[float]
    hidden_units: list[int]
    max_steps: int
    summary_freq: int
    buffer_size: int | None = None  # None: single.yaml's (1024; batch_size 128)
    batch_size: int | None = None

    @property
    def runs(self) -> int:
        return len(self.learning_rates) * len(self.hidden_units)


FULL_GRID = Grid([3.0e-3, 1.0e-3, 1.0e-4], [64, 32, 16], 20_000, 2_000)
QUICK_GRID = Grid([3.0e-3, 1.0e-4], [64], 1_000, 250, buffer_size=256, batch_size=64)


def grid_config(grid: Grid, stop: dict[str, Any] | None = None, reverse: bool = False) -> str:
    """single.yaml with the grid's options (and opt_stop) put in."""
    config = yaml.safe_load(BASE_CONFIG.read_text(encoding="utf-8"))
    behavior = config["behaviors"][BEHAVIOR]
    rates, units = list(grid.learning_rates), list(grid.hidden_units)
    if reverse:
        rates.reverse()
        units.reverse()
    behavior["hyperparameters"]["learning_rate"] = {"opt_values": rates}
    behavior["network_settings"]["hidden_units"] = {"opt_values": units}
    behavior["max_steps"] = grid.max_steps
    behavior["summary_freq"] = grid.summary_freq
    if grid.buffer_size is not None:
        behavior["hyperparameters"]["buffer_size"] = grid.buffer_size
    if grid.batch_size is not None:
        behavior["hyperparameters"]["batch_size"] = grid.batch_size
    if stop is not None:
        behavior["opt_stop"] = stop
    return yaml.safe_dump(config, sort_keys=False)


@dataclass
class RunResult:
    run_id: str
    values: str  # the combination, as the sweep describes it: "learning_rate=0.003 hidden_units=64"
    status: str
    exit_code: int | None
    last_step: int | None  # summary.csv: the last TensorBoard point
    steps: int | None  # the final checkpoint's step (training_status.json)
    reward: float | None  # final reward, as the summary ranks runs
    stop_step: int | None  # the step the stop rule saw when it fired
    start: float | None  # the sweep's clock (sweep_state.json): launched
    end: float | None  # reaped

    @property
    def failed_while_stopping(self) -> bool:
        """Killed by its stop's SIGINT itself (exit -2): mlagents was past its handler, exporting (see run_sweep)."""
        return self.status == "failed" and self.stop_step is not None and self.exit_code == -signal.SIGINT

    @property
    def to_the_end(self) -> bool:
        """Trained to max_steps: finished, or asked to stop only once it was there (see run_sweep)."""
        return self.status == "finished" or self.failed_while_stopping


@dataclass
class SweepResult:
    name: str
    num_envs: int
    wall: float
    cpu: float  # CPU seconds of the sweep and every process it reaped (its trainers and theirs)
    others: float  # CPU seconds the machine spent on anything else meanwhile (other sessions)
    runs: list[RunResult] = field(default_factory=list)  # best first, as in summary.csv

    @property
    def others_cores(self) -> float:
        """How many cores other programs kept busy on average during the sweep."""
        return self.others / self.wall

    @property
    def steps(self) -> int:
        return sum(run.steps if run.steps is not None else (run.last_step or 0) for run in self.runs)

    @property
    def summary_steps(self) -> int:
        return sum(run.last_step or 0 for run in self.runs)

    @property
    def best(self) -> RunResult | None:
        return next((run for run in self.runs if run.reward is not None), None)

    @property
    def stopped(self) -> list[RunResult]:
        return [run for run in self.runs if run.status == "stopped early"]

    @property
    def failed_while_stopping(self) -> list[RunResult]:
        return [run for run in self.runs if run.failed_while_stopping]

    @property
    def span(self) -> float:
        """First run launched -> last run reaped (the sweep's own clock): the training part."""
        starts = [run.start for run in self.runs if run.start is not None]
        ends = [run.end for run in self.runs if run.end is not None]
        return max(ends) - min(starts) if starts and ends else float("nan")

    def by_values(self) -> dict[str, RunResult]:
        return {run.values: run for run in self.runs}


def tail(path: Path, chars: int = 2000) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-chars:]
    except OSError as exc:
        return f"(unreadable: {exc})"


def checkpoint_steps(run_dir: Path) -> int | None:
    """The step of the run's final checkpoint: what mlagents really trained, stopped or not."""
    try:
        status = json.loads((run_dir / "run_logs" / "training_status.json").read_text(encoding="utf-8"))
        return int(status[BEHAVIOR]["final_checkpoint"]["steps"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def group_cpu(pgid: int) -> float:
    """CPU seconds of the live processes of a process group (our TensorBoard and its data server)."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if int(fields[2]) == pgid:
            total += (int(fields[11]) + int(fields[12])) / CLK_TCK
    return total


def wait_reaped(proc: subprocess.Popen, timeout: float) -> tuple[int, float] | None:
    """Wait for proc's exit; (exit code, CPU seconds of it and all it reaped), None on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, rusage.ru_utime + rusage.ru_stime
        time.sleep(0.1)
    return None


def run_logged(name: str, command: list[str], cwd: Path, log: Path, timeout: float) -> tuple[int, float, float]:
    """A sweep's process, its output in `log`: (exit code, CPU seconds of it and all it reaped, wall seconds);
    SystemExit if it does not end within `timeout`. A sweep left running when we fail is stopped."""
    with open(log, "wb") as out:
        started = time.monotonic()
        proc = subprocess.Popen(command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    try:
        done = wait_reaped(proc, timeout)
        wall = time.monotonic() - started
        if done is None:
            raise SystemExit(f"the {name} sweep did not end within {timeout:g} s")
    finally:
        stop_sweep(proc, timeout=120)  # if we failed, not the sweep
    return done[0], done[1], wall


def run_sweep(name: str, config_text: str, num_envs: int, board_url: str, board_pgid: int,
              poll_interval: float, tmp: Path, results: Path) -> SweepResult:
    config = tmp / f"{name}.yaml"
    config.write_text(config_text, encoding="utf-8")
    log = tmp / f"{name}.out"
    command = [sys.executable, str(SCRIPT), str(config), f"--env={ENV}", "--trainer", str(TRAINER),
               "--num-envs", str(num_envs), "--tensorboard-url", board_url, "--poll-interval", f"{poll_interval:g}",
               "--results-dir", str(results), "--run-id", name, "--base-port", str(free_port_range(num_envs))]
    print(f"{name}: sweep at --num-envs {num_envs} ...", flush=True)
    busy, board_cpu = machine_busy_s(), group_cpu(board_pgid)
    code, cpu, wall = run_logged(name, command, tmp, log, SWEEP_TIMEOUT)
    # Everything the machine did meanwhile, less our sweep's tree and our TensorBoard: other sessions.
    others = machine_busy_s() - busy - cpu - (group_cpu(board_pgid) - board_cpu)
    text = log.read_text(encoding="utf-8", errors="replace")
    if code not in (0, 1):  # 1: a run failed; those failed while stopping are accepted below
        raise SystemExit(f"the {name} sweep exited {code}:\n{text[-3000:]}")
    sweep_dir = results / f"{name}-sweep"
    with open(sweep_dir / "summary.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    state = {run["run_id"]: run for run in json.loads((sweep_dir / "sweep_state.json").read_text())["runs"]}
    result = SweepResult(name, num_envs, wall, cpu, others)
    for row in rows:
        run_id = row["run"]
        reward = row.get(TAG) or ""
        match = re.search(r" at step ([0-9.e+]+)", row["note"])
        result.runs.append(RunResult(
            run_id=run_id, values=row["values"], status=row["status"],
            exit_code=int(row["exit"]) if row["exit"].lstrip("-").isdigit() else None,
            last_step=int(float(row["last step"])) if row["last step"] else None,
            steps=checkpoint_steps(results / run_id), reward=float(reward) if reward else None,
            stop_step=int(float(match.group(1))) if match else None,
            start=state[run_id]["sessions"][0]["began"], end=state[run_id]["sessions"][-1]["ended"]))
    # A run whose stop (SIGINT) comes once it has reached max_steps (its rule fired at
    # its last points, with the stop latency taking it to the end) gets it while it
    # exports its final model, outside mlagents-learn's KeyboardInterrupt handler: it
    # dies of the signal (exit -2) and the sweep reports "FAILED ... while stopping"
    # (and exits 1).  It did train to the end; counted apart, as `failed_while_stopping`.
    # Any other failure (another exit code, or no stop reason) fails the benchmark.
    failed = [run.run_id for run in result.runs if run.status not in ("finished", "stopped early")
              and not run.failed_while_stopping]
    if failed or (code != 0 and not result.failed_while_stopping):
        logs = "".join(f"\n--- the end of {run_id}'s log:\n" + tail(sweep_dir / "logs" / f"{run_id}.log") for run_id in failed)
        raise SystemExit(f"the {name} sweep exited {code}; runs that did not train: {failed}\n{text[-3000:]}{logs}")
    late = f", {len(result.failed_while_stopping)} failed while stopping" if result.failed_while_stopping else ""
    print(f"{name}: {wall:.0f} s, {result.steps} steps, {len(result.stopped)} of {len(result.runs)} runs stopped early{late}; "
          f"CPU {cpu:.0f} s; other programs used {result.others_cores:.2f} cores meanwhile", flush=True)
    return result


# -- comparisons -------------------------------------------------------------------

def repeat_differences(full: SweepResult, others: list[SweepResult]) -> list[tuple[str, float]]:
    """|final reward difference| of every combination trained to the end in (a) and in another sweep."""
    mine = {run.values: run for run in full.runs if run.to_the_end and run.reward is not None}
    pairs = []
    for other in others:
        for run in other.runs:
            if run.to_the_end and run.reward is not None and run.values in mine:
                pairs.append((f"{run.values} ({other.name})", abs(run.reward - mine[run.values].reward)))
    return pairs


def stop_overshoots(sweeps: list[SweepResult]) -> list[int]:
    """Per stopped run: its final step - the step its rule judged it at (`at step N` in the reason)."""
    return [run.steps - run.stop_step for sweep in sweeps for run in sweep.stopped
            if run.steps is not None and run.stop_step is not None]


def winner_verdict(full: SweepResult, variant: SweepResult, noise: float | None,
                   noise_max: float | None = None) -> tuple[float, float, str]:
    """(1 if the variant's winner is (a)'s or within noise of it else 0, the reward gap in (a), a note).

    Within noise: the gap is at most `noise`, the median repeat difference (half of all
    pairs trained with the same settings differ more).  The note also says whether it
    is within the largest repeat difference seen (`noise_max`), the looser reading.
    """
    best_full, best = full.best, variant.best
    if best_full is None or best is None:
        return 0.0, float("nan"), "no run has a reward"
    if best.values == best_full.values:
        return 1.0, 0.0, f"same combination ({best.values})"
    gap = best_full.reward - full.by_values()[best.values].reward
    within = noise is not None and gap <= noise
    note = (f"{best.values}, {gap:.3g} below (a)'s best {best_full.values} in (a): "
            f"{'within' if within else 'beyond'} noise {'-' if noise is None else f'{noise:.3g}'}")
    if not within and noise_max is not None:
        note += f" ({'within' if gap <= noise_max else 'beyond'} the largest repeat difference {noise_max:.3g})"
    return (1.0 if within else 0.0), gap, note


def print_tables(full: SweepResult, variants: list[SweepResult], noise: float | None, noise_max: float | None,
                 pairs: list[tuple[str, float]]) -> None:
    rows = [("sweep", "stopped", "steps", "ratio", "summary steps", "ratio", "wall s", "ratio", "others' load",
             "best run (final reward)", "vs (a)'s best")]
    for sweep in [full, *variants]:
        best = sweep.best
        ok, gap, _ = winner_verdict(full, sweep, noise, noise_max)
        if sweep is full:
            verdict = "-"
        elif gap == 0:
            verdict = "same combination"
        else:
            verdict = (f"{'within' if ok else 'NOT within'} noise: (a) has it {gap:.3g} below its best "
                       f"(noise {'-' if noise is None else f'{noise:.3g}'}, largest {'-' if noise_max is None else f'{noise_max:.3g}'})")
        rows.append((sweep.name, f"{len(sweep.stopped)}/{len(sweep.runs)}", str(sweep.steps),
                     f"{sweep.steps / full.steps:.2f}", str(sweep.summary_steps), f"{sweep.summary_steps / full.summary_steps:.2f}",
                     f"{sweep.wall:.0f}", f"{sweep.wall / full.wall:.2f}", f"{sweep.others_cores:.2f} cores",
                     f"{best.values} ({best.reward:.3g})" if best else "-",
                     verdict))
    print_table(rows)
    print()
    combos = [run.values for run in sorted(full.runs, key=lambda run: run.run_id.rsplit("-", 1)[1].zfill(6))]
    header = ("combination", *(f"{s.name}: reward" for s in [full, *variants]), *(f"{s.name}: steps" for s in [full, *variants]))
    rows = [header]
    for combo in combos:
        cells = []
        for sweep in [full, *variants]:
            run = sweep.by_values().get(combo)
            mark = "" if run is None or run.status == "finished" else \
                " (failed while stopping)" if run.failed_while_stopping else " (stopped)"
            cells.append("-" if run is None or run.reward is None else f"{run.reward:.3g}{mark}")
        for sweep in [full, *variants]:
            run = sweep.by_values().get(combo)
            cells.append("-" if run is None else str(run.steps if run.steps is not None else run.last_step))
        rows.append((combo, *cells))
    print_table(rows)
    if pairs:
        print(f"\nrepeat noise (|final reward difference| of the same combination trained to the end twice): "
              f"median {noise:.3g} of {len(pairs)}: " + ", ".join(f"{name} {diff:.3g}" for name, diff in pairs))


def print_table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for number, row in enumerate(rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
        if number == 0:
            print("  ".join("-" * width for width in widths))


def stopping_figures(full: SweepResult, again: SweepResult, threshold: SweepResult,
                     repeated: dict[tuple[str, str], list[SweepResult]],
                     goals: dict[str, float], rules: dict[str, str]) -> list[dict[str, Any]]:
    """(a)'s own figures, (a')'s and the threshold rule's, and per rule and order the repeats' steps, wall time and winners."""
    everything = [again, threshold, *(sweep for sweeps in repeated.values() for sweep in sweeps)]
    pairs = repeat_differences(full, everything)
    noise = statistics.median([diff for _, diff in pairs]) if pairs else None
    noise_max = max(diff for _, diff in pairs) if pairs else None
    print()
    print_tables(full, everything, noise, noise_max, pairs)
    ranked = [run for run in full.runs if run.reward is not None]
    figures = [
        figure("full_steps", full.steps, "steps", None,
               f"(a) {len(full.runs)} runs to the end: sum of the final checkpoints' steps"),
        figure("full_wall_s", full.wall, "s", None, "(a) the sweep process's start -> exit"),
        figure("full_others_cores", full.others_cores, "cores", None,
               "CPU other programs used during (a) / its wall time (/proc/stat, less our sweep and TensorBoard)"),
        figure("full_best_reward", full.best.reward if full.best else None, "reward", None,
               f"(a)'s best run: {full.best.values if full.best else '-'}"),
        figure("full_top2_gap", ranked[0].reward - ranked[1].reward if len(ranked) > 1 else None, "reward", None,
               "(a)'s best - second best final reward"),
        figure("reward_noise", noise, "reward", None,
               f"median |final reward difference| of {len(pairs)} combinations trained to the end twice "
               "((a) and another sweep): half of all same-settings pairs differ more"),
        figure("reward_noise_max", noise_max, "reward", None, "the largest of those differences"),
    ]
    late = [f"{sweep.name}: {run.values}" for sweep in [full, *everything] for run in sweep.failed_while_stopping]
    figures.append(figure("failed_while_stopping", len(late), "runs", None,
                          "runs killed by their stop's SIGINT (exit -2): it came once they had reached max_steps, "
                          "during mlagents' final export, which does not catch it; reported FAILED" + (f" ({'; '.join(late)})" if late else "")))
    ok, gap, note = winner_verdict(full, again, noise, noise_max)
    figures.append(figure("full_again_same_winner", ok, "yes=1", None,
                          "(a') the full grid trained again finds (a)'s winner (or one within noise): " + note))
    ok, gap, note = winner_verdict(full, threshold, noise, noise_max)
    overshoot = stop_overshoots([threshold])
    figures += [
        figure("threshold_steps_ratio", threshold.steps / full.steps, "x", None,
               f"{rules['threshold']}: {threshold.steps} / {full.steps} steps (final checkpoints)"),
        figure("threshold_wall_ratio", threshold.wall / full.wall, "x", None, f"{threshold.wall:.0f} s / {full.wall:.0f} s"),
        figure("threshold_runs_stopped", len(threshold.stopped), "runs", None, f"of {len(threshold.runs)}"),
        figure("threshold_stop_overshoot_steps", statistics.median(overshoot) if overshoot else None, "steps", None,
               "median, a stopped run's final step - the step its rule fired at (stop latency in steps)"),
        figure("threshold_same_winner", ok, "yes=1", None, note),
    ]
    for (rule, order), sweeps in repeated.items():
        key = f"{rule}_{order}"
        if not sweeps:  # --quick: no reversed order
            figures += [figure(f"{key}_{name}", None, unit) for name, unit in (
                ("steps_ratio", "x"), ("steps_ratio_max", "x"), ("wall_ratio", "x"), ("winner_found", "share"),
                ("stop_overshoot_steps", "steps"), ("sweeps", "sweeps"))]
            continue
        ratios = [sweep.steps / full.steps for sweep in sweeps]
        walls = [sweep.wall / full.wall for sweep in sweeps]
        verdicts = [winner_verdict(full, sweep, noise, noise_max) for sweep in sweeps]
        found = sum(verdict[0] for verdict in verdicts)
        goal = goals.get(rule)
        overshoot = stop_overshoots(sweeps)
        figures += [
            figure(f"{key}_steps_ratio", statistics.median(ratios), "x", None,
                   f"{rules[rule]}, {order} grid: steps / (a)'s, median of {len(sweeps)}: "
                   + ", ".join(f"{ratio:.2f}" for ratio in ratios)),
            figure(f"{key}_steps_ratio_max", max(ratios), "x", f"<= {goal:g}" if goal else None,
                   f"the most of the {len(sweeps)}"),
            figure(f"{key}_wall_ratio", statistics.median(walls), "x", None,
                   f"wall time / (a)'s (pauses and restarts included), median of {len(sweeps)}: "
                   + ", ".join(f"{wall:.2f}" for wall in walls)),
            figure(f"{key}_winner_found", found / len(sweeps), "share", ">= 1" if goal else None,
                   f"{found:g} of {len(sweeps)} found (a)'s winner (or one within noise of it): "
                   + "; ".join(verdict[2] for verdict in verdicts)),
            figure(f"{key}_stop_overshoot_steps", statistics.median(overshoot) if overshoot else None, "steps", None,
                   f"median of {len(overshoot)}: a stopped run's final step - the step it was judged at "
                   "(for halving: the steps trained past the rung while being paused)"),
            figure(f"{key}_sweeps", len(sweeps), "sweeps", None, "how many sweeps the figures above are of"),
        ]
    return figures


def throughput_figures(one: SweepResult, two: SweepResult) -> list[dict[str, Any]]:
    rate_one, rate_two = one.steps / one.wall, two.steps / two.wall
    span_one, span_two = one.steps / one.span, two.steps / two.span
    print(f"\nthroughput: --num-envs 1: {one.steps} steps in {one.wall:.0f} s = {rate_one:.0f} steps/s "
          f"(runs' span {one.span:.0f} s, CPU {one.cpu:.0f} s, other programs {one.others_cores:.2f} cores); "
          f"--num-envs 2: {two.steps} steps in {two.wall:.0f} s = {rate_two:.0f} steps/s "
          f"(span {two.span:.0f} s, CPU {two.cpu:.0f} s, other programs {two.others_cores:.2f} cores); "
          f"ratio {rate_two / rate_one:.2f}", flush=True)
    return [
        figure("throughput_1env_steps_per_s", rate_one, "steps/s", None,
               f"grid at --num-envs 1: {one.steps} steps / {one.wall:.0f} s (sweep start -> exit)"),
        figure("throughput_2env_steps_per_s", rate_two, "steps/s", None,
               f"grid at --num-envs 2: {two.steps} steps / {two.wall:.0f} s"),
        figure("throughput_ratio", rate_two / rate_one, "x", None, "--num-envs 2 / --num-envs 1, whole sweeps"),
        figure("throughput_ratio_training", span_two / span_one, "x", None,
               "the same over the runs' span (first launch -> last reaped), without the sweep's start-up "
               "and its wait for TensorBoard at the end"),
        figure("throughput_1env_others_cores", one.others_cores, "cores", None,
               "CPU other programs used during the --num-envs 1 sweep / its wall: a ratio is fair only if the two are close"),
        figure("throughput_2env_others_cores", two.others_cores, "cores", None, "the same during the --num-envs 2 sweep"),
        figure("cpu_per_1k_steps_1env", 1000 * one.cpu / one.steps, "s", None,
               "CPU seconds of the sweep and its trainers (and their environments) per 1000 steps, --num-envs 1"),
        figure("cpu_per_1k_steps_2env", 1000 * two.cpu / two.steps, "s", None, "the same at --num-envs 2"),
        figure("cores_busy_1env", one.cpu / one.wall, "cores", None,
               "that CPU / the sweep's wall at --num-envs 1: how much of the machine one run at a time keeps busy"),
        figure("cores_busy_2env", two.cpu / two.wall, "cores", None, "the same at --num-envs 2"),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="tiny: 2 combinations of 1000 steps, rules from step 250, median min_runs 1, one repeat, "
                             "no reversed grid (a smoke run; still real training)")
    parser.add_argument("--only", choices=("stopping", "throughput"), help="one part only")
    parser.add_argument("--repeats", type=int, help="sweeps per rule and order (default 3; --quick 1)")
    parser.add_argument("--median-step", type=int, help="opt_stop step of the median rule (default 2000; --quick 250)")
    parser.add_argument("--median-min-runs", type=int, help="opt_stop min_runs of the median rule (default 2; --quick 1)")
    parser.add_argument("--halving-step", type=int, help="opt_stop step (first rung) of the halving rule (default 4000; --quick 250)")
    parser.add_argument("--halving-factor", type=float, help="opt_stop factor of the halving rule (default 3; --quick 2)")
    parser.add_argument("--threshold-step", type=int, help="opt_stop step of the threshold rule (default 8000; --quick 250)")
    parser.add_argument("--threshold-min", type=float, default=0.0, help="opt_stop min of the threshold rule (default 0.0)")
    parser.add_argument("--poll-interval", type=float, default=2.0, help="the sweep's --poll-interval (default 2)")
    parser.add_argument("--tensorboard-reload", type=float, default=1.0, help="our TensorBoard's --reload_interval (default 1)")
    parser.add_argument("--no-reversed", action="store_true", help="skip the sweeps of the grid in reverse order")
    parser.add_argument("--goal", type=float, default=0.40, help="goal: the halving rule's steps / the full grid's (0.40)")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder and say where")
    args = parser.parse_args()
    quick = args.quick
    grid = QUICK_GRID if quick else FULL_GRID
    pick = lambda given, full, tiny: given if given is not None else (tiny if quick else full)  # noqa: E731
    repeats = pick(args.repeats, 3, 1)
    median_rule = {"tag": TAG, "rule": "median", "step": pick(args.median_step, 2000, 250),
                   "min_runs": pick(args.median_min_runs, 2, 1)}
    # The first rung where the runs have begun to part: at step 2000 every run's reward is
    # still that of a random policy (-0.37 to -0.55 in 27 runs of this grid, whatever the settings), so
    # a rung there keeps runs at random; by 4000 the learning rates have begun to show.
    halving_rule = {"tag": TAG, "rule": "halving", "step": pick(args.halving_step, 4000, 250),
                    "factor": pick(args.halving_factor, 3, 2)}
    threshold_rule = {"tag": TAG, "step": pick(args.threshold_step, 8000, 250), "min": args.threshold_min}
    if not TRAINER.is_file():
        raise SystemExit(f"no real trainer at {TRAINER}: install it with `make install` (scripts/install_mlagents.py)")
    rules = {"median": f"median rule, step {median_rule['step']}, min_runs {median_rule['min_runs']}",
             "halving": f"halving, step {halving_rule['step']}, factor {halving_rule['factor']:g}",
             "threshold": f"min {args.threshold_min:g} from step {threshold_rule['step']}"}
    orders = ["forward"] + ([] if quick or args.no_reversed else ["reversed"])
    stopping = args.only in (None, "stopping")
    throughput = args.only in (None, "throughput")
    print(f"grid: learning_rate {grid.learning_rates} x hidden_units {grid.hidden_units} = {grid.runs} runs of "
          f"{grid.max_steps} steps (a point every {grid.summary_freq}); real trainer {TRAINER}; "
          f"--poll-interval {args.poll_interval:g}, TensorBoard --reload_interval {args.tensorboard_reload:g}; "
          f"{repeats} sweeps per rule and order ({', '.join(orders)})", flush=True)

    tmp = Path(tempfile.mkdtemp(prefix="bench-early-stopping-"))
    results = tmp / "results"
    results.mkdir()
    figures: list[dict[str, Any]] = []
    try:
        with TensorBoardServer(str(results), reload_interval=args.tensorboard_reload) as board:
            def sweep(name: str, stop: dict[str, Any] | None = None, num_envs: int = 2, reverse: bool = False) -> SweepResult:
                return run_sweep(name, grid_config(grid, stop, reverse), num_envs, board.url, board.proc.pid,
                                 args.poll_interval, tmp, results)

            full = sweep("full")
            # Right after (a), so that the two sweeps of the throughput ratio see the same machine.
            serial = sweep("serial", num_envs=1) if throughput else None
            if stopping:
                again = sweep("full-again")
                threshold = sweep("threshold", threshold_rule)
                repeated: dict[tuple[str, str], list[SweepResult]] = {
                    (rule, order): [] for rule in ("median", "halving") for order in ("forward", "reversed")}
                # Interleaved (repeat by repeat, rule by rule) so a slow spell of the machine falls on all alike.
                for repeat in range(repeats):
                    for order in orders:
                        for rule, spec in (("halving", halving_rule), ("median", median_rule)):
                            repeated[(rule, order)].append(
                                sweep(f"{rule}-{order}-{repeat}", spec, reverse=order == "reversed"))
                figures += stopping_figures(full, again, threshold, repeated, {"halving": args.goal}, rules)
            if serial is not None:
                figures += throughput_figures(serial, full)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    emit("early_stopping", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
