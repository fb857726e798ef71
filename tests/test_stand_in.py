"""The stand-in trainer behaves like mlagents-learn where the sweep runner can tell:
files, TensorBoard data, exit codes, messages, ports and signals.

These run tests/stand_in_trainer.py directly (not the sweep runner) against one
real TensorBoard server for the module."""

import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
from typing import Any, Dict, List, Tuple

import pytest
import yaml

from helpers import (
    STAND_IN,
    TensorBoardServer,
    free_port,
    kill_group,
    process_alive,
    read_records,
    scalars,
    scalars_multirun,
    wait_until,
)

pytestmark = pytest.mark.skipif(os.name != "posix", reason="signals and process groups are POSIX here")

REWARD = "Environment/Cumulative Reward"
PREVIOUS_DATA = (
    "Previous data from this run ID was found. Either specify a new run ID, use --resume "
    "to resume this run, or use the --force parameter to overwrite existing data."
)


def f32(value: float) -> float:
    """What a simple_value scalar comes back as: rounded to float32."""
    return struct.unpack("f", struct.pack("f", value))[0]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("results"))


@pytest.fixture(scope="module")
def tensorboard(results: str):
    with TensorBoardServer(results, reload_interval=1) as server:
        yield server


@pytest.fixture
def records(tmp_path, monkeypatch) -> str:
    directory = tmp_path / "records"
    directory.mkdir()
    monkeypatch.setenv("STAND_IN_RECORDS", str(directory))
    return str(directory)


@pytest.fixture
def groups():
    """Process groups a test started; whatever is left in them is killed afterwards."""
    started: List[int] = []
    yield started
    for pgid in started:
        kill_group(pgid)


def write_config(path, stand_in: Dict[str, Any], behaviors=("3DBall",), **sections: Any) -> str:
    config = {"behaviors": {name: {"trainer_type": "ppo"} for name in behaviors}, **sections}
    config["stand_in"] = stand_in
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return str(path)


def run(config: str, *flags: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, STAND_IN, config, *flags],
        capture_output=True, text=True, timeout=timeout,
    )


def launch(config: str, *flags: str, groups: List[int]) -> "subprocess.Popen[str]":
    """Start the trainer as the sweep does: in its own process group."""
    proc = subprocess.Popen(
        [sys.executable, STAND_IN, config, *flags],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    groups.append(proc.pid)
    return proc


def the_record(records: str) -> Dict[str, Any]:
    (record,) = read_records(records)
    return record


def tree(root: str) -> Dict[str, Tuple[float, bytes]]:
    found = {}
    for dirpath, _dirs, files in os.walk(root):
        found[dirpath] = (os.stat(dirpath).st_mtime, b"")
        for name in files:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                found[path] = (os.stat(path).st_mtime, f.read())
    return found


def wait_for_points(url: str, run_name: str, tag: str, expected: List[Tuple[int, float]]) -> None:
    """TensorBoard serves exactly these points (give it a reload or two)."""
    wait_until(
        lambda: scalars(url, run_name, tag) == expected, 10,
        message=lambda: f"{run_name} {tag}: served {scalars(url, run_name, tag)}, expected {expected}",
    )


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


# ------------------------------------------------------------------ TensorBoard


def test_tensorboard_serves_each_point_as_it_is_written(tmp_path, results, tensorboard, records, groups):
    config = write_config(
        tmp_path / "c.yaml",
        {
            "duration": 20, "points": 40, "steps": 4000,
            "scalars": {
                "3DBall": {REWARD: {"start": 0, "end": 39}, "Policy/Beta": [0.1, 0.2, 0.3]},
                "Extra": {"Environment/Episode Length": 50},
            },
        },
    )
    proc = launch(config, "--run-id", "live", "--results-dir", results, groups=groups)
    # Flushed after every point: TensorBoard shows points while the run goes on.
    wait_until(lambda: len(scalars(tensorboard.url, "live/3DBall", REWARD)) >= 2, 15)
    assert proc.poll() is None
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=10) == 0

    written = the_record(records)["last_step"] // 100
    assert 2 <= written < 40
    steps = [100 * (k + 1) for k in range(written)]
    expected = {
        ("live/3DBall", REWARD): [(s, float(k)) for k, s in enumerate(steps)],
        ("live/3DBall", "Policy/Beta"): [(s, f32([0.1, 0.2, 0.3][min(k, 2)])) for k, s in enumerate(steps)],
        ("live/Extra", "Environment/Episode Length"): [(s, 50.0) for s in steps],
    }
    for (run_name, tag), points in expected.items():
        wait_for_points(tensorboard.url, run_name, tag, points)
    assert scalars_multirun(tensorboard.url, REWARD, ["live/3DBall", "live/Extra", "live/Nobody"]) == {
        "live/3DBall": expected[("live/3DBall", REWARD)],
    }
    assert scalars_multirun(tensorboard.url, "Environment/Episode Length", ["live/3DBall", "live/Extra"]) == {
        "live/Extra": expected[("live/Extra", "Environment/Episode Length")],
    }


def test_a_complete_run_leaves_what_mlagents_leaves(tmp_path, results, tensorboard, records):
    # No --run-id: the YAML's checkpoint_settings.run_id, as mlagents-learn reads it.
    config = write_config(
        tmp_path / "c.yaml",
        {"duration": 0.2, "points": 4, "steps": 1000, "exit_code": 3},
        behaviors=("3DBall", "Walker"),
        checkpoint_settings={"run_id": "from-yaml"},
        env_settings={"num_envs": 2},
    )
    done = run(config, "--results-dir", results, "--seed", "7", "--unknown-flag", "--env-args", "-x", "--y")
    assert done.returncode == 3, done.stderr
    assert "stand-in: training from-yaml\n" in done.stdout
    assert "stand-in: stderr of from-yaml\n" in done.stderr

    run_dir = os.path.join(results, "from-yaml")
    record = the_record(records)
    for behavior in ("3DBall", "Walker"):
        (event_file,) = [n for n in os.listdir(os.path.join(run_dir, behavior)) if n.startswith("events")]
        assert re.fullmatch(rf"events\.out\.tfevents\.\d{{10}}\.{re.escape(socket.gethostname())}\.{record['pid']}\.\d", event_file)
        assert os.path.getsize(os.path.join(run_dir, f"{behavior}.onnx")) > 0
        assert os.path.isfile(os.path.join(run_dir, behavior, "checkpoint.pt"))
    assert os.path.isdir(os.path.join(run_dir, "run_logs"))
    with open(os.path.join(run_dir, "configuration.yaml")) as f:
        written = yaml.safe_load(f)
    assert written["checkpoint_settings"] == {"run_id": "from-yaml", "results_dir": results, "resume": False, "force": False}
    assert written["env_settings"] == {"num_envs": 2, "base_port": 5005, "env_path": None}
    assert written["behaviors"] == {"3DBall": {"trainer_type": "ppo"}, "Walker": {"trainer_type": "ppo"}}

    assert record["argv"] == [config, "--results-dir", results, "--seed", "7", "--unknown-flag", "--env-args", "-x", "--y"]
    assert record["run_id"] == "from-yaml"
    assert record["exit_code"] == 3 and record["end"] >= record["start"]
    assert record["signals"] == [] and record["ports"] == [] and record["resumed"] is False
    assert record["last_step"] == 1000 and record["child_pid"] is None
    assert record["ppid"] == os.getpid()

    # Without `scalars`: Cumulative Reward from 0.0 to 1.0 for every behavior.
    expected = [(250, 0.0), (500, f32(1 / 3)), (750, f32(2 / 3)), (1000, 1.0)]
    for behavior in ("3DBall", "Walker"):
        wait_for_points(tensorboard.url, f"from-yaml/{behavior}", REWARD, expected)


def test_resume_continues_after_the_last_step_up_to_the_total(tmp_path, results, tensorboard, records):
    config = write_config(tmp_path / "c.yaml", {"duration": 0.1, "points": 2, "steps": 200})
    flags = ("--run-id", "again", "--results-dir", results)
    assert run(config, *flags).returncode == 0
    # As with mlagents-learn's max_steps: resuming a finished run trains nothing more ...
    assert run(config, *flags, "--resume").returncode == 0
    # ... and raising the total trains the points not yet reached.
    longer = write_config(tmp_path / "longer.yaml", {"duration": 0.2, "points": 4, "steps": 400})
    resumed = run(longer, *flags, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    first, same, second = read_records(records)
    assert (first["resumed"], first["last_step"]) == (False, 200)
    assert (same["resumed"], same["last_step"]) == (True, 200)
    assert (second["resumed"], second["last_step"]) == (True, 400)
    with open(os.path.join(results, "again", "configuration.yaml")) as f:
        assert yaml.safe_load(f)["checkpoint_settings"]["resume"] is True
    # Several event files in one behavior folder; TensorBoard reads them as one run.
    expected = [(100, 0.0), (200, 1.0), (300, f32(2 / 3)), (400, 1.0)]
    wait_for_points(tensorboard.url, "again/3DBall", REWARD, expected)


def test_hold_waits_at_a_rung_for_a_sigint_or_for_the_sweep_to_let_it_pass(tmp_path, results, records, groups):
    # What a halving sweep does at a rung: SIGINT the run (a pause, later --resume), or let it pass.
    sweep_state = tmp_path / "sweep_state.json"
    config = write_config(tmp_path / "c.yaml", {"duration": 0.3, "points": 3, "steps": 300,
                                                "hold": {"steps": [100, 200, 300], "sweep_state": str(sweep_state)}})
    flags = ("--run-id", "held", "--results-dir", results)
    proc = launch(config, *flags, groups=groups)
    held = lambda: [record for record in read_records(records) if record["held_at"]]  # noqa: E731
    wait_until(held, 30)
    with pytest.raises(subprocess.TimeoutExpired):
        proc.wait(timeout=1.0)  # not held, it would have ended a second ago
    os.killpg(proc.pid, signal.SIGINT)  # paused at rung 1
    assert proc.wait(timeout=10) == 0
    proc = launch(config, *flags, "--resume", groups=groups)
    wait_until(lambda: len(held()) == 2, 30)
    sweep_state.write_text(json.dumps({"runs": [{"run_id": "held", "memory": {"passed": 2}}]}))  # it passes rung 2
    assert proc.wait(timeout=30) == 0  # and trains to the end: the last point is no place to wait
    first, second = read_records(records)
    assert (first["resumed"], first["last_step"], first["held_at"], first["signals"]) == (False, 100, [100], ["SIGINT"])
    assert (second["resumed"], second["last_step"], second["held_at"], second["signals"]) == (True, 300, [200], [])


# ------------------------------------------------------------- refusals


def test_existing_run_folder_without_force_exits_1_untouched(tmp_path, records):
    results = str(tmp_path / "results")
    config = write_config(tmp_path / "c.yaml", {"duration": 0.05, "points": 1})
    assert run(config, "--run-id", "taken", "--results-dir", results).returncode == 0
    before = tree(results)

    refused = run(config, "--run-id", "taken", "--results-dir", results)
    assert refused.returncode == 1
    assert refused.stderr.endswith(PREVIOUS_DATA + "\n")
    assert tree(results) == before
    assert read_records(records)[-1]["exit_code"] == 1

    forced = run(config, "--run-id", "taken", "--results-dir", results, "--force")
    assert forced.returncode == 0, forced.stderr


def test_resume_without_previous_data_exits_1(tmp_path):
    config = write_config(tmp_path / "c.yaml", {"duration": 0.05, "points": 1})
    refused = run(config, "--run-id", "new", "--results-dir", str(tmp_path / "results"), "--resume")
    assert refused.returncode == 1
    assert refused.stderr.endswith(
        "Previous data from this run ID was not found. Train a new run by removing the --resume flag.\n"
    )
    assert not os.path.exists(tmp_path / "results")


def test_port_in_use_exits_1(tmp_path, records):
    config = write_config(tmp_path / "c.yaml", {"duration": 0.05, "points": 1})
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as other:
        port = free_port(1)
        other.bind(("127.0.0.1", port))
        other.listen(1)
        refused = run(config, "--env", "Build/3DBall", "--base-port", str(port),
                      "--run-id", "clash", "--results-dir", str(tmp_path / "results"))
    assert refused.returncode == 1
    assert refused.stderr.endswith("Couldn't launch the environment. The worker number 0 is still in use\n")
    assert the_record(records)["ports"] == []


def test_second_worker_port_in_use_exits_1_and_frees_the_first(tmp_path):
    config = write_config(tmp_path / "c.yaml", {"duration": 0.05, "points": 1})
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as other:
        while True:
            base = free_port()
            try:
                other.bind(("127.0.0.1", base + 1))
                break
            except OSError:
                continue
        refused = run(config, "--env=Build/3DBall", f"--base-port={base}", "--num-envs=2",
                      "--run-id", "clash", "--results-dir", str(tmp_path / "results"))
    assert refused.returncode == 1
    assert refused.stderr.endswith("Couldn't launch the environment. The worker number 1 is still in use\n")
    assert port_is_free(base)


# ------------------------------------------------------------------ signals


def start_training(tmp_path, records, groups, **stand_in: Any) -> Tuple["subprocess.Popen[str]", Dict[str, Any], int, str]:
    """A long run with --env and a forked worker, waited on until it has written a point."""
    port = free_port()
    config = write_config(tmp_path / "c.yaml", {"duration": 30, "points": 300, "steps": 30000, "child": True, **stand_in})
    results = str(tmp_path / "results")
    proc = launch(config, "--env", "Build/3DBall", "--base-port", str(port),
                  "--run-id", "sig", "--results-dir", results, groups=groups)
    record = wait_until(lambda: [r for r in read_records(records) if r["last_step"]], 10)[0]
    assert record["ports"] == [port] and not port_is_free(port)
    assert record["pgid"] == proc.pid and process_alive(record["child_pid"])
    return proc, record, port, os.path.join(results, "sig")


def test_sigint_to_the_group_saves_the_model_and_exits_0(tmp_path, records, groups):
    proc, record, port, run_dir = start_training(tmp_path, records, groups)
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=10) == 0
    after = the_record(records)
    assert after["signals"] == ["SIGINT"] and after["exit_code"] == 0 and after["end"] is not None
    assert os.path.getsize(os.path.join(run_dir, "3DBall.onnx")) > 0
    assert os.path.isfile(os.path.join(run_dir, "3DBall", "checkpoint.pt"))
    wait_until(lambda: not process_alive(record["child_pid"]), 5)
    wait_until(lambda: port_is_free(port), 5)


def test_sigint_to_the_trainer_alone_leaves_its_worker(tmp_path, records, groups):
    # The stand-in leaves cleaning up its worker to the group's SIGINT: a sweep
    # that signals only the trainer's pid leaks the worker (and its port).
    proc, record, port, run_dir = start_training(tmp_path, records, groups)
    os.kill(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=10) == 0
    assert os.path.isfile(os.path.join(run_dir, "3DBall.onnx"))
    assert process_alive(record["child_pid"]) and not port_is_free(port)


def test_sigterm_kills_at_once_and_saves_nothing(tmp_path, records, groups):
    proc, record, port, run_dir = start_training(tmp_path, records, groups)
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=5) == -signal.SIGTERM
    after = the_record(records)
    assert after["signals"] == ["SIGTERM"] and after["exit_code"] == -signal.SIGTERM
    assert not os.path.exists(os.path.join(run_dir, "3DBall.onnx"))
    assert process_alive(record["child_pid"])


def test_ignore_sigint_keeps_running_until_killed(tmp_path, records, groups):
    proc, record, port, run_dir = start_training(
        tmp_path, records, groups, ignore_sigint=True, duration=0.6, points=3, steps=300
    )
    os.killpg(proc.pid, signal.SIGINT)
    wait_until(lambda: the_record(records)["signals"] == ["SIGINT"], 5)
    # It trains to the end and then hangs instead of exiting.
    wait_until(lambda: the_record(records)["last_step"] == 300, 5)
    with pytest.raises(subprocess.TimeoutExpired):
        proc.wait(timeout=0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=5) == -signal.SIGKILL
    after = the_record(records)
    assert after["exit_code"] is None and after["end"] is None
    assert not os.path.exists(os.path.join(run_dir, "3DBall.onnx"))


# -------------------------------------------------------------- the helper


def test_tensorboard_server_comes_back_on_the_same_port(tmp_path, records):
    """A server of its own: the test must not depend on what other tests wrote."""
    results = tmp_path / "results"
    config = write_config(tmp_path / "c.yaml", {"duration": 0.1, "points": 2, "steps": 200})
    assert run(config, "--run-id", "back", "--results-dir", str(results)).returncode == 0
    with TensorBoardServer(str(results), reload_interval=1) as server:
        wait_for_points(server.url, "back/3DBall", REWARD, [(100, 0.0), (200, 1.0)])
        port, pid = server.port, server.proc.pid
        server.stop()
        assert not process_alive(pid)
        with pytest.raises(OSError):
            scalars(server.url, "back/3DBall", REWARD)
        server.start()
        assert server.port == port and server.proc.pid != pid
        wait_for_points(server.url, "back/3DBall", REWARD, [(100, 0.0), (200, 1.0)])
