"""Never lose a sweep: the sweep killed outright and resumed; what an earlier sweep left is reclaimed,
and nothing that is not provably its own is ever signalled.

Runs that must still be training when the test kills the sweep wait at a gate
(stand_in.gate): they cannot finish first, however slow the machine.
"""

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
from helpers import STAND_IN, free_port, kill_group, process_alive, read_records, wait_until
import mlagents_learn
from mlagents_learn import main

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux parent-death signal and /proc")

TRAINER = shlex.join([sys.executable, STAND_IN])


@pytest.fixture
def no_leftovers(folder):
    """Whatever happens in the test, no stand-in (or its forked worker) outlives it."""
    yield
    for rec in read_records(folder / "records"):
        kill_group(rec["pgid"])
        if rec["child_pid"]:
            try:
                os.kill(rec["child_pid"], signal.SIGKILL)
            except ProcessLookupError:
                pass


def write_config(folder: Path, stand_in: str, gated: bool = False) -> Path:
    """Runs of 1000 steps in 20 points; gated: fresh runs hold at step 200 until the file `open` exists."""
    gate = f"  gate: {{step: 200, file: {folder / 'open'}}}\n" if gated else ""
    path = folder / "sweep.yaml"
    path.write_text(f"behaviors:\n  B: {{max_steps: 1000}}\nstand_in:\n  steps: 1000\n  points: 20\n{gate}{stand_in}")
    return path


PORT = free_port(4)


def argv(config: Path, *extra: str) -> list[str]:
    return [str(config), "--trainer", TRAINER, "--results-dir", "results", "--run-id", "r", "--no-tensorboard",
            "--num-envs", "2", "--env=Fake", "--base-port", str(PORT), *extra]


def state(folder: Path) -> dict:
    return json.loads((folder / "results" / "r-sweep" / "sweep_state.json").read_text())


def statuses(folder: Path) -> dict[str, str]:
    return {run["run_id"]: run["status"] for run in state(folder)["runs"]}


def by_run(records: list[dict]) -> dict[str, list[dict]]:
    runs: dict[str, list[dict]] = {}
    for rec in records:
        runs.setdefault(rec["run_id"], []).append(rec)
    return runs


def start_and_wait_for_two_at_the_gate(folder: Path, config: Path) -> subprocess.Popen:
    sweep = subprocess.Popen([sys.executable, str(SCRIPT), *argv(config)], cwd=folder,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: len([r for r in read_records(folder / "records") if r["last_step"] == 200]) == 2, 60)
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
            assert recs[0]["last_step"] == 200


def test_a_sweep_killed_outright_stops_its_runs_gracefully_and_resume_finishes_it(folder, capsys, no_leftovers):
    config = write_config(folder, "  child: true\n  n: {opt_values: [0, 1, 2, 3]}\n", gated=True)
    sweep = start_and_wait_for_two_at_the_gate(folder, config)
    sweep.kill()
    sweep.wait()
    # The kernel tells each run its sweep died (SIGINT): it saves its model and exits.
    wait_until(lambda: all(r["exit_code"] is not None for r in read_records(folder / "records")), 30)
    first = sorted(read_records(folder / "records"), key=lambda r: r["run_id"])  # both start in one tick
    assert [(r["run_id"], r["signals"], r["exit_code"]) for r in first] == [("r-0", ["SIGINT"], 0), ("r-1", ["SIGINT"], 0)]
    assert all((folder / "results" / r["run_id"] / "B.onnx").is_file() for r in first)
    wait_until(lambda: not any(process_alive(r["pid"]) for r in first), 10)
    # The stand-in leaves its forked worker to the group's SIGINT (mlagents-learn closes its own):
    # resuming ends what is left of the earlier runs before it trains them again.
    assert all(process_alive(r["child_pid"]) for r in first)
    assert statuses(folder) == {"r-0": "running", "r-1": "running"}  # r-2 and r-3 are not recorded: never started
    capsys.readouterr()

    (folder / "open").touch()
    assert main(argv(config, "--resume")) == 0
    out = capsys.readouterr().out
    for rec in first:
        assert (f"{rec['run_id']} of the earlier sweep left 1 process behind ({rec['child_pid']}): "
                "killing it: no trainer is left to save a model") in out
    assert "resuming sweep r: 0 runs done, 2 continue from their checkpoints" in out
    records = read_records(folder / "records")
    assert_every_run_trained_once_to_the_end(records, ["r-0", "r-1", "r-2", "r-3"], continued=["r-0", "r-1"])
    assert not any(process_alive(r["pid"]) or process_alive(r["child_pid"] or 0) for r in records)
    assert set(statuses(folder).values()) == {"finished"}
    seed = state(folder)["made_by"]["seed"]  # drawn once, recorded: every run of the one lap trains on it
    assert (folder / "results" / "r-sweep" / "config_info.txt").read_text().startswith(f"r-0\n- seed {seed}\n- stand_in\n  - n: 0\n")


def test_workers_that_ignore_sigint_are_reclaimed_all_at_once_without_waiting_for_stop_timeout(folder, capsys, no_leftovers):
    config = write_config(folder, "  child: true\n  child_ignores_sigint: true\n  n: {opt_values: [0, 1]}\n", gated=True)
    sweep = start_and_wait_for_two_at_the_gate(folder, config)
    sweep.kill()
    sweep.wait()
    wait_until(lambda: all(r["exit_code"] is not None for r in read_records(folder / "records")), 30)
    # The record says the exit code a moment before the process is gone: wait for that too.
    wait_until(lambda: not any(process_alive(r["pid"]) for r in read_records(folder / "records")), 30)
    children = sorted(r["child_pid"] for r in read_records(folder / "records"))
    assert all(process_alive(pid) for pid in children)
    capsys.readouterr()
    # A --stop-timeout of an hour: waiting for a process that ignores SIGINT would hang the test.
    assert main(argv(config, "--resume", "--stop-timeout", "3600")) == 0
    out = capsys.readouterr().out
    reclaimed = [line.split("] ", 1)[1] for line in out.splitlines() if "of the earlier sweep left" in line]
    assert sorted(reclaimed) == sorted(
        f"{rec['run_id']} of the earlier sweep left 1 process behind ({rec['child_pid']}): killing it: "
        "no trainer is left to save a model" for rec in by_run(read_records(folder / "records")).values() for rec in rec[:1])
    assert not any(process_alive(pid) for pid in children)


def test_trainers_that_ignore_the_death_signal_get_sigint_together_then_are_killed(folder, capsys, no_leftovers):
    config = write_config(folder, "  ignore_sigint: true\n  n: {opt_values: [0, 1]}\n", gated=True)
    sweep = start_and_wait_for_two_at_the_gate(folder, config)
    sweep.kill()
    sweep.wait()
    wait_until(lambda: all(r["signals"] == ["SIGINT"] for r in read_records(folder / "records")), 30)
    first = read_records(folder / "records")
    assert all(process_alive(rec["pid"]) for rec in first)  # the death signal's SIGINT did not stop them
    capsys.readouterr()
    assert main(argv(config, "--resume", "--stop-timeout", "2")) == 0  # resumed runs pass the gate
    captured = capsys.readouterr()
    lines = [line.split("] ", 1)[1] for line in captured.out.splitlines() if line.startswith("[")]
    asked = [n for n, line in enumerate(lines) if "stopping its trainer so it saves its model" in line]
    started = [n for n, line in enumerate(lines) if line.startswith(("resume r-", "start r-"))]
    assert len(asked) == 2 and max(asked) < min(started)  # both reclaimed before anything trains again
    assert sorted(line.split("] ", 1)[1] for line in captured.err.splitlines() if "earlier trainer" in line) == [
        f"warning: r-{n}'s earlier trainer did not stop within --stop-timeout 2s: killed" for n in (0, 1)]
    assert not any(process_alive(rec["pid"]) for rec in first)
    again = {rec["pid"]: rec for rec in read_records(folder / "records")}
    assert [again[rec["pid"]]["signals"] for rec in first] == [["SIGINT", "SIGINT"]] * 2  # the death signal's, then ours


def test_power_loss_everything_killed_resume_continues_the_runs_from_their_checkpoints(folder, no_leftovers):
    config = write_config(folder, "  n: {opt_values: [0, 1, 2]}\n", gated=True)
    sweep = start_and_wait_for_two_at_the_gate(folder, config)
    running = read_records(folder / "records")
    os.kill(sweep.pid, signal.SIGKILL)  # the whole tree at once: nobody saves anything
    for rec in running:
        kill_group(rec["pgid"])
    sweep.wait()
    wait_until(lambda: not any(process_alive(r["pid"]) for r in running), 10)
    (folder / "open").touch()
    assert main(argv(config, "--resume")) == 0
    assert_every_run_trained_once_to_the_end(read_records(folder / "records"), ["r-0", "r-1", "r-2"],
                                             continued=["r-0", "r-1"])


def test_resume_trains_neither_finished_nor_stopped_runs_again(folder):
    config = write_config(folder, "  duration: 0.3\n  exit_code: {opt_values: [0, 4, 0]}\n")
    assert main(argv(config)) == 1
    assert statuses(folder) == {"r-0": "finished", "r-1": "failed", "r-2": "finished"}
    finished_at = {run["run_id"]: run["sessions"][-1]["ended"] for run in state(folder)["runs"]}
    assert main(argv(config, "--resume")) == 1  # r-1 fails again: the config makes it
    runs = by_run(read_records(folder / "records"))
    assert {run_id: len(recs) for run_id, recs in runs.items()} == {"r-0": 1, "r-1": 2, "r-2": 1}
    assert runs["r-1"][1]["argv"][-1] == "--resume"
    after = {run["run_id"]: run for run in state(folder)["runs"]}
    assert (after["r-0"]["status"], after["r-0"]["sessions"][-1]["ended"]) == ("finished", finished_at["r-0"])
    rows = {row[0]: row[3] for row in csv.reader((folder / "results" / "r-sweep" / "summary.csv").open())}
    assert rows == {"run": "status", "r-0": "finished", "r-1": "failed", "r-2": "finished"}


def test_a_finished_run_the_state_file_missed_is_not_trained_again(folder, capsys):
    # A full disk kept the state file from saying the runs ended: ML-Agents' own record says so.
    config = write_config(folder, "  duration: 0.2\n  n: {opt_values: [0, 1]}\n")
    assert main(argv(config)) == 0
    saved = state(folder)
    for run in saved["runs"]:
        run["status"] = "running"
        run["sessions"][-1].update(ended=None, ending=None, exit_code=None, pid=None, identity=None)
    (folder / "results" / "r-sweep" / "sweep_state.json").write_text(json.dumps(saved))
    capsys.readouterr()
    assert main(argv(config, "--resume")) == 0
    assert "r-0 trained to the end (its results say so): not trained again" in capsys.readouterr().out
    assert {run_id: len(recs) for run_id, recs in by_run(read_records(folder / "records")).items()} == {"r-0": 1, "r-1": 1}


@pytest.mark.parametrize("change, extra, message", [
    ("  duration: 0.2\n  n: {opt_values: [0, 1, 5]}\n", [], "r-2 was n=2, now r-2 is n=5"),
    ("  duration: 0.2\n  n: {opt_values: [0, 1, 2, 3]}\n", [], "the grid had 3 runs, now 4"),
    ("  duration: 0.9\n  n: {opt_values: [0, 1, 2]}\n", [], "the config file changed (the grid is the same, other settings are not)"),
    ("  duration: 0.2\n  n: {opt_values: [0, 1, 2]}\n", ["--num-repetitions", "2"], "--num-repetitions was 1, now 2"),
    ("  duration: 0.2\n  n: {opt_values: [0, 1, 2]}\n", ["--deterministic"], "the mlagents-learn flags were '--results-dir results "
     "--env=Fake', now '--results-dir results --env=Fake --deterministic'"),
    ("  duration: 0.2\n  n: {opt_values: [0, 1, 2]}\n", ["--seed", "3"], "it was seeded with --seed 5, now --seed 3"),
])
def test_resuming_a_changed_sweep_is_refused_and_changes_nothing(folder, capsys, change, extra, message):
    config = write_config(folder, "  duration: 0.2\n  n: {opt_values: [0, 1, 2]}\n")
    assert main(argv(config, "--seed", "5")) == 0  # --resume without it takes the recorded seed
    before = {p: p.read_bytes() for p in (folder / "results").rglob("*") if p.is_file()}
    write_config(folder, change)
    capsys.readouterr()
    assert main(argv(config, "--resume", *extra)) == 2
    assert capsys.readouterr().err == (
        f"error: --resume asks for a different sweep than the one in results/r-sweep: {message} ({config}): "
        "resume with the original config and flags, or start a new sweep with another --run-id\n")
    assert {p: p.read_bytes() for p in (folder / "results").rglob("*") if p.is_file()} == before
    assert len(read_records(folder / "records")) == 3


# -- the state file names processes: only provably the same ones are signalled ----------------

@pytest.fixture
def stranger():
    """An unrelated process, alive in a group of its own, as a reused pid would be."""
    proc = subprocess.Popen(["sleep", "120"], start_new_session=True)
    yield proc
    proc.kill()
    proc.wait()


def stale_state(folder: Path, config: Path, **session_fields) -> None:
    """A finished sweep's state file, rewritten so that r-0 seems to be running as the given process."""
    assert main(argv(config)) == 0
    saved = state(folder)
    saved["runs"][0]["status"] = "running"
    saved["runs"][0]["sessions"][-1].update(ended=None, ending=None, exit_code=None, **session_fields)
    (folder / "results" / "r-sweep" / "sweep_state.json").write_text(json.dumps(saved))
    (folder / "results" / "r-0" / "run_logs" / "training_status.json").unlink()  # so r-0 is not finished


def boot_id() -> str:
    return Path("/proc/sys/kernel/random/boot_id").read_text().strip()


def sweep_id(folder: Path) -> str:
    return state(folder)["sweep"]


@pytest.mark.parametrize("identity", [
    lambda folder, pid: {"boot": boot_id(), "start": "1", "marker": marker_of(folder)},  # the pid was reused since
    lambda folder, pid: {"boot": "another-boot", "start": "1", "marker": marker_of(folder)},  # the machine restarted since
    lambda folder, pid: {"boot": boot_id(), "start": start_of(pid), "marker": "elsewhere|0123456789ab|r-0|00"},  # another sweep's
])
def test_a_stale_state_file_never_signals_a_process_it_cannot_prove_is_the_runs(folder, capsys, stranger, identity):
    config = write_config(folder, "  duration: 0.2\n  n: {opt_values: [0, 1]}\n")
    assert main(argv(config)) == 0
    stale = state(folder)
    stale["runs"][0]["status"] = "running"
    stale["runs"][0]["sessions"][-1].update(ended=None, ending=None, exit_code=None, pid=stranger.pid,
                                            identity=identity(folder, stranger.pid))
    (folder / "results" / "r-sweep" / "sweep_state.json").write_text(json.dumps(stale))
    capsys.readouterr()
    assert main(argv(config, "--resume", "--stop-timeout", "1")) == 0
    assert "of the earlier sweep left" not in capsys.readouterr().out
    assert stranger.poll() is None


def marker_of(folder: Path) -> str:
    """A marker as this sweep gives its runs: its folder, its id, the run."""
    return f"{(folder / 'results' / 'r-sweep').resolve()}|{sweep_id(folder)}|r-0|0011223344556677"


def start_of(pid: int) -> str:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rfind(")") + 2:].split()[19]


def test_a_state_file_of_an_older_version_is_refused_with_one_line_and_what_to_do(folder, capsys):
    config = write_config(folder, "  duration: 0.1\n")
    assert main(argv(config)) == 0
    path = folder / "results" / "r-sweep" / "sweep_state.json"
    path.write_text(json.dumps({"version": 2, "made_by": {}, "runs": []}))
    capsys.readouterr()
    assert main(argv(config, "--resume")) == 2
    assert capsys.readouterr().err == (
        "error: the sweep's state file was written by an older mlagents-learn.py (state version 2, this one reads 3) "
        "(results/r-sweep/sweep_state.json): finish that sweep with the mlagents-learn.py that started it, or start "
        "it anew with --force\n")
    assert len(read_records(folder / "records")) == 1


@pytest.mark.parametrize("where, value, shown", [
    (("sessions", 0, "pid"), 0, "sessions[0].pid is 0"), (("sessions", 0, "pid"), -1, "sessions[0].pid is -1"),
    (("sessions", 0, "pid"), 1, "sessions[0].pid is 1"), (("sessions", 0, "pid"), "7", 'sessions[0].pid is "7"'),
    (("sessions", 0, "pid"), True, "sessions[0].pid is true"), (("status",), "exploded", 'status is "exploded"'),
    (("sessions", 0, "ports"), [0, 70000], "sessions[0].ports is [0, 70000]"),
    (("sessions", 0, "ports"), [1], "sessions[0].ports is [1]"),
    (("sessions", 0, "identity"), {"boot": 1}, "sessions[0].identity is malformed"),
    (("sessions", 0, "began"), "noon", 'sessions[0].began is "noon"'),
    (("sessions", 0, "began"), 1e400, "sessions[0].began is not a finite number"),
    (("sessions", 0, "reason"), None, "sessions[0].reason is null"),
    (("sessions", 0, "ending"), "exploded", 'sessions[0].ending is "exploded"'),
    (("sessions",), [], "status is finished, which its sessions do not tell"),
    (("status",), "running", "status is running, which its sessions do not tell"),
    (("values",), [["stand_in", "x", "1", None]], "values are not the config's options"),
    (("combination",), "0000000000000000", "combination does not match its values"),
    (("run_id",), "r-7", 'run_id is "r-7"'),
    (("memory",), {"passed": 1}, "memory is not null, as no rule: halving asks for one"),
    # Without halving nothing would ever decide a paused run: the sweep hung, with --no-tensorboard too.
    (("status",), "paused", "status is paused, as only rule: halving pauses runs"),
    (("inherited",), {"B.onnx": [1]}, "inherited.B.onnx is malformed"),
    (("surprise",), 1, "surprise is not a field of it"),
])
def test_a_malformed_state_file_is_refused_with_one_line_and_exit_2(folder, capsys, where, value, shown):
    config = write_config(folder, "  duration: 0.1\n")
    assert main(argv(config)) == 0
    saved = state(folder)
    node = saved["runs"][0]
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    if where == ("values",):  # values of other options, with the identity they have
        node["combination"] = mlagents_learn.combination_of([("stand_in", "x", 1)])
    path = folder / "results" / "r-sweep" / "sweep_state.json"
    path.write_text(json.dumps(saved))
    capsys.readouterr()
    assert main(argv(config, "--resume")) == 2
    assert capsys.readouterr().err == (f"error: the sweep's state file is malformed: runs[0].{shown} (results/r-sweep/"
                                       "sweep_state.json): start the sweep anew with --force, or choose another --run-id\n")
    assert len(read_records(folder / "records")) == 1


def test_an_unreadable_state_file_is_refused(folder, capsys):
    config = write_config(folder, "  duration: 0.2\n")
    assert main(argv(config)) == 0
    (folder / "results" / "r-sweep" / "sweep_state.json").write_text("{half")
    assert main(argv(config, "--resume")) == 2
    assert capsys.readouterr().err == (
        "error: the sweep's state file cannot be read (JSONDecodeError) (results/r-sweep/sweep_state.json): "
        "start the sweep anew with --force, or choose another --run-id\n")


# -- faults that must not lose a run ------------------------------------------------------

def test_the_trainer_vanishing_mid_sweep_fails_the_remaining_runs_clearly_and_resume_trains_them(folder, capsys):
    shim = folder / "bin" / "trainer"
    shim.parent.mkdir()
    shim.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} {shlex.quote(STAND_IN)} \"$@\"\n")
    shim.chmod(0o755)
    config = write_config(folder, "  duration: 0.2\n  n: {opt_values: [0, 1, 2]}\n", gated=True)
    args = [str(config), "--trainer", str(shim), "--results-dir", "results", "--run-id", "r", "--no-tensorboard"]
    sweep = subprocess.Popen([sys.executable, str(SCRIPT), *args], cwd=folder, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_until(lambda: [r for r in read_records(folder / "records") if r["last_step"] == 200], 60)
    shim.unlink()
    (folder / "open").touch()
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


# -- nothing of a run outlives it, and a process is this sweep's only if its marker says so ----------

@pytest.mark.parametrize("second_ctrl_c", [False, True])
def test_a_runs_environment_in_a_session_of_its_own_never_outlives_the_run(folder, capsys, no_leftovers, second_ctrl_c):
    # mlagents-envs starts the Unity build in a session of its own: when the trainer ignored Ctrl-C and was
    # killed after --stop-timeout (or by a second Ctrl-C), the environment lived on with ppid 1.
    config = write_config(folder, "  ignore_sigint: true\n  environment: true\n  n: {opt_values: [0]}\n", gated=True)
    sweep = subprocess.Popen([sys.executable, str(SCRIPT), *argv(config, "--stop-timeout", "600" if second_ctrl_c else "1")],
                             cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    [rec] = wait_until(lambda: [r for r in read_records(folder / "records") if r["last_step"] == 200], 60)
    environment = rec["environment_pid"]
    assert process_alive(environment)
    sweep.send_signal(signal.SIGINT)
    if second_ctrl_c:
        wait_until(lambda: read_records(folder / "records")[0]["signals"] == ["SIGINT"], 30)
        sweep.send_signal(signal.SIGINT)
    out, err = sweep.communicate(timeout=60)
    assert sweep.returncode == 130, out + err
    assert not process_alive(rec["pid"])
    assert not process_alive(environment), f"the environment {environment} outlived its run"


def test_resume_reclaims_every_process_marked_as_this_sweeps_whatever_its_runs_status(folder, capsys):
    config = write_config(folder, "  duration: 0.2\n  n: {opt_values: [0, 1]}\n")
    assert main(argv(config)) == 0
    assert statuses(folder) == {"r-0": "finished", "r-1": "finished"}
    ours = f"{(folder / 'results' / 'r-sweep').resolve()}|{sweep_id(folder)}|r-0|0011223344556677"
    theirs = f"{(folder / 'results' / 'r-sweep').resolve()}|ffffffffffff|r-0|0011223344556677"  # another sweep's id
    straggler, stranger = (subprocess.Popen(["sleep", "120"], env={**os.environ, mlagents_learn.RUN_MARKER: marker},
                                            start_new_session=True) for marker in (ours, theirs))
    try:
        capsys.readouterr()
        assert main(argv(config, "--resume")) == 0
        assert (f"r-0 of the earlier sweep left 1 process behind ({straggler.pid}): killing it: no trainer is left to "
                "save a model") in capsys.readouterr().out
        assert straggler.wait(10) == -signal.SIGKILL
        assert stranger.poll() is None
    finally:
        for proc in (straggler, stranger):
            proc.kill()
            proc.wait()


def test_resume_in_a_copy_of_a_live_sweeps_folder_never_signals_the_live_sweeps_trainers(folder, monkeypatch,
                                                                                     no_leftovers):
    # The copy's state file names the live sweep's trainers (pid, start time, marker): its --resume stopped them,
    # and the live sweep, seeing them exit 0, called them finished at step 200 of 1000. A process is this sweep's
    # only if its marker names this sweep's own folder.
    path = folder / "sweep.yaml"
    path.write_text("behaviors:\n  B: {max_steps: 1000}\nstand_in:\n  steps: 1000\n  points: 20\n"
                    "  gate: {step: 200, file: open}\n  n: {opt_values: [0, 1]}\n")  # the gate opens in each one's folder
    live = subprocess.Popen([sys.executable, str(SCRIPT), *argv(path)], cwd=folder, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    wait_until(lambda: len([r for r in read_records(folder / "records") if r["last_step"] == 200]) == 2, 60)
    copy = folder / "copy"
    shutil.copytree(folder / "results", copy / "results")
    (copy / "open").touch()
    monkeypatch.chdir(copy)
    assert main(argv(path, "--resume", "--stop-timeout", "5")) == 0
    mine = [rec for rec in read_records(folder / "records") if rec["cwd"] == str(folder)]
    assert [(rec["signals"], rec["exit_code"]) for rec in mine] == [([], None), ([], None)]  # untouched, training
    (folder / "open").touch()
    out, err = live.communicate(timeout=60)
    assert live.returncode == 0, out + err
    assert statuses(folder) == {"r-0": "finished", "r-1": "finished"}
    assert all(rec["last_step"] == 1000 for rec in read_records(folder / "records"))


def test_without_a_state_file_resume_takes_each_runs_results_as_mlagents_recorded_them(folder, capsys, no_leftovers):
    # The state file was never written (a full disk from the start): --resume keeps mlagents-learn's meaning.
    config = write_config(folder, "  n: {opt_values: [0, 1, 2]}\n", gated=True)
    sweep = start_and_wait_for_two_at_the_gate(folder, config)
    sweep.send_signal(signal.SIGINT)  # r-0 and r-1 save at step 200; r-2 never starts
    sweep.communicate(timeout=60)
    (folder / "results" / "r-sweep" / "sweep_state.json").unlink()
    (folder / "open").touch()
    capsys.readouterr()
    assert main(argv(config, "--resume")) == 0
    assert "resuming sweep r: 0 runs done, 2 continue from their checkpoints" in capsys.readouterr().out
    assert_every_run_trained_once_to_the_end(read_records(folder / "records"), ["r-0", "r-1", "r-2"],
                                             continued=["r-0", "r-1"])
    capsys.readouterr()
    (folder / "results" / "r-sweep" / "sweep_state.json").unlink()
    assert main(argv(config, "--resume")) == 0
    assert capsys.readouterr().out.count("trained to the end (its results say so): not trained again") == 3
    assert len(read_records(folder / "records")) == 5  # none trained again
