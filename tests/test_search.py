"""Search beyond the grid: ranges in the config, random and TPE sampling, and asynchronous successive halving.

The pure parts from tables (a range's checks, its values, the samplers' draws);
then whole searches over the supervisor's seams on the fake clock, with a
scripted sampler where a test needs to know what each trial scores; then one
sweep of real processes (the stand-in trainer, a real TensorBoard).
"""

import csv
import json
import math
import os
import shlex
import sys

import optuna
import pytest

import mlagents_learn as ml
from fakes import FakeLauncher, FakeWatcher, Harness
from fakes import settings as make_settings
from helpers import STAND_IN, free_port, read_records, stand_in_search

TAG = "Score"


def parse(text):
    return ml.SweepPlan(ml.parse_config(text), "r")


# -- ranges in the config ----------------------------------------------------------------------

@pytest.mark.parametrize("spec, expected", [
    ("{opt_range: [32, 512]}", ml.Range(32.0, 512.0, integer=True)),
    ("{opt_range: [32, 512], step: 32}", ml.Range(32.0, 512.0, integer=True, step=32.0)),
    ("{opt_range: [1.0e-5, 1.0e-2], log: true}", ml.Range(1e-5, 1e-2, log=True)),
    ("{opt_range: [0.1, 0.3], step: 0.05}", ml.Range(0.1, 0.3, step=0.05)),
    ("{opt_range: [1, 2.5]}", ml.Range(1.0, 2.5)),  # one float bound: a range of floats
    ("{opt_range: [1, 10], log: true}", ml.Range(1.0, 10.0, integer=True, log=True)),
    ("{opt_range: [0.1, 0.3], log: false}", ml.Range(0.1, 0.3)),
])
def test_a_range_is_of_integers_when_both_bounds_are_and_takes_log_or_step(spec, expected):
    plan = parse(f"behaviors:\n  B:\n    hyperparameters:\n      x: {spec}\n")
    assert [option.range for option in plan.options] == [expected] and plan.sampled


@pytest.mark.parametrize("spec, message", [
    ("{opt_range: [5, 5]}", "opt_range's low 5 is not below its high 5"),
    ("{opt_range: [0.3, 0.1]}", "opt_range's low 0.3 is not below its high 0.1"),
    ("{opt_range: [0, 1], log: true}", "opt_range on a log scale must be above 0, not from 0"),
    ("{opt_range: [-1.0, 1.0], log: true}", "opt_range on a log scale must be above 0, not from -1.0"),
    ("{opt_range: [a, b]}", "opt_range is not two numbers: [a, b]"),
    ("{opt_range: [1, 2, 3]}", "opt_range is not two numbers: [1, 2, 3]"),
    ("{opt_range: 3}", "opt_range is not two numbers: 3"),
    ("{opt_range: [true, 2]}", "opt_range is not two numbers: [true, 2]"),
    ("{opt_range: [32, 512], step: 100}", "opt_range's step 100 does not fit from 32 to 512"),
    ("{opt_range: [32, 512], step: 1.5}", "opt_range's step is not a whole number above 0: 1.5"),
    ("{opt_range: [0.1, 0.3], step: 0}", "opt_range's step is not a number above 0: 0"),
    ("{opt_range: [0.1, 0.3], step: 0.5}", "opt_range's step 0.5 does not fit from 0.1 to 0.3"),
    ("{opt_range: [0.1, 0.3], log: yes please}", "opt_range's log is not true or false: yes please"),
    ("{opt_range: [1.0e-5, 1.0], log: true, step: 0.1}", "opt_range takes log or step, not both"),
    ("{opt_range: [1, 2], low: 1}", "opt_range has other keys beside it: low"),
    ("{opt_range: [1, 2], opt_values: [1]}", "opt_values and opt_range in one mapping"),
])
def test_a_bad_range_is_one_line_naming_where_it_is(spec, message):
    with pytest.raises(ml.SweepError) as caught:
        ml.parse_config(f"behaviors:\n  B:\n    hyperparameters:\n      x: {spec}\n", "c.yaml")
    assert str(caught.value).startswith(f"{message} (c.yaml: behaviors.B.hyperparameters.x.opt_range): ")
    assert "\n" not in str(caught.value)


def test_a_whole_behavior_cannot_be_a_range():
    with pytest.raises(ml.SweepError, match=r"^behavior 'B' is a range of numbers \(c.yaml: behaviors.B.opt_range\)"):
        ml.parse_config("behaviors:\n  B: {opt_range: [1, 2]}\n", "c.yaml")


@pytest.mark.parametrize("domain, raw, value", [
    (ml.Range(32, 512, integer=True, step=32), 100.0, 96),
    (ml.Range(32, 512, integer=True, step=32), 1000.0, 512),      # clamped to the range
    (ml.Range(32, 512, integer=True), 77.6, 78),
    (ml.Range(1e-5, 1e-2, log=True), 0.000316227766, 0.0003162),  # kept to 4 significant digits
    (ml.Range(1e-5, 1e-2, log=True), 1.00004e-5, 1.0e-5),
    (ml.Range(0.1, 0.3, step=0.05), 0.24, 0.25),
    (ml.Range(0.1, 0.3, step=0.1), 0.2, 0.2),                     # 0.30000000000000004 is 0.3
    (ml.Range(0.1, 0.3), 0.099999, 0.1),
])
def test_a_value_of_a_range_is_inside_it_on_its_step_and_of_its_kind(domain, raw, value):
    got = ml.range_value(domain, raw)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize("domain", [
    ml.Range(32, 512, integer=True, step=32), ml.Range(1, 1000, integer=True, log=True), ml.Range(1e-5, 1e-2, log=True),
    ml.Range(0.1, 0.3, step=0.05), ml.Range(-1.0, 1.0), ml.Range(0, 3, integer=True)])
def test_drawn_values_stay_in_the_range_on_its_grid_and_spread_over_it(domain):
    chooser = ml.seeded(7, 0)
    drawn = [ml.draw(domain, chooser) for _ in range(400)]
    assert all(domain.low <= value <= domain.high for value in drawn)
    assert all(isinstance(value, int) for value in drawn) == domain.integer
    if domain.step is not None:
        assert all(abs((value - domain.low) / domain.step - round((value - domain.low) / domain.step)) < 1e-9 for value in drawn)
    # Spread: on its own scale, the lowest and highest quarter of the range are both drawn.
    scale = (lambda v: math.log(v)) if domain.log else (lambda v: v)
    low, high = scale(domain.low), scale(domain.high)
    assert min(scale(v) for v in drawn) < low + (high - low) / 4 and max(scale(v) for v in drawn) > high - (high - low) / 4


# -- the samplers ------------------------------------------------------------------------------

SPACE = ("behaviors:\n  B:\n    hyperparameters:\n"
         "      learning_rate: {opt_range: [1.0e-5, 1.0e-2], log: true}\n"
         "      batch_size: {opt_values: [64, 128]}\n"
         "    network_settings:\n      hidden_units: {opt_range: [32, 256], step: 32}\n")
LISTS = ("behaviors:\n  B:\n    hyperparameters:\n      beta: {opt_values: [0.001, 0.005, 0.01]}\n"
         "      epsilon: {opt_values: {narrow: 0.1, wide: 0.3}}\n")


def test_a_random_draw_depends_on_the_seed_and_the_trial_number_only():
    plan = parse(SPACE)
    sampler = ml.RandomSampler(plan.options, seed=3)
    first = [sampler.sample(number, []) for number in range(5)]
    assert [sampler.sample(number, [ml.Trial(first[0], "complete", 1.0)]) for number in range(5)] == first
    assert ml.RandomSampler(plan.options, seed=3).sample(4, []) == first[4]
    assert ml.RandomSampler(plan.options, seed=4).sample(4, []) != first[4]
    assert len(set(first)) == 5


def test_a_random_search_over_lists_draws_every_point_once_before_any_twice():
    plan = parse(LISTS)
    sampler = ml.RandomSampler(plan.options, seed=11)
    trials = []
    for number in range(6):
        trials.append(ml.Trial(sampler.sample(number, trials), "running"))
    assert sorted(trial.values for trial in trials) == sorted(
        (beta, epsilon) for beta in (0.001, 0.005, 0.01) for epsilon in (0.1, 0.3))
    with pytest.raises(ValueError):
        sampler.sample(6, trials)


def test_a_trial_drawn_from_a_labelled_list_keeps_its_label():
    plan = parse(LISTS)
    spec = plan.spec((0.005, 0.3), 4)
    assert spec.names == (None, "wide") and spec.index == 4
    assert plan.make_run(spec).describe() == "beta=0.005 epsilon=wide"


def test_tpe_is_told_every_trial_as_optuna_keeps_it_and_proposes_the_same_for_the_same_records():
    plan = parse(SPACE)
    sampler = ml.TpeSampler(plan.options, plan.param_names(), seed=5, mode="max", budget=12)
    assert sampler.startup == 4  # a third of 12
    trials = [ml.Trial((1e-3, 64, 96), "complete", 1.5), ml.Trial((1e-4, 128, 32), "pruned", None, ((1000.0, 0.2),)),
              ml.Trial((3e-3, 64, 256), "running"), ml.Trial((5e-3, 128, 64), "failed")]
    study = sampler.space.study("maximize")
    sampler.space.add(study, trials)
    states = [trial.state.name for trial in study.trials]
    assert states == ["COMPLETE", "PRUNED", "RUNNING", "FAIL"]
    assert study.trials[0].params == {"learning_rate": 1e-3, "batch_size": "64", "hidden_units": 96}
    assert study.trials[1].intermediate_values == {1000: 0.2} and study.best_value == 1.5
    drawn = sampler.sample(7, trials)
    assert drawn == ml.TpeSampler(plan.options, plan.param_names(), seed=5, mode="max", budget=12).sample(7, trials)
    learning_rate, batch_size, hidden_units = drawn
    assert 1e-5 <= learning_rate <= 1e-2 and float(f"{learning_rate:.4g}") == learning_rate
    assert batch_size in (64, 128) and hidden_units in range(32, 257, 32) and isinstance(hidden_units, int)


def test_tpe_over_lists_never_proposes_a_point_twice_even_with_every_trial_running():
    plan = parse(LISTS)
    sampler = ml.TpeSampler(plan.options, plan.param_names(), seed=2, mode="max", budget=6)
    trials = []
    for number in range(6):
        trials.append(ml.Trial(sampler.sample(number, trials), "running"))
    assert len({trial.values for trial in trials}) == 6


def test_tpe_after_its_random_start_draws_near_the_best_trials():
    # One option, scored by how close it is to 3e-4 on the log scale: TPE's proposals after the start
    # must be closer, on the whole, than random ones.
    plan = parse("behaviors:\n  B:\n    hyperparameters:\n      learning_rate: {opt_range: [1.0e-6, 1.0], log: true}\n")
    score = lambda lr: -abs(math.log10(lr) - math.log10(3e-4))  # noqa: E731
    tpe = ml.TpeSampler(plan.options, plan.param_names(), seed=1, mode="max", budget=30)
    random_search = ml.RandomSampler(plan.options, seed=1)
    found = {}
    for name, sampler in (("tpe", tpe), ("random", random_search)):
        trials = []
        for number in range(30):
            values = sampler.sample(number, trials)
            trials.append(ml.Trial(values, "complete", score(values[0])))
        found[name] = sorted(trial.value for trial in trials[10:])
    assert sum(found["tpe"]) > sum(found["random"])
    median = lambda values: values[len(values) // 2]  # noqa: E731
    assert median(found["tpe"]) > median(found["random"]) + 0.5, found  # half a decade closer, at least


# -- searches over the supervisor's seams (fake clock) -------------------------------------------

class Scripted:
    """A sampler that proposes the values the test lists, trial by trial; it records what it was told."""

    def __init__(self, values):
        self.values, self.told = list(values), []

    def sample(self, number, trials):
        self.told.append((number, list(trials)))
        return (self.values[number],)


def search_config(halving=True, max_steps=2700):
    rule = f"    opt_stop: [{{tag: {TAG}, rule: halving, step: 100, factor: 3}}]\n" if halving else ""
    return (f"behaviors:\n  B:\n    max_steps: {max_steps}\n    summary_freq: 100\n{rule}"
            "stand_in:\n  score: {opt_range: [0.0, 1.0]}\n")


class Search:
    """A search on the fake clock whose trials gain `speed` steps a second and score their own value."""

    def __init__(self, tmp_path, scores, concurrency=1, budget=None, halving=True, previous=None, results=None,
                 sampler=None, speeds=None) -> None:
        self.watcher, self.launcher = FakeWatcher(), FakeLauncher()
        self.sampler = sampler or Scripted(scores)
        self.h = Harness(tmp_path, search_config(halving), launcher=self.launcher, watcher=self.watcher,
                         concurrency=concurrency, tensorboard_url="http://board", metric=TAG, sampler=self.sampler,
                         budget=len(scores) if budget is None else budget, previous=previous, results=results)
        self.speeds = speeds or {}
        self.step = {}
        self.idle = []  # (tick, running, trials proposed, paused) whenever a slot was free

    def score(self, run_id):
        return self.h.supervisor.by_id[run_id].run.values[0][2]

    def points(self, run_id):
        last = int(self.step.get(run_id, 0.0) // 100) * 100
        return [(float(s), self.score(run_id)) for s in range(100, last + 1, 100)]

    def tick(self):
        for fake in self.launcher.started:
            if fake.code is None and fake.asked:
                fake.end(0)  # paused or stopped: it saves where it is
            elif fake.code is None:
                speed = self.speeds.get(fake.run_id, 100.0)
                self.step[fake.run_id] = min(self.step.get(fake.run_id, 0.0) + speed * 0.2, 2700)
                fake.step = self.step[fake.run_id]
                if self.step[fake.run_id] >= 2700:
                    fake.end(0)
        self.watcher.serve(self.h.clock(), {(run_id, "B", TAG): self.points(run_id) for run_id in self.h.supervisor.by_id})
        return self.h.tick(0.2)

    def run(self, limit=20000, until=None):
        for count in range(limit):
            over = self.tick()
            records = self.h.supervisor.records
            running = sum(record.status is ml.Status.RUNNING for record in records)
            if running < self.h.settings.concurrency:
                self.idle.append((count, running, len(records), sum(record.status is ml.Status.PAUSED for record in records)))
            if over or (until is not None and until()):
                return
        raise AssertionError("the search did not end")

    def launches(self):
        """Each launch as run id, with + when it resumed from its checkpoint."""
        return [fake.run_id + ("+" if fake.command[-1] == "--resume" else "") for fake in self.launcher.started]

    def outcome(self):
        states = self.h.supervisor.by_id
        return {run_id: (states[run_id].status.value, states[run_id].memory.passed if states[run_id].memory else 0)
                for run_id in sorted(states, key=lambda run_id: int(run_id.split("-")[1]))}


def test_a_search_keeps_every_slot_busy_and_proposes_exactly_its_budget(tmp_path):
    search = Search(tmp_path, [0.1 * n for n in range(7)], concurrency=3, halving=False)
    search.run()
    assert search.launches() == [f"r-{n}" for n in range(7)]
    assert all(status == ("finished", 0) for status in search.outcome().values())
    # A slot is free only once nothing is left to propose: the last two runs train alone.
    assert all(proposed == 7 for _, _, proposed, _ in search.idle)
    # Each trial was drawn knowing the trials before it, the running ones as running.
    told = dict(search.sampler.told)
    assert [trial.state for trial in told[2]] == ["running", "running"]  # drawn in the same tick as r-0 and r-1
    # A score is a mean of points (see final_score): 0.1 three times is 0.10000000000000002.
    assert [(trial.state, round(trial.value, 12)) for trial in told[3]] == [("complete", 0.0), ("complete", 0.1), ("complete", 0.2)]
    assert (tmp_path / "results" / "r-sweep" / "config_info.txt").read_text().count("\n- stand_in\n") == 7


def test_asha_promotes_the_best_of_each_rung_as_soon_as_it_has_company_and_trains_one_to_the_end(tmp_path):
    # One slot, factor 3, rungs at steps 100, 300 and 900 (2700 is the end). The paper's rule, by hand:
    # r-2 (0.9) is the best of 3 at rung 1 and goes on at once; r-4 (0.7) once 6 have reached rung 1;
    # then the budget is spent, and the best of the highest rung reached (r-2) goes on to the end.
    search = Search(tmp_path, [0.5, 0.2, 0.9, 0.1, 0.7, 0.3])
    search.run()
    assert search.launches() == ["r-0", "r-1", "r-2", "r-2+", "r-3", "r-4", "r-5", "r-4+", "r-2+", "r-2+"]
    assert search.outcome() == {"r-0": ("stopped", 0), "r-1": ("stopped", 0), "r-2": ("finished", 3),
                                "r-3": ("stopped", 0), "r-4": ("stopped", 1), "r-5": ("stopped", 0)}
    reasons = {record.run.run_id: record.stop_reason for record in search.h.supervisor.records}
    assert reasons["r-4"] == "asha: 2nd of 2 at step 300, not promoted before the search ended"
    assert reasons["r-0"] == "asha: 3rd of 6 at step 100, not promoted before the search ended"
    lines = search.h.lines()
    assert "r-2 goes on: asha: 1st of 3 at step 100, in the best 1" in lines
    assert "r-4 goes on: asha: 2nd of 6 at step 100, in the best 2" in lines
    assert "r-2 goes on: asha: the best of the highest rung reached (step 300) goes on to the end" in lines
    # The sampler heard how far each trial got: r-0 paused at rung 1, r-2 at rung 2, with their values there.
    told = dict(search.sampler.told)[5]
    assert told[0] == ml.Trial((0.5,), "pruned", None, ((100.0, 0.5),))
    assert told[2] == ml.Trial((0.9,), "pruned", None, ((100.0, 0.9), (300.0, 0.9)))


def test_asha_leaves_no_slot_idle_while_a_run_could_be_promoted_or_a_trial_started(tmp_path):
    scores = [0.31, 0.74, 0.12, 0.93, 0.55, 0.48, 0.67, 0.05, 0.88, 0.21, 0.62, 0.39]
    speeds = {f"r-{n}": speed for n, speed in enumerate([100, 300, 50, 120, 800, 100, 60, 200, 100, 90, 400, 150])}
    search = Search(tmp_path, scores, concurrency=3, speeds=speeds)
    search.run()
    factor = 3
    for tick, running, proposed, paused in search.idle:
        assert proposed == len(scores), (tick, running, proposed)  # a free slot while trials were left
    # At the end no paused run is left, and each paused run that ended was outside its rung's best.
    records = search.h.supervisor.records
    assert not any(record.status is ml.Status.PAUSED for record in records)
    for record in records:
        kept = record.memory
        if record.status is ml.Status.STOPPED:
            rung = kept.ended
            peers = sorted((other.memory.values[rung] for other in records if rung in other.memory.values), reverse=True)
            assert peers.index(kept.values[rung]) >= len(peers) // factor, record.run.run_id
    assert [record.status for record in records].count(ml.Status.FINISHED) >= 1
    best = max(records, key=lambda record: record.run.values[0][2])
    assert best.status is ml.Status.FINISHED


def test_asha_ranks_a_rung_by_value_and_breaks_ties_by_values_then_trial_never_by_arrival(tmp_path):
    # r-0 and r-2 tie at 0.5, r-1 is worse and r-3 worst and slow. r-2 is fast: it reaches rung 1 first and
    # waits; once three have reached it, one of them goes on: the tie goes to the lower number, r-0.
    search = Search(tmp_path, [0.5, 0.1, 0.5, 0.0], concurrency=3,
                    speeds={"r-0": 50.0, "r-1": 50.0, "r-2": 500.0, "r-3": 10.0})
    search.run(until=lambda: len(search.launcher.started) == 5)
    assert search.launches() == ["r-0", "r-1", "r-2", "r-3", "r-0+"]
    assert "r-0 goes on: asha: 1st of 3 at step 100, in the best 1" in search.h.lines()


def test_a_resumed_search_neither_repeats_nor_loses_a_trial(tmp_path):
    scores = [0.31, 0.74, 0.12, 0.93, 0.55, 0.48, 0.67, 0.05, 0.88]
    reference = Search(tmp_path / "whole", scores, concurrency=2)
    reference.run()
    # The same search, killed after five trials were proposed (two of them training), then resumed.
    first = Search(tmp_path / "cut", scores, concurrency=2)
    first.run(until=lambda: len(first.h.supervisor.records) == 5)
    assert sum(record.status is ml.Status.RUNNING for record in first.h.supervisor.records) >= 1
    for fake in first.launcher.started:  # what --resume does to a dead sweep's runs (reclaim): each saves and ends
        if fake.code is None:
            fake.interrupt()
    again = Search.__new__(Search)
    again.__dict__.update(first.__dict__)
    again.launcher = FakeLauncher()
    again.h = first.h.taken_up(search_config(), launcher=again.launcher, watcher=first.watcher,
                               tensorboard_url="http://board", metric=TAG)
    again.idle = []
    again.run()
    assert [record.run.run_id for record in again.h.supervisor.records] == [f"r-{n}" for n in range(9)]
    assert [record.run.values for record in again.h.supervisor.records] == [
        record.run.values for record in reference.h.supervisor.records]
    # Nothing trained twice from scratch: after the resume, runs of the first part only ever resumed.
    fresh = [fake.run_id for fake in first.launcher.started + again.launcher.started if fake.command[-1] != "--resume"]
    assert sorted(fresh, key=lambda run_id: int(run_id[2:])) == [f"r-{n}" for n in range(9)]
    assert again.outcome() == reference.outcome()


def test_the_search_budget_counts_what_was_proposed_before_a_resume_and_may_grow(tmp_path):
    first = Search(tmp_path, [0.1, 0.2, 0.3, 0.4], concurrency=2, halving=False, budget=2)
    first.run()
    assert len(first.h.supervisor.records) == 2
    again = first.h.taken_up(search_config(halving=False), tensorboard_url="http://board", metric=TAG)
    assert again.supervisor.policy.unproposed(again.supervisor.by_id) == 0
    more = Harness(tmp_path, search_config(halving=False), previous=first.h.records_json(), results=first.h.results,
                   sampler=first.sampler, budget=4, concurrency=2, tensorboard_url="http://board", metric=TAG)
    assert more.supervisor.policy.unproposed(more.supervisor.by_id) == 2
    assert more.supervisor.policy.propose(more.supervisor.by_id).index == 2


def test_a_trials_score_is_kept_in_its_record_and_read_back(tmp_path):
    search = Search(tmp_path, [0.25, 0.75], concurrency=2, halving=False)
    search.run()
    state = search.h.records_json()
    assert [run["score"] for run in state["runs"]] == [[2700.0, 0.25], [2700.0, 0.75]]
    records = ml.read_records(state, search.h.store.state_path, search.h.plan.make_run, search.h.policy)
    assert [record.score for record in records] == [(2700.0, 0.25), (2700.0, 0.75)]
    del state["runs"][0]["score"]  # a state file from before scores were kept
    assert ml.read_records(state, search.h.store.state_path, search.h.plan.make_run, search.h.policy)[0].score is None
    state["runs"][1]["score"] = [1, "high"]
    with pytest.raises(ml.SweepError, match=r"runs\[1\]\.score is not a step and a value"):
        ml.read_records(state, search.h.store.state_path, search.h.plan.make_run, search.h.policy)



# -- the command line ---------------------------------------------------------------------------

TRAINER = shlex.join([sys.executable, STAND_IN])


def test_tpe_without_optuna_is_one_line_saying_how_to_install_it_and_nothing_is_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.yaml").write_text(SPACE)
    monkeypatch.setitem(sys.modules, "optuna", None)  # what an import of a package that is not there does
    assert ml.main(["c.yaml", "--search", "tpe", "--num-trials", "4", "--trainer", TRAINER]) == 2
    python = os.path.basename(sys.executable)
    assert capsys.readouterr().err == (f"error: --search tpe needs Optuna, which this Python cannot import (command line): "
                                       f"{python} -m pip install optuna, or pass --search random\n")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["c.yaml"]


def test_a_dry_run_of_a_search_prints_its_space_and_budget(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.yaml").write_text(SPACE.replace("behaviors:\n  B:\n", "behaviors:\n  B:\n    max_steps: 5000\n"))
    assert ml.main(["c.yaml", "--search", "random", "--num-trials", "6", "--search-seed", "3", "--num-envs", "2",
                    "--env=Fake", "--trainer", TRAINER, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "random search: 6 trials, at most 2 at once, --search-seed 3;" in out
    assert ("the space:\n  learning_rate: numbers 1e-05 to 0.01, log scale\n  batch_size: one of 64, 128\n"
            "  hidden_units: integers 32 to 256, step 32\n") in out
    assert "at most 6 x 5000 = 30000 steps\n" in out
    assert list((tmp_path / "results" / "ppo-sweep" / "configs").iterdir()) == []  # no trial is drawn yet


def test_a_resumed_search_must_keep_its_kind_and_seed_but_may_raise_its_budget():
    before = {"repetitions": 1, "flags": [], "env_args": None, "shuffle": None, "runs": [], "config_sha256": "a",
              "search": ["tpe", 10, 7]}
    assert ml.sweep_changes(before, {**before, "search": ["tpe", 20, 7]}) is None
    assert ml.sweep_changes(before, {**before, "search": ["random", 10, 7]}) == (
        "it was --search tpe --search-seed 7, now --search random --search-seed 7")
    assert ml.sweep_changes(before, {**before, "search": ["tpe", 10, 8]}) == (
        "it was --search tpe --search-seed 7, now --search tpe --search-seed 8")
    assert ml.sweep_changes(before, {**before, "search": None}) == "it was --search tpe --search-seed 7, now a grid"


# -- real processes: the stand-in trainer and a real TensorBoard ------------------------------------

@pytest.mark.skipif(os.name != "posix", reason="the stand-in's signals")
def test_a_random_search_with_asha_trains_real_runs_pauses_and_promotes_them(real):
    tmp_path, board = real
    path = stand_in_search(tmp_path, "s")
    argv = [str(path), "--trainer", TRAINER, "--results-dir", "results", "--run-id", "s", "--search", "random",
            "--num-trials", "6", "--search-seed", "21", "--tensorboard-url", board.url, "--poll-interval", "0.5",
            "--num-envs", "3", "--env=Fake", "--base-port", str(free_port()), "--metric", TAG]
    assert ml.main(argv) == 0
    sweep = tmp_path / "results" / "s-sweep"
    state = json.loads((sweep / "sweep_state.json").read_text())
    # The trials are the sampler's draws for seed 21, in order: a draw depends on the seed and its number only.
    plan = ml.SweepPlan(ml.parse_config(path.read_text()), "s")
    drawn = [ml.RandomSampler(plan.options, 21).sample(number, [])[0] for number in range(6)]
    assert [run["run_id"] for run in state["runs"]] == [f"s-{n}" for n in range(6)]
    assert [float(run["values"][0][2]) for run in state["runs"]] == drawn
    with open(sweep / "summary.csv") as handle:
        rows = {row["run"]: row for row in csv.DictReader(handle)}
    # Whatever order they came in: of 6 at rung 1 (step 100), the best 2 go on; at rung 2 (step 300) the 2 are
    # too few for the rule, so once nothing else trains the better goes on to the end.
    ranked = sorted(range(6), key=lambda n: -drawn[n])
    expected = {f"s-{ranked[0]}": ("finished", "900"), f"s-{ranked[1]}": ("stopped early", "300")}
    assert {run_id: (row["status"], row["last step"]) for run_id, row in rows.items()} == {
        f"s-{n}": expected.get(f"s-{n}", ("stopped early", "100")) for n in range(6)}
    assert rows[f"s-{ranked[1]}"]["note"] == "asha: 2nd of 2 at step 300, not promoted before the search ended"
    assert list(rows) == [f"s-{n}" for n in ranked]  # the summary ranks by how far each got, then by value
    # Every continuation resumed from the run's checkpoint; none trained twice from scratch.
    records = read_records(str(tmp_path / "records"))
    assert sorted(record["run_id"] for record in records if not record["resumed"]) == [f"s-{n}" for n in range(6)]
    assert sorted(record["run_id"] for record in records if record["resumed"]) == sorted(
        [f"s-{ranked[0]}", f"s-{ranked[0]}", f"s-{ranked[1]}"])
    assert "## Which settings mattered" in (sweep / "summary.md").read_text()
    # optuna-dashboard's journal: the same trials, as Optuna keeps them.
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    study = optuna.load_study(study_name="s", storage=JournalStorage(JournalFileBackend(str(sweep / "optuna-journal.log"))))
    assert [(trial.user_attrs["run_id"], trial.state.name, trial.params["Score"]) for trial in study.trials] == [
        (f"s-{n}", "COMPLETE" if n == ranked[0] else "PRUNED", drawn[n]) for n in range(6)]
    assert study.best_trial.user_attrs["run_id"] == f"s-{ranked[0]}"
    assert sorted(path.name for path in sweep.iterdir() if "journal" in path.name) == ["optuna-journal.log"]
    assert (sweep / "config_info.txt").read_text().count("  - Score: ") == 6
    # Each trial's score is in its record: the sampler's memory on --resume.
    assert all(run["score"] is not None and run["score"][1] == pytest.approx(drawn[n]) for n, run in enumerate(state["runs"]))


def test_the_hparams_tab_declares_a_range_as_its_interval_and_a_list_as_its_values(tmp_path):
    from tensorboard.compat.proto import event_pb2
    from tensorboard.plugins.hparams import plugin_data_pb2

    plan = parse(SPACE)
    settings = make_settings(tmp_path)
    view = ml.SweepView(tmp_path / "results", folder=tmp_path / "view")
    writer = ml.HParamsWriter(settings, ml.Results(tmp_path / "results"), {}, view)
    writer.experiment([plan.make_run(spec) for spec in plan.probes()], [("B", TAG)], 1000.0, ml.search_intervals(plan))
    data = next((tmp_path / "view" / "r-sweep").glob("events.out.tfevents.*")).read_bytes()
    events, at = [], 0
    while at < len(data):
        length = int.from_bytes(data[at:at + 8], "little")
        events.append(event_pb2.Event.FromString(data[at + 12:at + 12 + length]))
        at += 16 + length
    content = events[1].summary.value[0].metadata.plugin_data.content
    infos = {info.name: info for info in plugin_data_pb2.HParamsPluginData.FromString(content).experiment.hparam_infos}
    assert (infos["learning_rate"].domain_interval.min_value, infos["learning_rate"].domain_interval.max_value) == (1e-5, 1e-2)
    assert (infos["hidden_units"].domain_interval.min_value, infos["hidden_units"].domain_interval.max_value) == (32, 256)
    assert list(infos["batch_size"].domain_discrete.values) and [
        value.number_value for value in infos["batch_size"].domain_discrete.values] == [64.0, 128.0]


def test_a_search_whose_sampled_trials_share_values_still_gets_a_row_each(tmp_path):
    search = Search(tmp_path, [0.5, 0.5], concurrency=2, halving=False)
    search.run()
    writer = ml.HParamsWriter(search.h.settings, search.h.results, {}, None)
    writer.write_done(search.h.supervisor.by_id)
    assert sorted(search.h.results.own_events) == ["r-0", "r-1"]


def test_a_value_a_list_names_twice_is_one_point_of_the_space(tmp_path, monkeypatch, capsys):
    plan = parse("behaviors:\n  B:\n    hyperparameters:\n      beta: {opt_values: [0.001, 0.005, 0.001]}\n")
    for sampler in (ml.RandomSampler(plan.options, seed=4), ml.TpeSampler(plan.options, plan.param_names(), 4, "max", 2)):
        trials = []
        for number in range(2):
            trials.append(ml.Trial(sampler.sample(number, trials), "running"))
        assert sorted(trial.values for trial in trials) == [(0.001,), (0.005,)]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.yaml").write_text("behaviors:\n  B:\n    beta: {opt_values: [0.001, 0.005, 0.001]}\n")
    assert ml.main(["c.yaml", "--search", "random", "--num-trials", "3", "--trainer", TRAINER, "--dry-run"]) == 2
    assert "--num-trials 3 is more than the 2 combinations of the lists" in capsys.readouterr().err


def test_a_study_that_cannot_be_written_is_said_once_and_the_search_goes_on(tmp_path):
    class Failing:
        def write(self, records):
            raise RuntimeError("the journal's lock is held")

    search = Search(tmp_path, [0.25, 0.75, 0.5], concurrency=2, halving=False)
    search.h.supervisor.study = Failing()
    search.run()
    assert [record.status for record in search.h.supervisor.records] == [ml.Status.FINISHED] * 3
    assert search.h.warnings() == [
        "warning: cannot write optuna-journal.log (RuntimeError: the journal's lock is held); training goes on"]


def pausing_first_trial(tmp_path):
    """A search with halving, one trial at a time, whose first trial has reached its rung and been asked to pause:
    its trainer has not ended yet (the test ends it)."""
    watcher, launcher = FakeWatcher(), FakeLauncher(on_interrupt=None)
    h = Harness(tmp_path, search_config(), launcher=launcher, watcher=watcher, concurrency=1, tensorboard_url="http://board",
                metric=TAG, sampler=Scripted([0.5, 0.2]), budget=2)
    h.tick()
    watcher.serve(1.0, {("r-0", "B", TAG): [(100.0, 0.5)]})
    h.tick(1)
    assert launcher.last("r-0").asked == ["interrupt"]
    return h, launcher


@pytest.mark.parametrize("saved, status", [(4860.0, ml.Status.PAUSED), (None, ml.Status.FAILED)])
def test_a_trainer_that_saves_on_its_pause_and_then_fails_closing_is_paused_not_failed(tmp_path, saved, status):
    # Seen with mlagents-learn 1.1.0 in bench/search.py: SIGINT, the checkpoint and model saved, then an EOFError
    # in subprocess_env_manager.close() and exit 1. The run was lost to the search as "failed"; what was
    # asked happened. Without a checkpoint saved in the session it failed indeed.
    h, launcher = pausing_first_trial(tmp_path)
    if saved is not None:  # its checkpoint and model, but no training_status.json: written after the close that failed
        h.results.save_unrecorded(launcher.last("r-0").request.run, saved)
    launcher.last("r-0").end(1)
    h.tick(1)
    assert h.status("r-0") is status
    if saved is not None:
        assert ("r-0 exited 1 after it saved its checkpoint at step 4860 (mlagents-learn failed closing; see its log): "
                "taken as paused") in h.lines()
        assert h.supervisor.by_id["r-0"].session.exit_code == 1 and launcher.ids() == ["r-0", "r-1"]


@pytest.mark.parametrize("to_the_end, status", [(True, ml.Status.FINISHED), (False, ml.Status.FAILED)])
def test_a_run_that_finished_as_its_pause_came_and_died_of_the_signal_on_its_way_out_finished(tmp_path, to_the_end, status):
    # Seen in bench/search.py --quick: a trainer that had trained to the end and exported its model got the pause's
    # SIGINT as Python was shutting down (its handlers gone): exit -2. ML-Agents' record says it finished, so it did.
    h, launcher = pausing_first_trial(tmp_path)
    run = launcher.last("r-0").request.run
    if to_the_end:
        h.results.save(run, run.total_steps())
    launcher.last("r-0").end(-2)
    h.tick(1)
    assert h.status("r-0") is status
    assert h.supervisor.by_id["r-0"].session.exit_code == -2


def test_the_checkpoint_a_session_wrote_is_read_from_ml_agents_file_names_when_its_record_is_missing(tmp_path):
    plan = parse("behaviors:\n  B:\n    max_steps: 100\n  C:\n    max_steps: 100\n")
    run = plan.make_run(plan.grid()[0])
    results = ml.Results(tmp_path)
    for behavior, steps in (("B", [2000, 5200]), ("C", [5100])):
        folder = tmp_path / "r-0" / behavior
        folder.mkdir(parents=True)
        for step in steps:
            (folder / f"{behavior}-{step}.pt").write_bytes(b"x")
        (folder / "checkpoint.pt").write_bytes(b"x")
        (folder / f"{behavior}-{steps[-1]}.onnx").write_bytes(b"x")
    assert results.checkpoint_since(run, 0.0) == 5100.0  # the step every behavior saved
    old = (tmp_path / "r-0" / "C" / "C-5100.pt").stat().st_mtime - 10
    os.utime(tmp_path / "r-0" / "C" / "C-5100.pt", (old, old))
    assert results.checkpoint_since(run, old + 5) is None  # C saved nothing in this session
    (tmp_path / "r-0" / "C" / "C-5100.pt").unlink()
    assert results.checkpoint_since(run, 0.0) is None
