"""End to end: the real mlagents-learn trains real PPO on the bundled headless environment.

`make test` installs ML-Agents 1.1.0 into .venv first (scripts/install_mlagents.py).
"""

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, SCRIPT
from helpers import TensorBoardServer, free_port, scalars, wait_until

TRAINER = Path(os.environ.get("MLAGENTS_LEARN", ROOT / ".venv" / "bin" / "mlagents-learn"))
PYTHON = TRAINER.parent / "python"
ENV = TRAINER.parent / "MoveToTarget"  # the demo environment's console script (scripts/install_mlagents.py)
SWEEP = ROOT / "examples" / "MoveToTarget" / "sweep.yaml"
REWARD = "Environment/Cumulative Reward"

pytestmark = [
    pytest.mark.skipif(not TRAINER.is_file(), reason=f"no mlagents-learn at {TRAINER}: run make test, which installs it"),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the process checks read /proc"),
]


def example(tmp_path: Path, **changes) -> Path:
    """The example sweep config, with some behavior settings changed."""
    config = yaml.safe_load(SWEEP.read_text())
    behavior = config["behaviors"]["MoveToTarget"]
    for key, value in changes.items():
        if value is None:
            behavior.pop(key, None)
        else:
            behavior[key] = value
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def sweep_command(config: Path, *extra: str) -> list[str]:
    return [str(PYTHON), str(SCRIPT), str(config), f"--env={ENV}", "--trainer", str(TRAINER), "--results-dir", "results",
            "--run-id", "e2e", "--base-port", str(free_port()), *extra]


def one_run(tmp_path: Path, **changes) -> Path:
    """The example as one run of its fast learner (learning_rate 3e-3, hidden_units 32), no opt_stop."""
    config = yaml.safe_load(example(tmp_path, opt_stop=None, **changes).read_text())
    behavior = config["behaviors"]["MoveToTarget"]
    behavior["hyperparameters"]["learning_rate"] = 0.003
    behavior["network_settings"]["hidden_units"] = 32
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def random_search(tmp_path: Path, config: dict, trials: int) -> tuple[subprocess.CompletedProcess, dict]:
    """A random search of the config (--search-seed 5), 2 trials at once, TensorBoard polled every 2 s: its
    output and its state file; it must exit 0."""
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    result = subprocess.run(sweep_command(path, "--search", "random", "--num-trials", str(trials), "--search-seed", "5",
                                          "--num-envs", "2", "--poll-interval", "2",
                                          "--tensorboard-url", f"http://127.0.0.1:{free_port(1)}"),
                            cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return result, json.loads((tmp_path / "results" / "e2e-sweep" / "sweep_state.json").read_text())


def processes_mentioning(text: str) -> list[str]:
    """Live processes that run in, or name, a folder: trainers, their workers, environments, TensorBoard."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if (text in cmdline or cwd.startswith(text)) and state != "Z":
            found.append(f"{entry.name}: {cmdline}")
    return found


def test_a_real_sweep_trains_saves_every_model_and_stops_the_runs_going_nowhere(tmp_path):
    # The example: learning_rate [3e-3, 1e-5] x hidden_units [64, 32]; runs below -0.3 at step 8000 stop.
    result = subprocess.run(sweep_command(SWEEP, "--num-envs", "2", "--poll-interval", "2", "--seed", "3",
                                         "--tensorboard-url", f"http://127.0.0.1:{free_port()}"),
                            cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    results = tmp_path / "results"
    info = (results / "e2e-sweep" / "config_info.txt").read_text()
    assert info == ("e2e-0\n- seed 3\n- MoveToTarget\n  - learning_rate: 0.003\n  - hidden_units: 64\n\n"
                    "e2e-1\n- seed 3\n- MoveToTarget\n  - learning_rate: 0.003\n  - hidden_units: 32\n\n"
                    "e2e-2\n- seed 3\n- MoveToTarget\n  - learning_rate: 1.0e-05\n  - hidden_units: 64\n\n"
                    "e2e-3\n- seed 3\n- MoveToTarget\n  - learning_rate: 1.0e-05\n  - hidden_units: 32\n")
    # ML-Agents trained each run with the seed written in its config (its own record of the options it ran with).
    assert {yaml.safe_load((results / f"e2e-{n}" / "configuration.yaml").read_text())["env_settings"]["seed"]
            for n in range(4)} == {3}
    expected = {"e2e-0": (0.003, 64), "e2e-1": (0.003, 32), "e2e-2": (1e-05, 64), "e2e-3": (1e-05, 32)}
    for run_id, (learning_rate, hidden_units) in expected.items():
        assert (results / run_id / "MoveToTarget.onnx").stat().st_size > 1000
        saved = yaml.safe_load((results / run_id / "configuration.yaml").read_text())["behaviors"]["MoveToTarget"]
        assert (saved["hyperparameters"]["learning_rate"], saved["network_settings"]["hidden_units"]) == (learning_rate, hidden_units)
    with (results / "e2e-sweep" / "summary.csv").open() as handle:
        rows = {row["run"]: row for row in csv.DictReader(handle)}
    # Learning well: the fast learners run to the end; the slow ones are stopped at step 8000 or soon after.
    assert [rows[r]["status"] for r in ("e2e-0", "e2e-1")] == ["finished", "finished"]
    assert [rows[r]["status"] for r in ("e2e-2", "e2e-3")] == ["stopped early", "stopped early"]
    assert all(8000 <= float(rows[r]["last step"]) < 20000 for r in ("e2e-2", "e2e-3"))
    assert all(rows[r]["note"].startswith(f"opt_stop of MoveToTarget: {REWARD} = ") for r in ("e2e-2", "e2e-3"))
    best = list(rows)[0]
    assert best in ("e2e-0", "e2e-1") and float(rows[best][REWARD]) > 1.0
    with TensorBoardServer(str(results)) as board:
        points = wait_until(lambda: scalars(board.url, f"{best}/MoveToTarget", REWARD), 60)
        assert points[-1][1] > points[0][1] + 1.0  # the best run's reward rose
        assert points[-1][0] == 20000 and f"{points[-1][1]:g}" == rows[best][REWARD]
    assert processes_mentioning(str(tmp_path)) == []


def test_ctrl_c_mid_sweep_saves_every_running_model_and_leaves_no_process(tmp_path):
    config = example(tmp_path, max_steps=200000, opt_stop=None)
    sweep = subprocess.Popen(sweep_command(config, "--num-envs", "2", "--no-tensorboard"), cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    logs = tmp_path / "results" / "e2e-sweep" / "logs"
    # Well into training (the first summary is at step 2000), so both have a model to save.
    wait_until(lambda: all((logs / f"e2e-{n}.log").is_file() and "Step: 2000." in (logs / f"e2e-{n}.log").read_text()
                           for n in (0, 1)), 300)
    assert len(processes_mentioning(str(tmp_path))) >= 7  # the sweep; 2 trainers, their workers and environments
    sweep.send_signal(signal.SIGINT)
    out, err = sweep.communicate(timeout=120)
    assert sweep.returncode == 130, out + err
    for run_id in ("e2e-0", "e2e-1"):
        assert (tmp_path / "results" / run_id / "MoveToTarget.onnx").stat().st_size > 1000
        assert "Exported" in (logs / f"{run_id}.log").read_text()
    with (tmp_path / "results" / "e2e-sweep" / "summary.csv").open() as handle:
        statuses = {row["run"]: (row["status"], row["exit"]) for row in csv.DictReader(handle)}
    assert statuses == {"e2e-0": ("interrupted", "0"), "e2e-1": ("interrupted", "0"),
                        "e2e-2": ("not started", ""), "e2e-3": ("not started", "")}
    wait_until(lambda: processes_mentioning(str(tmp_path)) == [], 15)


def test_an_environment_that_crashes_is_restarted_by_the_trainer_and_the_sweep_goes_on(tmp_path):
    marker = tmp_path / "crashed-once"
    # The crash comes from the run's own env_settings, so only run 0 crashes (once).
    config = one_run(tmp_path, max_steps=6000)
    data = yaml.safe_load(config.read_text())
    data["env_settings"] = {"env_args": {"opt_values": [["--crash-after-steps", "300", "--crash-marker", str(marker)], None]}}
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    result = subprocess.run(sweep_command(config, "--num-envs", "2", "--no-tensorboard"), cwd=tmp_path,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert marker.exists()  # run 0's environment did crash
    log = (tmp_path / "results" / "e2e-sweep" / "logs" / "e2e-0.log").read_text()
    assert "Restarting" in log or "restart" in log.lower()
    with (tmp_path / "results" / "e2e-sweep" / "summary.csv").open() as handle:
        statuses = {row["run"]: row["status"] for row in csv.DictReader(handle)}
    assert statuses == {"e2e-0": "finished", "e2e-1": "finished"}
    assert (tmp_path / "results" / "e2e-0" / "MoveToTarget.onnx").is_file()
    assert processes_mentioning(str(tmp_path)) == []


@pytest.mark.parametrize("launched", [True, False])
def test_the_windows_launcher_makes_its_signal_save_the_model_as_ctrl_c_does(tmp_path, launched):
    # On Windows the sweep stops a run with CTRL_BREAK_EVENT, which Python turns into SIGBREAK,
    # whose default ends the trainer at once: no model. The launcher maps it to Ctrl-C's
    # KeyboardInterrupt. Here the same launcher maps SIGUSR1, sent to the run's group mid-training.
    import mlagents_learn as ml

    trainer, warning = ml.interruptible_trainer([str(TRAINER)], "SIGUSR1")
    assert warning is None and trainer[:3] == [str(PYTHON), "-c", ml.TRAINER_LAUNCHER]
    command = trainer if launched else [str(TRAINER)]
    config = one_run(tmp_path, max_steps=200000)
    log = tmp_path / "run.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([*command, str(config), f"--env={ENV}", "--run-id=w", f"--base-port={free_port()}",
                                 "--results-dir", "results"], cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        wait_until(lambda: "Step: 2000." in log.read_text(), 300)
        os.killpg(proc.pid, signal.SIGUSR1)
        code = proc.wait(120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    model = tmp_path / "results" / "w" / "MoveToTarget.onnx"
    if launched:
        assert code == 0, log.read_text()[-3000:]
        assert model.stat().st_size > 1000 and "Exported" in log.read_text()
        status = json.loads((tmp_path / "results" / "w" / "run_logs" / "training_status.json").read_text())
        assert status["MoveToTarget"]["final_checkpoint"]["steps"] >= 2000
    else:
        assert code == -signal.SIGUSR1 and not model.exists()
    wait_until(lambda: processes_mentioning(str(tmp_path)) == [], 30)


def test_a_search_with_asha_pauses_its_trials_at_the_rung_and_trains_the_best_on_from_its_checkpoint(tmp_path):
    # A random search of 3 trials over the learning rate (a log range), 2 at once, halving at step 4000 with
    # factor 3 (max_steps 12000: one rung). The first two pause at the rung and wait for company: of 2,
    # none goes on; the third starts in the slot they left. Once it has reached the rung too, the best of
    # the 3 goes on with --resume from its checkpoint to max_steps; the other two end with the model they
    # saved when they paused. (Halving and a grid pause and resume runs the same way.)
    config = yaml.safe_load(one_run(tmp_path, max_steps=12000).read_text())
    behavior = config["behaviors"]["MoveToTarget"]
    behavior["hyperparameters"]["learning_rate"] = {"opt_range": [1.0e-5, 3.0e-3], "log": True}
    behavior["opt_stop"] = {"tag": REWARD, "rule": "halving", "step": 4000, "factor": 3}
    result, state = random_search(tmp_path, config, 3)
    at_rung = {run["run_id"]: run["memory"]["values"]["0"] for run in state["runs"]}
    best = max(at_rung, key=at_rung.get)
    assert [run["run_id"] for run in state["runs"]] == ["e2e-0", "e2e-1", "e2e-2"]
    assert {run["run_id"]: run["status"] for run in state["runs"]} == {
        run_id: "finished" if run_id == best else "stopped" for run_id in at_rung}
    assert f"{best} goes on: asha: 1st of 3 at step 4000, in the best 1" in result.stdout
    assert f"] resume {best}: " in result.stdout
    for run_id in at_rung:
        assert f"pausing {run_id}: asha: at rung 1, step 4000" in result.stdout
        assert (tmp_path / "results" / run_id / "MoveToTarget.onnx").stat().st_size > 1000  # each kept a model
    run = tmp_path / "results" / best
    status = json.loads((run / "run_logs" / "training_status.json").read_text())
    assert status["MoveToTarget"]["final_checkpoint"]["steps"] >= 12000
    log = (tmp_path / "results" / "e2e-sweep" / "logs" / f"{best}.log").read_text()
    assert "Resuming training from step" in log
    assert len(list((run / "MoveToTarget").glob("events.out.tfevents.*"))) == 2  # a second session, same run
    with TensorBoardServer(str(tmp_path / "results")) as board:
        points = wait_until(lambda: (found := scalars(board.url, f"{best}/MoveToTarget", REWARD)) and found[-1][0] >= 12000 and found, 60)
    steps = [step for step, _ in points]
    assert steps == sorted(set(steps)) and steps[0] == 2000  # one axis: the resumed session goes on from the pause
    with (tmp_path / "results" / "e2e-sweep" / "summary.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["run"] == best and all(row["note"].startswith("asha: ") for row in rows[1:])
    assert (tmp_path / "results" / "e2e-sweep" / "optuna-journal.log").exists()
    assert processes_mentioning(str(tmp_path)) == []


def test_a_confirmation_trains_the_grids_best_again_on_fresh_seeds_and_ranks_by_them(tmp_path):
    # The example's learning rates at hidden_units 32, 2000 steps (a point every 500), --seed 11; then --confirm 1:
    # the better trains again on 2 fresh seeds, each to max_steps.
    config = yaml.safe_load(example(tmp_path, max_steps=2000, summary_freq=500, opt_stop=None).read_text())
    config["behaviors"]["MoveToTarget"]["network_settings"]["hidden_units"] = 32
    path = tmp_path / "confirm.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    result = subprocess.run(sweep_command(path, "--seed", "11", "--confirm", "1", "--confirm-seeds", "2", "--num-envs", "2",
                                          "--poll-interval", "2", "--tensorboard-url", f"http://127.0.0.1:{free_port(1)}"),
                            cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    results = tmp_path / "results"
    state = json.loads((results / "e2e-sweep" / "sweep_state.json").read_text())
    fresh = ml_fresh_seeds(11, 2)
    assert [(run["run_id"], run["seed"], run["confirms"], run["status"]) for run in state["runs"]] == [
        ("e2e-0", 11, False, "finished"), ("e2e-1", 11, False, "finished"),
        ("e2e-2", fresh[0], True, "finished"), ("e2e-3", fresh[1], True, "finished")]
    for run in state["runs"]:
        trained = yaml.safe_load((results / run["run_id"] / "configuration.yaml").read_text())
        assert trained["env_settings"]["seed"] == run["seed"]  # ML-Agents trained each on its own seed
        status = json.loads((results / run["run_id"] / "run_logs" / "training_status.json").read_text())
        assert status["MoveToTarget"]["final_checkpoint"]["steps"] >= 2000
    confirmed = state["runs"][2]["values"][0][2]
    assert all(run["values"][0][2] == confirmed for run in state["runs"][2:])  # one combination, on both seeds
    with (results / "e2e-sweep" / "summary_confirmation.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["values"], row["scored"], row["seeds"]) for row in rows] == [
        (f"learning_rate={confirmed}", "2", f"{fresh[0]} {fresh[1]}")]
    with (results / "e2e-sweep" / "summary.csv").open() as handle:
        scores = {row["run"]: float(row["score"]) for row in csv.DictReader(handle)}
    assert float(rows[0]["mean score"]) == pytest.approx((scores["e2e-2"] + scores["e2e-3"]) / 2, abs=1e-5)
    searched_best = max(("e2e-0", "e2e-1"), key=scores.get)  # the search's better score is what was confirmed
    assert confirmed == next(run["values"][0][2] for run in state["runs"] if run["run_id"] == searched_best)
    assert (f"Best settings, confirmed on 2 fresh seeds: learning_rate={confirmed}, mean score "
            in result.stdout) and "no other combination was confirmed to compare it with." in result.stdout
    assert processes_mentioning(str(tmp_path)) == []


def ml_fresh_seeds(base: int, count: int) -> list:
    import mlagents_learn

    return mlagents_learn.fresh_seeds(base, 1, [base], count)


def test_population_based_training_hands_a_checkpoint_over_and_the_run_trains_on_with_its_new_learning_rate(tmp_path):
    # Two trials of a random search over the learning rate (constant schedule, so the rate TensorBoard shows is the
    # config's), 2 at once, rule: pbt at step 2500 of 5000 (one interval), quantile 0.5: the worse run takes over the
    # better one's checkpoint and goes on with half its learning rate (perturb [0.5], no resampling). PPO updates
    # every 1024 steps here, so the session after the takeover logs its learning rate at least once.
    config = yaml.safe_load(one_run(tmp_path, max_steps=5000, summary_freq=500).read_text())
    behavior = config["behaviors"]["MoveToTarget"]
    behavior["hyperparameters"]["learning_rate"] = {"opt_range": [1.0e-4, 3.0e-3], "log": True}
    behavior["hyperparameters"]["learning_rate_schedule"] = "constant"
    behavior["opt_stop"] = {"tag": REWARD, "rule": "pbt", "interval": 2500, "quantile": 0.5, "perturb": [0.5], "resample": 0}
    _, state = random_search(tmp_path, config, 2)
    runs = {run["run_id"]: run for run in state["runs"]}
    assert set(runs) == {"e2e-0", "e2e-1"} and all(run["status"] == "finished" for run in runs.values())
    takeovers = sorted(((e["interval"], run_id, e) for run_id, run in runs.items() for e in run["lineage"]), key=lambda t: t[0])
    assert [interval for interval, _, _ in takeovers] == [1]  # the worse of the two, at the one interval
    interval, taker, first = takeovers[0]
    donor = runs[first["donor"]]
    rate = float(first["after"][0][2])
    assert first["before"][0][2] != first["after"][0][2]
    assert rate == float(f"{float(donor['values'][0][2]) * 0.5:.4g}")  # the donor's rate, perturbed
    step = int(first["step"])
    assert step >= 2500
    log = (tmp_path / "results" / "e2e-sweep" / "logs" / f"{taker}.log").read_text()
    assert f"Resuming training from step {step}." in log  # ML-Agents loaded the copied checkpoint, at the donor's step
    # The session after the takeover trained with the new learning rate (ML-Agents sets it from the config at
    # every update), and its points start after the copied step.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    session = runs[taker]["sessions"][first["session"]]
    rates, steps = [], []
    for events in (tmp_path / "results" / taker / "MoveToTarget").glob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        mine = [e for e in accumulator.Scalars("Policy/Learning Rate") if session["began"] <= e.wall_time <= session["ended"]] \
            if "Policy/Learning Rate" in accumulator.Tags()["scalars"] else []
        rates += [e.value for e in mine]
        steps += [e.step for e in mine]
    assert rates and all(abs(value - rate) <= 1e-6 * rate for value in rates), (rates, rate)
    assert min(steps) > step
    status = json.loads((tmp_path / "results" / taker / "run_logs" / "training_status.json").read_text())
    assert status["MoveToTarget"]["final_checkpoint"]["steps"] >= 5000  # trained to the end
    assert first["donor"] not in json.dumps(status)  # its record never names the donor's files
    assert (tmp_path / "results" / taker / "MoveToTarget.onnx").stat().st_mtime > session["began"]  # its own final model
    summary = (tmp_path / "results" / "e2e-sweep" / "summary.md").read_text()
    assert f"- {taker}: at {step} took over {first['donor']}'s checkpoint" in summary
    assert "the schedule of values it was trained under: steps 0-" in summary
    assert processes_mentioning(str(tmp_path)) == []
