"""A winner you can trust: every run's seed, its score over its last points, confirmation on fresh seeds, GPUs.

Scheduling is decided on the fake clock through the supervisor's seams (tests/fakes.py); the stand-in
trainer checks what a real process is given (its seed, its GPU) and a whole confirmation with TensorBoard.
"""

import csv
import json
import os
import stat
import sys

import pytest
import yaml

import mlagents_learn as ml
from conftest import ROOT
from fakes import Harness
from helpers import TensorBoardServer, free_port, read_records

TAG = "Environment/Cumulative Reward"
STAND_IN = [sys.executable, str(ROOT / "tests" / "stand_in_trainer.py")]


def grid(count: int, extra: str = "") -> str:
    values = ", ".join(str(n) for n in range(count))
    return f"behaviors:\n  B:\n    max_steps: 1000\n    summary_freq: 100\n{extra}stand_in:\n  n: {{opt_values: [{values}]}}\n"


# -- seeds -------------------------------------------------------------------------------


def test_repetition_one_trains_on_the_sweeps_seed_and_each_later_one_on_its_own_derived_seed():
    assert [ml.run_seed(7, repetition) for repetition in (1, 2, 3, 4)] == [7, 1079836010, 1529766679, 1871900544]
    # Confirmation seeds come after the search's laps, and skip any seed the search used.
    assert ml.fresh_seeds(7, 1, [7], 2) == [1079836010, 1529766679]
    assert ml.fresh_seeds(7, 1, [7, 1079836010], 2) == [1529766679, 1871900544]


def test_every_run_of_a_grid_has_its_seed_in_its_config_the_same_across_a_lap():
    plan = ml.SweepPlan(ml.parse_config(grid(2)), "r")
    plan.seed = 7
    runs = [plan.make_run(spec) for spec in plan.grid(repetitions=2)]
    assert [(run.run_id, run.seed) for run in runs] == [("r-0", 7), ("r-1", 7), ("r-2", 1079836010), ("r-3", 1079836010)]
    assert [run.config["env_settings"]["seed"] for run in runs] == [7, 7, 1079836010, 1079836010]
    assert ml.render_config_info(runs[2:3], 2) == "r-2\n- repetition 2 of 2\n- seed 1079836010\n- stand_in\n  - n: 0\n"


def test_a_seed_the_config_makes_an_option_is_each_runs_seed():
    config = grid(1).replace("stand_in:", "env_settings:\n  seed: {opt_values: [3, 4]}\nstand_in:")
    plan = ml.SweepPlan(ml.parse_config(config), "r")
    plan.seed = 7  # not used: the option says
    assert [(run.seed, run.config["env_settings"]["seed"]) for run in map(plan.make_run, plan.grid())] == [(3, 3), (4, 4)]


def test_a_seed_is_kept_in_the_record_and_read_back(tmp_path):
    h = Harness(tmp_path, grid(2), concurrency=2, seed=7)
    h.train_all()
    runs = h.records_json()["runs"]
    assert [(run["run_id"], run["seed"], run["confirms"]) for run in runs] == [("r-0", 7, False), ("r-1", 7, False)]
    again = h.taken_up(grid(2), seed=7)
    assert [record.run.seed for record in again.supervisor.records] == [7, 7]


# -- a run's score -------------------------------------------------------------------------


@pytest.mark.parametrize("curves, score", [
    ([[(100, 0.0), (200, 3.0), (300, 6.0), (400, 9.0)]], (400, 6.0)),  # the mean of the last 3 points
    ([[(100, 2.0)]], (100, 2.0)),  # fewer points: the mean of those it has
    ([[(100, 1.0), (200, 3.0)], [(100, 5.0), (300, 7.0)]], (300, 4.0)),  # behaviors: the mean of their scores
    ([[(100, 1.0)], []], None),  # a behavior without a point: no score yet
    ([], None),
])
def test_a_runs_score_is_the_mean_of_its_last_three_points(curves, score):
    assert ml.final_score(curves) == score


def test_the_summary_ranks_by_score_and_shows_the_last_value_beside_it(tmp_path):
    from fakes import FakeWatcher

    watcher = FakeWatcher()
    h = Harness(tmp_path, grid(2), concurrency=2, watcher=watcher, tensorboard_url="http://board", seed=7)
    h.tick()
    # r-0 ends on a lucky point (last 2.0, score 1.0); r-1 is steadily better (score 1.5).
    watcher.serve(h.clock(), {("r-0", "B", TAG): [(800, 0.5), (900, 0.5), (1000, 2.0)],
                              ("r-1", "B", TAG): [(800, 1.5), (900, 1.5), (1000, 1.5)]})
    for run in h.launcher.started:
        run.end(0)
    h.tick(1)
    for record in h.supervisor.records:
        record.metrics[("B", TAG)] = watcher.snapshot.of(record.run.run_id, "B", TAG)[-1][1]
    header, rows, _ = ml.summary_rows(h.outcome(), h.settings)
    assert header[:9] == ["run", "values", "seed", "status", "exit", "duration", "last step", "score", TAG]
    assert [(row[0], row[2], row[7], row[8]) for row in rows] == [("r-1", "7", "1.5", "1.5"), ("r-0", "7", "1", "2")]


# -- confirmation ------------------------------------------------------------------------


def scores(h, values, last=1000):
    """Each run's points up to step `last`, all of its value (its score is that value); max_steps is 1000."""
    return {(run_id, "B", TAG): [(step, value) for step in range(100, last + 1, 100)] for run_id, value in values.items()}


def confirm_harness(tmp_path, count=4, **changes):
    from fakes import FakeWatcher

    watcher = FakeWatcher()
    options = dict(concurrency=2, watcher=watcher, tensorboard_url="http://board", seed=7, confirm=2, confirm_seeds=2)
    options.update(changes)
    return Harness(tmp_path, grid(count), **options), watcher


def train_grid(h, watcher, values):
    """Train every grid run to the end; TensorBoard serves their points up to step 900: their last is not read yet."""
    while any(h.status(f"r-{n}") is not ml.Status.FINISHED for n in range(len(values))):
        h.tick()
        for run in h.launcher.started:
            if run.code is None and run.run_id in values:
                run.end(0)
        watcher.serve(h.clock(), scores(h, values, last=900))
        h.tick(1)


def test_confirmation_waits_for_the_searchs_last_scores_then_trains_the_best_combinations_seed_by_seed(tmp_path):
    h, watcher = confirm_harness(tmp_path)
    values = {"r-0": 0.1, "r-1": 0.9, "r-2": 0.5, "r-3": 0.7}
    train_grid(h, watcher, values)
    assert h.launcher.ids() == ["r-0", "r-1", "r-2", "r-3"]
    # The search is over, but its runs' last points (step 1000) are not read yet: nothing starts, the sweep is not over.
    assert h.tick(1) is False and h.launcher.ids() == ["r-0", "r-1", "r-2", "r-3"]
    # Once each finished run's point at max_steps is read, nothing later can come: confirmation starts.
    watcher.serve(h.clock(), scores(h, values))
    h.tick(1)
    # The two best (n=1 0.9, n=3 0.7), on the first fresh seed, then the second.
    assert h.launcher.ids()[4:] == ["r-4", "r-5"]
    confirming = [h.supervisor.by_id[f"r-{n}"].run for n in (4, 5)]
    assert [(run.describe(), run.seed, run.confirms, run.repetition) for run in confirming] == [
        ("n=1", 1079836010, True, 2), ("n=3", 1079836010, True, 2)]
    assert yaml.safe_load((tmp_path / "results" / "r-sweep" / "configs" / "r-4.yaml").read_text())["env_settings"] == {
        "seed": 1079836010}
    for run in h.launcher.started[4:]:
        run.end(0)
    h.tick(1)
    assert [(h.supervisor.by_id[f"r-{n}"].run.describe(), h.supervisor.by_id[f"r-{n}"].run.seed) for n in (6, 7)] == [
        ("n=1", 1529766679), ("n=3", 1529766679)]
    for run in h.launcher.started[6:]:
        run.end(0)
    assert h.tick(1) is True  # 4 confirmation runs: the sweep is over
    assert len(h.launcher.started) == 8
    info = (tmp_path / "results" / "r-sweep" / "config_info.txt").read_text()
    assert "r-7\n- confirmation: its combination trained again on a seed the search never used\n- seed 1529766679\n" in info


def test_a_run_read_as_settled_is_unsettled_by_its_next_session(tmp_path):
    # A paused halving run was read as final; it went on and finished: its score is not final until read again.
    h, _ = confirm_harness(tmp_path, count=1)
    record = ml.RunRecord(h.runs[0])
    record.begin_session(10.0, False, None)
    record.end_session(20.0, ml.Ending.PAUSED, exit_code=0, saved=300)
    record.settled = True
    record.go_on()
    record.begin_session(30.0, True, 300)
    assert record.settled is False


def test_confirmation_runs_are_judged_by_no_stop_rule(tmp_path):
    rule = f"    opt_stop: {{tag: {TAG}, step: 500, min: 0.95}}\n"  # every run below 0.95 at step 500 stops
    from fakes import FakeWatcher

    watcher = FakeWatcher()
    h = Harness(tmp_path, grid(2, rule), concurrency=2, watcher=watcher, tensorboard_url="http://board", seed=7,
                confirm=1, confirm_seeds=1)
    h.tick()
    watcher.serve(h.clock(), {("r-0", "B", TAG): [(600, 0.5)], ("r-1", "B", TAG): [(600, 0.6)]})
    h.tick(1)
    assert [run.asked for run in h.launcher.started] == [["interrupt"], ["interrupt"]]  # stopped by the rule
    h.tick(30)
    # Stopped early, their last points are known read only once TensorBoard was read after they settled.
    assert h.launcher.ids() == ["r-0", "r-1"] and h.tick(1) is False
    watcher.serve(h.clock(), {("r-0", "B", TAG): [(600, 0.5)], ("r-1", "B", TAG): [(600, 0.6)]}, settled=("r-0", "r-1"))
    h.tick(1)
    assert h.launcher.ids() == ["r-0", "r-1", "r-2"] and h.supervisor.by_id["r-2"].run.describe() == "n=1"
    watcher.serve(h.clock(), {("r-0", "B", TAG): [(600, 0.5)], ("r-1", "B", TAG): [(600, 0.6)],
                              ("r-2", "B", TAG): [(600, 0.1)]}, settled=("r-0", "r-1"))
    h.tick(1)
    assert h.launcher.last("r-2").asked == []  # below the threshold, and trains on to max_steps


def test_resume_mid_confirmation_trains_each_confirmation_run_once_and_a_larger_k_adds_the_next_best(tmp_path):
    h, watcher = confirm_harness(tmp_path)
    values = {"r-0": 0.1, "r-1": 0.9, "r-2": 0.5, "r-3": 0.7}
    train_grid(h, watcher, values)
    watcher.serve(h.clock(), scores(h, values), settled=tuple(values))
    h.tick(1)
    h.launcher.last("r-4").end(0)  # r-5 is still training when the sweep dies
    h.tick(1)
    assert h.launcher.ids()[4:] == ["r-4", "r-5", "r-6"]
    again = h.taken_up(grid(4), seed=7, confirm=3, confirm_seeds=2, watcher=watcher, tensorboard_url="http://board")
    watcher.serve(again.clock(), scores(again, values), settled=tuple(values) + ("r-4", "r-5", "r-6"))
    again.tick(1)
    # r-5 and r-6 were training: they train again; then the rest, no run twice.
    for _ in range(6):
        for run in again.launcher.started:
            if run.code is None:
                run.end(0)
        again.tick(1)
    started = again.launcher.ids()
    made = {run_id: (again.supervisor.by_id[run_id].run.describe(), again.supervisor.by_id[run_id].run.seed)
            for run_id in started}
    # K grew to 3: n=2 (0.5), the next best, is confirmed on both seeds too; n=1 and n=3 keep theirs.
    assert made == {"r-5": ("n=3", 1079836010), "r-6": ("n=1", 1529766679), "r-7": ("n=2", 1079836010),
                    "r-8": ("n=3", 1529766679), "r-9": ("n=2", 1529766679)}
    assert sorted(started) == ["r-5", "r-6", "r-7", "r-8", "r-9"]
    confirmations = [(record.run.describe(), record.run.seed) for record in again.supervisor.records if record.run.confirms]
    assert sorted(confirmations) == sorted([(f"n={n}", seed) for n in (1, 2, 3) for seed in (1079836010, 1529766679)])
    assert again.tick(1) is True


def test_with_halving_the_combinations_confirmed_are_those_judged_furthest(tmp_path):
    ranking = ml.combination_ranking
    h, _ = confirm_harness(tmp_path, count=3)
    records = []
    # n=0 was out at the first rung (0.99 there), n=2 at the second (0.8), n=1 trained to the end (0.5).
    for n, (level, value) in enumerate([(0.0, 0.99), (float("inf"), 0.5), (1.0, 0.8)]):
        record = ml.RunRecord(h.runs[n], ml.Status.STOPPED if level != float("inf") else ml.Status.FINISHED)
        record.sessions.append(ml.Session(0.0, ended=1.0, ending=ml.Ending.STOPPED))
        record.score = (1000.0, value)
        records.append((record, ml.Standing(level, value)))
    standing = {id(record): stand for record, stand in records}
    ranked = ranking([record for record, _ in records], "max", lambda record: standing[id(record)])
    assert [runs[0].run.describe() for runs in ranked] == ["n=1", "n=2", "n=0"]


# -- the verdict -----------------------------------------------------------------------------


def confirmed(label, values):
    return ml.Confirmed(label, label, [], list(values))


def test_a_lead_beyond_the_noise_is_said_so_and_one_within_it_is_not():
    clear = ml.confirmation_verdict([confirmed("a", [1.0, 1.1, 1.2]), confirmed("b", [0.5, 0.6, 0.55])], "max")
    assert clear.beyond_noise and clear.lead == pytest.approx(0.55)
    assert clear.interval == (pytest.approx(0.45), pytest.approx(0.65))
    close = ml.confirmation_verdict([confirmed("a", [1.0, 0.5, 0.9]), confirmed("b", [0.8, 0.7, 0.85])], "max")
    assert not close.beyond_noise and close.interval[0] < 0 < close.interval[1]
    lowest = ml.confirmation_verdict([confirmed("b", [0.5, 0.6, 0.55]), confirmed("a", [1.0, 1.1, 1.2])], "min")
    assert lowest.winner.label == "b" and lowest.beyond_noise
    assert ml.verdict_line(close, 3, "").endswith(
        "it cannot be told apart from the runner-up on these seeds: 0.0166667 ahead of b (interval -0.266667 to 0.233333); "
        "more seeds (--confirm-seeds 6 with --resume) may separate them.")
    assert ml.verdict_line(clear, 3, "") == (
        "Best settings, confirmed on 3 fresh seeds: a, mean score 1.1 (95% interval 1 to 1.2) over ; its lead is beyond "
        "the noise measured: 0.55 ahead of b (interval 0.45 to 0.65).")


def test_a_confirmation_ranks_only_runs_that_trained_to_the_end(tmp_path):
    h, watcher = confirm_harness(tmp_path, count=2, confirm=2, confirm_seeds=1)
    values = {"r-0": 0.2, "r-1": 0.4}
    train_grid(h, watcher, values)
    watcher.serve(h.clock(), scores(h, values), settled=tuple(values))
    h.tick(1)
    h.launcher.last("r-2").end(0)
    h.launcher.last("r-3").end(5)  # failed: its points are no result
    watcher.serve(h.clock(), scores(h, {**values, "r-2": 0.3, "r-3": 0.9}), settled=tuple(values))
    h.tick(1)
    ranked = ml.confirmations(h.outcome().records, TAG, "max")
    assert [(group.label, group.scores, [record.run.run_id for record in group.records]) for group in ranked] == [
        ("n=1", [0.3], ["r-2"]), ("n=0", [], ["r-3"])]
    h.summary()
    summary = (tmp_path / "results" / "r-sweep" / "summary.md").read_text()
    assert summary.splitlines()[-1] == ("Best settings, confirmed on 1 fresh seed: n=1, mean score 0.3 (95% interval 0.3 to "
                                        "0.3) over r-2; no other combination was confirmed to compare it with.")
    assert (tmp_path / "results" / "r-sweep" / "summary_confirmation.csv").read_text().splitlines() == [
        "values,runs,scored,mean score,95% interval,min,max,seeds,run ids",
        "n=1,1,1,0.3,0.3 to 0.3,0.3,0.3,1079836010,r-2",
        "n=0,1,0,,,,,1079836010,r-3"]


# -- GPUs ----------------------------------------------------------------------------------


def test_runs_are_placed_on_the_gpus_by_slot_each_seeing_one_and_told_to_use_cuda(tmp_path):
    h = Harness(tmp_path, grid(6), concurrency=4, gpus=("0", "1"), runs_per_gpu=2)
    h.tick()
    assert [(run.request.slot, run.request.environment) for run in h.launcher.started] == [
        (0, {"CUDA_VISIBLE_DEVICES": "0"}), (1, {"CUDA_VISIBLE_DEVICES": "1"}),
        (2, {"CUDA_VISIBLE_DEVICES": "0"}), (3, {"CUDA_VISIBLE_DEVICES": "1"})]
    assert all(run.command[-2:] == ["--torch-device", "cuda"] for run in h.launcher.started)
    h.launcher.last("r-1").end(0)
    h.tick(1)
    assert (h.launcher.started[-1].run_id, h.launcher.started[-1].request.environment) == ("r-4", {"CUDA_VISIBLE_DEVICES": "1"})


def test_a_run_that_ran_out_of_gpu_memory_says_so(tmp_path):
    h = Harness(tmp_path, grid(2), concurrency=2, gpus=("3",), runs_per_gpu=2)
    h.tick()
    (tmp_path / "results" / "r-sweep" / "logs").mkdir(parents=True, exist_ok=True)
    (tmp_path / "results" / "r-sweep" / "logs" / "r-1.log").write_text(
        "Traceback (most recent call last):\ntorch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB\n")
    h.launcher.last("r-0").end(1)
    h.launcher.last("r-1").end(1)
    h.tick(1)
    assert h.supervisor.by_id["r-0"].stop_reason == ""
    assert h.supervisor.by_id["r-1"].stop_reason == ("exit 1: GPU 3 ran out of memory (CUDA out of memory in its log); "
                                                     "pass a smaller --runs-per-gpu than 2, or smaller networks")


# -- with real processes ------------------------------------------------------------------------


def stand_in_sweep(folder, config_text, *extra):
    config = folder / "c.yaml"
    config.write_text(config_text)
    return [str(config), "--trainer", " ".join(STAND_IN), "--results-dir", "results", "--run-id", "r", "--env=Fake",
            "--base-port", str(free_port(8)), *extra]


def nvidia_smi(folder, monkeypatch, script: str) -> None:
    """A stand-in for nvidia-smi (no GPU here), first on PATH: it runs the shell script given."""
    bin_dir = folder / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text(f"#!/bin/sh\n{script}\n")
    smi.chmod(smi.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def test_each_run_sees_only_its_gpu_and_no_gpu_holds_more_runs_than_asked(folder, monkeypatch):
    nvidia_smi(folder, monkeypatch, "printf '0\\n1\\n'")  # two GPUs: --gpus all finds them
    config = "behaviors:\n  B:\n    max_steps: 1000\nstand_in:\n  duration: 0.5\n  n: {opt_values: [0, 1, 2, 3, 4, 5]}\n"
    assert ml.main(stand_in_sweep(folder, config, "--gpus", "all", "--runs-per-gpu", "2", "--no-tensorboard")) == 0
    records = read_records(folder / "records")
    assert sorted(rec["run_id"] for rec in records) == [f"r-{n}" for n in range(6)]
    assert {rec["cuda_visible_devices"] for rec in records} == {"0", "1"}
    assert all(rec["argv"][-2:] == ["--torch-device", "cuda"] for rec in records)
    for gpu in ("0", "1"):
        mine = [rec for rec in records if rec["cuda_visible_devices"] == gpu]
        at_once = max(sum(other["start"] <= rec["start"] < other["end"] for other in mine) for rec in mine)
        assert at_once <= 2


def test_a_confirmation_with_tensorboard_ranks_the_fresh_seeds_and_resume_adds_seeds_without_training_twice(
        folder, capsys, monkeypatch):
    # On the search's seed 5 "first" scores best; on the fresh seeds "second" does, beyond the noise. Every point
    # of a run has its seed's value, so a shorter wait for TensorBoard to settle changes no score (when the search
    # is ranked is the fake-clock tests' to decide).
    monkeypatch.setattr(ml, "TENSORBOARD_SETTLE", 2.0)
    f0, f1, f2 = ml.fresh_seeds(5, 1, [5], 3)
    tables = {"first": {5: 1.0, f0: 0.2, f1: 0.4}, "second": {5: 0.9, f0: 0.8, f1: 0.9}, "third": {5: 0.1}}
    scalars = {label: {"B": {"Score": {"by_seed": table, "other": 0.0}}} for label, table in tables.items()}
    config = yaml.safe_dump({"behaviors": {"B": {"max_steps": 1000, "summary_freq": 100}},
                             "stand_in": {"duration": 0.5, "scalars": {"opt_values": scalars}}}, sort_keys=False)
    with TensorBoardServer(str(folder / "results"), reload_interval=1) as board:
        args = stand_in_sweep(folder, config, "--num-envs", "2", "--seed", "5", "--confirm", "2", "--confirm-seeds", "2",
                              "--tensorboard-url", board.url, "--poll-interval", "0.5", "--metric", "Score")
        assert ml.main(args) == 0
        state = json.loads((folder / "results" / "r-sweep" / "sweep_state.json").read_text())
        assert [(run["run_id"], run["seed"], run["values"][0][3]) for run in state["runs"] if run["confirms"]] == [
            ("r-3", f0, "first"), ("r-4", f0, "second"), ("r-5", f1, "first"), ("r-6", f1, "second")]
        # What each trainer was given: its seed, in its config.
        assert {rec["run_id"]: rec["seed"] for rec in read_records(folder / "records")} == {
            "r-0": 5, "r-1": 5, "r-2": 5, "r-3": f0, "r-4": f0, "r-5": f1, "r-6": f1}
        with open(folder / "results" / "r-sweep" / "summary_confirmation.csv", newline="") as handle:
            rows = [(row["values"].split(" = ")[0], row["scored"], row["mean score"], row["95% interval"], row["seeds"])
                    for row in csv.DictReader(handle)]
        assert rows == [("scalars=second", "2", "0.85", "0.8 to 0.9", f"{f0} {f1}"),
                        ("scalars=first", "2", "0.3", "0.2 to 0.4", f"{f0} {f1}")]
        out = capsys.readouterr().out
        assert ("Best settings, confirmed on 2 fresh seeds: scalars=second, mean score 0.85 (95% interval 0.8 to 0.9) "
                "over r-4 r-6; its lead is beyond the noise measured: 0.55 ahead of scalars=first (interval 0.4 to 0.7).") in out
        assert "Best run of the search: r-0 (scalars=first), score 1 " in out
        # --resume with a third seed: two runs more, none trained again.
        assert ml.main([*args, "--resume", "--confirm-seeds", "3"]) == 0
        state = json.loads((folder / "results" / "r-sweep" / "sweep_state.json").read_text())
        assert [(run["run_id"], run["seed"]) for run in state["runs"] if run["confirms"]][4:] == [("r-7", f2), ("r-8", f2)]
        assert sorted(rec["run_id"] for rec in read_records(folder / "records")) == sorted(f"r-{n}" for n in range(9))


def test_gpus_all_without_a_gpu_to_find_is_one_line(folder, monkeypatch, capsys):
    nvidia_smi(folder, monkeypatch, "echo 'NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver.'; exit 9")
    config = "behaviors:\n  B:\n    max_steps: 1000\n"
    assert ml.main(stand_in_sweep(folder, config, "--gpus", "all")) == 2
    assert capsys.readouterr().err == ("error: --gpus all found no GPU (nvidia-smi lists none, or is not installed) (command "
                                       "line): list the GPUs, e.g. --gpus 0,1, or drop --gpus to train as ML-Agents decides\n")
    assert not (folder / "results").exists()


def test_a_dry_run_says_what_confirmation_and_the_gpus_will_cost(folder, capsys):
    config = "behaviors:\n  B:\n    max_steps: 1000\nstand_in:\n  n: {opt_values: [0, 1, 2, 3]}\n"
    assert ml.main(stand_in_sweep(folder, config, "--dry-run", "--seed", "7", "--confirm", "2", "--gpus", "0,1")) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-2:] == [
        "GPUs: GPU 0: slots 0, GPU 1: slots 1 (each run sees its GPU as CUDA_VISIBLE_DEVICES and trains with "
        "--torch-device cuda; at most 1 per GPU)",
        "then --confirm 2: the 2 best combinations trained again on 3 fresh seeds (seeds 1079836010, 1529766679, "
        "1871900544), to max_steps: 6 runs, 6000 steps more (the grid's 4 runs train at most 4000 steps)"]


def test_a_confirmation_with_nothing_scored_says_so_and_the_sweep_ends(tmp_path):
    h, watcher = confirm_harness(tmp_path, count=2, confirm=1, confirm_seeds=1)
    h.tick()
    for run in h.launcher.started:
        run.end(3)  # both failed: no score
    h.tick(1)
    watcher.serve(h.clock(), {}, settled=("r-0", "r-1"))
    assert h.tick(1) is True and h.launcher.ids() == ["r-0", "r-1"]
    h.summary()
    assert (tmp_path / "results" / "r-sweep" / "summary.md").read_text().splitlines()[-1] == (
        "Nothing was confirmed: no run of the search has a score to rank its combination by (see the table).")
