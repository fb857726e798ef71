"""Successive halving (rule: halving): the pure decisions from tables, then whole sweeps over the supervisor's seams.

The sweeps here train nothing: a fake launcher's runs advance a fake step
counter at speeds the test picks, and a fake watcher serves their points. What
must hold: the runs that continue at each rung are the same whatever the grid's
order, --num-envs or how fast each run trains.
"""

import json
import math
import random

import pytest

import mlagents_learn as ml
from fakes import FakeLauncher, FakeWatcher, Harness

TAG = "Score"
E = ml.RungEntry


# -- the value at a rung ---------------------------------------------------------------------

@pytest.mark.parametrize("points, rung, value", [
    ([(100, 1.0), (200, 3.0), (300, 5.0), (400, 7.0)], 400, 6.0),    # the second half: 300 and 400
    ([(100, 1.0), (200, 3.0), (300, 5.0), (400, 7.0), (500, 99.0)], 400, 6.0),  # past the rung: not counted
    ([(2000, 0.5)], 2000, 0.5),                                      # one summary at the rung
    ([(100, 1.0), (700, 9.0)], 400, 1.0),                            # none in (200, 400]: the last one before
    ([(500, 1.0)], 400, None),                                       # nothing up to the rung
    ([], 400, None),
])
def test_a_runs_value_at_a_rung_is_the_mean_of_its_second_half_up_to_the_rung(points, rung, value):
    assert ml.rung_value(points, rung) == value


@pytest.mark.parametrize("max_steps, summary_freq, step, factor, rungs", [
    (20000, 2000, 2000, 3, [2000, 6000]),          # 18000 + 2000 reaches max_steps: the last rung trains to the end
    (500000, 10000, 50000, 3, [50000, 150000, 450000]),
    (1000, 100, 100, 2, [100, 200, 400, 800]),
    (1000, 100, 950, 3, []),                        # no rung before the last summary period
])
def test_rungs_go_up_by_factor_and_stop_short_of_the_last_summary_period(max_steps, summary_freq, step, factor, rungs):
    config = (f"behaviors:\n  B:\n    max_steps: {max_steps}\n    summary_freq: {summary_freq}\n"
              f"    opt_stop: {{tag: {TAG}, rule: halving, step: {step}, factor: {factor}}}\n")
    [run] = ml.expand(ml.parse_config(config), "r")
    assert ml.rungs_of(run, run.stop_rules[0]) == rungs


# -- the verdict at one rung -------------------------------------------------------------------

def entries(values, out=()):
    return [E(f"r-{n}", (f"v{n}", 1), value, f"r-{n}" in out) for n, value in enumerate(values)]


@pytest.mark.parametrize("values, out, mode, go_on, stop", [
    # nine runs, factor 3: the best three go on
    ([5, 1, 9, 3, 7, 2, 8, 4, 6], (), "max", {"r-2", "r-6", "r-4"},
     {"r-8": "4th of 9 at step 100 (6 < 7)", "r-0": "5th of 9 at step 100 (5 < 7)", "r-7": "6th of 9 at step 100 (4 < 7)",
      "r-3": "7th of 9 at step 100 (3 < 7)", "r-5": "8th of 9 at step 100 (2 < 7)", "r-1": "9th of 9 at step 100 (1 < 7)"}),
    # mode min: the lowest go on
    ([5, 1, 9, 3], (), "min", {"r-1", "r-3"}, {"r-0": "3rd of 4 at step 100 (5 > 3)", "r-2": "4th of 4 at step 100 (9 > 3)"}),
    # a failed run is out: n is 3, so one goes on
    ([5, None, 9, 3], ("r-1",), "max", {"r-2"}, {"r-0": "2nd of 3 at step 100 (5 < 9)", "r-3": "3rd of 3 at step 100 (3 < 9)"}),
    # a tie at the boundary: broken by the runs' values (their description), never by run id
    ([7, 7, 1], (), "max", {"r-0"}, {"r-1": "2nd of 3 at step 100 (7 = 7, a tie)", "r-2": "3rd of 3 at step 100 (1 < 7)"}),
    # early: of 9 runs 3 go on; with 2 still to come, only the best reached run is certain, the three worst are out
    ([9, 8, 7, 6, 5, 4, 3, None, None], (), "max", {"r-0"},
     {"r-3": "at best 4th of 9 at step 100 (6 < 7)", "r-4": "at best 5th of 9 at step 100 (5 < 7)",
      "r-5": "at best 6th of 9 at step 100 (4 < 7)", "r-6": "at best 7th of 9 at step 100 (3 < 7)"}),
    # early, nothing certain yet: 3 reached, 6 to come
    ([9, 8, 7, None, None, None, None, None, None], (), "max", set(), {}),
    # one run alone goes on
    ([0.5], (), "max", {"r-0"}, {}),
])
def test_the_best_ceil_n_over_factor_go_on_and_early_decisions_are_only_certain_ones(values, out, mode, go_on, stop):
    verdict = ml.judge_rung(entries(values, out), 100, 3, mode)
    assert verdict.go_on == go_on
    assert dict(verdict.stop) == {run: f"halving: {reason}" for run, reason in stop.items()}


@pytest.mark.parametrize("mode, values, go_on", [
    ("max", [0.9, math.nan, 0.5], {"r-0"}),
    ("min", [0.9, math.nan, 0.5], {"r-2"}),
    ("max", [0.9, math.inf, 0.5], {"r-0"}),  # an infinity is a diverged run too, whichever the mode
    ("min", [0.9, -math.inf, 0.5], {"r-2"}),
])
def test_a_value_that_is_not_a_finite_number_is_the_worst_at_a_rung(mode, values, go_on):
    verdict = ml.judge_rung(entries(values), 100, 3, mode)
    assert verdict.go_on == go_on
    assert verdict.stop["r-1"] == f"halving: 3rd of 3 at step 100 ({values[1]:g}: not a finite number)"


def test_runs_the_rung_below_may_still_send_up_are_of_the_cohort_still_to_come():
    # Two runs have reached rung 2; the rung below may send up one more. A rung of three keeps one:
    # the better of the two waits for it, the other is out whatever it scores.
    verdict = ml.judge_rung(entries([0.9, 0.7]), 300, 3, "max", promotions_to_come=1)
    assert (verdict.candidates, verdict.keep, verdict.go_on) == (3, 1, frozenset())
    assert dict(verdict.stop) == {"r-1": "halving: at best 2nd of 3 at step 300 (0.7 < 0.9)"}
    # Once nothing more can come up, it is a rung of two.
    verdict = ml.judge_rung(entries([0.9, 0.7]), 300, 3, "max")
    assert (verdict.candidates, verdict.go_on, dict(verdict.stop)) == (2, {"r-0"}, {"r-1": "halving: 2nd of 2 at step 300 (0.7 < 0.9)"})


def test_no_early_decision_is_overturned_by_how_the_rest_arrive():
    # Whatever the order and values in which the last runs reach the rung, what was decided early still holds.
    import itertools

    final = ml.judge_rung(entries([9, 8, 7, 6, 5, 4, 3, 2, 1]), 100, 3, "max")
    for arrived in range(10):
        for unknown in itertools.combinations(range(9), 9 - arrived):
            partial = [E(e.run_id, e.order, None if n in unknown else e.value) for n, e in enumerate(entries([9, 8, 7, 6, 5, 4, 3, 2, 1]))]
            early = ml.judge_rung(partial, 100, 3, "max")
            assert early.go_on <= final.go_on and set(early.stop) <= set(final.stop)


def test_a_run_that_fails_later_never_overturns_an_early_decision():
    values = [9, 8, 7, 6, 5, 4, 3, None, None]
    early = ml.judge_rung(entries(values), 100, 3, "max")
    failed = ml.judge_rung(entries(values, out=("r-7", "r-8")), 100, 3, "max")  # both still-to-come runs fail
    assert early.go_on <= failed.go_on and set(early.stop) <= set(failed.stop)


# -- whole sweeps over the seams -------------------------------------------------------------

SCORES = [0.3, 0.9, 0.1, 0.7, 0.5, 0.8, 0.2, 0.6, 0.4]  # the grid's runs; the best: 0.9 (r-1)


def halving_config(scores=SCORES, extra_rules: str = "") -> str:
    options = ", ".join(str(score) for score in scores)
    return ("behaviors:\n  B:\n    max_steps: 2700\n    summary_freq: 100\n"
            f"    opt_stop:\n      - {{tag: {TAG}, rule: halving, step: 100, factor: 3}}\n{extra_rules}"
            f"stand_in:\n  score: {{opt_values: [{options}]}}\n")


def passed(record) -> int:
    """The rungs halving says a run passed."""
    return record.memory.passed if record.memory is not None else 0


class Simulation:
    """A sweep whose runs gain `speed` steps per second of the fake clock, scoring their stand_in.score.

    `lag` ticks: how far behind training the board's points are (TensorBoard reloads its logs now and then);
    `save_ticks`: how long an interrupted run takes to save its checkpoint and exit.
    """

    def __init__(self, tmp_path, scores=SCORES, concurrency=3, order=None, speeds=None, extra_rules="", lag=0,
                 save_ticks=0, previous=None, results=None) -> None:
        self.watcher = FakeWatcher()
        self.launcher = FakeLauncher(on_interrupt=0 if not save_ticks else None)
        self.h = Harness(tmp_path, halving_config(scores, extra_rules), launcher=self.launcher, watcher=self.watcher,
                         concurrency=concurrency, order=order, tensorboard_url="http://board", metric=TAG,
                         previous=previous, results=results)
        self.score = {run.run_id: run.values[0][2] for run in self.h.runs}
        self.speed = speeds or {run_id: 100.0 for run_id in self.score}
        self.step = {run_id: 0.0 for run_id in self.score}
        self.trained = {run_id: [] for run_id in self.score}  # (first step, last step) per session
        self.lag = lag
        self.save_ticks, self.saving = save_ticks, {}  # the fake runs saving, and the ticks each has left

    def points(self, run_id):
        last = int(self.step[run_id] // 100) * 100
        return [(float(s), self.score[run_id]) for s in range(100, last + 1, 100)]

    def run(self, limit: int = 10000) -> None:
        served = []
        for _ in range(limit):
            for fake in self.launcher.started:
                if fake.code is None and fake.asked:  # interrupted: it saves, training no more
                    self.saving[id(fake)] = self.saving.get(id(fake), self.save_ticks) - 1
                    if self.saving[id(fake)] <= 0:
                        fake.end(0)
                elif fake.code is None:
                    self.step[fake.run_id] = min(self.step[fake.run_id] + self.speed[fake.run_id] * 0.2, 2700)
                    fake.step = self.step[fake.run_id]  # where it saves if it is paused or stopped
                    if self.step[fake.run_id] >= 2700:
                        fake.end(0)
            served.append({(run_id, "B", TAG): self.points(run_id) for run_id in self.score})
            self.watcher.serve(self.h.clock(), served[max(len(served) - 1 - self.lag, 0)])
            if self.h.tick(0.2):
                return
        raise AssertionError("the sweep did not end")

    def advance(self, steps: float) -> bool:
        """One tick of 0.2 s: each run still training gains `steps`, and the board serves every point at once."""
        for fake in self.launcher.started:
            if fake.code is None and not fake.asked:
                self.step[fake.run_id] = min(self.step[fake.run_id] + steps, 2700)
                fake.step = self.step[fake.run_id]
        self.watcher.serve(self.h.clock(), {(r, "B", TAG): self.points(r) for r in self.score})
        return self.h.tick(0.2)

    def outcome(self):
        states = self.h.supervisor.by_id
        return ({run_id: (states[run_id].status.value, passed(states[run_id])) for run_id in sorted(states)},
                {run_id: states[run_id].stop_reason for run_id in sorted(states) if states[run_id].status is ml.Status.STOPPED})


def test_halving_pauses_runs_at_rungs_continues_the_best_with_resume_and_stops_the_rest(tmp_path):
    sim = Simulation(tmp_path)
    sim.run()
    statuses, reasons = sim.outcome()
    # rung 1 (step 100): r-1, r-5, r-3 go on; rung 2 (step 300): r-1 alone; rung 3 (step 900): r-1 trains to the end
    assert statuses == {"r-0": ("stopped", 0), "r-1": ("finished", 3), "r-2": ("stopped", 0), "r-3": ("stopped", 1),
                        "r-4": ("stopped", 0), "r-5": ("stopped", 1), "r-6": ("stopped", 0), "r-7": ("stopped", 0),
                        "r-8": ("stopped", 0)}
    assert reasons["r-5"] == "halving: 2nd of 3 at step 300 (0.8 < 0.9)"
    assert reasons["r-7"] == "halving: 4th of 9 at step 100 (0.6 < 0.7)"
    # Every continuation is a resume from the checkpoint; nothing trained again from scratch.
    commands = [fake.command for fake in sim.launcher.started]
    assert [command[-1] == "--resume" for command in commands].count(False) == 9
    assert sorted(fake.run_id for fake in sim.launcher.started if fake.command[-1] == "--resume") == ["r-1", "r-3", "r-5"]
    lines = sim.h.lines()
    assert "r-1 goes on: halving: in the best 3 of 9 at step 100" in lines
    assert any(line.startswith("pausing r-0: halving: at rung 1, step 100") for line in lines)
    assert sim.h.supervisor.exit_code() == ml.EXIT_OK


def test_a_run_told_to_go_on_while_it_is_still_pausing_continues_once_paused(tmp_path):
    # Its verdict came while it was saving its checkpoint: it goes on as soon as it has paused,
    # rather than wait at its rung for a verdict that was already given.
    watcher, launcher = FakeWatcher(), FakeLauncher(on_interrupt=None)  # a pause takes as long as the test says
    h = Harness(tmp_path, halving_config([0.9, 0.1, 0.5]), launcher=launcher, watcher=watcher, concurrency=2,
                tensorboard_url="http://board", metric=TAG)
    h.tick()
    watcher.serve(1.0, {("r-0", "B", TAG): [(100, 0.9)], ("r-1", "B", TAG): [(100, 0.1)]})
    h.tick(1)  # of 3, 1 goes on: r-0 must wait for r-2, r-1 is out already
    assert [fake.asked for fake in launcher.started] == [["interrupt"], ["interrupt"]]
    launcher.last("r-1").end(0)
    h.tick(1)
    assert launcher.ids() == ["r-0", "r-1", "r-2"] and h.status("r-0") is ml.Status.RUNNING  # r-0 still saving
    watcher.serve(2.0, {("r-0", "B", TAG): [(100, 0.9)], ("r-1", "B", TAG): [(100, 0.1)], ("r-2", "B", TAG): [(100, 0.5)]})
    h.tick(1)  # the verdict: r-0 goes on, while it is still pausing
    assert h.supervisor.by_id["r-0"].memory.passed == 1
    launcher.last("r-0").end(0)  # its checkpoint saved
    h.tick(1)
    launcher.last("r-2").end(0)
    h.tick(1)
    h.tick(1)
    assert launcher.ids() == ["r-0", "r-1", "r-2", "r-0"] and launcher.last("r-0").command[-1] == "--resume"
    assert h.status("r-0") is ml.Status.RUNNING


def test_a_run_told_to_stop_while_it_is_still_pausing_ends_once_paused(tmp_path):
    # Its verdict came while it was saving its checkpoint: the SIGINT was sent already, so the stop
    # cannot be asked again; it ends, stopped early, as soon as it has paused, rather than wait forever.
    watcher, launcher = FakeWatcher(), FakeLauncher(on_interrupt=None)  # a pause takes as long as the test says
    h = Harness(tmp_path, halving_config([0.5, 0.1, 0.9]), launcher=launcher, watcher=watcher, concurrency=2,
                tensorboard_url="http://board", metric=TAG)
    h.tick()
    watcher.serve(1.0, {("r-0", "B", TAG): [(100, 0.5)], ("r-1", "B", TAG): [(100, 0.1)]})
    h.tick(1)  # of 3, 1 goes on: r-0 must wait for r-2 (it pauses), r-1 is out already
    assert [fake.asked for fake in launcher.started] == [["interrupt"], ["interrupt"]]
    assert h.supervisor.by_id["r-0"].pausing
    launcher.last("r-1").end(0)
    h.tick(1)
    watcher.serve(2.0, {("r-0", "B", TAG): [(100, 0.5)], ("r-1", "B", TAG): [(100, 0.1)], ("r-2", "B", TAG): [(100, 0.9)]})
    h.tick(1)  # the verdict: r-0 stops, while it is still pausing
    assert h.supervisor.by_id["r-0"].memory.ended == 0 and h.status("r-0") is ml.Status.RUNNING
    launcher.last("r-0").end(0)  # its checkpoint saved
    h.tick(1)
    h.tick(1)
    assert h.status("r-0") is ml.Status.STOPPED
    assert h.supervisor.by_id["r-0"].stop_reason == "halving: 2nd of 3 at step 100 (0.5 < 0.9)"
    assert launcher.ids() == ["r-0", "r-1", "r-2"]  # never resumed
    assert not h.supervisor.policy.waits(h.supervisor.records)  # nothing left waiting: the sweep can end


def test_the_runs_that_go_on_do_not_depend_on_order_concurrency_or_speed(tmp_path):
    reference = Simulation(tmp_path / "grid")
    reference.run()
    expected = reference.outcome()[0]
    varied = [
        dict(order=list(reversed(range(9)))),
        dict(concurrency=1),
        dict(concurrency=9),
        dict(order=[4, 8, 0, 6, 2, 7, 1, 5, 3], concurrency=2,
             speeds={f"r-{n}": speed for n, speed in enumerate([300, 50, 120, 80, 500, 33, 210, 95, 60])}),
        # The best is slow: r-5 and r-3 are sure of rung 1 early and reach rung 2 long before r-1 reaches
        # rung 1; rung 2 is still a rung of three, so r-5 waits there for r-1.
        dict(speeds={f"r-{n}": 10.0 if n == 1 else 100.0 for n in range(9)}),
    ]
    for number, options in enumerate(varied):
        sim = Simulation(tmp_path / f"v{number}", **options)
        sim.run()
        assert sim.outcome()[0] == expected, options
    # And for the same grid written in reverse: the same combinations go on (their run ids are reversed).
    backwards = Simulation(tmp_path / "reversed", scores=list(reversed(SCORES)))
    backwards.run()
    by_score = lambda sim: {sim.score[run_id]: status for run_id, status in sim.outcome()[0].items()}  # noqa: E731
    assert by_score(backwards) == by_score(reference)


@pytest.mark.parametrize("seed", range(48))
def test_the_runs_that_go_on_are_the_same_for_any_mix_of_order_slots_speeds_board_lag_and_saves(tmp_path, seed):
    # Drawn at random, fixed by the seed. Runs that reach a rung early and sure of it may climb to the
    # next before the rung below has sent up all it will: that rung must wait for them, not judge without.
    # A verdict may come while a run is still saving its pause: it must still be carried out.
    draw = random.Random(seed)
    order = list(range(9))
    draw.shuffle(order)
    speeds = {f"r-{n}": draw.choice([50.0, 100.0, 300.0, 800.0]) for n in range(9)}
    sim = Simulation(tmp_path / "mixed", concurrency=draw.choice([1, 2, 3, 5, 9]), order=order, speeds=speeds,
                     lag=draw.choice([0, 1, 3, 6]), save_ticks=draw.choice([0, 1, 5, 15]))
    sim.run()
    reference = Simulation(tmp_path / "grid")
    reference.run()
    assert sim.outcome()[0] == reference.outcome()[0]


def test_a_run_certain_to_go_on_when_it_reaches_its_rung_is_never_paused(tmp_path):
    # One slot: runs reach rung 1 one after another; the last one (r-8 scores 0.4) comes when 8 are known.
    sim = Simulation(tmp_path, concurrency=1)
    sim.run()
    paused_first = [fake.run_id for fake in sim.launcher.started if fake.command[-1] != "--resume"]
    assert paused_first == [f"r-{n}" for n in range(9)]
    # r-1 (0.9) goes on at rung 1 with all known only once r-8 has reached it; r-8 itself is out at once, never paused.
    lines = sim.h.lines()
    assert not any(line.startswith("pausing r-8") for line in lines)
    assert "stopping r-8: halving: 6th of 9 at step 100 (0.4 < 0.7)" in lines


def test_the_board_is_polled_often_while_a_runs_next_point_is_at_its_rung(tmp_path):
    # Rung 1 at step 300, a point every 100: from step 200 on, the next point is the rung's, and the sooner
    # it is seen the less is trained past the rung. Once the run's pause is asked, the hurry is over.
    config = ("behaviors:\n  B:\n    max_steps: 2700\n    summary_freq: 100\n"
              f"    opt_stop: {{tag: {TAG}, rule: halving, step: 300, factor: 3}}\n"
              "stand_in:\n  score: {opt_values: [0.1, 0.2, 0.3]}\n")
    watcher = FakeWatcher()
    h = Harness(tmp_path, config, watcher=watcher, concurrency=3, tensorboard_url="http://board", metric=TAG)
    due = []
    for number, last in enumerate([100, 200, 200, 300]):
        watcher.serve(float(number), {(f"r-{n}", "B", TAG): [(float(s), 0.1 * (n + 1)) for s in range(100, last + 1, 100)]
                                      for n in range(3)})
        h.tick(1)
        due.append(watcher.requests[-1].due)
    assert due == [False, True, True, False]
    # At step 300 the rung is complete: r-2 goes on (its next rung, 900, is far), the others are being stopped.
    assert [(record.stop_asked is not None, passed(record)) for record in h.supervisor.records] == [
        (True, 0), (True, 0), (False, 1)]


def test_a_due_request_wakes_the_watcher_and_shortens_its_wait(tmp_path):
    watcher = ml.MetricsWatcher(ml.TensorBoardClient("http://127.0.0.1:9"), interval=60, results_dir=tmp_path)
    watcher.want(ml.MetricsRequest((TAG,), (("r-0", "B"),)))
    assert (watcher.wait_after_poll(), watcher._wake.is_set()) == (60, False)
    watcher.want(ml.MetricsRequest((TAG,), (("r-0", "B"),), due=True))
    assert (watcher.wait_after_poll(), watcher._wake.is_set()) == (ml.DUE_POLL_INTERVAL, True)  # polls now, then often
    watcher._wake.clear()
    watcher.want(ml.MetricsRequest((TAG,), (("r-0", "B"),), due=True))
    assert watcher._wake.is_set() is False  # still due: no extra poll for every request
    fast = ml.MetricsWatcher(ml.TensorBoardClient("http://127.0.0.1:9"), interval=0.5, results_dir=tmp_path)
    fast.want(ml.MetricsRequest((TAG,), (("r-0", "B"),), due=True))
    assert fast.wait_after_poll() == 0.5  # never slower than asked


def test_a_threshold_rule_beside_halving_stops_a_run_and_it_is_out_of_the_rung(tmp_path):
    sim = Simulation(tmp_path, extra_rules=f"      - {{tag: {TAG}, min: 0.15}}\n")
    sim.run()
    statuses, reasons = sim.outcome()
    assert reasons["r-2"].startswith(f"opt_stop of B: {TAG} = 0.1 < min 0.15")
    # r-2 is out: 8 candidates at rung 1, so the best ceil(8/3) = 3 still go on
    assert statuses["r-1"] == ("finished", 3) and statuses["r-5"][1] == 1 and statuses["r-3"][1] == 1


def test_a_resumed_sweep_takes_up_the_halving_where_it_stopped_paused_runs_included(tmp_path):
    first = Simulation(tmp_path, concurrency=3)
    paused = []
    while len(paused) < 3:  # until the first three wait, paused, at rung 1
        first.advance(100 * 0.2)
        paused = [run_id for run_id, state in first.h.supervisor.by_id.items() if state.status is ml.Status.PAUSED]
    assert paused == ["r-0", "r-1", "r-2"]
    first.h.supervisor.note_signal()  # Ctrl-C: running runs stop, paused ones stay paused
    while not first.h.tick(0.2):
        pass
    saved = json.loads(first.h.store.state_path.read_text())
    assert {entry["run_id"] for entry in saved["runs"] if entry["status"] == "paused"} == set(paused)
    # The same sweep again, resumed: paused runs keep their values and wait for their rung's verdict.
    second = Simulation(tmp_path, concurrency=3, previous=saved, results=first.h.results)
    second.step = dict(first.step)
    second.h.supervisor.take_up()
    second.run()
    reference = Simulation(tmp_path / "uninterrupted")
    reference.run()
    assert second.outcome()[0] == reference.outcome()[0]


# -- real processes: the stand-in trainer, a real TensorBoard --------------------------------

import csv  # noqa: E402
import os  # noqa: E402
import shlex  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

from conftest import SCRIPT  # noqa: E402
from helpers import STAND_IN, free_port, read_records, wait_until  # noqa: E402

STAND_IN_SCORES = [0.3, 0.9, 0.1, 0.7, 0.5, 0.8]  # factor 3: two go on at step 100, one at step 300


def sweep_dir(folder, run_id):
    return folder / "results" / f"{run_id}-sweep"


def stand_in_sweep(folder, scores, run_id):
    # Each run holds at its rungs until the sweep pauses or stops it, or lets it pass: were it to train
    # on, a late poll on a busy machine would let it finish past a rung it should have stopped at.
    hold = f"hold: {{steps: [100, 300], sweep_state: {json.dumps(str(sweep_dir(folder, run_id) / 'sweep_state.json'))}}}"
    runs = "".join(f"      - {{duration: 1, points: 9, steps: 900, {hold}, scalars: {{B: {{{TAG}: {score}}}}}}}\n"
                   for score in scores)
    path = folder / "sweep.yaml"
    path.write_text("behaviors:\n  B:\n    max_steps: 900\n    summary_freq: 100\n"
                    f"    opt_stop: {{tag: {TAG}, rule: halving, step: 100, factor: 3}}\n"
                    f"stand_in:\n  opt_values:\n{runs}")
    return path


def sweep_argv(path, board, run_id):
    return [str(path), "--trainer", shlex.join([sys.executable, STAND_IN]), "--results-dir", "results", "--run-id", run_id,
            "--tensorboard-url", board.url, "--poll-interval", "0.5", "--num-envs", "3", "--env=Fake",
            "--base-port", str(free_port()), "--metric", TAG]


def outcome(folder, run_id, scores):
    with open(sweep_dir(folder, run_id) / "summary.csv") as handle:
        rows = {row["run"]: row for row in csv.DictReader(handle)}
    return {scores[int(run.split("-")[-1])]: row["status"] for run, row in rows.items()}


@pytest.mark.skipif(os.name != "posix", reason="the stand-in's signals")
def test_real_runs_go_on_and_stop_the_same_for_a_grid_and_the_grid_reversed(real):
    folder, board = real
    for run_id, scores in (("fwd", STAND_IN_SCORES), ("rev", list(reversed(STAND_IN_SCORES)))):
        assert ml.main(sweep_argv(stand_in_sweep(folder, scores, run_id), board, run_id)) == 0
    expected = {0.9: "finished", 0.8: "stopped early", 0.7: "stopped early", 0.5: "stopped early", 0.3: "stopped early",
                0.1: "stopped early"}
    assert outcome(folder, "fwd", STAND_IN_SCORES) == expected
    assert outcome(folder, "rev", list(reversed(STAND_IN_SCORES))) == expected
    records = read_records(folder / "records")
    for run_id in ("fwd-1", "rev-4"):  # the winner: paused, then resumed from its checkpoint up to max_steps
        mine = [rec for rec in records if rec["run_id"] == run_id]
        assert [rec["resumed"] for rec in mine][0] is False and all(rec["resumed"] for rec in mine[1:])
        assert mine[-1]["last_step"] == 900 and mine[-1]["exit_code"] == 0
    assert all(len([rec for rec in records if rec["run_id"] == run and not rec["resumed"]]) == 1
               for run in {rec["run_id"] for rec in records})  # nothing trained twice from scratch


@pytest.mark.skipif(os.name != "posix", reason="the stand-in's signals")
def test_a_sweep_interrupted_while_runs_are_paused_resumes_the_halving(real):
    folder, board = real
    path = stand_in_sweep(folder, STAND_IN_SCORES, "r")
    sweep = subprocess.Popen([sys.executable, str(SCRIPT), *sweep_argv(path, board, "r")], cwd=folder,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    state_path = sweep_dir(folder, "r") / "sweep_state.json"

    def paused():
        try:
            return [run for run in json.loads(state_path.read_text())["runs"] if run["status"] == "paused"]
        except (OSError, ValueError):
            return []

    wait_until(paused, 60)
    sweep.send_signal(signal.SIGINT)
    try:
        out, err = sweep.communicate(timeout=60)
    except subprocess.TimeoutExpired:  # say which run did not end, and what it had seen
        sweep.kill()
        out, err = sweep.communicate()
        seen = [{key: rec[key] for key in ("run_id", "resumed", "last_step", "held_at", "signals", "exit_code")}
                for rec in read_records(folder / "records")]
        pytest.fail(f"the sweep did not end within 60 s of its Ctrl-C\n{out}{err}\nruns: {seen}")
    assert sweep.returncode == 130, out + err
    assert paused()  # kept paused in the state file, their values with them
    assert all("values" in run["memory"] for run in paused())
    argv = sweep_argv(path, board, "r")
    assert ml.main([*argv, "--resume"]) == 0
    assert outcome(folder, "r", STAND_IN_SCORES) == {0.9: "finished", 0.8: "stopped early", 0.7: "stopped early",
                                                     0.5: "stopped early", 0.3: "stopped early", 0.1: "stopped early"}
    records = read_records(folder / "records")
    assert all(len([rec for rec in records if rec["run_id"] == run and not rec["resumed"]]) == 1
               for run in {rec["run_id"] for rec in records})


def test_a_run_in_its_last_summary_period_is_neither_paused_nor_stopped_by_halving(tmp_path):
    # One run was so fast (or the poll so slow) that it is about to finish when its rung's verdict comes:
    # a SIGINT during its final export would kill mlagents-learn before it writes its model.
    sim = Simulation(tmp_path, concurrency=9, speeds={f"r-{n}": 100.0 if n else 13250.0 for n in range(9)})  # r-0: step 2650 of 2700 after one tick
    sim.run()
    statuses, _ = sim.outcome()
    assert statuses["r-0"] == ("finished", 0)  # out at rung 1 (0.3), but it had trained to the end
    assert sim.launcher.last("r-0").asked == []
    assert statuses["r-1"] == ("finished", 3)


# -- what halving decided holds: across a crash, and without TensorBoard ------------------------------

def test_a_run_halving_told_to_stop_is_not_trained_on_after_the_sweep_is_killed_while_it_saves(tmp_path):
    # One slot: a run that reaches rung 1 when enough runs are known is stopped at once (it is out whatever
    # comes). The sweep is SIGKILLed before it has seen the run end: its record says it was asked to stop, so
    # --resume must not train it on to max_steps (it did: it was "running", so it was resumed).
    first = Simulation(tmp_path, concurrency=1)
    for _ in range(10000):
        first.advance(20)
        told = [record for record in first.h.supervisor.records
                if record.status is ml.Status.RUNNING and record.session.asked == "stop"]
        if told:
            break
    [told] = told
    run_id, reason = told.run.run_id, told.stop_reason
    assert reason.startswith("halving: ") and told.memory.ended == 0
    second = Simulation(tmp_path, concurrency=1, previous=first.h.records_json(), results=first.h.results)
    second.h.supervisor.take_up()
    assert (second.h.status(run_id), second.h.supervisor.by_id[run_id].stop_reason) == (ml.Status.STOPPED, reason)
    second.step = dict(first.step)
    second.run()
    assert run_id not in second.launcher.ids()  # never trained again
    whole = Simulation(tmp_path / "whole", concurrency=1)
    whole.run()
    assert second.outcome()[0] == whole.outcome()[0]


def test_paused_runs_are_decided_from_their_records_when_tensorboard_never_answers(tmp_path):
    # Interrupted with r-0 and r-1 paused at rung 1 (their values recorded), then resumed against a TensorBoard
    # that never answers: the others finish without a value to judge them by, and the rung is decided from
    # what the records hold. It hung, saying "2 paused" every minute for good.
    scores = [0.9, 0.5, 0.1, 0.3]  # of 4, factor 3: two go on, so the first two wait, paused
    first = Simulation(tmp_path, scores=scores, concurrency=2)
    while len([r for r in first.h.supervisor.records if r.status is ml.Status.PAUSED]) < 2:
        first.advance(20)
    first.h.supervisor.note_signal()
    while not first.h.tick(0.2):
        pass
    second = Simulation(tmp_path, scores=scores, concurrency=2, previous=first.h.records_json(), results=first.h.results)
    second.h.supervisor.take_up()
    for _ in range(100):  # the board never serves a point; the runs train to the end of their own accord
        for fake in second.launcher.started:
            if fake.code is None:
                fake.end(0)
        if second.h.tick(1):
            break
    else:
        raise AssertionError(f"the sweep did not end: {second.h.supervisor.status_line()}")
    statuses = {run_id: record.status.value for run_id, record in second.h.supervisor.by_id.items()}
    # r-2 and r-3 finished unseen, so they are out: of the 2 left, 1 goes on, by the values recorded.
    assert statuses == {"r-0": "finished", "r-1": "stopped", "r-2": "finished", "r-3": "finished"}
    assert second.h.supervisor.by_id["r-1"].stop_reason == "halving: 2nd of 2 at step 100 (0.5 < 0.9)"
    assert [fake.run_id for fake in second.launcher.started] == ["r-2", "r-3", "r-0"]


@pytest.mark.parametrize("memory, problem", [
    ({"passed": "1"}, 'memory.passed is "1"'),
    ({"passed": -1}, "memory.passed is -1"),
    ({"passed": 0, "values": {"0": "0.5"}}, "memory.values is not rung numbers and values"),
    ({"passed": 0, "values": {"first": 0.5}}, "memory.values is not rung numbers and values"),
    ({"passed": 0, "ended": True}, "memory.ended is true"),
    ({"passed": 0, "hunch": 1}, "memory is not halving's"),
    ([1, 2], "memory is [1, 2]"),
])
def test_what_halving_remembers_is_read_back_checked_and_a_wrong_type_is_one_line(tmp_path, memory, problem):
    # A state file whose halving memory had the wrong types raised TypeError: "internal error".
    sim = Simulation(tmp_path, scores=[0.9, 0.5])
    sim.h.tick()
    saved = sim.h.records_json()
    saved["runs"][0]["memory"] = memory
    with pytest.raises(ml.SweepError) as refused:
        Simulation(tmp_path, scores=[0.9, 0.5], previous=saved)
    assert str(refused.value) == (f"the sweep's state file is malformed: runs[0].{problem} ({sim.h.store.state_path}): "
                                  "start the sweep anew with --force, or choose another --run-id")


def test_what_halving_remembers_goes_to_the_state_file_and_back_unchanged():
    kept = ml.HalvingMemory(2, {0: 0.5, 1: float("nan")}, 1)
    again = ml.HalvingMemory.from_json(json.loads(json.dumps(kept.to_json())))
    assert (again.passed, again.ended, again.values[0], math.isnan(again.values[1])) == (2, 1, 0.5, True)


def test_an_interrupted_halving_sweep_ranks_by_how_far_runs_got_and_says_its_best_is_best_so_far(tmp_path):
    # r-0 went on at rung 1 (0.9 there) and was interrupted at step 150, its last value 0.6; r-1 was out at
    # rung 1 (0.5 there) but trained on while it saved, its last value 0.95 at step 180. It was named best.
    h = Harness(tmp_path, halving_config([0.9, 0.5, 0.1]), concurrency=3, tensorboard_url="http://board", metric=TAG)
    values = {"r-0": (ml.Ending.INTERRUPTED, ml.HalvingMemory(1, {0: 0.9}), 0.6),
              "r-1": (ml.Ending.STOPPED, ml.HalvingMemory(0, {0: 0.5}, 0), 0.95),
              "r-2": (ml.Ending.STOPPED, ml.HalvingMemory(0, {0: 0.1}, 0), 0.3)}
    for run_id, (ending, memory, last) in values.items():
        record = h.earlier(run_id, ending, saved=150)
        record.memory, record.metrics[("B", TAG)] = memory, last
    _, rows, _ = ml.summary_rows(h.outcome(), h.settings)
    assert [row[0] for row in rows] == ["r-0", "r-1", "r-2"]
    h.summary()
    assert (tmp_path / "results" / "r-sweep" / "summary.md").read_text().splitlines()[-1] == (
        f"Best run so far: r-0 (score=0.9), score 0.6 (the mean of its last 3 points of {TAG}), the furthest its rule "
        "judged: 0.9 at step 100; "
        f"its config: {tmp_path / 'results' / 'r-sweep' / 'configs' / 'r-0.yaml'}")


def test_a_run_that_trained_to_the_end_ranks_above_every_run_halving_judged_on_the_way(tmp_path):
    h = Harness(tmp_path, halving_config([0.9, 0.5]), concurrency=2, tensorboard_url="http://board", metric=TAG)
    winner = h.earlier("r-0", ml.Ending.FINISHED, saved=2700)
    winner.memory, winner.metrics[("B", TAG)] = ml.HalvingMemory(3, {0: 0.9, 1: 0.9, 2: 0.9}), 0.7
    out = h.earlier("r-1", ml.Ending.STOPPED, saved=350)
    out.memory, out.metrics[("B", TAG)] = ml.HalvingMemory(1, {0: 0.95, 1: 0.8}, 1), 0.99
    _, rows, _ = ml.summary_rows(h.outcome(), h.settings)
    assert [row[0] for row in rows] == ["r-0", "r-1"]
    h.summary()
    assert (tmp_path / "results" / "r-sweep" / "summary.md").read_text().splitlines()[-1].startswith(
        f"Best run: r-0 (score=0.9), score 0.7 (the mean of its last 3 points of {TAG}); its config:")


def test_every_run_of_a_halving_sweep_gets_its_hparams_row_finished_or_stopped_early(tmp_path):
    # A paused run halving ended kept the row written when it paused: "running" in TensorBoard.
    sim = Simulation(tmp_path)
    sim.h.supervisor.hparams = ml.HParamsWriter(sim.h.settings, sim.h.results, ml.hparams_groups(sim.h.runs))
    sim.run()
    from test_supervisor import hparams_rows

    rows = hparams_rows(sim.h.results)
    assert {run_id: values["status"] for run_id, (_, values) in rows.items()} == {
        "r-0": "stopped early", "r-1": "finished", "r-2": "stopped early", "r-3": "stopped early", "r-4": "stopped early",
        "r-5": "stopped early", "r-6": "stopped early", "r-7": "stopped early", "r-8": "stopped early"}
