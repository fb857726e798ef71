"""The supervisor's decisions, driven tick by tick through its seams: a fake clock, launcher, watcher and store.

Nothing here starts a process or waits a real second; the process tests
(test_sweep.py, test_resume.py) check what only real processes show.
"""

import json
import math

import pytest

import mlagents_learn as ml
from fakes import FakeLauncher, FakeWatcher, FlakyWrites, Harness

TAG = "Environment/Cumulative Reward"


def grid(count: int, extra: str = "") -> str:
    values = ", ".join(str(n) for n in range(count))
    return f"behaviors:\n  B:\n    max_steps: 1000\n    summary_freq: 100\n{extra}stand_in:\n  n: {{opt_values: [{values}]}}\n"


# -- starting runs --------------------------------------------------------------------

def test_runs_start_in_grid_order_and_a_freed_slot_is_refilled_in_the_same_tick(tmp_path):
    h = Harness(tmp_path, grid(5), concurrency=2)
    assert h.tick() is False
    assert (h.launcher.ids(), h.launcher.slots) == (["r-0", "r-1"], [0, 1])
    h.launcher.last("r-1").end(0)
    h.tick(30)
    assert (h.launcher.ids(), h.launcher.slots) == (["r-0", "r-1", "r-2"], [0, 1, 1])
    h.launcher.last("r-0").end(0)
    h.launcher.last("r-2").end(0)
    h.tick(30)
    assert (h.launcher.ids()[3:], h.launcher.slots[3:]) == (["r-3", "r-4"], [0, 1])
    h.launcher.last("r-3").end(0)
    h.launcher.last("r-4").end(0)
    assert h.tick(30) is True
    assert [h.status(f"r-{n}") for n in range(5)] == [ml.Status.FINISHED] * 5
    assert h.lines() == [
        "start r-0: n=0, port 6000", "start r-1: n=1, port 6001",
        "finished r-1: exit 0 after 30s", "start r-2: n=2, port 6001",
        "status: 2 running, 1 finished, 0 stopped early, 0 failed, 2 pending",  # the first after FIRST_STATUS
        "finished r-0: exit 0 after 1m00s", "finished r-2: exit 0 after 30s",
        "start r-3: n=3, port 6000", "start r-4: n=4, port 6001",
        "finished r-3: exit 0 after 30s", "finished r-4: exit 0 after 30s",
        "status: 0 running, 5 finished, 0 stopped early, 0 failed, 0 pending",  # then every STATUS_INTERVAL
    ]
    assert h.supervisor.exit_code() == ml.EXIT_OK


def test_each_run_gets_its_command_line_with_its_slots_ports_and_resume_only_when_it_continues(tmp_path):
    h = Harness(tmp_path, grid(2), concurrency=2, forwarded=["--seed", "3"], env_args=["-x"])
    h.earlier("r-1", ml.Ending.INTERRUPTED, saved=400)  # it saved a checkpoint in this sweep
    h.supervisor.take_up()
    h.tick()
    config = tmp_path / "results" / "r-sweep" / "configs"
    assert h.launcher.last("r-0").command == ["mlagents-learn", str(config / "r-0.yaml"), "--run-id=r-0",
                                              "--base-port=6001", "--seed", "3", "--env-args", "-x"]
    assert h.launcher.last("r-1").command == ["mlagents-learn", str(config / "r-1.yaml"), "--run-id=r-1",
                                              "--base-port=6000", "--seed", "3", "--resume", "--env-args", "-x"]
    assert h.lines() == ["resume r-1: n=1, port 6000", "start r-0: n=0, port 6001"]  # a run that continues goes first


def test_force_reaches_each_run_that_starts_afresh_over_results_and_never_one_that_resumes(tmp_path):
    # --force is the sweep's, not forwarded: with --force and --resume both, ML-Agents would resume and yet
    # delete the run's earlier TensorBoard data at its first summary.
    h = Harness(tmp_path, grid(3), concurrency=3, force=True)
    h.earlier("r-1", ml.Ending.INTERRUPTED, saved=400)
    h.results.folders.add("r-2")  # an older sweep's results: the sweep may overwrite them
    h.supervisor.take_up()
    h.tick()
    assert [h.launcher.last(f"r-{n}").command[-1] for n in range(3)] == ["--base-port=6001", "--resume", "--force"]
    assert h.results.cleared == ["r-2"]  # its old event files go before it starts, as --force would at its first summary


def test_a_run_that_cannot_be_started_fails_with_the_reason_and_the_sweep_goes_on(tmp_path):
    h = Harness(tmp_path, grid(3), launcher=FakeLauncher(failing=("r-1",)), concurrency=2)
    h.tick()
    assert h.launcher.ids() == ["r-0", "r-2"]
    assert h.status("r-1") is ml.Status.FAILED
    log = tmp_path / "results" / "r-sweep" / "logs" / "r-1.log"
    assert h.lines()[1] == f"FAILED r-1: could not start trainer: No such file or directory after 0s; log: {log}"
    for run in h.launcher.started:
        run.end(0)
    assert h.tick(1) is True
    assert h.supervisor.exit_code() == ml.EXIT_FAILED


@pytest.mark.parametrize("code, status, line", [
    (0, ml.Status.FINISHED, "finished r-0: exit 0 after 5s"),
    (3, ml.Status.FAILED, "FAILED r-0: exit 3 after 5s; log: {log}"),
])
def test_how_a_run_ends_decides_its_status(tmp_path, code, status, line):
    h = Harness(tmp_path, grid(1), concurrency=1)
    h.tick()
    h.launcher.last("r-0").end(code)
    h.tick(5)
    assert h.status("r-0") is status
    assert h.lines()[-1] == line.format(log=tmp_path / "results" / "r-sweep" / "logs" / "r-0.log")


# -- Ctrl-C ---------------------------------------------------------------------------------

def test_ctrl_c_stops_every_run_gracefully_and_one_that_ignores_it_is_killed_after_stop_timeout(tmp_path):
    h = Harness(tmp_path, grid(3), launcher=FakeLauncher(on_interrupt=None), concurrency=2, stop_timeout=60)
    h.tick()
    assert h.lines() == ["start r-0: n=0, port 6000", "start r-1: n=1, port 6001"]
    h.supervisor.note_signal()
    assert h.lines() == []  # the handler only counts: the loop speaks
    h.tick()
    assert [run.asked for run in h.launcher.started] == [["interrupt"], ["interrupt"]]
    h.tick(59.9)
    assert [run.asked for run in h.launcher.started] == [["interrupt"], ["interrupt"]]
    h.launcher.last("r-1").end(0)  # saved its model in time
    assert h.tick(0.1) is False
    assert h.launcher.last("r-0").asked == ["interrupt", "kill"]
    assert h.tick() is True
    assert h.launcher.ids() == ["r-0", "r-1"]  # r-2 never started
    assert [h.status(f"r-{n}") for n in range(3)] == [ml.Status.INTERRUPTED, ml.Status.INTERRUPTED, ml.Status.PENDING]
    assert h.lines() == [
        "interrupted: stopping every run so it saves its model (Ctrl-C again kills them)",
        "status: 2 running, 0 finished, 0 stopped early, 0 failed, 1 pending",
        "interrupted r-1: exit 0 after 1m00s",
        "killing r-0: it did not stop within 60s",
        "interrupted r-0: exit -9 after 1m00s, killed after --stop-timeout",
    ]
    assert h.supervisor.exit_code() == ml.EXIT_INTERRUPTED


def test_a_second_ctrl_c_kills_every_run_at_once(tmp_path):
    h = Harness(tmp_path, grid(2), launcher=FakeLauncher(on_interrupt=None), concurrency=2, stop_timeout=300)
    h.tick()
    h.supervisor.note_signal()
    h.tick(1)
    h.supervisor.note_signal()
    h.tick(1)
    assert [run.asked for run in h.launcher.started] == [["interrupt", "kill"], ["interrupt", "kill"]]
    assert h.tick() is True
    assert h.lines()[2:5] == ["interrupted: stopping every run so it saves its model (Ctrl-C again kills them)",
                              "interrupted again: killing every run", "killing r-0: it did not stop within 300s"]


def test_stop_timeouts_follow_the_monotonic_clock_not_the_wall_clock(tmp_path):
    h = Harness(tmp_path, grid(1), launcher=FakeLauncher(on_interrupt=None), concurrency=1, stop_timeout=60)
    wall = [5000.0]
    h.supervisor.wall = lambda: wall[0]
    h.tick()
    h.supervisor.note_signal()
    h.tick()
    wall[0] -= 3600  # the machine's clock is set back an hour
    h.tick(30)
    assert h.launcher.last("r-0").asked == ["interrupt"]
    wall[0] += 7200  # and then forward two
    h.tick(1)
    assert h.launcher.last("r-0").asked == ["interrupt"]
    h.tick(29)
    assert h.launcher.last("r-0").asked == ["interrupt", "kill"]


def test_the_status_line_counts_every_kind_of_run(tmp_path):
    h = Harness(tmp_path, grid(6), concurrency=3)
    h.tick()
    h.launcher.last("r-0").end(0)
    h.launcher.last("r-1").end(2)
    h.tick(1)
    assert h.supervisor.status_line() == "status: 3 running, 1 finished, 0 stopped early, 1 failed, 1 pending"
    h.tick(ml.STATUS_INTERVAL)
    assert h.lines()[-1] == "status: 3 running, 1 finished, 0 stopped early, 1 failed, 1 pending"


def test_the_status_line_shows_each_running_runs_step_and_the_time_left_at_the_pace_seen(tmp_path):
    watcher = FakeWatcher()
    h = Harness(tmp_path, grid(3), watcher=watcher, concurrency=2)
    h.tick()  # r-0 and r-1 start
    r0, r1, t = ("r-0", "B", TAG), ("r-1", "B", TAG), h.clock()
    watcher.serve(1.0, {r0: [(100, 0.0)], r1: [(100, 0.0)]}, {r0: (t + 1, 100), r1: (t + 1, 100)})
    h.tick(1)
    assert h.supervisor.status_line() == ("status: 2 running, 0 finished, 0 stopped early, 0 failed, 1 pending\n"
                                          "  r-0 step 100 of 1000 (10%)\n  r-1 step 100 of 1000 (10%)")  # no pace yet
    # Their pace is from when the trainer wrote each point: 10 and 20 steps/s.
    watcher.serve(11.0, {r0: [(100, 0.0), (200, 0.0)], r1: [(100, 0.0), (300, 0.0)]}, {r0: (t + 11, 200), r1: (t + 11, 300)})
    h.tick(10)
    # r-0: 800 steps, 80 s; r-1: 700 steps, 35 s; r-2 then starts in r-1's slot: 1000 steps at 15 steps/s, 67 s.
    assert h.supervisor.status_line() == ("status: 2 running, 0 finished, 0 stopped early, 0 failed, 1 pending; "
                                          "about 1m42s left\n  r-0 step 200 of 1000 (20%), about 1m20s left\n"
                                          "  r-1 step 300 of 1000 (30%), about 35s left")
    h.tick(10)  # 10 s on, TensorBoard has nothing newer: the runs trained on meanwhile, at their pace
    assert h.supervisor.status_line() == ("status: 2 running, 0 finished, 0 stopped early, 0 failed, 1 pending; "
                                          "about 1m32s left\n  r-0 step 200 of 1000 (20%), about 1m10s left\n"
                                          "  r-1 step 300 of 1000 (30%), about 25s left")


def test_the_time_left_fills_each_slot_as_it_frees_with_the_runs_still_to_come():
    assert ml.schedule_left([], [1000.0], 2) is None  # no pace seen yet
    # A run without a pace trains at the others' mean, from its latest point on: 300 steps, 10 s ago, at 10/s.
    assert ml.schedule_left([(100.0, 10.0, 0.0), (300.0, None, 10.0)], [], 2) == 20.0
    # Slots free at 10 s and 40 s; the waiting runs of 200 steps (at 10 steps/s: 20 s) go to the first free one.
    assert ml.schedule_left([(100.0, 10.0, 0.0), (400.0, 10.0, 0.0)], [200.0, 200.0], 2) == 50.0
    assert ml.schedule_left([(100.0, 10.0, 0.0)], [200.0, 200.0], 3) == 20.0  # an idle slot takes one at once
    assert ml.schedule_left([(100.0, 10.0, 30.0)], [], 1) == 0.0  # overdue: about to end


# -- what the policy decides -------------------------------------------------------------

def stop_config(count: int) -> str:
    return grid(count, f"    opt_stop: {{tag: {TAG}, step: 200, min: 0}}\n")


def test_a_run_that_breaks_its_rule_is_stopped_once_per_poll_and_ends_stopped_early(tmp_path):
    watcher = FakeWatcher()
    h = Harness(tmp_path, stop_config(2), watcher=watcher, concurrency=2)
    h.tick()
    watcher.serve(1.0, {("r-0", "B", TAG): [(100, -1.0), (300, -2.0)], ("r-1", "B", TAG): [(300, 1.0)]})
    h.tick(1)
    assert [run.asked for run in h.launcher.started] == [["interrupt"], []]
    h.tick(1)  # the same snapshot again: no second decision
    assert h.lines()[2:] == [
        f"stopping r-0: opt_stop of B: {TAG} = -2 < min 0 at step 300",
        f"stopped r-0 early after 2s: opt_stop of B: {TAG} = -2 < min 0 at step 300",
    ]
    assert h.status("r-0") is ml.Status.STOPPED and h.supervisor.by_id["r-0"].last_step == 300


def test_a_resumed_run_is_not_stopped_on_its_old_points_until_it_shows_one_of_this_session(tmp_path):
    # Its old event files are served at once, while the trainer still imports torch: a SIGINT
    # then meets Python's default handler and kills it unsaved.
    watcher = FakeWatcher()
    h = Harness(tmp_path, stop_config(1), watcher=watcher, concurrency=1)
    h.earlier("r-0", ml.Ending.INTERRUPTED, saved=300)
    h.supervisor.take_up()
    h.tick()
    watcher.serve(1.0, {("r-0", "B", TAG): [(300, -2.0)]})
    h.tick(1)
    h.tick(1)
    assert h.launcher.last("r-0").asked == []
    watcher.serve(2.0, {("r-0", "B", TAG): [(300, -2.0), (400, -2.0)]})
    h.tick(1)
    assert h.launcher.last("r-0").asked == ["interrupt"]
    h.tick(1)
    assert h.status("r-0") is ml.Status.STOPPED


def test_a_run_whose_rule_watches_another_tag_than_the_ranking_metric_is_stopped(tmp_path):
    # Whether a run trains yet is seen in any tag read for it, not only in the metric.
    watcher = FakeWatcher()
    h = Harness(tmp_path, grid(1, "    opt_stop: {tag: Score, min: 0}\n"), watcher=watcher, concurrency=1)
    h.tick()
    watcher.serve(1.0, {("r-0", "B", "Score"): [(100, -1.0)]})
    h.tick(1)
    assert h.launcher.last("r-0").asked == ["interrupt"]


@pytest.mark.parametrize("points, stopped", [
    ([(700, -1.0)], True),                  # 700 + 100 < 1000: stopping saves training
    ([(800, 1.0), (900, -1.0)], False),     # in the last summary period: it is about to finish
    ([(900, 1.0), (1000, -1.0)], False),    # at max_steps: it is exporting its model
])
def test_a_run_in_its_last_summary_period_is_not_stopped(tmp_path, points, stopped):
    # A SIGINT while mlagents-learn exports its final model kills it before the model is written.
    watcher = FakeWatcher()
    h = Harness(tmp_path, stop_config(1), watcher=watcher, concurrency=1)
    h.tick()
    watcher.serve(1.0, {("r-0", "B", TAG): points})
    h.tick(1)
    assert (h.launcher.last("r-0").asked == ["interrupt"]) is stopped


def test_the_median_rule_compares_with_every_started_run_the_watcher_is_asked_for(tmp_path):
    watcher = FakeWatcher()
    h = Harness(tmp_path, grid(4, f"    opt_stop: {{tag: {TAG}, rule: median, min_runs: 2}}\n"), watcher=watcher, concurrency=2)
    h.tick()
    h.launcher.last("r-0").end(0)
    h.launcher.last("r-1").end(0)
    h.tick(10)
    assert h.launcher.ids() == ["r-0", "r-1", "r-2", "r-3"]
    assert watcher.requests[-1].runs == (("r-0", "B"), ("r-1", "B"), ("r-2", "B"), ("r-3", "B"))
    assert watcher.requests[-1].tags == (TAG,)
    watcher.serve(20.0, {("r-0", "B", TAG): [(100, 2.0)], ("r-1", "B", TAG): [(100, 3.0)],
                         ("r-2", "B", TAG): [(100, 1.0)], ("r-3", "B", TAG): [(100, 4.0)]})
    h.tick(1)
    assert [run.asked for run in h.launcher.started[2:]] == [["interrupt"], []]
    assert h.lines()[-1] == f"stopping r-2: opt_stop of B: {TAG} mean 1 < median 3 of 3 runs at step 100"


def test_runs_that_ended_long_ago_are_marked_final_so_the_watcher_reads_them_once(tmp_path):
    watcher = FakeWatcher()
    h = Harness(tmp_path, grid(3), watcher=watcher, concurrency=1)
    h.tick()
    h.launcher.last("r-0").end(0)
    h.tick(1)
    assert watcher.requests[-1].final == frozenset()
    h.launcher.last("r-1").end(0)
    h.tick(2 * ml.TENSORBOARD_SETTLE + 1)  # r-1 ends in this tick, r-0 ended long before
    assert watcher.requests[-1].final == frozenset({"r-0"})
    h.launcher.last("r-2").end(0)
    h.tick(2 * ml.TENSORBOARD_SETTLE + 1)
    assert watcher.requests[-1].final == frozenset({"r-0", "r-1"})


# -- the state file ---------------------------------------------------------------------

def test_a_full_disk_keeps_the_sweep_going_warns_once_and_writes_the_state_as_soon_as_it_can(tmp_path):
    writes = FlakyWrites(failures=3)
    h = Harness(tmp_path, grid(2), write=writes, concurrency=1)
    path = tmp_path / "results" / "r-sweep" / "sweep_state.json"
    h.tick()  # the start is the first write that fails
    h.launcher.last("r-0").end(0)
    h.tick(1)
    h.tick(1)
    assert not path.exists()
    assert h.warnings() == [f"warning: cannot write {path} (No space left on device): training goes on, "
                            "the sweep keeps its state in memory and writes it as soon as it can"]
    h.tick(1)  # the fourth attempt succeeds
    assert writes.attempts == 4
    assert h.lines() == ["start r-0: n=0, port 6000", "finished r-0: exit 0 after 1s", "start r-1: n=1, port 6000",
                         f"the state file is written again: {path}"]
    assert h.supervisor.unsaved() == ""
    saved = {run["run_id"]: run["status"] for run in json.loads(path.read_text())["runs"]}
    assert saved == {"r-0": "finished", "r-1": "running"}
    h.tick(1)
    assert writes.attempts == 4  # nothing changed: nothing written
    assert h.warnings() == []


def test_the_state_file_records_what_identifies_each_runs_process(tmp_path):
    h = Harness(tmp_path, grid(1), concurrency=1)
    h.tick()
    [entry] = json.loads((tmp_path / "results" / "r-sweep" / "sweep_state.json").read_text())["runs"]
    [session] = entry["sessions"]
    assert (session["pid"], session["identity"], session["ports"]) == (
        100, {"boot": "boot", "start": "100", "marker": "marker-r-0"}, [6000, 6000])


def test_resume_keeps_done_runs_and_continues_the_others_from_their_checkpoints(tmp_path):
    h = Harness(tmp_path, grid(4), concurrency=1)
    h.earlier("r-0", ml.Ending.FINISHED, saved=1000)
    h.earlier("r-1", ml.Ending.STOPPED, saved=300, reason="opt_stop of B: low")
    h.earlier("r-2", ml.Ending.INTERRUPTED, saved=500)
    h.supervisor.take_up()
    assert [h.status(f"r-{n}") for n in range(4)] == [ml.Status.FINISHED, ml.Status.STOPPED, ml.Status.PENDING, ml.Status.PENDING]
    h.tick()
    assert h.launcher.last("r-2").command[-1] == "--resume"
    h.launcher.last("r-2").end(0)
    h.tick(5)
    assert h.supervisor.by_id["r-2"].duration(h.clock()) == 15.0  # both sessions
    assert h.launcher.last("r-3").command[-1] != "--resume"


def training_status(folder, run_id: str, steps: int, model: bool = True) -> None:
    run_dir = folder / "results" / run_id
    (run_dir / "run_logs").mkdir(parents=True, exist_ok=True)
    final = {"steps": steps, "file_path": str(run_dir / "B.onnx")}
    (run_dir / "run_logs" / "training_status.json").write_text(json.dumps({"B": {"final_checkpoint": final}}))
    if model:
        (run_dir / "B.onnx").write_bytes(b"model %d" % steps)


@pytest.mark.parametrize("text, saved, to_the_end", [
    (None, None, False),  # no record
    ("{not json", None, False),
    ("[1000]", None, False),
    ('{"B": "x"}', None, False),
    ('{"B": {"final_checkpoint": {"steps": "1000"}}}', None, False),
    ('{"B": {"final_checkpoint": {"steps": NaN}}}', None, False),
    ('{"B": {"final_checkpoint": {"steps": 600}}}', 600.0, False),  # stopped at 600 of 1000
    ('{"B": {"final_checkpoint": {"steps": 1000}}}', 1000.0, True),
    ('{"B": {"checkpoints": [{"steps": 500}, {"steps": 900}, "x"]}}', 900.0, False),  # saved, never ended
    # the final checkpoint is what --resume loads: a run that took over another's checkpoint lists later ones of its own
    ('{"B": {"checkpoints": [{"steps": 1200}], "final_checkpoint": {"steps": 1000}}}', 1000.0, True),
    ('{"Other": {"final_checkpoint": {"steps": 1000}}}', None, False),  # another behavior's record
])
def test_what_mlagents_recorded_it_saved_tells_the_last_step_and_whether_a_run_finished(tmp_path, text, saved, to_the_end):
    [run] = ml.expand(ml.parse_config(grid(1)), "r")
    run_dir = tmp_path / "results" / "r-0"
    (run_dir / "run_logs").mkdir(parents=True)
    (run_dir / "B.onnx").write_bytes(b"model")
    if text is not None:
        (run_dir / "run_logs" / "training_status.json").write_text(text)
    results = ml.Results(tmp_path / "results")
    assert (results.steps_saved(run, {}), results.trained_to_the_end(run, {})) == (saved, to_the_end)


def test_a_run_that_reached_max_steps_without_its_model_did_not_finish(tmp_path):
    [run] = ml.expand(ml.parse_config(grid(1)), "r")
    training_status(tmp_path, "r-0", 1000, model=False)
    assert ml.Results(tmp_path / "results").trained_to_the_end(run, {}) is False


def test_what_an_older_sweep_left_in_a_runs_folder_is_never_taken_for_this_sweeps(tmp_path):
    # The folder held a finished run of an older sweep with the same id when this sweep first launched the run:
    # until this sweep's sessions write there, the record there is not this run's.
    [run] = ml.expand(ml.parse_config(grid(1)), "r")
    results = ml.Results(tmp_path / "results")
    training_status(tmp_path, "r-0", 1000)
    (tmp_path / "results" / "r-0" / "B").mkdir()
    (tmp_path / "results" / "r-0" / "B" / "checkpoint.pt").write_bytes(b"old")
    inherited = results.fingerprint(run)
    assert sorted(inherited) == ["B.onnx", "B/checkpoint.pt", "run_logs/training_status.json"]
    assert (results.trained_to_the_end(run, inherited), results.steps_saved(run, inherited),
            results.resumable(run, inherited)) == (False, None, False)
    training_status(tmp_path, "r-0", 400, model=False)  # this sweep's session saved at 400
    (tmp_path / "results" / "r-0" / "B" / "checkpoint.pt").write_bytes(b"new checkpoint")
    assert (results.trained_to_the_end(run, inherited), results.steps_saved(run, inherited),
            results.resumable(run, inherited)) == (False, 400.0, True)


def test_a_run_tensorboard_had_no_point_of_gets_its_last_step_from_mlagents_own_record(tmp_path):
    h = Harness(tmp_path, grid(2), concurrency=2)
    h.tick()
    fake = h.launcher.last("r-0")
    fake.step = 700
    fake.end(0, trained_to_the_end=False)  # r-1 leaves no record
    h.launcher.last("r-1").end(3)
    h.tick(1)
    assert [h.supervisor.by_id[run_id].last_step for run_id in ("r-0", "r-1")] == [700, None]
    _, rows, _ = ml.summary_rows(h.outcome(), h.settings)
    assert {row[0]: row[6] for row in rows} == {"r-0": "700", "r-1": ""}


# -- lost runs (a launcher that loses a run: a cluster node that died) ------------------------

def test_a_lost_run_fails_with_the_reason_when_no_retry_is_left(tmp_path):
    h = Harness(tmp_path, grid(1), concurrency=1, max_retries=0)
    h.tick()
    h.launcher.last("r-0").lost = "node n1 died"
    h.tick(3)
    assert h.status("r-0") is ml.Status.FAILED
    assert h.supervisor.by_id["r-0"].stop_reason == "node n1 died"


def test_a_lost_run_trains_again_from_its_checkpoint_until_its_retries_are_spent(tmp_path):
    h = Harness(tmp_path, grid(1), concurrency=1, max_retries=2)
    h.tick()
    h.launcher.last("r-0").lost = "node n1 died"
    h.tick(1)  # nothing was saved yet: it starts over, fresh
    h.results.save(h.runs[0], 300)  # its second session saved a checkpoint
    h.launcher.last("r-0").lost = "node n2 died"
    h.tick(1)
    h.launcher.last("r-0").lost = "node n3 died"
    h.tick(1)
    assert [run.command[-1] == "--resume" for run in h.launcher.started] == [False, False, True]
    assert h.status("r-0") is ml.Status.FAILED and h.supervisor.by_id["r-0"].stop_reason == "node n3 died"
    assert [line for line in h.lines() if line.startswith("lost")] == [
        "lost r-0 (node n1 died): it trains again (retry 1 of 2)",
        "lost r-0 (node n2 died): it trains again from its checkpoint (retry 2 of 2)",
    ]


def test_a_lost_run_that_was_pausing_or_stopping_keeps_that_ending(tmp_path):
    # Its trainer had the SIGINT: what it saved is in the results folder, and training it again would waste it.
    watcher = FakeWatcher()
    h = Harness(tmp_path, stop_config(1), watcher=watcher, concurrency=1)
    h.launcher.on_interrupt = None
    h.tick()
    watcher.serve(1.0, {("r-0", "B", TAG): [(300, -2.0)]})
    h.tick(1)
    h.launcher.last("r-0").lost = "node n1 died"
    h.tick(1)
    assert h.status("r-0") is ml.Status.STOPPED and len(h.launcher.started) == 1


# -- ports ------------------------------------------------------------------------------

@pytest.mark.parametrize("taken, slot, instances, ports, said", [
    (set(), 0, 2, (5005, 5006), []),
    (set(), 2, 2, (5009, 5010), []),
    ({5009}, 2, 2, (5015, 5016), ["port 5009 is in use by another program; r-0 skips it"]),  # the lane's next turn
    ({5010, 5016}, 2, 2, (5021, 5022), ["port 5010 is in use by another program; r-0 skips it",
                                        "port 5016 is in use by another program; r-0 skips it"]),
])
def test_each_slot_has_its_own_lane_of_ports_and_skips_ports_other_programs_hold(tmp_path, taken, slot, instances, ports, said):
    heard = []
    launcher = ml.LocalLauncher(ml.Platform(), base_port=5005, concurrency=3, stride=2,
                                is_port_free=lambda port: port not in taken, say=heard.append, locks=tmp_path)
    run = ml.expand(ml.parse_config("behaviors:\n  B: {}\n"), "r")[0]
    run.instances = instances
    got, lane = launcher.pick_ports(slot, run)
    assert got == ports
    assert heard == said
    ml.release_lane(lane)


def test_no_port_range_below_65536_fails_the_run_not_the_sweep(tmp_path):
    launcher = ml.LocalLauncher(ml.Platform(), base_port=65530, concurrency=2, stride=4, is_port_free=lambda port: True,
                                locks=tmp_path)
    run = ml.expand(ml.parse_config("behaviors:\n  B: {}\nenv_settings: {num_envs: 4}\n"), "r")[0]
    with pytest.raises(ml.LaunchError, match="no free port range below 65536"):
        launcher.pick_ports(1, run)


def test_two_sweeps_on_one_base_port_never_hand_one_port_to_runs_of_both(tmp_path):
    # A trainer binds its port only once it has imported torch: until then the port looks free to the other
    # sweep, and its run failed with "worker number 0 is still in use". Each run holds its lane's lock.
    heard = []
    first, second = (ml.LocalLauncher(ml.Platform(), base_port=5005, concurrency=2, stride=1, is_port_free=lambda port: True,
                                      locks=tmp_path / "locks", say=heard.append) for _ in range(2))
    run = ml.expand(ml.parse_config("behaviors:\n  B: {}\n"), "r")[0]
    ports, lane = first.pick_ports(0, run)
    again, other_lane = second.pick_ports(0, run)
    assert (ports, again) == ((5005, 5005), (5007, 5007))  # slot 0's next lane: 5005 + 2 slots
    assert heard == ["port 5005 is held by another sweep's run; r-0 skips it"]
    ml.release_lane(lane)  # the first sweep's run ended
    assert second.pick_ports(0, run)[0] == (5005, 5005)
    ml.release_lane(other_lane)


# -- reclaiming what an earlier sweep left ------------------------------------------------

class FakePlatform(ml.Platform):
    """Left-over trainers that never exit by themselves; records every signal and when it was sent."""

    def __init__(self, clock) -> None:
        self.clock = clock
        self.sent = []
        self.killed = set()

    def trainer_alive(self, leftover) -> bool:
        return leftover.trainer is not None and leftover.run_id not in self.killed

    def signal_leftover(self, leftover, hard: bool) -> None:
        self.sent.append((leftover.run_id, "kill" if hard else "interrupt", self.clock()))
        if hard:
            self.killed.add(leftover.run_id)


def leftovers():
    return [ml.Leftover("r-0", 10, (10, 11), "m0"), ml.Leftover("r-1", 20, (20,), "m1"), ml.Leftover("r-2", None, (30,), "m2")]


def test_reclaiming_waits_one_stop_timeout_for_every_left_over_trainer_together(tmp_path):
    h = Harness(tmp_path, grid(1))
    platform = FakePlatform(h.clock)
    began = h.clock()
    ml.reclaim(leftovers(), platform, 60, h.supervisor.console, lambda: 0, clock=h.clock, sleep=h.clock.sleep)
    assert [(run_id, what, round(at - began, 1)) for run_id, what, at in platform.sent] == [
        ("r-0", "interrupt", 0.0), ("r-1", "interrupt", 0.0), ("r-2", "kill", 0.0),  # nothing left to save r-2's model
        ("r-0", "kill", 60.0), ("r-1", "kill", 60.0),  # one --stop-timeout for both, not one after the other
    ]
    assert h.lines() == [
        "r-0 of the earlier sweep left 2 processes behind (10, 11): stopping its trainer so it saves its model",
        "r-1 of the earlier sweep left 1 process behind (20): stopping its trainer so it saves its model",
        "r-2 of the earlier sweep left 1 process behind (30): killing it: no trainer is left to save a model",
    ]
    assert h.warnings() == [f"warning: r-{n}'s earlier trainer did not stop within --stop-timeout 60s: killed" for n in (0, 1)]


def test_a_ctrl_c_while_reclaiming_kills_what_is_left_at_once(tmp_path):
    h = Harness(tmp_path, grid(1))
    platform = FakePlatform(h.clock)
    began = h.clock()
    signals = lambda: 1 if h.clock() - began >= 10 else 0  # Ctrl-C ten seconds in
    ml.reclaim(leftovers()[:2], platform, 600, h.supervisor.console, signals, clock=h.clock, sleep=h.clock.sleep)
    assert [(what, round(at - began)) for _, what, at in platform.sent] == [
        ("interrupt", 0), ("interrupt", 0), ("kill", 10), ("kill", 10)]


# -- the summary ---------------------------------------------------------------------------

@pytest.mark.parametrize("mode, order, best", [
    ("max", ["r-2", "r-1", "r-0", "r-3"], "r-1"),  # r-2 scored highest but failed: never named best
    ("min", ["r-0", "r-1", "r-2", "r-3"], "r-0"),
])
def test_the_summary_ranks_by_metric_mode_and_never_names_a_failed_run_best(tmp_path, mode, order, best):
    h = Harness(tmp_path, grid(4), concurrency=4, metric="Losses/Value Loss", metric_mode=mode)
    h.tick()
    for run, code in zip(h.launcher.started, (0, 0, 1, 0)):
        run.end(code)
    h.tick(1)
    for n, value in enumerate((0.5, 1.5, 2.5)):
        h.supervisor.by_id[f"r-{n}"].metrics[("B", "Losses/Value Loss")] = value
    header, rows, ranked = ml.summary_rows(h.outcome(), h.settings)
    assert [row[0] for row in rows] == order
    h.summary()
    assert (tmp_path / "results" / "r-sweep" / "summary.md").read_text().splitlines()[-1] == (
        f"Best run: {best} (n={best[-1]}), score {dict(r0=0.5, r1=1.5)[best.replace('-', '')]:g} "
        f"(the mean of its last 3 points of Losses/Value Loss); "
        f"its config: {tmp_path / 'results' / 'r-sweep' / 'configs' / (best + '.yaml')}")


def test_a_run_whose_metric_is_not_a_finite_number_ranks_last_and_is_never_named_best(tmp_path):
    h = Harness(tmp_path, grid(3), concurrency=3)
    h.train_all()
    for n, value in enumerate((math.inf, 0.5, math.nan)):
        h.supervisor.by_id[f"r-{n}"].metrics[("B", TAG)] = value
    assert [row[0] for row in ml.summary_rows(h.outcome(), h.settings)[1]] == ["r-1", "r-0", "r-2"]
    h.summary()
    assert (tmp_path / "results" / "r-sweep" / "summary.md").read_text().splitlines()[-1].startswith(
        f"Best run: r-1 (n=1), score 0.5 (the mean of its last 3 points of {TAG});")


def test_metrics_from_a_final_poll_that_got_no_answer_are_the_last_good_ones_and_the_summary_says_so(tmp_path):
    watcher = FakeWatcher()
    h = Harness(tmp_path, grid(1), watcher=watcher, concurrency=1)
    h.train_all()
    watcher.final = ml.Snapshot(5.0, {("r-0", "B", TAG): [(1000.0, 0.7)]}, stale=True)
    h.supervisor.collect_metrics()
    h.summary()
    assert h.warnings() == ["warning: TensorBoard did not answer the last poll: the metrics below are those of the poll before"]
    assert (tmp_path / "results" / "r-sweep" / "summary.md").read_text().splitlines()[-1].startswith(
        f"Best run: r-0 (n=0), score 0.7 (the mean of its last 3 points of {TAG});")


def test_with_repetitions_the_summary_ranks_the_combinations_by_their_mean(tmp_path):
    # 3 combinations x 2 repetitions, in laps: r-0..r-2, then r-3..r-5. r-4 fails (its value is
    # not a result) and r-2 has no value: each is counted, neither is averaged in.
    h = Harness(tmp_path, grid(3), concurrency=6, repetitions=2)
    h.tick()
    for run, code in zip(h.launcher.started, (0, 0, 0, 0, 1, 0)):
        run.end(code)
    h.tick(1)
    for run_id, value in {"r-0": 1.0, "r-3": 2.0, "r-1": 0.5, "r-4": 9.0, "r-2": None, "r-5": 0.25}.items():
        if value is not None:
            h.supervisor.by_id[run_id].metrics[("B", TAG)] = value
    header, rows, _ = ml.combination_rows(h.outcome(), h.settings)
    assert header == ["values", "runs", "scored", "mean score", "std", "min", "max", "run ids"]
    assert rows == [["n=0", "2", "2", "1.5", "0.707107", "1", "2", "r-0 r-3"],
                    ["n=1", "2", "1", "0.5", "", "0.5", "0.5", "r-1 r-4"],
                    ["n=2", "2", "1", "0.25", "", "0.25", "0.25", "r-2 r-5"]]
    h.summary()
    folder = tmp_path / "results" / "r-sweep"
    best = "Best settings: n=0, mean score 1.5 over 2 of its 2 runs (r-0 r-3)"
    assert (folder / "summary_by_combination.csv").read_text().splitlines()[1] == "n=0,2,2,1.5,0.707107,1,2,r-0 r-3"
    markdown = (folder / "summary.md").read_text()
    assert "## By combination (2 repetitions)\n\n| values | runs | scored |" in markdown
    assert markdown.splitlines()[-1] == best
    out = "\n".join(h.lines())
    assert "By combination (2 repetitions), best mean first:" in out and best in out


def test_without_repetitions_there_is_no_table_of_combinations(tmp_path):
    h = Harness(tmp_path, grid(2), concurrency=2)
    h.train_all()
    h.summary()
    assert not (tmp_path / "results" / "r-sweep" / "summary_by_combination.csv").exists()
    assert "By combination" not in (tmp_path / "results" / "r-sweep" / "summary.md").read_text()


# -- a run is a record: what it trained, how it ended, whose results it reads ----------------------

def test_an_exit_0_short_of_max_steps_unasked_is_not_finished_but_interrupted_and_resume_continues_it(tmp_path):
    # A Ctrl-C from elsewhere (another sweep's --resume signalled this one's trainer) makes mlagents-learn save
    # and exit 0 at step 100 of 1000: it did not finish.
    h = Harness(tmp_path, grid(2), concurrency=2)
    h.tick()
    fake = h.launcher.last("r-0")
    fake.step = 100
    fake.end(0, trained_to_the_end=False)
    h.launcher.last("r-1").end(0)
    assert h.tick(5) is True
    assert [h.status(f"r-{n}") for n in range(2)] == [ml.Status.INTERRUPTED, ml.Status.FINISHED]
    assert h.lines()[2] == ("interrupted r-0: exit 0 after 5s: it ended at step 100 short of max_steps 1000 without being "
                            "asked to stop; --resume continues it")
    assert h.supervisor.exit_code() == ml.EXIT_FAILED
    again = h.taken_up(grid(2))
    again.tick()
    assert again.launcher.ids() == ["r-0"] and again.launcher.last("r-0").command[-1] == "--resume"


def test_a_run_this_sweep_never_started_starts_afresh_whatever_an_older_sweeps_results_say(tmp_path):
    # Same run ids, older sweep: r-1 finished there, r-2 was interrupted there. Neither is this sweep's.
    h = Harness(tmp_path, grid(3), concurrency=1, force=True)
    h.results.save(h.runs[1], 1000)
    h.results.save(h.runs[2], 400)
    h.tick()
    h.supervisor.note_signal()  # Ctrl-C while r-0 trains: r-1 and r-2 never started in this sweep
    h.tick(1)
    assert h.tick(1) is True
    again = h.taken_up(grid(3))
    assert [again.status(f"r-{n}") for n in range(3)] == [ml.Status.PENDING] * 3
    assert again.lines() == []  # nothing "trained to the end (its results say so)"
    again.tick()
    assert [run.command[-1] for run in again.launcher.started] == ["--resume"]  # r-0 saved in this sweep
    again.launcher.last("r-0").end(0)
    again.tick(1)
    again.launcher.last("r-1").end(0)
    again.tick(1)
    assert [run.command[-1] for run in again.launcher.started] == ["--resume", "--force", "--force"]
    assert again.results.cleared == ["r-1", "r-2"]


def test_a_run_the_sweep_died_while_it_trained_finished_if_mlagents_says_so_else_continues(tmp_path):
    h = Harness(tmp_path, grid(3), concurrency=3)
    h.tick()
    for n, step in enumerate((1000, 400)):
        h.results.save(h.runs[n], step)  # what each saved before the sweep was killed outright
    began = h.clock()
    h.clock.advance(100)  # taken up later: how long the open sessions lasted is not known
    again = h.taken_up(grid(3))  # killed: the state file still says all three run
    assert [again.status(f"r-{n}") for n in range(3)] == [ml.Status.FINISHED, ml.Status.PENDING, ml.Status.PENDING]
    # Each closed at the take-up's time at the latest, so every point it wrote still counts as its own.
    assert [again.supervisor.by_id[f"r-{n}"].windows() for n in range(3)] == [((began, again.clock.now),)] * 3
    assert again.lines() == ["r-0 trained to the end (its results say so): not trained again"]
    again.tick()
    assert [(run.run_id, run.command[-1]) for run in again.launcher.started] == [("r-1", "--resume"), ("r-2", "--base-port=6001")]


def test_combinations_are_grouped_by_the_identity_of_their_values_never_by_their_cut_text(tmp_path):
    # Two values alike in their first 40 characters: with 2 repetitions they were one "combination" of 4 runs,
    # and the Best line was wrong. People read cut values; machines (CSV) read whole ones.
    long = "x" * 45
    config = f"behaviors:\n  B:\n    max_steps: 1000\nstand_in:\n  tag: {{opt_values: [{long}1, {long}2]}}\n"
    h = Harness(tmp_path, config, concurrency=4, repetitions=2)
    h.train_all()
    for run_id, value in {"r-0": 1.0, "r-1": 5.0, "r-2": 2.0, "r-3": 6.0}.items():
        h.supervisor.by_id[run_id].metrics[("B", TAG)] = value
    _, rows, ranked = ml.combination_rows(h.outcome(), h.settings)
    shown = f"tag={'x' * 40}..."
    assert rows == [[shown, "2", "2", "5.5", "0.707107", "5", "6", "r-1 r-3"],
                    [shown, "2", "2", "1.5", "0.707107", "1", "2", "r-0 r-2"]]
    h.summary()
    folder = tmp_path / "results" / "r-sweep"
    assert [line.split(",")[0] for line in (folder / "summary_by_combination.csv").read_text().splitlines()] == [
        "values", f"tag={long}2", f"tag={long}1"]
    assert (folder / "summary.csv").read_text().splitlines()[1].startswith(f"r-3,tag={long}2,,finished,")
    assert (folder / "summary.md").read_text().splitlines()[-1] == (
        f"Best settings: {shown}, mean score 5.5 over 2 of its 2 runs (r-1 r-3)")


def test_a_state_file_that_cannot_be_written_at_the_end_is_tried_again_then_said_with_what_resume_will_do(tmp_path):
    writes = FlakyWrites(failures=10**6)
    h = Harness(tmp_path, grid(1), write=writes, concurrency=1)
    h.tick()
    h.launcher.last("r-0").end(0)
    assert h.tick(1) is True
    before, began = writes.attempts, h.clock()
    h.supervisor.save_at_exit()
    assert (writes.attempts - before, h.clock() - began) == (1 + ml.STATE_RETRY, ml.STATE_RETRY)  # once a second
    path = tmp_path / "results" / "r-sweep" / "sweep_state.json"
    assert h.supervisor.unsaved() == (
        f"the state file {path} could not be written (No space left on device): --resume will take up the sweep "
        "that is there (none, if this sweep never wrote one); a run it calls running is finished if ML-Agents' own "
        "record says it trained to the end, else it continues from its checkpoint, and runs started since then train "
        "again. Free some space before you resume")
    writes.failures = 0
    h.supervisor.save_at_exit()
    assert h.supervisor.unsaved() == ""


def test_what_the_sweep_asks_of_a_run_is_on_disk_before_the_signal_goes(tmp_path):
    # The sweep may die between the two: --resume must still know the run was told to stop (or pause).
    watcher = FakeWatcher()
    h = Harness(tmp_path, stop_config(1), watcher=watcher, concurrency=1)
    h.tick()
    seen = []
    fake = h.launcher.last("r-0")
    fake.interrupt = lambda: seen.append(h.records_json()["runs"][0]["sessions"][-1])
    watcher.serve(1.0, {("r-0", "B", TAG): [(300, -2.0)]})
    h.tick(1)
    assert [(session["asked"], session["reason"]) for session in seen] == [
        ("stop", f"opt_stop of B: {TAG} = -2 < min 0 at step 300")]


class GoesOnChanged:
    """A policy of the grid's proposals that tells a paused run to go on with n = 7: what population based
    training will do, through a decision that carries a spec rather than a new kind of action."""

    def __init__(self, grid) -> None:
        self.grid = grid

    def __getattr__(self, name):
        return getattr(self.grid, name)

    def decide(self, records, snapshot):
        return [ml.Decision(record.run.run_id, ml.Action.CONTINUE, "explore: n=7",
                            spec=ml.dataclasses.replace(record.run.spec, values=(("stand_in", "n", 7),)))
                for record in records if record.status is ml.Status.PAUSED]


def test_a_decision_that_carries_a_spec_continues_the_run_from_its_checkpoint_with_other_values(tmp_path):
    h = Harness(tmp_path, grid(2), concurrency=1)
    h.supervisor.make_run = h.plan.make_run  # values off the grid are made from the config
    h.earlier("r-0", ml.Ending.PAUSED, saved=300)
    h.supervisor.policy = GoesOnChanged(h.policy)
    h.tick()
    assert h.lines() == ["r-0 goes on: explore: n=7", "resume r-0: n=7, port 6000"]
    assert h.launcher.last("r-0").command[-1] == "--resume"
    written = (tmp_path / "results" / "r-sweep" / "configs" / "r-0.yaml").read_text()
    assert "n: 7" in written
    entry = h.records_json()["runs"][0]
    assert (entry["values"], entry["combination"]) == ([["stand_in", "n", "7", None]], ml.combination_of([("stand_in", "n", 7)]))


def test_files_for_machines_hold_whole_values_a_labelled_one_after_its_label(tmp_path):
    long = "y" * 45
    config = (f"behaviors:\n  B:\n    max_steps: 1000\nstand_in:\n  style: {{opt_values: {{calm: 1, wild: {long}}}}}\n")
    h = Harness(tmp_path, config, concurrency=2)
    h.train_all()
    h.summary()
    folder = tmp_path / "results" / "r-sweep"
    assert [line.split(",")[1] for line in (folder / "summary.csv").read_text().splitlines()] == [
        "values", "style=calm = 1", f"style=wild = {long}"]
    assert "| r-1 | style=wild |  | finished |" in (folder / "summary.md").read_text()  # people read the label


# -- the HParams tab's rows --------------------------------------------------------------------

def hparams_rows(results) -> dict:
    """run id -> (trial id, the row's values) of the session the sweep wrote in the run's folder."""
    from tensorboard.compat.proto import event_pb2
    from tensorboard.plugins.hparams import plugin_data_pb2

    rows = {}
    for run_id, data in results.own_events.items():
        events, at = [], 0
        while at < len(data):
            length = int.from_bytes(data[at:at + 8], "little")
            events.append(event_pb2.Event.FromString(data[at + 12:at + 12 + length]))
            at += 12 + length + 4
        [start] = [plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content).session_start_info
                   for event in events for value in event.summary.value if value.tag == "_hparams_/session_start_info"]
        values = {name: value.WhichOneof("kind") and getattr(value, value.WhichOneof("kind")) for name, value in start.hparams.items()}
        rows[run_id] = (start.group_name, values)
    return rows


def test_a_row_of_the_hparams_tab_is_written_once_every_repetition_of_it_is_done(tmp_path):
    # TensorBoard keeps the first row it reads of a run: a row written before all its runs were done stayed
    # "running" (or one repetition's) in it. A row is its repetitions together, written when the last is done.
    h = Harness(tmp_path, grid(2), concurrency=2, repetitions=2)
    h.supervisor.hparams = ml.HParamsWriter(h.settings, h.results, ml.hparams_groups(h.runs))
    h.tick()
    h.launcher.started[0].end(0)  # r-0 finished; its repetition r-2 is still to come
    h.tick(1)
    assert h.results.own_events == {}
    h.launcher.started[1].end(0)
    h.tick(1)  # r-1 finished; r-2 and r-3 start
    h.launcher.started[2].end(1)  # r-2 failed: r-0's row is complete
    h.tick(1)
    rows = hparams_rows(h.results)
    assert sorted(rows) == ["r-0", "r-2"]
    assert rows["r-0"][0] == rows["r-2"][0] == "r-0 x2"
    assert rows["r-0"][1] == rows["r-2"][1]
    values = rows["r-0"][1]
    assert (values["n"], values["sweep"], values["status"]) == (0.0, "r", "1 failed, 1 finished")
    assert values["start"] <= values["end"] and len(values["start"]) == len("12-05 14:00")


def test_a_row_is_said_in_words_everyone_reads():
    assert ml.group_name(["r-4"]) == "r-4" and ml.group_name(["r-1", "r-5", "r-9"]) == "r-1 x3"
