#!/usr/bin/env python3
"""Population based training benchmark: PBT against random search of as many runs, on real training.

    python bench/pbt.py [--quick] [--sweeps 3] [--population 8] [--seeds 3] [--keep]

The space (examples/MoveToTarget, single.yaml, the real mlagents-learn): what a
checkpoint can carry, so PBT may explore all of it (hidden_units stays 64),

    learning_rate  {opt_range: [1.0e-5, 1.0e-2], log: true}
    beta           {opt_range: [1.0e-4, 1.0e-2], log: true}
    epsilon        {opt_range: [0.1, 0.3]}

20,000 steps per run, a point every 1,000. For k = 1..--sweeps, two sweeps, each a
subprocess as a user runs it (--num-envs 2, --poll-interval 2, one TensorBoard of
ours for all), both with --search random --num-trials 8 --search-seed k --seed k,
so both start from the same 8 draws on the same environment seed:

  random-k  the 8 runs, each trained to the end;
  pbt-k     the same 8 as a population: opt_stop {rule: pbt, interval: 4000} (the
            defaults otherwise: the worst quarter takes over the best quarter's
            checkpoints, values perturbed by 0.8 or 1.2, drawn afresh 1 time in 4).

A sweep's best: the first row of its summary, by its score (the mean of its last 3
points of the reward, 18,000-20,000 steps). Steps: what the sweep trained, summed
over every session of every run (from the step it started from to the step it
saved). Wall time: the sweep process, start to exit.

Noise: random-1's best settings trained again on --seeds fresh seeds (env_settings.seed
1001..); the standard deviation of their scores is a run's seed-to-seed noise, sd.
One best against another is a difference of two scores, with a standard deviation of
sd * sqrt(2): PBT's best "beats random's beyond the noise" when it is higher by more
than twice that.

--quick runs the same path with the stand-in trainer (tests/stand_in_trainer.py: no
learning, every run scores alike) on 2 runs, to check the benchmark works.
"""

from __future__ import annotations

import argparse
import math
import shlex
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import STAND_IN, emit, figure  # noqa: E402
from helpers import TensorBoardServer  # noqa: E402  (tests/helpers.py)
from search import BEHAVIOR, TAG, TRAINER, Space, Sweep, base, confirm_config, final_rewards, put, run_sweep, wait_for_points  # noqa: E402

RANGES = {"hyperparameters.learning_rate": {"opt_range": [1.0e-5, 1.0e-2], "log": True},
          "hyperparameters.beta": {"opt_range": [1.0e-4, 1.0e-2], "log": True},
          "hyperparameters.epsilon": {"opt_range": [0.1, 0.3]}}
FULL = Space(ranges=RANGES, grid={}, max_steps=20_000, summary_freq=1_000, halving_step=4_000)  # halving_step: the interval
QUICK = Space(ranges=RANGES, grid={}, max_steps=1_500, summary_freq=250, halving_step=500,
              stand_in={"duration": 0.6, "points": 6, "steps": 1_500})


def sweep_config(space: Space, pbt: bool) -> str:
    config = base(space)
    behavior = config["behaviors"][BEHAVIOR]
    for dotted, spec in space.ranges.items():
        put(behavior, dotted, dict(spec))
    if pbt:
        behavior["opt_stop"] = {"tag": TAG, "rule": "pbt", "interval": space.halving_step}
    return yaml.safe_dump(config, sort_keys=False)


def trained_steps(sweep: Sweep) -> float:
    """What a sweep trained: every session of every run, from the step it started from to the step it saved."""
    total = 0.0
    for run in sweep.state["runs"]:
        for session in run["sessions"]:
            end = session["saved"] if session["saved"] is not None else session["reached"] or 0.0
            total += max(0.0, end - (session["from_step"] or 0.0))
    return total


def best_score(sweep: Sweep) -> float:
    return float(sweep.rows[0]["score"])


def scores(sweep: Sweep) -> list[float]:
    """Every run's score (the summary's score column)."""
    return [float(row["score"]) for row in sweep.rows if row["score"]]


def takeovers(sweep: Sweep) -> int:
    return sum(len(run.get("lineage", [])) for run in sweep.state["runs"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run with the stand-in trainer: 2 runs, one sweep each")
    parser.add_argument("--sweeps", type=int, default=3, help="sweeps of each, seeds 1..N (default 3)")
    parser.add_argument("--population", type=int, default=8, help="runs per sweep (default 8)")
    parser.add_argument("--seeds", type=int, default=3, help="fresh seeds the noise is measured on (default 3)")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder")
    args = parser.parse_args()
    space = QUICK if args.quick else FULL
    sweeps, population, seeds = (1, 2, 2) if args.quick else (args.sweeps, args.population, args.seeds)
    trainer = shlex.join([sys.executable, str(STAND_IN)]) if args.quick else str(TRAINER)
    if not args.quick and not TRAINER.exists():
        print(f"no {TRAINER}: make install", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="bench-pbt-"))
    results = tmp / "results"
    results.mkdir()
    figures: list[dict[str, Any]] = []
    try:
        with TensorBoardServer(str(results), reload_interval=1) as board:
            done: dict[str, list[Sweep]] = {"random": [], "pbt": []}
            for seed in range(1, sweeps + 1):
                for kind in done:
                    done[kind].append(run_sweep(f"{kind}-{seed}", sweep_config(space, kind == "pbt"),
                                                ["--search", "random", "--num-trials", str(population),
                                                 "--search-seed", str(seed), "--seed", str(seed)],
                                                board.url, tmp, results, trainer))
            fresh = [1001 + k for k in range(seeds)]
            noise_sweep = run_sweep("noise", confirm_config(space, {"random-1": done["random"][0].pick(space)}, fresh), [],
                                    board.url, tmp, results, trainer)
            ids = [run["run_id"] for run in noise_sweep.state["runs"]]
            wait_for_points(board.url, ids, space.max_steps)
            noise_scores = list(final_rewards(board.url, ids).values())
        figures = report(done, noise_scores)
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    emit("pbt", figures)
    return 0


def report(done: dict[str, list[Sweep]], noise_scores: list[float]) -> list[dict[str, Any]]:
    noise = statistics.stdev(noise_scores) if len(noise_scores) >= 2 else 0.0
    margin = 2 * noise * math.sqrt(2)
    print(f"\nnoise: a run's score over {len(noise_scores)} seeds has sd {noise:.3f}; PBT beats random beyond the noise when its "
          f"best is higher by more than {margin:.3f}\n")
    print(f"{'seed':<5} {'random best':>11} {'pbt best':>9} {'pbt - random':>13} {'beyond':>7} {'random mean':>12} "
          f"{'pbt mean':>9} {'steps ratio':>12} {'wall ratio':>11} {'takeovers':>10}")
    beyond, gaps, steps, walls, counts = [], [], [], [], []
    for random_sweep, pbt_sweep in zip(done["random"], done["pbt"]):
        gap = best_score(pbt_sweep) - best_score(random_sweep)
        beyond.append(gap > margin)
        gaps.append(gap)
        steps.append(trained_steps(pbt_sweep) / trained_steps(random_sweep))
        walls.append(pbt_sweep.wall / random_sweep.wall)
        counts.append(takeovers(pbt_sweep))
        print(f"{random_sweep.name.split('-')[1]:<5} {best_score(random_sweep):>11.3f} {best_score(pbt_sweep):>9.3f} "
              f"{gap:>+13.3f} {'yes' if gap > margin else 'no':>7} {statistics.fmean(scores(random_sweep)):>12.3f} "
              f"{statistics.fmean(scores(pbt_sweep)):>9.3f} {steps[-1]:>12.3f} {walls[-1]:>11.2f} {counts[-1]:>10}")
    count = len(gaps)
    return [figure("reward_noise_sd", noise, "reward", note=f"{len(noise_scores)} seeds of random-1's best"),
            figure("pbt_beats_random_beyond_noise", sum(beyond), f"of {count}", f">= {math.ceil(2 * count / 3)}"),
            figure("pbt_minus_random_best_mean", statistics.fmean(gaps), "reward"),
            figure("pbt_best_mean", statistics.fmean(best_score(sweep) for sweep in done["pbt"]), "reward"),
            figure("random_best_mean", statistics.fmean(best_score(sweep) for sweep in done["random"]), "reward"),
            figure("pbt_population_mean", statistics.fmean(statistics.fmean(scores(sweep)) for sweep in done["pbt"]),
                   "reward", note="the mean score of a sweep's 8 runs"),
            figure("random_population_mean", statistics.fmean(statistics.fmean(scores(sweep)) for sweep in done["random"]),
                   "reward"),
            figure("pbt_worst_mean", statistics.fmean(min(scores(sweep)) for sweep in done["pbt"]), "reward",
                   note="a sweep's worst run"),
            figure("random_worst_mean", statistics.fmean(min(scores(sweep)) for sweep in done["random"]), "reward"),
            figure("pbt_steps_ratio_max", max(steps), "x", "<= 1.05", "trained steps, PBT over random"),
            figure("pbt_wall_ratio_mean", statistics.fmean(walls), "x"),
            figure("pbt_takeovers_mean", statistics.fmean(counts), "takeovers")]


if __name__ == "__main__":
    sys.exit(main())
