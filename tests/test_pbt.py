"""Population based training (rule: pbt): the pure parts from tables, whole sweeps over the supervisor's seams on
the fake clock, the copy of a checkpoint on disk, and the stand-in trainer resuming from a copied checkpoint.

The sweeps here train nothing: a fake launcher's runs advance one summary period a tick, and each point's value
is the run's learning_rate at the time, so who takes over whose checkpoint is known in advance. What must hold:
the same takeovers whatever --num-envs or the order runs arrive in, and after any interruption.
"""

import json
import os
import shlex
import sys
from pathlib import Path

import pytest
import yaml

import mlagents_learn as ml
from fakes import FakeWatcher, Harness
from helpers import STAND_IN, free_port, read_records, scalars

TAG = "Score"
METRIC = "Environment/Cumulative Reward"


def config(values="[1, 2, 3, 4, 5, 6]", rule="{tag: Score, rule: pbt, interval: 100}", max_steps=400, extra=""):
    return (f"behaviors:\n  B:\n    trainer_type: ppo\n    max_steps: {max_steps}\n    summary_freq: 50\n"
            f"    hyperparameters:\n      learning_rate: {{opt_values: {values}}}\n{extra}    opt_stop: {rule}\n")


# -- the rule and its pure parts ----------------------------------------------------------------

def test_a_pbt_rule_takes_the_defaults_ray_tunes_pbt_has():
    [rule] = ml.parse_stop_rules(ml.parse_config("behaviors:\n  B:\n    opt_stop: {tag: R, rule: pbt}\n"))
    assert (rule.rule, rule.interval, rule.quantile, rule.perturb, rule.resample, rule.mode) == (
        "pbt", 50000, 0.25, (0.8, 1.2), 0.25, "max")
    [rule] = ml.parse_stop_rules(ml.parse_config(
        "behaviors:\n  B:\n    opt_stop: {tag: R, rule: pbt, interval: 10, quantile: 0.5, perturb: [0.5, 2], "
        "resample: 0, mode: min}\n"))
    assert (rule.interval, rule.quantile, rule.perturb, rule.resample, rule.mode) == (10, 0.5, (0.5, 2.0), 0, "min")


@pytest.mark.parametrize("points, step, value", [
    ([(125, 1.0), (150, 3.0), (175, 5.0), (200, 7.0)], 200, 6.0),  # the interval's second half, (150, 200]: 175 and 200
    ([(175, 5.0), (200, 7.0), (250, 99.0)], 200, 6.0),              # past the interval's end: not counted
    ([(120, 4.0), (140, 6.0)], 200, 6.0),                           # none in (150, 200]: its last point of the interval
    ([(90, 4.0)], 200, None),                                       # nothing in the interval (it took over at 110)
    ([], 200, None),
])
def test_a_runs_value_at_an_interval_is_the_mean_of_that_intervals_second_half(points, step, value):
    assert ml.interval_value(points, step, 100) == value


@pytest.mark.parametrize("max_steps, summary_freq, interval, found", [
    (400, 50, 100, [100, 200, 300]),        # 350 + 50 reaches max_steps: 400 trains to the end
    (20000, 1000, 5000, [5000, 10000, 15000]),
    (1000, 100, 950, []),                   # no interval before the last summary period
])
def test_intervals_stop_short_of_the_last_summary_period(max_steps, summary_freq, interval, found):
    text = (f"behaviors:\n  B:\n    max_steps: {max_steps}\n    summary_freq: {summary_freq}\n"
            f"    opt_stop: {{tag: R, rule: pbt, interval: {interval}}}\n")
    [run] = ml.expand(ml.parse_config(text), "r")
    assert ml.rungs_of(run, run.stop_rules[0]) == found


@pytest.mark.parametrize("values, value, factor, moved", [
    ([1, 2, 3], 2, 1.2, 3),
    ([1, 2, 3], 2, 0.8, 1),
    ([1, 2, 3], 3, 1.2, 3),                      # the end of the list: it stays
    ([3, 1, 2], 1, 1.2, 2),                      # numbers move by size, not by their place in the list
    (["linear", "constant"], "linear", 1.2, "constant"),  # other values by their place
    (["linear", "constant"], "linear", 0.8, "linear"),
    ([1, 2, 2, 3], 2, 1.2, 3),                   # a value named twice is one place
    ([1, 2, 3], 2, 1.0, 2),
])
def test_a_perturbed_list_value_moves_to_a_neighbour(values, value, factor, moved):
    option = ml.Option("B", ("x",), tuple(values), True)
    assert ml.neighbour(option, value, factor) == moved


def test_explore_perturbs_numbers_of_a_range_within_it_and_resamples_by_its_chance():
    lr = ml.Option("B", ("lr",), (), True, range=ml.Range(1e-4, 1e-2, log=True))
    units = ml.Option("B", ("batch",), (), True, range=ml.Range(32, 64, integer=True))
    seed = ml.Option("env_settings", ("seed",), (1, 2), False)
    # resample 0, factor 2: every number doubled, kept in its range (64 is the top), the kept option untouched
    assert ml.explore([lr, units, seed], [1e-3, 40, 1], ml.seeded(1, "x"), [2.0], 0.0, kept=[2]) == [0.002, 64, 1]
    assert ml.explore([lr, units, seed], [1e-3, 20, 1], ml.seeded(1, "x"), [0.5], 0.0, kept=[2]) == [0.0005, 32, 1]
    # resample 1: every value drawn afresh from its option, the same draws for the same seed and name
    drawn = [ml.explore([lr, units], [1e-3, 40], ml.seeded(3, f"pbt:1:{n}"), [2.0], 1.0) for n in range(20)]
    assert drawn == [ml.explore([lr, units], [1e-3, 40], ml.seeded(3, f"pbt:1:{n}"), [2.0], 1.0) for n in range(20)]
    assert all(1e-4 <= a <= 1e-2 and 32 <= b <= 64 and isinstance(b, int) for a, b in drawn)
    assert len({tuple(each) for each in drawn}) == 20


@pytest.mark.parametrize("option, refused", [
    ("network_settings:\n      hidden_units: {opt_values: [64, 128]}\n", "network_settings.hidden_units"),
    ("network_settings:\n      num_layers: {opt_values: [1, 2]}\n", "network_settings.num_layers"),
    ("network_settings:\n      normalize: {opt_values: [true, false]}\n", "network_settings.normalize"),
    ("network_settings:\n      vis_encode_type: {opt_values: [simple, resnet]}\n", "network_settings.vis_encode_type"),
    ("network_settings:\n      memory: {opt_values: [null, {memory_size: 64, sequence_length: 16}]}\n",
     "network_settings.memory"),
    ("network_settings: {opt_values: [{hidden_units: 32}, {hidden_units: 64}]}\n", "network_settings.hidden_units"),
    ("trainer_type: {opt_values: [ppo, sac]}\n", "trainer_type"),
    ("reward_signals: {opt_values: [{extrinsic: {strength: 1.0}}, {extrinsic: {strength: 1.0}, curiosity: {strength: 0.1}}]}\n",
     "reward_signals"),
    ("reward_signals:\n      curiosity:\n        strength: 0.1\n        network_settings: {opt_values: [{hidden_units: 8}, "
     "{hidden_units: 16}]}\n", "reward_signals.curiosity.network_settings"),
])
def test_an_option_that_changes_what_a_checkpoint_fixes_is_refused_by_name(option, refused):
    text = ("behaviors:\n  B:\n    max_steps: 400\n    " + option
            + "    opt_stop: {tag: R, rule: pbt, interval: 100}\n")
    plan = ml.SweepPlan(ml.parse_config(text), "r", "c.yaml")
    name = plan.param_names()[0]
    with pytest.raises(ml.SweepError) as caught:
        ml.check_pbt_options(plan)
    assert str(caught.value) == (f"{name} changes {refused}, which a checkpoint fixes (the network's shape or kind): "
                                 f"rule: pbt cannot explore it from a checkpoint (c.yaml): give {name} one value, or "
                                 "sweep it with a grid or rule: halving instead")


def test_init_entcoef_is_refused_and_max_steps_too():
    text = "behaviors:\n  B:\n    trainer_type: sac\n    hyperparameters:\n      init_entcoef: {opt_values: [0.5, 1.0]}\n" \
           "    opt_stop: {tag: R, rule: pbt, interval: 100}\n"
    with pytest.raises(ml.SweepError, match=r"^init_entcoef changes hyperparameters.init_entcoef, which a checkpoint fixes"):
        ml.check_pbt_options(ml.SweepPlan(ml.parse_config(text), "r"))
    text = "behaviors:\n  B:\n    max_steps: {opt_values: [400, 800]}\n    opt_stop: {tag: R, rule: pbt, interval: 100}\n"
    with pytest.raises(ml.SweepError, match=r"^max_steps changes max_steps, and rule: pbt compares its population at "
                                            r"the same steps to the same end \(config\): give max_steps one value"):
        ml.check_pbt_options(ml.SweepPlan(ml.parse_config(text), "r"))


@pytest.mark.parametrize("option", [
    "hyperparameters:\n      learning_rate: {opt_range: [1.0e-5, 1.0e-2], log: true}\n",
    "hyperparameters:\n      beta: {opt_values: [0.001, 0.01]}\n      learning_rate_schedule: {opt_values: [linear, constant]}\n",
    "network_settings:\n      hidden_units: 64\n      deterministic: {opt_values: [true, false]}\n",
    "reward_signals:\n      extrinsic:\n        strength: {opt_values: [0.5, 1.0]}\n        gamma: {opt_values: [0.9, 0.99]}\n",
    "time_horizon: {opt_values: [32, 64]}\n",
])
def test_what_ml_agents_reads_from_the_config_at_every_launch_may_be_explored(option):
    text = ("behaviors:\n  B:\n    max_steps: 400\n    " + option + "    opt_stop: {tag: R, rule: pbt, interval: 100}\n")
    ml.check_pbt_options(ml.SweepPlan(ml.parse_config(text), "r"))  # no error


# -- whole sweeps on the fake clock -------------------------------------------------------------

class Trainer:
    """Trains a Harness's fake runs: one summary period (50 steps) a tick, each point's value the run's
    learning_rate; a run that goes on starts where its checkpoint was, and one that took over another's
    checkpoint has only the points written since as its own (as the watcher's windows make them)."""

    def __init__(self, harness):
        self.h = harness
        self.points = {}  # run id -> its own points
        self.takeovers = {}  # run id -> how many takeovers its points are of

    def tick(self):
        h = self.h
        for fake in h.launcher.started:
            if fake.code is not None:
                continue
            record = h.supervisor.by_id[fake.run_id]
            if len(record.lineage) != self.takeovers.get(fake.run_id, 0):
                self.takeovers[fake.run_id], self.points[fake.run_id] = len(record.lineage), []
            if fake.step == 0 and record.session.from_step:
                fake.step = record.session.from_step
            fake.step += 50
            self.points.setdefault(fake.run_id, []).append((fake.step, float(record.run.values[0][2])))
            if fake.step >= record.run.total_steps():
                fake.end(0)
        h.watcher.serve(h.clock(), {(run_id, "B", tag): list(points) for run_id, points in self.points.items()
                                    for tag in (TAG, METRIC)})
        return h.tick(1)

    def until(self, done=lambda: False, ticks=500):
        for _ in range(ticks):
            if self.tick() or done():
                return
        raise AssertionError("the sweep did not end")


def sweep(tmp_path, text=None, **changes):
    h = Harness(tmp_path, text or config(), watcher=FakeWatcher(), seed=7, **changes)
    Trainer(h).until()
    return h


def lineage(h):
    return {record.run.run_id: [(e.interval, e.donor, e.step, e.before[0][2], e.after[0][2]) for e in record.lineage]
            for record in h.supervisor.records}


def test_the_worst_quantile_takes_over_the_best_quantiles_checkpoints_at_each_interval(tmp_path):
    h = sweep(tmp_path)
    lines = [line for line in h.lines() if "goes on" in line or line.startswith(("finished", "start", "pausing r-5"))]
    # Six runs, two at a time, pause at step 100; once all six are in, the worst two (a quarter of 6, rounded up)
    # each take over one of the best two's checkpoints, drawn from the seed, and explore its values.
    assert lines[:6] == ["start r-0: learning_rate=1, port 6000", "start r-1: learning_rate=2, port 6001",
                         "start r-2: learning_rate=3, port 6000", "start r-3: learning_rate=4, port 6001",
                         "start r-4: learning_rate=5, port 6000", "start r-5: learning_rate=6, port 6001"]
    assert lines[6:13] == [
        "pausing r-5: pbt: at interval 1, step 100",
        "r-5 goes on: pbt: 1st of 6 at step 100 (6): goes on",
        "r-4 goes on: pbt: 2nd of 6 at step 100 (5): goes on",
        "r-3 goes on: pbt: 3rd of 6 at step 100 (4): goes on",
        "r-2 goes on: pbt: 4th of 6 at step 100 (3): goes on",
        "r-1 goes on: pbt: 5th of 6 at step 100 (2): takes over r-5's checkpoint (1st, 6) and its values, learning_rate 6 -> 3",
        "r-0 goes on: pbt: 6th of 6 at step 100 (1): takes over r-4's checkpoint (2nd, 5) and its values, learning_rate 5 -> 6",
    ]
    # At step 200 r-1 and r-2 tie at 3 (r-1's points since it took over are of learning_rate 3 only): the tie goes
    # by their values, then their numbers. At the end of the list, a perturbation up leaves 6 as it is.
    assert lines[13:20] == [
        "pausing r-5: pbt: at interval 2, step 200",
        "r-0 goes on: pbt: 1st of 6 at step 200 (6): goes on",
        "r-5 goes on: pbt: 2nd of 6 at step 200 (6): goes on",
        "r-4 goes on: pbt: 3rd of 6 at step 200 (5): goes on",
        "r-3 goes on: pbt: 4th of 6 at step 200 (4): goes on",
        "r-1 goes on: pbt: 5th of 6 at step 200 (3): takes over r-0's checkpoint (1st, 6) and its values, unchanged",
        "r-2 goes on: pbt: 6th of 6 at step 200 (3): takes over r-5's checkpoint (2nd, 6) and its values, unchanged",
    ]
    assert h.results.taken == [("r-1", "r-5", 100.0), ("r-0", "r-4", 100.0), ("r-1", "r-0", 200.0), ("r-2", "r-5", 200.0),
                               ("r-4", "r-1", 300.0), ("r-3", "r-0", 300.0)]
    assert lineage(h) == {"r-0": [(1, "r-4", 100.0, 1, 6)], "r-1": [(1, "r-5", 100.0, 2, 3), (2, "r-0", 200.0, 3, 6)],
                          "r-2": [(2, "r-5", 200.0, 3, 6)], "r-3": [(3, "r-0", 300.0, 4, 5)], "r-4": [(3, "r-1", 300.0, 5, 5)],
                          "r-5": []}
    assert all(record.status is ml.Status.FINISHED for record in h.supervisor.records)
    # Each run trained every step once: a run that took over goes on from the copied checkpoint's step.
    assert [run.command.count("--resume") for run in h.launcher.started] == [0] * 6 + [1] * 18
    # ... and from the copied checkpoint's step, with its new values.
    r4 = [run for run in h.launcher.started if run.run_id == "r-4"][-1]
    assert (h.supervisor.by_id["r-4"].sessions[-1].from_step, r4.request.run.values[0][2]) == (300.0, 5)


@pytest.mark.parametrize("changes", [dict(concurrency=1), dict(concurrency=3), dict(concurrency=6),
                                     dict(order=[5, 3, 1, 4, 2, 0]), dict(order=[5, 3, 1, 4, 2, 0], concurrency=4)])
def test_the_takeovers_are_the_same_whatever_runs_at_once_and_whatever_order_runs_arrive_in(tmp_path, changes):
    assert lineage(sweep(tmp_path, **changes)) == lineage(sweep(tmp_path / "reference"))


@pytest.mark.parametrize("dies_after", [3, 11, 26, 40, 57, 75])
def test_resume_after_any_interruption_takes_the_population_up_where_it_was(tmp_path, dies_after):
    reference = sweep(tmp_path / "reference")
    h = Harness(tmp_path, config(), watcher=FakeWatcher(), seed=7)
    trainer = Trainer(h)
    for _ in range(dies_after):
        trainer.tick()
    copied = list(h.results.taken)
    again = h.taken_up(config(), seed=7, watcher=FakeWatcher())
    Trainer(again).until()
    assert lineage(again) == lineage(reference)
    # Nothing copied twice: the copies after the resume are the reference's that were not made before it.
    assert copied + again.results.taken[len(copied):] == reference.results.taken
    assert all(record.status is ml.Status.FINISHED for record in again.supervisor.records)


def test_a_copy_made_but_not_recorded_when_the_sweep_died_is_made_again_the_same(tmp_path):
    reference = sweep(tmp_path / "reference")
    h = Harness(tmp_path, config(), watcher=FakeWatcher(), seed=7)
    trainer = Trainer(h)
    trainer.tick()
    while not h.results.taken:
        before = h.records_json()  # the state file as it was before the tick that copied
        trainer.tick()
    # The sweep died after that tick's copies, before it recorded them: --resume reads the older state file.
    again = Harness(tmp_path, config(), previous=before, results=h.results, watcher=FakeWatcher(), seed=7)
    again.clock.now = h.clock()
    again.supervisor.take_up()
    Trainer(again).until()
    assert lineage(again) == lineage(reference)
    first = reference.results.taken[:2]
    assert again.results.taken == first + reference.results.taken  # the first two again: the same donors, the same steps


def test_a_population_larger_than_the_slots_trains_in_turns_to_each_interval(tmp_path):
    h = sweep(tmp_path)  # 6 runs, 2 slots
    # Every run paused at every interval, and no run went past an interval before all six were there.
    sessions = {record.run.run_id: [(s.from_step, s.saved) for s in record.sessions] for record in h.supervisor.records}
    assert sessions["r-5"] == [(None, 100.0), (100.0, 200.0), (200.0, 300.0), (300.0, 400.0)]
    assert sessions["r-3"] == [(None, 100.0), (100.0, 200.0), (200.0, 300.0), (300.0, 400.0)]
    # The slots' turns: the runs of one interval all started before any run of the next.
    order = [run.run_id for run in h.launcher.started]
    assert order == ["r-0", "r-1", "r-2", "r-3", "r-4", "r-5"] * 4


# -- the copy, on disk --------------------------------------------------------------------------

def status_entry(run_dir, step, final_at_model=True):
    """An entry of training_status.json as mlagents-learn 1.1.0 writes it (read off a real run): a checkpoint's
    model is <run>/<B>/<B>-<step>.onnx, the final one, written when a run stops, <run>/<B>.onnx."""
    return {"steps": step, "file_path": f"{run_dir}/B.onnx" if final_at_model else f"{run_dir}/B/B-{step}.onnx",
            "reward": 0.5, "creation_time": 1.0, "auxillary_file_paths": [f"{run_dir}/B/B-{step}.pt"]}


def make_run_folder(root, run_id, step, own=b"", buffer=False):
    run_dir = root / run_id
    (run_dir / "B").mkdir(parents=True)
    (run_dir / "run_logs").mkdir()
    (run_dir / "B" / "checkpoint.pt").write_bytes(b"checkpoint of " + run_id.encode() + own)
    (run_dir / "B" / f"B-{step}.pt").write_bytes(b"pt of " + run_id.encode())
    (run_dir / "B.onnx").write_bytes(b"model of " + run_id.encode())
    if buffer:
        (run_dir / "B" / "last_replay_buffer.hdf5").write_bytes(b"buffer of " + run_id.encode())
    listed = [status_entry(f"{root}/{run_id}", step - 1000, False), status_entry(f"{root}/{run_id}", step)]
    status = {"B": {"checkpoints": listed, "final_checkpoint": listed[-1]},
              "metadata": {"stats_format_version": "0.3.0", "mlagents_version": "1.1.0", "torch_version": "2.13.0+cpu"}}
    (run_dir / "run_logs" / "training_status.json").write_text(json.dumps(status))
    return run_dir


def snapshot(folder):
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def test_a_takeover_copies_the_checkpoint_and_rewrites_the_runs_record_to_name_it(tmp_path):
    [run, donor] = ml.expand(ml.parse_config("behaviors:\n  B:\n    x: {opt_values: [1, 2]}\n"), "r")
    root = tmp_path / "results"
    make_run_folder(root, "r-0", 2600, own=b" (own)", buffer=True)
    make_run_folder(root, "r-1", 2800)
    theirs = snapshot(root / "r-1")
    ml.Results(root).take_over(run, donor, 2800)
    assert snapshot(root / "r-1") == theirs  # the donor's folder is untouched
    mine = root / "r-0"
    assert (mine / "B" / "checkpoint.pt").read_bytes() == b"checkpoint of r-1"
    assert (mine / "B" / "B-2800.pt").read_bytes() == b"pt of r-1"
    assert (mine / "B.onnx").read_bytes() == b"model of r-1"
    assert not (mine / "B" / "last_replay_buffer.hdf5").exists()  # its own buffer is of weights it no longer has
    status = json.loads((mine / "run_logs" / "training_status.json").read_text())
    final = {"steps": 2800, "file_path": f"{root}/r-0/B.onnx", "reward": 0.5, "creation_time": 1.0,
             "auxillary_file_paths": [f"{root}/r-0/B/B-2800.pt"]}
    assert status["B"] == {"checkpoints": [status_entry(f"{root}/r-0", 1600, False), status_entry(f"{root}/r-0", 2600),
                                           final], "final_checkpoint": final}
    assert status["metadata"]["mlagents_version"] == "1.1.0"
    assert "r-1" not in json.dumps(status)  # ML-Agents prunes what its record lists: never the donor's files
    assert ml.Results(root).steps_saved(run, {}) == 2800.0  # --resume trains on from the copied checkpoint's step
    assert not list(root.rglob("*.sweep-copy"))
    ml.Results(root).take_over(run, donor, 2800)  # made again (the sweep died before recording it): the same
    assert json.loads((mine / "run_logs" / "training_status.json").read_text())["B"]["final_checkpoint"] == final


def test_a_sac_replay_buffer_goes_with_the_checkpoint(tmp_path):
    [run, donor] = ml.expand(ml.parse_config("behaviors:\n  B:\n    x: {opt_values: [1, 2]}\n"), "r")
    root = tmp_path / "results"
    make_run_folder(root, "r-0", 2600)
    make_run_folder(root, "r-1", 2800, buffer=True)
    ml.Results(root).take_over(run, donor, 2800)
    assert (root / "r-0" / "B" / "last_replay_buffer.hdf5").read_bytes() == b"buffer of r-1"


def test_a_takeover_that_cannot_copy_leaves_the_run_as_it_was(tmp_path):
    [run, donor] = ml.expand(ml.parse_config("behaviors:\n  B:\n    x: {opt_values: [1, 2]}\n"), "r")
    root = tmp_path / "results"
    make_run_folder(root, "r-0", 2600, own=b" (own)")
    make_run_folder(root, "r-1", 2800)
    (root / "r-1" / "B" / "checkpoint.pt").unlink()  # as a file that cannot be read
    mine = snapshot(root / "r-0")
    with pytest.raises(OSError):
        ml.Results(root).take_over(run, donor, 2800)
    assert snapshot(root / "r-0") == mine
    assert not list(root.rglob("*.sweep-copy"))


def test_a_takeover_that_fails_goes_on_with_its_own_checkpoint_and_says_so(tmp_path):
    h = Harness(tmp_path, config(), watcher=FakeWatcher(), seed=7)

    def refuse(run, donor, step):
        raise OSError(28, "No space left on device")

    h.results.take_over = refuse
    Trainer(h).until()
    assert [w for w in h.warnings() if "cannot take over" in w] == [f"warning: {line}" for line in [
        "r-1 cannot take over r-5's checkpoint (No space left on device): it goes on with its own, unchanged",
        "r-0 cannot take over r-4's checkpoint (No space left on device): it goes on with its own, unchanged",
        "r-1 cannot take over r-5's checkpoint (No space left on device): it goes on with its own, unchanged",
        "r-0 cannot take over r-4's checkpoint (No space left on device): it goes on with its own, unchanged",
        "r-1 cannot take over r-4's checkpoint (No space left on device): it goes on with its own, unchanged",
        "r-0 cannot take over r-4's checkpoint (No space left on device): it goes on with its own, unchanged"]]
    assert all(not record.lineage and record.status is ml.Status.FINISHED for record in h.supervisor.records)
    assert [record.run.values[0][2] for record in h.supervisor.records] == [1, 2, 3, 4, 5, 6]


# -- lineage in the records, and in the summary -------------------------------------------------

def test_the_lineage_is_kept_in_the_state_file_and_read_back(tmp_path):
    h = sweep(tmp_path)
    data = h.records_json()
    assert data["runs"][1]["lineage"] == [
        {"interval": 1, "donor": "r-5", "step": 100.0, "session": 1, "before": [["B", "learning_rate", "2", None]],
         "after": [["B", "learning_rate", "3", None]]},
        {"interval": 2, "donor": "r-0", "step": 200.0, "session": 2, "before": [["B", "learning_rate", "3", None]],
         "after": [["B", "learning_rate", "6", None]]}]
    records = ml.read_records(data, h.store.state_path, h.plan.make_run, h.policy)
    assert [[e.to_json() for e in record.lineage] for record in records] == [run["lineage"] for run in data["runs"]]
    # Its points since its last takeover are its own: the windows of its sessions from then on.
    r1 = records[1]
    assert r1.windows() == tuple((s.began, s.ended) for s in r1.sessions[2:])
    bad = json.loads(json.dumps(data))
    bad["runs"][1]["lineage"][0]["interval"] = 0
    with pytest.raises(ml.SweepError, match=r"is malformed: runs\[1\]\.lineage\[0\]\.interval or session is out of range"):
        ml.read_records(bad, h.store.state_path, h.plan.make_run, h.policy)


def test_the_summary_names_the_best_runs_model_and_the_schedule_it_was_trained_under(tmp_path):
    h = sweep(tmp_path)
    for record in h.supervisor.records:
        record.last_step = 400.0
    h.lines()
    h.summary()
    text = "\n".join(h.lines())
    # Every run ends with learning_rate 5 or 6 and scores it; r-0 is the best of those at 6 by the tie rule.
    assert "- r-1: at 100 took over r-5's checkpoint (learning_rate 2 -> 3); at 200 took over r-0's checkpoint " \
           "(learning_rate 3 -> 6)" in text
    results = h.settings.results_dir
    assert (f"Best run: r-0 (learning_rate=6), score 6 (the mean of its last 3 points of {METRIC}); its config: "
            f"{h.settings.sweep_dir / 'configs' / 'r-0.yaml'}; its model: {results / 'r-0' / 'B.onnx'}; the schedule of "
            "values it was trained under: steps 0-100 r-4 (learning_rate=5); 100-400 r-0 (learning_rate=6)") in text
    csv_rows = (h.settings.sweep_dir / "summary.csv").read_text().splitlines()
    assert csv_rows[0].endswith(",lineage,note")


def test_a_schedule_follows_the_weights_back_through_every_run_they_came_from():
    def record(run_id, value, *lineage):
        run = ml.Run(0, run_id, {}, [("B", "lr", value)], 1, [], 1, ["B"])
        return ml.RunRecord(run, lineage=[ml.Exploit(k, donor, step, (("B", "lr", before),), (("B", "lr", after),),
                                                     ((None,), (None,)), 1) for k, donor, step, before, after in lineage])
    records = {r.run.run_id: r for r in [
        record("a", 1),                                  # never took over
        record("b", 4, (1, "a", 100.0, 2, 3), (3, "c", 300.0, 3, 4)),
        record("c", 9, (2, "b", 200.0, 5, 9)),           # took over b at 200, when b's weights were a's from 100
    ]}
    stretches = ml.schedule("b", records)
    assert [(s.start, s.run_id, s.values[0][2]) for s in stretches] == [
        (0.0, "a", 1), (100.0, "b", 3), (200.0, "c", 9), (300.0, "b", 4)]
    assert ml.schedule_text(stretches, 400.0) == "steps 0-100 a (lr=1); 100-200 b (lr=3); 200-300 c (lr=9); 300-400 b (lr=4)"


def test_a_dry_run_says_what_the_population_will_do(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("c.yaml").write_text(config(rule="{tag: Score, rule: pbt, interval: 100, perturb: [0.5, 2]}"))
    assert ml.main(["c.yaml", "--trainer", shlex.join([sys.executable, STAND_IN]), "--dry-run", "--num-envs", "2",
                    "--env=Fake"]) == 0
    assert ("population based training (rule: pbt): a population of 6 runs, 2 at a time: each waits, paused, for the "
            "others to reach each interval; every 100 steps the worst 2 take over checkpoints of the best 2 and explore "
            "their values (numbers times 0.5 or 2, list values moved to a neighbour, drawn afresh with a chance of 0.25); "
            "every run trains to max_steps") in capsys.readouterr().out


# -- with the stand-in trainer: real processes, real files, a real TensorBoard --------------------

@pytest.mark.skipif(os.name != "posix", reason="the stand-in's signals")
def test_a_run_takes_over_a_checkpoint_and_the_trainer_resumes_from_it_with_its_new_values(real):
    folder, board = real
    state = json.dumps(str(folder / "results" / "p-sweep" / "sweep_state.json"))
    # Four runs, two at a time; each point's Score is the run's learning_rate. At steps 300 and 600 the worst run
    # takes over the best one's checkpoint, its learning rate moved down a place (perturb 0.8, no resampling).
    # Each run holds at an interval until the sweep pauses it: no late poll lets it train past one.
    path = folder / "pbt.yaml"
    path.write_text("behaviors:\n  B:\n    max_steps: 900\n    summary_freq: 100\n"
                    "    hyperparameters:\n      learning_rate: {opt_values: [1, 2, 3, 4]}\n"
                    f"    opt_stop: {{tag: {TAG}, rule: pbt, interval: 300, perturb: [0.8], resample: 0}}\n"
                    f"stand_in:\n  duration: 1\n  points: 9\n  steps: 900\n  hold: {{steps: [300, 600], sweep_state: {state}}}\n"
                    f"  scalars: {{B: {{{TAG}: {{config: hyperparameters.learning_rate}}}}}}\n")
    argv = [str(path), "--trainer", shlex.join([sys.executable, STAND_IN]), "--results-dir", "results", "--run-id", "p",
            "--tensorboard-url", board.url, "--poll-interval", "0.5", "--num-envs", "2", "--env=Fake",
            "--base-port", str(free_port()), "--metric", TAG, "--seed", "3"]
    assert ml.main(argv) == 0
    runs = {run["run_id"]: run for run in json.loads((folder / "results" / "p-sweep" / "sweep_state.json").read_text())["runs"]}
    assert {run_id: [(e["interval"], e["donor"], e["step"], e["before"][0][2], e["after"][0][2]) for e in run["lineage"]]
            for run_id, run in runs.items()} == {"p-0": [(1, "p-3", 300.0, "1", "3")], "p-1": [(2, "p-3", 600.0, "2", "3")],
                                                 "p-2": [], "p-3": []}
    assert all(run["status"] == "finished" for run in runs.values())
    records = [record for record in read_records(folder / "records") if record["run_id"] == "p-0"]
    # p-0: fresh to 300, then from p-3's checkpoint at 300 (what its trainer loaded), on to 900 with learning_rate 3.
    assert [(record["resumed"], record["loaded"]) for record in records] == [
        (False, None), (True, "stand-in checkpoint p-3 300"), (True, "stand-in checkpoint p-0 600")]
    assert records[-1]["last_step"] == 900 and records[-1]["exit_code"] == 0
    assert yaml.safe_load((folder / "results" / "p-0" / "configuration.yaml").read_text())[
        "behaviors"]["B"]["hyperparameters"]["learning_rate"] == 3
    status = json.loads((folder / "results" / "p-0" / "run_logs" / "training_status.json").read_text())
    assert status["B"]["final_checkpoint"]["steps"] == 900
    # Its own points since it took over are of its new value, from the copied checkpoint's step on.
    served = [(step, value) for step, value in scalars(board.url, "p-0/B", TAG) if step > 300]
    assert served[-6:] == [(400, 3.0), (500, 3.0), (600, 3.0), (700, 3.0), (800, 3.0), (900, 3.0)]
    summary = (folder / "results" / "p-sweep" / "summary.md").read_text()
    assert "- p-0: at 300 took over p-3's checkpoint (learning_rate 1 -> 3)" in summary
    assert ("Best run: p-3 (learning_rate=4), score 4 (the mean of its last 3 points of Score); its config: "
            "results/p-sweep/configs/p-3.yaml; its model: results/p-3/B.onnx; the schedule of values it was trained "
            "under: steps 0-900 p-3 (learning_rate=4)") in summary


def test_a_donor_whose_pause_left_no_record_still_hands_over_its_step(tmp_path):
    # mlagents-learn that fails closing its workers after it saved writes no training_status.json (see
    # Supervisor.reap): the run's record then names the checkpoint at the step the sweep read from the file names.
    [run, donor] = ml.expand(ml.parse_config("behaviors:\n  B:\n    x: {opt_values: [1, 2]}\n"), "r")
    root = tmp_path / "results"
    make_run_folder(root, "r-0", 2600)
    make_run_folder(root, "r-1", 2800)
    (root / "r-1" / "run_logs" / "training_status.json").unlink()
    ml.Results(root).take_over(run, donor, 2900)
    status = json.loads((root / "r-0" / "run_logs" / "training_status.json").read_text())
    assert (status["B"]["final_checkpoint"]["steps"], status["B"]["final_checkpoint"]["file_path"]) == (2900, str(root / "r-0" / "B.onnx"))
    assert ml.Results(root).steps_saved(run, {}) == 2900.0
    assert (root / "r-0" / "B" / "checkpoint.pt").read_bytes() == b"checkpoint of r-1"


def test_a_seed_option_keeps_each_runs_seed_through_a_takeover(tmp_path):
    text = config(values="[1, 2, 3, 4]", extra="").replace("behaviors:", "env_settings:\n  seed: {opt_values: [11, 12]}\nbehaviors:", 1)
    h = sweep(tmp_path, text)
    for record in h.supervisor.records:
        assert record.run.values[1][1] == "seed"  # the second option (the first is the learning rate)
        seed = record.run.values[1][2]
        assert record.run.seed == seed and all(e.before[1][2] == e.after[1][2] == seed for e in record.lineage)
    assert any(record.lineage for record in h.supervisor.records)
