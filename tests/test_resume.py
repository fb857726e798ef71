"""Never lose a sweep: the sweep killed outright, resumed; faults that must not lose a run."""

import csv
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SCRIPT
from helpers import STAND_IN, kill_group, process_alive, read_records, wait_until
from mlagents_learn import main

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux parent-death signal and /proc")

TRAINER = shlex.join([sys.executable, STAND_IN])


@pytest.fixture
def folder(tmp_path, monkeypatch):
    (tmp_path / "records").mkdir()
    monkeypatch.setenv("STAND_IN_RECORDS", str(tmp_path / "records"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_config(folder: Path, stand_in: str) -> Path:
    path = folder / "sweep.yaml"
    path.write_text(f"behaviors:\n  B: {{}}\nstand_in:\n  steps: 1000\n  points: 20\n{stand_in}")
    return path


def argv(config: Path, *extra: str) -> list[str]:
    return [str(config), "--trainer", TRAINER, "--results-dir", "results", "--run-id", "r", "--no-tensorboard",
            "--num-envs", "2", "--env=Fake", "--base-port", "23100", *extra]


def state(folder: Path) -> dict:
    return json.loads((folder / "results" / "r-sweep" / "sweep_state.json").read_text())


def statuses(folder: Path) -> dict[str, str]:
    return {run["run_id"]: run["status"] for run in state(folder)["runs"]}


def by_run(records: list[dict]) -> dict[str, list[dict]]:
    runs: dict[str, list[dict]] = {}
    for rec in records:
        runs.setdefault(rec["run_id"], []).append(rec)
    return runs


def start_and_wait_for_two_running(folder: Path, config: Path) -> subprocess.Popen:
    sweep = subprocess.Popen([sys.executable, str(SCRIPT), *argv(config)], cwd=folder,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: len([r for r in read_records(folder / "records") if (r["last_step"] or 0) >= 200]) == 2, 30)
    return sweep


def assert_every_run_trained_once_to_the_end(records: list[dict], run_ids: list[str], continued: list[str]) -> None:
    runs = by_run(records)
    assert sorted(runs) == sorted(run_ids)
    for run_id, recs in runs.items():
        fresh = [rec for rec in recs if not rec["resumed"]]
        assert len(fresh) == 1, f"{run_id} started from scratch {len(fresh)} times"
        assert recs[-1]["last_step"] == 1000 and recs[-1]["exit_code"] == 0
        assert len(recs) == (2 if run_id in continued else 1)
        if run_id in continued:
            assert recs[1]["argv"][-1] == "--resume" and recs[1]["resumed"] is True
            assert 200 <= recs[0]["last_step"] < 1000


@pytest.fixture
def no_leftovers(folder):
    """Whatever happens in the test, no stand-in (or its forked worker) outlives it."""
    yield
    for rec in read_records(folder / "records"):
        kill_group(rec["pgid"])


def test_a_sweep_killed_outright_stops_its_runs_gracefully_and_resume_finishes_it(folder, capsys, no_leftovers):
    config = write_config(folder, "  duration: 6\n  child: true\n  n: {opt_values: [0, 1, 2, 3]}\n")
    sweep = start_and_wait_for_two_running(folder, config)
    sweep.kill()
    sweep.wait()
    # The kernel tells each run its sweep died (SIGINT): it saves its model and exits.
    wait_until(lambda: all(r["exit_code"] is not None for r in read_records(folder / "records")), 10)
    first = sorted(read_records(folder / "records"), key=lambda r: r["run_id"])  # both start in one tick
    assert [(r["run_id"], r["signals"], r["exit_code"]) for r in first] == [("r-0", ["SIGINT"], 0), ("r-1", ["SIGINT"], 0)]
    assert all((folder / "results" / r["run_id"] / "B.onnx").is_file() for r in first)
    wait_until(lambda: not any(process_alive(r["pid"]) for r in first), 10)
    # The stand-in leaves its forked worker to the group's SIGINT (mlagents-learn closes its own):
    # resuming stops what is left of the earlier runs before it trains them again.
    assert all(process_alive(r["child_pid"]) for r in first)
    assert statuses(folder) == {"r-0": "running", "r-1": "running", "r-2": "pending", "r-3": "pending"}
    capsys.readouterr()

    assert main(argv(config, "--resume")) == 0
    out = capsys.readouterr().out
    for rec in first:
        assert f"{rec['run_id']} of the earlier sweep left processes behind (group {rec['pgid']}): stopping them" in out
    assert "resuming sweep r: 0 runs done, 2 continue from their checkpoints" in out
    records = read_records(folder / "records")
    assert_every_run_trained_once_to_the_end(records, ["r-0", "r-1", "r-2", "r-3"], continued=["r-0", "r-1"])
    assert not any(process_alive(r["pid"]) or process_alive(r["child_pid"] or 0) for r in records)
    assert set(statuses(folder).values()) == {"finished"}
    assert (folder / "results" / "r-sweep" / "config_info.txt").read_text().startswith("r-0\n- stand_in\n  - n: 0\n")


def test_power_loss_everything_killed_resume_continues_the_runs_from_their_checkpoints(folder, no_leftovers):
    config = write_config(folder, "  duration: 6\n  n: {opt_values: [0, 1, 2]}\n")
    sweep = start_and_wait_for_two_running(folder, config)
    running = read_records(folder / "records")
    os.kill(sweep.pid, signal.SIGKILL)  # the whole tree at once: nobody saves anything
    for rec in running:
        kill_group(rec["pgid"])
    sweep.wait()
    wait_until(lambda: not any(process_alive(r["pid"]) for r in running), 10)
    assert main(argv(config, "--resume")) == 0
    assert_every_run_trained_once_to_the_end(read_records(folder / "records"), ["r-0", "r-1", "r-2"],
                                             continued=["r-0", "r-1"])


def test_resume_trains_neither_finished_nor_stopped_runs_again(folder):
    config = write_config(folder, "  duration: 0.3\n  exit_code: {opt_values: [0, 4, 0]}\n")
    assert main(argv(config)) == 1
    assert statuses(folder) == {"r-0": "finished", "r-1": "failed", "r-2": "finished"}
    finished_at = {run["run_id"]: run["end"] for run in state(folder)["runs"]}
    assert main(argv(config, "--resume")) == 1  # r-1 fails again: the config makes it
    runs = by_run(read_records(folder / "records"))
    assert {run_id: len(recs) for run_id, recs in runs.items()} == {"r-0": 1, "r-1": 2, "r-2": 1}
    assert runs["r-1"][1]["argv"][-1] == "--resume"
    after = {run["run_id"]: run for run in state(folder)["runs"]}
    assert (after["r-0"]["status"], after["r-0"]["end"]) == ("finished", finished_at["r-0"])
    rows = {row[0]: row[2] for row in csv.reader((folder / "results" / "r-sweep" / "summary.csv").open())}
    assert rows == {"run": "status", "r-0": "finished", "r-1": "failed", "r-2": "finished"}


@pytest.mark.parametrize("change, extra, message", [
    ("  duration: 0.2\n  n: {opt_values: [0, 1, 5]}\n", [], "r-2 was n=2, now r-2 is n=5"),
    ("  duration: 0.2\n  n: {opt_values: [0, 1, 2, 3]}\n", [], "the grid had 3 runs, now 4"),
    ("  duration: 0.9\n  n: {opt_values: [0, 1, 2]}\n", [], "the config file changed (the grid is the same, other settings are not)"),
    ("  duration: 0.2\n  n: {opt_values: [0, 1, 2]}\n", ["--num-repetitions", "2"], "--num-repetitions was 1, now 2"),
    ("  duration: 0.2\n  n: {opt_values: [0, 1, 2]}\n", ["--seed", "3"], "the mlagents-learn flags were '--results-dir results --env=Fake', "
     "now '--results-dir results --env=Fake --seed 3'"),
])
def test_resuming_a_changed_sweep_is_refused_and_changes_nothing(folder, capsys, change, extra, message):
    config = write_config(folder, "  duration: 0.2\n  n: {opt_values: [0, 1, 2]}\n")
    assert main(argv(config)) == 0
    before = {p: p.read_bytes() for p in (folder / "results").rglob("*") if p.is_file()}
    write_config(folder, change)
    capsys.readouterr()
    assert main(argv(config, "--resume", *extra)) == 2
    assert capsys.readouterr().err == (
        f"error: --resume asks for a different sweep than the one in results/r-sweep: {message} ({config}): "
        "resume with the original config and flags, or start a new sweep with another --run-id\n")
    assert {p: p.read_bytes() for p in (folder / "results").rglob("*") if p.is_file()} == before
    assert len(read_records(folder / "records")) == 3


def test_an_unreadable_state_file_is_refused(folder, capsys):
    config = write_config(folder, "  duration: 0.2\n")
    assert main(argv(config)) == 0
    (folder / "results" / "r-sweep" / "sweep_state.json").write_text("{half")
    assert main(argv(config, "--resume")) == 2
    assert capsys.readouterr().err == (
        "error: the sweep's state file cannot be read (JSONDecodeError) (results/r-sweep/sweep_state.json): "
        "start the sweep anew with --force, or choose another --run-id\n")


def test_the_trainer_vanishing_mid_sweep_fails_the_remaining_runs_clearly_and_resume_trains_them(folder, capsys):
    shim = folder / "bin" / "trainer"
    shim.parent.mkdir()
    shim.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} {shlex.quote(STAND_IN)} \"$@\"\n")
    shim.chmod(0o755)
    config = write_config(folder, "  duration: 1.5\n  n: {opt_values: [0, 1, 2]}\n")
    args = [str(config), "--trainer", str(shim), "--results-dir", "results", "--run-id", "r", "--no-tensorboard"]
    sweep = subprocess.Popen([sys.executable, str(SCRIPT), *args], cwd=folder, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_until(lambda: read_records(folder / "records"), 30)
    shim.unlink()
    out, _ = sweep.communicate(timeout=60)
    assert sweep.returncode == 1
    assert f"FAILED r-1: could not start {shim}: No such file or directory after 0s; log: results/r-sweep/logs/r-1.log" in out
    assert statuses(folder) == {"r-0": "finished", "r-1": "failed", "r-2": "failed"}
    shim.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} {shlex.quote(STAND_IN)} \"$@\"\n")
    shim.chmod(0o755)
    assert main([*args, "--resume"]) == 0
    assert sorted(r["run_id"] for r in read_records(folder / "records")) == ["r-0", "r-1", "r-2"]


def test_a_results_folder_that_cannot_be_written_is_refused_before_anything_starts(folder, capsys):
    config = write_config(folder, "  duration: 0.2\n")
    (folder / "taken").write_text("a file where the results folder should be")
    args = argv(config)
    args[args.index("results")] = "taken/results"
    assert main(args) == 2
    assert capsys.readouterr().err == (
        "error: cannot write the sweep folder (Not a directory) (taken/results/r-sweep): "
        "check that the results folder is writable, or pass --results-dir\n")
    assert read_records(folder / "records") == []
    assert sorted(p.name for p in folder.iterdir()) == ["records", "sweep.yaml", "taken"]
