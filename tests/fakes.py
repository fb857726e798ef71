"""Fakes for the supervisor's seams: a clock, a launcher and its runs, a watcher, a state store that can fail.

With them a test drives Supervisor.tick() step by step and decides exactly when
each run ends, so scheduling is tested without a real process or a real second.
"""

import errno
import io
from pathlib import Path
from typing import Any, Dict, List, Optional

import mlagents_learn as ml


class FakeClock:
    """Both of the supervisor's clocks (monotonic and wall), moved only by the test and by sleep."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)

    advance = sleep


class FakeRun:
    """A started run whose end the test decides; it records what it was asked."""

    def __init__(self, request: "ml.LaunchRequest", ports, pid: int, node: str = "",
                 on_interrupt: Optional[int] = 0) -> None:
        self.request, self.ports, self.pid, self.node = request, ports, pid, node
        self.run_id = request.run.run_id
        self.command = request.command(ports)
        self.identity = ml.ProcessIdentity("boot", str(pid), request.marker)
        self.on_interrupt = on_interrupt  # exit code once interrupted; None: it ignores Ctrl-C
        self.asked: List[str] = []
        self.code: Optional[int] = None
        self.lost = ""

    def ready(self) -> bool:
        return True

    def poll(self) -> Optional["ml.Exit"]:
        if self.lost:
            return ml.Exit(None, self.lost)
        return None if self.code is None else ml.Exit(self.code)

    def interrupt(self) -> None:
        self.asked.append("interrupt")
        if self.on_interrupt is not None:
            self.code = self.on_interrupt

    def kill(self) -> None:
        self.asked.append("kill")
        self.code = -9

    def end(self, code: int = 0) -> None:
        self.code = code


class FakeLauncher:
    """Starts FakeRuns; `failing` run ids raise LaunchError, as a vanished trainer would."""

    def __init__(self, on_interrupt: Optional[int] = 0, failing: tuple = (), node: str = "") -> None:
        self.on_interrupt, self.failing, self.node = on_interrupt, set(failing), node
        self.started: List[FakeRun] = []
        self.slots: List[int] = []

    def start(self, request: "ml.LaunchRequest") -> FakeRun:
        if request.run.run_id in self.failing:
            raise ml.LaunchError(f"could not start trainer: No such file or directory")
        ports = (6000 + request.slot, 6000 + request.slot) if request.needs_ports else None
        run = FakeRun(request, ports, 100 + len(self.started), self.node, self.on_interrupt)
        self.started.append(run)
        self.slots.append(request.slot)
        return run

    def close(self) -> None:
        pass

    def ids(self) -> List[str]:
        return [run.run_id for run in self.started]

    def last(self, run_id: str) -> FakeRun:
        return [run for run in self.started if run.run_id == run_id][-1]


class FakeWatcher:
    """Serves whatever Snapshot the test puts in; keeps the requests it was given."""

    def __init__(self) -> None:
        self.snapshot: Optional["ml.Snapshot"] = None
        self.final: Optional["ml.Snapshot"] = None
        self.requests: List["ml.MetricsRequest"] = []
        self.notes: List[tuple] = []

    def serve(self, taken: float, points: Dict[tuple, list]) -> None:
        self.snapshot = ml.Snapshot(taken, dict(points))

    def want(self, request: "ml.MetricsRequest") -> None:
        self.requests.append(request)

    def latest(self) -> Optional["ml.Snapshot"]:
        return self.snapshot

    def take_notes(self) -> List[tuple]:
        notes, self.notes = self.notes, []
        return notes

    def start(self) -> None:
        pass

    def stop(self, final: Any = None) -> Optional["ml.Snapshot"]:
        return self.final if final is not None else None

    def close(self) -> None:
        pass


class FlakyWrites:
    """A state-file writer that fails with a full disk the first `failures` times."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts = 0

    def __call__(self, path: Path, text: str) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise OSError(errno.ENOSPC, "No space left on device")
        ml.write_atomically(path, text)


def settings(folder: Path, **changes: Any) -> "ml.Settings":
    """Settings as the command line would make them, for a sweep in folder."""
    values = dict(config_path=folder / "c.yaml", run_id="r", concurrency=2, base_port=5005,
                  results_dir=folder / "results", env_path="Build", forwarded=[], env_args=None,
                  trainer=["mlagents-learn"], dry_run=False, repetitions=1, stop_timeout=60.0, poll_interval=60.0,
                  tensorboard_url=None, metric="Environment/Cumulative Reward", metric_mode="max", force=False,
                  resume=False, max_runs=10_000)
    values.update(changes)
    return ml.Settings(**values)


class Harness:
    """A Supervisor over fakes: `tick()` runs one pass of its loop; the clock moves only when told."""

    def __init__(self, folder: Path, config: str, *, launcher: Optional[FakeLauncher] = None,
                 watcher: Optional[FakeWatcher] = None, write: Any = None, order: Optional[List[int]] = None,
                 **changes: Any) -> None:
        self.settings = settings(folder, **changes)
        self.runs = ml.expand(ml.parse_config(config), "r", self.settings.repetitions)
        self.clock = FakeClock()
        self.out, self.err = io.StringIO(), io.StringIO()
        self.launcher = launcher or FakeLauncher()
        self.watcher = watcher
        self.store = ml.SweepStore(self.settings, write or ml.write_atomically)
        self.store.folder.mkdir(parents=True, exist_ok=True)
        self.supervisor = ml.Supervisor(
            self.settings, [ml.RunState(run) for run in self.runs], launcher=self.launcher,
            policy=ml.make_policy(self.runs, order), store=self.store,
            console=ml.Console(wall=lambda: 0.0, out=self.out, err=self.err), watcher=watcher,
            clock=self.clock, wall=self.clock, sleep=self.clock.sleep, marker=lambda settings, run: f"marker-{run.run_id}")

    def tick(self, seconds: float = 0.0) -> bool:
        self.clock.advance(seconds)
        return self.supervisor.tick()

    def status(self, run_id: str) -> "ml.Status":
        return self.supervisor.by_id[run_id].status

    def lines(self) -> List[str]:
        """The console's lines since the last call, without their time stamps."""
        text, self.out = self.out.getvalue(), io.StringIO()
        self.supervisor.console.out = self.out
        return [line.split("] ", 1)[1] if line.startswith("[") else line for line in text.splitlines()]

    def warnings(self) -> List[str]:
        text, self.err = self.err.getvalue(), io.StringIO()
        self.supervisor.console.err = self.err
        return [line.split("] ", 1)[1] for line in text.splitlines()]
