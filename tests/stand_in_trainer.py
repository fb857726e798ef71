#!/usr/bin/env python3
"""A stand-in for ML-Agents' `mlagents-learn`, for the sweep runner's process tests.

    python tests/stand_in_trainer.py <config.yaml> [mlagents-learn flags]

It takes mlagents-learn 1.1.0's command line, leaves what a real run leaves
(results/<run-id>/ with configuration.yaml, run_logs/training_status.json,
TensorBoard event files per behavior, <Behavior>.onnx and <Behavior>/checkpoint.pt,
written at every point as ML-Agents writes it every checkpoint_interval),
holds its ports,
and reacts to signals as the real trainer does: SIGINT saves the model and
exits 0, SIGTERM kills it on the spot.  No Unity, no torch: it "trains" by
writing the scalars its config asks for, over a set time.

The config's top-level `stand_in:` section (all keys optional) drives it:

    stand_in:
      duration: 1.0        # seconds of "training"
      exit_code: 0         # exit status at a normal end
      points: 10           # summary points, evenly spread over the duration
      steps: 1000          # total steps; point k (0-based) is at (k+1)*steps//points
      ignore_sigint: false # true: record SIGINT, keep training, then hang (never exit)
      child: false         # true: fork one "env worker" that sleeps in the same group
      child_ignores_sigint: false  # true: that worker ignores SIGINT (only a kill ends it)
      environment: false   # true: start an "environment" in a session of its own, as mlagents-envs
                           # starts a Unity build: closed when the trainer ends, left alive if it is killed
      gate: {step: 500, file: /tmp/open}  # a fresh run holds before any step past 500 until the file exists
      hold: {steps: [100, 300], sweep_state: results/s-sweep/sweep_state.json}
        # after the point at the n-th of these steps (halving's rungs), wait for a SIGINT
        # or for the sweep's state file to say the run passed rung n; at most HOLD_SECONDS
      scalars:             # behavior -> tag -> value spec
        3DBall:
          Environment/Cumulative Reward: {start: 0.0, end: 1.0}  # linear over the points
          Policy/Beta: 0.005                                      # constant
          Losses/Value Loss: [3, 2, 1]                            # per point, last repeats
          Score: {by_seed: {7: 1.0, 8: [0, 2]}, other: 0.5}      # the spec of the run's seed, else `other`
          Reward: {config: hyperparameters.learning_rate}         # a value of the behavior's config: constant

Without `scalars`, each behavior under `behaviors:` gets `Environment/Cumulative
Reward` linear from 0.0 to 1.0.  Behaviors only in `scalars` are written too.
With --resume, training goes on from the step of <Behavior>/checkpoint.pt (its
text names the run that wrote it and the step, and what was loaded is recorded
as `loaded`), as mlagents-learn resumes from the checkpoint's step, or without
one from the last step of the previous run (kept in
<results>/<run-id>/stand_in_state.json), up to the same total `steps`, as
mlagents-learn resumes up to max_steps; a point keeps its value spec's value.

Where it differs from the real trainer on purpose:
- Flags given on the command line win over the YAML's checkpoint_settings and
  env_settings (run_id, results_dir, force, resume, env_path, base_port,
  num_envs), as in mlagents-learn; unknown flags are ignored, not refused.
- `--env` need not exist: it only makes the trainer hold 127.0.0.1 ports
  base_port .. base_port+num_envs-1 (no SO_REUSEADDR/SO_REUSEPORT).  The forked
  worker (`child: true`) inherits them, as mlagents' worker owns its gRPC port.
- On SIGINT it does not stop its worker (the group's SIGINT does); on a normal
  end it kills it.  `ignore_sigint` trains on to the end, then hangs until killed.
- SIGTERM is recorded (signals [..., "SIGTERM"], exit_code -15) before the
  trainer dies by it; a SIGKILL leaves end and exit_code null.
- `gate` and `hold` make it wait for the test or the sweep, which the real
  trainer never does: they take a real-time race out of a process test.
- Like mlagents-learn --force, it deletes a behavior's old event files when
  it writes that behavior's first summary, not before.

If the environment variable STAND_IN_RECORDS names a directory, the trainer
keeps <dir>/<run-id>.<pid>.json up to date (see Record below) so tests can see
how it was launched, which signals it got and how it ended.
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional

import yaml

# ----------------------------------------------------------------- constants

DEFAULT_RUN_ID = "ppo"
DEFAULT_RESULTS_DIR = "results"
DEFAULT_BASE_PORT = 5005
DEFAULT_TAG = "Environment/Cumulative Reward"
RECORDS_ENV = "STAND_IN_RECORDS"
STATE_FILE = "stand_in_state.json"
# A forked worker whose trainer died "sleeps forever", like mlagents' worker
# after a SIGTERM; the cap only keeps a broken test from leaking it for days.
CHILD_MAX_SECONDS = 3600.0
TICK = 0.02  # how often the main loop looks at the signal flags
# A run held at a rung (stand_in.hold) that the sweep neither pauses nor lets
# pass goes on after this, so a test fails on what it asserts, not by hanging.
HOLD_SECONDS = 120.0

MSG_PREVIOUS_DATA = (
    "Previous data from this run ID was found. Either specify a new run ID, "
    "use --resume to resume this run, or use the --force parameter to "
    "overwrite existing data."
)
MSG_NO_PREVIOUS_DATA = (
    "Previous data from this run ID was not found. "
    "Train a new run by removing the --resume flag."
)
MSG_WORKER_IN_USE = "Couldn't launch the environment. The worker number {} is still in use"


class StandInError(Exception):
    """An expected failure: printed as one line on stderr, exit 1 (mlagents' exit status)."""


# -------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    """mlagents-learn 1.1.0's flags that matter here; defaults of None mean "not given"."""
    parser = argparse.ArgumentParser(prog="mlagents-learn (stand-in)")
    parser.add_argument("trainer_config_path", nargs="?", default=None)
    parser.add_argument("--env", dest="env_path", default=None)
    parser.add_argument("--run-id", default=None)
    parser.add_argument("--base-port", type=int, default=None)
    parser.add_argument("--num-envs", type=int, default=None)
    parser.add_argument("--results-dir", default=None)
    parser.add_argument("--force", action="store_true", default=None)
    parser.add_argument("--resume", action="store_true", default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--no-graphics", action="store_true", default=None)
    parser.add_argument("--torch-device", default=None)
    parser.add_argument("--env-args", default=None, nargs=argparse.REMAINDER)
    return parser


def pick(cli: Any, section: Dict[str, Any], key: str, default: Any) -> Any:
    """A flag given on the command line wins over the YAML, as in mlagents-learn."""
    if cli is not None:
        return cli
    value = section.get(key)
    return default if value is None else value


# ------------------------------------------------------------- value specs


def value_at(spec: Any, k: int, points: int) -> float:
    """The value of a scalar spec at point k (0-based) of `points`."""
    if isinstance(spec, bool):
        raise StandInError(f"stand_in: a scalar spec cannot be a boolean: {spec!r}")
    if isinstance(spec, (int, float)):
        return float(spec)
    if isinstance(spec, list) and spec:
        return float(spec[min(k, len(spec) - 1)])
    if isinstance(spec, dict) and set(spec) == {"start", "end"}:
        start, end = float(spec["start"]), float(spec["end"])
        if points <= 1:
            return start
        return start + (end - start) * k / (points - 1)
    raise StandInError(
        f"stand_in: a scalar spec must be a number, a non-empty list or "
        f"{{start: a, end: b}}, not {spec!r}"
    )


def for_seed(spec: Any, seed: int) -> Any:
    """A spec that differs by seed ({by_seed: {seed: spec}, other: spec}) as the run's seed has it."""
    if isinstance(spec, dict) and set(spec) == {"by_seed", "other"}:
        return spec["by_seed"].get(seed, spec["other"])
    return spec


def from_config(spec: Any, behavior: Any) -> Any:
    """A spec that is a value of the behavior's config ({config: dotted.path}) as that value."""
    if isinstance(spec, dict) and set(spec) == {"config"}:
        node = behavior
        for key in str(spec["config"]).split("."):
            node = node.get(key) if isinstance(node, dict) else None
        return node
    return spec


def scalar_plan(config: Dict[str, Any], stand_in: Dict[str, Any], seed: int = -1) -> Dict[str, Dict[str, Any]]:
    """behavior -> tag -> spec: every behavior of the config, then those only in `scalars`."""
    behaviors = list((config.get("behaviors") or {}).keys())
    scalars = stand_in.get("scalars")
    if scalars is None:
        return {name: {DEFAULT_TAG: {"start": 0.0, "end": 1.0}} for name in behaviors}
    if not isinstance(scalars, dict):
        raise StandInError("stand_in.scalars must map behavior -> tag -> value spec")
    plan: Dict[str, Dict[str, Any]] = {name: {} for name in behaviors}
    for name, tags in scalars.items():
        behavior = (config.get("behaviors") or {}).get(name)
        plan.setdefault(name, {}).update({tag: from_config(for_seed(spec, seed), behavior) for tag, spec in (tags or {}).items()})
    return plan


# ------------------------------------------------------------------ records


def launch_time() -> float:
    """When this process was created (epoch seconds), before the interpreter started.

    Tests of how fast the sweep launches a run must not count this Python's own
    start-up, which on a busy 2-core machine can take longer than the launch.
    """
    try:
        # /proc/uptime (1/100 s) rather than /proc/stat's btime, which is whole seconds.
        with open("/proc/uptime", encoding="ascii") as f:
            uptime = float(f.read().split()[0])
        now = time.time()
        with open(f"/proc/{os.getpid()}/stat", encoding="ascii", errors="replace") as f:
            ticks = float(f.read().rsplit(")", 1)[1].split()[19])
        return now - (uptime - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return time.time()


class Record:
    """The JSON file a test reads to see what this trainer did; rewritten atomically."""

    def __init__(self, run_id: str) -> None:
        directory = os.environ.get(RECORDS_ENV)
        self.path = os.path.join(directory, f"{run_id}.{os.getpid()}.json") if directory else None
        self.data: Dict[str, Any] = {
            "run_id": run_id,
            "argv": sys.argv[1:],
            "pid": os.getpid(),
            "ppid": os.getppid(),
            "pgid": os.getpgid(0) if hasattr(os, "getpgid") else None,
            "sid": os.getsid(0) if hasattr(os, "getsid") else None,
            "cwd": os.getcwd(),
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),  # the GPU a Ray node or --gpus gave the run
            "seed": None,  # the seed it trains with: --seed, else env_settings.seed, else -1 (ML-Agents draws one)
            "start": time.time(),
            "launched": launch_time(),
            "end": None,
            "signals": [],
            "exit_code": None,
            "ports": [],
            "resumed": False,
            "loaded": None,  # with --resume, the checkpoint it loaded ("stand-in checkpoint <run> <step>")
            "last_step": None,
            "held_at": [],  # the hold steps it waited at, in order
            "child_pid": None,
            "environment_pid": None,
            "error": None,
        }
        self.writes = 0

    def write(self, **changes: Any) -> None:
        self.data.update(changes)
        if self.path is None:
            return
        # A unique temp name: the SIGTERM handler may write while a write is half done.
        self.writes += 1
        tmp = f"{self.path}.{self.writes}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.data, f, indent=1)
        os.replace(tmp, self.path)


# ---------------------------------------------------------------- processes


class Signals:
    """Signal flags the main loop polls; SIGTERM ends the process at once."""

    def __init__(self, record: Record, ignore_sigint: bool) -> None:
        self.record = record
        self.ignore_sigint = ignore_sigint
        self.interrupted = False  # a SIGINT that should stop training
        self.sigint_seen = False
        self.unrecorded = False
        signal.signal(signal.SIGINT, self.on_interrupt)
        # Windows: the sweep sends CTRL_BREAK_EVENT to mean Ctrl-C.
        if hasattr(signal, "SIGBREAK"):
            signal.signal(signal.SIGBREAK, self.on_interrupt)
        signal.signal(signal.SIGTERM, self.on_terminate)

    def on_interrupt(self, signum: int, frame: Any) -> None:
        # Only flags here; the main loop writes the record (see poll), never mid-write.
        self.record.data["signals"] = self.record.data["signals"] + [signal.Signals(signum).name]
        self.unrecorded = True
        self.sigint_seen = True
        if not self.ignore_sigint:
            self.interrupted = True

    def poll(self) -> None:
        """Write the record if a signal arrived since the last look."""
        if self.unrecorded:
            self.unrecorded = False
            self.record.write()

    def on_terminate(self, signum: int, frame: Any) -> None:
        # Like the real trainer: no save, no cleanup of the worker; die by the signal.
        self.record.write(
            signals=self.record.data["signals"] + ["SIGTERM"],
            end=time.time(),
            exit_code=-signum,
        )
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)

    def wait_for(self, predicate: Any) -> bool:
        """Wait until predicate() is true; False as soon as training should stop."""
        while not predicate():
            self.poll()
            if self.interrupted:
                return False
            time.sleep(TICK)
        return True

    def sleep_until(self, deadline: float) -> bool:
        """Sleep until the monotonic deadline; False as soon as training should stop."""
        while True:
            self.poll()
            if self.interrupted:
                return False
            now = time.monotonic()
            if now >= deadline:
                return True
            time.sleep(min(TICK, deadline - now))


def bind_ports(base_port: int, num_envs: int) -> List[socket.socket]:
    """Hold base_port.. like the env workers' gRPC servers; no SO_REUSE* so a clash fails."""
    held: List[socket.socket] = []
    for worker in range(num_envs):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind(("127.0.0.1", base_port + worker))
            sock.listen(1)
        except OSError:
            sock.close()
            for other in held:
                other.close()
            raise StandInError(MSG_WORKER_IN_USE.format(worker))
        held.append(sock)
    return held


def spawn_child(ignore_sigint: bool = False) -> int:
    """Fork a worker that sleeps in our process group and holds our ports, like mlagents'."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        try:
            signal.signal(signal.SIGINT, signal.SIG_IGN if ignore_sigint else signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            time.sleep(CHILD_MAX_SECONDS)
        finally:
            os._exit(0)
    return pid


def start_environment() -> "subprocess.Popen[bytes]":
    """An environment in a session of its own, as mlagents-envs starts a Unity build: the trainer's
    Ctrl-C does not reach it, and nothing ends it if the trainer is killed."""
    code = "import time\nfor _ in range(3600):\n    time.sleep(1)\n"
    return subprocess.Popen([sys.executable, "-c", code], start_new_session=True, stdin=subprocess.DEVNULL)


def reap(pid: Optional[int], kill: bool) -> None:
    """Kill (on a normal end) or just reap (after SIGINT) the worker."""
    if pid is None:
        return
    try:
        if kill:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        else:
            os.waitpid(pid, os.WNOHANG)
    except (ProcessLookupError, ChildProcessError):
        pass


# ------------------------------------------------------------------ training


def passed_rungs(sweep_state: str, run_id: str) -> int:
    """How many halving rungs the sweep's state file says this run has passed (0 while unreadable)."""
    try:
        with open(sweep_state, encoding="utf-8") as f:
            runs = json.load(f)["runs"]
        return next((int((run["memory"] or {}).get("passed", 0)) for run in runs if run["run_id"] == run_id), 0)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return 0  # not written yet, or being replaced: look again


def write_checkpoints(run_dir: str, behaviors: List[str], step: int) -> None:
    """<B>/checkpoint.pt, what mlagents-learn --resume loads (ML-Agents writes it every checkpoint_interval)."""
    for name in behaviors:
        os.makedirs(os.path.join(run_dir, name), exist_ok=True)
        with open(os.path.join(run_dir, name, "checkpoint.pt"), "wb") as f:
            f.write(b"stand-in checkpoint %s %d\n" % (os.path.basename(run_dir).encode(), step))


def read_checkpoint(run_dir: str, behaviors: List[str]) -> Optional[str]:
    """What --resume loads: the first behavior's checkpoint.pt, as text (None if there is none)."""
    for name in behaviors:
        try:
            with open(os.path.join(run_dir, name, "checkpoint.pt"), encoding="utf-8") as f:
                return f.read().strip()
        except OSError:
            return None
    return None


def save_models(run_dir: str, behaviors: List[str], step: int) -> None:
    """What mlagents-learn leaves when it stops: <B>.onnx, <B>/checkpoint.pt, and
    run_logs/training_status.json whose final_checkpoint names the step reached
    (written at a normal end and on Ctrl-C alike, as mlagents 1.1.0 does)."""
    status: Dict[str, Any] = {"metadata": {"stats_format_version": "0.3.0", "mlagents_version": "stand-in"}}
    write_checkpoints(run_dir, behaviors, step)
    for name in behaviors:
        with open(os.path.join(run_dir, f"{name}.onnx"), "wb") as f:
            f.write(b"stand-in onnx " + name.encode() + b" %d\n" % step)
        final = {"steps": step, "file_path": os.path.join(run_dir, f"{name}.onnx"), "reward": None,
                 "creation_time": time.time(), "auxillary_file_paths": []}
        status[name] = {"checkpoints": [final], "final_checkpoint": final}
    os.makedirs(os.path.join(run_dir, "run_logs"), exist_ok=True)
    with open(os.path.join(run_dir, "run_logs", "training_status.json"), "w", encoding="utf-8") as f:
        json.dump(status, f, indent=4)


def write_state(run_dir: str, last_step: int) -> None:
    tmp = os.path.join(run_dir, STATE_FILE + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"last_step": last_step}, f)
    os.replace(tmp, os.path.join(run_dir, STATE_FILE))


def read_state(run_dir: str) -> int:
    try:
        with open(os.path.join(run_dir, STATE_FILE), encoding="utf-8") as f:
            return int(json.load(f)["last_step"])
    except FileNotFoundError:
        return 0


def main(argv: Optional[List[str]] = None) -> int:
    args, _unknown = build_parser().parse_known_args(argv)

    config: Dict[str, Any] = {}
    if args.trainer_config_path is not None:
        with open(args.trainer_config_path, encoding="utf-8") as f:
            config = yaml.safe_load(f) or {}
    checkpoint = config.get("checkpoint_settings") or {}
    env_settings = config.get("env_settings") or {}
    run_id = str(pick(args.run_id, checkpoint, "run_id", DEFAULT_RUN_ID))
    results_dir = str(pick(args.results_dir, checkpoint, "results_dir", DEFAULT_RESULTS_DIR))
    force = bool(pick(args.force, checkpoint, "force", False))
    resume = bool(pick(args.resume, checkpoint, "resume", False))
    env_path = pick(args.env_path, env_settings, "env_path", None)
    base_port = int(pick(args.base_port, env_settings, "base_port", DEFAULT_BASE_PORT))
    num_envs = int(pick(args.num_envs, env_settings, "num_envs", 1))
    seed = int(pick(args.seed, env_settings, "seed", -1))

    stand_in = config.get("stand_in") or {}
    duration = float(stand_in.get("duration", 1.0))
    exit_code = int(stand_in.get("exit_code", 0))
    points = int(stand_in.get("points", 10))
    steps = int(stand_in.get("steps", 1000))

    record = Record(run_id)
    sigs = Signals(record, bool(stand_in.get("ignore_sigint", False)))
    record.write(seed=seed)
    print(f"stand-in: training {run_id}", flush=True)
    print(f"stand-in: stderr of {run_id}", file=sys.stderr, flush=True)

    child: Optional[int] = None
    try:
        plan = scalar_plan(config, stand_in, seed)
        run_dir = os.path.join(results_dir, run_id)
        if os.path.isdir(run_dir):
            if not resume and not force:
                raise StandInError(MSG_PREVIOUS_DATA)
        elif resume:
            raise StandInError(MSG_NO_PREVIOUS_DATA)
        loaded = read_checkpoint(run_dir, list(plan)) if resume else None
        first_step = int(loaded.rsplit(" ", 1)[1]) if loaded else read_state(run_dir) if resume else 0
        ports: List[socket.socket] = bind_ports(base_port, num_envs) if env_path else []
        record.write(ports=[s.getsockname()[1] for s in ports], resumed=resume, last_step=first_step or None, loaded=loaded)
    except StandInError as e:
        print(e, file=sys.stderr, flush=True)
        record.write(error=str(e), end=time.time(), exit_code=1)
        return 1

    os.makedirs(os.path.join(run_dir, "run_logs"), exist_ok=True)
    written = dict(config)
    written["checkpoint_settings"] = {
        **checkpoint,
        "run_id": run_id,
        "results_dir": results_dir,
        "resume": resume,
        "force": force,
    }
    written["env_settings"] = {
        **env_settings,
        "base_port": base_port,
        "num_envs": num_envs,
        "env_path": env_path,
    }
    with open(os.path.join(run_dir, "configuration.yaml"), "w", encoding="utf-8") as f:
        yaml.safe_dump(written, f, sort_keys=False)

    # Fork before the event writers start their threads.
    if stand_in.get("child") and hasattr(os, "fork"):
        child = spawn_child(bool(stand_in.get("child_ignores_sigint", False)))
        record.write(child_pid=child)
    environment = start_environment() if stand_in.get("environment") else None
    if environment is not None:
        record.write(environment_pid=environment.pid)

    writers: Dict[str, Any] = {}
    if points > 0:
        # Imported only when there is something to write: with points: 0 the stand-in
        # starts in a few hundredths of a second, so a benchmark of the sweep's own
        # scheduling is not a benchmark of tensorboard's import.
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        writers = {}
    start = time.monotonic()
    last_step = first_step
    completed = True
    # Like mlagents-learn's max_steps, `steps` is the total: a resumed run trains
    # only the points it had not reached, each taking its share of the duration.
    remaining = [k for k in range(points) if (k + 1) * steps // points > first_step]
    gate = stand_in.get("gate") or {}
    # At a rung a halving sweep pauses or stops the run (SIGINT), or lets it
    # pass; holding there until it has decided makes the outcome the sweep's,
    # however late its poll comes, never the machine's speed.
    hold = stand_in.get("hold") or {}
    rungs = [int(step) for step in hold.get("steps", [])]
    for n, k in enumerate(remaining):
        step = (k + 1) * steps // points
        if gate and not resume and step > int(gate["step"]) and not os.path.exists(gate["file"]):
            # A run that can only end the way the test means it to (stopped, or let through).
            if not sigs.wait_for(lambda: os.path.exists(gate["file"])):
                completed = False
                break
            start = time.monotonic() - n * duration / points  # keep the pace from here
        if not sigs.sleep_until(start + (n + 1) * duration / points):
            completed = False
            break
        wall = time.time()
        for name in plan:
            if name not in writers:  # its first summary: as mlagents-learn --force, old event files go first
                folder = os.path.join(run_dir, name)
                if force and not resume and os.path.isdir(folder):
                    for old in os.listdir(folder):
                        if old.startswith("events.out"):
                            os.remove(os.path.join(folder, old))
                writers[name] = EventFileWriter(folder)
        for name, tags in plan.items():
            values = [
                summary_pb2.Summary.Value(tag=tag, simple_value=value_at(spec, k, points))
                for tag, spec in tags.items()
            ]
            if values:
                writers[name].add_event(
                    event_pb2.Event(wall_time=wall, step=step, summary=summary_pb2.Summary(value=values))
                )
            writers[name].flush()
            print(f"[INFO] {name}. Step: {step}. Time Elapsed: {time.monotonic() - start:.3f} s.", flush=True)
        last_step = step
        write_state(run_dir, last_step)
        write_checkpoints(run_dir, list(plan), last_step)
        record.write(last_step=last_step)
        if step in rungs and k < points - 1:
            record.write(held_at=record.data["held_at"] + [step])
            n_rung, deadline = rungs.index(step), time.monotonic() + HOLD_SECONDS
            if not sigs.wait_for(lambda: passed_rungs(hold["sweep_state"], run_id) > n_rung or time.monotonic() > deadline):
                completed = False
                break
            start = time.monotonic() - (n + 1) * duration / points  # keep the pace from here
    if points <= 0:
        completed = sigs.sleep_until(start + duration)
    if completed:
        last_step = steps  # trained to its end, whether or not it wrote summaries on the way

    if completed and sigs.sigint_seen:
        # ignore_sigint: a trainer stuck on its way out; only a kill ends it.
        while True:
            sigs.poll()
            time.sleep(TICK)

    for writer in writers.values():
        writer.close()
    save_models(run_dir, list(plan), last_step)
    if environment is not None:  # mlagents-learn closes its environment as it exits
        environment.kill()
        environment.wait()
    reap(child, kill=completed)
    for sock in ports:
        sock.close()
    code = exit_code if completed else 0
    record.write(end=time.time(), exit_code=code)
    return code


if __name__ == "__main__":
    sys.exit(main())
