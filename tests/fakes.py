"""Fakes for the supervisor's seams: a clock, a launcher and its runs, a watcher, ML-Agents' results folder,
a state store that can fail.

With them a test drives Supervisor.tick() step by step and decides exactly when
each run ends, so scheduling is tested without a real process or a real second.
"""

import errno
import io
import json
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


class FakeResults:
    """ML-Agents' results folder as the fake runs leave it: per run, the step its final checkpoint was saved
    at (what training_status.json says), and whether it has a checkpoint to resume from."""

    def __init__(self) -> None:
        self.final: Dict[str, float] = {}
        self.checkpoints: set = set()
        self.folders: set = set()
        self.cleared: List[str] = []  # runs whose old event files were deleted before a fresh start
        self.own_events: Dict[str, bytes] = {}  # the sweep's own event file (HParams) of each run
        self.unrecorded: Dict[str, float] = {}  # checkpoints written in the latest session, unrecorded (see save_unrecorded)
        self.taken: List[tuple] = []  # (run id, donor's run id, step): each checkpoint taken over (see take_over)

    def save(self, run: "ml.Run", step: float) -> None:
        self.final[run.run_id] = step
        self.checkpoints.add(run.run_id)
        self.folders.add(run.run_id)

    def save_unrecorded(self, run: "ml.Run", step: float) -> None:
        """A checkpoint written without ML-Agents' record of it (training_status.json): it crashed closing."""
        self.unrecorded[run.run_id] = step
        self.checkpoints.add(run.run_id)
        self.folders.add(run.run_id)

    def checkpoint_since(self, run, since: float) -> Optional[float]:
        return self.unrecorded.get(run.run_id)

    def exists(self, run) -> bool:
        return run.run_id in self.folders

    def fingerprint(self, run) -> dict:
        return {"final": [int(self.final[run.run_id]), 0]} if run.run_id in self.final else {}

    def trained_to_the_end(self, run, inherited) -> bool:
        return self.steps_saved(run, inherited) is not None and self.final[run.run_id] >= run.total_steps()

    def steps_saved(self, run, inherited) -> Optional[float]:
        if run.run_id not in self.final or inherited == self.fingerprint(run):
            return None  # nothing, or only what an older sweep left
        return self.final[run.run_id]

    def resumable(self, run, inherited) -> bool:
        return run.run_id in self.checkpoints and inherited != self.fingerprint(run)

    def clear_events(self, run) -> None:
        self.cleared.append(run.run_id)

    def take_over(self, run, donor, step) -> None:
        """Population based training's copy: the run's checkpoint and record become the donor's."""
        self.taken.append((run.run_id, donor.run_id, step))
        self.final[run.run_id] = self.final[donor.run_id] if step is None else step
        self.checkpoints.add(run.run_id)

    def write_own_events(self, run_id: str, suffix: str, name: str, data: bytes) -> None:
        self.own_events[run_id] = data  # the sweep's file replaces the one before


class FakeRun:
    """A started run whose end the test decides; it records what it was asked, and leaves in the fake results
    what ML-Agents would: a run that ends by itself trained to the end, one asked to stop saved where it was."""

    def __init__(self, request: "ml.LaunchRequest", ports, pid: int, node: str = "",
                 on_interrupt: Optional[int] = 0, results: Optional[FakeResults] = None) -> None:
        self.request, self.ports, self.pid, self.node = request, ports, pid, node
        self.results = results
        self.step = 0.0  # where it is: what it saves if asked to stop
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
            self.end(self.on_interrupt)

    def kill(self) -> None:
        self.asked.append("kill")
        self.code = -9

    def end(self, code: int = 0, trained_to_the_end: Optional[bool] = None) -> None:
        """It exits with code; with 0 it saved: at max_steps if it ended by itself (or trained_to_the_end says
        so), else where it was."""
        self.code = code
        if code == 0 and self.results is not None:
            whole = not self.asked if trained_to_the_end is None else trained_to_the_end
            self.results.save(self.request.run, self.request.run.total_steps() if whole else self.step)


class FakeLauncher:
    """Starts FakeRuns; `failing` run ids raise LaunchError, as a vanished trainer would."""

    def __init__(self, on_interrupt: Optional[int] = 0, failing: tuple = (), node: str = "",
                 results: Optional[FakeResults] = None) -> None:
        self.on_interrupt, self.failing, self.node = on_interrupt, set(failing), node
        self.results = results
        self.started: List[FakeRun] = []
        self.slots: List[int] = []

    def start(self, request: "ml.LaunchRequest") -> FakeRun:
        if request.run.run_id in self.failing:
            raise ml.LaunchError("could not start trainer: No such file or directory")
        ports = (6000 + request.slot, 6000 + request.slot) if request.needs_ports else None
        run = FakeRun(request, ports, 100 + len(self.started), self.node, self.on_interrupt, self.results)
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

    def serve(self, taken: float, points: Dict[tuple, list], newest: Optional[Dict[tuple, tuple]] = None,
              settled: tuple = ()) -> None:
        """Points by (run id, behavior, tag); newest: (wall, step) of a key's latest point, when it was written;
        settled: the run ids read as final (see ml.Snapshot.settled)."""
        self.snapshot = ml.Snapshot(taken, dict(points), newest=dict(newest or {}), settled=frozenset(settled))

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
        if path.name == ml.STATE_FILE:
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
                 previous: Optional[dict] = None, results: Optional[FakeResults] = None, sampler: Any = None,
                 budget: int = 0, **changes: Any) -> None:
        """sampler: a search's (with its budget of trials), in place of the grid."""
        self.settings = settings(folder, **changes)
        self.plan = ml.SweepPlan(ml.parse_config(config), "r")
        self.plan.seed = self.settings.seed  # the sweep's seed (None: runs have none, as before seeds were kept)
        searched = sampler is not None
        self.runs = [] if searched else [self.plan.make_run(spec) for spec in self.plan.grid(self.settings.repetitions)]
        self.clock = FakeClock()
        self.out, self.err = io.StringIO(), io.StringIO()
        self.results = results or FakeResults()
        self.launcher = launcher or FakeLauncher()
        self.launcher.results = self.results
        self.watcher = watcher
        self.store = ml.SweepStore(self.settings, write or ml.write_atomically)
        self.store.folder.mkdir(parents=True, exist_ok=True)
        (self.store.folder / "configs").mkdir(exist_ok=True)
        self.sampler, self.budget = sampler, budget
        if searched:
            self.policy = ml.make_search_policy(self.plan, sampler, budget, self.settings.concurrency, self.settings.seed or 0)
            make_run = self.plan.make_run
        else:
            self.policy = ml.make_policy(self.runs, order, self.plan, self.settings.seed or 0)
            make_run = self.grid_run
        if self.settings.confirm:
            self.policy = ml.ConfirmingPolicy(self.policy, self.settings.confirm, self.settings.confirm_seeds,
                                              self.settings.seed or 0, self.settings.repetitions, self.settings.metric_mode)
        records, sweep = [], ml.SweepFile("0123456789ab", self.settings.force, {})
        if previous is not None:  # as --resume reads an earlier sweep's state file back
            records = ml.read_records(previous, self.store.state_path, make_run, self.policy)
            sweep = ml.SweepFile(previous["sweep"], previous["overwrite"], previous["made_by"])
        self.supervisor = ml.Supervisor(
            self.settings, records, launcher=self.launcher, policy=self.policy, store=self.store,
            console=ml.Console(wall=lambda: 0.0, out=self.out, err=self.err), results=self.results,
            make_run=make_run, sweep=sweep, watcher=watcher, clock=self.clock, wall=self.clock,
            sleep=self.clock.sleep, marker=lambda settings, run: f"marker-{run.run_id}")

    def grid_run(self, spec: "ml.RunSpec") -> "ml.Run":
        """A proposed run as the sweep makes it: the grid's own, else (a confirmation run) made from the config."""
        if spec.index < len(self.runs) and self.runs[spec.index].spec == spec:
            return self.runs[spec.index]
        return self.plan.make_run(spec)

    def earlier(self, run_id: str, ending: "ml.Ending", saved: Optional[float] = None, reason: str = "") -> "ml.RunRecord":
        """A run as an earlier sweep in this folder recorded it: one session (10 s of training) that ended with
        `ending`, having saved a checkpoint at step `saved` (None: nothing)."""
        run = self.runs[int(run_id.rsplit("-", 1)[1])]
        record = ml.RunRecord(run)
        record.begin_session(10.0, False, None)
        if saved is not None:
            self.results.save(run, saved)
        record.end_session(20.0, ending, exit_code=1 if ending is ml.Ending.FAILED else 0, reason=reason,
                           saved=saved, trained_s=10.0)
        self.supervisor.records.append(record)
        self.supervisor.by_id[run_id] = record
        return record

    def taken_up(self, config: str, **changes: Any) -> "Harness":
        """This sweep taken up by --resume after it died: a new supervisor over the same folders, its records
        read back from the state file it last wrote, what was left open closed as --resume closes it."""
        again = Harness(self.settings.config_path.parent, config, previous=self.records_json(), results=self.results,
                        sampler=self.sampler, budget=self.budget, **{"concurrency": self.settings.concurrency, **changes})
        again.clock.now = self.clock()  # time goes on
        again.supervisor.take_up()
        return again

    def tick(self, seconds: float = 0.0) -> bool:
        self.clock.advance(seconds)
        return self.supervisor.tick()

    def status(self, run_id: str) -> "ml.Status":
        """A run's status; a run not recorded yet is pending."""
        record = self.supervisor.by_id.get(run_id)
        return record.status if record is not None else ml.Status.PENDING

    def records_json(self) -> dict:
        """The state file as the supervisor wrote it last."""
        return json.loads(self.store.state_path.read_text())

    def train_all(self) -> None:
        """Start as many runs as fit, let each end of its own accord (trained to the end), and reap them."""
        self.tick()
        for run in self.launcher.started:
            run.end(0)
        self.tick(1)

    def outcome(self) -> "ml.Outcome":
        """What the summary is made of, as the sweep makes it at its end."""
        return ml.Outcome(self.supervisor.shown(), self.supervisor.summary_tags, self.supervisor.metrics_stale, self.clock(),
                          self.supervisor.policy.standing)

    def summary(self) -> None:
        ml.write_summary(self.outcome(), self.settings, self.supervisor.console)

    def lines(self) -> List[str]:
        """The console's lines since the last call, without their time stamps."""
        text, self.out = self.out.getvalue(), io.StringIO()
        self.supervisor.console.out = self.out
        return [line.split("] ", 1)[1] if line.startswith("[") else line for line in text.splitlines()]

    def warnings(self) -> List[str]:
        text, self.err = self.err.getvalue(), io.StringIO()
        self.supervisor.console.err = self.err
        return [line.split("] ", 1)[1] for line in text.splitlines()]
