"""The sweep against real processes: the stand-in trainer, real signals, real ports."""

import csv
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, SCRIPT
from helpers import STAND_IN, free_port, process_alive, read_records, wait_until
import mlagents_learn as ml
from mlagents_learn import main

pytestmark = pytest.mark.skipif(os.name == "nt", reason="POSIX signals and process groups")

TRAINER = shlex.join([sys.executable, STAND_IN])


@pytest.fixture
def records(tmp_path, monkeypatch):
    folder = tmp_path / "records"
    folder.mkdir()
    monkeypatch.setenv("STAND_IN_RECORDS", str(folder))
    monkeypatch.chdir(tmp_path)
    return folder


def write_config(folder: Path, stand_in: str, behaviors: str = "  B:\n    max_steps: 100\n") -> Path:
    path = folder / "sweep.yaml"
    path.write_text(f"behaviors:\n{behaviors}stand_in:\n{stand_in}")
    return path


def sweep_args(config: Path, *extra: str) -> list[str]:
    return [str(config), "--trainer", TRAINER, "--results-dir", "results", "--run-id", "r", "--no-tensorboard", *extra]


def overlapping(a: dict, b: dict) -> bool:
    return a["start"] < b["end"] and b["start"] < a["end"]


def max_concurrency(recs: list[dict]) -> int:
    return max(sum(1 for other in recs if other["start"] <= rec["start"] < other["end"]) for rec in recs)


def test_runs_train_at_most_num_envs_at_once_and_slots_refill_at_once(records, tmp_path, capsys):
    config = write_config(tmp_path, "  duration: {opt_values: [0.5, 2.0, 1.0, 0.5, 1.5, 0.5]}\n")
    assert main(sweep_args(config, "--num-envs", "2", "--env=Fake", "--base-port", str(free_port()))) == 0
    recs = read_records(records)
    assert sorted(rec["run_id"] for rec in recs) == [f"r-{i}" for i in range(6)]
    assert all(rec["exit_code"] == 0 for rec in recs)
    assert max_concurrency(recs) == 2
    # Runs start in order (the sweep's own account: the first two start within the same
    # clock tick, too close for the processes' creation times to order them).
    out = capsys.readouterr().out
    assert re.findall(r"\] start (r-\d): ", out) == [f"r-{i}" for i in range(6)]
    assert out.count("] finished r-") == 6
    # How soon a freed slot is refilled is decided in test_supervisor.py and measured in bench/scheduler.py.
    rows = list(csv.reader((tmp_path / "results" / "r-sweep" / "summary.csv").open()))
    assert rows[0] == ["run", "values", "seed", "status", "exit", "duration", "last step", "score",
                       "Environment/Cumulative Reward", "note"]
    assert sorted((row[0], row[1], row[3], row[4]) for row in rows[1:]) == sorted(
        (f"r-{i}", f"duration={d}", "finished", "0") for i, d in enumerate(["0.5", "2.0", "1.0", "0.5", "1.5", "0.5"]))


def test_concurrent_runs_never_share_a_port_and_ports_held_by_others_are_skipped(records, tmp_path, capsys):
    base = free_port()
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", base + 2))  # inside slot 1's range (2 instances per run)
    blocker.listen()
    try:
        config = write_config(tmp_path, "  duration: {opt_values: [1.0, 1.0, 1.0, 1.0, 1.0]}\n",
                              "  B: {max_steps: 1000}\nenv_settings:\n  num_envs: 2\n")
        assert main(sweep_args(config, "--num-envs", "3", "--env=Fake", "--base-port", str(base))) == 0
    finally:
        blocker.close()
    recs = read_records(records)
    assert len(recs) == 5 and all(rec["exit_code"] == 0 for rec in recs)
    assert all(len(rec["ports"]) == 2 and base + 2 not in rec["ports"] for rec in recs)
    for a in recs:
        for b in recs:
            if a is not b and overlapping(a, b):
                assert not set(a["ports"]) & set(b["ports"])
    assert f"port {base + 2} is in use by another program; r-1 skips it" in capsys.readouterr().out


def test_each_runs_output_lands_in_its_own_log_and_flags_are_forwarded(records, tmp_path):
    config = write_config(tmp_path, "  duration: {opt_values: [0.2, 0.3]}\n")
    assert main(sweep_args(config, "--seed", "7", "--time-scale=5", "--env-args", "--level", "3")) == 0
    logs = tmp_path / "results" / "r-sweep" / "logs"
    for run_id in ("r-0", "r-1"):
        text = (logs / f"{run_id}.log").read_text()
        assert f"stand-in: training {run_id}\n" in text and f"stand-in: stderr of {run_id}\n" in text
        other = "r-1" if run_id == "r-0" else "r-0"
        assert other not in text
    argv = {rec["run_id"]: rec["argv"] for rec in read_records(records)}
    assert argv["r-1"] == ["results/r-sweep/configs/r-1.yaml", "--run-id=r-1", "--results-dir", "results",
                           "--time-scale=5", "--env-args", "--level", "3"]
    # --seed is the sweep's: written in each run's config (one lap: every run trains on 7 itself).
    assert {rec["run_id"]: rec["seed"] for rec in read_records(records)} == {"r-0": 7, "r-1": 7}


def test_a_failed_run_does_not_stop_the_others_and_the_sweep_exits_1(records, tmp_path, capsys):
    config = write_config(tmp_path, "  duration: 0.2\n  exit_code: {opt_values: [0, 3, 0]}\n")
    assert main(sweep_args(config)) == 1
    assert sorted((rec["run_id"], rec["exit_code"]) for rec in read_records(records)) == [
        ("r-0", 0), ("r-1", 3), ("r-2", 0)]
    out = capsys.readouterr().out
    assert re.search(r"\] FAILED r-1: exit 3 after \ds; log: results/r-sweep/logs/r-1.log\n", out)
    rows = {row[0]: row for row in csv.reader((tmp_path / "results" / "r-sweep" / "summary.csv").open())}
    assert (rows["r-1"][3], rows["r-1"][4], rows["r-1"][-1]) == ("failed", "3", "results/r-sweep/logs/r-1.log")
    assert rows["r-2"][3] == "finished"


def test_dry_run_writes_the_sweep_folder_prints_the_plan_and_starts_nothing(records, tmp_path, capsys):
    config = write_config(tmp_path, "  duration: {opt_values: [1, 2]}\n")
    assert main(sweep_args(config, "--dry-run", "--env=Game", "--num-envs", "2", "--base-port", "6000", "--seed", "4")) == 0
    assert read_records(records) == []
    folder = tmp_path / "results" / "r-sweep"
    assert sorted(p.name for p in (folder / "configs").iterdir()) == ["r-0.yaml", "r-1.yaml"]
    assert (folder / "config_info.txt").read_text() == ("r-0\n- seed 4\n- stand_in\n  - duration: 1\n\n"
                                                        "r-1\n- seed 4\n- stand_in\n  - duration: 2\n")
    assert yaml.safe_load((folder / "configs" / "r-1.yaml").read_text())["env_settings"]["seed"] == 4
    assert not (tmp_path / "results" / "r-0").exists()
    out = capsys.readouterr().out
    assert out.splitlines()[:5] == [  # each config path absolute: the command works from any folder
        "2 runs, at most 2 at once; configs and config_info.txt in results/r-sweep",
        "r-0: duration=1",
        f"  {TRAINER} {folder}/configs/r-0.yaml --run-id=r-0 --base-port=6000 --results-dir results --env=Game",
        "r-1: duration=2",
        f"  {TRAINER} {folder}/configs/r-1.yaml --run-id=r-1 --base-port=6001 --results-dir results --env=Game",
    ]


def test_with_repetitions_the_plan_and_the_start_lines_say_which_repetition_a_run_is(records, tmp_path, capsys):
    config = write_config(tmp_path, "  duration: {opt_values: [0.1, 0.2]}\n")
    assert main(sweep_args(config, "--dry-run", "--num-repetitions", "2")) == 0
    plan = capsys.readouterr().out.splitlines()
    assert plan[0] == "4 runs (2 combinations x 2 repetitions), at most 1 at once; configs and config_info.txt in results/r-sweep"
    assert plan[1::2] == ["r-0: duration=0.1 (repetition 1 of 2)", "r-1: duration=0.2 (repetition 1 of 2)",
                          "r-2: duration=0.1 (repetition 2 of 2)", "r-3: duration=0.2 (repetition 2 of 2)"]
    assert main(sweep_args(config, "--num-repetitions", "2", "--force")) == 0
    starts = [line.split("] ", 1)[1] for line in capsys.readouterr().out.splitlines() if "] start " in line]
    assert starts == ["start r-0: duration=0.1 (repetition 1 of 2)", "start r-1: duration=0.2 (repetition 1 of 2)",
                      "start r-2: duration=0.1 (repetition 2 of 2)", "start r-3: duration=0.2 (repetition 2 of 2)"]


def test_existing_run_results_are_refused_before_anything_starts(records, tmp_path, capsys):
    config = write_config(tmp_path, "  duration: {opt_values: [1, 2]}\n")
    (tmp_path / "results" / "r-1").mkdir(parents=True)
    assert main(sweep_args(config)) == 2
    assert capsys.readouterr().err == (
        "error: results of r-1 already exist (results): pass --resume to continue them, "
        "--force to overwrite them, or choose another --run-id\n")
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == ["r-1"]
    assert read_records(records) == []


def test_force_overwrites_existing_results(records, tmp_path):
    config = write_config(tmp_path, "  duration: 0.2\n")
    (tmp_path / "results" / "r-0").mkdir(parents=True)
    assert main(sweep_args(config, "--force")) == 0
    assert [rec["exit_code"] for rec in read_records(records)] == [0]


def start_sweep(tmp_path: Path, config: Path, *extra: str) -> subprocess.Popen:
    """The sweep as a real process, as a user starts it in a terminal."""
    return subprocess.Popen([sys.executable, str(SCRIPT), *sweep_args(config, *extra)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_ctrl_c_stops_every_run_so_it_saves_its_model_and_leaves_no_process(records, tmp_path):
    config = write_config(tmp_path, "  duration: 60\n  child: true\n  tag: {opt_values: [a, b, c]}\n")
    flags = ["--num-envs", "2", "--env=Fake", "--base-port", str(free_port())]
    sweep = start_sweep(tmp_path, config, *flags)
    wait_until(lambda: len([r for r in read_records(records) if r["last_step"]]) == 2, 30)
    sweep.send_signal(signal.SIGINT)
    out, err = sweep.communicate(timeout=30)
    assert sweep.returncode == 130, err
    recs = read_records(records)
    assert sorted(rec["run_id"] for rec in recs) == ["r-0", "r-1"]
    for rec in recs:
        assert rec["signals"] == ["SIGINT"] and rec["exit_code"] == 0
        assert (tmp_path / "results" / rec["run_id"] / "B.onnx").is_file()
        assert not process_alive(rec["pid"]) and not process_alive(rec["child_pid"])
    assert "interrupted r-0: exit 0" in out and "interrupted r-1: exit 0" in out
    rows = {row[0]: row[3] for row in csv.reader((tmp_path / "results" / "r-sweep" / "summary.csv").open())}
    assert rows == {"run": "status", "r-0": "interrupted", "r-1": "interrupted", "r-2": "not started"}
    # How to go on: the same command line with --resume, said at the Ctrl-C and at the end.
    again = shlex.join([sys.executable, str(SCRIPT), *sweep_args(config, *flags), "--resume"])  # the Python it ran on
    lines = [line.split("] ", 1)[-1] for line in out.splitlines()]
    assert f"to continue the sweep later: {again}" in lines
    assert lines[-1] == f"3 runs not done; to continue the sweep: {again}"


def test_a_run_that_ignores_the_stop_is_killed_with_its_whole_group_after_stop_timeout(records, tmp_path):
    config = write_config(tmp_path, "  duration: 60\n  ignore_sigint: true\n  child: true\n")
    sweep = start_sweep(tmp_path, config, "--stop-timeout", "1")
    wait_until(lambda: [r for r in read_records(records) if r["last_step"]], 30)
    sweep.send_signal(signal.SIGINT)
    out, _ = sweep.communicate(timeout=30)
    assert sweep.returncode == 130
    [rec] = read_records(records)
    assert rec["signals"] == ["SIGINT"] and rec["exit_code"] is None
    assert not process_alive(rec["pid"]) and not process_alive(rec["child_pid"])
    assert "killing r-0: it did not stop within 1s" in out
    assert "interrupted r-0: exit -9 after" in out and "killed after --stop-timeout" in out


def test_a_second_ctrl_c_kills_at_once(records, tmp_path):
    config = write_config(tmp_path, "  duration: 60\n  ignore_sigint: true\n")
    sweep = start_sweep(tmp_path, config, "--stop-timeout", "300")
    wait_until(lambda: [r for r in read_records(records) if r["last_step"]], 30)
    sweep.send_signal(signal.SIGINT)
    wait_until(lambda: read_records(records)[0]["signals"], 10)
    sweep.send_signal(signal.SIGINT)
    out, _ = sweep.communicate(timeout=10)
    assert sweep.returncode == 130
    assert "interrupted again: killing every run" in out
    assert not process_alive(read_records(records)[0]["pid"])


# -- one sweep per folder -----------------------------------------------------------------

def test_a_live_sweep_holds_its_folder_against_a_second_sweep_a_resume_and_a_dry_run(records, tmp_path, capsys):
    gate = tmp_path / "open"
    config = write_config(tmp_path, f"  duration: 1\n  gate: {{step: 100, file: {gate}}}\n")
    live = start_sweep(tmp_path, config)
    try:
        wait_until(lambda: [r for r in read_records(records) if r["last_step"]], 30)
        before = {p: p.read_bytes() for p in (tmp_path / "results" / "r-sweep").rglob("*") if p.is_file()
                  and p.name not in ("sweep.log", "r-0.log")}
        for extra in ([], ["--resume"], ["--dry-run"], ["--dry-run", "--force"], ["--force"]):
            assert main(sweep_args(config, *extra)) == 2
            assert capsys.readouterr().err == (
                f"error: a sweep is running in this folder (pid {live.pid}) (results/r-sweep): wait for it to end or "
                "stop it (Ctrl-C in its terminal), or choose another --run-id\n")
        after = {p: p.read_bytes() for p in before}
        assert after == before
        assert len(read_records(records)) == 1  # nothing trained twice
    finally:
        gate.touch()
        live.communicate(timeout=60)
    assert live.returncode == 0


def test_a_dry_run_over_a_finished_sweep_needs_force_as_a_real_run_does(records, tmp_path, capsys):
    config = write_config(tmp_path, "  duration: 0.1\n")
    assert main(sweep_args(config)) == 0
    info = tmp_path / "results" / "r-sweep" / "config_info.txt"
    before = info.read_text()
    write_config(tmp_path, "  duration: {opt_values: [1, 2]}\n")
    capsys.readouterr()
    assert main(sweep_args(config, "--dry-run")) == 2
    assert capsys.readouterr().err == ("error: a sweep already ran in this folder (results/r-sweep): pass --resume to "
                                       "continue it, --force to start it anew, or choose another --run-id\n")
    assert info.read_text() == before
    assert main(sweep_args(config, "--dry-run", "--force", "--seed", "0")) == 0
    assert info.read_text() == "r-0\n- seed 0\n- stand_in\n  - duration: 1\n\nr-1\n- seed 0\n- stand_in\n  - duration: 2\n"


def test_force_starts_a_sweep_anew_without_configs_of_runs_the_grid_no_longer_has(records, tmp_path):
    config = write_config(tmp_path, "  duration: {opt_values: [0.1, 0.1, 0.1]}\n")
    assert main(sweep_args(config)) == 0
    write_config(tmp_path, "  duration: 0.1\n")
    assert main(sweep_args(config, "--force")) == 0
    assert sorted(p.name for p in (tmp_path / "results" / "r-sweep" / "configs").iterdir()) == ["r-0.yaml"]


# -- the sweep's own keys stay the sweep's ----------------------------------------------------

def test_resume_and_force_in_the_config_are_the_sweeps_not_every_runs(records, tmp_path):
    # Left in run configs, resume: true made every fresh run fail ("Previous data ... was not found").
    # force: true lets the sweep start a run afresh over an older sweep's results: r-0's here.
    config = tmp_path / "sweep.yaml"
    config.write_text("behaviors:\n  B: {max_steps: 1000}\ncheckpoint_settings:\n  resume: true\n  force: true\n"
                      "stand_in:\n  duration: {opt_values: [0.1, 0.2]}\n")
    (tmp_path / "results" / "r-0").mkdir(parents=True)
    assert main(sweep_args(config)) == 0
    recs = {rec["run_id"]: rec for rec in read_records(records)}
    assert all(rec["exit_code"] == 0 and rec["resumed"] is False for rec in recs.values())
    assert [("--force" in recs[run_id]["argv"], "--resume" in recs[run_id]["argv"]) for run_id in ("r-0", "r-1")] == [
        (True, False), (False, False)]
    written = (tmp_path / "results" / "r-sweep" / "configs" / "r-0.yaml").read_text()
    assert "checkpoint_settings" not in written


# -- output -------------------------------------------------------------------------------

def test_a_closed_stdout_silences_the_console_never_the_sweep(records, tmp_path):
    config = write_config(tmp_path, "  duration: {opt_values: [0.3, 0.3, 0.3, 0.3]}\n")
    sweep = subprocess.Popen([sys.executable, str(SCRIPT), *sweep_args(config, "--seed", "9")], cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = [sweep.stdout.readline() for _ in range(2)]  # as `... | head -n 2` reads
    sweep.stdout.close()
    err = sweep.stderr.read().decode()
    assert sweep.wait(timeout=60) == 0, err
    assert err == ""  # no BrokenPipeError, no traceback
    assert [line.split(b"] ", 1)[1] for line in first] == [
        b"sweep r: 4 runs, at most 1 at once; seed 9; folder results/r-sweep\n", b"start r-0: duration=0.3\n"]
    assert sorted((rec["run_id"], rec["exit_code"]) for rec in read_records(records)) == [(f"r-{n}", 0) for n in range(4)]
    log = (tmp_path / "results" / "r-sweep" / "sweep.log").read_text()
    assert log.count("] finished r-") == 4 and "Summary: results/r-sweep/summary.md" in log


def test_help_lists_the_mlagents_learn_flags_that_are_forwarded(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    listed = out.split("forwarded to each run unchanged")[1]
    for flag in ("--env", "--torch-device", "--results-dir", "--time-scale", "--no-graphics", "--env-args"):
        assert flag in listed
    assert "--run-id," not in listed and "--base-port," not in listed and "--seed," not in listed
    assert "--seed N" in out.split("forwarded to each run unchanged")[0]  # the sweep's own


def test_the_command_that_continues_a_sweep_resumes_it_and_never_forces_it_afresh(monkeypatch):
    monkeypatch.chdir(SCRIPT.parent)  # the script in this folder: shown by its own name
    command = ml.resume_command(["c.yaml", "--force", "--num-envs", "2", "--env-args", "--seed", "1"])
    # The Python it runs on: a bare `python` may be another interpreter, without the HParams writer's packages.
    assert command == f"{shlex.quote(sys.executable)} mlagents-learn.py c.yaml --num-envs 2 --resume --env-args --seed 1"
    assert ml.resume_command(["my sweep.yaml", "--resume"], "/opt/my python/bin/python3") == (
        "'/opt/my python/bin/python3' mlagents-learn.py 'my sweep.yaml' --resume")


def test_a_sweep_whose_state_file_cannot_be_written_at_the_end_says_so_last(records, tmp_path, monkeypatch, capsys):
    # It exited with the stale file on disk and said nothing: only ML-Agents' own records kept --resume from
    # training finished runs again.
    import errno

    import mlagents_learn as ml

    monkeypatch.setattr(ml, "STATE_RETRY", 2.0)
    full = {"now": False}
    write = ml.SweepStore.save

    def save(self, state):
        if full["now"]:
            return OSError(errno.ENOSPC, "No space left on device")
        full["now"] = any(run["status"] == "finished" for run in state["runs"])  # the disk fills once a run ends
        return write(self, state)

    monkeypatch.setattr(ml.SweepStore, "save", save)
    config = write_config(tmp_path, "  duration: {opt_values: [0.2, 0.2]}\n")
    assert main(sweep_args(config)) == 0
    out, err = capsys.readouterr()
    last = err.splitlines()[-1].split("] ", 1)[1]
    assert last.startswith("warning: the state file results/r-sweep/sweep_state.json could not be written (No space left "
                           "on device): --resume will take up the sweep as it was at ")
    log = (tmp_path / "results" / "r-sweep" / "sweep.log").read_text().splitlines()
    assert log[-1].split("] ", 1)[1] == last and "Summary: results/r-sweep/summary.md and summary.csv" in log[-2]
