"""The Ray launcher against real local Ray clusters: several nodes on this machine, each with its own resources.

Ray binds to the machine's network address whatever it is told, so every test
here runs in a private network namespace that has only loopback: the test
function re-runs itself there (`unshare -n`, as root) and asserts in there.
No test sends anything outside loopback.
"""

import csv
import functools
import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import mlagents_learn as ml
from helpers import STAND_IN, free_port, namespaces_work, read_records, wait_until

ROOT = Path(__file__).resolve().parent.parent
INSIDE = "MLAGENTS_SWEEP_TEST_NETNS"  # set in the namespace: the test body runs
# A node that stops answering is declared dead in 6 s instead of Ray's default 15 s; not fewer: on a
# loaded 2-core machine a live raylet can miss 2 s of checks, and a head declared dead takes the
# test's driver with it.
FAST_HEALTH_CHECKS = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 1000,
                      "health_check_failure_threshold": 6}


def in_loopback_namespace(test):
    """Run the test's body in a fresh network namespace with only loopback up."""
    @functools.wraps(test)
    def wrapper(*args, **kwargs):
        if os.environ.get(INSIDE):
            return test(*args, **kwargs)
        if not namespaces_work():
            pytest.skip("needs `unshare -n` (root on Linux): Ray must not bind to this machine's network address")
        node_id = f"{__file__}::{test.__name__}"
        inner = shlex.join([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-p", "no:xdist", node_id])
        done = subprocess.run(["unshare", "-n", "sh", "-c", f"ip link set lo up && exec {inner}"],
                              env={**os.environ, INSIDE: "1"}, cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    return wrapper


class LocalCluster:
    """A Ray cluster on this machine (ray.cluster_utils.Cluster): a head with no CPU for runs, and
    `nodes` worker nodes of `cpus` each, which any of them may lose; shut down on exit."""

    def __init__(self, nodes: int, cpus: float = 1) -> None:
        from ray.cluster_utils import Cluster

        self.cluster = Cluster(initialize_head=True, head_node_args={
            "num_cpus": 0, "gcs_server_port": free_port(1), "_system_config": FAST_HEALTH_CHECKS})
        self.workers = [self.cluster.add_node(num_cpus=cpus) for _ in range(nodes)]
        self.cluster.wait_for_nodes()

    @property
    def address(self) -> str:
        return self.cluster.address

    def __enter__(self) -> "LocalCluster":
        return self

    def __exit__(self, *exc) -> None:
        self.cluster.shutdown()


def stand_in_config(folder: Path, runs: int, duration: float, **extra) -> Path:
    path = folder / "sweep.yaml"
    path.write_text("behaviors:\n  B:\n    max_steps: 1000\n    summary_freq: 100\n"
                    f"stand_in:\n  duration: {duration}\n  points: 10\n  steps: 1000\n{extra_lines(extra)}"
                    f"  tag:\n    opt_values: [{', '.join(str(n) for n in range(runs))}]\n")
    return path


def extra_lines(extra: dict) -> str:
    return "".join(f"  {key}: {json.dumps(value)}\n" for key, value in extra.items())


def sweep_argv(config: Path, address: str, *more: str, results: str = "results", trainer: str = "") -> list:
    return [str(config), "--trainer", trainer or shlex.join([sys.executable, STAND_IN]), "--results-dir", results,
            "--run-id", "r", "--env=Fake", "--base-port", str(free_port()), "--no-tensorboard", "--ray", address, *more]


def state_of(folder: Path) -> dict:
    return {run["run_id"]: run for run in json.loads((folder / "results" / "r-sweep" / "sweep_state.json").read_text())["runs"]}


def overlap(records: list) -> int:
    """The most trainers that ran at one moment, from their records' start and end times."""
    events = sorted([(rec["launched"], 1) for rec in records] + [(rec["end"], -1) for rec in records])
    most = now = 0
    for _, change in events:
        now += change
        most = max(most, now)
    return most


def test_the_death_signal_hook_travels_to_a_node_without_its_libc_handle():
    # The script goes to the nodes by value, with what its functions refer to: once TensorBoard
    # was started here, that included a ctypes handle, which cannot be pickled.
    import ray.cloudpickle

    hook = ml.die_with_parent_hook(signal.SIGINT)
    copy = ray.cloudpickle.loads(ray.cloudpickle.dumps(hook))
    assert (copy.number, copy.prctl, hook.prctl is not None) == (signal.SIGINT, None, True)
    assert copy.prepare() and copy.prctl is not None  # the node looks libc up for itself


# -- placement -----------------------------------------------------------------------------

@in_loopback_namespace
def test_every_run_trains_once_on_the_cluster_never_more_at_once_than_it_holds(folder, capsys):
    with LocalCluster(nodes=2) as cluster:
        code = ml.main(sweep_argv(stand_in_config(folder, 4, 2.0), cluster.address, "--num-envs", "4"))
    out = capsys.readouterr().out
    assert code == 0, out
    records = read_records(folder / "records")
    assert sorted(rec["run_id"] for rec in records) == ["r-0", "r-1", "r-2", "r-3"]  # each once, none resumed
    assert all(rec["exit_code"] == 0 and not rec["resumed"] for rec in records)
    assert overlap(records) == 2  # two one-CPU nodes: two at once, although --num-envs is 4
    by_launch = [rec["run_id"] for rec in sorted(records, key=lambda rec: rec["launched"])]
    assert set(by_launch[:2]) == {"r-0", "r-1"} and set(by_launch[2:]) == {"r-2", "r-3"}  # runs take slots in grid order
    state = state_of(folder)
    assert len({run["sessions"][-1]["node"] for run in state.values()}) == 2  # both nodes trained
    assert all(run["status"] == "finished" for run in state.values())
    for run_id, run in state.items():
        assert f"start {run_id}: tag={run_id[-1]}" in out and f"on {run['sessions'][-1]['node']}" in out
    summary = (folder / "results" / "r-sweep" / "summary.csv").read_text().splitlines()
    assert summary[0].split(",")[:5] == ["run", "values", "seed", "status", "node"]
    # Each run's log is in the sweep's logs/, its ports from the lane its node gave it.
    for run_id in state:
        assert (folder / "results" / "r-sweep" / "logs" / f"{run_id}.log").exists()
    assert len({tuple(rec["ports"]) for rec in records}) >= 2


class HiddenNode:
    """One more one-CPU node, started in a mount namespace of its own where a tmpfs hides `path`."""

    def __init__(self, cluster: LocalCluster, path: Path) -> None:
        ray_cli = str(Path(sys.executable).with_name("ray"))
        self.process = subprocess.Popen(
            ["unshare", "-m", "sh", "-c", f"mount -t tmpfs none {shlex.quote(str(path))} && exec "
             + shlex.join([ray_cli, "start", "--address", cluster.address, "--num-cpus", "1", "--block"])],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import ray

        ray.init(address=cluster.address)
        try:
            wait_until(lambda: len([node for node in ray.nodes() if node["Alive"]]) == 2, 60)
        finally:
            ray.shutdown()

    def close(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(60)


@pytest.mark.parametrize("hide, said", [("results", "cannot see the results folder"),
                                        ("bin", "cannot run the trainer"),
                                        ("work", "has no folder")])
@in_loopback_namespace
def test_a_node_that_cannot_see_the_results_the_trainer_or_the_sweeps_folder_is_refused_before_anything_is_written(
        folder, capsys, monkeypatch, hide, said):
    for name in ("results", "bin", "work/here"):
        (folder / name).mkdir(parents=True)
    trainer = folder / "bin" / "trainer"
    trainer.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} {shlex.quote(STAND_IN)} \"$@\"\n")
    trainer.chmod(0o755)
    monkeypatch.chdir(folder / "work" / "here")  # the sweep runs here: each run trains here on its node
    argv = sweep_argv(stand_in_config(folder, 2, 1.0), "", trainer=str(trainer), results=str(folder / "results"))
    with LocalCluster(nodes=0) as cluster:
        node = HiddenNode(cluster, folder / hide)
        capsys.readouterr()  # what the test's own look at the cluster printed
        try:
            argv[argv.index("--ray") + 1] = cluster.address
            code = ml.main(argv)
        finally:
            node.close()
    err = capsys.readouterr().err
    assert code == ml.EXIT_USAGE
    lines = err.strip().splitlines()
    assert len(lines) == 1 and said in lines[0], err
    assert str({"results": folder / "results", "bin": trainer, "work": folder / "work" / "here"}[hide]) in lines[0]
    assert os.listdir(folder / "results") == []  # nothing written, not even the sweep folder
    assert read_records(folder / "records") == []


# -- faults --------------------------------------------------------------------------------

@in_loopback_namespace
def test_ctrl_c_stops_every_run_on_every_node_each_saves_and_resume_trains_them_on_to_the_end(folder):
    gate = folder / "open"  # never made: a fresh run holds at step 500 until Ctrl-C
    config = stand_in_config(folder, 2, 4.0, gate={"step": 500, "file": str(gate)})
    with LocalCluster(nodes=2) as cluster:
        argv = sweep_argv(config, cluster.address, "--num-envs", "2")
        sweep = subprocess.Popen([sys.executable, str(ROOT / "mlagents-learn.py"), *argv],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_until(lambda: len([rec for rec in read_records(folder / "records") if (rec["last_step"] or 0) >= 500]) == 2, 120)
        sweep.send_signal(signal.SIGINT)
        out, err = sweep.communicate(timeout=120)
        assert sweep.returncode == 130, out + err
        records = read_records(folder / "records")
        assert sorted(rec["run_id"] for rec in records) == ["r-0", "r-1"]
        assert all(rec["signals"] == ["SIGINT"] and rec["exit_code"] == 0 for rec in records), (records, out, err)
        for rec in records:
            assert (folder / "results" / rec["run_id"] / "B.onnx").exists()  # the model it saved
        assert {run["status"] for run in state_of(folder).values()} == {"interrupted"}

        again = subprocess.run([sys.executable, str(ROOT / "mlagents-learn.py"), *argv, "--resume"],
                               capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    resumed = [rec for rec in read_records(folder / "records") if rec["resumed"]]
    assert sorted(rec["run_id"] for rec in resumed) == ["r-0", "r-1"]  # each once more, from its checkpoint
    assert all(rec["exit_code"] == 0 and rec["last_step"] == 1000 for rec in resumed)
    assert {run["status"] for run in state_of(folder).values()} == {"finished"}


@in_loopback_namespace
def test_a_second_ctrl_c_kills_every_run_on_every_node_with_its_whole_process_group(folder):
    config = stand_in_config(folder, 2, 60.0, ignore_sigint=True, child=True)  # deaf to the first Ctrl-C, and a worker
    with LocalCluster(nodes=2) as cluster:
        sweep = subprocess.Popen([sys.executable, str(ROOT / "mlagents-learn.py"),
                                  *sweep_argv(config, cluster.address, "--num-envs", "2")],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_until(lambda: len([rec for rec in read_records(folder / "records") if rec["child_pid"]]) == 2, 120)
        sweep.send_signal(signal.SIGINT)
        wait_until(lambda: all(rec["signals"] == ["SIGINT"] for rec in read_records(folder / "records")), 60)
        sweep.send_signal(signal.SIGINT)
        out, err = sweep.communicate(timeout=120)
        records = read_records(folder / "records")
        alive = [pid for rec in records for pid in (rec["pid"], rec["child_pid"]) if Path(f"/proc/{pid}").exists()
                 and Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"]
    assert sweep.returncode == 130, out + err
    assert [rec["end"] for rec in records] == [None, None]  # SIGKILL: no end written
    assert alive == []  # trainer and worker of each run, on each node


@in_loopback_namespace
def test_a_gpu_node_gives_each_run_its_own_gpu_and_the_trainer_sees_it(folder):
    with LocalCluster(nodes=0) as cluster:
        cluster.cluster.add_node(num_cpus=2, num_gpus=2)  # Ray hands out GPUs it is told of: none need be there
        cluster.cluster.wait_for_nodes()
        code = ml.main(sweep_argv(stand_in_config(folder, 2, 2.0), cluster.address, "--num-envs", "2", "--gpus-per-run", "1"))
    assert code == 0
    records = read_records(folder / "records")
    assert overlap(records) == 2
    assert sorted(rec["cuda_visible_devices"] for rec in records) == ["0", "1"]  # Ray's, untouched


@in_loopback_namespace
def test_a_run_whose_node_dies_trains_on_from_its_checkpoint_on_another_node_exactly_once(folder):
    with LocalCluster(nodes=2) as cluster:
        sweep = subprocess.Popen([sys.executable, str(ROOT / "mlagents-learn.py"),
                                  *sweep_argv(stand_in_config(folder, 1, 12.0), cluster.address, "--num-envs", "1")],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_until(lambda: any((rec["last_step"] or 0) >= 200 for rec in read_records(folder / "records")), 120)
        where = state_of(folder)["r-0"]["sessions"][-1]["node"]  # address/the start of the node's Ray id
        doomed = next(node for node in cluster.workers if node.node_id[:8] == where.split("/")[-1])
        cluster.cluster.remove_node(doomed, allow_graceful=False)
        out, err = sweep.communicate(timeout=300)
    assert sweep.returncode == 0, out + err
    records = sorted(read_records(folder / "records"), key=lambda rec: rec["start"])
    assert [rec["resumed"] for rec in records] == [False, True]
    assert records[0]["signals"] == ["SIGINT"], json.dumps(records) + out  # its worker died: the kernel's SIGINT saved the run
    assert records[1]["exit_code"] == 0 and records[1]["last_step"] >= 200  # it went on from where it was
    state = state_of(folder)["r-0"]
    assert state["status"] == "finished" and state["attempts"] == 1
    assert (folder / "results" / "r-0" / "B.onnx").exists()
    assert "lost r-0" in out and "trains again from its checkpoint (retry 1 of 2)" in out


# -- the real trainer ----------------------------------------------------------------------

VENV_BIN = ROOT / ".venv" / "bin"
MLAGENTS_LEARN = Path(os.environ.get("MLAGENTS_LEARN", VENV_BIN / "mlagents-learn"))


@pytest.mark.skipif(not MLAGENTS_LEARN.is_file(), reason=f"no mlagents-learn at {MLAGENTS_LEARN}: run make test, which installs it")
@in_loopback_namespace
def test_the_real_trainer_trains_a_small_sweep_on_two_nodes_and_each_run_exports_its_model(folder, capsys):
    import yaml

    config = yaml.safe_load((ROOT / "examples" / "MoveToTarget" / "sweep.yaml").read_text())
    behavior = config["behaviors"]["MoveToTarget"]
    behavior.pop("opt_stop")
    behavior["hyperparameters"]["learning_rate"] = 0.003  # options left: hidden_units [64, 32]
    behavior.update(max_steps=4000, summary_freq=1000, checkpoint_interval=2000)
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    with LocalCluster(nodes=2) as cluster:
        code = ml.main([str(path), f"--env={MLAGENTS_LEARN.with_name('MoveToTarget')}", "--trainer", str(MLAGENTS_LEARN),
                        "--results-dir", "results", "--run-id", "real", "--base-port", str(free_port()), "--num-envs", "2",
                        "--tensorboard-url", f"http://127.0.0.1:{free_port()}", "--poll-interval", "2",
                        "--ray", cluster.address])
    out = capsys.readouterr().out
    assert code == 0, out
    results = folder / "results"
    state = json.loads((results / "real-sweep" / "sweep_state.json").read_text())["runs"]
    assert [run["status"] for run in state] == ["finished", "finished"]
    assert len({run["sessions"][-1]["node"] for run in state}) == 2  # one run per one-CPU node
    for run_id in ("real-0", "real-1"):
        assert (results / run_id / "MoveToTarget.onnx").stat().st_size > 1000
    with (results / "real-sweep" / "summary.csv").open() as handle:
        rows = {row["run"]: row for row in csv.DictReader(handle)}
    # TensorBoard on the driver read both runs to their last point.
    assert [rows[run_id]["last step"] for run_id in ("real-0", "real-1")] == ["4000", "4000"]
    assert all(rows[run_id]["Environment/Cumulative Reward"] for run_id in rows)


@in_loopback_namespace
def test_a_random_search_with_halving_trains_and_promotes_its_trials_on_the_cluster(folder):
    from helpers import TensorBoardServer, stand_in_search

    path = stand_in_search(folder, "r")
    with TensorBoardServer(str(folder / "results"), reload_interval=1) as board, LocalCluster(nodes=2) as cluster:
        argv = sweep_argv(path, cluster.address, "--num-envs", "2", "--search", "random", "--num-trials", "6",
                          "--search-seed", "21", "--tensorboard-url", board.url, "--poll-interval", "0.5", "--metric", "Score")
        argv.remove("--no-tensorboard")
        assert ml.main(argv) == 0
    state = state_of(folder)
    plan = ml.SweepPlan(ml.parse_config(path.read_text()), "r")
    drawn = [ml.RandomSampler(plan.options, 21).sample(number, [])[0] for number in range(6)]
    assert [float(run["values"][0][2]) for run in state.values()] == drawn
    ranked = sorted(range(6), key=lambda n: -drawn[n])
    assert {run_id: run["status"] for run_id, run in state.items()} == {
        f"r-{n}": "finished" if n == ranked[0] else "stopped" for n in range(6)}
    records = read_records(folder / "records")
    assert sorted(rec["run_id"] for rec in records if not rec["resumed"]) == [f"r-{n}" for n in range(6)]
    assert sorted(rec["run_id"] for rec in records if rec["resumed"]) == sorted([f"r-{ranked[0]}"] * 2 + [f"r-{ranked[1]}"])
    assert len({session["node"] for run in state.values() for session in run["sessions"]}) == 2  # both nodes trained


@in_loopback_namespace
def test_a_confirmation_trains_on_the_cluster_as_the_search_did(folder, monkeypatch):
    from helpers import TensorBoardServer

    import yaml

    # Every point of a run has its seed's value: a shorter wait for TensorBoard to settle changes no score.
    monkeypatch.setattr(ml, "TENSORBOARD_SETTLE", 2.0)

    f0, f1 = ml.fresh_seeds(5, 1, [5], 2)
    tables = {"first": {5: 1.0, f0: 0.2, f1: 0.4}, "second": {5: 0.5}}
    scalars = {label: {"B": {"Score": {"by_seed": table, "other": 0.0}}} for label, table in tables.items()}
    path = folder / "confirm.yaml"
    path.write_text(yaml.safe_dump({"behaviors": {"B": {"max_steps": 900, "summary_freq": 100}},
                                    "stand_in": {"duration": 1, "points": 9, "steps": 900,
                                                 "scalars": {"opt_values": scalars}}}, sort_keys=False))
    with TensorBoardServer(str(folder / "results"), reload_interval=1) as board, LocalCluster(nodes=2) as cluster:
        argv = sweep_argv(path, cluster.address, "--num-envs", "2", "--seed", "5", "--confirm", "1", "--confirm-seeds", "2",
                          "--tensorboard-url", board.url, "--poll-interval", "0.5", "--metric", "Score")
        argv.remove("--no-tensorboard")
        assert ml.main(argv) == 0
    state = state_of(folder)
    assert [(run_id, run["seed"], run["confirms"], run["values"][0][3], run["status"]) for run_id, run in state.items()] == [
        ("r-0", 5, False, "first", "finished"), ("r-1", 5, False, "second", "finished"),
        ("r-2", f0, True, "first", "finished"), ("r-3", f1, True, "first", "finished")]
    assert {rec["run_id"]: rec["seed"] for rec in read_records(folder / "records")} == {"r-0": 5, "r-1": 5, "r-2": f0, "r-3": f1}
    assert all(run["sessions"][-1]["node"] for run in state.values())  # every run trained on a node of the cluster
    with (folder / "results" / "r-sweep" / "summary_confirmation.csv").open() as handle:
        assert [(row["runs"], row["mean score"]) for row in csv.DictReader(handle)] == [("2", "0.3")]


@in_loopback_namespace
def test_population_based_training_copies_checkpoints_in_the_shared_results_folder(folder):
    from helpers import TensorBoardServer

    # As tests/test_pbt.py's stand-in sweep, on two nodes: four runs, two at once, each point's Score its
    # learning_rate; at steps 300 and 600 the worst takes over the best one's checkpoint, its rate a place lower.
    state_path = json.dumps(str(folder / "results" / "r-sweep" / "sweep_state.json"))
    path = folder / "pbt.yaml"
    path.write_text("behaviors:\n  B:\n    max_steps: 900\n    summary_freq: 100\n"
                    "    hyperparameters:\n      learning_rate: {opt_values: [1, 2, 3, 4]}\n"
                    "    opt_stop: {tag: Score, rule: pbt, interval: 300, perturb: [0.8], resample: 0}\n"
                    f"stand_in:\n  duration: 1\n  points: 9\n  steps: 900\n  hold: {{steps: [300, 600], sweep_state: {state_path}}}\n"
                    "  scalars: {B: {Score: {config: hyperparameters.learning_rate}}}\n")
    with TensorBoardServer(str(folder / "results"), reload_interval=1) as board, LocalCluster(nodes=2) as cluster:
        argv = sweep_argv(path, cluster.address, "--num-envs", "2", "--seed", "3", "--tensorboard-url", board.url,
                          "--poll-interval", "0.5", "--metric", "Score")
        argv.remove("--no-tensorboard")
        assert ml.main(argv) == 0
    state = state_of(folder)
    assert {run_id: [(e["interval"], e["donor"], e["step"], e["before"][0][2], e["after"][0][2]) for e in run["lineage"]]
            for run_id, run in state.items()} == {"r-0": [(1, "r-3", 300.0, "1", "3")], "r-1": [(2, "r-3", 600.0, "2", "3")],
                                                  "r-2": [], "r-3": []}
    assert all(run["status"] == "finished" for run in state.values())
    loaded = [(rec["resumed"], rec["loaded"]) for rec in read_records(folder / "records") if rec["run_id"] == "r-0"]
    assert loaded == [(False, None), (True, "stand-in checkpoint r-3 300"), (True, "stand-in checkpoint r-0 600")]
    assert len({session["node"] for run in state.values() for session in run["sessions"]}) == 2  # both nodes trained
