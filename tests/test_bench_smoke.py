"""Smoke test of the benchmarks in bench/: each runs with --quick and reports its figures.

Nothing here is timed: the figures must be there and be numbers, whatever they are.
"""

import json
import math
import subprocess
import sys
import tempfile

import pytest

from conftest import ROOT
from helpers import namespaces_work

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the benchmarks read /proc")

BENCH = ROOT / "bench"
TRAINER = ROOT / ".venv" / "bin" / "mlagents-learn"  # early_stopping.py trains with the real one
EXPECTED = {
    "scheduler.py": [
        "makespan_ratio_sweep", "makespan_ratio_runs", "makespan_ratio_packed", "refill_gap_median_s",
        "refill_gap_max_s", "reap_delay_median_s", "launch_delay_median_s", "trainer_startup_median_s", "run_overhead_median_s",
        "sweep_cpu_share_pct", "sweep_cpu_share_steady_pct", "sweep_peak_rss_mb",
        "hung_tb_makespan_ratio_runs", "hung_tb_refill_gap_median_s", "hung_tb_refill_gap_max_s",
        "dry_run_200_s", "dry_run_200_cpu_s", "dry_run_200_peak_rss_mb", "option_labels_large_ms", "option_labels_scaling",
    ],
    "poll.py": [
        "stop_latency_median_s", "stop_latency_max_s", "stop_latency_to_exit_max_s", "poll_ms", "poll_ms_per_run",
        "poll_requests", "poll_fetch_ms", "poll_request_first_ms", "poll_request_next_ms", "poll_fetch_1run_ms", "poll_check_threshold_ms", "poll_check_median_ms",
    ],
    "early_stopping.py": [
        "full_steps", "full_wall_s", "full_others_cores", "full_best_reward", "full_top2_gap", "reward_noise",
        "reward_noise_max", "failed_while_stopping", "full_again_same_winner",
        *(f"threshold_{name}" for name in ("steps_ratio", "wall_ratio", "runs_stopped", "stop_overshoot_steps", "same_winner")),
        *(f"{rule}_{order}_{name}" for rule in ("median", "halving") for order in ("forward", "reversed")
          for name in ("steps_ratio", "steps_ratio_max", "wall_ratio", "winner_found", "stop_overshoot_steps", "sweeps")),
        "throughput_1env_steps_per_s", "throughput_2env_steps_per_s", "throughput_ratio", "throughput_ratio_training",
        "throughput_1env_others_cores", "throughput_2env_others_cores", "cpu_per_1k_steps_1env", "cpu_per_1k_steps_2env",
        "cores_busy_1env", "cores_busy_2env",
    ],
    "stress.py": [
        "runs_finished", "runs_lost", "runs_twice", "max_concurrent_runs", "port_clashes", "wall_s", "runs_per_s",
        "wall_vs_cpu_floor", "others_cores", "sweep_cpu_s", "sweep_cpu_share_pct", "sweep_cpu_share_steady_pct",
        "sweep_cpu_ms_per_run", "trainers_cpu_s",
        "sweep_peak_rss_mb",
    ],
    "search.py": [
        "grid_steps", "grid_wall_s", "grid_winner_reward", "reward_noise_sd",
        *(f"{kind}_{name}" for kind in ("random", "tpe")
          for name in ("within_noise", "steps_share_max", "wall_share_mean", "pick_reward_mean")),
        "tpe_minus_random_reward",
    ],
    "confirm.py": [
        "reference_best_reward", "reference_top2_gap", "reward_noise_sd",
        *(f"{way}_{name}" for way in ("last", "score", "confirm") for name in ("within_noise", "best_exactly")),
        "confirm_steps_ratio", "confirm_wall_share", "confirm_told_apart",
    ],
    "pbt.py": [
        "reward_noise_sd", "pbt_beats_random_beyond_noise", "pbt_minus_random_best_mean", "pbt_best_mean", "random_best_mean",
        "pbt_population_mean", "random_population_mean", "pbt_worst_mean", "random_worst_mean",
        "pbt_steps_ratio_max", "pbt_wall_ratio_mean", "pbt_takeovers_mean",
    ],
    "ray_cluster.py": [
        "ray_makespan_ratio_runs", "ray_makespan_ratio_sweep", "local_makespan_ratio_runs", "local_makespan_ratio_sweep",
        "ray_vs_local_runs", "ray_driver_cpu_share_pct", "ray_driver_cpu_share_steady_pct", "local_sweep_cpu_share_pct",
        "local_sweep_cpu_share_steady_pct", "node_death_restart_s",
    ],
}
# A quick sweep is about a second long: the sweep may use no whole 10 ms CPU tick in it.
# Counts of things that should not happen, and what a tiny grid of 1000 steps decides
# (nothing stopped, the same winner: a gap of 0), may be 0 too.
MAY_BE_ZERO = {
    "sweep_cpu_share_steady_pct", "ray_driver_cpu_share_steady_pct", "local_sweep_cpu_share_steady_pct", "runs_lost", "runs_twice", "port_clashes", "failed_while_stopping",
    "threshold_runs_stopped", "threshold_stop_overshoot_steps", "threshold_same_winner", "full_again_same_winner",
    *(f"{rule}_forward_{name}" for rule in ("median", "halving") for name in ("winner_found", "stop_overshoot_steps")),
    # search.py's smoke run trains with the stand-in: every run scores alike, so there is no noise and no
    # difference, and a pick may fall outside the noise.
    "reward_noise_sd", "tpe_minus_random_reward", "random_within_noise", "tpe_within_noise",
    # confirm.py's smoke run too: the top two tie, and no lead is beyond a noise of 0.
    "reference_top2_gap", "confirm_told_apart",
    # pbt.py's too: its stand-in runs of 1,500 steps end before a pause lands, and score alike.
    "pbt_beats_random_beyond_noise", "pbt_minus_random_best_mean", "pbt_takeovers_mean",
}
# 1000 steps of training are too few to learn: the best final reward is below 0.  Other
# programs' CPU is the machine's busy time less ours: about 0 on an idle machine, either side.
MAY_BE_NEGATIVE = {"full_best_reward", "full_others_cores", "median_others_cores", "threshold_others_cores",
                   "throughput_1env_others_cores", "throughput_2env_others_cores", "others_cores",
                   "grid_winner_reward", "random_pick_reward_mean", "tpe_pick_reward_mean", "tpe_minus_random_reward"}
# Not measured when nothing was stopped (the overshoot), or when no combination
# trained to the end twice (the repeat noise); a tiny run may leave them empty.
# --quick trains no reversed grid: those figures are left empty.
MAY_BE_NONE = {"reward_noise", "reward_noise_max", "threshold_stop_overshoot_steps",
               *(f"{rule}_forward_stop_overshoot_steps" for rule in ("median", "halving")),
               *(f"{rule}_reversed_{name}" for rule in ("median", "halving")
                 for name in ("steps_ratio", "steps_ratio_max", "wall_ratio", "winner_found", "stop_overshoot_steps", "sweeps"))}
# Each benchmark's smoke run, at most: the timeout only keeps a hung benchmark from
# hanging the suite.  early_stopping trains for real (about a minute on idle cores); ray_cluster
# starts two local Ray clusters (35 s alone, 1 minute beside a real sweep, 3 in the loaded suite).
TIMEOUT = {"early_stopping.py": 600, "ray_cluster.py": 600}


def run(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    """A benchmark's run, its output in files rather than pipes: a daemon it leaves behind (a Ray
    process outliving its cluster) would hold a pipe open and keep us waiting after it exited."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        try:
            # The timeout only keeps a hung benchmark from hanging the suite.
            code = subprocess.run([sys.executable, *args], cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                  text=True, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            code = None
        out.seek(0)
        err.seek(0)
        done = subprocess.CompletedProcess(args, code, out.read(), err.read())
    assert code is not None, f"timed out after {timeout} s:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def check_figures(result: dict, names: list) -> None:
    figures = {f["name"]: f for f in result["figures"]}
    assert sorted(figures) == sorted(names)
    for name, f in figures.items():
        value = f["value"]
        if value is None and name in MAY_BE_NONE:
            continue
        assert isinstance(value, (int, float)) and math.isfinite(value), (name, value)
        if name not in MAY_BE_NEGATIVE:
            assert value >= 0 if name in MAY_BE_ZERO else value > 0, (name, value)
        assert f["met"] in (True, False) if f["goal"] else f["met"] is None, f
        if name.endswith("_winner_found"):  # a share of the sweeps, whatever their number
            assert f["unit"] == "share" and 0 <= value <= 1, f


def needs(script: str):
    if script == "early_stopping.py":
        return pytest.param(script, marks=pytest.mark.skipif(
            not TRAINER.exists(), reason=f"early_stopping.py trains with the real mlagents-learn: no {TRAINER} "
                                         "(make install)"))
    if script == "ray_cluster.py":
        return pytest.param(script, marks=pytest.mark.skipif(
            not namespaces_work(), reason="ray_cluster.py runs Ray in a private network namespace: needs `unshare -n` (root)"))
    return script


@pytest.mark.parametrize("script", [needs(script) for script in sorted(EXPECTED)])
def test_a_quick_benchmark_exits_0_and_prints_its_figures_as_a_last_json_line(script):
    done = run(str(BENCH / script), "--quick", timeout=TIMEOUT.get(script, 180))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["benchmark"] == script[:-3]
    check_figures(result, EXPECTED[script])
    for name in EXPECTED[script]:
        assert name in done.stdout.rsplit("\n", 2)[0]  # the human-readable lines too


def test_bench_run_collects_a_benchmark_into_one_table():
    done = run(str(BENCH / "run"), "--quick", "--only", "scheduler", "--json")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert lines[0].split() == ["benchmark", "figure", "value", "unit", "goal", "met?"]
    rows = {line.split()[1] for line in lines[2:] if line.startswith("scheduler ")}
    assert rows == set(EXPECTED["scheduler.py"])
    collected = json.loads(lines[-1])
    assert collected["failed"] == [] and [r["benchmark"] for r in collected["benchmarks"]] == ["scheduler"]
    check_figures(collected["benchmarks"][0], EXPECTED["scheduler.py"])
