#!/usr/bin/env python3
"""Confirmation benchmark: which pick of a grid trained once is the best combination, on real training.

    python bench/confirm.py [--quick] [--sweeps 3] [--keep]

The grid is early_stopping's (examples/MoveToTarget, single.yaml, the real
mlagents-learn): learning_rate 3e-3, 1e-3, 1e-4 x hidden_units 64, 32, 16, 9
combinations, 20,000 steps a run, a point every 2,000; every sweep a subprocess as
a user runs it (--num-envs 2, --poll-interval 2, one TensorBoard of ours for all):

  reference  the grid with --num-repetitions 3 --seed 1000: each combination on 3
             seeds; a combination's reference value is the mean of its 3 scores
             (a run's score: the mean of its last 3 points, as the sweep ranks);
  sweep-k    the grid once with --seed k and --confirm 3 (3 fresh seeds each),
             for k = 1..--sweeps.

Each sweep is judged three ways, by the combination it names best:
  (a) last point   the run with the highest last value of the reward;
  (b) score        the run with the highest score (the mean of its last 3 points);
  (c) confirm      the winner of its confirmation (summary_confirmation.csv).
A pick is "within noise" of the reference's best when its reference value is at
most 2 standard errors of a difference of two 3-seed means (2 * sd * sqrt(2/3),
sd: the reference's pooled standard deviation of a run's score within a
combination) below the best's. Cost: the confirmation runs' steps (the step of
each final checkpoint) and their share of the sweep's wall time (first start to
last end of the confirmation runs, from the state file).

--quick runs the same path with the stand-in trainer (tests/stand_in_trainer.py:
every run scores alike) on 2 combinations, to check the benchmark works.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import shlex
import shutil
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import STAND_IN, emit, figure  # noqa: E402
from early_stopping import FULL_GRID, QUICK_GRID, TRAINER, checkpoint_steps, grid_config  # noqa: E402
from helpers import TensorBoardServer  # noqa: E402  (tests/helpers.py)
from search import sweep_process  # noqa: E402

TAG = "Environment/Cumulative Reward"
REFERENCE_SEEDS = 3


@dataclass
class Sweep:
    name: str
    wall: float
    rows: list[dict[str, str]]  # summary.csv, best first
    confirmed: list[dict[str, str]]  # summary_confirmation.csv, best first ([] without --confirm)
    verdict: str  # the summary's last line
    state: dict[str, Any]
    steps: dict[str, int]  # run id -> the step of its final checkpoint

    def searched(self) -> list[dict[str, str]]:
        return [row for row in self.rows if not row["note"].startswith("confirmation")]

    def pick_by(self, column: str) -> str:
        scored = [row for row in self.searched() if row[column]]
        return max(scored, key=lambda row: float(row[column]))["values"]

    def confirmation_runs(self) -> list[dict[str, Any]]:
        return [run for run in self.state["runs"] if run.get("confirms")]


def run_sweep(name: str, config_text: str, extra: list[str], board_url: str, tmp: Path, results: Path, trainer: str) -> Sweep:
    sweep_dir, wall = sweep_process(name, config_text, extra, board_url, tmp, results, trainer)

    def table(file: str) -> list[dict[str, str]]:
        if not (sweep_dir / file).exists():
            return []
        with open(sweep_dir / file, encoding="utf-8", newline="") as handle:
            return list(csv.DictReader(handle))

    state = json.loads((sweep_dir / "sweep_state.json").read_text())
    steps = {run["run_id"]: checkpoint_steps(results / run["run_id"]) or 0 for run in state["runs"]}
    verdict = (sweep_dir / "summary.md").read_text().strip().splitlines()[-1]
    print(f"{name}: {wall:.0f} s, {sum(steps.values())} steps, {len(state['runs'])} runs\n  {verdict}", flush=True)
    return Sweep(name, wall, table("summary.csv"), table("summary_confirmation.csv"), verdict, state, steps)


def confirmation_span(sweep: Sweep) -> float:
    """Wall seconds from the first confirmation run's start to the last one's end."""
    sessions = [session for run in sweep.confirmation_runs() for session in run["sessions"]]
    return max(session["ended"] for session in sessions) - min(session["began"] for session in sessions)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run with the stand-in trainer: 2 combinations, 1 sweep")
    parser.add_argument("--sweeps", type=int, default=3, help="sweeps with --confirm 3, seeds 1..N (default 3)")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder")
    args = parser.parse_args()
    grid, sweeps = (QUICK_GRID, 1) if args.quick else (FULL_GRID, args.sweeps)
    confirm, repetitions = (1, 2) if args.quick else (3, REFERENCE_SEEDS)
    trainer = shlex.join([sys.executable, str(STAND_IN)]) if args.quick else str(TRAINER)
    if not args.quick and not TRAINER.exists():
        print(f"no {TRAINER}: make install", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="bench-confirm-"))
    results = tmp / "results"
    results.mkdir()
    try:
        with TensorBoardServer(str(results), reload_interval=1) as board:
            config = grid_config(grid)
            reference = run_sweep("reference", config, ["--num-repetitions", str(repetitions), "--seed", "1000"],
                                  board.url, tmp, results, trainer)
            seeds = ["--confirm-seeds", "2"] if args.quick else []
            done = [run_sweep(f"sweep-{k}", config, ["--seed", str(k), "--confirm", str(confirm), *seeds], board.url, tmp,
                              results, trainer) for k in range(1, sweeps + 1)]
        figures = report(reference, done, repetitions)
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    emit("confirm", figures)
    return 0


def report(reference: Sweep, sweeps: list[Sweep], repetitions: int) -> list[dict[str, Any]]:
    by_values: dict[str, list[float]] = {}
    for row in reference.rows:
        if row["score"]:
            by_values.setdefault(row["values"], []).append(float(row["score"]))
    means = {values: statistics.fmean(scores) for values, scores in by_values.items()}
    sds = [statistics.stdev(scores) for scores in by_values.values() if len(scores) >= 2]
    noise = math.sqrt(statistics.fmean(sd * sd for sd in sds)) if sds else 0.0
    margin = 2 * noise * math.sqrt(2 / repetitions)
    ranked = sorted(means, key=lambda values: -means[values])
    best = ranked[0]
    print(f"\nreference ({repetitions} seeds a combination): best {best} {means[best]:.3f}"
          + (f", runner-up {ranked[1]} {means[ranked[1]]:.3f}" if len(ranked) > 1 else "")
          + f"; noise (pooled sd of a run's score): {noise:.3f}; within noise: at most {margin:.3f} below the best\n")
    print(f"{'sweep':<8} {'by':<10} {'reference':>9} {'vs best':>8}  within  pick")
    within: dict[str, int] = {"last": 0, "score": 0, "confirm": 0}
    exact: dict[str, int] = {"last": 0, "score": 0, "confirm": 0}
    told_apart = 0
    for sweep in sweeps:
        picks = {"last": sweep.pick_by(TAG), "score": sweep.pick_by("score"), "confirm": sweep.confirmed[0]["values"]}
        for way, values in picks.items():
            value = means[values]
            ok = value >= means[best] - margin
            within[way] += ok
            exact[way] += values == best
            print(f"{sweep.name:<8} {way:<10} {value:>9.3f} {value - means[best]:>+8.3f}  {'yes' if ok else 'no':<6}  {values}")
        told_apart += "beyond the noise" in sweep.verdict
    confirm_steps = [sum(sweep.steps[run["run_id"]] for run in sweep.confirmation_runs()) for sweep in sweeps]
    search_steps = [sum(steps for run_id, steps in sweep.steps.items()
                        if run_id not in {run["run_id"] for run in sweep.confirmation_runs()}) for sweep in sweeps]
    time_share = [confirmation_span(sweep) / sweep.wall for sweep in sweeps]
    count = len(sweeps)
    print(f"\nconfirmation cost: {statistics.fmean(confirm_steps):.0f} steps a sweep "
          f"({statistics.fmean(c / s for c, s in zip(confirm_steps, search_steps)):.2f} x the grid's), "
          f"{statistics.fmean(time_share):.2f} of the sweep's wall time; the winner's lead beyond the noise in "
          f"{told_apart} of {count} sweeps")
    figures = [figure("reference_best_reward", means[best], "reward", note=f"mean over {repetitions} seeds"),
               figure("reference_top2_gap", means[best] - means[ranked[1]] if len(ranked) > 1 else 0.0, "reward"),
               figure("reward_noise_sd", noise, "reward", note="pooled sd of a run's score in the reference")]
    for way in within:
        figures += [figure(f"{way}_within_noise", within[way], f"of {count}", f">= {count}" if way == "confirm" else None),
                    figure(f"{way}_best_exactly", exact[way], f"of {count}")]
    figures += [figure("confirm_steps_ratio", statistics.fmean(c / s for c, s in zip(confirm_steps, search_steps)), "x",
                       note="confirmation steps / the grid's"),
                figure("confirm_wall_share", statistics.fmean(time_share), "x", note="of the sweep's wall time"),
                figure("confirm_told_apart", told_apart, f"of {count}")]
    return figures


if __name__ == "__main__":
    sys.exit(main())
