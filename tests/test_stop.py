"""Stop conditions: the pure rules from tables, then sweeps against a real TensorBoard server.

A run a test expects to be stopped waits at a gate (stand_in.gate) that never
opens: it can only end by being stopped, however slow the machine.
"""

import csv
import json
import math
import os
import re
import socket
import threading
import urllib.request
import time
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import mlagents_learn
from conftest import SCRIPT
from helpers import STAND_IN, TensorBoardServer, free_port, process_alive, read_records, scalars, wait_until
from mlagents_learn import StopRule, check_median, check_threshold, main, value_at

TAG = "Environment/Cumulative Reward"


# -- the rules, pure ----------------------------------------------------------

@pytest.mark.parametrize("rule, points, reason", [
    (StopRule("B", TAG, 100, min=0), [], None),
    (StopRule("B", TAG, 100, min=0), [(50, -5.0)], None),  # before step: not checked
    (StopRule("B", TAG, 100, min=0), [(50, -5.0), (100, -0.5)], f"{TAG} = -0.5 < min 0 at step 100"),
    # Every point from step on counts, however late the poll: a run was stopped or not by when TensorBoard was read.
    (StopRule("B", TAG, 100, min=0), [(100, -5.0), (150, 0.0)], f"{TAG} = -5 < min 0 at step 100"),
    (StopRule("B", TAG, 100, min=0), [(50, -5.0), (100, 0.5), (150, -1.0), (200, -2.0)], f"{TAG} = -1 < min 0 at step 150"),
    (StopRule("B", TAG, 0, max=2), [(10, 2.5)], f"{TAG} = 2.5 > max 2 at step 10"),
    (StopRule("B", TAG, 0, min=-1, max=2), [(10, 2.0)], None),  # bounds are inclusive
    (StopRule("B", TAG, 0, min=-1, max=2), [(10, -1.0)], None),
    # A value that is not a finite number (a run that diverged) breaks every threshold, saying so.
    (StopRule("B", TAG, 0, min=-1), [(10, math.nan)], f"{TAG} = nan at step 10: not a finite number"),
    (StopRule("B", TAG, 0, max=2), [(10, -math.inf)], f"{TAG} = -inf at step 10: not a finite number"),
    (StopRule("B", TAG, 100, min=0), [(50, math.nan)], None),  # before step: not checked
])
def test_threshold_rule(rule, points, reason):
    assert check_threshold(rule, points) == reason


def test_value_at_is_the_running_mean_up_to_step_and_none_before_the_run_gets_there():
    points = [(100, 1.0), (200, 2.0), (300, 6.0)]
    assert [value_at(points, step) for step in (100, 200, 250, 300, 301)] == [1.0, 1.5, 1.5, 3.0, None]


MEDIAN = StopRule("B", TAG, 200, rule="median", min_runs=3)
GOOD = [(100, 2.0), (200, 2.0), (300, 2.0)]
BEST = [(100, 3.0), (200, 3.0), (300, 3.0)]
WORST = [(100, 0.0), (200, 0.0), (300, 0.0)]


@pytest.mark.parametrize("rule, mine, others, reason", [
    (MEDIAN, [(100, 1.0), (200, 1.0)], [GOOD, BEST, WORST], f"{TAG} mean 1 < median 2 of 3 runs at step 200"),
    (MEDIAN, [(100, 1.0)], [GOOD, BEST, WORST], None),  # not yet at step
    (MEDIAN, [(100, 1.0), (200, 1.0)], [GOOD, BEST], None),  # too few other runs
    (MEDIAN, [(100, 1.0), (200, 1.0)], [GOOD, BEST, [(100, 9.0)]], None),  # one has not reached 200
    (MEDIAN, [(100, 2.0), (200, 2.0)], [GOOD, BEST, WORST], None),  # equal to the median is not worse
    # The latest point (11) beats the median, but the running mean (1) does not.
    (MEDIAN, [(100, -9.0), (200, 11.0)], [GOOD, BEST, WORST], f"{TAG} mean 1 < median 2 of 3 runs at step 200"),
    (StopRule("B", TAG, 0, rule="median", min_runs=1), [(300, 1.0)], [BEST], f"{TAG} mean 1 < median 3 of 1 runs at step 300"),
    (StopRule("B", "Losses/Value Loss", 0, rule="median", min_runs=3, mode="min"), [(200, 2.5)], [GOOD, BEST, WORST],
     "Losses/Value Loss mean 2.5 > median 2 of 3 runs at step 200"),
    (StopRule("B", "Losses/Value Loss", 0, rule="median", min_runs=3, mode="min"), [(200, 0.5)], [GOOD, BEST, WORST], None),
    # Not a finite number: the worst there is, whichever the mode, in the run and in the others.
    (MEDIAN, [(200, math.nan)], [GOOD, BEST, WORST], f"{TAG} mean nan at step 200: not a finite number"),
    (MEDIAN, [(200, math.inf)], [GOOD, BEST, WORST], f"{TAG} mean inf at step 200: not a finite number"),
    (MEDIAN, [(200, 0.5)], [[(200, math.nan)], [(200, math.nan)], GOOD], None),  # 0.5 beats the median, nan
    (MEDIAN, [(200, 0.5)], [[(200, math.inf)], BEST, GOOD], f"{TAG} mean 0.5 < median 2 of 3 runs at step 200"),
])
def test_median_rule(rule, mine, others, reason):
    assert check_median(rule, mine, others) == reason


# -- sweeps against a real TensorBoard ----------------------------------------

@pytest.fixture
def sweep_dir(folder, monkeypatch):
    monkeypatch.setattr(mlagents_learn, "TENSORBOARD_SETTLE", 2.5)
    (folder / "results").mkdir()
    return folder


@pytest.fixture
def board(sweep_dir):
    with TensorBoardServer(str(sweep_dir / "results"), reload_interval=1) as server:
        yield server


def config(folder: Path, stand_in: str, behaviors: str) -> Path:
    path = folder / "sweep.yaml"
    path.write_text(f"behaviors:\n{behaviors}stand_in:\n{stand_in}")
    return path


def args(path: Path, url: str, *extra: str) -> list[str]:
    return [str(path), "--trainer", shlex.join([sys.executable, STAND_IN]), "--results-dir", "results",
            "--run-id", "r", "--tensorboard-url", url, "--poll-interval", "1", "--stop-timeout", "20", *extra]


def summary(folder: Path) -> dict[str, dict[str, str]]:
    with (folder / "results" / "r-sweep" / "summary.csv").open() as handle:
        return {row["run"]: row for row in csv.DictReader(handle)}


def gated(folder: Path) -> str:
    return f"gate: {{step: 500, file: {folder / 'never'}}}"


def test_runs_below_min_after_step_are_stopped_and_keep_their_model(sweep_dir, board, capsys):
    runs = ["{scalars: {B: {Score: 1.5}}}", "{scalars: {B: {Score: -1.0}}, %s}" % gated(sweep_dir),
            "{scalars: {B: {Score: {start: 0.0, end: 1.0}}}}"]
    path = config(sweep_dir, "  opt_values:\n" + "".join(f"    - {{duration: 4, points: 40, steps: 1000, {run[1:]}\n" for run in runs),
                  "  B:\n    max_steps: 1000\n    summary_freq: 25\n    opt_stop: {tag: Score, step: 200, min: -0.5}\n")
    assert main(args(path, board.url, "--num-envs", "3", "--env=Fake", "--base-port", str(free_port()), "--metric", "Score")) == 0
    recs = {rec["run_id"]: rec for rec in read_records(sweep_dir / "records")}
    assert recs["r-1"]["signals"] == ["SIGINT"] and recs["r-1"]["exit_code"] == 0
    assert (sweep_dir / "results" / "r-1" / "B.onnx").is_file()
    assert [recs[r]["signals"] for r in ("r-0", "r-2")] == [[], []]
    assert [recs[r]["last_step"] for r in ("r-0", "r-2")] == [1000, 1000]
    out = capsys.readouterr().out
    stopped_at = [line for line in out.splitlines() if "stopping r-1: " in line]
    assert len(stopped_at) == 1 and stopped_at[0].split("] ", 1)[1].startswith(
        "stopping r-1: opt_stop of B: Score = -1 < min -0.5 at step ")
    assert "stopping r-0" not in out and "stopping r-2" not in out
    # The summary's numbers are TensorBoard's, best run first.
    rows = summary(sweep_dir)
    assert list(rows) == ["r-0", "r-2", "r-1"]
    assert [rows[r]["status"] for r in rows] == ["finished", "finished", "stopped early"]
    served = scalars(board.url, "r-1/B", "Score")
    assert (rows["r-1"]["last step"], rows["r-1"]["Score"]) == (f"{served[-1][0]:g}", "-1")
    assert rows["r-1"]["note"] == stopped_at[0].split("stopping r-1: ")[1]
    assert (rows["r-0"]["last step"], rows["r-0"]["Score"]) == ("1000", "1.5")
    assert (rows["r-2"]["last step"], rows["r-2"]["Score"]) == ("1000", "1")
    md = (sweep_dir / "results" / "r-sweep" / "summary.md").read_text()
    assert md.endswith("\nBest run: r-0 (stand_in={duration: 4, points: 40, steps: 1000, s...), "
                       "score 1.5 (the mean of its last 3 points of Score); its config: results/r-sweep/configs/r-0.yaml\n")


def test_max_bound_and_conditions_of_one_behavior_stop_only_their_own_run(sweep_dir, board, capsys):
    # A's condition reads A's run only: B's low values in r-0 and high ones in r-1 must not count.
    variants = ["{scalars: {A: {Loss: 0.5}, B: {Loss: 9.0}}}", "{scalars: {A: {Loss: 9.0}, B: {Loss: 0.5}}, %s}" % gated(sweep_dir)]
    path = config(sweep_dir, "  opt_values:\n" + "".join(f"    - {{duration: 4, points: 40, steps: 1000, {v[1:]}\n" for v in variants),
                  "  A:\n    max_steps: 1000\n    summary_freq: 25\n    opt_stop: {tag: Loss, max: 5}\n  B: {max_steps: 1000, summary_freq: 25}\n")
    assert main(args(path, board.url, "--num-envs", "2", "--env=Fake", "--base-port", str(free_port()),
                     "--metric", "Loss", "--metric-mode", "min")) == 0
    recs = {rec["run_id"]: rec for rec in read_records(sweep_dir / "records")}
    assert recs["r-0"]["signals"] == [] and recs["r-0"]["last_step"] == 1000
    assert recs["r-1"]["signals"] == ["SIGINT"]
    rows = summary(sweep_dir)
    assert rows["r-1"]["status"] == "stopped early"
    assert rows["r-1"]["note"].startswith("opt_stop of A: Loss = 9 > max 5 at step ")
    assert (rows["r-0"]["A: Loss"], rows["r-0"]["B: Loss"]) == ("0.5", "9")


def test_the_median_rule_stops_the_worst_runs_and_keeps_the_best(sweep_dir, board, capsys):
    # r-0 and r-1 finish first; r-2 (worse than both, held at a gate) and r-3 (between them) run next.
    variant = "{{duration: {}, points: 20, steps: 1000, scalars: {{B: {{Score: {}}}}}{}}}"
    runs = [variant.format(duration, score, extra) for duration, score, extra in
            ((1, 3.0, ""), (1, 2.0, ""), (4, 0.5, ", " + gated(sweep_dir)), (4, 2.5, ""))]
    path = config(sweep_dir, "  opt_values:\n" + "".join(f"    - {run}\n" for run in runs),
                  "  B:\n    max_steps: 1000\n    summary_freq: 25\n    opt_stop: {tag: Score, rule: median, step: 300, min_runs: 2}\n")
    assert main(args(path, board.url, "--num-envs", "2", "--env=Fake", "--base-port", str(free_port()),
                     "--metric", "Score")) == 0
    recs = {rec["run_id"]: rec for rec in read_records(sweep_dir / "records")}
    assert {r: recs[r]["signals"] for r in recs} == {"r-0": [], "r-1": [], "r-2": ["SIGINT"], "r-3": []}
    assert recs["r-3"]["last_step"] == 1000
    rows = summary(sweep_dir)
    assert list(rows) == ["r-0", "r-3", "r-1", "r-2"]
    # r-3 counts among the others once it has reached r-2's step; the median is 2.5 either way.
    assert re.fullmatch(r"opt_stop of B: Score mean 0.5 < median 2.5 of [23] runs at step \d+", rows["r-2"]["note"])


def test_tensorboard_absent_then_started_then_killed_training_goes_on(sweep_dir, tmp_path):
    # A trainer in a folder without tensorboard, and a PATH without it: the sweep cannot start its own.
    shim = tmp_path / "bin" / "trainer"
    shim.parent.mkdir()
    shim.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} {shlex.quote(STAND_IN)} \"$@\"\n")
    shim.chmod(0o755)
    port = free_port(1)
    good = "{duration: 4, points: 10, steps: 1000, scalars: {B: {Score: 1.0}}}"
    bad = "{duration: 10, points: 100, steps: 1000, scalars: {B: {Score: -1.0}}, %s}" % gated(sweep_dir)
    path = config(sweep_dir, f"  opt_values: [{good}, {bad}, {bad}]\n", "  B:\n    max_steps: 1000\n    summary_freq: 10\n    opt_stop: {tag: Score, min: 0}\n")
    argv = [str(path), "--trainer", str(shim), "--results-dir", "results", "--run-id", "r",
            "--tensorboard-url", f"http://127.0.0.1:{port}", "--poll-interval", "1", "--metric", "Score"]  # its only tag
    sweep = subprocess.Popen([sys.executable, str(SCRIPT), *argv], cwd=sweep_dir, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env={**os.environ, "PATH": "/usr/bin:/bin"})
    records = sweep_dir / "records"
    server = TensorBoardServer(str(sweep_dir / "results"), port=port, reload_interval=1)
    try:
        # Runs in order: r-0 (good), r-1 and r-2 (bad, held at the gate): nothing stops r-1 while TensorBoard is away.
        wait_until(lambda: any(r["run_id"] == "r-1" and r["last_step"] for r in read_records(records)), 60)
        assert not any(r["signals"] for r in read_records(records))
        server.start()
        wait_until(lambda: any(r["run_id"] == "r-1" and r["signals"] for r in read_records(records)), 60)
        wait_until(lambda: any(r["run_id"] == "r-2" and r["last_step"] for r in read_records(records)), 60)
        server.stop()
        wait_until(lambda: any(r["run_id"] == "r-2" and (r["last_step"] or 0) == 500 for r in read_records(records)), 60)
        assert not any(r["run_id"] == "r-2" and r["signals"] for r in read_records(records))
        server.start()
        out, err = sweep.communicate(timeout=120)
    finally:
        server.stop()
        if sweep.poll() is None:
            sweep.kill()
    assert sweep.returncode == 0, err
    warnings = [line for line in err.splitlines() if "warning: TensorBoard" in line]
    assert len(warnings) == 2, out + err  # one when it is absent at the start, one when it dies: not one per poll
    assert all(f"TensorBoard at http://127.0.0.1:{port} does not answer" in line for line in warnings)
    assert out.count("TensorBoard answers again: stop conditions are checked") == 2
    recs = {rec["run_id"]: rec for rec in read_records(records)}
    assert [recs[r]["signals"] for r in sorted(recs)] == [[], ["SIGINT"], ["SIGINT"]]
    assert [recs[r]["last_step"] < 1000 for r in sorted(recs)] == [False, True, True]


def test_a_tensorboard_that_trickles_its_answers_never_holds_the_sweep(sweep_dir, monkeypatch, capsys):
    # One byte every 2 s: a per-read timeout never trips, and the sweep used to freeze for good, Ctrl-C included.
    port = free_port(1)
    listener = socket.create_server(("127.0.0.1", port))
    closing = threading.Event()

    def trickle(connection):
        with connection:
            try:
                connection.recv(65536)
                for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]":
                    if closing.wait(2):
                        return
                    connection.sendall(bytes([byte]))
            except OSError:
                pass  # the sweep gave up on it: as it should

    def serve():
        while not closing.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=trickle, args=(connection,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    path = config(sweep_dir, "  duration: {opt_values: [0.5, 0.5, 0.5, 0.5]}\n", "  B:\n    max_steps: 1000\n    summary_freq: 100\n    opt_stop: {tag: Score, min: 0}\n")
    monkeypatch.setattr(mlagents_learn, "POLL_DEADLINE", 3.0)  # each poll gives up after 3 s, not 15
    try:
        code = main(args(path, f"http://127.0.0.1:{port}"))
    finally:
        closing.set()
        listener.close()
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert out.count("] finished r-") == 4
    assert [line.split("] ", 1)[1] for line in err.splitlines()] == [
        f"warning: TensorBoard at http://127.0.0.1:{port} does not answer (no answer before the poll's deadline); training goes on, stop conditions are checked again at each poll"]


# -- TensorBoard's HParams tab -----------------------------------------------------------------

def hparams_api(url: str, route: str, request: dict) -> dict:
    """POST a request to TensorBoard's HParams plugin, as its dashboard does."""
    post = urllib.request.Request(f"{url}/data/plugin/hparams/{route}", data=json.dumps(request).encode(),
                                  headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(post, timeout=30) as reply:  # nosec B310: a local test server
        return json.loads(reply.read())


ALL_STATUSES = ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]


def session_groups(url: str, columns: list[dict]) -> list[dict]:
    request = {"experimentName": "", "allowedStatuses": ALL_STATUSES, "colParams": columns, "startIndex": 0, "sliceSize": 100}
    return hparams_api(url, "session_groups", request).get("sessionGroups", [])


def good_and_bad(folder: Path) -> str:
    """A run that finishes and one that a rule on Score stops early: it holds at step 200 until its stop."""
    return ("  opt_values:\n"
            "    good: {duration: 1, points: 5, steps: 1000, scalars: {B: {Score: 1.0}}}\n"
            f"    bad: {{points: 5, steps: 1000, gate: {{step: 200, file: {folder / 'never'}}}, scalars: {{B: {{Score: -5.0}}}}}}\n")


def test_a_tensorboard_over_several_sweeps_lists_each_sweeps_rows_apart_with_status_start_and_end(sweep_dir, board):
    # Two sweeps of the same combinations in one results folder: each row stays its sweep's (it was one row,
    # a mean over both sweeps), the columns are every sweep's own (they were the first sweep's only).
    path = config(sweep_dir, good_and_bad(sweep_dir),
                  "  B:\n    max_steps: 1000\n    summary_freq: 200\n    opt_stop: {tag: Score, min: 0}\n")
    for run_id in ("r", "q"):
        assert main(args(path, board.url, "--run-id", run_id, "--metric", "Score", "--num-envs", "2", "--env=Fake",
                         "--base-port", str(free_port()),
                         "--poll-interval", "0.5")) == 0
    columns = [{"hparam": name} for name in ("stand_in", "sweep", "status")] + [{"metric": {"group": "B", "tag": "Score"}}]

    def rows() -> list:
        found = session_groups(board.url, columns)
        return found if len(found) == 4 and all(group.get("metricValues") for group in found) else []

    found = wait_until(rows, 60)
    seen = sorted((group["name"], group["hparams"]["sweep"], group["hparams"]["stand_in"], group["hparams"]["status"],
                   [session["name"] for session in group["sessions"]], group["metricValues"][0]["value"]) for group in found)
    assert seen == [("q-0", "q", "good", "finished", ["q-0"], 1.0), ("q-1", "q", "bad", "stopped early", ["q-1"], -5.0),
                    ("r-0", "r", "good", "finished", ["r-0"], 1.0), ("r-1", "r", "bad", "stopped early", ["r-1"], -5.0)]
    for group in found:
        start, end = group["hparams"]["start"], group["hparams"]["end"]
        assert re.fullmatch(r"\d\d-\d\d \d\d:\d\d", start) and start <= end
    experiment = hparams_api(board.url, "experiment", {"experimentName": ""})
    assert sorted(info["name"] for info in experiment["hparamInfos"]) == ["end", "stand_in", "start", "status", "sweep"]
    assert {"group": "B", "tag": "Score"} in [info["name"] for info in experiment["metricInfos"]]


def test_the_sweeps_own_tensorboard_shows_its_runs_and_its_experiment_only(sweep_dir):
    # An older sweep's runs in the same results folder, and no TensorBoard at the URL: the sweep starts its own.
    older = config(sweep_dir, "  duration: 0.5\n  points: 2\n  steps: 1000\n  style: {opt_values: [a, b]}\n",
                   "  B:\n    max_steps: 1000\n")
    assert main(args(older, "http://127.0.0.1:1", "--run-id", "q", "--no-tensorboard")) == 0
    path = config(sweep_dir, "  opt_values:\n"
                             "    quick: {duration: 1, points: 5, steps: 1000, scalars: {B: {Score: 1.0}}}\n"
                             f"    held: {{points: 5, steps: 1000, gate: {{step: 200, file: {sweep_dir / 'open'}}}, scalars: {{B: {{Score: 1.0}}}}}}\n",
                  "  B:\n    max_steps: 1000\n    summary_freq: 200\n")
    url = f"http://127.0.0.1:{free_port()}"
    sweep = subprocess.Popen([sys.executable, str(SCRIPT), *args(path, url, "--metric", "Score", "--poll-interval", "0.5")],
                             cwd=sweep_dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def answered() -> list:
            try:
                return session_groups(url, [])
            except OSError:
                return []  # not started yet

        wait_until(answered, 120)  # r-0 ended; r-1 waits at its gate
        runs = json.loads(urllib.request.urlopen(f"{url}/data/runs", timeout=30).read())  # nosec B310: a local test server
        experiment = hparams_api(url, "experiment", {"experimentName": ""})
        rows = session_groups(url, [])
    finally:
        (sweep_dir / "open").touch()
        out, err = sweep.communicate(timeout=120)
    assert sweep.returncode == 0, out + err
    assert "TensorBoard started: " + url in out
    assert set(runs) <= {"r-0/B", "r-1/B", "r-sweep", "r-0", "r-1"} and "r-0/B" in runs  # none of q's
    assert [info["name"] for info in experiment["hparamInfos"]] == ["stand_in", "end", "start", "status"]
    assert [info["name"] for info in experiment["metricInfos"]] == [{"group": "B", "tag": "Score"}]
    assert experiment["description"] == "sweep r"
    assert [(row["name"], row["hparams"]["status"]) for row in rows] == [("r-0", "finished")]


# -- only a run's own points count ----------------------------------------------------------

def test_points_an_older_sweep_left_under_a_runs_name_never_stop_it(sweep_dir, board):
    # `python scripts/demo.py` twice: the second sweep (--force) started, TensorBoard served the first sweep's
    # points under the same run names until mlagents-learn deleted them at its first summary, and the stop
    # rule stopped runs on them after 6-7 s. Only points written in a run's own sessions count.
    # The older sweep's run ended at step 600: far enough from the new run's max_steps for a stop.
    old = config(sweep_dir, "  duration: 1\n  points: 3\n  steps: 600\n  scalars: {B: {Score: -5.0}}\n",
                 "  B:\n    max_steps: 600\n")
    assert main(args(old, board.url, "--metric", "Score")) == 0
    wait_until(lambda: scalars(board.url, "r-0/B", "Score"), 30)
    new = config(sweep_dir, f"  duration: 1\n  points: 5\n  steps: 1000\n  gate: {{step: 0, file: {sweep_dir / 'open'}}}\n"
                            "  scalars: {B: {Score: 1.0}}\n",
                 "  B:\n    max_steps: 1000\n    summary_freq: 200\n    opt_stop: {tag: Score, min: 0}\n")
    sweep = subprocess.Popen([sys.executable, str(SCRIPT), *args(new, board.url, "--metric", "Score", "--force",
                                                                 "--poll-interval", "0.5")],
                             cwd=sweep_dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: len(read_records(sweep_dir / "records")) == 2, 30)  # the new run waits at its gate
        time.sleep(4)  # eight polls: each one a stop, were the older points taken for the run's own
    finally:
        (sweep_dir / "open").touch()
        out, err = sweep.communicate(timeout=60)
    assert sweep.returncode == 0, out + err
    assert "stopping r-0" not in out
    [_, rec] = sorted(read_records(sweep_dir / "records"), key=lambda rec: rec["start"])
    assert (rec["signals"], rec["last_step"]) == ([], 1000)
    row = summary(sweep_dir)["r-0"]
    assert (row["status"], row["Score"]) == ("finished", "1")  # its own last value, not the older sweep's


@pytest.mark.parametrize("served, windows, own", [
    ([(5.0, 100, 1.0), (15.0, 200, 2.0)], None, [(100, 1.0), (200, 2.0)]),  # no sessions said: every point
    ([(5.0, 100, 1.0), (15.0, 200, 2.0)], ((10.0, None),), [(200, 2.0)]),  # written before its session began
    ([(5.0, 100, 1.0), (15.0, 200, 2.0), (25.0, 300, 3.0)], ((0.0, 10.0), (20.0, None)), [(100, 1.0), (300, 3.0)]),
    ([(12.0, 100, 1.0)], ((0.0, 10.0),), []),  # after its only session ended: another run's
    ([(10.0, 100, 1.0)], ((10.0, 10.0),), [(100, 1.0)]),  # the ends count
])
def test_a_runs_own_points_are_those_written_in_its_sessions(served, windows, own):
    assert mlagents_learn.own_points(served, windows) == own


def test_a_tensorboard_reading_another_folders_runs_of_the_same_names_stops_nothing_and_is_named(sweep_dir, monkeypatch,
                                                                                             capsys):
    # Its logdir is relative, so the folder it reads cannot be compared; it serves another folder's r-0/B,
    # whose points stopped this sweep's r-0 with no warning. They are not r-0's own: they were written
    # before its session began.
    monkeypatch.setattr(mlagents_learn, "UNSERVED_GRACE", 1.0)
    other = sweep_dir / "other"
    from test_tensorboard import write_events
    write_events(other, "r-0/B", [(100, -5.0), (200, -5.0)])
    gate = sweep_dir / "open"
    path = config(sweep_dir, f"  duration: 1\n  points: 5\n  steps: 1000\n  gate: {{step: 200, file: {gate}}}\n"
                             "  scalars: {B: {Environment/Cumulative Reward: 1.0}}\n",
                  f"  B:\n    max_steps: 1000\n    summary_freq: 200\n    opt_stop: {{tag: {TAG}, min: 0}}\n")
    log = sweep_dir / "results" / "r-sweep" / "sweep.log"

    def open_once_named() -> None:  # the run holds at step 200 until the sweep has said what its TensorBoard reads
        wait_until(lambda: log.exists() and "reads another folder" in log.read_text(), 60)
        gate.touch()

    with TensorBoardServer("other", reload_interval=1) as board:  # relative: the test's folder is its working folder
        wait_until(lambda: scalars(board.url, "r-0/B", TAG) == [(100, -5.0), (200, -5.0)], 30)
        opener = threading.Thread(target=open_once_named, daemon=True)
        opener.start()
        try:
            code = main(args(path, board.url, "--poll-interval", "0.5"))
        finally:
            gate.touch()
            opener.join(60)
        assert scalars(board.url, "r-0/B", TAG)[-1] == (200, -5.0)  # served all along
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "stopping r-0" not in out
    events = (sweep_dir / "results" / "r-0" / "B").resolve()
    assert (f"warning: TensorBoard at {board.url} does not serve r-0/B, whose events are in {events}: it reads another "
            f"folder than this sweep's results {(sweep_dir / 'results').resolve()}; stop conditions cannot see the runs") in err
    assert (summary(sweep_dir)["r-0"]["status"], summary(sweep_dir)["r-0"][TAG]) == ("finished", "")  # none of its own


def test_the_sweeps_view_links_its_runs_and_reads_the_results_folder_where_no_link_can_be_made(tmp_path, monkeypatch):
    results = tmp_path / "results"
    (results / "r-0").mkdir(parents=True)
    view = mlagents_learn.SweepView(results, tmp_path / "view")
    view.show("r-0")
    view.show("r-1")  # its folder comes later: TensorBoard looks again at every reload
    assert (view.logdir, sorted(path.name for path in view.folder.iterdir())) == (tmp_path / "view", ["r-0", "r-1"])
    assert (view.folder / "r-0").resolve() == (results / "r-0").resolve()
    view.close()
    assert not (tmp_path / "view").exists() and (results / "r-0").is_dir()  # the links go, never what they point to

    def refused(target, link):
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(mlagents_learn, "link_folder", refused)
    view = mlagents_learn.SweepView(results, tmp_path / "view2")
    view.show("r-0")
    assert view.whole and view.logdir == results
