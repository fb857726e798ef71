#!/usr/bin/env python3
"""Search benchmark: sampled searches with asynchronous halving against the full grid, on real training.

    python bench/search.py [--quick] [--sweeps 3] [--trials 24] [--seeds 3] [--keep]

The space (examples/MoveToTarget, single.yaml, the real mlagents-learn): four
hyperparameters, ranges where a range makes sense,

    learning_rate  {opt_range: [1.0e-4, 1.0e-2], log: true}   grid: 3e-4, 1e-3, 3e-3
    hidden_units   {opt_range: [16, 128], step: 16}            grid: 32, 64, 128
    beta           {opt_range: [1.0e-4, 1.0e-2], log: true}   grid: 1e-4, 1e-3, 1e-2
    epsilon        {opt_range: [0.1, 0.3]}                     grid: 0.1, 0.2, 0.3

20,000 steps per run, a point every 2,000. Every sweep is a subprocess, as a user
runs it (--num-envs 2, --poll-interval 2, one TensorBoard of ours for all).
--quick runs the same path with the stand-in trainer (tests/stand_in_trainer.py:
no learning, every run scores alike) on 2 grid runs, to check the benchmark works:

  grid      the full grid (3^4 = 81 runs) once, no opt_stop: the reference;
  random-k  --search random --num-trials 24 --search-seed k, rule: halving (step 4000,
            factor 3), for k = 1..3;
  tpe-k     --search tpe, the same otherwise.

Steps: the sum over a sweep's runs of the step of each run's final checkpoint
(training_status.json: what it trained, paused and resumed runs included), as a
share of the grid's. Wall time: the sweep process, start to exit.

Each sweep's pick (the first row of its summary: how far halving took a run, then
its value there) and the grid's winner are trained --seeds more times on fresh
seeds (env_settings.seed 1001.., which no sweep used: they drew theirs), all in one
confirmation sweep; a pick's score is the mean over its seeds of each run's final
reward (the mean of its last 3 points, 16,000-20,000 steps). Noise: the pooled
standard deviation of those seeds' scores over all the picks; a pick is "within
noise" of the grid's winner when its mean is at most 2 standard errors of a
difference of two means (2 * sd * sqrt(2 / seeds)) below the winner's.
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
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, SCRIPT, STAND_IN, emit, figure, free_port_range  # noqa: E402
from early_stopping import checkpoint_steps, run_logged, tail  # noqa: E402
from helpers import TensorBoardServer, scalars_multirun  # noqa: E402  (tests/helpers.py)

BASE_CONFIG = ROOT / "examples" / "MoveToTarget" / "single.yaml"
ENV = ROOT / ".venv" / "bin" / "MoveToTarget"
TRAINER = ROOT / ".venv" / "bin" / "mlagents-learn"
BEHAVIOR = "MoveToTarget"
TAG = "Environment/Cumulative Reward"
SWEEP_TIMEOUT = 7200.0  # only keeps a hung sweep from hanging the benchmark
FINAL_POINTS = 3  # a run's final reward: the mean of its last points


@dataclass(frozen=True)
class Space:
    """The four options: each a range for a search and a few values for the grid."""

    ranges: dict[str, dict[str, Any]]  # dotted place in the behavior -> its opt_range mapping
    grid: dict[str, list[Any]]
    max_steps: int
    summary_freq: int
    halving_step: int
    extra: dict[str, Any] = field(default_factory=dict)  # other hyperparameters, dotted
    stand_in: dict[str, Any] | None = None  # --quick: the stand-in trainer's section, and it trains instead


FULL = Space(
    ranges={"hyperparameters.learning_rate": {"opt_range": [1.0e-4, 1.0e-2], "log": True},
            "network_settings.hidden_units": {"opt_range": [16, 128], "step": 16},
            "hyperparameters.beta": {"opt_range": [1.0e-4, 1.0e-2], "log": True},
            "hyperparameters.epsilon": {"opt_range": [0.1, 0.3]}},
    grid={"hyperparameters.learning_rate": [3.0e-4, 1.0e-3, 3.0e-3], "network_settings.hidden_units": [32, 64, 128],
          "hyperparameters.beta": [1.0e-4, 1.0e-3, 1.0e-2], "hyperparameters.epsilon": [0.1, 0.2, 0.3]},
    max_steps=20_000, summary_freq=2_000, halving_step=4_000)
QUICK = Space(ranges=FULL.ranges,
              grid={"hyperparameters.learning_rate": [1.0e-3, 3.0e-3], "network_settings.hidden_units": [32],
                    "hyperparameters.beta": [1.0e-3], "hyperparameters.epsilon": [0.2]},
              max_steps=1_500, summary_freq=250, halving_step=250,
              stand_in={"duration": 0.6, "points": 6, "steps": 1_500})


def put(behavior: dict[str, Any], dotted: str, value: Any) -> None:
    *path, key = dotted.split(".")
    node = behavior
    for part in path:
        node = node.setdefault(part, {})
    node[key] = value


def base(space: Space) -> dict[str, Any]:
    config = yaml.safe_load(BASE_CONFIG.read_text(encoding="utf-8"))
    behavior = config["behaviors"][BEHAVIOR]
    behavior["max_steps"], behavior["summary_freq"] = space.max_steps, space.summary_freq
    behavior["checkpoint_interval"] = space.max_steps  # the final model only: pauses save their own checkpoints
    for dotted, value in space.extra.items():
        put(behavior, dotted, value)
    if space.stand_in is not None:
        config["stand_in"] = dict(space.stand_in)
    return config


def grid_config(space: Space) -> str:
    config = base(space)
    for dotted, values in space.grid.items():
        put(config["behaviors"][BEHAVIOR], dotted, {"opt_values": values})
    return yaml.safe_dump(config, sort_keys=False)


def search_config(space: Space) -> str:
    config = base(space)
    behavior = config["behaviors"][BEHAVIOR]
    for dotted, spec in space.ranges.items():
        put(behavior, dotted, dict(spec))
    behavior["opt_stop"] = {"tag": TAG, "rule": "halving", "step": space.halving_step, "factor": 3}
    return yaml.safe_dump(config, sort_keys=False)


def confirm_config(space: Space, picks: dict[str, dict[str, Any]], seeds: list[int]) -> str:
    """One sweep: every pick (a labelled value of the whole behavior) on every fresh seed."""
    config = base(space)
    template = config["behaviors"][BEHAVIOR]
    behaviors = {}
    for name, values in picks.items():
        behavior = yaml.safe_load(yaml.safe_dump(template))
        for dotted, value in values.items():
            put(behavior, dotted, value)
        behaviors[name] = behavior
    config["behaviors"][BEHAVIOR] = {"opt_values": behaviors}
    config["env_settings"] = {"seed": {"opt_values": seeds}}
    return yaml.safe_dump(config, sort_keys=False)


@dataclass
class Sweep:
    name: str
    wall: float
    steps: int
    rows: list[dict[str, str]]  # summary.csv, best first
    state: dict[str, Any]

    def pick(self, space: Space) -> dict[str, Any]:
        """The values of the sweep's best run (its summary's first row), from its record."""
        run = next(run for run in self.state["runs"] if run["run_id"] == self.rows[0]["run"])
        by_label = {item[1]: yaml.safe_load(item[2]) for item in run["values"]}
        return {dotted: by_label[dotted.rsplit(".", 1)[1]] for dotted in space.ranges}


def sweep_process(name: str, config_text: str, extra: list[str], board_url: str, tmp: Path, results: Path,
                  trainer: str) -> tuple[Path, float]:
    """Run one sweep as a user runs it (2 at once, our TensorBoard, polled every 2 s): its folder and wall time;
    SystemExit with the end of its output if it failed."""
    config = tmp / f"{name}.yaml"
    config.write_text(config_text, encoding="utf-8")
    log = tmp / f"{name}.out"
    command = [sys.executable, str(SCRIPT), str(config), f"--env={ENV}", "--trainer", trainer, "--num-envs", "2",
               "--tensorboard-url", board_url, "--poll-interval", "2", "--results-dir", str(results), "--run-id", name,
               "--base-port", str(free_port_range(2)), *extra]
    print(f"{name}: {' '.join(extra) or 'the grid'} ...", flush=True)
    code, _, wall = run_logged(name, command, tmp, log, SWEEP_TIMEOUT)
    sweep_dir = results / f"{name}-sweep"
    if code != 0 or not (sweep_dir / "summary.csv").exists():
        raise SystemExit(f"the {name} sweep exited {code}:\n{tail(log, 3000)}")
    return sweep_dir, wall


def run_sweep(name: str, config_text: str, extra: list[str], board_url: str, tmp: Path, results: Path,
              trainer: str = str(TRAINER)) -> Sweep:
    sweep_dir, wall = sweep_process(name, config_text, extra, board_url, tmp, results, trainer)
    with open(sweep_dir / "summary.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    state = json.loads((sweep_dir / "sweep_state.json").read_text())
    steps = sum(checkpoint_steps(results / run["run_id"]) or 0 for run in state["runs"])
    print(f"{name}: {wall:.0f} s, {steps} steps, {len(rows)} runs; best {rows[0]['run']} ({rows[0]['values']})", flush=True)
    return Sweep(name, wall, steps, rows, state)


def earlier_grid(folder: Path, results: Path) -> Sweep:
    """The grid sweep of an earlier run of this benchmark (--keep), as if trained now: its results are copied
    in, its wall time and steps are what that run measured."""
    measured = json.loads((folder / "grid.json").read_text())
    for path in (folder / "results").glob("grid-*"):
        shutil.copytree(path, results / path.name)
    sweep_dir = results / "grid-sweep"
    with open(sweep_dir / "summary.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    print(f"grid: from {folder}: {measured['wall']:.0f} s, {measured['steps']} steps, {len(rows)} runs; "
          f"best {rows[0]['run']} ({rows[0]['values']})", flush=True)
    return Sweep("grid", measured["wall"], measured["steps"], rows, json.loads((sweep_dir / "sweep_state.json").read_text()))


def final_rewards(board_url: str, run_ids: list[str]) -> dict[str, float]:
    """Each run's final reward: the mean of its last FINAL_POINTS points, as TensorBoard serves them."""
    served = scalars_multirun(board_url, TAG, [f"{run_id}/{BEHAVIOR}" for run_id in run_ids])
    return {run_id: statistics.fmean(value for _, value in served[f"{run_id}/{BEHAVIOR}"][-FINAL_POINTS:])
            for run_id in run_ids if served.get(f"{run_id}/{BEHAVIOR}")}


def wait_for_points(board_url: str, run_ids: list[str], last_step: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        served = scalars_multirun(board_url, TAG, [f"{run_id}/{BEHAVIOR}" for run_id in run_ids])
        if all(served.get(f"{run_id}/{BEHAVIOR}") and served[f"{run_id}/{BEHAVIOR}"][-1][0] >= last_step for run_id in run_ids):
            return
        time.sleep(1.0)
    raise SystemExit("TensorBoard did not serve the confirmation runs' last points")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run with the stand-in trainer: 2 grid runs of 1,500 steps, one sweep of 3 trials each")
    parser.add_argument("--sweeps", type=int, default=3, help="sweeps of each search, search seeds 1..N (default 3)")
    parser.add_argument("--trials", type=int, default=24, help="--num-trials of each search (default 24)")
    parser.add_argument("--seeds", type=int, default=3, help="fresh seeds per confirmed pick (default 3)")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder")
    parser.add_argument("--grid-from", type=Path, metavar="DIR",
                        help="take the grid from an earlier run's kept folder (its grid.json and results/grid-*) "
                             "instead of training it again (the grid is 25 minutes of the benchmark)")
    args = parser.parse_args()
    space = QUICK if args.quick else FULL
    sweeps, trials, seeds = (1, 3, 2) if args.quick else (args.sweeps, args.trials, args.seeds)
    trainer = shlex.join([sys.executable, str(STAND_IN)]) if args.quick else str(TRAINER)
    if not args.quick and not TRAINER.exists():
        print(f"no {TRAINER}: make install", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="bench-search-"))
    results = tmp / "results"
    results.mkdir()
    figures: list[dict[str, Any]] = []
    try:
        with TensorBoardServer(str(results), reload_interval=1) as board:
            if args.grid_from is not None:
                grid = earlier_grid(args.grid_from, results)
            else:
                grid = run_sweep("grid", grid_config(space), [], board.url, tmp, results, trainer)
                (tmp / "grid.json").write_text(json.dumps({"wall": grid.wall, "steps": grid.steps}))
            searches: dict[str, list[Sweep]] = {"random": [], "tpe": []}
            for seed in range(1, sweeps + 1):
                for kind in searches:
                    searches[kind].append(run_sweep(f"{kind}-{seed}", search_config(space),
                                                    ["--search", kind, "--num-trials", str(trials), "--search-seed", str(seed)],
                                                    board.url, tmp, results, trainer))
            picks = {"grid": grid.pick(space)}  # the grid's winner: its summary's first row, by the last reward
            for kind, done in searches.items():
                for sweep in done:
                    picks[sweep.name] = sweep.pick(space)
            fresh = [1001 + k for k in range(seeds)]
            confirm = run_sweep("confirm", confirm_config(space, picks, fresh), [], board.url, tmp, results, trainer)
            ids = [run["run_id"] for run in confirm.state["runs"]]
            wait_for_points(board.url, ids, space.max_steps)
            rewards = final_rewards(board.url, ids)
        by_pick: dict[str, list[float]] = {}
        for run in confirm.state["runs"]:
            by_pick.setdefault(run["values"][0][3], []).append(rewards[run["run_id"]])
        figures = report(space, grid, searches, by_pick, seeds, picks)
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    emit("search", figures)
    return 0


def report(space: Space, grid: Sweep, searches: dict[str, list[Sweep]], by_pick: dict[str, list[float]], seeds: int,
           picks: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    sds = [statistics.stdev(scores) for scores in by_pick.values() if len(scores) >= 2]
    noise = math.sqrt(statistics.fmean(sd * sd for sd in sds)) if sds else 0.0
    margin = 2 * noise * math.sqrt(2 / seeds)
    reference = statistics.fmean(by_pick["grid"])
    print(f"\nconfirmation on {seeds} fresh seeds (final reward: the mean of the last {FINAL_POINTS} points); "
          f"noise (pooled sd of a run's final reward): {noise:.3f}; within noise: at most {margin:.3f} below the grid's winner\n")
    print(f"{'sweep':<10} {'steps':>9} {'share':>6} {'wall s':>7} {'pick mean':>10} {'vs grid':>8}  within  pick")
    lines = [("grid", grid)] + [(sweep.name, sweep) for done in searches.values() for sweep in done]
    within: dict[str, list[bool]] = {kind: [] for kind in searches}
    means: dict[str, list[float]] = {kind: [] for kind in searches}
    shares: dict[str, list[float]] = {kind: [] for kind in searches}
    walls: dict[str, list[float]] = {kind: [] for kind in searches}
    for name, sweep in lines:
        mean = statistics.fmean(by_pick[name])
        ok = mean >= reference - margin
        share = sweep.steps / grid.steps
        shown = ", ".join(f"{dotted.rsplit('.', 1)[1]}={value:g}" for dotted, value in picks[name].items())
        print(f"{name:<10} {sweep.steps:>9} {share:>6.3f} {sweep.wall:>7.0f} {mean:>10.3f} {mean - reference:>+8.3f}  "
              f"{'yes' if ok else 'no':<6}  {shown}")
        kind = name.split("-")[0]
        if kind in within:
            within[kind].append(ok)
            means[kind].append(mean)
            shares[kind].append(share)
            walls[kind].append(sweep.wall / grid.wall)
    figures = [figure("grid_steps", grid.steps, "steps"), figure("grid_wall_s", grid.wall, "s"),
               figure("grid_winner_reward", reference, "reward", note=f"mean over {seeds} fresh seeds"),
               figure("reward_noise_sd", noise, "reward", note="pooled sd of the confirmation runs")]
    for kind in searches:
        count = len(within[kind])
        figures += [
            figure(f"{kind}_within_noise", sum(within[kind]), f"of {count}", f">= {count}" if kind == "tpe" else None),
            figure(f"{kind}_steps_share_max", max(shares[kind]), "x", "<= 0.20"),
            figure(f"{kind}_wall_share_mean", statistics.fmean(walls[kind]), "x"),
            figure(f"{kind}_pick_reward_mean", statistics.fmean(means[kind]), "reward", note=f"{count} sweeps")]
    figures.append(figure("tpe_minus_random_reward", statistics.fmean(means["tpe"]) - statistics.fmean(means["random"]),
                          "reward", ">= 0"))
    return figures


if __name__ == "__main__":
    sys.exit(main())
