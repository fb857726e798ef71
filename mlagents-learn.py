#!/usr/bin/env python3
"""Hyperparameter sweeps for Unity ML-Agents, with mlagents-learn's own command line.

    python mlagents-learn.py config.yaml --env=Build --num-envs=4 [mlagents-learn flags]

Mark any config value as `{opt_values: [a, b, c]}`: every combination becomes
one training run (`<run-id>-0`, `<run-id>-1`, ...), at most `--num-envs` of
them train at once, and `opt_stop` conditions read from TensorBoard stop the
runs that go nowhere. Every other flag goes to mlagents-learn unchanged.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import difflib
import enum
import functools
import glob
import hashlib
import heapq
import http.client
import io
import itertools
import json
import math
import os
import queue
import re
import select
import shlex
import shutil
import signal
import socket
import stat
import struct
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, Callable, Iterable, Iterator, Mapping, Protocol, Sequence, TypeVar

import yaml

# ---------------------------------------------------------------------------
# Constants and defaults
# ---------------------------------------------------------------------------

DEFAULT_RUN_ID = "ppo"  # mlagents-learn's own default
DEFAULT_RESULTS_DIR = "results"
DEFAULT_BASE_PORT = 5005
DEFAULT_STOP_TIMEOUT = 60.0
# A poll reads only the runs training or just ended (about 2 ms a run), so it is cheap enough to read
# TensorBoard often: a threshold stop lands within one summary period or so of its point, and the
# status line's steps and time left are at most this much older than what TensorBoard has.
DEFAULT_POLL_INTERVAL = 10.0
DEFAULT_TENSORBOARD_URL = "http://localhost:6006"
DEFAULT_METRIC = "Environment/Cumulative Reward"
DEFAULT_MAX_RUNS = 10_000
DEFAULT_MEDIAN_MIN_RUNS = 3
DEFAULT_HALVING_FACTOR = 3
# rule: pbt (population based training, Jaderberg et al. 2017; the defaults are Ray Tune's PBT's): every
# DEFAULT_PBT_INTERVAL steps the worst quarter of the population takes over a checkpoint of the best quarter and
# goes on with its values perturbed by a factor, or drawn afresh one time in four.
DEFAULT_PBT_INTERVAL = 50_000
DEFAULT_PBT_QUANTILE = 0.25
DEFAULT_PBT_PERTURB = (0.8, 1.2)
DEFAULT_PBT_RESAMPLE = 0.25
MLAGENTS_MAX_STEPS, MLAGENTS_SUMMARY_FREQ = 500_000, 50_000  # mlagents-learn's defaults per behavior
MAX_STEPS_LIMIT = 1e15  # more steps than any run trains; past it a number is a typo (or 400 digits)
TICK = 0.2  # supervisor period: a freed slot is refilled within this
STATUS_INTERVAL = 60.0
FIRST_STATUS = 30.0  # the first status line: every run started has shown its first points by then, or is slow
# A state file that cannot be written when the sweep ends (a full disk) is tried again this long.
STATE_RETRY = 30.0
# One poll of TensorBoard, all its requests together, must end within this: a
# server that accepts and never answers, or trickles a byte at a time, costs
# the sweep stale metrics and nothing else.
POLL_DEADLINE = 15.0
# While a run's next point is the one at its halving rung, TensorBoard is
# polled this often (if --poll-interval is longer): a run trains on until its
# pause is asked, and at a poll interval of 10 s that is up to 10 s of
# training past the rung, thrown away.
DUE_POLL_INTERVAL = 1.0
MAX_ANSWER_BYTES = 256 << 20
TENSORBOARD_START_TIMEOUT = 60.0
# TensorBoard reads new event data every --reload_interval seconds (default 5):
# the summary waits this long after the last run ends so its last points are in.
TENSORBOARD_SETTLE = 6.0
# The TensorBoard the sweep starts reloads every second, not every 5: a point
# TensorBoard has not read yet is a halving pause or a stop not asked yet, and
# over this sweep's runs alone a reload costs little (see README, Performance).
OWN_TENSORBOARD_RELOAD = 1.0
# A run's event file has been on disk this long and TensorBoard still does not
# serve the run: that TensorBoard reads another folder.
UNSERVED_GRACE = 30.0
# Bounds on the config, checked before anything walks it: an ML-Agents config
# is a few KiB, a few hundred nodes and under ten levels deep.
MAX_CONFIG_BYTES = 1 << 20
MAX_CONFIG_DEPTH = 50
MAX_CONFIG_NODES = 200_000  # aliases count at their full size: that is what a walk visits

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
SHUFFLE_ANY = -1  # --shuffle without a seed: a new one, or on --resume the recorded one
STATE_FILE = "sweep_state.json"
STATE_VERSION = 3  # 3: a record per run, with its sessions
LOCK_FILE = "sweep.lock"
SWEEP_LOG = "sweep.log"

# mlagents-learn 1.1.0's flags, and whether each takes a value. The sweep must
# know which flags take a value to tell `--env Build` from the config path.
MLAGENTS_FLAGS: dict[str, bool] = {
    "--env": True,
    "--resume": False,
    "--deterministic": False,
    "--force": False,
    "--run-id": True,
    "--initialize-from": True,
    "--seed": True,
    "--inference": False,
    "--base-port": True,
    "--num-envs": True,
    "--num-areas": True,
    "--debug": False,
    "--max-lifetime-restarts": True,
    "--restarts-rate-limit-n": True,
    "--restarts-rate-limit-period-s": True,
    "--torch-device": True,
    "--results-dir": True,
    "--timeout-wait": True,
    "--width": True,
    "--height": True,
    "--quality-level": True,
    "--time-scale": True,
    "--target-frame-rate": True,
    "--capture-frame-rate": True,
    "--no-graphics": False,
    "--no-graphics-monitor": False,
    # Deprecated, still accepted (they only print a warning).
    "--torch": False,
    "--tensorflow": False,
    "--load": False,
    "--train": False,
}
# Flags the sweep owns: each run gets its own value for them.
# --seed: each run's seed is written in its config, derived from the sweep's (see run_seed).
SWEEP_OWNED_FLAGS = ("--run-id", "--num-envs", "--base-port", "--seed")

OPTION_KEY = "opt_values"
RANGE_KEY = "opt_range"  # {opt_range: [low, high], log: true, step: q}: a range a search samples from
RANGE_FIELDS = ("log", "step")  # what may stand beside opt_range
LABELS_KEY = "opt_labels"  # beside opt_values once parsed, when the config gave them as a mapping of label to value
SHOWN_VALUE_WIDTH = 40  # a value without a label is cut to this in the console and the tables
STOP_KEY = "opt_stop"
STOP_MODES = ("max", "min")
# checkpoint_settings keys that describe the sweep, not a run: each run gets
# --resume or --force on its own command line when it needs them.
SWEEP_LEVEL_CHECKPOINT_KEYS = ("resume", "force")

RUN_ID_FORBIDDEN = set('/\\:*?"<>|')
NAME_MAX = 255  # bytes in a file name

# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------


class SweepError(Exception):
    """An expected failure the user can fix: printed as one line, exit 2."""

    def __init__(self, what: str, where: str = "", todo: str = "") -> None:
        super().__init__(what)
        self.what, self.where, self.todo = what, where, todo

    def __str__(self) -> str:
        text = self.what
        if self.where:
            text += f" ({self.where})"
        if self.todo:
            text += f": {self.todo}"
        return text


# ---------------------------------------------------------------------------
# Data types
# ---------------------------------------------------------------------------


class Status(enum.Enum):
    """What became of a run. The value is what the state file stores; the label is what people read."""

    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"  # stopped at a rung, checkpoint saved: continues or ends by the policy's verdict
    FINISHED = "finished"
    STOPPED = "stopped"
    FAILED = "failed"
    INTERRUPTED = "interrupted"

    @property
    def label(self) -> str:
        return {Status.PENDING: "not started", Status.STOPPED: "stopped early"}.get(self, self.value)

    @property
    def done(self) -> bool:
        """A resumed sweep does not train a done run again."""
        return self in (Status.FINISHED, Status.STOPPED)


@dataclass(frozen=True)
class Range:
    """An `opt_range`: numbers from low to high, of integers when both bounds are, on a log scale or in
    steps of `step` (the words Optuna and Ray Tune use)."""

    low: float
    high: float
    integer: bool = False
    log: bool = False
    step: float | None = None

    def describe(self) -> str:
        kind = "integers" if self.integer else "numbers"
        scale = ", log scale" if self.log else f", step {self.step:g}" if self.step is not None else ""
        return f"{kind} {self.low:g} to {self.high:g}{scale}"


@dataclass(frozen=True)
class Option:
    """One `opt_values` or `opt_range` key: where it lives and the values it takes."""

    heading: str  # behavior name, or the top-level section it sits in
    path: tuple[str | int, ...]  # keys below the heading
    values: tuple[Any, ...]  # an opt_range has none: a search samples them from its range
    in_behavior: bool
    names: tuple[str | None, ...] = ()  # each value's label (opt_values given as a mapping), or None
    key: Any = None  # the heading's key as the config has it (YAML may make it a number): where values go
    range: Range | None = None


@dataclass(frozen=True)
class StopRule:
    """One `opt_stop` condition of one behavior; which fields apply depends on its kind (see RULE_KINDS)."""

    behavior: str
    tag: str
    step: float = 0
    min: float | None = None
    max: float | None = None
    rule: str = "threshold"
    min_runs: int = DEFAULT_MEDIAN_MIN_RUNS
    mode: str = "max"  # "max" when higher is better
    factor: float = DEFAULT_HALVING_FACTOR  # rule: halving
    interval: float = DEFAULT_PBT_INTERVAL  # rule: pbt, and its quantile, perturb and resample
    quantile: float = DEFAULT_PBT_QUANTILE
    perturb: tuple[float, ...] = DEFAULT_PBT_PERTURB
    resample: float = DEFAULT_PBT_RESAMPLE


@dataclass(frozen=True)
class Origin:
    """Where a run that is not a fresh grid run came from: a run it continues and that run's step."""

    parent: str
    step: float


@dataclass(frozen=True)
class Exploit:
    """A run's weights changed hands (population based training): at an interval it took over another run's
    checkpoint and went on with other values. Its points from before are not its own (see RunRecord.windows)."""

    interval: int  # the interval it happened at (1: the first, at `interval` steps)
    donor: str  # the run whose checkpoint it took
    step: float | None  # the step of that checkpoint: where it trained on from
    before: tuple[tuple[str, str, Any], ...]  # its values before, (heading, label, value) per option
    after: tuple[tuple[str, str, Any], ...]  # and after
    names: tuple[tuple[str | None, ...], tuple[str | None, ...]]  # each value's label from the config, before and after
    session: int  # the number of its first session with the new weights

    def to_json(self) -> dict[str, Any]:
        return {"interval": self.interval, "donor": self.donor, "step": self.step, "session": self.session,
                "before": values_json(self.before, self.names[0]), "after": values_json(self.after, self.names[1])}

    @staticmethod
    def from_json(data: Any) -> "Exploit":
        """Read back from the state file, every field checked; ValueError says which is wrong."""
        fields = expect_fields(data, {"interval": (int,), "donor": (str,), "step": (int, float, type(None)),
                                      "session": (int,), "before": (list,), "after": (list,)})
        if fields["interval"] < 1 or fields["session"] < 0:
            raise ValueError("interval or session is out of range")
        before, after = values_from_json(fields["before"]), values_from_json(fields["after"])
        return Exploit(fields["interval"], fields["donor"], None if fields["step"] is None else float(fields["step"]),
                       before[0], after[0], (before[1], after[1]), fields["session"])


@dataclass(frozen=True)
class RunSpec:
    """What a policy proposes: a run's values and where it comes from. The supervisor records it as a run."""

    values: tuple[tuple[str, str, Any], ...]  # (heading, label, value) per option
    names: tuple[str | None, ...]  # each value's label from the config, or None
    repetition: int = 1
    index: int = 0  # its number: the run is <run-id>-<index>
    seed: int | None = None  # env_settings.seed in its config; None: ML-Agents picks one (a sweep before seeds were kept)
    origin: Origin | None = None
    confirms: bool = False  # it trains a combination the search chose again on a fresh seed (see ConfirmingPolicy)

    @property
    def combination(self) -> str:
        return combination_of(self.values)


def combination_of(values: Sequence[tuple[str, str, Any]]) -> str:
    """The identity of a combination of values: the same for its repetitions, different for any other values,
    however alike their texts (never display text, which is cut short)."""
    whole = json.dumps([[heading, label, flow(value)] for heading, label, value in values])
    return hashlib.sha256(whole.encode()).hexdigest()[:16]


@dataclass
class Run:
    """One training run of the sweep: its id, complete config and values."""

    index: int
    run_id: str
    config: dict[str, Any]
    values: list[tuple[str, str, Any]]  # (heading, label, value)
    repetition: int
    stop_rules: list[StopRule]
    instances: int  # Unity instances the run starts (env_settings.num_envs)
    behaviors: list[str]
    horizons: dict[str, tuple[float, float]] = field(default_factory=dict)  # behavior -> (max_steps, summary_freq)
    names: list[str | None] = field(default_factory=list)  # each value's label, if the config gave one
    seed: int | None = None  # env_settings.seed in its config
    origin: Origin | None = None
    confirms: bool = False  # a confirmation run: no stop rule, trained to max_steps on a seed the search never used

    @property
    def spec(self) -> RunSpec:
        return RunSpec(tuple(self.values), tuple(self.names or [None] * len(self.values)), self.repetition, self.index,
                       self.seed, self.origin, self.confirms)

    @property
    def combination(self) -> str:
        return combination_of(self.values)

    @property
    def searched(self) -> bool:
        """One of the search's own runs: not a confirmation, nor a run that continues another."""
        return self.origin is None and not self.confirms

    def in_last_stretch(self, behavior: str, step: float) -> bool:
        """True once a behavior is within one summary period of its max_steps.

        The run is about to finish and export its model; a stop then saves
        almost nothing, and a SIGINT during the export kills mlagents-learn
        before it has written its final model.
        """
        max_steps, summary_freq = self.horizons.get(behavior, (math.inf, 0))
        return step + summary_freq >= max_steps

    def total_steps(self) -> float:
        """The steps it trains to: its behaviors' largest max_steps."""
        return max((max_steps for max_steps, _ in self.horizons.values()), default=float(MLAGENTS_MAX_STEPS))

    def describe_lap(self, repetitions: int) -> str:
        """Its values and, when every combination trains several times, which repetition it is (or that it confirms)."""
        if self.confirms:
            return self.describe() + f" (confirmation, seed {self.seed})"
        return self.describe() + (f" (repetition {self.repetition} of {repetitions})" if repetitions > 1 else "")

    def describe(self, whole: bool = False) -> str:
        """The run's values in one line: cut short for the console and tables, whole for machines (CSV, state)."""
        if not self.values:
            return "no value options"
        return " ".join(f"{name}={text}" for name, text in zip(self.value_names(), self.value_texts(whole)))

    def value_names(self) -> list[str]:
        """Each value's option: its label, with its behavior or section when the run's options have several."""
        return qualified_names([(heading, label) for heading, label, _ in self.values])

    def value_texts(self, whole: bool = False) -> list[str]:
        """Each value as shown: for people its label from the config, else its YAML cut short; whole (for
        machines, and config_info.txt) its YAML uncut, after its label if it has one ("label = value")."""
        names = self.names or [None] * len(self.values)
        if whole:
            return [flow(value) if name is None else f"{name} = {flow(value)}" for (_, _, value), name in zip(self.values, names)]
        return [shown_value(value, name) for (_, _, value), name in zip(self.values, names)]


def qualified_names(options: Sequence[tuple[str, str]]) -> list[str]:
    """Each option's name from its (heading, label): the label, with its heading when the options have several."""
    multi = len({heading for heading, _ in options}) > 1
    return [f"{heading}.{label}" if multi else label for heading, label in options]


def shown_value(value: Any, label: str | None) -> str:
    """A value as people read it: its label from the config, else its YAML cut short."""
    return cut(flow(value), SHOWN_VALUE_WIDTH) if label is None else label


@dataclass
class Settings:
    """Everything the command line decided, checked."""

    config_path: Path
    run_id: str
    concurrency: int
    base_port: int
    results_dir: Path
    env_path: str | None
    forwarded: list[str]
    env_args: list[str] | None
    trainer: list[str]
    dry_run: bool
    repetitions: int
    stop_timeout: float
    poll_interval: float
    tensorboard_url: str | None  # None: TensorBoard is not used at all
    metric: str
    metric_mode: str
    force: bool
    resume: bool
    max_runs: int
    shuffle: int | None = None  # the seed of a shuffled training order; None: grid order (SHUFFLE_ANY: pick one)
    ray: str | None = None  # the Ray cluster's address; None: runs train on this machine
    cpus_per_run: float = 1.0
    gpus_per_run: float = 0.0
    max_retries: int = 2  # a run whose node goes away trains again, from its checkpoint, this many times
    search: str = "grid"  # how runs are proposed: every combination, or trials sampled (see SEARCHES)
    num_trials: int | None = None  # a sampled search's budget of trials
    search_seed: int | None = None  # its sampler's seed (SHUFFLE_ANY: pick one, or on --resume the recorded one)
    seed: int | None = None  # the seed runs' seeds derive from (see run_seed; SHUFFLE_ANY: pick one, or the recorded one)
    confirm: int = 0  # --confirm: how many of the best combinations are trained again on fresh seeds (0: none)
    confirm_seeds: int = 3  # on how many seeds each
    gpus: tuple[str, ...] = ()  # --gpus: the GPUs runs are placed on (CUDA_VISIBLE_DEVICES), none: as ML-Agents decides
    runs_per_gpu: int = 1
    resume_hint: str = ""  # the command that continues this sweep
    run_id_source: str = "--run-id"  # where the run id came from, for messages about it

    @property
    def sweep_dir(self) -> Path:
        return self.results_dir / f"{self.run_id}-sweep"

    def config_path_of(self, run: Run) -> Path:
        """Where a run's complete config is written: the one place that says so."""
        return self.sweep_dir / "configs" / f"{run.run_id}.yaml"

    def log_path_of(self, run: Run) -> Path:
        return self.sweep_dir / "logs" / f"{run.run_id}.log"

    def gpu_of(self, slot: int) -> str | None:
        """The GPU a slot's runs train on: --runs-per-gpu slots share each (slot k: the k-th GPU, round the list)."""
        return self.gpus[slot % len(self.gpus)] if self.gpus else None


class Ending(enum.Enum):
    """How one session of a run ended. The value is what the state file stores."""

    FINISHED = "finished"  # ML-Agents' own record says it trained to max_steps
    STOPPED = "stopped"  # asked to stop (a rule, halving): it saved its model
    PAUSED = "paused"  # asked to pause at a rung: it saved its checkpoint
    INTERRUPTED = "interrupted"  # the sweep was interrupted, or it ended short of max_steps unasked
    FAILED = "failed"
    LOST = "lost"  # the launcher lost it (its node went away)


ASKED = ("stop", "pause", "interrupt")  # what the sweep may ask of a session, recorded before it is asked


@dataclass
class Session:
    """One launch of a run's trainer in this sweep: when, from where, to where, and how it ended."""

    began: float  # wall clock when it was launched
    resumed: bool = False  # it continued from the run's checkpoint (mlagents-learn --resume)
    from_step: float | None = None  # the step ML-Agents recorded it saved before this session (resumed only)
    ended: float | None = None  # wall clock when it ended; None while it trains, or if the sweep died meanwhile
    reached: float | None = None  # the latest step seen of it, in TensorBoard or in what ML-Agents saved
    ending: Ending | None = None
    exit_code: int | None = None
    asked: str | None = None  # what the sweep asked of it (see ASKED), recorded before the signal went
    reason: str = ""  # why it was asked to stop or pause, or why it failed
    killed: bool = False
    saved: float | None = None  # the step of the final checkpoint ML-Agents recorded when it ended
    trained_s: float = 0.0  # seconds it trained (its ended sessions only)
    pid: int | None = None
    identity: ProcessIdentity | None = None
    ports: tuple[int, int] | None = None
    node: str = ""  # where it trained ("" on this machine)

    def to_json(self) -> dict[str, Any]:
        return {"began": self.began, "ended": self.ended, "resumed": self.resumed, "from_step": self.from_step,
                "reached": self.reached, "ending": self.ending.value if self.ending else None, "exit_code": self.exit_code,
                "asked": self.asked, "reason": self.reason, "killed": self.killed, "saved": self.saved,
                "trained_s": round(self.trained_s, 3), "pid": self.pid,
                "identity": self.identity.to_json() if self.identity else None,
                "ports": list(self.ports) if self.ports else None, "node": self.node}

    @staticmethod
    def from_json(data: Any) -> "Session":
        """A session as the state file keeps it, every field checked; ValueError says which is wrong."""
        fields = expect_fields(data, SESSION_FIELDS)
        if fields["ending"] is not None and fields["ending"] not in {ending.value for ending in Ending}:
            raise ValueError(f"ending is {json.dumps(fields['ending'])[:40]}")
        if fields["asked"] is not None and fields["asked"] not in ASKED:
            raise ValueError(f"asked is {json.dumps(fields['asked'])[:40]}")
        if fields["pid"] is not None and fields["pid"] < 2:
            raise ValueError(f"pid is {fields['pid']}")  # 0 is the sweep's own group, -1 every process, 1 init
        ports = fields["ports"]
        if ports is not None and not (len(ports) == 2 and all(
                isinstance(port, int) and not isinstance(port, bool) and 1 <= port <= 65535 for port in ports)):
            raise ValueError(f"ports is {json.dumps(ports)[:40]}")
        identity = fields["identity"]
        if identity is not None and not (set(identity) == {"boot", "start", "marker"} and all(
                isinstance(value, str) for value in identity.values())):
            raise ValueError("identity is malformed")
        return Session(fields["began"], fields["resumed"], fields["from_step"], fields["ended"], fields["reached"],
                       Ending(fields["ending"]) if fields["ending"] is not None else None, fields["exit_code"],
                       fields["asked"], fields["reason"], fields["killed"], fields["saved"], float(fields["trained_s"]),
                       fields["pid"], ProcessIdentity(**identity) if identity else None,
                       (ports[0], ports[1]) if ports else None, fields["node"])


_NUMBER, _OPTIONAL_NUMBER = (int, float), (int, float, type(None))
# What each field of a session in the state file may hold; anything else is refused.
SESSION_FIELDS: dict[str, tuple[type, ...]] = {
    "began": _NUMBER, "ended": _OPTIONAL_NUMBER, "resumed": (bool,), "from_step": _OPTIONAL_NUMBER,
    "reached": _OPTIONAL_NUMBER, "ending": (str, type(None)), "exit_code": (int, type(None)), "asked": (str, type(None)),
    "reason": (str,), "killed": (bool,), "saved": _OPTIONAL_NUMBER, "trained_s": _NUMBER, "pid": (int, type(None)),
    "identity": (dict, type(None)), "ports": (list, type(None)), "node": (str,)}


def expect_fields(data: Any, kinds: Mapping[str, tuple[type, ...]]) -> dict[str, Any]:
    """A mapping with exactly these fields, each of one of its kinds (a bool is no number), numbers finite;
    ValueError names the first field that is not."""
    if not isinstance(data, dict):
        raise ValueError("is not a mapping")
    for name, allowed in kinds.items():
        if name not in data:
            raise ValueError(f"{name} is missing")
        value = data[name]
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            raise ValueError(f"{name} is {json.dumps(value)[:40]}")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not finite_number(value):
            raise ValueError(f"{name} is not a finite number")
    extra = sorted(set(data) - set(kinds))
    if extra:
        raise ValueError(f"{extra[0]} is not a field of it")
    return dict(data)


class RunRecord:
    """A run of the sweep as the state file keeps it: what it is (its spec and config), what became of it
    (its status), its sessions, and what the policy remembers of it; plus, while it trains, what the
    supervisor needs at hand (its handle and slot), which is not kept.

    Its status changes only through its own transitions: a session begins or ends, a paused run is told
    to go on or to end, a run is taken up again by --resume. Everything the summary, the HParams tab
    and --resume say of a run is derived from this record.
    """

    def __init__(self, run: Run, status: Status = Status.PENDING, sessions: Sequence[Session] = (),
                 memory: Any = None, attempts: int = 0, reason: str = "",
                 inherited: Mapping[str, Sequence[int]] | None = None, score: tuple[float, float] | None = None,
                 lineage: Sequence[Exploit] = ()) -> None:
        self.run = run
        self._status = status
        self.sessions: list[Session] = list(sessions)
        self.memory = memory  # what the policy keeps of the run (its own typed record, e.g. HalvingMemory)
        self.attempts = attempts  # times a launcher lost it (its node died) and it was started again
        self._reason = reason  # why it is stopped or failed, when no session says so (a verdict on a paused run)
        # What ML-Agents' results folder held for it before this sweep first launched it (see Results.fingerprint):
        # what an older sweep left there is never taken for this sweep's.
        self.inherited: dict[str, list[int]] = {key: list(value) for key, value in (inherited or {}).items()}
        # (step, value) of --metric at its latest own point, the mean over its behaviors: what a search is told
        # of it, kept so that a resumed search knows it before TensorBoard has served anything.
        self.score = score
        self.lineage: list[Exploit] = list(lineage)  # each time its weights changed hands, oldest first
        # Not kept: the supervisor's at-hand view while the run trains.
        self.handle: RunHandle | None = None
        self.slot: int | None = None
        self.session_began: float | None = None  # the supervisor's clock when the current session began
        self.stop_asked: float | None = None  # the supervisor's clock when it asked the run to stop
        self.announced = False  # its start line is out (see Supervisor.announce)
        self.metrics: dict[tuple[str, str], float] = {}  # (behavior, tag) -> last value of its own points
        self.last_step: float | None = None
        self.settled = False  # its score is from its last points (it ended, and TensorBoard was read after: see Snapshot)

    # -- what it is and what became of it ------------------------------------------

    @property
    def status(self) -> Status:
        return self._status

    @property
    def session(self) -> Session | None:
        """Its latest session, if it has one."""
        return self.sessions[-1] if self.sessions else None

    @property
    def start(self) -> float | None:
        return self.sessions[0].began if self.sessions else None

    @property
    def end(self) -> float | None:
        return self.sessions[-1].ended if self.sessions else None

    @property
    def trained_s(self) -> float:
        return sum(session.trained_s for session in self.sessions)

    @property
    def exit_code(self) -> int | None:
        return self.sessions[-1].exit_code if self.sessions else None

    @property
    def killed(self) -> bool:
        return bool(self.sessions) and self.sessions[-1].killed

    @property
    def pausing(self) -> bool:
        return self._status is Status.RUNNING and self.sessions[-1].asked == "pause"

    @property
    def node(self) -> str:
        return self.sessions[-1].node if self.sessions else ""

    @property
    def stop_reason(self) -> str:
        """Why it stopped, paused or failed: a verdict, else what its latest session was asked or ended with."""
        return self._reason or (self.sessions[-1].reason if self.sessions else "")

    def duration(self, now: float) -> float | None:
        """Seconds trained over all its sessions, the current one up to now (the supervisor's clock)."""
        if not self.sessions:
            return None
        return self.trained_s + (now - self.session_began if self.session_began is not None else 0.0)

    def windows(self) -> tuple[tuple[float, float | None], ...]:
        """The wall-clock spans of its sessions: only points written in them are the run's own. Once it took over
        another run's checkpoint (see Exploit), only those since: its earlier points are of weights it no longer has."""
        since = self.lineage[-1].session if self.lineage else 0
        return tuple((session.began, session.ended) for session in self.sessions[since:])

    def take_over(self, run: Run, donor: str, step: float | None, interval: int) -> None:
        """A paused run took over another run's checkpoint (copied into its folder) and goes on as `run`:
        other values, from that checkpoint's step (see go_on)."""
        before = self.run
        self.lineage.append(Exploit(interval, donor, step, tuple(before.values), tuple(run.values),
                                    (tuple(before.names or [None] * len(before.values)),
                                     tuple(run.names or [None] * len(run.values))), len(self.sessions)))
        self.go_on(run)

    # -- its transitions -------------------------------------------------------------

    def begin_session(self, began: float, resumed: bool, from_step: float | None) -> Session:
        """A session starts: the run trains (fresh, or from its checkpoint)."""
        session = Session(began, resumed, from_step)
        self.sessions.append(session)
        self._status, self._reason = Status.RUNNING, ""
        self.settled = False  # it writes new points: its score is not final until they are read
        return session

    def ask(self, what: str, reason: str) -> None:
        """What the sweep asks of the running session (stop, pause, interrupt): recorded before it is asked,
        so that the decision holds if the sweep dies before the run has ended."""
        session = self.sessions[-1]
        session.asked, session.reason = what, reason

    def end_session(self, ended: float, ending: Ending, *, exit_code: int | None = None, reason: str = "",
                    saved: float | None = None, trained_s: float = 0.0) -> None:
        """The session ended: its ending decides the run's status (a lost run waits to train again)."""
        session = self.sessions[-1]
        session.ended, session.ending, session.exit_code, session.saved = ended, ending, exit_code, saved
        session.trained_s += trained_s
        if reason:
            session.reason = reason
        if saved is not None:
            session.reached = max(session.reached or 0.0, saved)
        self._status = {Ending.FINISHED: Status.FINISHED, Ending.STOPPED: Status.STOPPED, Ending.PAUSED: Status.PAUSED,
                        Ending.INTERRUPTED: Status.INTERRUPTED, Ending.FAILED: Status.FAILED,
                        Ending.LOST: Status.PENDING}[ending]

    def go_on(self, run: Run | None = None) -> None:
        """A paused run is told to continue: it waits for a slot, and trains on from its checkpoint; with run,
        as that run (the same id, other values: its config is written when it starts)."""
        if run is not None:
            if run.run_id != self.run.run_id:
                raise ValueError(f"{self.run.run_id} cannot go on as {run.run_id}")
            self.run = run
        self._status, self._reason = Status.PENDING, ""

    def end_paused(self, reason: str) -> None:
        """A paused run is told to end: stopped early, with the model it saved when it paused."""
        self._status, self._reason = Status.STOPPED, reason

    def take_up(self, trained_to_the_end: Callable[[], bool], now: float) -> str:
        """--resume: what the sweep that died left open is closed as its record says, and a run that did not
        end well trains again. Returns how its open session ended ("" if it had none open).

        When the open session ended is not known: by now at the latest (its leftovers were reclaimed first),
        so every point it wrote still counts as the run's own."""
        said = ""
        if self._status is Status.RUNNING:  # the sweep died while it trained: how did it end?
            asked = self.sessions[-1].asked
            if asked == "stop":
                ending = Ending.STOPPED  # the decision holds: it is not trained on
            elif asked == "pause":
                ending = Ending.PAUSED
            elif trained_to_the_end():
                ending, said = Ending.FINISHED, "trained to the end (its results say so): not trained again"
            else:
                ending = Ending.INTERRUPTED
            session = self.sessions[-1]
            self.end_session(session.ended or now, ending, exit_code=session.exit_code)
        if self._status in (Status.FAILED, Status.INTERRUPTED):
            self._status = Status.PENDING
        return said

    # -- the state file ----------------------------------------------------------------

    def to_json(self, memory_json: Callable[[Any], Any]) -> dict[str, Any]:
        run = self.run
        return {"run_id": run.run_id, "index": run.index, "values": values_json(run.values, run.names),
                "combination": run.combination, "repetition": run.repetition, "seed": run.seed,
                "origin": [run.origin.parent, run.origin.step] if run.origin else None, "confirms": run.confirms,
                "status": self._status.value, "reason": self._reason, "attempts": self.attempts,
                "inherited": self.inherited, "memory": memory_json(self.memory),
                "score": list(self.score) if self.score is not None else None,
                "lineage": [exploit.to_json() for exploit in self.lineage],
                "sessions": [session.to_json() for session in self.sessions]}


# What each field of a run in the state file may hold; anything else is refused.
RECORD_FIELDS: dict[str, tuple[type, ...]] = {
    "run_id": (str,), "index": (int,), "values": (list,), "combination": (str,), "repetition": (int,),
    "seed": (int, type(None)), "origin": (list, type(None)), "status": (str,), "reason": (str,), "attempts": (int,),
    "inherited": (dict,), "memory": (dict, type(None)), "sessions": (list,), "score": (list, type(None)),
    "confirms": (bool,), "lineage": (list,)}


def values_json(values: Sequence[tuple[str, str, Any]], names: Sequence[str | None] | None) -> list[list[Any]]:
    """A run's values as the state file keeps them: [heading, label, YAML text, label from the config]."""
    return [[heading, label, flow(value), name] for (heading, label, value), name in zip(values, names or [None] * len(values))]


def values_from_json(items: Sequence[Any]) -> tuple[tuple[tuple[str, str, Any], ...], tuple[str | None, ...]]:
    """Values as values_json wrote them, each read back from its YAML; ValueError if malformed."""
    values, names = [], []
    for item in items:
        if not (isinstance(item, list) and len(item) == 4 and all(isinstance(part, str) for part in item[:3])
                and isinstance(item[3], (str, type(None)))):
            raise ValueError("values is malformed")
        try:
            # Safe loading only, as in parse_config.
            value = yaml.load(item[2], Loader=_YamlLoader)  # nosec B506
        except yaml.YAMLError:
            raise ValueError("values is malformed") from None
        values.append((item[0], item[1], value))
        names.append(item[3])
    return tuple(values), tuple(names)


def record_spec(fields: Mapping[str, Any]) -> RunSpec:
    """The spec a record of the state file names, every value read back from its YAML; ValueError if malformed."""
    values, names = values_from_json(fields["values"])
    origin = fields["origin"]
    if origin is not None and not (len(origin) == 2 and isinstance(origin[0], str) and finite_number(origin[1])):
        raise ValueError("origin is malformed")
    if fields["index"] < 0 or fields["repetition"] < 1 or fields["attempts"] < 0:
        raise ValueError("index, repetition or attempts is out of range")
    spec = RunSpec(values, names, fields["repetition"], fields["index"], fields["seed"],
                   Origin(origin[0], float(origin[1])) if origin else None, fields["confirms"])
    if spec.combination != fields["combination"]:
        raise ValueError("combination does not match its values")
    for key, value in fields["inherited"].items():
        if not (isinstance(value, list) and len(value) == 2 and all(isinstance(n, int) and not isinstance(n, bool)
                                                                    for n in value)):
            raise ValueError(f"inherited.{key} is malformed")
    return spec


# ---------------------------------------------------------------------------
# Pure config logic: load YAML, find opt_* keys, expand, render config_info
# ---------------------------------------------------------------------------

try:  # libyaml makes writing 10,000 configs several times faster
    _SafeLoader: Any = yaml.CSafeLoader
    _YamlDumper: Any = yaml.CSafeDumper
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _SafeLoader, _YamlDumper = yaml.SafeLoader, yaml.SafeDumper


class _YamlLoader(_SafeLoader):  # type: ignore[misc, valid-type]
    """PyYAML's safe loader, reading 3e-4 as a number as YAML 1.2 does (YAML 1.1 wants 3.0e-4).

    mlagents-learn turns such strings into floats itself; opt_stop bounds and
    config_info.txt need them to be numbers already.
    """


_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789"))


def check_yaml_shape(text: str, where: str) -> None:
    """Refuse YAML too deep or too large to walk, before it is built.

    libyaml's event parser is iterative, but PyYAML builds nodes recursively
    (30,000 levels crash the interpreter) and the walks here visit an alias
    once per use, so nine anchors of nine aliases each are 387 million nodes
    from 627 bytes. Counting events with each alias at its anchor's size
    stops such a file after a few hundred events.
    """
    sizes: dict[str, int] = {}  # anchor -> nodes below it, aliases expanded
    opened: list[tuple[str | None, int]] = []  # open collections: (anchor, count when it opened)
    count = 0
    for event in yaml.parse(text, Loader=_YamlLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            opened.append((event.anchor, count))
            count += 1
            if len(opened) > MAX_CONFIG_DEPTH:
                raise SweepError(f"the config nests deeper than {MAX_CONFIG_DEPTH} levels", where,
                                 "an ML-Agents config is a few levels deep: check that this is the right file")
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, began = opened.pop()
            if anchor is not None:
                sizes[anchor] = count - began
        elif isinstance(event, yaml.ScalarEvent):
            count += 1
            if event.anchor is not None:
                sizes[event.anchor] = 1
        elif isinstance(event, yaml.AliasEvent):
            if any(anchor == event.anchor for anchor, _ in opened):
                raise SweepError(f"the alias *{event.anchor} refers to a mapping or list that contains it", where,
                                 "a config cannot contain itself: replace the alias by a copy of the part you mean")
            count += sizes.get(event.anchor, 1)
        if count > MAX_CONFIG_NODES:
            raise SweepError(f"the config has more than {MAX_CONFIG_NODES} values once its aliases are expanded", where,
                             "an ML-Agents config has a few hundred: check the file and its anchors (&) and aliases (*)")


def parse_config(text: str, where: str = "config") -> dict[str, Any]:
    """Parse config text; raise SweepError for anything mlagents-learn would not take."""
    try:
        check_yaml_shape(text, where)
        # Safe loading only: _YamlLoader is CSafeLoader or SafeLoader, which bandit cannot see through.
        config = yaml.load(text, Loader=_YamlLoader)  # nosec B506
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f"{where}, line {mark.line + 1}" if mark else where
        raise SweepError(f"YAML syntax error: {exc.problem or exc.context}", line, "fix the YAML") from None
    except yaml.YAMLError as exc:
        raise SweepError(f"YAML error: {exc}", where, "fix the YAML") from None
    if config is None:
        raise SweepError("the config is empty", where, "start from an ML-Agents config with a behaviors: section")
    if not isinstance(config, dict):
        raise SweepError("the config is not a YAML mapping", where, "start from an ML-Agents config with a behaviors: section")
    check_options(config, (), where)  # first: every later check may rely on opt_values being a list
    name_options(config)
    behaviors = config.get("behaviors")
    # Each behavior, and each key of default_settings, may be an option; the sections as a whole may not.
    if is_option(behaviors):
        raise SweepError("behaviors as a whole cannot be an option", f"{where}: behaviors.{OPTION_KEY}",
                         "put opt_values on a behavior or on the keys inside it")
    if is_option(config.get("default_settings")):
        raise SweepError("default_settings as a whole cannot be an option", f"{where}: default_settings.{OPTION_KEY}",
                         "put opt_values on the keys inside it, e.g. trainer_type: {opt_values: [ppo, sac]}")
    if not isinstance(behaviors, dict) or not behaviors:
        raise SweepError("the config has no behaviors", where, "add a behaviors: section naming at least one behavior")
    for name, body in behaviors.items():
        if not isinstance(body, dict):
            raise SweepError(f"behavior {name!r} is not a mapping", where, "give each behavior its settings as a mapping")
        if is_range(body):
            raise SweepError(f"behavior {name!r} is a range of numbers", f"{where}: behaviors.{name}.{RANGE_KEY}",
                             "put opt_range on a number inside the behavior, e.g. learning_rate")
        if is_option(body) and not all(isinstance(value, dict) for value in body[OPTION_KEY]):
            raise SweepError(f"behavior {name!r} is an option whose values are not all mappings",
                             f"{where}: behaviors.{name}.{OPTION_KEY}", "list the behavior's settings as a mapping per option")
        if is_option(body) and contains_option(config.get("default_settings")):
            # Whether a default option applied would depend on which of the behavior's values is chosen.
            raise SweepError(f"behavior {name!r} is an option as a whole, so default_settings' options cannot apply to it",
                             f"{where}: behaviors.{name}.{OPTION_KEY}",
                             "put the options on keys inside the behavior, or inside its option values")
    if config.get("default_settings") is not None and not isinstance(config["default_settings"], dict):
        raise SweepError("default_settings is not a mapping", where, "give default_settings as a mapping")
    check_sweep_sections(config, where)
    return config


def check_sweep_sections(config: Mapping[str, Any], where: str) -> None:
    """The settings the sweep itself reads (ports, run id, results folder) must be values it can use."""
    for section in ("checkpoint_settings", "env_settings"):
        body = config.get(section)
        if body is not None and not isinstance(body, dict):
            raise SweepError(f"{section} is not a mapping", f"{where}: {section}", f"give {section} as a mapping")
    checkpoint = config.get("checkpoint_settings") or {}
    env_settings = config.get("env_settings") or {}
    owned = [("checkpoint_settings", key, "--" + key.replace("_", "-")) for key in ("run_id", "results_dir", "resume", "force")]
    owned.append(("env_settings", "base_port", "--base-port"))
    for section, key, flag in owned:
        body = checkpoint if section == "checkpoint_settings" else env_settings
        if is_option(body.get(key)):
            raise SweepError(f"{section}.{key} cannot be an option: the sweep sets it for every run",
                             f"{where}: {section}.{key}.{OPTION_KEY}", f"give one value, or pass {flag}")
    run_id = checkpoint.get("run_id")
    if run_id is not None and (isinstance(run_id, bool) or not isinstance(run_id, (str, int))):
        raise SweepError(f"checkpoint_settings.run_id is not a name: {cut(flow(run_id))}", f"{where}: checkpoint_settings.run_id",
                         "write it as a plain name, e.g. run_id: 3DBall")
    results_dir = checkpoint.get("results_dir")
    if results_dir is not None and not isinstance(results_dir, str):
        raise SweepError(f"checkpoint_settings.results_dir is not a folder name: {cut(flow(results_dir))}",
                         f"{where}: checkpoint_settings.results_dir", "write it as a path, e.g. results_dir: results")
    for key in SWEEP_LEVEL_CHECKPOINT_KEYS:
        if checkpoint.get(key) is not None and not isinstance(checkpoint[key], bool):
            raise SweepError(f"checkpoint_settings.{key} is not true or false: {cut(flow(checkpoint[key]))}",
                             f"{where}: checkpoint_settings.{key}", f"write {key}: true, or pass --{key}")
    base_port = env_settings.get("base_port")
    if base_port is not None and (isinstance(base_port, bool) or not isinstance(base_port, int) or not 1 <= base_port <= 65535):
        raise SweepError(f"env_settings.base_port is not a port: {cut(flow(base_port))}", f"{where}: env_settings.base_port",
                         "write a whole number from 1 to 65535, e.g. base_port: 5005")
    env_path = env_settings.get("env_path")
    for value in (env_path[OPTION_KEY] if is_option(env_path) and not is_range(env_path) else [env_path]):
        if value is not None and not isinstance(value, str):
            raise SweepError(f"env_settings.env_path is not a path: {cut(flow(value))}", f"{where}: env_settings.env_path",
                             "write the path of the Unity build, e.g. env_path: Builds/3DBall")


def name_options(node: Any) -> None:
    """opt_values given as a mapping of label to value become a list, their labels kept beside it."""
    if is_option(node):
        if isinstance(node.get(OPTION_KEY), dict):
            node[LABELS_KEY] = [str(label) for label in node[OPTION_KEY]]
            node[OPTION_KEY] = list(node[OPTION_KEY].values())
    elif isinstance(node, dict):
        for value in node.values():
            name_options(value)
    elif isinstance(node, list):
        for item in node:
            name_options(item)


def is_option(node: Any) -> bool:
    """True for a mapping that holds opt_values or opt_range: an option, not a value."""
    return isinstance(node, dict) and (OPTION_KEY in node or RANGE_KEY in node)


def is_range(node: Any) -> bool:
    return isinstance(node, dict) and RANGE_KEY in node


def dotted(path: Sequence[str | int]) -> str:
    """A path of keys as config_info.txt and error messages write it: a.b.0.c."""
    return ".".join(str(key) for key in path)


def check_options(node: Any, path: tuple[str | int, ...], where: str) -> None:
    """Reject malformed opt_* keys anywhere in the config, naming where they are."""
    if isinstance(node, list):
        for index, item in enumerate(node):
            check_options(item, path + (index,), where)
        return
    if not isinstance(node, dict):
        return
    if RANGE_KEY in node:
        parse_range(node, f"{where}: {dotted(path + (RANGE_KEY,))}")
        return
    if OPTION_KEY in node:
        place = f"{where}: {dotted(path + (OPTION_KEY,))}"
        extra = sorted(str(key) for key in node if key != OPTION_KEY)
        if extra:
            raise SweepError(f"opt_values has other keys beside it: {', '.join(extra)}", place,
                             "put opt_values alone in its mapping, e.g. beta: {opt_values: [0.001, 0.002]}")
        values = node[OPTION_KEY]
        if not isinstance(values, (list, dict)):
            raise SweepError("opt_values is not a list", place, "write the options as a list, e.g. opt_values: [0.1, 0.2], "
                             "or as labels and values, e.g. opt_values: {fast: 3.0e-3, slow: 1.0e-5}")
        if not values:
            raise SweepError("opt_values is empty", place, "list at least one value")
        if isinstance(values, dict):
            labels = [str(label) for label in values]
            if any(not label.strip() or "\n" in label for label in labels) or len(set(labels)) < len(labels):
                raise SweepError("opt_values labels must be distinct one-line names", place,
                                 "e.g. opt_values: {ppo: {trainer_type: ppo}, sac: {trainer_type: sac}}")
            values = list(values.values())
        for value in values:
            if contains_opt_key(value):
                raise SweepError("opt_values inside opt_values", place, "options cannot be nested; list plain values")
        return
    for key, value in node.items():
        if isinstance(key, str) and key.startswith("opt_"):
            is_stop_place = key == STOP_KEY and (
                (len(path) == 2 and path[0] == "behaviors") or path == ("default_settings",))
            if not is_stop_place:
                if key == STOP_KEY:
                    raise SweepError("opt_stop is not directly under a behavior or default_settings",
                                     f"{where}: {dotted(path + (key,))}", "move it under behaviors.<Behavior> or default_settings")
                raise SweepError(f"unknown key {key}", f"{where}: {dotted(path + (key,))}", "use opt_values, opt_range or opt_stop")
            continue
        check_options(value, path + (key,), where)


def parse_range(node: Mapping[Any, Any], place: str) -> Range:
    """An opt_range mapping, checked: two numbers, low below high, log only above 0, a step that fits."""
    example = "e.g. learning_rate: {opt_range: [1.0e-5, 1.0e-2], log: true}"
    extra = sorted(str(key) for key in node if key != RANGE_KEY and key not in RANGE_FIELDS)
    if OPTION_KEY in node:
        raise SweepError("opt_values and opt_range in one mapping", place, "give either a list of values or a range")
    if extra:
        raise SweepError(f"opt_range has other keys beside it: {', '.join(extra)}", place, f"only log and step may stand beside it, {example}")
    bounds = node[RANGE_KEY]
    if not (isinstance(bounds, list) and len(bounds) == 2 and all(finite_number(bound) for bound in bounds)):
        raise SweepError(f"opt_range is not two numbers: {cut(flow(bounds))}", place, f"give [low, high], {example}")
    low, high = bounds
    integer = all(isinstance(bound, int) for bound in bounds)
    if low >= high:
        raise SweepError(f"opt_range's low {low!r} is not below its high {high!r}", place, "give [low, high] with low < high")
    log, step = node.get("log", False), node.get("step")
    if not isinstance(log, bool):
        raise SweepError(f"opt_range's log is not true or false: {cut(flow(log))}", place, "write log: true for a log scale")
    if log and low <= 0:
        raise SweepError(f"opt_range on a log scale must be above 0, not from {low!r}", place, "raise low above 0, or drop log: true")
    if step is not None:
        if log:
            raise SweepError("opt_range takes log or step, not both", place,
                             "drop one: a log scale has no steps of one size (Optuna refuses the pair too)")
        if not finite_number(step) or step <= 0 or (integer and not isinstance(step, int)):
            kind = "a whole number" if integer else "a number"
            raise SweepError(f"opt_range's step is not {kind} above 0: {cut(flow(step))}", place, "e.g. step: 32")
        steps = (high - low) / step
        if abs(steps - round(steps)) > 1e-9 * max(1.0, steps) or round(steps) < 1:
            raise SweepError(f"opt_range's step {step!r} does not fit from {low!r} to {high!r}", place,
                             "give a step that divides high - low, e.g. opt_range: [32, 512], step: 32")
    return Range(float(low), float(high), integer, log, None if step is None else float(step))


def contains_option(node: Any) -> bool:
    """True if an option stands anywhere below node (opt_stop aside)."""
    if is_option(node):
        return True
    if isinstance(node, dict):
        return any(contains_option(value) for key, value in node.items() if key != STOP_KEY)
    if isinstance(node, list):
        return any(contains_option(item) for item in node)
    return False


def contains_opt_key(node: Any) -> bool:
    """True if any opt_* key stands anywhere below node."""
    if isinstance(node, dict):
        return any((isinstance(k, str) and k.startswith("opt_")) or contains_opt_key(v) for k, v in node.items())
    if isinstance(node, list):
        return any(contains_opt_key(item) for item in node)
    return False


def find_options(node: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], tuple[Any, ...],
                                                                               tuple[str | None, ...], Range | None]]:
    """Yield (path, values, labels, range) of every option below node, in document order."""
    if is_range(node):
        yield path, (), (), parse_range(node, dotted(path))
    elif is_option(node):
        yield path, tuple(node[OPTION_KEY]), tuple(node.get(LABELS_KEY, ())), None
    elif isinstance(node, dict):
        for key, value in node.items():
            if key != STOP_KEY:
                yield from find_options(value, path + (key,))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from find_options(item, path + (index,))


def merge_settings(defaults: Any, own: Any) -> Any:
    """A behavior's effective settings, as mlagents-learn merges default_settings.

    Mappings merge key by key and the behavior's value wins; an option is a
    value, so it replaces (and is replaced) whole rather than merging.
    """
    if isinstance(defaults, dict) and isinstance(own, dict) and not is_option(defaults) and not is_option(own):
        merged = dict(defaults)
        for key, value in own.items():
            merged[key] = merge_settings(defaults[key], value) if key in defaults else value
        return merged
    return own


def plan_options(config: Mapping[str, Any]) -> list[Option]:
    """Every option of the sweep in product order: behaviors first, then other sections."""
    defaults = config.get("default_settings") or {}
    options: list[Option] = []
    for name, own in config["behaviors"].items():
        effective = merge_settings(defaults, own)
        options += [Option(str(name), path, values, True, names, name, domain)
                    for path, values, names, domain in find_options(effective)]
    for section, body in config.items():
        if section in ("behaviors", "default_settings"):
            continue
        options += [Option(str(section), path, values, False, names, section, domain)
                    for path, values, names, domain in find_options(body, ())]
    return options


def option_labels(options: Sequence[Option]) -> list[str]:
    """The name config_info.txt gives each option: its key, or its dotted path if ambiguous."""
    # One count per (heading, key), so a grid of 20,000 options is labelled in one pass.
    keys = Counter((option.heading, option.path[-1]) for option in options if option.path)
    labels = []
    for option in options:
        if not option.path:
            labels.append(option.heading)  # the whole behavior or section is the option
        else:
            labels.append(str(option.path[-1]) if keys[(option.heading, option.path[-1])] == 1 else dotted(option.path))
    return labels


def count_runs(options: Sequence[Option], repetitions: int = 1) -> int:
    """How many runs the options make: the product of their value counts, times the repetitions."""
    return math.prod(len(option.values) for option in options) * repetitions


def copy_tree(node: Any) -> Any:
    """A deep copy of YAML data (mappings, lists, immutable scalars), faster than deepcopy."""
    if isinstance(node, dict):
        return {key: copy_tree(value) for key, value in node.items()}
    if isinstance(node, list):
        return [copy_tree(item) for item in node]
    return node


def strip_sweep_keys(node: Any) -> Any:
    """A copy of config data with opt_stop and default_settings' options taken out."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == STOP_KEY or is_option(value) or (isinstance(value, list) and contains_option(value)):
                continue  # each behavior gets it instead (a list goes whole: lists do not merge)
            value = strip_sweep_keys(value)
            if value == {} and node[key] != {}:
                continue  # a mapping that held only options: mlagents wants none rather than an empty one
            out[key] = value
        return out
    if isinstance(node, list):
        return [strip_sweep_keys(item) for item in node]
    return node


def set_path(root: dict[str, Any], path: Sequence[str | int], value: Any) -> None:
    """Put an option's value where the option stands in a run's config."""
    node: Any = root
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = copy_tree(value)


def behavior_template(defaults: Mapping[str, Any], own: Any) -> Any:
    """A behavior's settings, holding default_settings' options where the runs' values go.

    A top-level key of default_settings that holds an option is written into the
    behavior merged with the behavior's own value, as mlagents-learn would merge
    it, so each behavior gets its own value of the option (lists included).
    """
    if is_option(own):
        return copy_tree(own)
    out = {key: copy_tree(value) for key, value in own.items() if key != STOP_KEY}
    for key, value in defaults.items():
        if key != STOP_KEY and contains_option(value):
            out[key] = copy_tree(merge_settings(value, own[key]) if key in own else value)
    return out


def config_template(config: Mapping[str, Any]) -> dict[str, Any]:
    """The part of every run's config that no option changes, with the options in their places."""
    defaults = config.get("default_settings") or {}
    template: dict[str, Any] = {}
    for section, body in config.items():
        if section == "default_settings":
            body = strip_sweep_keys(body)
        elif section == "behaviors":
            body = {name: behavior_template(defaults, own) for name, own in body.items()}
        elif section == "checkpoint_settings" and isinstance(body, dict):
            # resume and force are the sweep's: left in a run's config, every fresh run would be
            # told to resume ("Previous data from this run ID was not found").
            body = {key: value for key, value in body.items() if key not in SWEEP_LEVEL_CHECKPOINT_KEYS}
            if not body:
                continue
        template[section] = copy_tree(body)
    return template


def parse_stop_rules(config: Mapping[str, Any], where: str = "config") -> list[StopRule]:
    """Every behavior's stop conditions; a behavior's own opt_stop replaces default_settings'."""
    defaults = (config.get("default_settings") or {}).get(STOP_KEY)
    rules: list[StopRule] = []
    for name, own in config["behaviors"].items():
        if STOP_KEY in own:
            spec, place = own[STOP_KEY], f"behaviors.{name}.{STOP_KEY}"
        elif defaults is not None:
            spec, place = defaults, f"default_settings.{STOP_KEY}"
        else:
            continue
        items = spec if isinstance(spec, list) else [spec]
        if not items:
            raise SweepError("opt_stop is an empty list", f"{where}: {place}", "give at least one condition or remove opt_stop")
        rules += [parse_stop_rule(str(name), item, f"{where}: {place}") for item in items]
    kinds = sorted({rule.rule for rule in rules if RULE_KINDS[rule.rule].schedules})
    if len(kinds) > 1:
        raise SweepError(f"opt_stop asks for both rule: {kinds[0]} and rule: {kinds[1]}, and a run follows one schedule",
                         where, "keep one of them")
    halving = {(rule.step, rule.factor, rule.mode) for rule in rules if rule.rule == "halving"}
    if len(halving) > 1:
        # A run pauses as a whole: its behaviors' rungs must be the same ones.
        raise SweepError("the halving rules of the behaviors differ in step, factor or mode", where,
                         "give every behavior's rule: halving the same step, factor and mode")
    pbt = {(rule.interval, rule.quantile, rule.perturb, rule.resample, rule.mode) for rule in rules if rule.rule == "pbt"}
    if len(pbt) > 1:
        # A population is compared as a whole: at the same intervals, by one rule.
        raise SweepError("the pbt rules of the behaviors differ in interval, quantile, perturb, resample or mode", where,
                         "give every behavior's rule: pbt the same settings")
    return rules


def finite_number(value: Any) -> bool:
    """True for an int or float that is a finite number (a 400-digit int is not: it has no float)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def shown(value: Any) -> str:
    """A value as an error message quotes it: its repr, cut short."""
    return cut(repr(value))


def cut(text: str, width: int = 40) -> str:
    """Text cut short for a one-line message: a 400-digit number shows 40 digits and ..."""
    return text if len(text) <= width else text[:width] + "..."


def parse_stop_rule(behavior: str, spec: Any, where: str) -> StopRule:
    """One opt_stop mapping, checked field by field against its kind in RULE_KINDS."""
    if not isinstance(spec, dict):
        raise SweepError("opt_stop is not a mapping", where, "write it as {tag: ..., step: ..., min: ...}")
    every_field = {"tag", "step", "rule"}.union(*(kind.fields for kind in RULE_KINDS.values()))
    unknown = sorted(str(key) for key in spec if key not in every_field)
    if unknown:
        raise SweepError(f"unknown opt_stop field {unknown[0]}", where, f"use only {', '.join(sorted(every_field))}")
    tag = spec.get("tag")
    if tag is not None and not isinstance(tag, str):
        raise SweepError(f"opt_stop tag is not a name: {shown(tag)}", where, "quote it, e.g. tag: 'Environment/Cumulative Reward'")
    if not tag:
        raise SweepError("opt_stop has no tag", where, "name the TensorBoard scalar, e.g. tag: Environment/Cumulative Reward")
    name = spec.get("rule", "threshold")
    kind = RULE_KINDS.get(name) if isinstance(name, str) else None
    if kind is None:
        choices = ", ".join(f"rule: {rule}" for rule in RULE_KINDS if rule != "threshold")
        raise SweepError(f"unknown opt_stop rule {name!r}", where, f"use {choices}, or leave rule out for min/max")
    for key in ("step", "min", "max", "factor", "interval", "quantile", "resample"):
        value = spec.get(key)
        if value is not None and not finite_number(value):
            raise SweepError(f"opt_stop {key} is not a number: {shown(value)}", where, f"write {key} as a number")
    foreign = sorted(key for key in spec if key not in kind.fields | {"tag", "step", "rule"})
    if foreign:
        takes = ", ".join(sorted(kind.fields)) or "no other field"
        raise SweepError(f"opt_stop field {foreign[0]} does not belong to rule: {name}", where,
                         f"rule: {name} takes tag, step and {takes}")
    mode = spec.get("mode", "max")
    if mode not in STOP_MODES:
        raise SweepError(f"opt_stop mode {mode!r} is neither max nor min", where, "mode: max when higher is better, min when lower is")
    min_runs = spec.get("min_runs", DEFAULT_MEDIAN_MIN_RUNS)
    if isinstance(min_runs, bool) or not isinstance(min_runs, int) or min_runs < 1:
        raise SweepError(f"opt_stop min_runs is not a whole number of at least 1: {shown(min_runs)}", where, "e.g. min_runs: 3")
    perturb = spec.get("perturb", list(DEFAULT_PBT_PERTURB))
    if not isinstance(perturb, list) or not perturb or not all(finite_number(factor) and factor > 0 for factor in perturb):
        raise SweepError(f"opt_stop perturb is not a list of factors above 0: {shown(perturb)}", where,
                         "e.g. perturb: [0.8, 1.2]")
    rule = StopRule(behavior, tag, spec.get("step") or 0, spec.get("min"), spec.get("max"), name, min_runs, mode,
                    spec.get("factor", DEFAULT_HALVING_FACTOR), spec.get("interval", DEFAULT_PBT_INTERVAL),
                    spec.get("quantile", DEFAULT_PBT_QUANTILE), tuple(float(factor) for factor in perturb),
                    spec.get("resample", DEFAULT_PBT_RESAMPLE))
    kind.validate(rule, where)
    return rule


SEED_PATH = ("env_settings", "seed")  # where a run's seed is in an ML-Agents config
SEED_LIMIT = 2**31  # seeds are below this: what numpy and torch take from ML-Agents


def run_seed(base: int, repetition: int) -> int:
    """The seed of a run of the given repetition in a sweep seeded with base (--seed, else drawn once and recorded).

    Repetition 1 trains with base itself, as one mlagents-learn --seed run would; each later repetition has
    a seed of its own derived from base and its number, the same on every rerun. Every combination of a
    repetition shares its seed, as RL papers train every setting on the same seeds: what differs between
    two runs of a lap is their settings, not their seed.
    """
    if repetition == 1:
        return base
    return seeded(base, repetition).randrange(SEED_LIMIT)


def fresh_seeds(base: int, after: int, used: Iterable[int], count: int) -> list[int]:
    """count seeds of the repetitions after `after`, none of them one of `used` (a confirmation's: seeds the
    search never trained on)."""
    taken, seeds, repetition = set(used), [], after
    while len(seeds) < count:
        repetition += 1
        seed = run_seed(base, repetition)
        if seed not in taken:
            taken.add(seed)
            seeds.append(seed)
    return seeds


class SweepPlan:
    """What the config says of every run: its options and their labels, the stop rules, and the part of
    the config every run shares. A run's complete config is made from a spec of its values (make_run); the
    grid is the specs of every combination (grid)."""

    def __init__(self, config: Mapping[str, Any], run_id: str, where: str = "config") -> None:
        self.run_id, self.where = run_id, where
        self.options = plan_options(config)
        self.labels = option_labels(self.options)
        self.stop_rules = parse_stop_rules(config, where)
        self.template = config_template(config)
        self.behaviors = [str(name) for name in config["behaviors"]]
        # A config that makes the seed an option trains each run on its value; a sweep seeds the others.
        self.seed_option = next((index for index, option in enumerate(self.options)
                                 if not option.in_behavior and (option.key, *option.path) == SEED_PATH), None)
        self.seed: int | None = None  # the sweep's seed (Settings.seed), once it is known: runs' seeds derive from it

    def seed_of(self, values: Sequence[Any], repetition: int) -> int | None:
        """A run's seed: its seed option's value, else derived from the sweep's seed (None: not known yet)."""
        if self.seed_option is not None:
            value = values[self.seed_option]
            return value if isinstance(value, int) and not isinstance(value, bool) else None
        return None if self.seed is None else run_seed(self.seed, repetition)

    @property
    def sampled(self) -> bool:
        """True if an option is a range: only a search that samples can take it."""
        return any(option.range is not None for option in self.options)

    def param_names(self) -> list[str]:
        """Each option's name as a search and its results know it (as Run.value_names gives it)."""
        return qualified_names([(option.heading, label) for option, label in zip(self.options, self.labels)])

    def spec(self, values: Sequence[Any], index: int) -> RunSpec:
        """The spec of a trial with one value per option (a list option's value is one of its values)."""
        names = []
        for option, value in zip(self.options, values):
            names.append(option.names[option.values.index(value)] if option.names else None)
        return RunSpec(tuple((option.heading, label, value) for option, label, value in zip(self.options, self.labels, values)),
                       tuple(names), 1, index, self.seed_of(values, 1))

    def probes(self) -> list[RunSpec]:
        """Trials that take every value of every list and both ends of every range at least once: what a search's
        runs are checked by before any is proposed (ML-Agents' parser, ports, ids)."""
        ends = [option.values if option.range is None else (range_value(option.range, option.range.low),
                                                            range_value(option.range, option.range.high))
                for option in self.options]
        count = max((len(each) for each in ends), default=1)
        return [self.spec([each[k % len(each)] for each in ends], k) for k in range(count)]

    def grid(self, repetitions: int = 1, max_runs: int = DEFAULT_MAX_RUNS) -> list[RunSpec]:
        """The cartesian product of the options, in laps of repetitions; run n is <run-id>-n."""
        ranged = next((label for option, label in zip(self.options, self.labels) if option.range is not None), None)
        if ranged is not None:
            raise SweepError(f"{ranged} is a range, and a grid takes lists only", self.where,
                             "pass --search random or --search tpe (with --num-trials N) to sample it, or give opt_values")
        total = count_runs(self.options, repetitions)
        if total > max_runs:
            raise SweepError(f"the sweep has {total} runs, more than --max-runs {max_runs}", self.where,
                             f"remove options, or pass --max-runs {total} if you mean it")
        combos = list(itertools.product(*(range(len(option.values)) for option in self.options)))
        specs = []
        for index in range(total):
            repetition, combo = divmod(index, len(combos))
            chosen = list(zip(self.options, self.labels, combos[combo]))
            values = [option.values[which] for option, _, which in chosen]
            specs.append(RunSpec(tuple((option.heading, label, value) for (option, label, _), value in zip(chosen, values)),
                                 tuple(option.names[which] if option.names else None for option, _, which in chosen),
                                 repetition + 1, index, self.seed_of(values, repetition + 1)))
        return specs

    def make_run(self, spec: RunSpec) -> Run:
        """The run a spec describes, with its complete config; ValueError if its values are not this config's options."""
        if len(spec.values) != len(self.options) or any(
                (heading, label) != (option.heading, own) for (heading, label, _), option, own
                in zip(spec.values, self.options, self.labels)):
            raise ValueError("values are not the config's options")
        config = copy_tree(self.template)
        for option, (_, _, value) in zip(self.options, spec.values):
            # The heading is part of the path: a whole behavior or section may be one option.
            set_path(config["behaviors"] if option.in_behavior else config, (option.key, *option.path), value)
        if spec.seed is not None:
            if not isinstance(config.get("env_settings"), dict):
                config["env_settings"] = {}
            set_path(config, SEED_PATH, spec.seed)
        # A confirmation run trains to max_steps: no rule of the search judges it.
        run = Run(spec.index, f"{self.run_id}-{spec.index}", config, list(spec.values), spec.repetition,
                  [] if spec.confirms else self.stop_rules, instances_per_run(config, self.where), list(self.behaviors),
                  horizons(config, self.where), list(spec.names), spec.seed, spec.origin, spec.confirms)
        return run


# What a checkpoint fixes, found in mlagents 1.1.0's source: what makes the networks' shape or kind (a checkpoint
# of another shape loads partly, with a warning only: TorchModelSaver loads with strict=False and takes a size
# mismatch as a warning), and SAC's init_entcoef, read once to make the entropy coefficient, which is learned and
# restored from the checkpoint. Everything else is read from the config at every launch: the learning rate,
# beta and epsilon are set from it at every update (ppo/optimizer_torch.py), so a resumed run trains with new ones.
NETWORK_SHAPE = ("hidden_units", "num_layers", "normalize", "vis_encode_type", "memory", "goal_conditioning_type")
SIGNAL_SHAPE = ("network_settings", "encoding_size", "use_actions", "use_vail")


def checkpoint_fixed(behavior: Any) -> dict[str, str]:
    """A behavior's settings that a checkpoint fixes (see NETWORK_SHAPE), by dotted name, as YAML text."""
    behavior = behavior if isinstance(behavior, dict) else {}

    def section(node: Any, key: str) -> dict[str, Any]:
        found = node.get(key) if isinstance(node, dict) else None
        return found if isinstance(found, dict) else {}

    network, hyperparameters, signals = (section(behavior, key) for key in ("network_settings", "hyperparameters",
                                                                             "reward_signals"))
    fixed: dict[str, Any] = {"trainer_type": behavior.get("trainer_type", "ppo"), "reward_signals": sorted(map(str, signals)),
                             "self_play": behavior.get("self_play") is not None}
    fixed.update({f"network_settings.{key}": network.get(key) for key in NETWORK_SHAPE})
    fixed.update({f"hyperparameters.{key}": hyperparameters.get(key) for key in ("shared_critic", "init_entcoef")})
    for name in signals:
        fixed.update({f"reward_signals.{name}.{key}": section(signals, name).get(key) for key in SIGNAL_SHAPE})
    return {name: flow(value) for name, value in fixed.items()}


def check_pbt_options(plan: "SweepPlan") -> None:
    """rule: pbt changes a run's values from a checkpoint: an option that changes what a checkpoint fixes (the
    network's shape or kind) cannot be explored, nor max_steps (the population is compared at the same steps)."""
    if not any(rule.rule == "pbt" for rule in plan.stop_rules):
        return
    base = list(plan.probes()[0].values)
    for number, (option, name) in enumerate(zip(plan.options, plan.param_names())):
        candidates = option.values if option.range is None else (option.range.low, option.range.high)
        seen: dict[str, dict[str, str]] = {}
        for value in candidates:
            values = [*base[:number], (base[number][0], base[number][1], value), *base[number + 1:]]
            run = plan.make_run(RunSpec(tuple(values), (None,) * len(values)))
            for behavior in run.behaviors:
                shape = checkpoint_fixed(run.config["behaviors"].get(behavior))
                shape["max_steps"] = f"{run.horizons.get(behavior, (0, 0))[0]:g}"
                first = seen.setdefault(behavior, shape)
                changed = next((key for key in shape if shape[key] != first[key]), None)
                if changed == "max_steps":
                    raise SweepError(f"{name} changes max_steps, and rule: pbt compares its population at the same steps "
                                     "to the same end", plan.where, "give max_steps one value in a pbt sweep")
                if changed is not None:
                    raise SweepError(f"{name} changes {changed}, which a checkpoint fixes (the network's shape or kind): "
                                     "rule: pbt cannot explore it from a checkpoint", plan.where,
                                     f"give {name} one value, or sweep it with a grid or rule: halving instead")


def expand(config: Mapping[str, Any], run_id: str, repetitions: int = 1,
           max_runs: int = DEFAULT_MAX_RUNS, where: str = "config") -> list[Run]:
    """Expand a checked config into its runs: the cartesian product of its options, in laps."""
    plan = SweepPlan(config, run_id, where)
    return [plan.make_run(spec) for spec in plan.grid(repetitions, max_runs)]


def horizons(config: Mapping[str, Any], where: str = "config") -> dict[str, tuple[float, float]]:
    """Each behavior's max_steps and summary_freq, as mlagents-learn reads them (defaults included)."""
    defaults = config.get("default_settings") or {}
    found = {}
    for name, own in config["behaviors"].items():
        merged = merge_settings(defaults, own) if isinstance(own, dict) else {}
        found[str(name)] = (steps_setting(merged, "max_steps", MLAGENTS_MAX_STEPS, f"{where}: behaviors.{name}"),
                            steps_setting(merged, "summary_freq", MLAGENTS_SUMMARY_FREQ, f"{where}: behaviors.{name}"))
    return found


def steps_setting(settings: Mapping[str, Any], key: str, default: float, where: str) -> float:
    """A behavior's max_steps or summary_freq as a number; mlagents-learn takes 5.0e5 and '500000' too."""
    value = settings.get(key)
    if value is None:
        return default
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError, OverflowError):
        number = math.nan
    if not 0 < number <= MAX_STEPS_LIMIT:  # nan and inf fail too
        raise SweepError(f"{key} is not a number of steps: {cut(flow(value))}", f"{where}.{key}",
                         f"write a whole number from 1 to {MAX_STEPS_LIMIT:.0e}, e.g. {key}: {int(default)}")
    return number


def instances_per_run(config: Mapping[str, Any], where: str) -> int:
    """How many Unity instances (so ports) one run starts: env_settings.num_envs."""
    env_settings = config.get("env_settings") or {}
    count = env_settings.get("num_envs", 1) if isinstance(env_settings, dict) else 1
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 1024:
        raise SweepError(f"env_settings.num_envs is not a whole number from 1 to 1024: {cut(flow(count))}",
                         f"{where}: env_settings.num_envs", "e.g. num_envs: 1")
    return count


def flow(value: Any) -> str:
    """A value as a one-line YAML flow scalar, as config_info.txt writes it."""
    if isinstance(value, (str, int, float, type(None))):
        return _flow_scalar(type(value), value)  # type: ignore[arg-type]  # a grid repeats few values many times
    return _flow_any(value)


@functools.lru_cache(maxsize=4096)
def _flow_scalar(kind: type, value: Any) -> str:  # kind keeps True apart from 1 in the cache
    return _flow_any(value)


def _flow_any(value: Any) -> str:
    return yaml.dump([value], Dumper=_YamlDumper, default_flow_style=True, sort_keys=False, width=1 << 30)[1:-2]


def render_config_info(runs: Sequence[Run], repetitions: int = 1) -> str:
    """config_info.txt: one block per run, its values under their behavior or section."""
    blocks = []
    for run in runs:
        lines = [run.run_id]
        if run.confirms:
            lines.append("- confirmation: its combination trained again on a seed the search never used")
        elif repetitions > 1:
            lines.append(f"- repetition {run.repetition} of {repetitions}")
        if run.seed is not None:
            lines.append(f"- seed {run.seed}")
        if not run.values:
            for behavior in run.behaviors:
                lines += [f"- {behavior}", "  - no value options"]
        heading = None
        names = run.names or [None] * len(run.values)
        for (value_heading, label, value), name in zip(run.values, names):
            if value_heading != heading:
                heading = value_heading
                lines.append(f"- {heading}")
            lines.append(f"  - {label}: {flow(value) if name is None else f'{name} = {flow(value)}'}")
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def dump_config(config: Mapping[str, Any]) -> str:
    """A run's config as YAML, keys in the source's order."""
    return yaml.dump(dict(config), Dumper=_YamlDumper, sort_keys=False, default_flow_style=False, width=1 << 30)


def made_by(config_text: str, settings: Settings, runs: Sequence[Run]) -> dict[str, Any]:
    """What made the sweep: a resumed sweep must come from the same config, grid or search, and flags."""
    return {"config_sha256": hashlib.sha256(config_text.encode()).hexdigest(),
            "repetitions": settings.repetitions, "flags": list(settings.forwarded),
            "env_args": settings.env_args, "shuffle": settings.shuffle,
            "search": None if settings.search == "grid" else [settings.search, settings.num_trials, settings.search_seed],
            "seed": settings.seed, "runs": [[run.run_id, run.describe(whole=True)] for run in runs]}


def training_order(runs: Sequence[Run], seed: int | None) -> list[int]:
    """The order runs start in: the grid's, or shuffled with a seed within each lap of repetitions.

    Run ids stay the grid's. Shuffled, the runs a median rule compares a run
    with are no longer the grid's first ones.
    """
    order = list(range(len(runs)))
    if seed is None:
        return order
    import random

    # An order of training, not a secret.
    chooser = random.Random(seed)  # nosec B311
    laps: dict[int, list[int]] = {}
    for index in order:
        laps.setdefault(runs[index].repetition, []).append(index)
    shuffled: list[int] = []
    for lap in sorted(laps):
        chooser.shuffle(laps[lap])
        shuffled += laps[lap]
    return shuffled


def shuffle_flag(seed: Any) -> str:
    return "no --shuffle" if seed is None else f"--shuffle {seed}"


def sweep_changes(before: Mapping[str, Any], now: Mapping[str, Any]) -> str | None:
    """What differs between the sweep on disk and the one asked for now, or None."""
    if before.get("repetitions") != now["repetitions"]:
        return f"--num-repetitions was {before.get('repetitions')}, now {now['repetitions']}"
    old_search, new_search = before.get("search"), now["search"]
    # --num-trials may change: a resumed search's budget counts the trials proposed already.
    if (old_search or [None] * 3)[::2] != (new_search or [None] * 3)[::2]:
        def told(search: Any) -> str:
            return "a grid" if not search else f"--search {search[0]} --search-seed {search[2]}"
        return f"it was {told(old_search)}, now {told(new_search)}"
    # A sweep from before seeds were kept has none: its runs trained on seeds ML-Agents picked.
    if "seed" in before and before["seed"] != now["seed"]:
        return f"it was seeded with --seed {before['seed']}, now --seed {now['seed']}"
    if before.get("shuffle") != now["shuffle"]:
        return f"it was trained with {shuffle_flag(before.get('shuffle'))}, now {shuffle_flag(now['shuffle'])}"
    if before.get("flags") != now["flags"] or before.get("env_args") != now["env_args"]:
        old_flags = shlex.join(before.get("flags") or []) + (" --env-args ..." if before.get("env_args") is not None else "")
        return f"the mlagents-learn flags were '{old_flags}', now '{shlex.join(now['flags'])}'"
    old_runs, new_runs = [tuple(run) for run in before.get("runs", [])], [tuple(run) for run in now["runs"]]
    if len(old_runs) != len(new_runs):
        return f"the grid had {len(old_runs)} runs, now {len(new_runs)}"
    for (old_id, old_values), (new_id, new_values) in zip(old_runs, new_runs):
        if (old_id, old_values) != (new_id, new_values):
            return f"{old_id} was {cut(str(old_values), 80)}, now {new_id} is {cut(str(new_values), 80)}"
    if before.get("config_sha256") != now["config_sha256"]:
        return "the config file changed (the grid is the same, other settings are not)"
    return None


# Byte order marks of the encodings an editor may save YAML in, longest first (UTF-32's begin as UTF-16's do).
BYTE_ORDER_MARKS = ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"), (b"\xff\xfe", "UTF-16"),
                    (b"\xfe\xff", "UTF-16"))


def read_config_text(path: Path) -> str:
    """The config file's text, at most MAX_CONFIG_BYTES of it, or a SweepError that says why not."""
    try:
        # Without blocking: opening a FIFO for reading waits for a writer, for good.
        handle = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise SweepError("config file not found", str(path), "check the path of the config") from None
    except IsADirectoryError:
        raise SweepError("the config path is a folder", str(path), "pass the config file itself") from None
    except OSError as exc:
        raise SweepError(f"cannot read the config ({exc.__class__.__name__})", str(path), "check the file and its permissions") from None
    kind = os.fstat(handle).st_mode
    if not stat.S_ISREG(kind):
        os.close(handle)
        if stat.S_ISDIR(kind):
            raise SweepError("the config path is a folder", str(path), "pass the config file itself")
        what = "a pipe" if stat.S_ISFIFO(kind) else "a device" if stat.S_ISCHR(kind) or stat.S_ISBLK(kind) else "a socket"
        raise SweepError(f"the config is {what}, not a file", str(path), "pass the config file itself")
    with os.fdopen(handle, "rb") as reader:
        try:
            data = reader.read(MAX_CONFIG_BYTES + 1)
        except OSError as exc:
            raise SweepError(f"cannot read the config ({exc.__class__.__name__})", str(path),
                             "check the file and its permissions") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise SweepError(f"the config is larger than {MAX_CONFIG_BYTES >> 10} KiB", str(path),
                         "an ML-Agents config is a few KiB: check that this is the right file")
    encoding = next((name for mark, name in BYTE_ORDER_MARKS if data.startswith(mark)), None)
    if encoding is None and b"\x00" in data[:64]:
        encoding = "UTF-16"  # ASCII text saved as UTF-16 without a byte order mark: every other byte is 0
    if encoding is not None:
        raise SweepError(f"the config is {encoding} text, which mlagents-learn cannot read", str(path),
                         "save it as UTF-8 (in Notepad: Save As, Encoding UTF-8)")
    try:
        return data.decode("utf-8-sig")  # a UTF-8 byte order mark, as Windows editors write it, is fine
    except UnicodeDecodeError as exc:
        raise SweepError(f"the config is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})", str(path),
                         "save it as UTF-8") from None


# ---------------------------------------------------------------------------
# The search: which values a sampled trial takes (random, TPE)
# ---------------------------------------------------------------------------

SEARCHES = ("grid", "random", "tpe")
# A sampled number keeps this many significant digits: a config reads 0.0003162, not 0.00031622776601683794,
# and no run's result could tell the two apart.
SAMPLED_DIGITS = 4
# Of a TPE search's trials, the first ones are drawn at random (Optuna's n_startup_trials, 10 by default):
# a third of the budget, from 2 to 10, so a small budget still has trials TPE chose.
TPE_STARTUP_SHARE, TPE_STARTUP_MIN, TPE_STARTUP_MAX = 1 / 3, 2, 10
DRAWS_BEFORE_SCAN = 64  # a list-only space draws this many times for an untried point before it lists the rest


def range_value(domain: Range, value: float) -> int | float:
    """A value of a range as a run's config takes it: inside the range, on its step, an int for an integer
    range, a float kept to SAMPLED_DIGITS significant digits otherwise."""
    value = min(max(value, domain.low), domain.high)
    if domain.step is not None:
        value = domain.low + round((value - domain.low) / domain.step) * domain.step
        value = min(value, domain.high)
    if domain.integer:
        return int(round(value))
    if domain.step is not None:
        return float(f"{value:.12g}")  # 0.30000000000000004 is 0.3
    return min(max(float(f"{value:.{SAMPLED_DIGITS}g}"), domain.low), domain.high)


def draw(domain: Range, chooser: Any) -> int | float:
    """A value drawn uniformly from a range (on its log scale if it has one), with `chooser` a random.Random."""
    if domain.step is not None:
        return range_value(domain, domain.low + chooser.randint(0, round((domain.high - domain.low) / domain.step)) * domain.step)
    if domain.log:
        return range_value(domain, math.exp(chooser.uniform(math.log(domain.low), math.log(domain.high))))
    if domain.integer:
        return chooser.randint(int(domain.low), int(domain.high))
    return range_value(domain, chooser.uniform(domain.low, domain.high))


@dataclass(frozen=True)
class Trial:
    """What a sampler is told of a trial already proposed: its values (one per option) and how it fared."""

    values: tuple[Any, ...]
    state: str  # "complete" (trained to the end), "pruned" (ended or paused early), "running", "failed"
    value: float | None = None  # complete: its score
    reached: tuple[tuple[float, float], ...] = ()  # (step, its score there), by step


class Sampler(Protocol):
    """Draws the values of trial `number`, given every trial proposed before it; the same draw for the same
    number and trials (a resumed search proposes what the interrupted one would have)."""

    def sample(self, number: int, trials: Sequence[Trial]) -> tuple[Any, ...]: ...


def seeded(seed: int, number: int | str) -> Any:
    """The random source of number `number` of a seed (a search's trial, a sweep's repetition): from the seed and
    the number alone, never from what came before."""
    import random

    return random.Random(f"{seed}:{number}")  # nosec B311  # a search or a seed, not a secret


def distinct_places(option: Option) -> dict[str, int]:
    """A list option's distinct values, by their YAML text, each with its first place in the list: a value a
    list names twice is one point of the space."""
    places: dict[str, int] = {}
    for place, value in enumerate(option.values):
        places.setdefault(flow(value), place)
    return places


def point_of(options: Sequence[Option], values: Sequence[Any]) -> tuple[int, ...] | None:
    """Which value of each list option a trial took, by its first place (None if a value is not one of them)."""
    found = []
    for option, value in zip(options, values):
        place = distinct_places(option).get(flow(value))
        if place is None:
            return None
        found.append(place)
    return tuple(found)


class RandomSampler:
    """Every value drawn at random: from a range uniformly (on its log scale if it has one), from a list as
    one of its values. A space of lists only is a grid, and its points are drawn without repeating one."""

    def __init__(self, options: Sequence[Option], seed: int) -> None:
        self.options, self.seed = list(options), seed

    @property
    def grid_only(self) -> bool:
        return all(option.range is None for option in self.options)

    def sample(self, number: int, trials: Sequence[Trial]) -> tuple[Any, ...]:
        chooser = seeded(self.seed, number)
        if not self.grid_only:
            return tuple(draw(option.range, chooser) if option.range is not None else chooser.choice(option.values)
                         for option in self.options)
        return self.untried(chooser, trials)

    def untried(self, chooser: Any, trials: Sequence[Trial]) -> tuple[Any, ...]:
        """A point of the grid no trial has taken: drawn, and once draws keep hitting taken points, one of the
        untaken ones listed (the grid is then mostly taken, so small enough to list)."""
        taken = {point_of(self.options, trial.values) for trial in trials}
        firsts = [list(distinct_places(option).values()) for option in self.options]  # a value named twice is drawn once
        for _ in range(DRAWS_BEFORE_SCAN):
            point = tuple(chooser.choice(places) for places in firsts)
            if point not in taken:
                break
        else:
            left = [point for point in itertools.product(*firsts) if point not in taken]
            if not left:
                raise ValueError("every point of the grid is taken")
            point = chooser.choice(left)
        return tuple(option.values[which] for option, which in zip(self.options, point))


def import_optuna() -> Any:
    """Optuna, imported only for a search that needs it; one line says how to install it if it is missing."""
    try:
        import optuna
    except ImportError:
        raise SweepError("--search tpe needs Optuna, which this Python cannot import", "command line",
                         f"{Path(sys.executable).name} -m pip install optuna, or pass --search random") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


class OptunaSpace:
    """The sweep's options as Optuna's distributions, and values both ways. A list becomes a categorical of its
    values' texts (Optuna's choices are plain scalars; ours may be mappings), a range a float or int distribution."""

    def __init__(self, optuna: Any, options: Sequence[Option], names: Sequence[str]) -> None:
        self.optuna, self.options, self.names = optuna, list(options), list(names)
        distributions = optuna.distributions
        # A list's choices: its value's YAML text -> the choice, and back to the value.
        self.choices: list[dict[str, str]] = []
        self.chosen: list[dict[str, Any]] = []
        self.distributions: dict[str, Any] = {}
        for option, name in zip(self.options, self.names):
            if option.range is None:
                # One choice per distinct value, as people read it if that keeps them apart, else its whole YAML.
                places = distinct_places(option)
                texts = [shown_value(option.values[place], option.names[place] if option.names else None)
                         for place in places.values()]
                if len(set(texts)) < len(texts):
                    texts = list(places)
                self.choices.append(dict(zip(places, texts)))
                self.chosen.append({text: option.values[place] for text, place in zip(texts, places.values())})
                self.distributions[name] = distributions.CategoricalDistribution(texts)
            else:
                self.choices.append({})
                self.chosen.append({})
                domain = option.range
                kind = distributions.IntDistribution if domain.integer else distributions.FloatDistribution
                bounds = (int(domain.low), int(domain.high)) if domain.integer else (domain.low, domain.high)
                step = None if domain.step is None else int(domain.step) if domain.integer else domain.step
                self.distributions[name] = (kind(*bounds, log=domain.log, step=step) if step is not None
                                            else kind(*bounds, log=domain.log))

    def params(self, values: Sequence[Any]) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for option, name, choices, value in zip(self.options, self.names, self.choices, values):
            params[name] = choices[flow(value)] if option.range is None else value
        return params

    def values(self, params: Mapping[str, Any]) -> tuple[Any, ...]:
        found = []
        for option, name, chosen in zip(self.options, self.names, self.chosen):
            found.append(chosen[params[name]] if option.range is None else range_value(option.range, params[name]))
        return tuple(found)

    def study(self, direction: str, sampler: Any = None, storage: Any = None, name: str | None = None) -> Any:
        return self.optuna.create_study(direction=direction, sampler=sampler, storage=storage, study_name=name)

    def add(self, study: Any, trials: Sequence[Trial], run_ids: Sequence[str] = ()) -> None:
        """The trials into an Optuna study as their states: complete with its score, pruned with how far it got,
        running (the constant liar tells TPE not to propose near them again), failed; with run_ids, each
        trial says which run it is."""
        states = self.optuna.trial.TrialState
        for number, trial in enumerate(trials):
            state = {"complete": states.COMPLETE, "pruned": states.PRUNED, "running": states.RUNNING}.get(trial.state, states.FAIL)
            study.add_trial(self.optuna.trial.create_trial(
                params=self.params(trial.values), distributions=self.distributions, state=state,
                value=trial.value if state == states.COMPLETE else None,
                intermediate_values={int(step): value for step, value in trial.reached if math.isfinite(value)},
                user_attrs={"run_id": run_ids[number]} if run_ids else None))


class TpeSampler:
    """Optuna's TPE, told every trial so far (see OptunaSpace.add) and seeded per trial: the study is made
    again from the trials for each proposal, so a resumed search needs nothing but the run records. Trials
    proposed while others train use TPE's constant liar. A space of lists only never repeats a point: a
    repeated proposal is replaced by an untried point drawn at random."""

    def __init__(self, options: Sequence[Option], names: Sequence[str], seed: int, mode: str, budget: int) -> None:
        self.optuna = import_optuna()
        self.space = OptunaSpace(self.optuna, options, names)
        self.random = RandomSampler(options, seed)
        self.seed, self.direction = seed, "maximize" if mode == "max" else "minimize"
        self.startup = max(TPE_STARTUP_MIN, min(TPE_STARTUP_MAX, round(budget * TPE_STARTUP_SHARE)))

    def sample(self, number: int, trials: Sequence[Trial]) -> tuple[Any, ...]:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna's ExperimentalWarning for constant_liar, once per study
            sampler = self.optuna.samplers.TPESampler(seed=seeded(self.seed, number).randrange(2**31),
                                                      n_startup_trials=self.startup, constant_liar=True)
            study = self.space.study(self.direction, sampler)
            self.space.add(study, trials)
            values = self.space.values(study.ask(self.space.distributions).params)
        if self.random.grid_only and point_of(self.space.options, values) in {
                point_of(self.space.options, trial.values) for trial in trials}:
            return self.random.untried(seeded(self.seed, number), trials)
        return values


# ---------------------------------------------------------------------------
# Metrics: TensorBoard client, run names, stop rules, the watcher
# ---------------------------------------------------------------------------

Points = list[tuple[float, float]]  # (step, value), sorted by step
Served = list[tuple[float, float, float]]  # (wall time, step, value), as TensorBoard serves a run's points
Windows = tuple[tuple[float, float | None], ...]  # a run's sessions: (began, ended or None while it trains)


class TensorBoardDown(Exception):
    """TensorBoard did not answer, or answered something else; training goes on without it."""

    def __init__(self, why: str, nothing_there: bool = False) -> None:
        super().__init__(why)
        self.nothing_there = nothing_there  # the connection was refused: no server listens at the URL


class _DeadlineSocket(socket.socket):
    """A socket whose every read may take only what is left until one deadline.

    A plain timeout is per read: a server that sends a byte every few seconds
    never trips it. Re-arming the timeout from the deadline before each read
    bounds the whole request, headers included.
    """

    deadline = math.inf

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:  # type: ignore[override]
        self.settimeout(_time_left(self.deadline))
        return super().recv_into(buffer, nbytes, flags)


class _DeadlineSSLSocket(ssl.SSLSocket):
    deadline = math.inf

    def recv_into(self, buffer: Any, nbytes: int | None = None, flags: int = 0) -> int:  # type: ignore[override]
        self.settimeout(_time_left(self.deadline))
        return super().recv_into(buffer, nbytes, flags)  # type: ignore[arg-type]


def _time_left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("no answer within the poll's deadline")
    return left


class _DeadlineConnection(http.client.HTTPConnection):
    """http.client's connection over a _DeadlineSocket (and, for https, its TLS twin)."""

    def __init__(self, host: str, port: int | None, deadline: float, tls: bool) -> None:
        super().__init__(host, port or (443 if tls else 80))
        self.deadline, self.tls = deadline, tls

    def connect(self) -> None:
        error: OSError = OSError(f"cannot resolve {self.host}")
        for family, kind, proto, _, address in socket.getaddrinfo(self.host, self.port, 0, socket.SOCK_STREAM):
            sock = _DeadlineSocket(family, kind, proto)
            try:
                sock.settimeout(_time_left(self.deadline))
                sock.connect(address)
            except OSError as exc:
                sock.close()
                error = exc
                continue
            sock.deadline = self.deadline
            self.sock = sock
            if self.tls:
                context = ssl.create_default_context()
                context.sslsocket_class = _DeadlineSSLSocket
                wrapped = context.wrap_socket(sock, server_hostname=self.host)
                wrapped.deadline = self.deadline  # type: ignore[attr-defined]
                self.sock = wrapped
            return
        raise error


class TensorBoardClient:
    """The few calls of TensorBoard's HTTP API the sweep needs; requests go to url only (no proxy, no redirect)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        parts = urllib.parse.urlsplit(self.url)
        self.tls, self.host, self.port, self.prefix = parts.scheme == "https", parts.hostname or "", parts.port, parts.path

    def request(self, method: str, path: str, deadline: float, form: Sequence[tuple[str, str]] | None = None) -> Any:
        """One request, answered within the deadline with JSON, or TensorBoardDown."""
        connection = _DeadlineConnection(self.host, self.port, deadline, self.tls)
        try:
            body = urllib.parse.urlencode(form).encode() if form is not None else None
            headers = {"Content-Type": "application/x-www-form-urlencoded"} if body is not None else {}
            connection.request(method, self.prefix + path, body=body, headers=headers)
            reply = connection.getresponse()
            if reply.status != 200:
                moved = " (redirects are not followed)" if 300 <= reply.status < 400 else ""
                raise TensorBoardDown(f"HTTP {reply.status}{moved}")
            data = reply.read(MAX_ANSWER_BYTES + 1)
        except ConnectionRefusedError:
            raise TensorBoardDown("ConnectionRefusedError", nothing_there=True) from None
        except (OSError, http.client.HTTPException) as exc:
            raise TensorBoardDown("no answer before the poll's deadline" if isinstance(exc, TimeoutError)
                                  else exc.__class__.__name__) from None
        finally:
            connection.close()
        if len(data) > MAX_ANSWER_BYTES:
            raise TensorBoardDown("an answer too large to be TensorBoard's")
        try:
            return json.loads(data)
        except ValueError:
            raise TensorBoardDown("an answer that is not JSON") from None

    def environment(self, deadline: float) -> dict[str, Any]:
        """/data/environment: answers as soon as the server is up, and names its logdir."""
        answer = self.request("GET", "/data/environment", deadline)
        if not isinstance(answer, dict):
            raise TensorBoardDown("an answer of the wrong shape from /data/environment")
        return answer

    def runs(self, deadline: float) -> list[str]:
        """/data/runs: the names TensorBoard gives the run folders it found."""
        answer = self.request("GET", "/data/runs", deadline)
        if not isinstance(answer, list) or not all(isinstance(name, str) for name in answer):
            raise TensorBoardDown("an answer of the wrong shape from /data/runs")
        return answer

    def tags(self, deadline: float) -> dict[str, list[str]]:
        """/data/plugin/scalars/tags: each run's scalar tags."""
        answer = self.request("GET", "/data/plugin/scalars/tags", deadline)
        if not isinstance(answer, dict) or not all(isinstance(tags, dict) for tags in answer.values()):
            raise TensorBoardDown("an answer of the wrong shape from /data/plugin/scalars/tags")
        return {run: [str(tag) for tag in tags] for run, tags in answer.items()}

    def scalars(self, tag: str, runs: Sequence[str], deadline: float) -> dict[str, Served]:
        """The points of one tag for many runs, in one request, each with the wall time it was written at;
        runs without data are left out."""
        if not runs:
            return {}
        answer = self.request("POST", "/data/plugin/scalars/scalars_multirun", deadline,
                              [("tag", tag), *(("runs", run) for run in runs)])
        try:
            if not isinstance(answer, dict):
                raise TypeError
            return {run: [(float(wall), float(step), float(value)) for wall, step, value in points]
                    for run, points in answer.items()}
        except (ValueError, TypeError):
            raise TensorBoardDown("an answer of the wrong shape from scalars_multirun") from None


def missing_tag(tag: str, use: str, run: str, tags: Sequence[str]) -> str:
    """What is said of a tag a run has no point of, while it has points of other tags."""
    closest = difflib.get_close_matches(tag, tags, n=1, cutoff=0.0)
    shown = ", ".join(sorted(tags)[:12]) + (f" and {len(tags) - 12} more" if len(tags) > 12 else "")
    return (f"TensorBoard has no point of the tag {tag!r}{f' ({use})' if use else ''} in {run}, which has points of "
            f"{shown}: did you mean {closest[0]!r}? Tags are case-sensitive; "
            f"{'its stop rule never fires' if use.startswith('opt_stop') else 'its column stays empty'} until it is fixed")


def nearly_one_of(tag: str, tags: Sequence[str]) -> bool:
    """True if one of tags is nearly tag: the same but for case, or a few letters apart (a typo)."""
    return any(other.lower() == tag.lower() or difflib.SequenceMatcher(None, tag, other).ratio() >= 0.9 for other in tags)


def tag_uses(metric: str, rules: Sequence[StopRule]) -> dict[str, str]:
    """What reads each tag: --metric, and the stop rules of which behaviors."""
    uses: dict[str, list[str]] = {}
    for rule in rules:
        uses.setdefault(rule.tag, []).append(f"opt_stop of {rule.behavior}")
    uses.setdefault(metric, []).append("--metric")
    return {tag: " and ".join(dict.fromkeys(names)) for tag, names in uses.items()}


def own_points(served: Served, windows: Windows | None) -> Points:
    """The points a run wrote in its own sessions of this sweep (windows; None: every point).

    TensorBoard serves, under a run's name, whatever event files it found in
    its folder: an older sweep's run of the same id (until mlagents-learn
    --force deletes them at its first summary), or another folder's runs of the
    same names. The wall time of each point tells: one written before the
    session began, or after it ended, is not the run's. A session on another
    Ray node writes with that node's clock: its first point comes seconds after
    its launch, far more than clocks kept by NTP differ.
    """
    return [(step, value) for _, step, value in own_served(served, windows)]


def own_served(served: Served, windows: Windows | None) -> Served:
    """The served points (wall, step, value) of the run's own sessions; see own_points."""
    if windows is None:
        return list(served)
    return [(wall, step, value) for wall, step, value in served
            if any(began <= wall and (ended is None or wall <= ended) for began, ended in windows)]


def tensorboard_names(served: Iterable[str], wanted: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """Which served run is each (run id, behavior): TensorBoard's own name for it.

    The Rust data server names runs `demo-0/B`; the Python loader, which is what
    Windows gets, uses os.path.relpath: `demo-0\\B`. With a logdir above the
    results folder the names carry a prefix (`results/demo-0/B`). A name is
    taken when it ends with the run id and the behavior, whatever the separator;
    an exact name wins, and an ambiguous suffix is left unmatched.
    """
    by_tail: dict[tuple[str, str], list[str]] = {}
    for name in served:
        parts = re.split(r"[\\/]", name)
        if len(parts) >= 2:
            by_tail.setdefault((parts[-2], parts[-1]), []).append(name)
    found = {}
    for run_id, behavior in wanted:
        candidates = by_tail.get((run_id, behavior), [])
        exact = [name for name in candidates if len(re.split(r"[\\/]", name)) == 2]
        if len(exact) == 1 or len(candidates) == 1:
            found[(run_id, behavior)] = (exact or candidates)[0]
    return found


def ranking_key(value: float | None, mode: str) -> tuple[int, float]:
    """Sorts best first by mode; a value that is not a finite number (NaN, an infinity: a run that
    diverged) after every finite one, whichever the mode; no value at all last. Every ranking and
    comparison of runs goes through it, so `0.9 > nan` being false never keeps a diverged run."""
    if value is None:
        return (2, 0.0)
    if not math.isfinite(value):
        return (1, 0.0)
    return (0, -value if mode == "max" else value)


def value_at(points: Points, step: float) -> float | None:
    """The running mean of the points up to step, or None if the run has not reached it."""
    if not points or points[-1][0] < step:
        return None
    upto = [value for point_step, value in points if point_step <= step]
    return statistics.fmean(upto) if upto else None


@dataclass(frozen=True)
class RuleKind:
    """A kind of stop rule: the fields it takes and how it decides."""

    name: str
    fields: frozenset[str]  # besides tag, step and rule
    compares_runs: bool  # it needs the other runs' points
    check: Callable[[StopRule, Points, Sequence[Points]], str | None]
    validate: Callable[[StopRule, str], None]
    schedules: bool = False  # not a stop check: the policy pauses and continues runs by it (see Halving)


RULE_KINDS: dict[str, RuleKind] = {}


def register_rule(name: str, *, fields: Iterable[str] = (), compares_runs: bool = False,
                  validate: Callable[[StopRule, str], None] | None = None, schedules: bool = False) -> Callable[[Any], Any]:
    """Add a stop rule kind: its check function, and what `opt_stop` may say for it."""
    def register(check: Callable[[StopRule, Points, Sequence[Points]], str | None]) -> Any:
        RULE_KINDS[name] = RuleKind(name, frozenset(fields), compares_runs, check, validate or (lambda rule, where: None),
                                    schedules)
        return check
    return register


def _validate_threshold(rule: StopRule, where: str) -> None:
    if rule.min is None and rule.max is None:
        raise SweepError("opt_stop has neither min nor max", where, "add min or max, or a rule such as rule: median")
    if rule.min is not None and rule.max is not None and rule.min > rule.max:
        raise SweepError(f"opt_stop min {rule.min:g} is above max {rule.max:g}", where, "swap them, or drop one")


@register_rule("threshold", fields=("min", "max"), validate=_validate_threshold)
def check_threshold(rule: StopRule, points: Points, others: Sequence[Points] = ()) -> str | None:
    """Why a run breaks a min/max rule: its first point at or past step that breaks it, or None.

    Every such point counts, not only the latest: whether a run is stopped must
    not depend on when TensorBoard was read. Read after every summary, the
    sweep would have stopped it at that point; read a minute later, a run whose
    next point was back above min escaped."""
    for step, value in points:
        if step < rule.step:
            continue
        if not math.isfinite(value):
            return f"{rule.tag} = {value:g} at step {step:g}: not a finite number"
        if rule.min is not None and value < rule.min:
            return f"{rule.tag} = {value:g} < min {rule.min:g} at step {step:g}"
        if rule.max is not None and value > rule.max:
            return f"{rule.tag} = {value:g} > max {rule.max:g} at step {step:g}"
    return None


@register_rule("median", fields=("min_runs", "mode"), compares_runs=True)
def check_median(rule: StopRule, points: Points, others: Sequence[Points]) -> str | None:
    """Why a run breaks the median stopping rule, or None.

    At its latest step s (once s >= rule.step) the run's running mean up to s is
    compared with the median of the running means up to s of the other runs
    that reached s; with fewer than rule.min_runs of those, nothing is decided.
    The running mean, as Vizier's rule uses, keeps one noisy point from
    stopping a run. Strictly worse than the median stops it.
    """
    if not points or points[-1][0] < rule.step:
        return None
    step = points[-1][0]
    mine = value_at(points, step)
    theirs = [v for v in (value_at(other, step) for other in others) if v is not None]
    if mine is None or len(theirs) < rule.min_runs:
        return None
    if not math.isfinite(mine):
        return f"{rule.tag} mean {mine:g} at step {step:g}: not a finite number"
    # The others' values that are not finite count as the worst there is.
    worst = -math.inf if rule.mode == "max" else math.inf
    median = statistics.median([value if math.isfinite(value) else worst for value in theirs])
    if ranking_key(mine, rule.mode) <= ranking_key(median, rule.mode):
        return None
    sign = "<" if rule.mode == "max" else ">"
    return f"{rule.tag} mean {mine:g} {sign} median {median:g} of {len(theirs)} runs at step {step:g}"


def _validate_halving(rule: StopRule, where: str) -> None:
    if rule.step <= 0:
        raise SweepError("rule: halving needs the step of its first rung", where, "e.g. step: 50000")
    if rule.factor <= 1:
        raise SweepError(f"opt_stop factor {rule.factor:g} is not above 1", where, "e.g. factor: 3 (keep the best third)")


@register_rule("halving", fields=("factor", "mode"), compares_runs=True, validate=_validate_halving, schedules=True)
def check_halving(rule: StopRule, points: Points, others: Sequence[Points]) -> str | None:
    """Never stops a run by itself: the policy pauses, continues and stops runs at its rungs (see Halving)."""
    return None


def _validate_pbt(rule: StopRule, where: str) -> None:
    if rule.step:
        raise SweepError("rule: pbt has no step: it is judged every interval", where, "e.g. interval: 50000, and drop step")
    if rule.interval <= 0:
        raise SweepError(f"opt_stop interval {rule.interval:g} is not above 0", where, "e.g. interval: 50000 (steps)")
    if not 0 < rule.quantile <= 0.5:
        raise SweepError(f"opt_stop quantile {rule.quantile:g} is not above 0 and at most 0.5", where,
                         "e.g. quantile: 0.25 (the worst quarter takes over the best quarter's checkpoints)")
    if not 0 <= rule.resample <= 1:
        raise SweepError(f"opt_stop resample {rule.resample:g} is not a chance from 0 to 1", where, "e.g. resample: 0.25")


@register_rule("pbt", fields=("interval", "quantile", "perturb", "resample", "mode"), compares_runs=True,
               validate=_validate_pbt, schedules=True)
def check_pbt(rule: StopRule, points: Points, others: Sequence[Points]) -> str | None:
    """Never stops a run: the policy pauses runs at every interval, and continues them (see PbtPolicy)."""
    return None


def check_rule(rule: StopRule, points: Points, others: Sequence[Points]) -> str | None:
    """Why a run breaks a rule of any kind, or None."""
    return RULE_KINDS[rule.rule].check(rule, points, others)


@dataclass(frozen=True)
class MetricsRequest:
    """What the supervisor wants read: these tags of these (run id, behavior) runs.

    A run marked final has ended and settled: once read, it is not read again.
    """

    tags: tuple[str, ...]
    runs: tuple[tuple[str, str], ...]
    final: frozenset[str] = frozenset()  # run ids
    due: bool = False  # a run's next point is at its rung: poll every DUE_POLL_INTERVAL
    windows: Mapping[str, Windows] = field(default_factory=dict)  # run id -> its sessions; a run not here: every point


@dataclass(frozen=True)
class Snapshot:
    """What TensorBoard served at one poll; read by the supervisor, never changed."""

    taken: float  # the watcher's clock when the poll began
    points: Mapping[tuple[str, str, str], Points]  # (run id, behavior, tag) -> points
    stale: bool = False  # the last poll did not answer: these are the points of the one before
    # (run id, behavior, tag) -> (wall, step) of its latest point: when the trainer wrote it, whenever it was read
    newest: Mapping[tuple[str, str, str], tuple[float, float]] = field(default_factory=dict)
    # Runs read as final (see MetricsRequest.final): they ended long enough ago that these are their last points.
    settled: frozenset[str] = frozenset()

    def of(self, run_id: str, behavior: str, tag: str) -> Points:
        return self.points.get((run_id, behavior, tag), [])

    def last_step(self, run_id: str, behaviors: Sequence[str], tag: str) -> float | None:
        steps = [points[-1][0] for behavior in behaviors if (points := self.of(run_id, behavior, tag))]
        return max(steps) if steps else None

    def progress(self, run_id: str) -> tuple[float, float] | None:
        """(wall, step) of the run's furthest point in any tag read: how far it was, and when."""
        found = [newest for (run, _, _), newest in self.newest.items() if run == run_id]
        return max(found, key=lambda newest: newest[1]) if found else None

    def latest_step(self, run_id: str) -> float | None:
        """The run's latest step in any tag read: how far it has trained, whatever the rules watch."""
        steps = [points[-1][0] for (run, _, _), points in self.points.items() if run == run_id and points]
        return max(steps) if steps else None


class MetricsWatcher:
    """Owns TensorBoard: finds or starts it, checks it serves this sweep, and polls it on its own thread.

    The supervisor's loop only ever reads the latest Snapshot and the notes
    (warnings) left for it, so a TensorBoard that hangs costs stale metrics,
    never a late slot refill or a deaf Ctrl-C.
    """

    def __init__(self, client: TensorBoardClient, *, interval: float, results_dir: Path,
                 start_server: Callable[[], Any] | None = None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, uses: Mapping[str, str] | None = None) -> None:
        self.client = client
        self.uses = dict(uses or {})  # tag -> what reads it ("--metric", "opt_stop of B"), for what is said of it
        self.tags_looked_at: set[str] = set()  # tags found in a run's tags, or said to be missing: never again
        self.interval = interval
        self.results_dir = results_dir
        self.results = Results(results_dir)
        self.start_server = start_server  # starts a local TensorBoard; returns its process handle, or None
        self.clock, self.sleep = clock, sleep
        self.server: Any = None
        self.healthy: bool | None = None  # None: not asked yet
        self.warned_elsewhere = False
        self.first_on_disk: dict[tuple[str, str], float] = {}
        self.final_points: dict[tuple[str, str, str], Points] = {}
        self._request: MetricsRequest | None = None
        self._snapshot: Snapshot | None = None
        self._notes: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._final: MetricsRequest | None = None
        self._thread: threading.Thread | None = None

    # -- the supervisor's side ------------------------------------------------

    def start(self) -> None:
        """Poll on a thread of the watcher's own. What the two threads share, and why that is safe:

        - the request (want): the supervisor replaces it whole; the thread reads
          the reference once per poll. A MetricsRequest is frozen, its windows
          a fresh mapping each time, so a poll sees one request, never half of two.
        - the snapshot (latest): the thread replaces it whole when a poll ends;
          the supervisor reads the reference. A Snapshot is frozen and its
          points are never changed once made.
        - the notes: appended and taken under the lock.
        - the wake event (a due request, a stop): threading.Event, made for this.
        Nothing else is shared: the TensorBoard it started, its client and its
        caches (final_points, first_on_disk) are the thread's alone until it
        has ended (stop joins it before close touches the server).
        """
        self._thread = threading.Thread(target=self._watch, name="tensorboard-watcher", daemon=True)
        self._thread.start()

    def want(self, request: MetricsRequest) -> None:
        hurry = request.due and not (self._request is not None and self._request.due)
        self._request = request
        if hurry:
            self._wake.set()  # a poll now, not at the end of a long wait begun before the run was due

    def wait_after_poll(self) -> float:
        request = self._request
        return min(self.interval, DUE_POLL_INTERVAL) if request is not None and request.due else self.interval

    def latest(self) -> Snapshot | None:
        return self._snapshot

    def take_notes(self) -> list[tuple[str, str]]:
        """("say" | "warn", text) lines for the console, oldest first."""
        with self._lock:
            notes, self._notes = self._notes, []
        return notes

    def stop(self, final: MetricsRequest | None = None) -> Snapshot | None:
        """End the polling thread, after one last poll of `final` if given (the summary's numbers).

        The last poll is the thread's own: on Linux a TensorBoard it started gets
        the death signal when that thread ends, so nothing may poll after it.
        """
        if self._thread is None or not self._thread.is_alive():
            return None
        self._final = final
        self._stopping = True
        self._wake.set()
        self._thread.join(2 * POLL_DEADLINE + 5)  # a poll under way, then the last one, each ends by its deadline
        return self._snapshot if final is not None else None

    def close(self) -> None:
        """Stop a TensorBoard the sweep started: it has nothing to save."""
        if self.server is not None:
            self.server.terminate()
            self.server = None

    # -- the watcher's own thread ---------------------------------------------

    def _watch(self) -> None:
        self.connect()
        while not self._stopping:
            self.poll_once()
            self._wake.wait(self.wait_after_poll())
            self._wake.clear()
        if self._final is not None:
            self._request = self._final
            if self.poll_once() is None and self._snapshot is not None:
                # No answer at the very end: the last good points stand, marked stale, rather than none at all.
                self._snapshot = dataclasses.replace(self._snapshot, stale=True)

    def note(self, kind: str, text: str) -> None:
        with self._lock:
            self._notes.append((kind, text))

    def connect(self) -> None:
        """Use the TensorBoard at the URL; if none answers there and the URL is local, start one."""
        try:
            environment = self.client.environment(self.clock() + POLL_DEADLINE)
        except TensorBoardDown as exc:
            # Start one only where nothing listens: a server that is there but does not answer keeps its port.
            if not exc.nothing_there or self.client.host not in ("localhost", "127.0.0.1", "::1"):
                self.down(str(exc))
                return
            if self.start_server is None:
                self.down(f"{exc}, and no tensorboard was found to start")
                return
            self.server = self.start_server()
            deadline = self.clock() + TENSORBOARD_START_TIMEOUT
            while self.clock() < deadline and not self._stopping and self.server.poll() is None:
                try:
                    self.client.environment(self.clock() + POLL_DEADLINE)
                except TensorBoardDown:
                    self.sleep(0.5)
                    continue
                self.healthy = True
                self.note("say", f"TensorBoard started: {self.client.url}")
                return
            self.down("the TensorBoard started there did not answer")
            return
        self.healthy = True
        self.note("say", f"TensorBoard: {self.client.url}")
        self.check_folder(environment.get("data_location"))

    def check_folder(self, location: Any) -> None:
        """Warn if the TensorBoard reads a folder that does not hold this sweep's results."""
        if not isinstance(location, str) or not os.path.isabs(location) or not os.path.isdir(location):
            return  # a relative or remote logdir: the run names tell instead (see poll_once)
        served, ours = Path(location).resolve(), self.results_dir.resolve()
        if ours != served and served not in ours.parents:
            self.elsewhere(f"reads {served}, not this sweep's results {ours}: ")

    def elsewhere(self, what: str) -> None:
        if self.warned_elsewhere:
            return
        self.warned_elsewhere = True
        self.note("warn", f"TensorBoard at {self.client.url} {what}stop conditions cannot see the runs. Pass "
                          "--tensorboard-url with a free port (e.g. http://localhost:6007) and the sweep starts its "
                          "own TensorBoard there")

    def down(self, why: str) -> None:
        if self.healthy is not False:
            self.note("warn", f"TensorBoard at {self.client.url} does not answer ({why}); "
                              "training goes on, stop conditions are checked again at each poll")
        self.healthy = False

    def poll_once(self) -> Snapshot | None:
        """Read every wanted tag of every wanted run, in one request per tag, within POLL_DEADLINE."""
        request = self._request
        if request is None or self.healthy is None:
            return None
        taken = self.clock()
        deadline = taken + POLL_DEADLINE
        # A run no longer final (a paused run that goes on) is read afresh: its kept points are old.
        self.final_points = {key: points for key, points in self.final_points.items() if key[0] in request.final}
        wanted = [pair for pair in request.runs if not all((*pair, tag) in self.final_points for tag in request.tags)]
        try:
            # /data/runs is asked even with nothing to read: it is how the watcher knows TensorBoard answers.
            names = tensorboard_names(self.client.runs(deadline), wanted)
            fresh: dict[tuple[str, str, str], Points] = {}
            newest: dict[tuple[str, str, str], tuple[float, float]] = {}
            foreign: set[tuple[str, str]] = set()  # served with points, none of them the run's own
            for tag in request.tags:
                by_name = self.client.scalars(tag, sorted(names.values()), deadline)
                for (run_id, behavior), name in names.items():
                    if name in by_name:
                        mine = own_served(by_name[name], request.windows.get(run_id))
                        fresh[(run_id, behavior, tag)] = [(step, value) for _, step, value in mine]
                        if mine:
                            newest[(run_id, behavior, tag)] = (mine[-1][0], mine[-1][1])
                        elif by_name[name]:
                            foreign.add((run_id, behavior))
        except TensorBoardDown as exc:
            self.down(str(exc))
            return None
        if self.healthy is False:
            self.note("say", "TensorBoard answers again: stop conditions are checked")
        self.healthy = True
        self.watch_for_missing_tags(request, wanted, names, fresh, deadline)
        owned = {(run_id, behavior) for (run_id, behavior, _), points in fresh.items() if points}
        self.watch_for_unserved([pair for pair in wanted if pair not in owned and (pair not in names or pair in foreign)],
                                request.windows, taken)
        for key, points in fresh.items():
            if key[0] in request.final:
                self.final_points[key] = points
        snapshot = Snapshot(taken, {**self.final_points, **fresh}, newest=newest,  # a final run's pace is not asked
                            settled=request.final)
        self._snapshot = snapshot
        return snapshot

    def watch_for_missing_tags(self, request: MetricsRequest, wanted: Sequence[tuple[str, str]],
                               names: Mapping[tuple[str, str], str], fresh: Mapping[tuple[str, str, str], Points],
                               deadline: float) -> None:
        """A tag the sweep reads of which a run TensorBoard serves has no point, while it has points of other
        tags: a typo (`Cumulative reward`) would turn its stop rule off for good. Said once per tag, with
        the run's tags and the closest one: at once if one of them is nearly the same (a typo), else once the
        run has ended without a point of it (ML-Agents writes some tags late: Losses/* only after the first
        policy update). TensorBoard's tags are asked only while such a tag is unexplained."""
        missing = [tag for tag in request.tags if tag not in self.tags_looked_at
                   and any(pair in names and (*pair, tag) not in fresh for pair in wanted)]
        if not missing:
            return
        try:
            served = self.client.tags(deadline)
        except TensorBoardDown:
            return  # asked again at the next poll
        for tag in missing:
            for pair in wanted:
                tags = served.get(names.get(pair, ""), [])
                if not tags:
                    continue  # no scalar of its own yet: nothing to tell from
                if tag in tags:
                    self.tags_looked_at.add(tag)  # there: its points are not the run's own, or come later
                elif nearly_one_of(tag, tags) or pair[0] in request.final:
                    self.tags_looked_at.add(tag)
                    self.note("warn", missing_tag(tag, self.uses.get(tag, ""), f"{pair[0]}/{pair[1]}", tags))
                break

    def watch_for_unserved(self, unserved: Sequence[tuple[str, str]], windows: Mapping[str, Windows], now: float) -> None:
        """Runs that have written events in their current session for UNSERVED_GRACE seconds, of which TensorBoard
        serves nothing of their own (not their name, or only older points under it): it reads another folder."""
        if self.warned_elsewhere:
            return
        for pair in unserved:
            run_id, behavior = pair
            if pair not in self.first_on_disk:
                since = windows[run_id][-1][0] if windows.get(run_id) else -math.inf
                written = self.results.newest_event(run_id, behavior)
                if written is not None and written >= since:
                    self.first_on_disk[pair] = now
            elif now - self.first_on_disk[pair] >= UNSERVED_GRACE:
                events = self.results.folder.resolve() / run_id / behavior
                self.elsewhere(f"does not serve {run_id}/{behavior}, whose events are in {events}: it reads another "
                               f"folder than this sweep's results {self.results.folder.resolve()}; ")
                return
        for pair in list(self.first_on_disk):
            if pair not in unserved:
                del self.first_on_disk[pair]  # served after all (TensorBoard reloads now and then)


# ---------------------------------------------------------------------------
# The scheduler policy: which run starts next, which runs stop (pure)
# ---------------------------------------------------------------------------


class Action(enum.Enum):
    """What a policy may ask of the supervisor for one run."""

    STOP = "stop"  # a running run stops as Ctrl-C would and ends stopped early
    PAUSE = "pause"  # a running run stops as Ctrl-C would (it saves a checkpoint) and waits, paused
    CONTINUE = "continue"  # a paused run trains on from its checkpoint (mlagents-learn --resume)
    END = "end"  # a paused run ends stopped early, with the model it saved when it paused
    NOTE = "note"  # nothing to do: only what the policy keeps of the run changes


@dataclass(frozen=True)
class Decision:
    run_id: str
    action: Action
    reason: str
    remember: Any = None  # replaces what the policy keeps of the run (RunRecord.memory), if not None
    # A paused run that goes on as another run (other values): population based training's way to change a run,
    # with no new kind of action; with takes_over, from a copy of that run's checkpoint (see Supervisor.carry_out).
    spec: RunSpec | None = None
    takes_over: str | None = None


@dataclass(frozen=True)
class Standing:
    """How far a policy's judging took a run, for the summary's ranking: runs further on rank first, then
    by their value there (a run judged at a rung is compared with the others at that rung, never by a
    last value measured further on)."""

    level: float  # the highest rung it was judged at; math.inf: trained to the end
    value: float | None  # its value there (None: its last value of --metric)
    step: float | None = None  # the rung's step


class Policy(Protocol):
    """Proposes runs and decides; the supervisor records and carries out. Fed the run records and what
    TensorBoard served of the runs' own points, nothing else."""

    def propose(self, recorded: Mapping[str, RunRecord]) -> RunSpec | None: ...  # a new run, or None for now
    def upcoming(self, recorded: Mapping[str, RunRecord]) -> list[Run]: ...  # runs it will still propose, if known
    def unproposed(self, recorded: Mapping[str, RunRecord]) -> int: ...  # how many runs it will still propose
    def decide(self, records: Sequence[RunRecord], snapshot: Snapshot) -> list[Decision]: ...
    def tags(self) -> list[str]: ...
    def waits(self, records: Sequence[RunRecord]) -> bool: ...
    def due(self, records: Sequence[RunRecord], snapshot: Snapshot) -> bool: ...
    def memory_from_json(self, data: Any, status: Status) -> Any: ...  # ValueError if malformed
    def memory_to_json(self, memory: Any) -> Any: ...
    def standing(self, record: RunRecord) -> Standing | None: ...  # None: not judged (ranked by --metric)


class GridProposer:
    """Proposes the grid's runs, each once, in training order (the grid's, or a shuffled one)."""

    def __init__(self, runs: Sequence[Run], order: Sequence[int] | None = None) -> None:
        self.runs = list(runs)
        self.order = list(order) if order is not None else list(range(len(runs)))
        self.cursor = 0  # runs before it in the order are recorded: never looked at again

    def propose(self, recorded: Mapping[str, RunRecord]) -> RunSpec | None:
        while self.cursor < len(self.order) and self.runs[self.order[self.cursor]].run_id in recorded:
            self.cursor += 1
        return self.runs[self.order[self.cursor]].spec if self.cursor < len(self.order) else None

    def upcoming(self, recorded: Mapping[str, RunRecord]) -> list[Run]:
        return [run for run in (self.runs[index] for index in self.order[self.cursor:]) if run.run_id not in recorded]

    def unproposed(self, recorded: Mapping[str, RunRecord]) -> int:
        return len(self.upcoming(recorded))


def trial_of(record: RunRecord, reached: Mapping[float, float]) -> Trial:
    """What a sampler is told of a recorded trial: trained to the end with its score; ended or paused early with
    how far it got (`reached`: step -> score); running, or waiting to train (again); failed (no score to tell)."""
    values = tuple(value for _, _, value in record.run.values)
    score = record.score[1] if record.score is not None else None
    told = tuple(sorted(reached.items()))
    if record.status is Status.FINISHED:
        return Trial(values, "complete", score, told) if finite_number(score) else Trial(values, "failed")
    if record.status in (Status.STOPPED, Status.PAUSED):
        return Trial(values, "pruned", None, told)
    if record.status is Status.FAILED:
        return Trial(values, "failed")
    return Trial(values, "running", None, told)


class SampledProposer:
    """Proposes a search's trials, each drawn by its sampler from the trials recorded before it, while the
    budget (--num-trials) lasts. The records are its only memory: trial n is <run-id>-n, whatever was
    proposed, trained or interrupted before, so a resumed search goes on with the next number."""

    def __init__(self, plan: SweepPlan, sampler: Sampler, budget: int) -> None:
        self.plan, self.sampler, self.budget = plan, sampler, budget
        # What a trial reached, as its policy judged it: by default its latest score (halving says its rungs).
        self.reached_of: Callable[[RunRecord], Mapping[float, float]] = (
            lambda record: {record.score[0]: record.score[1]} if record.score is not None else {})
        self._last: tuple[str, RunSpec] | None = None  # the last proposal: asked again every tick until recorded

    def trials(self, recorded: Mapping[str, RunRecord]) -> list[RunRecord]:
        """The search's own trials, in the order they were proposed (a run that continues another is not one)."""
        return sorted((record for record in recorded.values() if record.run.searched), key=lambda record: record.run.index)

    def unproposed(self, recorded: Mapping[str, RunRecord]) -> int:
        return max(0, self.budget - len(self.trials(recorded)))

    def upcoming(self, recorded: Mapping[str, RunRecord]) -> list[Run]:
        return []  # drawn only when proposed

    def propose(self, recorded: Mapping[str, RunRecord]) -> RunSpec | None:
        trials = self.trials(recorded)
        if len(trials) >= self.budget:
            return None
        number = max((record.run.index for record in recorded.values()), default=-1) + 1
        told = [trial_of(record, self.reached_of(record)) for record in trials]
        key = json.dumps([number, [[trial.state, trial.value, trial.reached, [flow(v) for v in trial.values]] for trial in told]])
        if self._last is None or self._last[0] != key:
            self._last = (key, self.plan.spec(self.sampler.sample(number, told), number))
        return self._last[1]


class GridPolicy:
    """Runs start in the proposer's order; a running run that breaks one of its behavior's stop rules stops."""

    def __init__(self, proposer: GridProposer | SampledProposer, rules: Sequence[StopRule]) -> None:
        self.proposer = proposer
        self.rules = list(rules)

    def propose(self, recorded: Mapping[str, RunRecord]) -> RunSpec | None:
        return self.proposer.propose(recorded)

    def upcoming(self, recorded: Mapping[str, RunRecord]) -> list[Run]:
        return self.proposer.upcoming(recorded)

    def unproposed(self, recorded: Mapping[str, RunRecord]) -> int:
        return self.proposer.unproposed(recorded)

    def waits(self, records: Sequence[RunRecord]) -> bool:
        """True while a run waits for a decision (a paused run): the sweep is not over."""
        return any(record.status is Status.PAUSED for record in records)

    def tags(self) -> list[str]:
        return list(dict.fromkeys(rule.tag for rule in self.rules))

    def due(self, records: Sequence[RunRecord], snapshot: Snapshot) -> bool:
        """True while a running run's next point will be at a step the policy judges it at: poll often then."""
        return False

    def memory_from_json(self, data: Any, status: Status) -> Any:
        if data is not None:
            raise ValueError("memory is not null, as no rule: halving asks for one")
        if status is Status.PAUSED:
            raise ValueError("status is paused, as only rule: halving pauses runs")
        return None

    def memory_to_json(self, memory: Any) -> Any:
        return None

    def standing(self, record: RunRecord) -> Standing | None:
        return None

    def decide(self, records: Sequence[RunRecord], snapshot: Snapshot) -> list[Decision]:
        started = [record for record in records if record.start is not None]
        decisions = []
        for record in records:
            if record.status is not Status.RUNNING or record.stop_asked is not None:
                continue
            run = record.run
            for rule in run.stop_rules:
                if RULE_KINDS[rule.rule].schedules:
                    continue
                mine = snapshot.of(run.run_id, rule.behavior, rule.tag)
                others = [snapshot.of(peer.run.run_id, rule.behavior, rule.tag) for peer in started
                          if peer is not record] if RULE_KINDS[rule.rule].compares_runs else []
                reason = check_rule(rule, mine, others)
                if reason and not run.in_last_stretch(rule.behavior, mine[-1][0]):
                    decisions.append(Decision(run.run_id, Action.STOP, f"opt_stop of {rule.behavior}: {reason}"))
                    break
        return decisions


# A run's score is the mean of its last few points of --metric, not its last point: one summary period of RL
# is noisy (on the benchmark's grid the last point picked the best of 9 combinations in 2 of 6 sweeps, the
# mean of the last 3 in 4 of 6), and 3 points are still the end of training, not its middle.
FINAL_POINTS = 3


def final_score(curves: Sequence[Points]) -> tuple[float, float] | None:
    """A run's score from each behavior's own points of --metric: (its latest step, the mean over behaviors of
    the mean of their last FINAL_POINTS points); None until every behavior has a point."""
    if not curves or not all(curves):
        return None
    step = max(points[-1][0] for points in curves)
    return step, statistics.fmean(statistics.fmean(value for _, value in points[-FINAL_POINTS:]) for points in curves)


def rung_value(points: Points, rung: float) -> float | None:
    """A run's value at a rung: the mean of its points in the second half of the steps up to the rung.

    Only points up to the rung count, so what a run trains past it while it is
    being paused never does, and every run is judged on the same stretch of
    training. The mean over the second half smooths one noisy summary period
    and leaves out the start, where every run is still near random. With no
    point in that half, the last point at or before the rung.
    """
    upto = [(step, value) for step, value in points if step <= rung]
    window = [value for step, value in upto if step > rung / 2]
    if window:
        return statistics.fmean(window)
    return upto[-1][1] if upto else None


def rungs_of(run: Run, rule: StopRule) -> list[float]:
    """The steps a run is judged at by its scheduling rule while it is not yet in its last summary period: halving's
    step, step x factor, ...; population based training's interval, 2 x interval, ...

    A run in its last summary period is about to export its final model (see
    Run.in_last_stretch): it trains to the end instead.
    """
    behaviors = [other.behavior for other in run.stop_rules if RULE_KINDS[other.rule].schedules]
    pbt = rule.rule == "pbt"
    found: list[float] = []
    rung = rule.interval if pbt else rule.step
    while not any(run.in_last_stretch(behavior, rung) for behavior in behaviors) and len(found) < (10_000 if pbt else 64):
        found.append(rung)
        rung = rung + rule.interval if pbt else rung * rule.factor
    return found


@dataclass(frozen=True)
class RungEntry:
    """One run of a rung's cohort, as judge_rung sees it."""

    run_id: str
    order: tuple[str, int]  # breaks ties: the run's values, then its repetition (never its id: that is the grid's order)
    value: float | None  # its value at the rung; None while it has not reached the rung
    out: bool = False  # failed, or stopped by another rule, before it reached the rung


@dataclass(frozen=True)
class RungVerdict:
    candidates: int  # the cohort's n: its runs, less those out, plus those still to come up from the rung below
    keep: int  # how many of the cohort go on
    go_on: frozenset[str]  # runs decided to continue past the rung
    stop: Mapping[str, str]  # runs decided to stop at the rung, with the reason


def ordinal(number: int) -> str:
    return f"{number}{'th' if 10 <= number % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(number % 10, 'th')}"


def judge_rung(entries: Sequence[RungEntry], rung: float, factor: float, mode: str, promotions_to_come: int = 0) -> RungVerdict:
    """Which runs of a rung's cohort continue, and which stop: the best ceil(n / factor) of the n candidates go on.

    `promotions_to_come` counts the runs the rung below may still send up: they
    are of this rung's cohort too, still to come. A run is decided before every
    run has reached the rung only when no score of the others can change it: it
    goes on if it stays in the best even should every run still to come beat it,
    it stops if enough runs beat it already. (A run still to come that fails, or
    is never sent up, only makes n smaller, which changes neither.) So what is
    decided never depends on the order in which runs reach the rung.
    """
    candidates = [entry for entry in entries if not entry.out]
    n = len(candidates) + promotions_to_come
    keep = math.ceil(n / factor)
    reached = sorted((entry for entry in candidates if entry.value is not None),
                     key=lambda entry: (ranking_key(entry.value, mode), entry.order))
    coming = n - len(reached)
    go_on, stop = set(), {}
    for place, entry in enumerate(reached):
        if place + coming < keep:
            go_on.add(entry.run_id)
        elif place >= keep:
            worst_kept = reached[keep - 1].value or 0.0
            value = entry.value or 0.0
            rank = ordinal(place + 1) if not coming else f"at best {ordinal(place + 1)}"
            if not math.isfinite(value):
                compared = f"{value:g}: not a finite number"
            else:
                relation = "=" if value == worst_kept else "<" if value < worst_kept else ">"
                compared = f"{value:g} {relation} {worst_kept:g}{', a tie' if relation == '=' else ''}"
            stop[entry.run_id] = f"halving: {rank} of {n} at step {rung:g} ({compared})"
    return RungVerdict(n, keep, frozenset(go_on), stop)


@dataclass(frozen=True)
class HalvingMemory:
    """What halving keeps of a run: the rungs it passed, its values at rungs, and the rung it ended at. Population
    based training keeps the same of its intervals (it ends none)."""

    passed: int = 0
    values: Mapping[int, float] = field(default_factory=dict)  # rung number -> the run's value there
    ended: int | None = None  # the rung it was told to stop at

    def to_json(self) -> dict[str, Any]:
        kept: dict[str, Any] = {"passed": self.passed, "values": {str(k): v for k, v in sorted(self.values.items())}}
        if self.ended is not None:
            kept["ended"] = self.ended
        return kept

    @staticmethod
    def from_json(data: Any) -> "HalvingMemory":
        """Read back from the state file, every field checked; ValueError says which is wrong."""
        if not isinstance(data, dict) or not set(data) <= {"passed", "values", "ended"}:
            raise ValueError("memory is not halving's")
        passed, values, ended = data.get("passed", 0), data.get("values", {}), data.get("ended")
        if isinstance(passed, bool) or not isinstance(passed, int) or not 0 <= passed <= 64:
            raise ValueError(f"memory.passed is {json.dumps(passed)[:40]}")
        if ended is not None and (isinstance(ended, bool) or not isinstance(ended, int) or not 0 <= ended <= 64):
            raise ValueError(f"memory.ended is {json.dumps(ended)[:40]}")
        if not isinstance(values, dict) or not all(
                isinstance(k, str) and k.isdigit() and isinstance(v, (int, float)) and not isinstance(v, bool)
                for k, v in values.items()):
            raise ValueError("memory.values is not rung numbers and values")
        return HalvingMemory(passed, {int(k): float(v) for k, v in values.items()}, ended)


class HalvingPolicy:
    """The grid's proposals and stop rules, plus synchronous successive halving by the runs' rule: halving.

    A run that reaches its next rung undecided is paused (Ctrl-C: it saves a
    checkpoint); once its rung's verdict is in, it continues with --resume or
    stops, keeping the model it saved. A run already decided when it reaches
    the rung never pauses. What the policy knows of each run (rungs passed,
    values at rungs, the verdict) is its HalvingMemory in the run's record, so
    a resumed sweep takes the halving up where it was, and the verdict of a
    rung whose values are all in memory needs no TensorBoard at all.
    """

    def __init__(self, grid: GridPolicy) -> None:
        self.grid = grid  # proposes the runs, and stops them by their other rules
        first = next((rule for rule in grid.rules if RULE_KINDS[rule.rule].schedules), None)
        self.factor: float = first.factor if first else DEFAULT_HALVING_FACTOR
        self.mode: str = first.mode if first else "max"
        self._rungs: dict[str, list[float]] = {}

    def propose(self, recorded: Mapping[str, RunRecord]) -> RunSpec | None:
        return self.grid.propose(recorded)

    def upcoming(self, recorded: Mapping[str, RunRecord]) -> list[Run]:
        return self.grid.upcoming(recorded)

    def unproposed(self, recorded: Mapping[str, RunRecord]) -> int:
        return self.grid.unproposed(recorded)

    def waits(self, records: Sequence[RunRecord]) -> bool:
        return self.grid.waits(records)

    def tags(self) -> list[str]:
        return self.grid.tags()

    def memory_from_json(self, data: Any, status: Status) -> Any:
        return None if data is None else HalvingMemory.from_json(data)

    def memory_to_json(self, memory: Any) -> Any:
        return memory.to_json() if memory is not None else None

    def standing(self, record: RunRecord) -> Standing | None:
        """A run that trained to the end got furthest; else the highest rung it was judged at, and its value
        there; a run never judged has no standing."""
        if record.status is Status.FINISHED:
            return Standing(math.inf, None)
        kept = record.memory
        if kept is None or not kept.values:
            return None
        rung = max(kept.values)
        rungs = self.rungs(record.run)
        return Standing(rung, kept.values[rung], rungs[rung] if rung < len(rungs) else None)

    def halving(self, run: Run) -> list[StopRule]:
        return [rule for rule in run.stop_rules if RULE_KINDS[rule.rule].schedules]

    def rungs(self, run: Run) -> list[float]:
        if run.run_id not in self._rungs:
            rules = self.halving(run)
            self._rungs[run.run_id] = rungs_of(run, rules[0]) if rules else []
        return self._rungs[run.run_id]

    def value(self, record: RunRecord, rung: float, snapshot: Snapshot) -> float | None:
        """The mean over the run's behaviors of their value at the rung, once every one has reached it."""
        values = []
        for rule in self.halving(record.run):
            points = snapshot.of(record.run.run_id, rule.behavior, rule.tag)
            if not points or (points[-1][0] < rung and record.status is not Status.FINISHED):
                return None
            found = self.value_there(points, rung)
            if found is None:
                return None
            values.append(found)
        return statistics.fmean(values) if values else None

    def placed(self, members: Sequence[tuple[RunRecord, float]]) -> list[RunRecord]:
        """A rung's runs, best first (ties: by their values, then their numbers; never by when they came)."""
        ordered = sorted(members, key=lambda member: (ranking_key(member[1], self.mode), member[0].run.describe(whole=True),
                                                      member[0].run.index))
        return [record for record, _ in ordered]

    def value_there(self, points: Points, rung: float) -> float | None:
        """A behavior's value at a rung, from its points (see rung_value)."""
        return rung_value(points, rung)

    def pause_reason(self, k: int, rung: float) -> str:
        return f"halving: at rung {k + 1}, step {rung:g}"

    def reach(self, records: Sequence[RunRecord], snapshot: Snapshot, minds: Mapping[str, HalvingMemory],
              stopping: set[str], tell: Callable[..., None]) -> None:
        """For the policies that pause a run as soon as it is at its next rung (asynchronous halving, PBT): each
        run's value at its next rung once TensorBoard serves it, and a pause for a run there, unless it is about
        to export its final model."""
        for record in records:
            mind, rungs = minds[record.run.run_id], self.rungs(record.run)
            if (mind.ended is None and mind.passed < len(rungs) and mind.passed not in mind.values
                    and record.status in (Status.RUNNING, Status.PAUSED, Status.FINISHED)):
                value = self.value(record, rungs[mind.passed], snapshot)
                if value is not None:
                    tell(record, Action.NOTE, "", HalvingMemory(mind.passed, {**mind.values, mind.passed: value}))
        for record in records:
            mind = minds[record.run.run_id]
            if (record.status is Status.RUNNING and record.stop_asked is None and record.run.run_id not in stopping
                    and mind.ended is None and mind.passed in mind.values and not self.finishing(record, snapshot)):
                tell(record, Action.PAUSE, self.pause_reason(mind.passed, self.rungs(record.run)[mind.passed]), mind)

    def decide(self, records: Sequence[RunRecord], snapshot: Snapshot) -> list[Decision]:
        decisions = self.grid.decide(records, snapshot)
        stopping = {decision.run_id for decision in decisions}
        recorded = {record.run.run_id: record for record in records}
        # The runs still to be proposed are of the first rung's cohort too, still to come: not yet recorded.
        playing = [record for record in records if self.rungs(record.run)]
        playing += [RunRecord(run) for run in self.grid.upcoming(recorded) if self.rungs(run)]
        memory: dict[str, dict[str, Any]] = {}
        for record in playing:
            kept = record.memory or HalvingMemory()
            memory[record.run.run_id] = {"passed": kept.passed, "values": dict(kept.values), "ended": kept.ended}
        said: dict[str, Decision] = {}
        to_come = 0  # runs the rung below may still send up to this one: it has not decided them yet
        for k in range(max((len(self.rungs(record.run)) for record in playing), default=0)):
            cohort = [record for record in playing if memory[record.run.run_id]["passed"] >= k
                      and len(self.rungs(record.run)) > k]
            if not cohort:
                break
            rung = self.rungs(cohort[0].run)[k]
            entries = [self.entry(record, k, rung, snapshot, memory[record.run.run_id], said) for record in cohort]
            verdict = judge_rung(entries, rung, self.factor, self.mode, promotions_to_come=to_come)
            for record in cohort:
                run_id, mind = record.run.run_id, memory[record.run.run_id]
                if mind["ended"] == k and record.status is Status.PAUSED:
                    # Told to stop while it was still saving its pause (its SIGINT was sent already, so
                    # the stop could not be asked again): it ends now that it has paused.
                    reason = verdict.stop.get(run_id, f"halving: out at step {rung:g}")
                    said[run_id] = Decision(run_id, Action.END, reason, self.remember(mind))
                if mind["passed"] != k or mind["ended"] is not None:
                    continue  # decided at this rung before
                if run_id in verdict.go_on:
                    mind["passed"] = k + 1
                    action = Action.CONTINUE if record.status is Status.PAUSED else Action.NOTE
                    said[run_id] = Decision(run_id, action, f"halving: in the best {verdict.keep} of "
                                            f"{verdict.candidates} at step {rung:g}", self.remember(mind))
                elif run_id in verdict.stop:
                    mind["ended"] = k
                    action = {Status.PAUSED: Action.END, Status.RUNNING: Action.STOP}.get(record.status, Action.NOTE)
                    if action is Action.STOP and self.finishing(record, snapshot):
                        action = Action.NOTE  # about to export its final model: stopping it now would lose that
                    said[run_id] = Decision(run_id, action, verdict.stop[run_id], self.remember(mind))
                elif (record.status is Status.RUNNING and k in mind["values"] and record.stop_asked is None
                      and not self.finishing(record, snapshot)):
                    said[run_id] = Decision(run_id, Action.PAUSE, f"halving: at rung {k + 1}, step {rung:g}", self.remember(mind))
            promoted = sum(memory[record.run.run_id]["passed"] > k for record in cohort)
            out = {entry.run_id for entry in entries if entry.out}
            undecided = sum(memory[record.run.run_id]["passed"] == k and memory[record.run.run_id]["ended"] is None
                            and record.run.run_id not in out and len(self.rungs(record.run)) > k + 1 for record in cohort)
            to_come = min(max(verdict.keep - promoted, 0), undecided + to_come)
        for record in playing:
            # Told to go on while it was still saving its pause: it goes on now that it has paused,
            # since it has no value yet at the rung it is now headed for.
            run_id, mind = record.run.run_id, memory[record.run.run_id]
            if (record.status is Status.PAUSED and mind["ended"] is None and mind["passed"] not in mind["values"]
                    and (run_id not in said or said[run_id].action is Action.NOTE)):
                passed = self.rungs(record.run)[mind["passed"] - 1] if mind["passed"] else 0
                said[run_id] = Decision(run_id, Action.CONTINUE, f"halving: goes on past step {passed:g}", self.remember(mind))
        return decisions + [decision for run_id, decision in said.items() if run_id not in stopping and run_id in recorded]

    def due(self, records: Sequence[RunRecord], snapshot: Snapshot) -> bool:
        """True while a running run, not yet decided at its next rung, is within one summary period of it.

        Its next point is then the one at the rung, and it should be paused as
        soon as that point is served: every step it trains past the rung while
        the sweep has not looked is thrown away if it stops there.
        """
        for record in records:
            rungs = self.rungs(record.run)
            kept = record.memory or HalvingMemory()
            if (record.status is not Status.RUNNING or record.stop_asked is not None or kept.passed >= len(rungs)
                    or kept.ended is not None or self.finishing(record, snapshot)):
                continue
            rung = rungs[kept.passed]
            for rule in self.halving(record.run):
                points = snapshot.of(record.run.run_id, rule.behavior, rule.tag)
                last = points[-1][0] if points else 0.0
                if last < rung <= last + record.run.horizons.get(rule.behavior, (math.inf, 0.0))[1]:
                    return True
        return False

    def finishing(self, record: RunRecord, snapshot: Snapshot) -> bool:
        """True once the run is in its last summary period (see Run.in_last_stretch): it is left to finish."""
        for rule in self.halving(record.run):
            points = snapshot.of(record.run.run_id, rule.behavior, rule.tag)
            if points and record.run.in_last_stretch(rule.behavior, points[-1][0]):
                return True
        return False

    def entry(self, record: RunRecord, k: int, rung: float, snapshot: Snapshot, mind: dict[str, Any],
              said: dict[str, Decision]) -> RungEntry:
        """A run of rung k's cohort: its value there (found now, or remembered), or out, or still to come."""
        run_id = record.run.run_id
        value = mind["values"].get(k)
        if value is None and record.status in (Status.RUNNING, Status.PAUSED, Status.FINISHED):
            value = self.value(record, rung, snapshot)
            if value is not None:
                mind["values"][k] = value
                earlier = said.get(run_id)  # a decision from a lower rung keeps its action, with what is known now
                said[run_id] = Decision(run_id, earlier.action if earlier else Action.NOTE, earlier.reason if earlier else "",
                                        self.remember(mind))
        # A run that failed or was stopped before the rung, or finished without a point to judge it by, is out.
        out = value is None and record.status in (Status.FAILED, Status.STOPPED, Status.INTERRUPTED, Status.FINISHED)
        # Ties are broken by the run's whole values (never its id: that is the grid's order), then its repetition.
        return RungEntry(run_id, (record.run.describe(whole=True), record.run.repetition), value, out)

    @staticmethod
    def remember(mind: Mapping[str, Any]) -> HalvingMemory:
        return HalvingMemory(mind["passed"], dict(mind["values"]), mind["ended"])


class AshaPolicy(HalvingPolicy):
    """Asynchronous successive halving (Li et al., MLSys 2020) for a sampled search, with pause and promotion.

    Rungs are halving's. A run that reaches its next rung pauses (it saves a
    checkpoint) and joins the rung. Whenever a slot is free, a paused run that
    ranks in the best floor(n / factor) of the n runs that reached its rung so
    far goes on (--resume), from the highest rung down; the first runs to reach
    a rung wait for company. If none can, the slot goes to a new trial, while
    the budget lasts. Once it is spent, paused runs go on by the same rule; when
    nothing trains and the rule promotes nothing, the best run of the highest
    rung reached goes on in any case, one rung at a time (the search ends with
    a model trained to the end, of the best run where it was judged last); and
    once that best has gone on, the rest end with the model they saved. A run's
    place at its rung depends only on the values there (ties: its values, then
    its number), never on when it came.
    """

    def __init__(self, grid: GridPolicy, concurrency: int) -> None:
        super().__init__(grid)
        self.concurrency = concurrency
        if isinstance(grid.proposer, SampledProposer):
            grid.proposer.reached_of = self.reached

    def pause_reason(self, k: int, rung: float) -> str:
        return f"asha: at rung {k + 1}, step {rung:g}"

    def reached(self, record: RunRecord) -> dict[float, float]:
        """A trial's values at the rungs it reached, by the rungs' steps: what the sampler is told."""
        kept, rungs = record.memory or HalvingMemory(), self.rungs(record.run)
        return {rungs[k]: value for k, value in kept.values.items() if k < len(rungs)}

    def decide(self, records: Sequence[RunRecord], snapshot: Snapshot) -> list[Decision]:
        decisions = self.grid.decide(records, snapshot)
        stopping = {decision.run_id for decision in decisions}
        recorded = {record.run.run_id: record for record in records}
        minds = {record.run.run_id: record.memory or HalvingMemory() for record in records}
        said: dict[str, Decision] = {}

        def tell(record: RunRecord, action: Action, reason: str, mind: HalvingMemory) -> None:
            minds[record.run.run_id] = mind
            said[record.run.run_id] = Decision(record.run.run_id, action, reason, mind)

        self.reach(records, snapshot, minds, stopping, tell)
        # Each rung: the runs that reached it, best first.
        reached_by: dict[int, list[RunRecord]] = {}
        for record in records:
            for k in minds[record.run.run_id].values:
                reached_by.setdefault(k, []).append(record)
        places = {k: self.placed([(record, minds[record.run.run_id].values[k]) for record in members])
                  for k, members in reached_by.items()}

        def waiting_at(k: int) -> list[RunRecord]:
            """Rung k's paused runs, best first, that have not gone on from it."""
            return [record for record in places.get(k, []) if record.status is Status.PAUSED
                    and minds[record.run.run_id].passed == k and minds[record.run.run_id].ended is None]

        def promotable(k: int) -> list[RunRecord]:
            best = places.get(k, [])[:math.floor(len(places.get(k, [])) / self.factor)]
            return [record for record in waiting_at(k) if record in best]

        def go_on(record: RunRecord, reason: str) -> None:
            mind = minds[record.run.run_id]
            tell(record, Action.CONTINUE, reason, HalvingMemory(mind.passed + 1, dict(mind.values)))

        busy = sum(record.status in (Status.RUNNING, Status.PENDING) for record in records)
        free = max(0, self.concurrency - busy)
        while free:
            k = next((k for k in sorted(places, reverse=True) if promotable(k)), None)
            if k is None:
                break
            record = promotable(k)[0]
            n = len(places[k])
            go_on(record, f"asha: {ordinal(places[k].index(record) + 1)} of {n} at step {self.rungs(record.run)[k]:g}, "
                          f"in the best {math.floor(n / self.factor)}")
            free -= 1
        training = any(record.status in (Status.RUNNING, Status.PENDING) for record in records)
        continued = any(decision.action is Action.CONTINUE for decision in said.values())
        if free and not training and not continued and self.grid.unproposed(recorded) == 0:
            # Nothing trains and the rule promotes nothing: the best run of the highest rung reached goes on in
            # any case (once at a time, to the end), else every paused run ends with the model it saved.
            top = max(places, default=None)
            best = places[top][0] if top is not None else None
            if best is not None and best in waiting_at(top):
                go_on(best, f"asha: the best of the highest rung reached (step {self.rungs(best.run)[top]:g}) goes on "
                            "to the end")
            else:
                for record in records:
                    mind = minds[record.run.run_id]
                    if record.status is Status.PAUSED and mind.ended is None:
                        k, n = mind.passed, len(places.get(mind.passed, []))
                        place = places[k].index(record) + 1 if record in places.get(k, []) else n
                        tell(record, Action.END, f"asha: {ordinal(place)} of {n} at step {self.rungs(record.run)[k]:g}, "
                                                 "not promoted before the search ended", HalvingMemory(k, dict(mind.values), k))
        return decisions + [decision for run_id, decision in said.items() if run_id not in stopping]


def interval_value(points: Points, step: float, interval: float) -> float | None:
    """A run's value at an interval's end (step): the mean of its points in the second half of the interval, or
    with none there its last point of the interval. Only its points of that interval count: a run is compared
    on how its current weights and values did lately, never on what it did before it took over a checkpoint."""
    window = [value for at, value in points if step - interval / 2 < at <= step]
    if window:
        return statistics.fmean(window)
    inside = [value for at, value in points if step - interval < at <= step]
    return inside[-1] if inside else None


def neighbour(option: Option, value: Any, factor: float) -> Any:
    """A list option's value moved one place by a perturbation: up for a factor above 1, down below it (numbers
    by size, other values in the list's order), staying at the ends. A run keeps to values the config names:
    a batch size of 1.2 x 512 may not divide the buffer, and a schedule has no number to multiply."""
    distinct = [option.values[place] for place in distinct_places(option).values()]
    if all(finite_number(each) for each in distinct):
        distinct.sort()
    texts = [flow(each) for each in distinct]
    if flow(value) not in texts or factor == 1:
        return value
    place = texts.index(flow(value)) + (1 if factor > 1 else -1)
    return distinct[min(max(place, 0), len(distinct) - 1)]


def explore(options: Sequence[Option], values: Sequence[Any], chooser: Any, perturb: Sequence[float], resample: float,
            kept: Iterable[int] = ()) -> list[Any]:
    """PBT's explore: each value drawn afresh from its option (a chance of `resample`), else perturbed by one of
    the factors (a range's number times it, kept in the range; a list's value moved to a neighbour). The options
    numbered in `kept` keep their value (the seed)."""
    kept = set(kept)
    found = []
    for number, (option, value) in enumerate(zip(options, values)):
        if number in kept:
            found.append(value)
        elif chooser.random() < resample:
            found.append(draw(option.range, chooser) if option.range is not None else chooser.choice(option.values))
        elif option.range is not None:
            factor = chooser.choice(list(perturb))
            found.append(range_value(option.range, value * factor) if finite_number(value) else value)
        else:
            found.append(neighbour(option, value, chooser.choice(list(perturb))))
    return found


class PbtPolicy(HalvingPolicy):
    """Population based training (Jaderberg et al., 2017) by the runs' rule: pbt, synchronous.

    The population is the runs first proposed (the grid's, or a search's
    --num-trials), trained --num-envs at a time. A run that reaches its next
    interval pauses (Ctrl-C: it saves a checkpoint). Once every run of the
    population has paused there (or is out: failed, or stopped by another
    rule), they are ranked by their values over the interval's second half:
    each of the worst quantile takes over the checkpoint of one of the best
    quantile (Supervisor.carry_out copies it into its own folder) with that
    run's values explored (see explore), and goes on with --resume; the
    others go on unchanged. Every run waits for the slowest, so the verdict is
    of the same stretch of training for all, and depends on nothing but the
    values there: not on the order runs arrived in, nor on how many trained at
    once. Which top run is copied and how values move is drawn from the
    sweep's seed, the interval and the run's number: a resumed sweep decides
    as the interrupted one would have.
    """

    def __init__(self, grid: GridPolicy, options: Sequence[Option], seed: int, kept: Iterable[int] = ()) -> None:
        super().__init__(grid)
        self.rule = next(rule for rule in grid.rules if rule.rule == "pbt")  # its intervals are its rungs (rungs_of)
        self.options, self.seed, self.kept = list(options), seed, tuple(kept)

    def value_there(self, points: Points, rung: float) -> float | None:
        return interval_value(points, rung, self.rule.interval)

    def pause_reason(self, k: int, rung: float) -> str:
        return f"pbt: at interval {k + 1}, step {rung:g}"

    def standing(self, record: RunRecord) -> Standing | None:
        return None  # every run trains to the end: the runs rank by their scores

    def spec_of(self, record: RunRecord, values: Sequence[Any]) -> RunSpec:
        """The spec a run goes on as with new values: its own number, repetition and seed."""
        run = record.run
        names = [option.names[option.values.index(value)] if option.names and value in option.values else None
                 for option, value in zip(self.options, values)]
        return RunSpec(tuple((heading, label, value) for (heading, label, _), value in zip(run.values, values)),
                       tuple(names), run.repetition, run.index, run.seed)

    def decide(self, records: Sequence[RunRecord], snapshot: Snapshot) -> list[Decision]:
        decisions = self.grid.decide(records, snapshot)
        stopping = {decision.run_id for decision in decisions}
        minds = {record.run.run_id: record.memory or HalvingMemory() for record in records}
        said: dict[str, Decision] = {}

        def tell(record: RunRecord, action: Action, reason: str, mind: HalvingMemory, **more: Any) -> None:
            minds[record.run.run_id] = mind
            said[record.run.run_id] = Decision(record.run.run_id, action, reason, mind, **more)

        self.reach(records, snapshot, minds, stopping, tell)
        # The population's next interval: the runs still in it that have not passed it. A run not proposed yet is
        # of it too, still to come; a run that failed or was stopped by another rule is out.
        playing = [record for record in records if record.status in (Status.PENDING, Status.RUNNING, Status.PAUSED)
                   and record.run.run_id not in stopping and minds[record.run.run_id].passed < len(self.rungs(record.run))]
        if playing and self.grid.unproposed({record.run.run_id: record for record in records}) == 0:
            k = min(minds[record.run.run_id].passed for record in playing)
            cohort = [record for record in playing if minds[record.run.run_id].passed == k]
            if all(record.status is Status.PAUSED and k in minds[record.run.run_id].values for record in cohort):
                self.judge(cohort, k, minds, tell)
        return decisions + [decision for run_id, decision in said.items() if run_id not in stopping]

    def judge(self, cohort: Sequence[RunRecord], k: int, minds: Mapping[str, HalvingMemory],
              tell: Callable[..., None]) -> None:
        """Interval k's verdict on its cohort, every run paused there: the worst quantile exploits and explores."""
        ranked = self.placed([(record, minds[record.run.run_id].values[k]) for record in cohort])
        n = len(ranked)
        count = min(math.ceil(n * self.rule.quantile), n // 2)
        top, step = ranked[:count], self.rungs(ranked[0].run)[k]
        for place, record in enumerate(ranked):
            mind = minds[record.run.run_id]
            value = mind.values[k]
            after = HalvingMemory(k + 1, dict(mind.values))
            if place < n - count:
                tell(record, Action.CONTINUE, f"pbt: {ordinal(place + 1)} of {n} at step {step:g} ({value:g}): goes on", after)
                continue
            chooser = seeded(self.seed, f"pbt:{k + 1}:{record.run.index}")
            donor = chooser.choice(top)
            values = explore(self.options, [value for _, _, value in donor.run.values], chooser, self.rule.perturb,
                             self.rule.resample, self.kept)
            for number in self.kept:  # the run keeps its own seed: what a checkpoint carries is the donor's weights
                values[number] = record.run.values[number][2]
            spec = self.spec_of(record, values)
            changed = [f"{name} {shown_value(old, None)} -> {shown_value(new, None)}" for name, old, new
                       in zip(donor.run.value_names(), (value for _, _, value in donor.run.values), values) if flow(old) != flow(new)]
            donor_value = minds[donor.run.run_id].values[k]
            tell(record, Action.CONTINUE, f"pbt: {ordinal(place + 1)} of {n} at step {step:g} ({value:g}): takes over "
                 f"{donor.run.run_id}'s checkpoint ({ordinal(ranked.index(donor) + 1)}, {donor_value:g}) and its values"
                 f"{', ' + ', '.join(changed) if changed else ', unchanged'}", after, spec=spec, takes_over=donor.run.run_id)


def make_policy(runs: Sequence[Run], order: Sequence[int] | None = None, plan: "SweepPlan | None" = None,
                seed: int = 0) -> GridPolicy | HalvingPolicy:
    """The policy the runs' stop rules ask for: the grid's, with halving or population based training if a rule asks."""
    grid = GridPolicy(GridProposer(runs, order), runs[0].stop_rules if runs else [])
    return scheduled(grid, plan, seed) or grid


def scheduled(grid: GridPolicy, plan: "SweepPlan | None", seed: int, concurrency: int | None = None) -> HalvingPolicy | None:
    """The schedule a rule asks for over the grid's or a search's runs (None: none): halving (asynchronous for a
    search, given its concurrency), or population based training (its options from the plan)."""
    kinds = {rule.rule for rule in grid.rules if RULE_KINDS[rule.rule].schedules}
    if "pbt" in kinds:
        if plan is None:
            raise ValueError("rule: pbt explores the plan's options: make_policy needs the plan")
        return PbtPolicy(grid, plan.options, seed, () if plan.seed_option is None else (plan.seed_option,))
    if kinds:
        return HalvingPolicy(grid) if concurrency is None else AshaPolicy(grid, concurrency)
    return None


def make_search_policy(plan: SweepPlan, sampler: Sampler, budget: int, concurrency: int, seed: int = 0) -> GridPolicy | HalvingPolicy:
    """A sampled search's policy: its trials with the config's stop rules, and asynchronous halving or population
    based training if a rule asks for it."""
    grid = GridPolicy(SampledProposer(plan, sampler, budget), plan.stop_rules)
    return scheduled(grid, plan, seed, concurrency) or grid


def combination_ranking(records: Sequence[RunRecord], mode: str,
                        standing: Callable[[RunRecord], Standing | None]) -> list[list[RunRecord]]:
    """The search's combinations best first, each as its runs that count: a combination ranks by how far the
    policy's judging took its runs (the highest rung), then by the mean value of its runs there (each run's
    score where nothing judged it). Only values that are results count: a run's at a rung, or the score of a
    run that finished or was stopped by a rule, and never one that is not a finite number."""
    groups: dict[str, list[tuple[float, float, RunRecord]]] = {}
    for record in records:
        stand = standing(record)
        if stand is not None and stand.value is not None:
            level, value = stand.level, stand.value
        elif record.status in (Status.FINISHED, Status.STOPPED) and record.score is not None:
            level, value = -1.0, record.score[1]
        else:
            continue
        if finite_number(value):
            groups.setdefault(record.run.combination, []).append((level, value, record))
    best: list[tuple[float, float, list[RunRecord]]] = []
    for entries in groups.values():
        top = max(level for level, _, _ in entries)
        there = [(value, record) for level, value, record in entries if level == top]
        best.append((top, statistics.fmean(value for value, _ in there), [record for _, record in there]))
    ranked = best_first(best, lambda item: item[1], mode, lambda item: item[0])
    return [runs for _, _, runs in ranked]


class ConfirmingPolicy:
    """--confirm K: the search's policy until it is over, then its K best combinations trained again, each on N
    seeds the search never used, to max_steps and judged by no rule (Eimer, Lindauer and Raileanu, ICML 2023:
    tune on some seeds, judge on others). The winner is the combination whose confirmation runs score best.

    The confirmation runs are records like the search's, marked as confirming (Run.confirms), so --resume
    takes them up as any run. Which combinations they confirm is read from them once the first is recorded;
    a larger K or N on --resume adds runs, and never takes one back.
    """

    def __init__(self, search: "GridPolicy | HalvingPolicy", count: int, seeds: int, base_seed: int, repetitions: int,
                 mode: str) -> None:
        self.search, self.count, self.seeds, self.mode = search, count, seeds, mode
        self.base_seed, self.repetitions = base_seed, repetitions  # confirmation seeds come after the search's laps

    @staticmethod
    def of_search(records: Iterable[RunRecord]) -> list[RunRecord]:
        """The search's runs: every run but the confirmation's."""
        return [record for record in records if not record.run.confirms]

    def search_ended(self, recorded: Mapping[str, RunRecord]) -> bool:
        """Nothing of the search is left to propose, train, or decide."""
        return (self.search.unproposed(recorded) == 0 and self.search.propose(recorded) is None
                and all(record.status in (Status.FINISHED, Status.STOPPED, Status.FAILED)
                        for record in self.of_search(recorded.values())))

    def scores_read(self, recorded: Mapping[str, RunRecord]) -> bool:
        """Every score the search is ranked by is of its runs' last points: a run that ended a moment ago still
        has its last points unread (TensorBoard reads event files every few seconds)."""
        return all(record.settled or record.status is Status.FAILED for record in self.of_search(recorded.values()))

    def chosen(self, recorded: Mapping[str, RunRecord]) -> list[RunRecord]:
        """A run of each combination to confirm, best first: those confirmation runs already train, then the
        next best of the search's ranking, up to K."""
        confirming = sorted((record for record in recorded.values() if record.run.confirms), key=lambda record: record.run.index)
        picked = {record.run.combination: record for record in confirming}
        for runs in combination_ranking(self.of_search(recorded.values()), self.mode, self.search.standing):
            if len(picked) >= self.count:
                break
            picked.setdefault(runs[0].run.combination, runs[0])
        return list(picked.values())

    def confirmation_seeds(self, recorded: Mapping[str, RunRecord]) -> list[int]:
        used = [record.run.seed for record in self.of_search(recorded.values()) if record.run.seed is not None]
        return fresh_seeds(self.base_seed, self.repetitions, used, self.seeds)

    def propose(self, recorded: Mapping[str, RunRecord]) -> RunSpec | None:
        spec = self.search.propose(recorded)
        if spec is not None or not self.search_ended(recorded) or not self.scores_read(recorded):
            return spec
        done = {(record.run.combination, record.run.seed) for record in recorded.values() if record.run.confirms}
        index = max((record.run.index for record in recorded.values()), default=-1) + 1
        chosen = self.chosen(recorded)
        # Seed by seed: an interrupted confirmation has every chosen combination on the same seeds so far.
        for lap, seed in enumerate(self.confirmation_seeds(recorded), start=self.repetitions + 1):
            for record in chosen:
                run = record.run
                if (run.combination, seed) not in done:
                    return RunSpec(tuple(run.values), tuple(run.names or [None] * len(run.values)), lap, index, seed,
                                   None, True)
        return None

    def upcoming(self, recorded: Mapping[str, RunRecord]) -> list[Run]:
        return self.search.upcoming(recorded)

    def unproposed(self, recorded: Mapping[str, RunRecord]) -> int:
        confirming = sum(record.run.confirms for record in recorded.values())
        return self.search.unproposed(recorded) + max(0, self.count * self.seeds - confirming)

    def decide(self, records: Sequence[RunRecord], snapshot: Snapshot) -> list[Decision]:
        return self.search.decide(self.of_search(records), snapshot)

    def tags(self) -> list[str]:
        return self.search.tags()

    def waits(self, records: Sequence[RunRecord]) -> bool:
        """The search waits for a decision, or the confirmation for the search's last scores."""
        if self.search.waits(self.of_search(records)):
            return True
        recorded = {record.run.run_id: record for record in records}
        return self.search_ended(recorded) and not self.scores_read(recorded) and self.unproposed(recorded) > 0

    def due(self, records: Sequence[RunRecord], snapshot: Snapshot) -> bool:
        return self.search.due(self.of_search(records), snapshot)

    def memory_from_json(self, data: Any, status: Status) -> Any:
        return self.search.memory_from_json(data, status)

    def memory_to_json(self, memory: Any) -> Any:
        return self.search.memory_to_json(memory)

    def standing(self, record: RunRecord) -> Standing | None:
        return None if record.run.confirms else self.search.standing(record)


# ---------------------------------------------------------------------------
# Processes: the platform seam, the local launcher (the only place that touches Popen and signals)
# ---------------------------------------------------------------------------

WINDOWS = os.name == "nt"
# Every process of a run carries this in its environment (the trainer, its
# forked workers, the Unity environment it starts in a session of its own), so
# a left-over process is known to be the run's by more than a pid that may
# have been reused since.
RUN_MARKER = "MLAGENTS_SWEEP_RUN"


@dataclass(frozen=True)
class ProcessIdentity:
    """What tells one process from a later one with the same pid."""

    boot: str  # this boot of the machine ("" where the platform has none to offer)
    start: str  # when the process started, as the OS records it
    marker: str  # the RUN_MARKER value the run was launched with

    def to_json(self) -> dict[str, str]:
        return {"boot": self.boot, "start": self.start, "marker": self.marker}


@dataclass(frozen=True)
class Leftover:
    """What is still alive of a run an earlier sweep was training."""

    run_id: str
    trainer: int | None  # the trainer's pid if it still lives (it is the one that saves the model)
    pids: tuple[int, ...]  # every live process provably of the run, the trainer included
    marker: str = ""


class Platform:
    """What differs by OS: starting a run's process group, interrupting, killing, recognising it later.

    POSIX: each run leads a session and process group of its own; Ctrl-C is SIGINT
    to the group, a kill is SIGKILL to it. Linux adds the death signal and
    /proc; macOS asks ps. Windows: a new process group; Ctrl-C is CTRL_BREAK_EVENT
    and a kill is taskkill /T.
    """

    name = "posix"

    def popen_options(self, death_signal: int = signal.SIGINT) -> dict[str, Any]:
        # Its own session: a Ctrl-C in the sweep's terminal reaches the sweep only,
        # and the sweep decides how each run is stopped.
        return {"start_new_session": True}

    def interrupt(self, popen: subprocess.Popen[bytes]) -> None:
        """What Ctrl-C in the run's own terminal does: ML-Agents saves its model and exits."""
        self.signal_group(popen.pid, signal.SIGINT)

    def terminate(self, popen: subprocess.Popen[bytes]) -> None:
        """For TensorBoard, which has nothing to save."""
        self.signal_group(popen.pid, signal.SIGTERM)

    def kill(self, popen: subprocess.Popen[bytes]) -> None:
        self.signal_group(popen.pid, signal.SIGKILL)

    def exited(self, popen: subprocess.Popen[bytes]) -> int | None:
        """The run's exit code once it has ended, after ending what is left of its group.

        The trainer is looked at without being reaped (WNOWAIT): while it is a
        zombie its pid, so its group id, cannot be reused, so the SIGKILL to the
        group can only reach the run's own forked workers.
        """
        if popen.returncode is not None:
            return popen.returncode  # reaped before: its pid may be another process's now, so nothing is signalled
        try:
            if os.waitid(os.P_PID, popen.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
                return None
        except ChildProcessError:
            pass  # reaped already (by Popen itself)
        self.signal_group(popen.pid, signal.SIGKILL)
        return popen.wait()

    @staticmethod
    def signal_group(pgid: int, sig: signal.Signals) -> None:
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def trainer_command(self, trainer: Sequence[str]) -> tuple[list[str], str | None]:
        """The command runs are started with, and a warning if a stop could lose their model.

        POSIX: the trainer itself; SIGINT is Ctrl-C's own signal.
        """
        return list(trainer), None

    def identify(self, pid: int, marker: str) -> ProcessIdentity | None:
        """The identity of a live process, to be recorded when the sweep starts it."""
        return None

    def leftovers(self, run_id: str, pid: int, identity: ProcessIdentity) -> Leftover | None:
        """What of a run is provably still alive; None if nothing (or nothing provably)."""
        return None

    def marked(self, prefix: str) -> dict[str, list[int]] | None:
        """Every live process whose RUN_MARKER starts with prefix (this sweep's), by marker; None where the
        platform cannot read another process's environment."""
        return None

    def end_marked(self, marker: str) -> None:
        """A run ended: kill what still carries its marker (its environment, in a session of its own, outlives
        a trainer that was killed). Nothing where markers cannot be read."""

    def trainer_alive(self, leftover: Leftover) -> bool:
        """True while a left-over run's trainer still runs."""
        if leftover.trainer is None:
            return False
        try:
            os.kill(leftover.trainer, 0)  # POSIX only: on Windows this would end the process
        except ProcessLookupError:
            return False
        except OSError:
            return True
        return True

    def signal_leftover(self, leftover: Leftover, hard: bool) -> None:
        """SIGINT to the trainer (it saves and closes its workers); hard: SIGKILL to every process of the run."""
        if not hard:
            if leftover.trainer is not None:
                self.signal_group(leftover.trainer, signal.SIGINT)
            return
        for pid in leftover.pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


class LinuxPlatform(Platform):
    """Linux: the death signal, and identities from /proc (boot id, start time, the run's marker)."""

    name = "linux"

    def __init__(self, proc: Path = Path("/proc")) -> None:
        self.proc = proc

    def popen_options(self, death_signal: int = signal.SIGINT) -> dict[str, Any]:
        options = super().popen_options()
        hook = die_with_parent_hook(death_signal)
        if hook is not None:
            options["preexec_fn"] = hook
        return options

    def boot_id(self) -> str:
        try:
            return (self.proc / "sys" / "kernel" / "random" / "boot_id").read_text().strip()
        except OSError:
            return ""

    def stat(self, pid: int) -> tuple[int, str] | None:
        """(process group, start time in clock ticks since boot) of a live process, or None."""
        try:
            text = (self.proc / str(pid) / "stat").read_text(errors="replace")
        except OSError:
            return None
        fields = text[text.rfind(")") + 2:].split()  # the command name may hold spaces and parentheses
        if len(fields) < 20 or fields[0] == "Z":
            return None
        return int(fields[2]), fields[19]

    def marker_of(self, pid: int) -> str | None:
        try:
            environ = (self.proc / str(pid) / "environ").read_bytes()
        except OSError:
            return None
        prefix = RUN_MARKER.encode() + b"="
        for entry in environ.split(b"\0"):
            if entry.startswith(prefix):
                return entry[len(prefix):].decode(errors="replace")
        return None

    def identify(self, pid: int, marker: str) -> ProcessIdentity | None:
        found = self.stat(pid)
        return ProcessIdentity(self.boot_id(), found[1], marker) if found else None

    def leftovers(self, run_id: str, pid: int, identity: ProcessIdentity) -> Leftover | None:
        if not identity.boot or identity.boot != self.boot_id():
            return None  # the machine restarted since: nothing of that run survived
        trainer = pid if (found := self.stat(pid)) is not None and found[1] == identity.start else None
        pids = tuple(other for other in self.pids() if self.marker_of(other) == identity.marker)
        if trainer is not None and trainer not in pids:
            pids = (trainer, *pids)
        return Leftover(run_id, trainer, pids, identity.marker) if pids else None

    def pids(self) -> list[int]:
        try:
            return [int(entry.name) for entry in self.proc.iterdir() if entry.name.isdigit()]
        except OSError:
            return []

    def marked(self, prefix: str) -> dict[str, list[int]] | None:
        found: dict[str, list[int]] = {}
        for pid in self.pids():
            marker = self.marker_of(pid)
            if marker is not None and marker.startswith(prefix) and self.stat(pid) is not None:
                found.setdefault(marker, []).append(pid)
        return found

    def end_marked(self, marker: str) -> None:
        self.signal_leftover(Leftover("", None, (), marker), hard=True)  # a hard stop finds every process with the marker

    def trainer_alive(self, leftover: Leftover) -> bool:
        return leftover.trainer is not None and self.stat(leftover.trainer) is not None  # a zombie is gone

    def signal_leftover(self, leftover: Leftover, hard: bool) -> None:
        # Through a pidfd, checked again once open: a pid that was reused between
        # the look and the signal is then another process, and is left alone.
        # A hard stop looks again for every process with the run's marker, so
        # an environment the trainer started meanwhile is not missed.
        if hard:
            targets = [pid for pid in self.pids() if self.marker_of(pid) == leftover.marker]
        else:
            targets = [leftover.trainer] if leftover.trainer is not None else []
        for pid in targets:
            try:
                handle = os.pidfd_open(pid)
            except OSError:
                continue
            try:
                if self.marker_of(pid) == leftover.marker:
                    signal.pidfd_send_signal(handle, signal.SIGKILL if hard else signal.SIGINT)
            except OSError:
                pass
            finally:
                os.close(handle)


class MacPlatform(Platform):
    """macOS: identities from ps (start time to the second) and the boot time from sysctl.

    A left-over run is recognised by its trainer: while it lives, its session
    holds nothing but the run. Once the trainer is gone, what it left cannot be
    told from other processes, and is not signalled.
    """

    name = "macos"

    def __init__(self, run: Callable[[Sequence[str]], str] | None = None) -> None:
        self.run = run or self._run

    @staticmethod
    def _run(command: Sequence[str]) -> str:
        try:
            return subprocess.run(list(command), capture_output=True, text=True, check=False, timeout=10,
                                  env={**os.environ, "LC_ALL": "C"}).stdout
        except (OSError, subprocess.SubprocessError):
            return ""

    def boot_time(self) -> str:
        match = re.search(r"sec\s*=\s*(\d+)", self.run(["sysctl", "-n", "kern.boottime"]))
        return match.group(1) if match else ""

    def table(self) -> list[tuple[int, int, str]]:
        """(pid, process group, start time) of every process."""
        rows = []
        for line in self.run(["ps", "-A", "-o", "pid=,pgid=,lstart="]).splitlines():
            words = line.split(None, 2)
            if len(words) == 3 and words[0].isdigit() and words[1].isdigit():
                rows.append((int(words[0]), int(words[1]), " ".join(words[2].split())))
        return rows

    def identify(self, pid: int, marker: str) -> ProcessIdentity | None:
        start = next((start for other, _, start in self.table() if other == pid), None)
        return ProcessIdentity(self.boot_time(), start, marker) if start else None

    def leftovers(self, run_id: str, pid: int, identity: ProcessIdentity) -> Leftover | None:
        if not identity.boot or identity.boot != self.boot_time():
            return None
        table = self.table()
        if not any(other == pid and start == identity.start for other, _, start in table):
            return None
        return Leftover(run_id, pid, tuple(other for other, group, _ in table if group == pid or other == pid), identity.marker)


class WindowsPlatform(Platform):
    """Windows: a new process group per run, CTRL_BREAK_EVENT to stop it, taskkill /T to kill it.

    A process is identified by its creation time (GetProcessTimes, 100 ns),
    which no later process with the same pid shares.
    """

    name = "windows"
    CREATE_NEW_PROCESS_GROUP = 0x00000200
    PROCESS_QUERY_LIMITED_INFORMATION = 0x1000

    def __init__(self, kernel32: Any = None, run: Callable[[Sequence[str]], None] | None = None) -> None:
        self._kernel32 = kernel32
        self.run = run or (lambda command: subprocess.run(list(command), capture_output=True, check=False))

    @property
    def kernel32(self) -> Any:
        if self._kernel32 is None:  # pragma: no cover - Windows only
            import ctypes

            self._kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
        return self._kernel32

    def popen_options(self, death_signal: int = signal.SIGINT) -> dict[str, Any]:
        return {"creationflags": self.CREATE_NEW_PROCESS_GROUP}

    def trainer_command(self, trainer: Sequence[str]) -> tuple[list[str], str | None]:
        return interruptible_trainer(trainer, "SIGBREAK")

    def interrupt(self, popen: subprocess.Popen[bytes]) -> None:
        # Python turns CTRL_BREAK_EVENT into SIGBREAK in the run; the launcher in the
        # trainer's Python (see windows_trainer) makes that a KeyboardInterrupt, on
        # which ML-Agents saves its model.
        popen.send_signal(getattr(signal, "CTRL_BREAK_EVENT", 1))

    def terminate(self, popen: subprocess.Popen[bytes]) -> None:
        popen.terminate()

    def kill(self, popen: subprocess.Popen[bytes]) -> None:
        self.taskkill(popen.pid)

    def exited(self, popen: subprocess.Popen[bytes]) -> int | None:
        return popen.poll()

    def taskkill(self, pid: int) -> None:
        system_root = os.environ.get("SystemRoot", r"C:\Windows")
        self.run([os.path.join(system_root, "System32", "taskkill.exe"), "/F", "/T", "/PID", str(pid)])

    def creation_time(self, pid: int) -> str | None:
        import ctypes

        handle = self.kernel32.OpenProcess(self.PROCESS_QUERY_LIMITED_INFORMATION, False, pid)
        if not handle:
            return None
        try:
            times = [ctypes.c_ulonglong() for _ in range(4)]  # creation, exit, kernel, user (FILETIMEs)
            if not self.kernel32.GetProcessTimes(handle, *(ctypes.byref(value) for value in times)):
                return None
            exit_code = ctypes.c_ulong()
            if self.kernel32.GetExitCodeProcess(handle, ctypes.byref(exit_code)) and exit_code.value != 259:
                return None  # 259 = STILL_ACTIVE: anything else has ended
            return str(times[0].value)
        finally:
            self.kernel32.CloseHandle(handle)

    def identify(self, pid: int, marker: str) -> ProcessIdentity | None:
        created = self.creation_time(pid)
        return ProcessIdentity("", created, marker) if created else None

    def leftovers(self, run_id: str, pid: int, identity: ProcessIdentity) -> Leftover | None:
        # A console control event reaches only processes on the sender's console,
        # which an earlier sweep's runs are not: a left-over run can only be killed
        # (taskkill /T: with the processes it started).
        if self.creation_time(pid) != identity.start:
            return None
        return Leftover(run_id, None, (pid,), identity.marker)

    def trainer_alive(self, leftover: Leftover) -> bool:
        return False

    def signal_leftover(self, leftover: Leftover, hard: bool) -> None:
        if hard:
            for pid in leftover.pids:
                if self.creation_time(pid) is not None:
                    self.taskkill(pid)


# What torch says when a GPU has no memory left for a run (PyTorch 1.x to 2.x, and cuBLAS).
OUT_OF_GPU_MEMORY = re.compile(r"CUDA out of memory|CUDA error: out of memory|OutOfMemoryError|CUBLAS_STATUS_ALLOC_FAILED")

# What a run is started under on Windows: the trainer's own Python maps
# SIGBREAK (what CTRL_BREAK_EVENT becomes; its default ends Python at once) to
# KeyboardInterrupt, on which ML-Agents saves its model, then runs ML-Agents'
# own entry point (what the mlagents-learn console script runs) with the
# arguments untouched. Its first argument names the signal, so the same
# launcher can be tried on Linux with another one.
MLAGENTS_ENTRY = "mlagents.trainers.learn"
TRAINER_LAUNCHER = ("import signal,sys;"
                    "name=sys.argv.pop(1);"
                    "signal.signal(getattr(signal,name),signal.default_int_handler);"
                    "sys.argv[0]='mlagents-learn';"
                    f"from {MLAGENTS_ENTRY} import main;"
                    "sys.exit(main())")
# pip writes a console script whose Python's path is long or has spaces as
# `#!/bin/sh` and then `'''exec' "PATH" "$0" "$@"` on the second line.
_PIP_SH_EXEC = re.compile(r"""^'''exec' "?([^"]+?)"? "\$0" """)


def launcher_command(python: str, signal_name: str, arguments: Sequence[str]) -> list[str]:
    """The command line that runs mlagents-learn with `arguments` under TRAINER_LAUNCHER."""
    return [python, "-c", TRAINER_LAUNCHER, signal_name, *arguments]


def trainer_python(trainer: Sequence[str]) -> tuple[str, list[str]] | None:
    """The Python that runs a trainer command, and the arguments that follow the program; None if not found.

    A pip console script names its Python: a Windows .exe launcher carries it
    in a shebang line before its zip, a POSIX script in its first line (or in
    pip's /bin/sh form, see _PIP_SH_EXEC). A venv keeps python.exe beside the
    .exe, a plain install one folder up.
    """
    program, rest = Path(trainer[0]), list(trainer[1:])
    name = program.name.lower()
    if name.startswith("python"):
        return (str(program), rest[2:]) if rest[:2] == ["-m", MLAGENTS_ENTRY] else None
    candidates: list[str] = []
    found = launcher_shebang(program) if name.endswith(".exe") else script_shebang(program)
    if found:
        candidates.append(found)
    if name.endswith(".exe"):
        candidates += [str(program.with_name("python.exe")), str(program.parent.parent / "python.exe")]
    for candidate in candidates:
        if os.path.isfile(candidate):
            return candidate, rest
    return None


def launcher_shebang(program: Path) -> str | None:
    """The interpreter a pip .exe launcher runs: the last `#!` line in the file, before the zip it carries."""
    try:
        data = program.read_bytes()[-(1 << 20):]
    except OSError:
        return None
    start = data.rfind(b"#!")
    end = data.find(b"\n", start)
    if start < 0 or end < 0:
        return None
    return data[start + 2:end].decode(errors="replace").strip().strip('"') or None


def script_shebang(program: Path) -> str | None:
    """The interpreter a script's first line names (through /usr/bin/env, or pip's /bin/sh form)."""
    try:
        with open(program, "rb") as handle:
            head = handle.read(4096).decode(errors="replace").splitlines()
    except OSError:
        return None
    if not head or not head[0].startswith("#!"):
        return None
    words = head[0][2:].strip().split()
    if words[:1] == ["/bin/sh"]:
        match = _PIP_SH_EXEC.match(head[1] + " ") if len(head) > 1 else None
        return match.group(1) if match else None
    if words and os.path.basename(words[0]) == "env" and len(words) > 1:
        return shutil.which(words[1])
    return words[0] if words else None


# Run in the trainer's Python: every distinct run config (YAML text, by number, on stdin as JSON) through
# ML-Agents' own parser, as mlagents-learn reads it; out: what it said of each it refuses. Exit 3: no ML-Agents.
CONFIG_CHECK = """
import json, sys
try:
    import yaml
    from mlagents.plugins.trainer_type import register_trainer_plugins
    from mlagents.trainers.settings import RunOptions
except ImportError:
    sys.exit(3)
register_trainer_plugins()  # without it every trainer type is "Invalid trainer type"
refused = {}
for number, text in json.load(sys.stdin).items():
    try:
        RunOptions.from_dict(yaml.safe_load(text))
    except Exception as exc:  # TrainerConfigError, and cattrs' own for a value of the wrong type
        refused[number] = " ".join(str(exc).split()) or exc.__class__.__name__
json.dump(refused, sys.stdout)
"""


def has_mlagents(python: str) -> bool:
    """True if that Python can import ML-Agents' entry point (found without importing it: 60 ms)."""
    probe = f"import importlib.util,sys;sys.exit(importlib.util.find_spec('{MLAGENTS_ENTRY}') is None)"
    try:
        return subprocess.run([python, "-c", probe], capture_output=True, timeout=60, check=False).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def interruptible_trainer(trainer: Sequence[str], signal_name: str,
                          probe: Callable[[str], bool] = has_mlagents) -> tuple[list[str], str | None]:
    """The trainer command wrapped in TRAINER_LAUNCHER for signal_name, or the plain one and a warning why not."""
    found = trainer_python(trainer)
    if found is not None and probe(found[0]):
        return launcher_command(found[0], signal_name, found[1]), None
    return list(trainer), (f"the Python that runs {trainer[0]} was not found (or cannot import {MLAGENTS_ENTRY}): "
                           "a run stopped on Windows will end without saving its model. Pass --trainer "
                           f'"<its Python> -m {MLAGENTS_ENTRY}" to fix that')


def this_platform() -> Platform:
    """The platform the sweep runs on."""
    if WINDOWS:
        return WindowsPlatform()
    if sys.platform.startswith("linux"):
        return LinuxPlatform()
    if sys.platform == "darwin":
        return MacPlatform()
    return Platform()


class DeathSignal:
    """Linux: a preexec hook that makes the kernel send the child `number` when its parent dies.

    libc is looked up by prepare(), in the parent: between fork and exec the
    child should do as little as possible (an import there cost every launch
    10-100 ms). The libc handle never travels: a Ray node gets this code by value,
    and pickles it (and what it refers to) without the handle; its own copy looks
    libc up again.
    """

    def __init__(self, number: int) -> None:
        self.number = number
        self.prctl: Any = None

    def prepare(self) -> bool:
        if self.prctl is None:
            try:
                import ctypes

                self.prctl = ctypes.CDLL(None, use_errno=True).prctl
            except (OSError, AttributeError):
                return False
        return True

    def __call__(self) -> None:  # pragma: no cover - runs in the child
        self.prctl(1, self.number)  # 1 = PR_SET_PDEATHSIG

    def __reduce__(self) -> tuple[Any, ...]:
        return DeathSignal, (self.number,)


_death_signals: dict[int, DeathSignal] = {}  # die_with_parent_hook's, by signal, made once


def die_with_parent_hook(death_signal: int = signal.SIGINT) -> Callable[[], None] | None:
    """Linux: a hook for the child that makes the kernel send it death_signal if its parent dies:
    SIGINT, so a run whose sweep was killed saves its model and exits instead of training on.
    (Not functools.lru_cache: its wrapper pickles by name, and a Ray node, which
    gets this code by value, has no module of that name to find it in.)"""
    hook = _death_signals.setdefault(int(death_signal), DeathSignal(int(death_signal)))
    return hook if hook.prepare() else None


class LaunchError(Exception):
    """A run could not be started; the run fails with this reason, the sweep goes on."""


@dataclass(frozen=True)
class Exit:
    """How a run's process ended: its exit code, or why the launcher lost it (its node went away), or why it never started."""

    code: int | None
    lost: str = ""
    error: str = ""


@dataclass
class LaunchRequest:
    """What a launcher needs to start one run."""

    run: Run
    slot: int  # 0 .. concurrency-1, free while this run trains
    log_path: Path
    command: Callable[[tuple[int, int] | None], list[str]]  # the run's command line, given its ports
    needs_ports: bool  # trains against a build (--env): needs a port range of its own
    marker: str  # RUN_MARKER for every process of the run
    environment: Mapping[str, str] = field(default_factory=dict)  # set for the run's processes (its GPU)


class RunHandle(Protocol):
    """One started run, wherever it trains."""

    @property
    def pid(self) -> int | None: ...
    @property
    def identity(self) -> ProcessIdentity | None: ...
    @property
    def node(self) -> str: ...  # where it trains ("" on this machine)
    @property
    def ports(self) -> tuple[int, int] | None: ...

    def ready(self) -> bool: ...  # its process runs (where, with what pid and ports, is known)
    def poll(self) -> Exit | None: ...
    def interrupt(self) -> None: ...
    def kill(self) -> None: ...


class Launcher(Protocol):
    """Starts runs; the local launcher and a cluster one are two of these."""

    def start(self, request: LaunchRequest) -> RunHandle: ...
    def close(self) -> None: ...


class LocalRun:
    """A run training on this machine, in its own process group, its output in its log file."""

    node = ""

    def __init__(self, popen: subprocess.Popen[bytes], platform: Platform, ports: tuple[int, int] | None, marker: str,
                 lane: Any = None) -> None:
        self.popen, self.platform, self.ports, self.marker = popen, platform, ports, marker
        self.pid = popen.pid
        self.identity = platform.identify(popen.pid, marker)
        self.lane = lane  # the lock on its ports, held while it trains

    def ready(self) -> bool:
        return True

    def poll(self) -> Exit | None:
        code = self.platform.exited(self.popen)
        if code is None:
            return None
        self.platform.end_marked(self.marker)  # nothing of the run outlives it: its environment neither
        release_lane(self.lane)
        self.lane = None
        return Exit(code)

    def interrupt(self) -> None:
        self.platform.interrupt(self.popen)

    def kill(self) -> None:
        self.platform.kill(self.popen)


def start_process(command: Sequence[str], log_path: Path, platform: Platform,
                  environment: Mapping[str, str] | None = None, death_signal: int = signal.SIGINT,
                  folder: str | None = None) -> subprocess.Popen[bytes]:
    """A process in its own group (in folder, else ours), its stdout and stderr appended to log_path;
    on Linux the kernel sends it death_signal if its parent dies."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(list(command), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env=dict(environment) if environment is not None else None, cwd=folder,
                                **platform.popen_options(death_signal))


class LocalLauncher:
    """Starts runs on this machine; each slot has its own lane of ports, so concurrent runs never share one."""

    def __init__(self, platform: Platform, *, base_port: int, concurrency: int, stride: int,
                 is_port_free: Callable[[int], bool] | None = None, say: Callable[[str], None] = lambda text: None,
                 locks: Path | None = None) -> None:
        self.platform, self.base_port, self.concurrency, self.stride = platform, base_port, concurrency, stride
        self.is_port_free = is_port_free or port_free
        self.say = say
        self.locks = locks

    def pick_ports(self, slot: int, run: Run) -> tuple[tuple[int, int], Any]:
        """The slot's own port range, base + slot * stride, moved up (a lane of its own each time) past ports
        other programs hold and lanes another sweep's runs hold; and the lock that holds it."""
        return take_port_lane(self.base_port, run.instances, self.stride, first_lane=slot, lane_step=self.concurrency,
                              is_port_free=self.is_port_free, locks=self.locks,
                              skipped=lambda why: self.say(f"{why}; {run.run_id} skips it"))

    def start(self, request: LaunchRequest) -> LocalRun:
        ports, lane = self.pick_ports(request.slot, request.run) if request.needs_ports else (None, None)
        command = request.command(ports)
        try:
            popen = start_process(command, request.log_path, self.platform,
                                  {**os.environ, **request.environment, RUN_MARKER: request.marker})
        except OSError as exc:  # e.g. the trainer vanished from PATH mid-sweep
            release_lane(lane)
            raise LaunchError(f"could not start {command[0]}: {exc.strerror or exc}") from None
        return LocalRun(popen, self.platform, ports, request.marker, lane)

    def close(self) -> None:
        pass


def with_base_port(command: Sequence[str], port: int) -> list[str]:
    """A run's command line with --base-port put where run_command puts it: right after --run-id."""
    at = next((index for index, word in enumerate(command) if word.startswith("--run-id=")), len(command) - 1)
    return [*command[:at + 1], f"--base-port={port}", *command[at + 1:]]


# Where the lanes of ports taken on this machine are locked, by every sweep and every Ray node on it.
PORT_LOCKS = Path(tempfile.gettempdir()) / "mlagents-sweep-ports"


def take_port_lane(base_port: int, instances: int, stride: int, *, first_lane: int = 0, lane_step: int = 1,
                   is_port_free: Callable[[int], bool] | None = None, locks: Path | None = None,
                   skipped: Callable[[str], None] = lambda why: None) -> tuple[tuple[int, int], Any]:
    """A lane of free ports on this machine, held by an exclusive lock file for as long as the caller keeps it.

    A trainer binds its ports only once it has imported torch, seconds after it
    started: until then its ports look free to any other sweep. So runs of one
    machine (of any sweep, of any Ray node on it) never share a lane: each
    holds its lane's lock in the machine's temp folder; the OS drops it when
    the process dies. Lanes are first_lane, first_lane + lane_step, ...
    """
    folder = locks or PORT_LOCKS
    is_free = is_port_free or port_free
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LaunchError(f"cannot make the folder of port locks {folder} ({exc.strerror or exc})") from None
    lane = first_lane
    while True:
        first = base_port + lane * stride
        last = first + instances - 1
        if last > 65535:
            raise LaunchError("no free port range below 65536")
        lane += lane_step
        try:
            handle = open(folder / f"{first}.lock", "a+b")
        except OSError as exc:
            raise LaunchError(f"cannot lock ports in {folder} ({exc.strerror or exc})") from None
        if not SweepLock._try_lock(handle):
            handle.close()
            skipped(f"ports {first}-{last} are held by another sweep's run" if last > first
                    else f"port {first} is held by another sweep's run")
            continue
        taken = [port for port in range(first, last + 1) if not is_free(port)]
        if not taken:
            return (first, last), handle
        handle.close()
        skipped(f"port {taken[0]} is in use by another program")


def release_lane(lane: Any) -> None:
    """Let another run take the lane of ports (see take_port_lane)."""
    if lane is not None:
        lane.close()


# Between a run's actor and its trainer on a Ray node. When a Ray worker exits
# (its raylet died, its owner died, it was killed) Ray SIGKILLs the worker's
# children: a trainer started by the actor itself would die without saving.
# Ray kills one level only, so the actor starts this keeper, which starts the
# trainer and waits. The kernel kills the keeper when the actor dies and sends
# the trainer SIGINT when the keeper dies: it saves its model and exits. The
# keeper shares the trainer's process group, so a stop (SIGINT to the group)
# or a kill reaches both; it lets the trainer act on a SIGINT, then ends as the
# trainer ended.
TRAINER_KEEPER = """
import ctypes, os, signal, subprocess, sys
signal.signal(signal.SIGINT, lambda *_: None)  # not SIG_IGN: the trainer would inherit that
prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None
try:
    trainer = subprocess.Popen(sys.argv[1:], preexec_fn=(lambda: prctl(1, signal.SIGINT)) if prctl else None)
except OSError as exc:
    sys.exit(f"could not start {sys.argv[1]}: {exc.strerror or exc}")
code = trainer.wait()
if code < 0:
    signal.signal(-code, signal.SIG_DFL)
    os.kill(os.getpid(), -code)
sys.exit(code)
"""


class RunActor:
    """A slot on a Ray node: trains runs there one after another, each as the local launcher would.

    An actor that has trained a run takes the sweep's next one (see RayLauncher):
    starting a fresh actor costs a Python process on the node and our code
    unpickled in it, about half a second per run that the node would sit idle.

    The keeper (TRAINER_KEEPER) is forked by a thread of the actor's own that
    lives as long as the actor: on Linux the death signal comes when the thread
    that forked a child ends, and Ray runs actor methods on threads of its own.
    So the keeper dies, and the trainer gets SIGINT (saves, exits), exactly when
    the actor's process dies: the driver died, or the node went away.
    """

    def __init__(self) -> None:
        self.platform = this_platform()
        self.popen: subprocess.Popen[bytes] | None = None
        self.lane: Any = None  # the lock on the current run's ports
        self.error = ""
        self.code: int | None = None
        self.started = threading.Event()
        self.ended = threading.Event()
        self.requests: queue.Queue[tuple[list[str], str, dict[str, str], str]] = queue.Queue()
        threading.Thread(target=self._parent, name="trainer-parent", daemon=True).start()

    def _parent(self) -> None:
        # Ray's worker threads block SIGINT and SIGTERM, and a child inherits its
        # thread's signal mask through exec: the trainer would never see the
        # Ctrl-C that makes it save.
        if hasattr(signal, "pthread_sigmask"):
            signal.pthread_sigmask(signal.SIG_SETMASK, [])
        while True:
            command, log_path, environment, folder = self.requests.get()
            try:
                self.popen = start_process([sys.executable, "-c", TRAINER_KEEPER, *command], Path(log_path), self.platform,
                                           environment, death_signal=signal.SIGKILL, folder=folder)
            except OSError as exc:
                self.error = f"could not start {command[0]} on its node: {exc.strerror or exc}"
            else:
                self.started.set()
                while (code := self.platform.exited(self.popen)) is None:
                    time.sleep(TICK)
                self.platform.end_marked(environment[RUN_MARKER])
                self.code = code
            self.release_ports()
            self.started.set()
            self.ended.set()

    def release_ports(self) -> None:
        release_lane(self.lane)
        self.lane = None

    def launch(self, command: list[str], folder: str, log_path: str, marker: str, base_port: int | None, instances: int,
               stride: int) -> dict[str, Any]:
        """Start a run in the sweep's working folder (its relative paths mean there what they mean
        to the sweep); where it runs and what identifies it, or {"error": why}. The actor's previous
        run, if any, has ended: the driver gives an actor a run only then."""
        import ray

        self.popen, self.error, self.code = None, "", None
        self.started.clear()
        self.ended.clear()
        ports = None
        if base_port is not None:
            try:
                ports, self.lane = take_port_lane(base_port, instances, stride)
            except LaunchError as exc:
                return {"error": f"{exc} on its node"}
            command = with_base_port(command, ports[0])
        self.requests.put((command, log_path, {**os.environ, RUN_MARKER: marker}, folder))
        self.started.wait()
        if self.error or self.popen is None:
            return {"error": self.error or "the trainer did not start"}
        identity = self.platform.identify(self.popen.pid, marker)
        context = ray.get_runtime_context()
        return {"node": node_name(context.get_node_id(), ray.util.get_node_ip_address()), "pid": self.popen.pid,
                "identity": identity.to_json() if identity else None, "ports": ports}

    def wait_exit(self) -> int | None:
        self.ended.wait()
        return self.code

    def interrupt(self) -> None:
        if self.popen is not None:
            self.platform.interrupt(self.popen)

    def kill(self) -> None:
        if self.popen is not None:
            self.platform.kill(self.popen)


def node_name(node_id: str, address: str) -> str:
    """A node as the console names it: its address and the start of its Ray id (nodes may share an address)."""
    return f"{address}/{node_id[:8]}"


def node_check(probe: str, folder: str, program: str) -> tuple[bool, bool, bool]:
    """Run on a node: does it see the sweep's results folder (the probe file in it) and its working
    folder, and can it run the trainer there?"""
    found = shutil.which(program) if os.path.basename(program) == program else os.path.join(folder, program)
    return os.path.isfile(probe), os.path.isdir(folder), bool(found) and os.path.isfile(found)


def import_ray() -> tuple[Any, str | None]:
    """Ray, imported only for --ray (a local sweep needs nothing beyond pyyaml), and a warning if it lacks
    the switch that keeps it from connecting again by itself."""
    try:
        import ray
    except ImportError:
        raise SweepError("--ray needs Ray, which is not installed here", "command line",
                         "pip install ray into the Python that runs this script, the same version as the cluster's") from None
    # Ray connects by itself when one of its calls finds it disconnected (its head went away): to a
    # cluster of its choosing, or it waits for one for good. A call should fail instead. The switch is
    # Ray's own, not a documented one: it is checked, so a Ray that renamed it is said, not trusted.
    hook: Any
    try:
        from ray._private import auto_init_hook as hook
    except ImportError:
        hook = None
    if hook is None or not hasattr(hook, "enable_auto_connect"):
        return ray, (f"Ray {getattr(ray, '__version__', '?')} has no ray._private.auto_init_hook.enable_auto_connect: "
                     "should the cluster's head go away, Ray may connect again by itself, or wait for a cluster for good")
    hook.enable_auto_connect = False
    return ray, None


class RayRun:
    """A run on a Ray cluster: waiting for a slot (an actor), then training on the slot's node."""

    def __init__(self, launcher: "RayLauncher", request: LaunchRequest) -> None:
        self.launcher, self.ray, self.request = launcher, launcher.ray, request
        self.actor: Any = None  # its slot, once it has one
        self.launched: Any = None  # the slot's answer to launch
        self.pid: int | None = None
        self.identity: ProcessIdentity | None = None
        self.ports: tuple[int, int] | None = None
        self.node = ""
        self.exit_ref: Any = None
        self.outcome: Exit | None = None  # how it ended, once known

    def bind(self, actor: Any) -> None:
        """Train in this slot (a new actor Ray places when a node has the resources, or one whose run ended)."""
        request = self.request
        self.actor = actor
        self.launched = actor.launch.remote(request.command(None), self.launcher.folder, str(request.log_path.resolve()),
                                            request.marker, self.launcher.base_port if request.needs_ports else None,
                                            request.run.instances, self.launcher.stride)

    def ready(self) -> bool:
        """True once the run's trainer runs on a node (or it can no longer)."""
        if self.exit_ref is not None or self.outcome is not None:
            return True
        if self.launched is None:  # no slot yet: poll() gives it one when one is free
            return False
        done, _ = self.ray.wait([self.launched], timeout=0)
        if not done:
            return False
        try:
            found = self.ray.get(self.launched)
        except self.ray.exceptions.RayError as exc:
            self.end(Exit(None, lost=f"its node went away before it started ({exc.__class__.__name__})"))
            return True
        if "error" in found:
            self.end(Exit(None, error=found["error"]))
            return True
        self.pid, self.node, self.ports = found["pid"], found["node"], tuple(found["ports"]) if found["ports"] else None
        self.identity = ProcessIdentity(**found["identity"]) if found["identity"] else None
        self.exit_ref = self.actor.wait_exit.remote()
        return True

    def end(self, outcome: Exit) -> None:
        self.outcome = outcome
        self.launcher.finished(self, reusable=not outcome.lost)

    def poll(self) -> Exit | None:
        self.launcher.place()  # every tick: waiting runs take free slots, idle slots go back to the cluster
        if self.outcome is not None or not self.ready():
            return self.outcome
        done, _ = self.ray.wait([self.exit_ref], timeout=0)
        if not done:
            return None
        try:
            code = self.ray.get(self.exit_ref)
        except self.ray.exceptions.RayError:
            self.end(Exit(None, lost=f"its node {self.node} went away"))
        else:
            self.end(Exit(code))
        return self.outcome

    def interrupt(self) -> None:
        if self.exit_ref is not None:
            self.actor.interrupt.remote()
        elif self.outcome is None:
            self.end(Exit(None))  # not training yet: nothing trained, nothing to save

    def kill(self) -> None:
        if self.exit_ref is not None:
            self.actor.kill.remote()
        elif self.outcome is None:
            self.end(Exit(None))


# How long a slot whose run ended waits for the sweep's next run before it gives
# its resources back to the cluster: the supervisor starts the next run in the
# tick that reaped the last, so a few ticks are plenty.
SLOT_KEEP = 5 * TICK


class RayLauncher:
    """Starts runs on a Ray cluster: each in a slot, a Ray actor holding one run's resources on whichever
    node has them; a slot whose run ended takes the next, else the cluster gets its resources back."""

    def __init__(self, address: str, *, cpus: float, gpus: float, base_port: int, stride: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ray, self.warning = import_ray()
        ray = self.ray
        import logging

        try:
            ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR, namespace="mlagents-sweep")
        except Exception as exc:  # ray raises ConnectionError, RuntimeError, ValueError ... for a cluster it cannot reach
            raise SweepError(f"cannot connect to the Ray cluster at {address} ({exc.__class__.__name__}: {str(exc)[:120]})",
                             "--ray", "start one (ray start --head), or pass its address: --ray HOST:PORT or ray://HOST:10001") from None
        if __name__ != "__main__":  # loaded as a module (tests): its code travels to the nodes by value
            ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
        self.cpus, self.gpus, self.base_port, self.stride, self.clock = cpus, gpus, base_port, stride, clock
        self.folder = os.getcwd()  # each run trains here on its node, so relative paths mean what they mean here
        self.actor_class = ray.remote(RunActor).options(num_cpus=cpus, num_gpus=gpus, max_concurrency=4, max_restarts=0)
        self.runs: list[RayRun] = []
        self.waiting: list[RayRun] = []  # started by the supervisor, no slot yet: they get one in this order
        self.placing: list[RayRun] = []  # given a new actor that Ray has not placed yet
        self.idle: list[tuple[Any, float]] = []  # (slot, since when) whose run ended
        self.free: tuple[float, dict[str, float]] | None = None  # (when, the cluster's free resources then)

    def start(self, request: LaunchRequest) -> RayRun:
        run = RayRun(self, request)
        self.runs.append(run)
        self.waiting.append(run)
        self.place()
        return run

    def place(self) -> None:
        """Waiting runs take idle slots first, in the order they were started; a new slot is made only
        while the cluster has room for it, so that no idle slot holds resources a new one waits for."""
        self.placing = [run for run in self.placing if run.outcome is None and run.exit_ref is None
                        and not self.ray.wait([run.launched], timeout=0)[0]]
        while self.waiting and self.idle:
            self.waiting.pop(0).bind(self.idle.pop(0)[0])
        for _ in range(self.room() if self.waiting else 0):
            run = self.waiting.pop(0)
            run.bind(self.actor_class.remote())
            self.placing.append(run)
        now = self.clock()
        for slot, since in list(self.idle):
            if now - since > SLOT_KEEP:
                self.idle.remove((slot, since))
                self.ray.kill(slot)

    def room(self) -> int:
        """How many more slots the cluster holds now, less those Ray is still placing (its view of
        free resources lags a little: a slot too many only waits, as every slot would without this)."""
        now = self.clock()
        if self.free is None or now - self.free[0] > TICK / 2:  # asked once a tick, not once per waiting run
            self.free = (now, self.ray.available_resources())
        free = self.free[1]
        fits = [free.get("CPU", 0) / self.cpus] + ([free.get("GPU", 0) / self.gpus] if self.gpus else [])
        return max(0, min(int(min(fits) + 1e-9) - len(self.placing), len(self.waiting)))

    def finished(self, run: RayRun, reusable: bool) -> None:
        """A run ended: its slot takes the next waiting run, or waits a moment for one."""
        if run in self.waiting:
            self.waiting.remove(run)
        if run.actor is None:
            return
        if reusable and run.exit_ref is not None:
            self.idle.append((run.actor, self.clock()))
            self.place()
        else:
            self.ray.kill(run.actor)  # lost, or never trained in it: give its resources back

    def nodes(self) -> list[dict[str, Any]]:
        """The live nodes that have the resources of one run."""
        return [node for node in self.ray.nodes() if node.get("Alive") and node["Resources"].get("CPU", 0) >= self.cpus
                and node["Resources"].get("GPU", 0) >= self.gpus]

    def describe(self) -> str:
        nodes = self.nodes()
        cpus = sum(node["Resources"].get("CPU", 0) for node in nodes)
        gpus = sum(node["Resources"].get("GPU", 0) for node in nodes)
        return f"{len(nodes)} node{'s' if len(nodes) != 1 else ''} for runs, {cpus:g} CPUs" + (f", {gpus:g} GPUs" if gpus else "")

    def check_nodes(self, results_dir: Path, trainer: Sequence[str]) -> None:
        """Before anything is written: every node that could take a run sees the results folder and has the trainer."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        nodes = self.nodes()
        if not nodes:
            wants = f"{self.cpus:g} CPU" + (f" and {self.gpus:g} GPU" if self.gpus else "")
            raise SweepError(f"no node of the Ray cluster has {wants} for a run", "--ray",
                             "lower --cpus-per-run or --gpus-per-run, or add a node with ray start --address")
        made = not results_dir.exists()
        probe = results_dir / f".mlagents-sweep-probe-{os.urandom(6).hex()}"
        try:
            results_dir.mkdir(parents=True, exist_ok=True)
            probe.write_text("a sweep checks that every Ray node sees this folder\n", encoding="utf-8")
        except OSError as exc:
            raise SweepError(f"cannot write the results folder ({exc.strerror or exc})", str(results_dir),
                             "check that it is writable, or pass --results-dir") from None
        check = self.ray.remote(node_check)
        try:
            answers = self.ray.get([check.options(num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False))
                                    .remote(str(probe.resolve()), self.folder, trainer[0]) for node in nodes], timeout=120)
        finally:
            probe.unlink()
            if made:
                shutil.rmtree(results_dir, ignore_errors=True)
        for node, (sees, has_folder, runs) in zip(nodes, answers):
            name = node_name(node["NodeID"], node["NodeManagerAddress"])
            if not sees:
                raise SweepError(f"Ray node {name} cannot see the results folder {results_dir.resolve()}", "--ray",
                                 "put --results-dir on storage that every node mounts at the same path (NFS or the like)")
            if not has_folder:
                raise SweepError(f"Ray node {name} has no folder {self.folder}, where the sweep runs", "--ray",
                                 "start the sweep from a folder every node sees at the same path (the shared one)")
            if not runs:
                raise SweepError(f"Ray node {name} cannot run the trainer {trainer[0]}", "--ray",
                                 "install ML-Agents at the same path on every node, or pass --trainer with a command all have")

    def close(self) -> None:
        if not self.ray.is_initialized():
            return  # the driver lost the cluster (its head went away): nothing of it is ours to free
        slots = [run.actor for run in self.runs if run.outcome is None and run.actor is not None]
        for slot in slots + [slot for slot, _ in self.idle]:
            # The cluster may be gone already, and then nothing is left to free.
            try:
                self.ray.kill(slot)
            except Exception:  # nosec B110
                pass
        self.ray.shutdown()


class Waker:
    """The supervisor's sleep, cut short when a child exits or a signal arrives (POSIX, main thread).

    Without it a finished run would wait for the next tick to free its slot;
    with many short runs those ticks add up.
    """

    def __init__(self) -> None:
        self.reader: int | None = None
        self.previous: tuple[int, Any] | None = None

    def __enter__(self) -> Waker:
        if WINDOWS or threading.current_thread() is not threading.main_thread():
            return self
        self.reader, writer = os.pipe()
        os.set_blocking(self.reader, False)
        os.set_blocking(writer, False)
        self.writer = writer
        # A Python-level SIGCHLD handler (which exec resets in the children) makes
        # the kernel's signal write a byte to the wakeup pipe that select waits on.
        self.previous = (signal.set_wakeup_fd(writer, warn_on_full_buffer=False),
                         signal.signal(signal.SIGCHLD, lambda signum, frame: None))
        return self

    def sleep(self, seconds: float) -> None:
        if self.reader is None:
            time.sleep(seconds)
            return
        if select.select([self.reader], [], [], max(seconds, 0.0))[0]:
            try:
                while os.read(self.reader, 4096):
                    pass
            except BlockingIOError:
                pass

    def __exit__(self, *exc: object) -> None:
        if self.reader is None or self.previous is None:
            return
        signal.set_wakeup_fd(self.previous[0])
        signal.signal(signal.SIGCHLD, self.previous[1])
        os.close(self.reader)
        os.close(self.writer)
        self.reader = None


def port_free(port: int) -> bool:
    """True if no program listens on port (a run that ended and left TIME_WAIT does not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        if WINDOWS:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)  # type: ignore[attr-defined]
        else:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("", port))
        except OSError:
            return False
    return True


def resolve_command(command: str, flag: str = "--trainer") -> list[str] | None:
    """A command line as an argument list with its program found on PATH, or None."""
    try:
        words = shlex.split(command, posix=not WINDOWS)
    except ValueError as exc:
        raise SweepError(f"{flag} {command!r} cannot be split into words ({exc})", flag,
                         "quote it as a shell would, e.g. --trainer \"/path with spaces/mlagents-learn\"") from None
    if not words:
        return None
    program = shutil.which(words[0])
    if program is None:
        return None
    return [program, *words[1:]]


def find_tensorboard(trainer: Sequence[str]) -> str | None:
    """The tensorboard of the environment that has the trainer, else the one on PATH."""
    folder = Path(trainer[0]).parent
    for name in ("tensorboard", "tensorboard.exe"):
        candidate = folder / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("tensorboard")


class TensorBoardProcess:
    """A TensorBoard the sweep started for itself, stopped at the end.

    Its group is signalled only while its leader is alive or an unreaped zombie
    (see Platform.exited): once reaped, its pid, so its group id, may be
    another program's, and a signal would hit that program.
    """

    def __init__(self, command: Sequence[str], log_path: Path, platform: Platform) -> None:
        self.platform = platform
        self.popen = start_process(command, log_path, platform)

    def poll(self) -> int | None:
        return self.platform.exited(self.popen)  # what is left of its group (its data server) goes with it

    def terminate(self, timeout: float = 10.0) -> None:
        if self.poll() is not None:
            return
        self.platform.terminate(self.popen)
        deadline = time.monotonic() + timeout
        while self.poll() is None:
            if time.monotonic() >= deadline:
                self.platform.kill(self.popen)
                deadline = math.inf
            time.sleep(0.05)


def link_folder(target: Path, link: Path) -> None:
    """A link to a folder that need not exist yet: a symlink, on Windows a junction (no privilege needed)."""
    if WINDOWS:
        import _winapi  # type: ignore[import-not-found]

        _winapi.CreateJunction(str(target), str(link))
    else:
        os.symlink(target, link, target_is_directory=True)


class SweepView:
    """What the sweep's own TensorBoard reads: a folder of links to this sweep's runs, and its HParams experiment.

    TensorBoard reads a whole folder, and a results folder holds every sweep
    ever run there: over it, the HParams tab takes one sweep's experiment (its
    columns) for all of them. So the sweep's own TensorBoard reads this folder
    instead, outside the results folder (TensorBoard follows links, so one
    over the results folder would find every run twice if it were inside):
    a link per run, named as ML-Agents names its folder, so the runs keep
    their names; the experiment beside them. A link may point where nothing
    is yet: TensorBoard looks again at every reload. Where no link can be made,
    the view is the results folder itself.
    """

    def __init__(self, results_dir: Path, folder: Path | None = None) -> None:
        self.results_dir = results_dir
        self.folder = folder if folder is not None else Path(tempfile.mkdtemp(prefix="mlagents-sweep-view-"))
        self.folder.mkdir(parents=True, exist_ok=True)
        self.shown: set[str] = set()
        self.whole = False  # links cannot be made here: the TensorBoard reads the results folder
        probe = self.folder / ".probe"
        try:
            link_folder(results_dir.resolve(), probe)
            probe.rmdir() if WINDOWS else probe.unlink()
        except (OSError, NotImplementedError, AttributeError):
            self.whole = True

    @property
    def logdir(self) -> Path:
        return self.results_dir if self.whole else self.folder

    def show(self, run_id: str) -> None:
        if self.whole or run_id in self.shown:
            return
        try:
            link_folder(self.results_dir.resolve() / run_id, self.folder / run_id)
        except FileExistsError:
            pass
        except OSError:
            return  # it cannot show this run (a full disk?); the rest it shows
        self.shown.add(run_id)

    def close(self) -> None:
        """Remove the folder: rmtree removes a link itself, never what it points to (a symlink; on Windows
        a junction too, since Python 3.8)."""
        shutil.rmtree(self.folder, ignore_errors=True)


# ---------------------------------------------------------------------------
# The sweep store: the sweep folder, its lock, its state file
# ---------------------------------------------------------------------------


def write_atomically(path: Path, text: str) -> None:
    """Write a file so that a reader (or a crash) never sees half of it."""
    write_atomically_bytes(path, text.encode("utf-8"))


def write_atomically_bytes(path: Path, data: bytes) -> None:
    temporary = path.with_name("." + path.name + ".tmp")  # hidden: an event file is not one until it is whole
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    except OSError:
        try:
            temporary.unlink()  # a full disk must not keep a half-written copy either
        except OSError:
            pass
        raise


class SweepLock:
    """An exclusive lock on the sweep folder for the sweep's whole life; the OS releases it if the sweep dies.

    The file holds the pid of the sweep that holds it, after a first byte that
    is the one locked (Windows refuses to read a locked byte).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle: Any = None

    @staticmethod
    def _try_lock(handle: Any) -> bool:
        try:
            if WINDOWS:  # pragma: no cover - Windows only
                import msvcrt

                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
            else:
                import fcntl

                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        return True

    @staticmethod
    def _holder(handle: Any) -> int:
        handle.seek(1)
        text = handle.read(32).decode("ascii", errors="replace").strip()
        return int(text) if text.isdigit() else -1

    def holder(self) -> int | None:
        """The pid of a live sweep that holds the lock (-1 if unknown), else None; creates and changes nothing."""
        try:
            handle = open(self.path, "rb")
        except OSError:
            return None
        with handle:
            return None if self._try_lock(handle) else self._holder(handle)  # closing releases a lock just taken

    def acquire(self) -> int | None:
        """Take the lock and write this sweep's pid in it; if a live sweep holds it, its pid (-1 if unknown)."""
        handle = open(self.path, "a+b")
        if not self._try_lock(handle):
            holder = self._holder(handle)
            handle.close()
            return holder
        handle.seek(0)
        handle.truncate()
        handle.write(b" " + str(os.getpid()).encode() + b"\n")
        handle.flush()
        self.handle = handle
        return None

    def release(self) -> None:
        if self.handle is not None:
            self.handle.close()  # closing the file releases the lock
            self.handle = None


class SweepStore:
    """Owns the sweep folder: the runs' configs, config_info.txt, logs/, the lock and sweep_state.json."""

    def __init__(self, settings: Settings, write: Callable[[Path, str], None] = write_atomically) -> None:
        self.settings = settings
        self.folder = settings.sweep_dir
        self.write = write
        self.lock = SweepLock(self.folder / LOCK_FILE)
        self.listed: list[Run] = []  # the runs config_info.txt lists

    @property
    def state_path(self) -> Path:
        return self.folder / STATE_FILE

    def refuse_if_live(self) -> None:
        """Refuse if a live sweep holds the folder; creates nothing."""
        self.refuse(self.lock.holder())

    def refuse(self, holder: int | None) -> None:
        if holder is not None:
            pid = f"pid {holder}" if holder > 0 else "another process"
            raise SweepError(f"a sweep is running in this folder ({pid})", str(self.folder),
                             "wait for it to end or stop it (Ctrl-C in its terminal), or choose another --run-id")

    def take(self) -> None:
        """Make the folder and lock it, or refuse: another sweep is live in it."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            holder = self.lock.acquire()
        except OSError as exc:
            raise SweepError(f"cannot write the sweep folder ({exc.strerror or exc})", str(self.folder),
                             "check that the results folder is writable, or pass --results-dir") from None
        self.refuse(holder)

    def release(self) -> None:
        self.lock.release()

    def started_before(self) -> bool:
        """True if a sweep (not a dry run) already ran in this folder."""
        return self.state_path.exists()

    def write_folder(self, runs: Sequence[Run], fresh: bool, configs: bool = False) -> None:
        """config_info.txt, configs/ and logs/ (with every run's config if configs: a dry run's plan);
        fresh: old configs go first."""
        folder = self.folder / "configs"
        try:
            if fresh and folder.is_dir():
                shutil.rmtree(folder)  # a smaller grid must not leave configs of runs it no longer has
            folder.mkdir(exist_ok=True)
            (self.folder / "logs").mkdir(exist_ok=True)
            for run in runs if configs else ():
                # Plain writes: no run has started yet, and a temp file and a rename each would double the file work.
                self.settings.config_path_of(run).write_text(dump_config(run.config), encoding="utf-8")
            write_atomically(self.folder / "config_info.txt", render_config_info(runs, self.settings.repetitions))
            self.listed = list(runs)
        except OSError as exc:
            raise SweepError(f"cannot write the sweep folder ({exc.strerror or exc})", str(self.folder),
                             "check that the results folder is writable and not full, or pass --results-dir") from None

    def list_run(self, run: Run) -> None:
        """A search's trial in config_info.txt, once it is drawn (OSError if it cannot be written)."""
        if any(listed.run_id == run.run_id for listed in self.listed):
            return
        self.write(self.folder / "config_info.txt", render_config_info([*self.listed, run], self.settings.repetitions))
        self.listed.append(run)

    def log_tail(self, run: Run, size: int = 64 * 1024) -> str:
        """The end of a run's log ("" if it cannot be read): why it failed, in the trainer's words."""
        try:
            with open(self.settings.log_path_of(run), "rb") as log:
                log.seek(max(0, log.seek(0, os.SEEK_END) - size))
                return log.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def write_config(self, run: Run) -> None:
        """A run's complete config, when the run is recorded (OSError if it cannot be written)."""
        self.write(self.settings.config_path_of(run), dump_config(run.config))

    def save(self, state: Mapping[str, Any]) -> OSError | None:
        """Write the state file; the error if it could not be written (a full disk: the caller tries again)."""
        # Compact: it is rewritten at every start and end, and a big grid makes it long.
        try:
            self.write(self.state_path, json.dumps(state, separators=(",", ":")) + "\n")
        except OSError as exc:
            return exc
        return None

    def load(self) -> dict[str, Any] | None:
        """The state an earlier sweep left, its outer fields checked (its runs are read by read_records);
        None if there is none."""
        try:
            text = self.state_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise state_error(self.state_path, f"cannot be read ({exc.__class__.__name__})") from None
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise state_error(self.state_path, f"cannot be read ({exc.__class__.__name__})") from None
        return check_state(data, self.state_path)


def state_error(path: Path, what: str) -> SweepError:
    return SweepError(f"the sweep's state file {what}", str(path), "start the sweep anew with --force, or choose another --run-id")


def check_state(data: Any, path: Path) -> dict[str, Any]:
    """A state file's outer fields, checked: this version's, with an id, a made_by and a list of runs."""
    if isinstance(data, dict) and isinstance(data.get("version"), int) and data["version"] < STATE_VERSION:
        raise SweepError(f"the sweep's state file was written by an older mlagents-learn.py (state version "
                         f"{data['version']}, this one reads {STATE_VERSION})", str(path),
                         "finish that sweep with the mlagents-learn.py that started it, or start it anew with --force")
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION or not isinstance(data.get("made_by"), dict):
        raise state_error(path, "is not one this version wrote")
    if not isinstance(data.get("sweep"), str) or not re.fullmatch(r"[0-9a-f]{12}", data["sweep"]):
        raise state_error(path, "is malformed: sweep is not a sweep id")
    if not isinstance(data.get("overwrite"), bool):
        raise state_error(path, "is malformed: overwrite is not true or false")
    if not isinstance(data.get("runs"), list):
        raise state_error(path, "is malformed: runs is not a list")
    return data


T = TypeVar("T")  # what read_each reads, and what best_first orders: runs or combinations


def read_each(items: Sequence[Any], read: Callable[[Any], T], name: str) -> list[T]:
    """A list field of a record read item by item; ValueError says which item is wrong (name[index].field)."""
    found = []
    for index, item in enumerate(items):
        try:
            found.append(read(item))
        except ValueError as exc:
            raise ValueError(f"{name}[{index}].{exc}") from None
    return found


def read_records(data: Mapping[str, Any], path: Path, make_run: Callable[[RunSpec], Run], policy: Policy) -> list[RunRecord]:
    """The run records of a state file, every field checked, each run made again from its recorded values."""
    records, seen = [], set()
    for number, entry in enumerate(data["runs"]):
        try:
            # A state file of a sweep before scores were kept has none: its runs' scores come with the first poll;
            # nor had it confirmation runs, nor takeovers (population based training).
            fields = expect_fields({"score": None, "confirms": False, "lineage": [], **entry} if isinstance(entry, dict)
                                   else entry, RECORD_FIELDS)
            lineage = read_each(fields["lineage"], Exploit.from_json, "lineage")
            spec = record_spec(fields)
            score = fields["score"]
            if score is not None and not (len(score) == 2 and finite_number(score[0]) and isinstance(score[1], (int, float))
                                          and not isinstance(score[1], bool)):
                raise ValueError("score is not a step and a value")
            try:
                status = Status(fields["status"])
            except ValueError:
                raise ValueError(f"status is {json.dumps(fields['status'])[:40]}") from None
            sessions = read_each(fields["sessions"], Session.from_json, "sessions")
            if (status is Status.RUNNING) != (bool(sessions) and sessions[-1].ending is None) or (
                    status is not Status.PENDING and not sessions):
                raise ValueError(f"status is {status.value}, which its sessions do not tell")
            # A confirmation run is no policy's to judge: it keeps nothing of one.
            memory = policy.memory_from_json(fields["memory"], status) if not spec.confirms or fields["memory"] else None
            run = make_run(spec)
            if run.run_id != fields["run_id"] or run.run_id in seen:
                raise ValueError(f"run_id is {json.dumps(fields['run_id'])[:40]}")
        except ValueError as exc:
            raise state_error(path, f"is malformed: runs[{number}].{exc}") from None
        seen.add(run.run_id)
        records.append(RunRecord(run, status, sessions, memory, fields["attempts"], fields["reason"], fields["inherited"],
                                 (float(score[0]), float(score[1])) if score is not None else None, lineage))
    return records


class Results:
    """ML-Agents' results folder: the one place that reads or writes it.

    A run's folder may hold what an older sweep left under the same run id:
    what ML-Agents recorded there counts for this sweep only where it differs
    from what the folder held when this sweep first launched the run (its
    fingerprint, kept in the run's record as `inherited`).
    """

    STATUS = "run_logs/training_status.json"

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def run_folder(self, run_id: str) -> Path:
        return self.folder / run_id

    def exists(self, run: Run) -> bool:
        return self.run_folder_exists(run.run_id)

    def run_folder_exists(self, run_id: str) -> bool:
        try:
            return self.run_folder(run_id).exists()
        except OSError:
            return False

    def watched(self, run: Run) -> list[str]:
        """What tells what a run saved: ML-Agents' record, and each behavior's checkpoint and model."""
        return [self.STATUS, *(f"{behavior}/checkpoint.pt" for behavior in run.behaviors),
                *(f"{behavior}.onnx" for behavior in run.behaviors)]

    def fingerprint(self, run: Run) -> dict[str, list[int]]:
        """What the run's folder holds now of what tells what it saved: {file: [mtime_ns, size]}."""
        return {name: found for name in self.watched(run) if (found := self.fingerprint_of(run, name)) is not None}

    def fingerprint_of(self, run: Run, name: str) -> list[int] | None:
        try:
            info = (self.run_folder(run.run_id) / name).stat()
        except OSError:
            return None
        return [info.st_mtime_ns, info.st_size]

    def changed(self, run: Run, inherited: Mapping[str, Sequence[int]], name: str) -> bool:
        """True if the file is there and is not what the folder held before this sweep (written by this sweep)."""
        now = self.fingerprint_of(run, name)
        return now is not None and now != list(inherited.get(name, []))

    def saved(self, run: Run, inherited: Mapping[str, Sequence[int]]) -> dict[str, tuple[float | None, list[float]]]:
        """ML-Agents' own record of what this sweep's sessions of the run saved (run_logs/training_status.json),
        per behavior: the step of its final checkpoint (None if none) and the steps of every checkpoint it lists.

        ML-Agents writes it when a run ends, whether it trained to the end or was
        stopped, with the step it reached. A missing, unreadable or malformed
        file, or one an older sweep left, is no record at all ({}).
        """
        if not self.changed(run, inherited, self.STATUS):
            return {}
        status = self.status_of(run.run_id)

        def step_of(point: Any) -> float | None:
            steps = point.get("steps") if isinstance(point, dict) else None
            return float(steps) if finite_number(steps) else None

        record = {}
        for behavior in run.behaviors:
            entry = status.get(behavior)
            if not isinstance(entry, dict):
                continue
            final = step_of(entry.get("final_checkpoint"))
            listed = entry.get("checkpoints") if isinstance(entry.get("checkpoints"), list) else []
            steps = [step for step in (final, *map(step_of, listed)) if step is not None]
            record[behavior] = (final, steps)
        return record

    def status_of(self, run_id: str) -> dict[str, Any]:
        """A run's training_status.json as it is, or {} if it is missing, unreadable or not a mapping."""
        try:
            status = json.loads((self.run_folder(run_id) / self.STATUS).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return status if isinstance(status, dict) else {}

    def trained_to_the_end(self, run: Run, inherited: Mapping[str, Sequence[int]]) -> bool:
        """True if ML-Agents' own record says this sweep trained every behavior to max_steps and exported it.

        The final checkpoint is written when a run stops too, with the step it
        reached: only a step at max_steps means finished.
        """
        record = self.saved(run, inherited)
        for behavior in run.behaviors:
            final = record.get(behavior, (None, []))[0]
            if final is None or final < run.horizons.get(behavior, (math.inf, 0))[0]:
                return False
            if not self.changed(run, inherited, f"{behavior}.onnx"):
                return False
        return True

    def steps_saved(self, run: Run, inherited: Mapping[str, Sequence[int]]) -> float | None:
        """The step this sweep's sessions of the run saved their last checkpoint at, of any behavior, or None:
        the final checkpoint ML-Agents records (what --resume loads), else the latest it lists. Not simply the
        latest listed: a run that took over another's checkpoint (see take_over) lists its own older ones, which
        may be of later steps than the one it trains on from."""
        record = self.saved(run, inherited).values()
        finals = [final for final, _ in record if final is not None]
        steps = finals or [step for _, listed in record for step in listed]
        return max(steps) if steps else None

    def checkpoint_since(self, run: Run, since: float) -> float | None:
        """The step of the newest checkpoint every behavior of the run wrote since `since` (wall clock), read from
        ML-Agents' file names (<Behavior>/<Behavior>-<step>.pt, beside checkpoint.pt), or None.

        What a session saved when training_status.json was not written: mlagents-learn writes that file
        only after it has closed its environment workers, and a close that fails skips it."""
        steps = []
        for behavior in run.behaviors:
            folder = self.run_folder(run.run_id) / behavior
            try:
                if (folder / "checkpoint.pt").stat().st_mtime < since:
                    return None
                found = [int(path.stem.rsplit("-", 1)[1]) for path in folder.glob(f"{glob.escape(behavior)}-*.pt")
                         if path.stem.rsplit("-", 1)[1].isdigit() and path.stat().st_mtime >= since]
            except OSError:
                return None
            if not found:
                return None
            steps.append(float(max(found)))
        return min(steps) if steps else None

    def resumable(self, run: Run, inherited: Mapping[str, Sequence[int]]) -> bool:
        """True if this sweep saved a checkpoint of every behavior of the run: mlagents-learn --resume loads
        <run>/<Behavior>/checkpoint.pt and fails without it, and an older sweep's is not this run's."""
        return all(self.changed(run, inherited, f"{behavior}/checkpoint.pt") for behavior in run.behaviors)

    def take_over(self, run: Run, donor: Run, step: float | None) -> None:
        """Population based training's exploit, as ML-Agents' own files: the donor's checkpoint (and a SAC replay
        buffer, and its exported model) copied into the run's folder, and the run's training_status.json rewritten
        to name that checkpoint, so that mlagents-learn --resume of the run loads it and trains on from its step.

        Done with the donor paused, so its files hold still. Each file is written whole before it replaces the
        run's own, the record last: taken over twice (the sweep died before it recorded the first), it is the
        same. The run keeps its own list of older checkpoints, which ML-Agents prunes as it saves new ones
        (a list naming the donor's files would make it delete them). OSError if a file cannot be copied."""
        theirs, mine = self.run_folder(donor.run_id), self.run_folder(run.run_id)
        status, own = self.status_of(donor.run_id), self.status_of(run.run_id)

        def moved(path: Any) -> Any:
            """A path of the donor's folder as the same path in the run's. ML-Agents writes <run>/<B>/<B>-<step>.*
            for a checkpoint and <run>/<B>.onnx for the model it exports when it stops."""
            if not isinstance(path, str):
                return path
            parts = PurePath(path).parts
            for depth in (3, 2):
                if len(parts) >= depth and parts[-depth] == donor.run_id:
                    return str(PurePath(*parts[:-depth], run.run_id, *parts[len(parts) - depth + 1:]))
            return path

        copies: list[tuple[Path, Path]] = []
        for behavior in run.behaviors:
            copies.append((theirs / behavior / "checkpoint.pt", mine / behavior / "checkpoint.pt"))
            for optional in (f"{behavior}/last_replay_buffer.hdf5", f"{behavior}.onnx"):
                if (theirs / optional).exists():
                    copies.append((theirs / optional, mine / optional))
                elif optional.endswith(".hdf5"):
                    (mine / optional).unlink(missing_ok=True)  # its own buffer is of weights it no longer has
            entry = status.get(behavior) if isinstance(status.get(behavior), dict) else {}
            final = dict(entry.get("final_checkpoint")) if isinstance(entry.get("final_checkpoint"), dict) else None
            if final is None and step is not None:  # the donor's pause wrote no record (see Supervisor.reap): one is made
                final = {"steps": int(step), "file_path": str(theirs / f"{behavior}.onnx"), "reward": None,
                         "creation_time": time.time(), "auxillary_file_paths": []}
            if final is not None:
                for path in [final.get("file_path"), *(final.get("auxillary_file_paths") or [])]:
                    if isinstance(path, str) and moved(path) != path and Path(path).exists():
                        copies.append((Path(path), Path(moved(path))))
                final["file_path"] = moved(final.get("file_path"))
                final["auxillary_file_paths"] = [moved(path) for path in final.get("auxillary_file_paths") or []]
                if step is not None:
                    final["steps"] = int(step)
            mine_entry = own.get(behavior) if isinstance(own.get(behavior), dict) else {}
            listed = mine_entry.get("checkpoints") if isinstance(mine_entry.get("checkpoints"), list) else []
            status[behavior] = {**entry, "checkpoints": [*listed, *([final] if final else [])], "final_checkpoint": final}
        # Every copy is staged before any replaces the run's own: a copy that fails (a full disk) leaves the run
        # as it was, its own checkpoint and record whole.
        staged: list[tuple[Path, Path]] = []
        try:
            for target, source in {**{target: source for source, target in copies}, mine / self.STATUS: Path()}.items():
                target.parent.mkdir(parents=True, exist_ok=True)
                temporary = target.with_name(target.name + ".sweep-copy")
                temporary.write_bytes(json.dumps(status, indent=4).encode() if source == Path() else source.read_bytes())
                staged.append((temporary, target))
        except OSError:
            for temporary, _ in staged:
                temporary.unlink(missing_ok=True)
            raise
        for temporary, target in staged:  # the record last: it names the checkpoint copied before it
            os.replace(temporary, target)

    def clear_events(self, run: Run) -> None:
        """What mlagents-learn --force does to a run's old TensorBoard event files, done before the run starts
        rather than at its first summary: until then TensorBoard would serve them under the run's name."""
        for behavior in run.behaviors:
            for old in (self.run_folder(run.run_id) / behavior).glob("events.out*"):
                try:
                    old.unlink()
                except OSError:
                    pass  # held open (Windows): its points are not this run's session's, and are not read as such

    def newest_event(self, run_id: str, behavior: str) -> float | None:
        """When a behavior's TensorBoard event files were last written (wall clock), or None if it has none."""
        times = []
        for path in (self.run_folder(run_id) / behavior).glob("events.out.tfevents.*"):
            try:
                times.append(path.stat().st_mtime)
            except OSError:
                continue
        return max(times) if times else None

    def write_own_events(self, run_id: str, suffix: str, name: str, data: bytes) -> None:
        """Replace the sweep's own event file (suffix) in a run's folder, if ML-Agents made the folder
        (a folder made by anyone else would make mlagents-learn refuse a fresh start)."""
        folder = self.run_folder(run_id)
        if not folder.is_dir():
            return
        for old in folder.glob(f"events.out.tfevents.*{suffix}"):
            old.unlink()
        write_atomically_bytes(folder / name, data)


# ---------------------------------------------------------------------------
# The sweep supervisor: the loop that ties launcher, policy, watcher and store together
# ---------------------------------------------------------------------------


class Console:
    """The sweep's voice: timestamped lines on stdout, warnings on stderr, all of it in the sweep's log too.

    A closed stdout (`... | head`) silences the console, never the sweep.
    """

    def __init__(self, wall: Callable[[], float] = time.time, out: Any = None, err: Any = None) -> None:
        self.wall = wall
        self.out = out if out is not None else sys.stdout
        self.err = err if err is not None else sys.stderr
        self.log: Any = None

    def keep_log(self, path: Path) -> None:
        try:
            self.log = open(path, "a", encoding="utf-8")
        except OSError:
            self.log = None

    def close(self) -> None:
        if self.log is not None:
            self.log.close()
            self.log = None

    def stamp(self) -> str:
        return time.strftime("%H:%M:%S", time.localtime(self.wall()))

    def say(self, text: str) -> None:
        self.emit("out", f"[{self.stamp()}] {text}")

    def warn(self, text: str) -> None:
        self.emit("err", f"[{self.stamp()}] warning: {text}")

    def block(self, text: str) -> None:
        self.emit("out", text)

    def emit(self, which: str, line: str) -> None:
        if self.log is not None:
            try:
                self.log.write(line + "\n")
                self.log.flush()
            except OSError:
                pass  # a full disk: the console still says it
        stream = self.out if which == "out" else self.err
        if stream is None:
            return
        try:
            stream.write(line + "\n")
            stream.flush()
        except (BrokenPipeError, ValueError, OSError):
            self.lose(which, stream)

    def lose(self, which: str, stream: Any) -> None:
        """The reader went away: drop that stream, and point its descriptor at the null device so the
        interpreter's last flush at exit does not fail either."""
        setattr(self, which, None)
        try:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, stream.fileno())
            os.close(null)
        except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
            pass


def run_command(settings: Settings, run: Run, ports: tuple[int, int] | None, resume: bool, force: bool = False,
                trainer: Sequence[str] | None = None) -> list[str]:
    """The exact mlagents-learn command line of one run; `trainer` replaces --trainer's (see trainer_command).

    --resume and --force are the sweep's, decided per run: a run continues from its checkpoint, or starts
    afresh over a folder the sweep may overwrite (with both, ML-Agents would resume and yet delete the
    run's earlier TensorBoard data)."""
    command = [*(settings.trainer if trainer is None else trainer), str(settings.config_path_of(run)), f"--run-id={run.run_id}"]
    if ports is not None:
        command.append(f"--base-port={ports[0]}")
    command += settings.forwarded
    if settings.gpus:
        command += ["--torch-device", "cuda"]  # the run's one GPU (CUDA_VISIBLE_DEVICES); 1.1.0 mishandles cuda:N
    if resume:
        command.append("--resume")
    elif force:
        command.append("--force")
    if settings.env_args is not None:
        command += ["--env-args", *settings.env_args]  # swallows the rest, so it stays last
    return command


def format_duration(seconds: float | None) -> str:
    """Seconds as 1h02m03s, 2m03s or 3s."""
    if seconds is None:
        return ""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


@dataclass
class SweepFile:
    """What the state file keeps besides the runs: which sweep it is, and what made it."""

    sweep_id: str  # made when the sweep first starts (or starts anew): a copy of its folder is another sweep
    overwrite: bool  # started with --force: a run may start afresh over results an older sweep left
    made_by: dict[str, Any]  # the config and flags it was made with (see made_by)

    @staticmethod
    def new(overwrite: bool, made_by: Mapping[str, Any]) -> "SweepFile":
        return SweepFile(os.urandom(6).hex(), overwrite, dict(made_by))


def marker_prefix(settings: Settings, sweep_id: str) -> str:
    """What every marker of this sweep's processes starts with: its folder and its id."""
    return f"{settings.sweep_dir.resolve()}|{sweep_id}|"


def new_marker(settings: Settings, sweep_id: str, run: Run) -> str:
    """A RUN_MARKER value no other launch shares, naming this sweep (see marker_prefix) and the run."""
    return f"{marker_prefix(settings, sweep_id)}{run.run_id}|{os.urandom(8).hex()}"


def schedule_left(running: Sequence[tuple[float, float | None, float]], waiting: Sequence[float],
                  slots: int) -> float | None:
    """Seconds until the last run ends. Each running run (steps left at its latest point, its pace, seconds
    since that point) ends at its own pace, or at the others' mean pace while it has none of its own; each
    waiting run (its steps) starts in the first slot free and trains at the mean pace. None until a running
    run has a pace. Runs side by side share the machine, so one run's pace is what a slot trains at."""
    paces = [pace for _, pace, _ in running if pace]
    if not paces:
        return None
    mean = statistics.fmean(paces)
    free = [max(0.0, left / (pace or mean) - since) for left, pace, since in running]
    free += [0.0] * max(0, slots - len(running))
    heapq.heapify(free)
    for steps in waiting:
        heapq.heappush(free, heapq.heappop(free) + steps / mean)
    return max(free)


class Supervisor:
    """Trains the runs the policy proposes, at most `concurrency` at once, and carries out what it decides.

    Every side effect goes through a seam: the launcher starts and stops runs,
    the watcher reads TensorBoard, the store writes the state file and configs,
    the results seam reads ML-Agents' folder, clock and sleep keep time.
    tick() is one pass of the loop, so a test can drive it with fakes of all of them.
    """

    def __init__(self, settings: Settings, records: Sequence[RunRecord], *, launcher: Launcher, policy: Policy,
                 store: SweepStore, console: Console, results: Results, make_run: Callable[[RunSpec], Run],
                 sweep: SweepFile | None = None, watcher: MetricsWatcher | None = None,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep, marker: Callable[[Settings, Run], str] | None = None,
                 trainer: Sequence[str] | None = None, hparams: "HParamsWriter | None" = None) -> None:
        self.settings = settings
        self.sweep = sweep or SweepFile.new(settings.force, {})
        self.hparams = hparams  # writes the HParams tab's rows as their runs are done
        self.hparams_failed = False
        self.study: SearchStudy | None = None  # a sampled search's view for optuna-dashboard
        self.study_failed = False
        self.view: SweepView | None = None  # what the sweep's own TensorBoard reads: each run is linked there
        self.records = list(records)
        self.by_id = {record.run.run_id: record for record in self.records}
        self.launcher, self.policy, self.store, self.console, self.watcher = launcher, policy, store, console, watcher
        self.results, self.make_run = results, make_run
        self.clock, self.wall, self.sleep = clock, wall, sleep
        self.marker = marker or (lambda settings, run: new_marker(settings, self.sweep.sweep_id, run))
        self.trainer = list(trainer) if trainer is not None else list(settings.trainer)
        self.signals = 0  # signals the handlers counted; the loop acts on them
        self.signals_taken = 0
        self.interrupted = False
        self.killing = False
        self.changed = True  # the state file is behind
        self.save_error: OSError | None = None
        self.saved_at: float | None = None  # the wall clock of the state file's last write
        self.empty = Snapshot(0.0, {})  # what is decided on while TensorBoard has served nothing
        self.snapshot: Snapshot | None = None  # the newest one decisions were made on
        self.next_status = clock() + FIRST_STATUS
        self.summary_tags = list(dict.fromkeys([settings.metric, *policy.tags()]))
        self.last_end: float | None = None  # the clock when a run last ended
        self.decide_again = True  # a run ended since the policy last decided (or nothing was decided yet)
        # The step each running run had reached when this session of it was first
        # seen in a snapshot (None: nothing yet, or a fresh run). Until it shows a
        # later point it is still starting up: its old event files say where its
        # checkpoint was, and a SIGINT before the trainer is in its loop kills it
        # unsaved (see trains_now).
        self.step_at_launch: dict[str, float | None] = {}
        # Each running run's first point of this session, (wall, step) as the trainer wrote it: with its
        # latest (session_progress), its pace for the time left, however late TensorBoard was read.
        self.first_point: dict[str, tuple[float, float]] = {}
        self.due = False  # the policy waits for a running run's point at a rung: the watcher polls often
        self.asked_final: frozenset[str] = frozenset()  # the runs the watcher was last asked to read as final
        self.metrics_stale = False  # TensorBoard did not answer the last poll: the summary's metrics are older

    # -- the loop -------------------------------------------------------------

    def note_signal(self) -> None:
        """For the signal handlers: count, nothing else (printing there can raise "reentrant call")."""
        self.signals += 1

    def run(self) -> int:
        """Train every run the policy proposes; return the sweep's exit code."""
        self.save()
        if self.view is not None:
            for record in self.records:
                self.view.show(record.run.run_id)
        self.write_hparams()  # rows an interrupted sweep had not written yet (their runs were done)
        if self.watcher is not None:
            self.watcher.want(self.metrics_request())
            self.watcher.start()
        try:
            while not self.tick():
                self.sleep(TICK)
            self.collect_metrics()
        except BaseException as exc:
            if not isinstance(exc, KeyboardInterrupt):
                self.console.warn(f"internal error ({exc.__class__.__name__}: {exc}): stopping every run so it saves its model")
            self.stop_everything_now()
            raise
        finally:
            if self.watcher is not None:
                self.watcher.stop()
                self.watcher.close()
            self.launcher.close()
            self.save_at_exit()
        return self.exit_code()

    def tick(self) -> bool:
        """One pass of the loop; True when the sweep is over."""
        self.take_signals()
        self.relay_notes()
        self.reap()
        self.enforce_stop_timeouts()
        if self.interrupted:
            self.stop_all()
        else:
            self.follow_policy()
            self.fill_slots()
        now = self.wall()
        if self.watcher is not None and any(record.run.run_id not in self.asked_final and self.settles(record, now)
                                            for record in self.records):
            self.changed = True  # a run settled since the watcher was last asked: it is read once more, as final
        if self.changed:  # once per tick: a burst of starts or ends is one write
            if self.watcher is not None:
                self.watcher.want(self.metrics_request())
            self.save()
        if self.clock() >= self.next_status:
            self.console.say(self.status_line())
            self.next_status = self.clock() + STATUS_INTERVAL
        return not self.running() and (self.interrupted or (self.waiting() is None and self.policy.propose(self.by_id) is None
                                                             and not self.policy.waits(self.records)))

    def running(self) -> list[RunRecord]:
        return [record for record in self.records if record.status is Status.RUNNING]

    def waiting(self) -> RunRecord | None:
        """The first recorded run that waits for a slot: one that continues, or trains again."""
        return next((record for record in self.records if record.status is Status.PENDING), None)

    def shown(self) -> list[RunRecord]:
        """Every run of the sweep as people see it: the recorded ones, then those the policy will still propose
        (the grid's), not started."""
        return self.records + [RunRecord(run) for run in self.policy.upcoming(self.by_id)]

    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        if any(record.status in (Status.FAILED, Status.INTERRUPTED) for record in self.records):
            return EXIT_FAILED
        return EXIT_OK

    def status_line(self) -> str:
        """The counts of runs by status, the time left, and a row per running run with its step."""
        shown = (Status.RUNNING, Status.FINISHED, Status.STOPPED, Status.FAILED, Status.PENDING)
        counts = Counter(record.status for record in self.records)
        counts[Status.PENDING] += self.policy.unproposed(self.by_id)
        extra = [status for status in Status if status not in shown and counts[status]]
        names = {Status.PENDING: "pending"}
        line = "status: " + ", ".join(f"{counts[status]} {names.get(status, status.label)}" for status in (*shown, *extra))
        left = self.time_left()
        if left is not None:
            line += f"; about {format_duration(left)} left"
        rows = []
        for record in self.running():
            if record.last_step is None:
                continue
            row = (f"  {record.run.run_id} step {record.last_step:g} of {record.run.total_steps():g} "
                   f"({100 * record.last_step / record.run.total_steps():.0f}%)")
            steps, pace, since = self.run_left(record)
            rows.append(row + (f", about {format_duration(max(0.0, steps / pace - since))} left" if pace else ""))
        return "\n".join([line, *rows])

    def run_left(self, record: RunRecord) -> tuple[float, float | None, float]:
        """A running run's steps still to train as of its latest point, its pace (steps/s; None until it has
        shown two points of this session), and the seconds since that point was written (it trained on)."""
        total = record.run.total_steps()
        first, last = self.first_point.get(record.run.run_id), self.session_progress(record)
        since = max(0.0, self.wall() - last[0]) if last is not None else 0.0
        if first is None or last is None or last[0] <= first[0] or last[1] <= first[1]:
            return max(0.0, total - (record.last_step or 0.0)), None, since
        return max(0.0, total - last[1]), (last[1] - first[1]) / (last[0] - first[0]), since

    def session_progress(self, record: RunRecord) -> tuple[float, float] | None:
        """(wall, step) of the run's latest point in the newest snapshot, if written in its current session."""
        progress = self.snapshot.progress(record.run.run_id) if self.snapshot is not None else None
        if progress is None or record.session is None or progress[0] < record.session.began:
            return None
        return progress

    def time_left(self) -> float | None:
        """Seconds until every run is done, if none is stopped early: see schedule_left."""
        running = [self.run_left(record) for record in self.running()]
        shown = self.shown()
        waiting = [max(0.0, record.run.total_steps() - (record.last_step or 0.0))
                   for record in shown if record.status in (Status.PENDING, Status.PAUSED)]
        # Trials a search has not drawn yet train as long as those it drew.
        undrawn = self.policy.unproposed(self.by_id) - (len(shown) - len(self.records))
        if undrawn > 0 and self.records:
            waiting += [statistics.fmean(record.run.total_steps() for record in self.records)] * undrawn
        return schedule_left(running, waiting, self.settings.concurrency)

    def take_signals(self) -> None:
        """Ctrl-C on the sweep: the first stops every run gracefully, the second kills them."""
        while self.signals_taken < self.signals:
            self.signals_taken += 1
            if not self.interrupted:
                self.interrupted = True
                self.console.say("interrupted: stopping every run so it saves its model (Ctrl-C again kills them)")
                if self.settings.resume_hint:
                    self.console.say(f"to continue the sweep later: {self.settings.resume_hint}")
            elif not self.killing:
                self.killing = True
                self.console.say("interrupted again: killing every run")
                for record in self.running():
                    record.stop_asked = record.stop_asked if record.stop_asked is not None else self.clock()
                    self.kill(record)

    def relay_notes(self) -> None:
        if self.watcher is None:
            return
        for kind, text in self.watcher.take_notes():
            (self.console.warn if kind == "warn" else self.console.say)(text)

    # -- starting runs ----------------------------------------------------------

    def fill_slots(self) -> None:
        busy = {record.slot for record in self.running()}
        for slot in range(self.settings.concurrency):
            while slot not in busy:  # a run that could not start leaves the slot to the next one
                record = self.waiting() or self.take_proposal()
                if record is None:
                    return
                if self.start(record, slot):
                    busy.add(slot)

    def take_proposal(self) -> RunRecord | None:
        """The policy's next new run, recorded (its config written), or None."""
        spec = self.policy.propose(self.by_id)
        if spec is None:
            return None
        record = RunRecord(self.make_run(spec))
        self.records.append(record)
        self.by_id[record.run.run_id] = record
        self.changed = True
        try:
            self.store.list_run(record.run)
        except OSError as exc:
            self.console.warn(f"cannot add {record.run.run_id} to config_info.txt ({exc.strerror or exc}); training goes on")
        return record

    def start(self, record: RunRecord, slot: int) -> bool:
        """Launch a run in a free slot; False if it could not start (it has failed, with the reason).

        A run with no session in this sweep starts afresh, whatever its folder
        holds (an older sweep's run of the same id); one that has saved a
        checkpoint in this sweep continues from it.
        """
        run, results = record.run, self.results
        resume = bool(record.sessions) and results.resumable(run, record.inherited)
        if not record.sessions:
            record.inherited = results.fingerprint(run)
        # Afresh over a folder that exists: only where the sweep may overwrite it (started with --force, or the
        # folder is this run's own from an earlier session); else mlagents-learn refuses, and nothing is lost.
        force = not resume and results.exists(run) and (self.sweep.overwrite or bool(record.sessions))
        now = self.clock()
        record.begin_session(self.wall(), resume, results.steps_saved(run, record.inherited) if resume else None)
        record.session_began, record.stop_asked, record.announced, record.last_step = now, None, False, None
        self.changed = True
        try:
            self.store.write_config(run)
            if force:
                results.clear_events(run)
            gpu = self.settings.gpu_of(slot)
            request = LaunchRequest(run, slot, self.settings.log_path_of(run),
                                    lambda ports: run_command(self.settings, run, ports, resume, force, self.trainer),
                                    self.settings.env_path is not None, self.marker(self.settings, run),
                                    {"CUDA_VISIBLE_DEVICES": gpu} if gpu is not None else {})
            handle = self.launcher.start(request)
        except (LaunchError, OSError) as exc:
            why = str(exc) if isinstance(exc, LaunchError) else f"cannot write its config ({exc.strerror or exc})"
            self.finish(record, Ending.FAILED, None, why)
            return False
        record.slot, record.handle = slot, handle
        if self.view is not None:
            self.view.show(run.run_id)
        self.step_at_launch.pop(run.run_id, None)
        self.first_point.pop(run.run_id, None)
        if not resume:
            self.step_at_launch[run.run_id] = None  # a fresh run has no old points: its first is of this session
        self.announce(record)
        return True

    def announce(self, record: RunRecord) -> None:
        """Once the run's process runs (a cluster places it when it has the resources): where, and its start line."""
        handle, session = record.handle, record.session
        if record.announced or handle is None or session is None or not handle.ready() or handle.pid is None:
            return  # not placed yet, or it never started (reap says why)
        record.announced = True
        session.pid, session.identity, session.ports, session.node = handle.pid, handle.identity, handle.ports, handle.node
        run, ports = record.run, handle.ports
        port_text = "" if ports is None else f", port {ports[0]}" if ports[0] == ports[1] else f", ports {ports[0]}-{ports[1]}"
        node_text = f", on {handle.node}" if handle.node else ""
        self.console.say(f"{'resume' if session.resumed else 'start'} {run.run_id}: "
                         f"{run.describe_lap(self.settings.repetitions)}{port_text}{node_text}")
        self.changed = True

    # -- watching and stopping runs -----------------------------------------------

    def reap(self) -> None:
        for record in self.running():
            self.announce(record)
            ended = record.handle.poll() if record.handle is not None else None
            if ended is None:
                continue
            session = record.session
            asked = session.asked if session else None
            if ended.error:
                self.finish(record, Ending.FAILED, None, ended.error)
            elif ended.lost:
                self.lose(record, ended.lost)
            elif asked == "pause" and ended.code == 0 and not record.killed:
                # A run that got to its end meanwhile finished; one that saved its checkpoint waits.
                finished = self.results.trained_to_the_end(record.run, record.inherited)
                self.finish(record, Ending.FINISHED if finished else Ending.PAUSED, 0)
            elif (asked in ("stop", "pause") and ended.code != 0 and not record.killed
                  and self.results.trained_to_the_end(record.run, record.inherited)):
                # It reached max_steps and exported its model as the signal came: Python's own SIGINT, once its
                # handlers are gone on the way out, ended a run that had finished (seen: exit -2).
                self.finish(record, Ending.FINISHED, ended.code)
            elif (asked in ("stop", "pause") and ended.code != 0 and not record.killed and record.session is not None
                  and (saved := self.results.checkpoint_since(record.run, record.session.began)) is not None):
                # ML-Agents saved on the SIGINT and then failed closing its environment workers (seen: EOFError
                # in subprocess_env_manager.close, exit 1, and no training_status.json written): what was asked
                # happened, and the checkpoint and model are there.
                self.console.say(f"{record.run.run_id} exited {ended.code} after it saved its checkpoint at step {saved:g} "
                                 f"(mlagents-learn failed closing; see its log): taken as {'paused' if asked == 'pause' else 'stopped'}")
                self.finish(record, Ending.PAUSED if asked == "pause" else Ending.STOPPED, ended.code, saved=saved)
            elif asked in ("stop", "pause"):
                self.finish(record, Ending.STOPPED if ended.code == 0 and not record.killed else Ending.FAILED, ended.code)
            elif asked == "interrupt":
                self.finish(record, Ending.INTERRUPTED, ended.code)
            elif ended.code == 0:
                # An exit 0 is not "finished": only ML-Agents' own record of training to max_steps is. A run
                # that ends short of it unasked (a Ctrl-C from elsewhere) ended early: --resume continues it.
                if self.results.trained_to_the_end(record.run, record.inherited):
                    self.finish(record, Ending.FINISHED, 0)
                else:
                    saved = self.results.steps_saved(record.run, record.inherited)
                    reached = f"at step {saved:g} " if saved is not None else ""
                    self.finish(record, Ending.INTERRUPTED, 0, f"it ended {reached}short of max_steps "
                                f"{record.run.total_steps():g} without being asked to stop", saved=saved)
            else:
                self.finish(record, Ending.FAILED, ended.code, self.failure(record, ended.code))

    def failure(self, record: RunRecord, code: int | None) -> str:
        """Why a run failed, where its log says more than its exit code: a GPU it shared ran out of memory."""
        gpu = self.settings.gpu_of(record.slot) if record.slot is not None else None
        if gpu is None or not OUT_OF_GPU_MEMORY.search(self.store.log_tail(record.run)):
            return ""
        return (f"exit {code}: GPU {gpu} ran out of memory (CUDA out of memory in its log); pass a smaller --runs-per-gpu "
                f"than {self.settings.runs_per_gpu}, or smaller networks")

    def lose(self, record: RunRecord, why: str) -> None:
        """The launcher lost the run (its node went away): it trains again from its checkpoint, or fails."""
        retries = self.settings.max_retries
        if self.interrupted:
            self.finish(record, Ending.INTERRUPTED, None, why)
        elif record.stop_asked is not None:  # it was being paused or stopped: its checkpoint is in the shared folder
            self.finish(record, Ending.PAUSED if record.pausing else Ending.STOPPED, 0)
        elif record.attempts >= retries:
            self.finish(record, Ending.FAILED, None, why)
        else:
            record.attempts += 1
            self.finish(record, Ending.LOST, None, why, quiet=True)
            resume = self.results.resumable(record.run, record.inherited)
            self.console.say(f"lost {record.run.run_id} ({why}): it trains again{' from its checkpoint' if resume else ''} "
                             f"(retry {record.attempts} of {retries})")

    def write_hparams(self) -> None:
        """The views of what is done: the HParams tab's rows whose runs are now all done, and a search's study."""
        self.write_study()
        if self.hparams is None:
            return
        try:
            self.hparams.write_done(self.by_id)
        except OSError as exc:
            if not self.hparams_failed:
                self.hparams_failed = True
                self.console.warn(f"cannot write the HParams tab's data ({exc.strerror or exc}); training goes on")

    def write_study(self) -> None:
        """A search's Optuna journal, made again from the records (see SearchStudy)."""
        if self.study is None:
            return
        try:
            self.study.write(self.records)
        except Exception as exc:  # a view for another tool (a full disk, a lock Optuna cannot take) never stops a sweep
            if not self.study_failed:
                self.study_failed = True
                why = exc.strerror if isinstance(exc, OSError) and exc.strerror else f"{exc.__class__.__name__}: {exc}"
                self.console.warn(f"cannot write {STUDY_JOURNAL} ({why}); training goes on")

    def finish(self, record: RunRecord, ending: Ending, code: int | None, why: str = "", quiet: bool = False,
               saved: float | None = None) -> None:
        """A session of the run ended: its record says how, and what ML-Agents recorded it saved (read here
        unless the caller read it already)."""
        self.last_end = self.clock()
        trained = self.last_end - record.session_began if record.session_began is not None else 0.0
        record.session_began, record.handle = None, None
        if saved is None:
            saved = self.results.steps_saved(record.run, record.inherited)
        record.end_session(self.wall(), ending, exit_code=code, reason=why, saved=saved, trained_s=trained)
        if record.last_step is None:  # TensorBoard had no point of it (yet, or at all): ML-Agents' own record
            record.last_step = saved
        self.changed = True
        self.decide_again = True  # the policy may decide more now: a rung may be complete
        if quiet:
            return
        self.write_hparams()
        run, took, status = record.run, format_duration(record.trained_s), record.status
        if status is Status.FINISHED:
            self.console.say(f"finished {run.run_id}: exit 0 after {took}")
        elif status is Status.PAUSED:
            self.console.say(f"paused {run.run_id} after {took}: {record.stop_reason}")
        elif status is Status.STOPPED:
            self.console.say(f"stopped {run.run_id} early after {took}: {record.stop_reason}")
        elif status is Status.INTERRUPTED:
            killed = ", killed after --stop-timeout" if record.killed else ""
            early = f": {why}; --resume continues it" if why else ""
            self.console.say(f"interrupted {run.run_id}: exit {code} after {took}{killed}{early}")
        else:
            detail = why or f"exit {code}"
            if record.killed:
                detail += f", killed: it did not stop within --stop-timeout {self.settings.stop_timeout:g}s"
            elif record.session is not None and record.session.asked in ("stop", "pause") and not why:
                detail += f" while stopping ({record.stop_reason})"
            self.console.say(f"FAILED {run.run_id}: {detail} after {took}; log: {self.settings.log_path_of(run)}")

    def stop(self, record: RunRecord, reason: str = "", pause: bool = False) -> None:
        """Ask a run to stop as Ctrl-C would: it saves its model; killed after --stop-timeout.

        What is asked is recorded, and the record saved, before the signal goes:
        if the sweep dies while the run saves, --resume still knows it was
        told to stop (or pause), and does not train it on."""
        if record.stop_asked is not None or record.handle is None:
            return
        record.ask("pause" if pause else "stop" if reason else "interrupt", reason)
        record.stop_asked = self.clock()
        if reason:
            self.console.say(f"{'pausing' if pause else 'stopping'} {record.run.run_id}: {reason}")
        self.changed = True
        self.save()
        record.handle.interrupt()

    def stop_all(self) -> None:
        for record in self.running():
            self.stop(record)

    def enforce_stop_timeouts(self) -> None:
        now = self.clock()
        for record in self.running():
            if record.stop_asked is not None and not record.killed and now - record.stop_asked >= self.settings.stop_timeout:
                self.kill(record)

    def kill(self, record: RunRecord) -> None:
        if record.handle is not None and not record.killed and record.session is not None:
            record.session.killed = True
            self.console.say(f"killing {record.run.run_id}: it did not stop within {self.settings.stop_timeout:g}s")
            record.handle.kill()

    def stop_everything_now(self) -> None:
        """After an internal error: every run stops gracefully, within --stop-timeout, then is killed."""
        self.stop_all()
        deadline = self.clock() + self.settings.stop_timeout
        while self.running() and self.clock() < deadline:
            self.sleep(TICK)
            self.reap()
        for record in self.running():
            self.kill(record)

    # -- what the policy decides ------------------------------------------------------

    def follow_policy(self) -> None:
        """Carry out what the policy decides: once per poll, and again when a run has ended (a rung may be complete).

        Without anything from TensorBoard (none answers, or none is used) the
        policy still decides from what the records hold: a paused run's verdict
        needs only the values at its rung, which its record keeps.
        """
        snapshot = (self.watcher.latest() if self.watcher is not None else None) or self.empty
        if snapshot is self.snapshot and not self.decide_again:
            return
        self.snapshot, self.decide_again = snapshot, False
        for record in self.running():
            step = snapshot.last_step(record.run.run_id, record.run.behaviors, self.settings.metric)
            self.step_at_launch.setdefault(record.run.run_id, snapshot.latest_step(record.run.run_id))
            if step is not None and record.session is not None:
                record.last_step = step
                record.session.reached = max(record.session.reached or 0.0, step)
            progress = self.session_progress(record)
            if progress is not None:
                self.first_point.setdefault(record.run.run_id, progress)
        for record in self.records:
            self.note_score(record, snapshot)
            if record.status not in (Status.RUNNING, Status.PENDING) and (
                    record.run.run_id in snapshot.settled or self.last_points_read(record, snapshot)):
                record.settled = True
        for decision in self.policy.decide(self.records, snapshot):
            record = self.by_id[decision.run_id]
            if decision.action in (Action.STOP, Action.PAUSE) and record.status is Status.RUNNING and not self.trains_now(record):
                continue  # decided again on a later snapshot, what the policy would keep with it
            self.carry_out(record, decision)
        due = self.policy.due(self.records, snapshot)
        if due != self.due and self.watcher is not None:
            self.due = due
            self.watcher.want(self.metrics_request())

    def note_score(self, record: RunRecord, snapshot: Snapshot) -> None:
        """The run's score from its own latest points of --metric, once every behavior has one (see final_score)."""
        if record.start is None:
            return
        score = final_score([snapshot.of(record.run.run_id, behavior, self.settings.metric) for behavior in record.run.behaviors])
        if score is None:
            return
        if score != record.score and (record.score is None or score[0] >= record.score[0]):
            record.score, self.changed = score, True

    def trains_now(self, record: RunRecord) -> bool:
        """True once a running run has shown a point of its current session.

        A resumed run's old points may already call for a stop or a pause (halving's
        next rung was reached before the sweep was interrupted), but the trainer is
        still importing torch: Python's default SIGINT then kills it with nothing
        saved. One summary period into the session, it is in its loop, and a SIGINT saves.
        """
        step = None if self.snapshot is None else self.snapshot.latest_step(record.run.run_id)
        baseline = self.step_at_launch.get(record.run.run_id)
        return step is not None and (baseline is None or step > baseline)

    def carry_out(self, record: RunRecord, decision: Decision) -> None:
        if decision.remember is not None and decision.remember != record.memory:
            record.memory = decision.remember
            self.changed = True
        action, run_id = decision.action, record.run.run_id
        if action in (Action.STOP, Action.PAUSE) and record.status is Status.RUNNING:
            self.stop(record, decision.reason, pause=action is Action.PAUSE)
        elif action is Action.CONTINUE and record.status is Status.PAUSED and decision.takes_over is not None:
            self.take_over(record, decision)
        elif action is Action.CONTINUE and record.status is Status.PAUSED:
            record.go_on(self.make_run(decision.spec) if decision.spec is not None else None)
            self.console.say(f"{run_id} goes on: {decision.reason}")
            self.changed = True
        elif action is Action.END and record.status is Status.PAUSED:
            record.end_paused(decision.reason)
            self.console.say(f"stopped {run_id} early: {decision.reason}")
            self.changed = True
            self.write_hparams()

    def take_over(self, record: RunRecord, decision: Decision) -> None:
        """A paused run takes over another paused run's checkpoint (population based training's exploit) and goes
        on as the decision's run. The copy is made before the donor can train on (runs start only after the
        decisions), and recorded at once: a sweep that dies before the record is written copies it again, the same."""
        donor = self.by_id[decision.takes_over or ""]
        step = donor.session.saved if donor.session is not None else None
        if step is None:  # its pause was closed by --resume, which reads no step: ML-Agents' own record says it
            step = self.results.steps_saved(donor.run, donor.inherited)
        run = self.make_run(decision.spec) if decision.spec is not None else record.run
        try:
            self.results.take_over(record.run, donor.run, step)
        except OSError as exc:
            # Its own checkpoint is whole (each file replaces its own only once written): it goes on with it.
            self.console.warn(f"{record.run.run_id} cannot take over {donor.run.run_id}'s checkpoint "
                              f"({exc.strerror or exc}): it goes on with its own, unchanged")
            record.go_on()
        else:
            interval = decision.remember.passed if isinstance(decision.remember, HalvingMemory) else len(record.lineage) + 1
            record.take_over(run, donor.run.run_id, step, interval)
            self.console.say(f"{record.run.run_id} goes on: {decision.reason}")
        self.changed = True
        self.save()

    def metrics_request(self, everything: bool = False) -> MetricsRequest:
        """Every started run, for the ranking metric and every tag the policy reads, with the spans of its
        sessions: only points written in them are the run's own.

        A run that ended long enough ago for TensorBoard to have its last points
        is marked final: the watcher reads it once more and then keeps it.
        """
        now = self.wall()
        started = [record for record in self.records if record.start is not None]
        final = frozenset() if everything else frozenset(
            record.run.run_id for record in started if self.settles(record, now))
        self.asked_final = final
        return MetricsRequest(tuple(self.summary_tags), tuple((record.run.run_id, behavior) for record in started
                                                              for behavior in record.run.behaviors), final, self.due,
                              {record.run.run_id: record.windows() for record in started})

    def last_points_read(self, record: RunRecord, snapshot: Snapshot) -> bool:
        """Has a run that trained to the end had its last points read? Once each behavior's latest point of --metric
        is within one summary period of its max_steps, no later one can come: its score is final at once."""
        if record.status is not Status.FINISHED:
            return False
        for behavior in record.run.behaviors:
            points = snapshot.of(record.run.run_id, behavior, self.settings.metric)
            max_steps, summary_freq = record.run.horizons.get(behavior, (math.inf, 0.0))
            if not points or points[-1][0] + summary_freq <= max_steps:
                return False
        return True

    def settles(self, record: RunRecord, now: float) -> bool:
        """Has the run ended long enough ago for TensorBoard to have read its last points?"""
        return record.status is not Status.RUNNING and record.end is not None and now - record.end > 2 * TENSORBOARD_SETTLE

    def collect_metrics(self) -> None:
        """Read each started run's last step and last values of its own points for the summary."""
        started = [record for record in self.records if record.start is not None]
        if self.watcher is None or not started:
            return
        settled = (self.last_end if self.last_end is not None else self.clock()) + TENSORBOARD_SETTLE
        while not self.interrupted and self.clock() < settled:
            self.sleep(min(TICK, settled - self.clock()))  # a Ctrl-C cuts it short
            self.take_signals()
        snapshot = self.watcher.stop(final=self.metrics_request(everything=True))
        self.relay_notes()
        if snapshot is None:
            return
        self.metrics_stale = snapshot.stale
        for record in started:
            self.note_score(record, snapshot)
            for tag in self.summary_tags:
                for behavior in record.run.behaviors:
                    points = snapshot.of(record.run.run_id, behavior, tag)
                    if points:
                        record.metrics[(behavior, tag)] = points[-1][1]
                        if tag == self.settings.metric:
                            record.last_step = max(record.last_step or 0, points[-1][0])

    # -- the state file -------------------------------------------------------------

    def state_json(self) -> dict[str, Any]:
        return {"version": STATE_VERSION, "sweep": self.sweep.sweep_id, "overwrite": self.sweep.overwrite,
                "made_by": self.sweep.made_by,
                "runs": [record.to_json(self.policy.memory_to_json) for record in self.records]}

    def save(self) -> None:
        """Write the state file; if the disk is full, keep it in memory, say so once, and try at every tick."""
        error = self.store.save(self.state_json())
        if error is None:
            if self.save_error is not None:
                self.console.say(f"the state file is written again: {self.store.state_path}")
            self.save_error, self.changed, self.saved_at = None, False, self.wall()
            return
        if self.save_error is None:
            self.console.warn(f"cannot write {self.store.state_path} ({error.strerror or error}): training goes on, "
                              "the sweep keeps its state in memory and writes it as soon as it can")
        self.save_error, self.changed = error, True

    def save_at_exit(self) -> None:
        """The state file's last write: tried again for a while if the disk is full (a Ctrl-C gives up at once)."""
        self.save()
        deadline, asked = self.clock() + STATE_RETRY, self.signals
        while self.save_error is not None and self.clock() < deadline and self.signals == asked:
            self.sleep(1.0)
            self.save()

    def unsaved(self) -> str:
        """What --resume will do if the state file could not be written at the end (said last), or ""."""
        if self.save_error is None:
            return ""
        when = time.strftime("%H:%M:%S", time.localtime(self.saved_at)) if self.saved_at is not None else None
        as_of = f"as it was at {when}" if when else "that is there (none, if this sweep never wrote one)"
        return (f"the state file {self.store.state_path} could not be written ({self.save_error.strerror or self.save_error}): "
                f"--resume will take up the sweep {as_of}; a run it calls running is finished if ML-Agents' own record "
                "says it trained to the end, else it continues from its checkpoint, and runs started since then train "
                "again. Free some space before you resume")

    def take_up(self) -> None:
        """--resume: take the sweep up where it stopped. Done runs stay done; a run the sweep died while it
        trained ended as its record says (told to stop or pause: so it stays), or as ML-Agents recorded
        (trained to the end), or it was interrupted; interrupted and failed runs train again."""
        for record in self.records:
            said = record.take_up(lambda: self.results.trained_to_the_end(record.run, record.inherited), self.wall())
            if said:
                self.console.say(f"{record.run.run_id} {said}")
        self.changed = True


def reclaim(leftovers: Sequence[Leftover], platform: Platform, timeout: float, console: Console,
            signals: Callable[[], int], clock: Callable[[], float] = time.monotonic,
            sleep: Callable[[float], None] = time.sleep) -> None:
    """Stop what is left of an earlier sweep's runs, all at once, so no run ever trains twice at once.

    A live trainer gets Ctrl-C's SIGINT and --stop-timeout to save its model;
    what is left of a run whose trainer is gone has nothing to save and is
    killed at once. A second Ctrl-C kills everything at once.
    """
    for leftover in leftovers:
        pids = ", ".join(map(str, leftover.pids))
        how = ("stopping its trainer so it saves its model" if leftover.trainer is not None
               else f"killing {'it' if len(leftover.pids) == 1 else 'them'}: no trainer is left to save a model")
        console.say(f"{leftover.run_id} of the earlier sweep left {len(leftover.pids)} "
                    f"process{'es' if len(leftover.pids) != 1 else ''} behind ({pids}): {how}")
        platform.signal_leftover(leftover, hard=leftover.trainer is None)
    deadline, asked = clock() + timeout, signals()
    waiting = [leftover for leftover in leftovers if leftover.trainer is not None]
    while waiting and signals() == asked and (left := deadline - clock()) > 0:
        sleep(min(TICK, left))
        waiting = [leftover for leftover in waiting if platform.trainer_alive(leftover)]
    for leftover in waiting:
        console.warn(f"{leftover.run_id}'s earlier trainer did not stop within --stop-timeout {timeout:g}s: killed")
    for leftover in leftovers:
        if leftover.trainer is not None:
            platform.signal_leftover(leftover, hard=True)  # workers and environments the trainer did not close


def leftovers_of(records: Sequence[RunRecord], prefix: str, platform: Platform) -> list[Leftover]:
    """What is provably still alive of this sweep's runs, whatever their status: each run's last trainer, if it
    lives, with every process carrying its marker; and any other process marked as this sweep's (an earlier
    session's). A process is this sweep's only if its marker names this sweep's folder and id (prefix): the
    live trainers of a sweep whose folder this is a copy of are never signalled."""
    found, seen = [], set()
    for record in records:
        session = record.session
        if session is None or session.pid is None or session.identity is None:
            continue
        if not session.identity.marker.startswith(prefix):
            continue
        leftover = platform.leftovers(record.run.run_id, session.pid, session.identity)
        if leftover is not None:
            found.append(leftover)
            seen.add(session.identity.marker)
    for marker, pids in sorted((platform.marked(prefix) or {}).items()):
        if marker not in seen:
            found.append(Leftover(marker[len(prefix):].rsplit("|", 1)[0], None, tuple(sorted(pids)), marker))
    return found


# ---------------------------------------------------------------------------
# The summary: which settings won
# ---------------------------------------------------------------------------


def ranking_value(record: RunRecord, metric: str) -> float | None:
    """The value runs are ranked by: the run's score (see final_score); without one, the metric's last value of its
    own points, averaged over behaviors."""
    if record.score is not None:
        return record.score[1]
    values = [record.metrics[(behavior, metric)] for behavior in record.run.behaviors if (behavior, metric) in record.metrics]
    return statistics.fmean(values) if values else None




def best_first(items: Sequence[T], value_of: Callable[[T], float | None], mode: str,
               level_of: Callable[[T], float] = lambda item: 0.0) -> list[T]:
    """Items best first: a higher level first, then by their value (see ranking_key: NaN and infinities after
    every finite value, those without a value last); ties in the given order."""
    levels, values = [level_of(item) for item in items], [value_of(item) for item in items]
    order = sorted(range(len(items)), key=lambda index: (-levels[index], ranking_key(values[index], mode), index))
    return [items[index] for index in order]


def rank(records: Sequence[RunRecord], metric: str, mode: str,
         standing: Callable[[RunRecord], Standing | None] = lambda record: None) -> list[RunRecord]:
    """Best first: by the policy's standing (how far its judging took a run, then the value there), then by
    --metric (highest, or lowest with mode min); runs without a value last, in grid order."""
    def value_of(record: RunRecord) -> float | None:
        stand = standing(record)
        return stand.value if stand is not None and stand.value is not None else ranking_value(record, metric)

    def level_of(record: RunRecord) -> float:
        stand = standing(record)
        return stand.level if stand is not None else -1.0

    return best_first(records, value_of, mode, level_of)


@dataclass(frozen=True)
class Outcome:
    """What the summary is made of: the sweep's runs as records (the recorded ones, then those not started),
    the tags it shows, and whether the metrics are from a poll before the last (TensorBoard did not answer)."""

    records: Sequence[RunRecord]
    tags: Sequence[str]
    stale: bool = False
    now: float = 0.0  # the supervisor's clock at the end: a running run's duration is up to it
    standing: Callable[[RunRecord], Standing | None] = lambda record: None  # the policy's (see Standing)
    importance: tuple[Mapping[str, float], str] | None = None  # a search's: each option's share, and of what

    @property
    def unfinished(self) -> bool:
        """Runs are left to train (interrupted, paused, not started): what is best is best so far."""
        return any(record.status not in (Status.FINISHED, Status.STOPPED, Status.FAILED) for record in self.records)


def summary_rows(outcome: Outcome, settings: Settings, whole: bool = False) -> tuple[list[str], list[list[str]], list[RunRecord]]:
    """The summary table, best run first: header, rows, and the records in that order (whole: values uncut)."""
    records = outcome.records
    behaviors = records[0].run.behaviors if records else []
    columns = [(behavior, tag) for tag in outcome.tags for behavior in behaviors]
    header = ["run", "values", "seed", "status", "exit", "duration", "last step", "score"]
    nodes = any(record.node for record in records)  # a cluster sweep says where each run trained
    if nodes:
        header.insert(4, "node")
    header += [tag if len(behaviors) == 1 else f"{behavior}: {tag}" for behavior, tag in columns]
    lineage = any(record.lineage for record in records)  # population based training: whose checkpoints it took
    header += ["lineage", "note"] if lineage else ["note"]
    ranked = rank(records, settings.metric, settings.metric_mode, outcome.standing)
    rows = []
    for record in ranked:
        note = record.stop_reason or (str(settings.log_path_of(record.run)) if record.status is Status.FAILED else "")
        if record.killed:
            note = (note + "; " if note else "") + "killed after --stop-timeout"
        if record.run.confirms:
            note = "confirmation" + (f"; {note}" if note else "")
        score = ranking_value(record, settings.metric)
        row = [record.run.run_id, record.run.describe(whole), "" if record.run.seed is None else str(record.run.seed),
               record.status.label, "" if record.exit_code is None else str(record.exit_code),
               format_duration(record.duration(outcome.now)), "" if record.last_step is None else f"{record.last_step:g}",
               "" if score is None else f"{score:g}"]
        if nodes:
            row.insert(4, record.node)
        row += [f"{record.metrics[key]:g}" if key in record.metrics else "" for key in columns]
        if lineage:
            row.append(lineage_text(record) if whole else f"{len(record.lineage)} takeover{'s' if len(record.lineage) != 1 else ''}"
                       if record.lineage else "")
        row.append(note)
        rows.append(row)
    return header, rows, ranked


@dataclass
class Combination:
    """One combination of values and the runs (repetitions) that trained it."""

    identity: str  # the combination's (see combination_of), never its text
    label: str  # its values, as a run describes them (cut short)
    records: list[RunRecord]
    scores: list[float]  # the ranking value of each run that finished or was stopped by a rule
    whole: str = ""  # its values uncut, for machines (CSV)

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.scores) if self.scores else None


def combinations(records: Sequence[RunRecord], metric: str, mode: str) -> list[Combination]:
    """The runs grouped by the identity of their values, best mean first; combinations without a score last,
    in grid order. A failed or interrupted run's last value is not a result: it is counted, not averaged in."""
    groups: dict[str, Combination] = {}
    for record in records:
        run = record.run
        group = groups.setdefault(run.combination, Combination(run.combination, run.describe(), [], [], run.describe(True)))
        group.records.append(record)
        value = ranking_value(record, metric)
        if value is not None and record.status in (Status.FINISHED, Status.STOPPED):
            group.scores.append(value)
    return best_first(list(groups.values()), lambda group: group.mean, mode)


def combination_rows(outcome: Outcome, settings: Settings, whole: bool = False) -> tuple[list[str], list[list[str]], list[Combination]]:
    """The per-combination table of a sweep with repetitions (its search's runs): header, rows, and the
    combinations in that order."""
    metric = settings.metric
    ranked = combinations([record for record in outcome.records if not record.run.confirms], metric, settings.metric_mode)
    header = ["values", "runs", "scored", "mean score", "std", "min", "max", "run ids"]
    rows = []
    for group in ranked:
        scores = group.scores
        rows.append([group.whole if whole else group.label, str(len(group.records)), str(len(scores)),
                     "" if group.mean is None else f"{group.mean:g}",
                     f"{statistics.stdev(scores):g}" if len(scores) >= 2 else "",
                     f"{min(scores):g}" if scores else "", f"{max(scores):g}" if scores else "",
                     " ".join(record.run.run_id for record in group.records)])
    return header, rows, ranked


# A confirmation's intervals: a bootstrap over its runs, this many resamples, seeded so that a summary made
# twice of the same runs says the same.
BOOTSTRAP_RESAMPLES = 4000
CONFIDENCE = 0.95


def bootstrap_interval(groups: Sequence[Sequence[float]], statistic: Callable[[list[list[float]]], float]) -> tuple[float, float]:
    """The CONFIDENCE percentile interval of a statistic of groups of scores, each group resampled with
    replacement on its own (Efron's percentile bootstrap)."""
    import random

    chooser = random.Random(0)  # nosec B311  # a resampling, not a secret
    values = sorted(statistic([chooser.choices(list(group), k=len(group)) for group in groups])
                    for _ in range(BOOTSTRAP_RESAMPLES))
    tail = (1 - CONFIDENCE) / 2
    return values[int(tail * (len(values) - 1))], values[int(round((1 - tail) * (len(values) - 1)))]


@dataclass
class Confirmed:
    """A combination the search chose, as its confirmation runs on fresh seeds scored it."""

    label: str
    whole: str
    records: list[RunRecord]  # its confirmation runs
    scores: list[float]  # of those that trained to max_steps

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.scores) if self.scores else None

    def interval(self) -> tuple[float, float] | None:
        return bootstrap_interval([self.scores], lambda groups: statistics.fmean(groups[0])) if self.scores else None


@dataclass(frozen=True)
class Verdict:
    """Whether the confirmed winner's lead over the runner-up is beyond the noise its runs show: the interval of
    the difference of their means (in the better direction: positive is a lead)."""

    winner: Confirmed
    runner_up: Confirmed | None
    lead: float | None = None
    interval: tuple[float, float] | None = None

    @property
    def beyond_noise(self) -> bool:
        return self.interval is not None and self.interval[0] > 0


def confirmations(records: Sequence[RunRecord], metric: str, mode: str) -> list[Confirmed]:
    """The confirmed combinations, best mean first (those without a score last, in the order they were confirmed)."""
    groups: dict[str, Confirmed] = {}
    for record in sorted((record for record in records if record.run.confirms), key=lambda record: record.run.index):
        run = record.run
        group = groups.setdefault(run.combination, Confirmed(run.describe(), run.describe(True), [], []))
        group.records.append(record)
        score = ranking_value(record, metric)
        if record.status is Status.FINISHED and finite_number(score):
            group.scores.append(score)
    return best_first(list(groups.values()), lambda group: group.mean, mode)


def confirmation_verdict(ranked: Sequence[Confirmed], mode: str) -> Verdict | None:
    """The winner of a confirmation and whether its lead is beyond the noise (None: nothing scored yet)."""
    scored = [group for group in ranked if group.scores]
    if not scored:
        return None
    if len(scored) < 2:
        return Verdict(scored[0], None)
    winner, runner_up = scored[0], scored[1]
    sign = 1.0 if mode == "max" else -1.0
    lead = sign * (winner.mean - runner_up.mean)  # type: ignore[operator]  # both scored
    interval = bootstrap_interval([winner.scores, runner_up.scores],
                                  lambda groups: sign * (statistics.fmean(groups[0]) - statistics.fmean(groups[1])))
    return Verdict(winner, runner_up, lead, interval)


def confirmation_rows(ranked: Sequence[Confirmed], whole: bool = False) -> tuple[list[str], list[list[str]]]:
    header = ["values", "runs", "scored", "mean score", f"{CONFIDENCE:.0%} interval", "min", "max", "seeds", "run ids"]
    rows = []
    for group in ranked:
        interval = group.interval()
        rows.append([group.whole if whole else group.label, str(len(group.records)), str(len(group.scores)),
                     "" if group.mean is None else f"{group.mean:g}",
                     "" if interval is None else f"{interval[0]:g} to {interval[1]:g}",
                     f"{min(group.scores):g}" if group.scores else "", f"{max(group.scores):g}" if group.scores else "",
                     " ".join(str(record.run.seed) for record in group.records),
                     " ".join(record.run.run_id for record in group.records)])
    return header, rows


def verdict_line(verdict: Verdict, seeds: int, so_far: str) -> str:
    """The confirmation's answer in a sentence: the winner, and whether its lead is beyond the noise."""
    winner = verdict.winner
    interval = winner.interval()
    said = (f"Best settings{so_far}, confirmed on {len(winner.scores)} fresh seed{'s' if len(winner.scores) != 1 else ''}: "
            f"{winner.label}, mean score {winner.mean:g}"
            + (f" ({CONFIDENCE:.0%} interval {interval[0]:g} to {interval[1]:g})" if interval is not None else "")
            + f" over {' '.join(record.run.run_id for record in winner.records)}")
    if verdict.runner_up is None or verdict.interval is None or verdict.lead is None:
        return said + "; no other combination was confirmed to compare it with."
    low, high = verdict.interval
    difference = f"{verdict.lead:g} ahead of {verdict.runner_up.label} (interval {low:g} to {high:g})"
    if verdict.beyond_noise:
        return said + f"; its lead is beyond the noise measured: {difference}."
    return (said + f"; it cannot be told apart from the runner-up on these seeds: {difference}; "
            f"more seeds (--confirm-seeds {max(seeds * 2, seeds + 2)} with --resume) may separate them.")


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Rows as an aligned plain-text table with a rule under the header."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip() for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Rows as a Markdown table."""
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"
    return "\n".join([line(header), line(["---"] * len(header)), *(line(row) for row in rows)])


def describe_values(values: Sequence[tuple[str, str, Any]], names: Sequence[str | None]) -> str:
    """Values in one line, as Run.describe shows a run's."""
    if not values:
        return "no value options"
    return " ".join(f"{name}={shown_value(value, label)}" for name, (_, _, value), label
                    in zip(qualified_names([(heading, label) for heading, label, _ in values]), values, names))


@dataclass(frozen=True)
class Stretch:
    """One stretch of a model's training under population based training: from a step, which run trained it,
    with which values."""

    start: float
    run_id: str
    values: tuple[tuple[str, str, Any], ...]
    names: tuple[str | None, ...]


def schedule(run_id: str, records: Mapping[str, RunRecord], before: int | None = None) -> list[Stretch]:
    """The schedule of values a run's model was trained under, from step 0: its weights came from the run whose
    checkpoint it took over last (before interval `before`), whose weights came from ..., so the schedule is that
    run's up to the step it was copied at, then this run's values from there."""
    record = records[run_id]
    taken = [exploit for exploit in record.lineage if before is None or exploit.interval < before]
    if not taken or taken[-1].donor not in records:
        first = record.lineage[0] if record.lineage else None
        values, names = ((first.before, first.names[0]) if first is not None else
                         (tuple(record.run.values), tuple(record.run.names or [None] * len(record.run.values))))
        return [Stretch(0.0, run_id, values, names)]
    last = taken[-1]
    return [*schedule(last.donor, records, last.interval), Stretch(last.step or 0.0, run_id, last.after, last.names[1])]


def schedule_text(stretches: Sequence[Stretch], end: float | None) -> str:
    """A schedule in one line: "steps 0-100000 r-3 (lr=0.0003); 100000-500000 r-0 (lr=0.00036)"."""
    bounds = [*(stretch.start for stretch in stretches[1:]), end]
    return "; ".join(f"{'steps ' if number == 0 else ''}{stretch.start:g}-{'' if until is None else f'{until:g}'} "
                     f"{stretch.run_id} ({describe_values(stretch.values, stretch.names)})"
                     for number, (stretch, until) in enumerate(zip(stretches, bounds)))


def lineage_text(record: RunRecord) -> str:
    """Each time a run took over another's checkpoint: "at 100000 took r-3's (lr 0.0001 -> 0.00036)"."""
    parts = []
    for exploit in record.lineage:
        changed = [f"{name} {shown_value(old, old_label)} -> {shown_value(new, new_label)}" for name, (_, _, old), (_, _, new),
                   old_label, new_label in zip(qualified_names([(heading, label) for heading, label, _ in exploit.before]),
                                               exploit.before, exploit.after, *exploit.names) if flow(old) != flow(new)]
        at = "" if exploit.step is None else f"at {exploit.step:g} "
        parts.append(f"{at}took over {exploit.donor}'s checkpoint ({', '.join(changed) or 'same values'})")
    return "; ".join(parts)


def write_summary(outcome: Outcome, settings: Settings, console: Console) -> None:
    """Print the table of all runs, best first, and with repetitions the table of combinations, best
    mean first; save them as summary.csv, summary_by_combination.csv (whole values: for machines) and
    summary.md (values cut short: for people)."""
    header, rows, ranked = summary_rows(outcome, settings)
    # Under population based training a run's values change as it goes (its lineage says how): no combination
    # is trained by all its repetitions alike.
    pbt = any(rule.rule == "pbt" for record in outcome.records for rule in record.run.stop_rules)
    by_combination = combination_rows(outcome, settings) if settings.repetitions > 1 and not pbt else None
    confirmed = confirmations(outcome.records, settings.metric, settings.metric_mode)
    so_far = " so far" if outcome.unfinished else ""
    of_search = " of the search" if confirmed else ""
    best_line = ""
    best = next((record for record in ranked if not record.run.confirms
                 and best_candidate(record, outcome, settings.metric)), None)
    if best is not None:
        stand = outcome.standing(best)
        judged = (f", the furthest its rule judged: {stand.value:g} at step {stand.step:g}"
                  if stand is not None and stand.value is not None and stand.step is not None else "")
        last = ranking_value(best, settings.metric)
        best_line = (f"Best run{of_search}{so_far}: {best.run.run_id} ({best.run.describe()}), "
                     f"score {'' if last is None else f'{last:g}'} (the mean of its last {FINAL_POINTS} points of "
                     f"{settings.metric}){judged}; its config: {settings.config_path_of(best.run)}")
    if by_combination is not None:
        top = by_combination[2][0] if by_combination[2] else None
        best_line = (f"Best settings{of_search}{so_far}: {top.label}, mean score {top.mean:g} over {len(top.scores)} "
                     f"of its {len(top.records)} runs ({' '.join(record.run.run_id for record in top.records)})"
                     if top is not None and finite_number(top.mean) else "")
    if pbt and best is not None and best_line:
        records = {record.run.run_id: record for record in outcome.records}
        models = ", ".join(str(settings.results_dir / best.run.run_id / f"{behavior}.onnx") for behavior in best.run.behaviors)
        best_line += (f"; its model: {models}; the schedule of values it was trained under: "
                      f"{schedule_text(schedule(best.run.run_id, records), best.last_step)}")
    lineage = [f"- {record.run.run_id}: {lineage_text(record)}" for record in ranked if record.lineage]
    verdict = confirmation_verdict(confirmed, settings.metric_mode)
    confirm_line = verdict_line(verdict, settings.confirm_seeds, so_far) if verdict is not None else ""
    if settings.confirm and not confirmed and not outcome.unfinished:
        confirm_line = "Nothing was confirmed: no run of the search has a score to rank its combination by (see the table)."
    files = {"summary.csv": csv_text(*summary_rows(outcome, settings, whole=True)[:2])}
    markdown = f"# Sweep {settings.run_id}\n\n{markdown_table(header, rows)}\n"
    if by_combination is not None:
        files["summary_by_combination.csv"] = csv_text(*combination_rows(outcome, settings, whole=True)[:2])
        markdown += f"\n## By combination ({settings.repetitions} repetitions)\n\n{markdown_table(*by_combination[:2])}\n"
    if confirmed:
        files["summary_confirmation.csv"] = csv_text(*confirmation_rows(confirmed, whole=True))
        markdown += f"\n## Confirmation on fresh seeds\n\n{markdown_table(*confirmation_rows(confirmed))}\n"
    if lineage:
        markdown += "\n## Lineage (each run that took over another's checkpoint)\n\n" + "\n".join(lineage) + "\n"
    if best_line:
        markdown += f"\n{best_line}\n"
    if confirm_line:
        markdown += f"\n{confirm_line}\n"
    importance = importance_text(outcome)
    if importance:
        markdown += f"\n## Which settings mattered\n\n{importance}\n"
    files["summary.md"] = markdown
    try:
        for name, text in files.items():
            write_atomically(settings.sweep_dir / name, text)
        written = True
    except OSError as exc:
        console.warn(f"cannot write the summary in {settings.sweep_dir} ({exc.strerror or exc}); it is printed below")
        written = False
    if outcome.stale:
        console.warn("TensorBoard did not answer the last poll: the metrics below are those of the poll before")
    console.block("\n" + text_table(header, rows) + "\n")
    if by_combination is not None:
        console.block(f"By combination ({settings.repetitions} repetitions), best mean first:\n\n"
                      + text_table(*by_combination[:2]) + "\n")
    if confirmed:
        console.block("Confirmation on fresh seeds, best mean first:\n\n" + text_table(*confirmation_rows(confirmed)) + "\n")
    if lineage:
        console.block("Lineage (each run that took over another's checkpoint):\n" + "\n".join(lineage))
    if best_line:
        console.block(best_line)
    if confirm_line:
        console.block(confirm_line)
    if importance:
        console.block(importance)
    if written:
        extra = (", summary_by_combination.csv" if by_combination is not None else "") + (
            ", summary_confirmation.csv" if confirmed else "")
        console.block(f"Summary: {settings.sweep_dir / 'summary.md'}{extra} and summary.csv")


def importance_text(outcome: Outcome) -> str:
    """Each option's importance, most important first, and what it was measured on; "" if not measured."""
    if outcome.importance is None:
        return ""
    shares, basis = outcome.importance
    ranked = sorted(shares.items(), key=lambda item: -item[1])
    return (f"Importance of each option (Optuna's PED-ANOVA over {basis}): "
            + ", ".join(f"{name} {share:.2f}" for name, share in ranked))


def best_candidate(record: RunRecord, outcome: Outcome, metric: str) -> bool:
    """May the run be named best? A run judged by the policy (at a rung) by its value there; any other run only
    if it finished or was stopped by a rule (a failed or interrupted run's last value is not a result), and
    never by a value that is not a finite number (a diverged run)."""
    stand = outcome.standing(record)
    if stand is not None and stand.value is not None:
        return finite_number(stand.value)
    return finite_number(ranking_value(record, metric)) and record.status in (Status.FINISHED, Status.STOPPED)


def csv_text(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([header, *rows])
    return buffer.getvalue()


# ---------------------------------------------------------------------------
# TensorBoard's HParams tab: each run's values beside its metrics
# ---------------------------------------------------------------------------

# Our event files: a run's is replaced each time a session of it ends, so that the
# tab shows its latest status (a TensorBoard that read the old one shows that
# until it restarts: TensorBoard keeps the first summary of a tag it saw).
HPARAMS_SUFFIX = ".mlagents-sweep-hparams"


def _crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC32C = _crc32c_table()


def masked_crc32c(data: bytes) -> int:
    """TFRecord's checksum: CRC-32C (Castagnoli), rotated and offset as TensorFlow masks it."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def tfrecord(data: bytes) -> bytes:
    """One record of a TensorBoard event file."""
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", masked_crc32c(length)) + data + struct.pack("<I", masked_crc32c(data))


def hparam_values(run: Run) -> dict[str, bool | float | str]:
    """A run's values for the HParams tab, by option: numbers and booleans as such, a label or anything else as text."""
    labels = run.names or [None] * len(run.values)
    found: dict[str, bool | float | str] = {}
    for (_, _, value), label, name in zip(run.values, labels, run.value_names()):
        if label is None and isinstance(value, bool):
            found[name] = value
        elif label is None and isinstance(value, (int, float)) and finite_number(value):
            found[name] = float(value)
        else:
            found[name] = label if label is not None else flow(value)  # whole: a table of people, but sorted by machines
    return found


def hparams_groups(runs: Sequence[Run]) -> dict[str, list[str]]:
    """The HParams tab's rows: the runs of each combination (repetitions share a row, which shows their mean)."""
    groups: dict[str, list[str]] = {}
    for run in runs:
        groups.setdefault(run.combination, []).append(run.run_id)
    return groups


def group_name(run_ids: Sequence[str]) -> str:
    """A row's trial id: the run's own id, or the first repetition's with how many share the row. Short, as
    the tab shows it (it cuts long ones), and apart from any other sweep's (run ids of two sweeps differ)."""
    return run_ids[0] if len(run_ids) == 1 else f"{run_ids[0]} x{len(run_ids)}"


# A row is written once its runs are done for now: TensorBoard keeps the first row it reads of a run
# until it restarts, so a row written earlier would stay "running" in it.
ROW_STATUSES = (Status.FINISHED, Status.STOPPED, Status.FAILED)


def row_columns(records: Sequence[RunRecord]) -> dict[str, str]:
    """The status, start and end a row shows, for its runs together: "stopped early", or "1 finished, 1 stopped
    early"; the first start and the last end, in local time, to the minute and without the year (the
    tab cuts longer text; as text, they sort as times do)."""
    counts = Counter(record.status.label for record in records)
    status = next(iter(counts)) if len(counts) == 1 else ", ".join(f"{n} {label}" for label, n in sorted(counts.items()))
    starts = [record.start for record in records if record.start is not None]
    ends = [record.end for record in records if record.end is not None]
    when = lambda wall: time.strftime("%m-%d %H:%M", time.localtime(wall))  # noqa: E731
    return {"status": status, "start": when(min(starts)) if starts else "", "end": when(max(ends)) if ends else ""}


ROW_COLUMNS = ("status", "start", "end")


class HParamsWriter:
    """Writes what TensorBoard's HParams plugin reads, with the protos of the tensorboard package (no TensorFlow).

    Per run a session (its values, the sweep, the row's status, start and end)
    in the run's own results folder, where ML-Agents' scalars are below it
    (<run-id>/<Behavior>). Any TensorBoard over the results folder lists every
    sweep's rows apart, each with its own columns: the plugin makes its columns
    from the sessions, and every scalar tag is a metric. The sweep's
    experiment (its options, the row columns and the metrics that matter,
    nothing else) goes only where the sweep's own TensorBoard reads it, the
    SweepView: in the results folder the plugin would take the first sweep's
    experiment it found for all of them.
    """

    def __init__(self, settings: Settings, results: Results, groups: Mapping[str, list[str]],
                 view: SweepView | None = None) -> None:
        from google.protobuf import struct_pb2
        from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2
        from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2

        self.settings, self.results, self.view = settings, results, view
        self.groups = {combination: list(run_ids) for combination, run_ids in groups.items()}
        self.written: set[str] = set()  # combinations whose row is written
        self.struct_pb2, self.event_pb2, self.summary_pb2 = struct_pb2, event_pb2, summary_pb2
        self.api_pb2, self.plugin_data_pb2 = api_pb2, plugin_data_pb2
        self.null_tensor = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=0)]))

    def summary(self, tag: str, data: Any) -> Any:
        content = data.SerializeToString()
        metadata = self.summary_pb2.SummaryMetadata(
            plugin_data=self.summary_pb2.SummaryMetadata.PluginData(plugin_name="hparams", content=content))
        return self.summary_pb2.Summary(value=[self.summary_pb2.Summary.Value(tag=tag, metadata=metadata,
                                                                              tensor=self.null_tensor)])

    def events(self, wall: float, *summaries: Any) -> tuple[str, bytes]:
        """An event file of these summaries: its name and its bytes."""
        records = [tfrecord(self.event_pb2.Event(wall_time=wall, file_version="brain.Event:2").SerializeToString())]
        records += [tfrecord(self.event_pb2.Event(wall_time=wall, step=0, summary=summary).SerializeToString())
                    for summary in summaries]
        return f"events.out.tfevents.{int(wall)}.{socket.gethostname()}{HPARAMS_SUFFIX}", b"".join(records)

    def experiment(self, runs: Sequence[Run], metrics: Sequence[tuple[str, str]], wall: float,
                   intervals: Mapping[str, tuple[float, float]] | None = None) -> None:
        """The sweep's experiment, in its view (if the view has its own folder): every option with its values
        (a range as its interval), the row columns, and the metrics."""
        # An older version wrote it in the sweep folder, where every TensorBoard over the results finds it.
        for old in (self.settings.sweep_dir / "hparams").glob(f"events.out.tfevents.*{HPARAMS_SUFFIX}"):
            old.unlink()
        if self.view is None or self.view.whole:
            return
        api = self.api_pb2
        infos: dict[str, list[bool | float | str]] = {}
        for run in runs:
            for name, value in hparam_values(run).items():
                if value not in infos.setdefault(name, []):
                    infos[name].append(value)
        hparam_infos = []
        for name, values in infos.items():
            if name in (intervals or {}):
                low, high = (intervals or {})[name]
                hparam_infos.append(api.HParamInfo(name=name, type=api.DATA_TYPE_FLOAT64, differs=True,
                                                   domain_interval=api.Interval(min_value=low, max_value=high)))
                continue
            kind = (api.DATA_TYPE_BOOL if all(isinstance(value, bool) for value in values) else
                    api.DATA_TYPE_FLOAT64 if all(isinstance(value, float) for value in values) else api.DATA_TYPE_STRING)
            shown = values if kind != api.DATA_TYPE_STRING else [str(value) for value in values]
            domain = self.struct_pb2.ListValue()
            domain.extend(shown)
            # TensorBoard shows first what differs, then by name: the options, then end, start and status.
            hparam_infos.append(api.HParamInfo(name=name, type=kind, domain_discrete=domain, differs=len(values) > 1))
        hparam_infos += [api.HParamInfo(name=name, type=api.DATA_TYPE_STRING) for name in ROW_COLUMNS]
        metric_infos = [api.MetricInfo(name=api.MetricName(group=behavior, tag=tag),
                                       display_name=tag if len({b for b, _ in metrics}) == 1 else f"{behavior}: {tag}")
                        for behavior, tag in metrics]
        experiment = api.Experiment(description=f"sweep {self.settings.run_id}", time_created_secs=wall,
                                    hparam_infos=hparam_infos, metric_infos=metric_infos)
        folder = self.view.folder / self.settings.sweep_dir.name
        folder.mkdir(parents=True, exist_ok=True)
        name, data = self.events(wall, self.summary("_hparams_/experiment", self.plugin_data_pb2.HParamsPluginData(experiment=experiment)))
        write_atomically_bytes(folder / name, data)

    def write_done(self, records: Mapping[str, RunRecord]) -> None:
        """Write each row whose runs are all done for now and that is not written yet (a search's trials, drawn
        as it goes, are rows of their own)."""
        grouped = {run_id for run_ids in self.groups.values() for run_id in run_ids}
        for record in records.values():
            if record.run.run_id not in grouped:  # a trial that drew another's values still has its own row
                key = record.run.combination if record.run.combination not in self.groups else record.run.run_id
                self.groups[key] = [record.run.run_id]
        for combination, run_ids in self.groups.items():
            members = [records.get(run_id) for run_id in run_ids]
            if combination in self.written or not all(member is not None and member.status in ROW_STATUSES
                                                      for member in members):
                continue
            done = [member for member in members if member is not None]
            columns = row_columns(done)
            for member in done:
                self.session(member, group_name(run_ids), columns)
            self.written.add(combination)

    def session(self, state: RunRecord, group: str, columns: Mapping[str, str]) -> None:
        """A run's session, in its results folder (through the results seam)."""
        plugin = self.plugin_data_pb2
        start = plugin.SessionStartInfo(group_name=group, start_time_secs=state.start or 0.0)
        for name, value in {**hparam_values(state.run), "sweep": self.settings.run_id, **columns}.items():
            if isinstance(value, bool):
                start.hparams[name].bool_value = value
            elif isinstance(value, float):
                start.hparams[name].number_value = value
            else:
                start.hparams[name].string_value = value
        status = {Status.FINISHED: "STATUS_SUCCESS", Status.STOPPED: "STATUS_SUCCESS", Status.FAILED: "STATUS_FAILURE",
                  Status.PAUSED: "STATUS_RUNNING"}.get(state.status, "STATUS_UNKNOWN")
        end = plugin.SessionEndInfo(status=self.api_pb2.Status.Value(status), end_time_secs=state.end or 0.0)
        name, data = self.events(state.end or 0.0,
                                 self.summary("_hparams_/session_start_info", plugin.HParamsPluginData(session_start_info=start)),
                                 self.summary("_hparams_/session_end_info", plugin.HParamsPluginData(session_end_info=end)))
        self.results.write_own_events(state.run.run_id, HPARAMS_SUFFIX, name, data)


def search_intervals(plan: SweepPlan) -> dict[str, tuple[float, float]]:
    """Each range's bounds by its name: the HParams tab declares a range as an interval."""
    return {name: (option.range.low, option.range.high)
            for option, name in zip(plan.options, plan.param_names()) if option.range is not None}


def start_hparams(settings: Settings, runs: Sequence[Run], tags: Sequence[str], results: Results,
                  console: Console, view: SweepView | None = None,
                  intervals: Mapping[str, tuple[float, float]] | None = None) -> HParamsWriter | None:
    """The HParams tab's writer, with the sweep's experiment written, if the tensorboard package can be
    imported (it can wherever ML-Agents is installed); else one line says so."""
    try:
        # A search's rows are its trials, one each, as they are drawn (see HParamsWriter.write_done).
        writer = HParamsWriter(settings, results, hparams_groups(runs) if settings.search == "grid" else {}, view)
    except ImportError:
        console.say("TensorBoard's HParams tab stays empty: the tensorboard package cannot be imported by "
                    "this Python (pip install tensorboard, or run the sweep with ML-Agents' Python)")
        return None
    behaviors = runs[0].behaviors
    try:
        writer.experiment(runs, [(behavior, tag) for tag in tags for behavior in behaviors], time.time(), intervals or {})
    except OSError as exc:
        console.warn(f"cannot write the HParams tab's data ({exc.strerror or exc}); training goes on")
        return None
    return writer


# ---------------------------------------------------------------------------
# Optuna's view of a search: the journal optuna-dashboard opens, each option's importance
# ---------------------------------------------------------------------------

STUDY_JOURNAL = "optuna-journal.log"  # in the sweep folder: optuna-dashboard results/<run-id>-sweep/optuna-journal.log


class SearchStudy:
    """A sampled search as an Optuna study, made from the run records alone (see OptunaSpace.add): written as
    a journal file in the sweep folder, rewritten whole as trials end, and asked for each option's importance."""

    def __init__(self, optuna: Any, plan: SweepPlan, settings: Settings, reached_of: Callable[[RunRecord], Mapping[float, float]],
                 first_rung: Callable[[RunRecord], float | None] | None = None) -> None:
        self.optuna, self.settings, self.reached_of, self.first_rung = optuna, settings, reached_of, first_rung
        self.space = OptunaSpace(optuna, plan.options, plan.param_names())
        self.direction = "maximize" if settings.metric_mode == "max" else "minimize"

    def trials(self, records: Sequence[RunRecord]) -> list[Trial]:
        return [trial_of(record, self.reached_of(record)) for record in records if record.run.searched]

    def write(self, records: Sequence[RunRecord]) -> None:
        """The journal, replaced whole (OSError if it cannot be written): a reader never sees half of it."""
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        target = self.settings.sweep_dir / STUDY_JOURNAL
        partial = target.with_name(f".{STUDY_JOURNAL}.{os.getpid()}")
        partial.unlink(missing_ok=True)
        try:
            study = self.space.study(self.direction, storage=JournalStorage(JournalFileBackend(str(partial))),
                                     name=self.settings.run_id)
            self.space.add(study, self.trials(records),
                           [record.run.run_id for record in records if record.run.searched])
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)

    def importance(self, records: Sequence[RunRecord]) -> tuple[dict[str, float], str] | None:
        """Each option's importance (Optuna's PED-ANOVA: how much the option's values in the best trials differ
        from its values in all; fANOVA, Optuna's default, needs scikit-learn), and what the scores were; None
        when there are too few of them. With halving every trial's value at the first rung
        counts (all reached it; most stopped there), else the score of each trial trained to the end."""
        mine = [record for record in records if record.run.searched]
        if self.first_rung is not None:
            scored = [(record, self.first_rung(record)) for record in mine]
            basis = "each trial's value at the first rung of halving"
        else:
            scored = [(record, record.score[1] if record.score else None) for record in mine if record.status is Status.FINISHED]
            basis = "the score of each trial trained to the end"
        complete = [Trial(tuple(value for _, _, value in record.run.values), "complete", score)
                    for record, score in scored if finite_number(score)]
        if len(complete) < 2 or len({trial.value for trial in complete}) < 2:
            return None
        study = self.space.study(self.direction)
        self.space.add(study, complete)
        try:
            found = self.optuna.importance.get_param_importances(study, evaluator=self.optuna.importance.PedAnovaImportanceEvaluator())
        except Exception:  # too few distinct values to compare, say: the summary goes without it
            return None
        return {name: float(share) for name, share in found.items()}, f"{basis}, {len(complete)} trials"


def start_study(settings: Settings, plan: SweepPlan, policy: "GridPolicy | HalvingPolicy | ConfirmingPolicy",
                console: Console) -> SearchStudy | None:
    """The study of a sampled search (None for a grid), if Optuna can be imported (a random search does without);
    else one line says what is missing."""
    if isinstance(policy, ConfirmingPolicy):
        policy = policy.search
    if isinstance(policy, PbtPolicy):
        return None  # its runs' values change as they train: no trial's values are what its score was trained under
    try:
        optuna = import_optuna()
    except SweepError:
        console.say("no optuna-dashboard journal and no importance of the options: they need Optuna (pip install optuna)")
        return None
    proposer = policy.grid.proposer if isinstance(policy, HalvingPolicy) else policy.proposer
    if not isinstance(proposer, SampledProposer):
        return None
    first = (lambda record: (record.memory or HalvingMemory()).values.get(0)) if isinstance(policy, AshaPolicy) else None
    return SearchStudy(optuna, plan, settings, proposer.reached_of, first)


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad command line is a SweepError like any other bad input; and it knows which of
    the sweep's own flags take a value (forwarded_flags must skip their values)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.valued: set[str] = set()

    def error(self, message: str) -> Any:  # type: ignore[override]
        raise SweepError(message, "command line", "see python mlagents-learn.py --help")

    def flag(self, group: Any, *names: str, **options: Any) -> None:
        """Add one of the sweep's flags to group, noting whether it takes exactly one value."""
        group.add_argument(*names, **options)
        if options.get("nargs") is None and options.get("action", "store") == "store":
            self.valued.update(names)


def build_parser() -> ArgumentParser:
    """The command line: the sweep's own flags, and mlagents-learn's (listed in the epilog) to forward."""
    forwarded = ", ".join(flag for flag in MLAGENTS_FLAGS if flag not in SWEEP_OWNED_FLAGS)
    parser = ArgumentParser(
        prog="python mlagents-learn.py", allow_abbrev=False,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="python mlagents-learn.py config.yaml [--env=BUILD] [--num-envs=N] [sweep flags] [mlagents-learn flags]",
        description="Hyperparameter sweeps for Unity ML-Agents: every combination of the config's "
                    "opt_values becomes a training run of mlagents-learn.",
        epilog="mlagents-learn flags, forwarded to each run unchanged (see mlagents-learn --help):\n  "
               + "\n  ".join(_wrap(forwarded, 76)) + "\n  --env-args ... (last: swallows the rest of the line)\n\n"
               "--results-dir, --force and --resume keep their mlagents-learn meaning; --resume also\n"
               "continues an interrupted sweep where it stopped (each run gets --resume only if it has a checkpoint).")
    parser.add_argument("config", nargs="?", metavar="config.yaml", help="ML-Agents trainer config with opt_values")
    ours = parser.add_argument_group("sweep flags")
    parser.flag(ours, "--num-envs", type=int, metavar="N", help="how many runs train at once (default 1)")
    parser.flag(ours, "--run-id", metavar="ID", help="base run id: runs are ID-0, ID-1, ... (default: the config's "
                                                    "checkpoint_settings.run_id, else ppo)")
    parser.flag(ours, "--base-port", type=int, metavar="PORT",
                      help=f"first port; concurrent runs get disjoint port ranges from here (default {DEFAULT_BASE_PORT})")
    parser.flag(ours, "--dry-run", "--generate-only", action="store_true", dest="dry_run",
                      help="write the configs and config_info.txt, print the plan, start nothing")
    parser.flag(ours, "--num-repetitions", type=int, default=1, metavar="N",
                      help="train every combination N times, in laps (default 1)")
    parser.flag(ours, "--trainer", default="mlagents-learn", metavar="CMD",
                      help="the trainer to launch (default: mlagents-learn from PATH)")
    parser.flag(ours, "--stop-timeout", type=float, default=DEFAULT_STOP_TIMEOUT, metavar="SECONDS",
                      help="how long a stopped run may take to save its model before it is killed (default 60)")
    parser.flag(ours, "--poll-interval", type=float, default=DEFAULT_POLL_INTERVAL, metavar="SECONDS",
                      help="how often stop conditions are checked in TensorBoard (default 10; every second while "
                           "a run nears a halving rung)")
    parser.flag(ours, "--tensorboard-url", default=DEFAULT_TENSORBOARD_URL, metavar="URL",
                      help=f"TensorBoard to read metrics from; one is started there if none answers (default {DEFAULT_TENSORBOARD_URL})")
    parser.flag(ours, "--no-tensorboard", action="store_true",
                      help="neither read nor start TensorBoard: no stop conditions, no metrics in the summary")
    parser.flag(ours, "--metric", default=DEFAULT_METRIC, metavar="TAG",
                      help=f"TensorBoard tag that ranks the runs in the summary (default {DEFAULT_METRIC})")
    parser.flag(ours, "--metric-mode", choices=STOP_MODES, default="max",
                      help="max: higher --metric is better (default); min: lower is, as for a loss")
    parser.flag(ours, "--shuffle", nargs="?", const="", default=None, metavar="SEED",
                      help="train the runs in a seeded random order (run ids stay the grid's); without SEED, a new one, "
                           "or on --resume the sweep's own")
    parser.flag(ours, "--max-runs", type=int, default=DEFAULT_MAX_RUNS, metavar="N",
                      help=f"refuse a grid of more runs than this (default {DEFAULT_MAX_RUNS})")
    parser.flag(ours, "--seed", metavar="N",
                      help="the sweep's seed: repetition 1 trains on N, each later one on a seed derived from N "
                           "(default: the config's env_settings.seed, else one drawn and recorded)")
    trust = parser.add_argument_group("a winner you can trust (see README, A winner you can trust)")
    parser.flag(trust, "--confirm", type=int, default=0, metavar="K",
                       help="once the search is over, train its K best combinations again on fresh seeds, to max_steps, "
                            "and rank them by those runs")
    parser.flag(trust, "--confirm-seeds", type=int, default=None, metavar="N",
                       help="how many fresh seeds --confirm trains each combination on (default 3)")
    parser.flag(trust, "--gpus", metavar="LIST",
                       help="place runs on these GPUs of this machine (0,1 or all): each run sees one as "
                            "CUDA_VISIBLE_DEVICES and trains with --torch-device cuda")
    parser.flag(trust, "--runs-per-gpu", type=int, default=None, metavar="K",
                       help="runs that share each GPU at once (default 1)")
    search = parser.add_argument_group("search flags (see README, Searching a space)")
    parser.flag(search, "--search", choices=SEARCHES, default=None,
                        help="grid: every combination (default); random or tpe (Optuna's TPE): --num-trials trials drawn "
                             "from the opt_values lists and opt_range ranges")
    parser.flag(search, "--num-trials", type=int, metavar="N", help="how many trials a random or tpe search proposes")
    parser.flag(search, "--search-seed", metavar="SEED",
                        help="the seed of a random or tpe search (default: a new one, or on --resume the sweep's own)")
    cluster = parser.add_argument_group("Ray cluster flags (see README, Many machines)")
    parser.flag(cluster, "--ray", metavar="ADDRESS",
                         help="train the runs on the Ray cluster at ADDRESS (auto, HOST:PORT or ray://HOST:10001)")
    parser.flag(cluster, "--cpus-per-run", type=float, default=1.0, metavar="N", help="CPUs each run asks Ray for (default 1)")
    parser.flag(cluster, "--gpus-per-run", type=float, default=0.0, metavar="G",
                         help="GPUs each run asks Ray for, fractions allowed (default 0)")
    parser.flag(cluster, "--max-retries", type=int, default=2, metavar="N",
                         help="times a run whose node went away trains again from its checkpoint (default 2)")
    for flag, takes_value in MLAGENTS_FLAGS.items():
        if flag in SWEEP_OWNED_FLAGS:
            continue
        if takes_value:
            parser.add_argument(flag, help=argparse.SUPPRESS)
        else:
            parser.add_argument(flag, action="store_true", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--env-args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def _wrap(text: str, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split(" "):
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return lines + [line]


def check_run_id(run_id: str, where: str) -> None:
    """Refuse a run id that could put files outside the results folder."""
    if not run_id or run_id in (".", "..") or ".." in run_id or any(char in RUN_ID_FORBIDDEN for char in run_id) \
            or any(ord(char) < 32 for char in run_id):
        raise SweepError(f"run id {cut(repr(run_id))} is not a plain name", where,
                         "use letters, digits, '-', '_' or '.', without '..' or path separators")


def check_run_id_length(run_id: str, runs: int, where: str) -> None:
    """Refuse a run id too long for the file names made from it: a file name has at most 255 bytes
    (Linux, macOS; Windows counts 255 characters)."""
    longest = f"{run_id}-{runs - 1}.yaml"  # a run's config; its folder, log and the sweep folder are shorter
    if len(longest.encode()) > NAME_MAX:
        most = NAME_MAX - len(f"-{runs - 1}.yaml".encode())
        raise SweepError(f"run id {cut(repr(run_id))} is {len(run_id)} characters long: file names made from it, "
                         f"such as {cut(longest)}, would be longer than the {NAME_MAX} bytes a file name may have",
                         where, f"use a run id of at most {most} characters")


def forwarded_flags(argv: Sequence[str], parser: ArgumentParser) -> list[str]:
    """The user's own mlagents-learn flags, as typed and in order, less those the sweep owns."""
    forwarded, words = [], list(argv)
    ours_with_value = parser.valued - set(MLAGENTS_FLAGS)
    index = 0
    while index < len(words) and words[index] != "--env-args":
        word = words[index]
        name, has_value, _ = word.partition("=")
        takes_value = MLAGENTS_FLAGS.get(name, name in ours_with_value) and not has_value
        # --resume and --force are decided per run: only runs that saved a checkpoint continue from it, and
        # only a run that starts afresh over a folder the sweep may overwrite is forced.
        if name in MLAGENTS_FLAGS and name not in SWEEP_OWNED_FLAGS and name not in ("--resume", "--force"):
            forwarded += words[index:index + 1 + takes_value]
        index += 1 + takes_value
    return forwarded


def check_url(url: str) -> str:
    """--tensorboard-url as a URL the client can use, or a SweepError."""
    todo = "e.g. --tensorboard-url http://localhost:6006"
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # raises for a port that is not one  # noqa: B018
    except ValueError as exc:
        raise SweepError(f"--tensorboard-url {url!r} is not a URL ({exc})", "command line", todo) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SweepError(f"--tensorboard-url {url!r} is not an http URL", "command line", todo)
    if parts.query or parts.fragment:
        raise SweepError(f"--tensorboard-url {url!r} has a query or fragment", "command line", todo)
    return url


def parse_args(argv: Sequence[str]) -> tuple[Settings, dict[str, Any], str]:
    """Check the command line and the config; return the settings, the config and its text."""
    parser = build_parser()
    args = parser.parse_args(list(argv))
    if args.config is None:
        raise SweepError("no config file given", "command line", "usage: python mlagents-learn.py config.yaml [flags]")
    for flag, value, least in (("--num-envs", args.num_envs, 1), ("--num-repetitions", args.num_repetitions, 1),
                               ("--max-runs", args.max_runs, 1), ("--base-port", args.base_port, 1)):
        if value is not None and value < least:
            raise SweepError(f"{flag} must be at least {least}, not {value}", "command line", f"pass {flag} {least} or more")
    shuffle = None if args.shuffle is None else SHUFFLE_ANY if args.shuffle == "" else args.shuffle
    if isinstance(shuffle, str):
        if not shuffle.isdigit() or int(shuffle) >= 2**31:
            raise SweepError(f"--shuffle {shuffle!r} is not a seed", "command line", "give a whole number, e.g. --shuffle 7")
        shuffle = int(shuffle)
    if args.base_port is not None and args.base_port > 65535:
        raise SweepError(f"--base-port {args.base_port} is not a port", "command line", "pick a port below 65536")
    for flag, value in (("--stop-timeout", args.stop_timeout), ("--poll-interval", args.poll_interval)):
        if not math.isfinite(value) or value < 0 or (flag == "--poll-interval" and value == 0):
            raise SweepError(f"{flag} must be a positive number of seconds, not {value:g}", "command line", f"e.g. {flag} 60")
    url = check_url(args.tensorboard_url)
    check_cluster_flags(args)
    search, search_seed = check_search_flags(args)
    confirm, confirm_seeds = check_confirm_flags(args)

    config_path = Path(args.config)
    text = read_config_text(config_path)
    config = parse_config(text, str(config_path))
    checkpoint = config.get("checkpoint_settings") or {}
    env_settings = config.get("env_settings") or {}

    run_id = args.run_id if args.run_id is not None else str(checkpoint.get("run_id") or DEFAULT_RUN_ID)
    run_id_source = "--run-id" if args.run_id is not None else f"{config_path}: checkpoint_settings.run_id"
    check_run_id(run_id, run_id_source)
    env_path = args.env if args.env is not None else env_settings.get("env_path")
    concurrency = args.num_envs if args.num_envs is not None else 1
    gpus = gpu_list(args, concurrency)
    if gpus and args.num_envs is None:
        concurrency = len(gpus) * (args.runs_per_gpu or 1)  # every GPU's share at once, unless --num-envs says fewer
    if env_path is None and concurrency > 1:
        raise SweepError(f"--num-envs {concurrency} without --env: the Unity Editor trains one run at a time on its fixed port",
                         "command line", "pass --env=<your build> to train runs at once, or --num-envs 1")
    base_port = args.base_port if args.base_port is not None else env_settings.get("base_port") or DEFAULT_BASE_PORT
    seed = sweep_seed(args.seed, env_settings.get("seed"), str(config_path))
    if not args.trainer.strip():
        raise SweepError("--trainer is empty", "command line", "pass the trainer's command, e.g. --trainer mlagents-learn")
    trainer = resolve_command(args.trainer)
    if trainer is None and args.dry_run:
        trainer = shlex.split(args.trainer, posix=not WINDOWS)  # a plan for another machine needs no trainer here
    if not trainer:
        raise SweepError(f"trainer not found: {args.trainer}", "--trainer",
                         "install ML-Agents (python scripts/install_mlagents.py), activate its environment, or pass --trainer PATH")

    settings = Settings(
        config_path=config_path, run_id=run_id, concurrency=concurrency, base_port=base_port,
        results_dir=Path(args.results_dir if args.results_dir is not None else checkpoint.get("results_dir") or DEFAULT_RESULTS_DIR),
        env_path=env_path, forwarded=forwarded_flags(argv, parser), env_args=args.env_args, trainer=trainer, dry_run=args.dry_run,
        repetitions=args.num_repetitions, stop_timeout=args.stop_timeout, poll_interval=args.poll_interval,
        tensorboard_url=None if args.no_tensorboard else url, metric=args.metric, metric_mode=args.metric_mode,
        force=bool(args.force or checkpoint.get("force")), resume=bool(args.resume or checkpoint.get("resume")),
        max_runs=args.max_runs, shuffle=shuffle, ray=args.ray, cpus_per_run=args.cpus_per_run,
        gpus_per_run=args.gpus_per_run, max_retries=args.max_retries, search=search, num_trials=args.num_trials,
        search_seed=search_seed, seed=seed, confirm=confirm, confirm_seeds=confirm_seeds, gpus=gpus,
        runs_per_gpu=args.runs_per_gpu or 1, resume_hint=resume_command(argv), run_id_source=run_id_source)
    return settings, config, text


def resume_command(argv: Sequence[str], python: str | None = None) -> str:
    """The command that continues this sweep: the same command line with --resume (without --force,
    which would start it afresh), before --env-args, which swallows the rest; run by the very Python
    this sweep runs on (a bare `python` may be another one, without the packages the sweep found),
    quoted for the user's shell."""
    words = [word for word in argv if word not in ("--force", "--resume", "--dry-run", "--generate-only")]
    at = words.index("--env-args") if "--env-args" in words else len(words)
    script = Path(__file__).resolve()
    try:
        shown = script.relative_to(Path.cwd().resolve())
    except ValueError:
        shown = script
    join = subprocess.list2cmdline if WINDOWS else shlex.join
    return join([python or sys.executable or "python", str(shown), *words[:at], "--resume", *words[at:]])


def check_cluster_flags(args: argparse.Namespace) -> None:
    """The Ray flags: numbers Ray accepts, and only with --ray (alone they would be silently ignored)."""
    for flag, value in (("--cpus-per-run", args.cpus_per_run), ("--gpus-per-run", args.gpus_per_run)):
        if not math.isfinite(value) or value < 0 or (flag == "--cpus-per-run" and value == 0):
            raise SweepError(f"{flag} must be a {'positive' if flag == '--cpus-per-run' else 'non-negative'} number, not {value:g}",
                             "command line", f"e.g. {flag} 1")
        if value > 1 and value != int(value):
            raise SweepError(f"{flag} {value:g}: Ray takes fractions only below 1", "command line", f"e.g. {flag} {math.ceil(value)}")
    if args.max_retries < 0:
        raise SweepError(f"--max-retries must be 0 or more, not {args.max_retries}", "command line", "e.g. --max-retries 2")
    if args.ray is None:
        given = [flag for flag, value, default in (("--cpus-per-run", args.cpus_per_run, 1.0),
                                                   ("--gpus-per-run", args.gpus_per_run, 0.0)) if value != default]
        if given:
            raise SweepError(f"{given[0]} without --ray: runs on this machine take what they need", "command line",
                             "pass --ray ADDRESS to train on a Ray cluster, or drop the flag")
    elif not args.ray.strip():
        raise SweepError("--ray is empty", "command line", "pass the cluster's address: auto, HOST:PORT or ray://HOST:10001")


def check_search_flags(args: argparse.Namespace) -> tuple[str, int | None]:
    """The search flags, checked together: a sampled search has a budget, repeats no trial and has no order
    to shuffle; the grid takes none of them. Returns the search and its seed."""
    search = args.search or "grid"
    if args.num_trials is not None and args.num_trials < 1:
        raise SweepError(f"--num-trials must be at least 1, not {args.num_trials}", "command line", "e.g. --num-trials 20")
    if search == "grid":
        given = next((flag for flag, value in (("--num-trials", args.num_trials), ("--search-seed", args.search_seed))
                      if value is not None), None)
        if given:
            raise SweepError(f"{given} is for a sampled search, and this one is a grid", "command line",
                             "add --search random or --search tpe, or drop the flag")
        return search, None
    if args.num_trials is None:
        raise SweepError(f"--search {search} needs a budget", "command line", "pass --num-trials N, e.g. --num-trials 20")
    if args.num_repetitions != 1:
        raise SweepError(f"--num-repetitions with --search {search}: a search trains each trial once", "command line",
                         "spend the runs on more trials (--num-trials), or drop --num-repetitions")
    if args.shuffle is not None:
        raise SweepError(f"--shuffle with --search {search}: trials are drawn in the order they train", "command line",
                         "drop --shuffle (--search-seed picks the draws)")
    seed = args.search_seed
    if seed is not None and (not seed.isdigit() or int(seed) >= 2**31):
        raise SweepError(f"--search-seed {seed!r} is not a seed", "command line", "give a whole number, e.g. --search-seed 7")
    return search, SHUFFLE_ANY if seed is None else int(seed)


def sweep_seed(flag: str | None, configured: Any, where: str) -> int:
    """The sweep's seed: --seed, else the config's env_settings.seed (ML-Agents' -1: none), else SHUFFLE_ANY
    (one is drawn, or on --resume the recorded one is taken)."""
    if flag is not None:
        if not flag.isdigit() or int(flag) >= SEED_LIMIT:
            raise SweepError(f"--seed {flag!r} is not a seed", "command line", "give a whole number, e.g. --seed 7")
        return int(flag)
    if is_option(configured) or configured is None or configured == -1:
        return SHUFFLE_ANY
    if not (isinstance(configured, int) and not isinstance(configured, bool) and 0 <= configured < SEED_LIMIT):
        raise SweepError(f"env_settings.seed is {cut(repr(configured))}, not a seed", where,
                         "give a whole number, e.g. seed: 7, or -1 to let the sweep draw one")
    return configured


def check_confirm_flags(args: argparse.Namespace) -> tuple[int, int]:
    """--confirm K and --confirm-seeds N: K combinations, N seeds each (at least 1 each)."""
    if args.confirm_seeds is not None and not args.confirm:
        raise SweepError("--confirm-seeds without --confirm", "command line",
                         "pass --confirm K as well (how many of the best combinations to confirm), or drop --confirm-seeds")
    for flag, value in (("--confirm", args.confirm), ("--confirm-seeds", args.confirm_seeds)):
        if value is not None and value < (0 if flag == "--confirm" else 1):
            raise SweepError(f"{flag} must be at least 1, not {value}", "command line", f"pass {flag} 1 or more")
    if args.confirm and args.no_tensorboard:
        raise SweepError("--confirm picks the best combinations by their scores in TensorBoard, and --no-tensorboard "
                         "leaves it out", "command line", "drop --no-tensorboard")
    return args.confirm, args.confirm_seeds or 3


def gpu_list(args: argparse.Namespace, concurrency: int,
             run: Callable[..., "subprocess.CompletedProcess[str]"] = subprocess.run) -> tuple[str, ...]:
    """--gpus as the GPUs runs are placed on (indices, or UUIDs as nvidia-smi -L names them); `all`: every GPU
    nvidia-smi lists. Checked against --runs-per-gpu, --num-envs, --ray and --torch-device."""
    if args.gpus is None:
        if args.runs_per_gpu is not None:
            raise SweepError("--runs-per-gpu without --gpus", "command line", "pass --gpus 0,1 (or all) as well, or drop --runs-per-gpu")
        return ()
    if args.ray:
        raise SweepError("--gpus places runs on this machine's GPUs, and --ray trains on a cluster", "command line",
                         "pass --gpus-per-run G for the cluster, or drop --ray")
    if args.torch_device is not None:
        raise SweepError(f"--gpus gives each run its GPU as --torch-device cuda, and --torch-device {args.torch_device} "
                         "says otherwise", "command line", "drop --torch-device")
    if args.runs_per_gpu is not None and args.runs_per_gpu < 1:
        raise SweepError(f"--runs-per-gpu must be at least 1, not {args.runs_per_gpu}", "command line", "pass --runs-per-gpu 1 or more")
    if args.gpus.strip().lower() == "all":
        try:
            done = run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"], capture_output=True, text=True,
                       timeout=60, check=False)
            found = done.stdout.split() if done.returncode == 0 else []
        except (OSError, subprocess.SubprocessError):
            found = []
        if not found:
            raise SweepError("--gpus all found no GPU (nvidia-smi lists none, or is not installed)", "command line",
                             "list the GPUs, e.g. --gpus 0,1, or drop --gpus to train as ML-Agents decides")
        gpus = tuple(found)
    else:
        gpus = tuple(part.strip() for part in args.gpus.split(","))
        bad = next((gpu for gpu in gpus if not re.fullmatch(r"\d+|(GPU|MIG)-[0-9A-Za-z/-]+", gpu)), None)
        if bad is not None:
            raise SweepError(f"--gpus {args.gpus!r}: {bad!r} is not a GPU", "command line",
                             "list GPU numbers, e.g. --gpus 0,1, or --gpus all")
        if len(set(gpus)) < len(gpus):
            raise SweepError(f"--gpus {args.gpus!r} names a GPU twice", "command line",
                             "list each GPU once; --runs-per-gpu K trains K runs on each")
    room = len(gpus) * (args.runs_per_gpu or 1)
    if args.num_envs is not None and concurrency > room:
        raise SweepError(f"--num-envs {concurrency} is more runs at once than {len(gpus)} GPUs x --runs-per-gpu "
                         f"{args.runs_per_gpu or 1} hold", "command line",
                         f"pass --runs-per-gpu {-(-concurrency // len(gpus))}, or --num-envs {room} or fewer")
    return gpus


def check_results(settings: Settings, run_ids: Sequence[str]) -> None:
    """Refuse to overwrite earlier runs' results unless --force or --resume says so."""
    if settings.force or settings.resume:
        return
    results = Results(settings.results_dir)
    clashing = [run_id for run_id in run_ids if results.run_folder_exists(run_id)]
    if clashing:
        shown = ", ".join(clashing[:5]) + (f" and {len(clashing) - 5} more" if len(clashing) > 5 else "")
        raise SweepError(f"results of {shown} already exist", str(settings.results_dir),
                         "pass --resume to continue them, --force to overwrite them, or choose another --run-id")


def pbt_text(rules: Sequence[StopRule], population: int, concurrency: int) -> str:
    """--dry-run: what population based training will do with the population, or "" without rule: pbt."""
    rule = next((rule for rule in rules if rule.rule == "pbt"), None)
    if rule is None:
        return ""
    count = min(math.ceil(population * rule.quantile), population // 2)
    turns = (f", {concurrency} at a time: each waits, paused, for the others to reach each interval"
             if population > concurrency else "")
    return (f"population based training (rule: pbt): a population of {population} runs{turns}; every {rule.interval:g} "
            f"steps the worst {count} take over checkpoints of the best {count} and explore their values (numbers times "
            f"{' or '.join(f'{factor:g}' for factor in rule.perturb)}, list values moved to a neighbour, drawn afresh "
            f"with a chance of {rule.resample:g}); every run trains to max_steps")


def print_plan(settings: Settings, runs: Sequence[Run], console: Console) -> None:
    """--dry-run: every run's values and exact command line."""
    combos = len(runs) // settings.repetitions
    laps = f" ({combos} combinations x {settings.repetitions} repetitions)" if settings.repetitions > 1 else ""
    console.block(f"{len(runs)} runs{laps}, at most {settings.concurrency} at once; "
                  f"configs and config_info.txt in {settings.sweep_dir}")
    population = pbt_text(runs[0].stop_rules if runs else [], len(runs), settings.concurrency)
    if population:
        console.block(population)
    stride = max(run.instances for run in runs)
    if settings.shuffle is not None:
        console.block(f"(in the order they would train: --shuffle {settings.shuffle})")
    for place, index in enumerate(training_order(runs, settings.shuffle)):
        run = runs[index]
        slot = place % settings.concurrency
        ports = None if settings.env_path is None else (settings.base_port + slot * stride,) * 2
        command = run_command(settings, run, ports, False, settings.force)
        command[len(settings.trainer)] = str(settings.config_path_of(run).resolve())  # to paste in any folder
        console.block(f"{run.run_id}: {run.describe_lap(settings.repetitions)}\n  {shlex.join(command)}")
    if settings.env_path is not None and settings.concurrency > 1:
        console.block("(each run's --base-port is picked when it starts: its slot's range, past ports in use)")
    if settings.gpus:
        console.block(gpu_text(settings))
    if settings.confirm:
        steps = max(run.total_steps() for run in runs)
        console.block(confirm_text(settings, steps, [run.seed for run in runs if run.seed is not None],
                                   f"the grid's {len(runs)} runs train at most {sum(run.total_steps() for run in runs):g}",
                                   len(runs) // settings.repetitions))


def gpu_text(settings: Settings) -> str:
    shares = ", ".join(f"GPU {gpu}: slots {' '.join(str(slot) for slot in range(settings.concurrency) if settings.gpu_of(slot) == gpu)}"
                       for gpu in settings.gpus)
    return (f"GPUs: {shares} (each run sees its GPU as CUDA_VISIBLE_DEVICES and trains with --torch-device cuda; "
            f"at most {settings.runs_per_gpu} per GPU)")


def confirm_text(settings: Settings, steps: float, used: Sequence[int], search: str, combinations_count: int | None) -> str:
    """--dry-run: what --confirm will train after the search, and what it costs."""
    count = settings.confirm if combinations_count is None else min(settings.confirm, combinations_count)
    seeds = fresh_seeds(settings.seed if settings.seed is not None and settings.seed >= 0 else 0,
                        settings.repetitions, used, settings.confirm_seeds)
    runs = count * settings.confirm_seeds
    seeds_text = f"seeds {', '.join(map(str, seeds))}" if settings.seed is not None and settings.seed >= 0 else "seeds drawn then"
    return (f"then --confirm {settings.confirm}: the {count} best combination{'s' if count != 1 else ''} trained again on "
            f"{settings.confirm_seeds} fresh seeds ({seeds_text}), to max_steps: {runs} runs, {runs * steps:g} steps more "
            f"({search} steps)")


def print_search(settings: Settings, plan: SweepPlan, probes: Sequence[Run], console: Console) -> None:
    """--dry-run of a sampled search: its space and budget (its trials are drawn as it trains), and one
    trial's command line."""
    asha = " with asynchronous halving (rule: halving)" if any(rule.rule == "halving" for rule in plan.stop_rules) else ""
    console.block(f"{settings.search} search{asha}: {settings.num_trials} trials, at most {settings.concurrency} at once, "
                  f"--search-seed {settings.search_seed}; configs and config_info.txt in {settings.sweep_dir} as trials are drawn")
    lines = []
    for option, name in zip(plan.options, plan.param_names()):
        if option.range is not None:
            lines.append(f"  {name}: {option.range.describe()}")
        else:
            texts = [shown_value(value, label) for value, label in zip(option.values, option.names or [None] * len(option.values))]
            lines.append(f"  {name}: one of {', '.join(texts)}")
    console.block("the space:\n" + "\n".join(lines))
    population = pbt_text(plan.stop_rules, settings.num_trials or 0, settings.concurrency)
    if population:
        console.block(population)
    steps = max(run.total_steps() for run in probes)
    console.block(f"at most {settings.num_trials} x {steps:g} = {(settings.num_trials or 0) * steps:g} steps"
                  + (" (halving stops most trials far earlier)" if asha else ""))
    if settings.gpus:
        console.block(gpu_text(settings))
    if settings.confirm:
        used = [settings.seed] if settings.seed is not None and settings.seed >= 0 and plan.seed_option is None else []
        console.block(confirm_text(settings, steps, used, f"the search trains at most {(settings.num_trials or 0) * steps:g}",
                                   None))
    run = probes[0]
    command = run_command(settings, run, None, False, settings.force)
    command[len(settings.trainer)] = str(settings.config_path_of(run).resolve())
    console.block(f"each trial trains as, e.g. for {run.run_id}:\n  {shlex.join(command)}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sweep the command line describes; return the exit code."""
    try:
        return run_sweep(sys.argv[1:] if argv is None else argv)
    except KeyboardInterrupt:  # before the sweep's own handlers are in place, or after
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


@dataclass
class Prepared:
    """A sweep that passed every check, ready to train: its folder locked, its records read back."""

    settings: Settings
    plan: SweepPlan
    runs: list[Run]  # the grid (a sampled search's trials are drawn as it goes: none here)
    checked: list[Run]  # the runs checked before the sweep: the grid, or a search's probes (see SweepPlan.probes)
    store: SweepStore
    sweep: SweepFile
    policy: "GridPolicy | HalvingPolicy | AshaPolicy | ConfirmingPolicy"
    records: list[RunRecord]  # what an earlier sweep in this folder recorded (--resume), else none
    resumed: bool  # --resume found a sweep to take up
    cluster: RayLauncher | None

    def make_run(self, spec: RunSpec) -> Run:
        """A proposed run: the grid's own when it is one of the grid's, else made from the config."""
        if spec.index < len(self.runs) and self.runs[spec.index].spec == spec:
            return self.runs[spec.index]
        return self.plan.make_run(spec)


def prepare(argv: Sequence[str], console: Console) -> Prepared:
    """Everything that can refuse the sweep, in order, before any run starts; the store is locked on return,
    and with --ray the cluster is connected and checked."""
    settings, config, text = parse_args(argv)
    plan = SweepPlan(config, settings.run_id, str(settings.config_path))
    sampled = settings.search != "grid"
    if sampled:
        check_search_space(settings, plan)
        runs, checked = [], [plan.make_run(spec) for spec in plan.probes()]
        run_ids = [f"{settings.run_id}-{index}" for index in range(settings.num_trials or 0)]
    else:
        runs = [plan.make_run(spec) for spec in plan.grid(settings.repetitions, settings.max_runs)]
        checked, run_ids = runs, [run.run_id for run in runs]
    check_run_id_length(settings.run_id, len(run_ids), settings.run_id_source)
    check_seed_option(settings, plan)
    schedule = next((rule.rule for rule in plan.stop_rules if RULE_KINDS[rule.rule].schedules), None)
    if settings.tensorboard_url is None and schedule is not None:
        raise SweepError(f"rule: {schedule} decides from TensorBoard, and --no-tensorboard leaves it out", "command line",
                         f"drop --no-tensorboard, or the {schedule} rule")
    if schedule == "pbt":
        check_pbt_options(plan)
        if settings.confirm:
            raise SweepError("--confirm trains the best combinations again, and rule: pbt's result is a model trained "
                             "under a schedule of values, not a combination", "command line",
                             "drop --confirm (see the README's population based training section)")
    if settings.tensorboard_url is None and sampled:
        raise SweepError(f"--search {settings.search} learns from the trials' scores in TensorBoard, and --no-tensorboard "
                         "leaves it out", "command line", "drop --no-tensorboard")
    if settings.search == "tpe":
        import_optuna()  # before anything is written: without Optuna, one line says how to get it
    check_port_room(settings, checked)
    store = SweepStore(settings)
    store.refuse_if_live()  # first: of all that may be wrong, a live sweep in the folder matters most
    if not settings.dry_run:
        check_results(settings, run_ids)
    check_with_mlagents(settings, checked, console)
    launcher = connect_cluster(settings, checked) if settings.ray and not settings.dry_run else None
    try:
        store.take()
    except BaseException:
        if launcher is not None:
            launcher.close()
        raise
    try:
        if store.started_before() and not settings.force and (settings.dry_run or not settings.resume):
            raise SweepError("a sweep already ran in this folder", str(settings.sweep_dir),
                             "pass --resume to continue it, --force to start it anew, or choose another --run-id")
        previous = store.load() if settings.resume and not settings.dry_run else None
        if settings.shuffle == SHUFFLE_ANY:
            recorded = (previous or {}).get("made_by", {}).get("shuffle")
            settings.shuffle = recorded if recorded is not None else int.from_bytes(os.urandom(3), "big")
        if settings.search_seed == SHUFFLE_ANY:
            recorded = ((previous or {}).get("made_by", {}).get("search") or [None, None, None])[2]
            settings.search_seed = recorded if isinstance(recorded, int) else int.from_bytes(os.urandom(3), "big")
        if settings.seed == SHUFFLE_ANY:
            recorded = (previous or {}).get("made_by", {}).get("seed")
            settings.seed = recorded if isinstance(recorded, int) else int.from_bytes(os.urandom(3), "big")
        plan.seed = settings.seed
        if not sampled:  # the grid again, each run with its seed now that the sweep's is known
            runs = [plan.make_run(spec) for spec in plan.grid(settings.repetitions, settings.max_runs)]
        origin = made_by(text, settings, runs)
        policy: GridPolicy | HalvingPolicy | AshaPolicy | ConfirmingPolicy
        if sampled:
            policy = make_search_policy(plan, make_sampler(settings, plan), settings.num_trials or 0, settings.concurrency,
                                        settings.seed)
        else:
            policy = make_policy(runs, training_order(runs, settings.shuffle), plan, settings.seed)
        if settings.confirm:
            policy = ConfirmingPolicy(policy, settings.confirm, settings.confirm_seeds, settings.seed,
                                      settings.repetitions, settings.metric_mode)
        records: list[RunRecord] = []
        sweep = SweepFile.new(settings.force, origin)
        if previous is not None:
            change = sweep_changes(previous["made_by"], origin)
            if change:
                raise SweepError(f"--resume asks for a different sweep than the one in {settings.sweep_dir}: {change}",
                                 str(settings.config_path),
                                 "resume with the original config and flags, or start a new sweep with another --run-id")
            # The run list is the records': the config is checked against them, never derived again.
            sweep = SweepFile(previous["sweep"], previous["overwrite"] or settings.force, origin)
            prepared = Prepared(settings, plan, runs, checked, store, sweep, policy, [], True, launcher)
            records = read_records(previous, store.state_path, prepared.make_run, policy)
        elif settings.resume and not settings.dry_run:
            records = adopt(runs, Results(settings.results_dir))
        # A search's config_info.txt lists the trials drawn so far, and grows as they are (see SweepStore.list_run).
        store.write_folder(runs if not sampled else [record.run for record in records], fresh=not settings.resume,
                           configs=settings.dry_run)
    except BaseException:
        store.release()
        if launcher is not None:
            launcher.close()
        raise
    return Prepared(settings, plan, runs, checked, store, sweep, policy, records, previous is not None or bool(records), launcher)


def check_seed_option(settings: Settings, plan: SweepPlan) -> None:
    """A config whose env_settings.seed is an option picks each run's seed itself: repetitions would train each
    seed again, and --confirm could not pick seeds of its own."""
    if plan.seed_option is None:
        return
    if settings.repetitions > 1:
        raise SweepError(f"env_settings.seed is an option, and --num-repetitions {settings.repetitions} would train each "
                         "seed again", str(settings.config_path), "drop one: repetitions get seeds of their own (--seed N)")
    if settings.confirm:
        raise SweepError("env_settings.seed is an option, and --confirm trains on seeds of its own", str(settings.config_path),
                         "give env_settings.seed one value (or --seed N), or drop --confirm")


def check_search_space(settings: Settings, plan: SweepPlan) -> None:
    """A sampled search needs options to draw from; a space of lists only has at most its grid's points."""
    if not plan.options:
        raise SweepError(f"--search {settings.search} has nothing to search: the config has no opt_values or opt_range",
                         str(settings.config_path), "mark a value, e.g. learning_rate: {opt_range: [1.0e-5, 1.0e-2], log: true}")
    points = None if plan.sampled else math.prod(len(distinct_places(option)) for option in plan.options)
    if points is not None and (settings.num_trials or 0) > points:
        raise SweepError(f"--num-trials {settings.num_trials} is more than the {points} combinations of the lists",
                         "command line", f"pass --num-trials {points} or fewer, --search grid to train them all, "
                         "or give a range (opt_range)")


def make_sampler(settings: Settings, plan: SweepPlan) -> Sampler:
    seed = settings.search_seed or 0
    if settings.search == "tpe":
        return TpeSampler(plan.options, plan.param_names(), seed, settings.metric_mode, settings.num_trials or 0)
    return RandomSampler(plan.options, seed)


def adopt(runs: Sequence[Run], results: Results) -> list[RunRecord]:
    """--resume where no state file was ever written (a full disk from the start): mlagents-learn's own
    meaning of --resume. Each run whose results are there is taken as this sweep's, its session closed by
    what ML-Agents recorded (see RunRecord.take_up): trained to the end, or continued from its checkpoint."""
    return [RunRecord(run, Status.RUNNING, [Session(0.0)]) for run in runs if results.exists(run)]


def check_with_mlagents(settings: Settings, runs: Sequence[Run], console: Console,
                        run: Callable[..., "subprocess.CompletedProcess[str]"] = subprocess.run) -> None:
    """Refuse a sweep whose run configs ML-Agents would refuse (a key of SAC's crossed with trainer_type ppo,
    a misspelt hyperparameter): each run would fail after seconds, with the reason in its log only.

    Checked by ML-Agents' own parser in the trainer's Python (the sweep may run on another), where the
    trainer is mlagents-learn; one line per kind of mistake, naming the runs. Where that Python cannot be
    found or has no ML-Agents, one line says so and the sweep goes on."""
    if not Path(settings.trainer[0]).name.lower().startswith(("mlagents-learn", "python")):
        return  # a trainer of the user's own: not ML-Agents' to judge its configs
    found = trainer_python(settings.trainer)
    if found is None:
        if Path(settings.trainer[0]).name.lower().startswith("mlagents-learn"):
            console.warn(f"the Python that runs {settings.trainer[0]} was not found: the run configs are not checked "
                         "by ML-Agents before they train")
        return  # python running a script of its own: not mlagents-learn
    texts: dict[str, list[Run]] = {}
    for each in runs:
        texts.setdefault(dump_config(each.config), []).append(each)  # repetitions share one config
    numbered = list(texts)
    try:
        done = run([found[0], "-c", CONFIG_CHECK], input=json.dumps(dict(enumerate(numbered))), capture_output=True,
                   text=True, timeout=600, check=False)
        refused = json.loads(done.stdout) if done.returncode == 0 else None
    except (OSError, subprocess.SubprocessError, ValueError):
        done, refused = None, None
    if not isinstance(refused, dict):
        why = "has no ML-Agents" if done is not None and done.returncode == 3 else "could not check them"
        console.warn(f"the trainer's Python {found[0]} {why}: the run configs are not checked by ML-Agents before they train")
        return
    by_reason: dict[str, list[str]] = {}
    for number, reason in refused.items():
        by_reason.setdefault(str(reason), []).extend(
            each.run_id if settings.search == "grid" else f"({each.describe()})" for each in texts[numbered[int(number)]])
    if by_reason:
        bad = sum(len(ids) for ids in by_reason.values())
        lines = [f"  {', '.join(ids[:5])}{f' and {len(ids) - 5} more' if len(ids) > 5 else ''}: {cut(reason, 300)}"
                 for reason, ids in sorted(by_reason.items(), key=lambda item: item[1][0])]
        # A search's runs are not drawn yet: it is checked by trials that take every list value and range end.
        what = f"{len(runs)} runs" if settings.search == "grid" else f"{len(runs)} trials at the ends of its ranges and lists"
        raise SweepError(f"ML-Agents refuses the configs of {bad} of {what}", str(settings.config_path),
                         "fix the options that make them, or leave those runs out; what ML-Agents said:\n" + "\n".join(lines))


def check_port_room(settings: Settings, runs: Sequence[Run]) -> None:
    """Runs against a build need a lane of ports each: the lanes of the runs at once must fit below 65536."""
    if settings.env_path is None:
        return
    stride, lanes = max(run.instances for run in runs), min(settings.concurrency, len(runs))
    if settings.base_port + lanes * stride - 1 > 65535:
        ports = f"{stride} ports" if stride > 1 else "a port"
        raise SweepError(f"--base-port {settings.base_port} leaves no room below 65536 for {lanes} runs at once, {ports} each",
                         "command line", f"pass --base-port {65536 - lanes * stride} or lower, or a smaller --num-envs")


def connect_cluster(settings: Settings, runs: Sequence[Run]) -> RayLauncher:
    """--ray: connect, and check every node that could take a run before the sweep writes anything."""
    launcher = RayLauncher(settings.ray or "auto", cpus=settings.cpus_per_run, gpus=settings.gpus_per_run,
                           base_port=settings.base_port, stride=max(run.instances for run in runs))
    try:
        launcher.check_nodes(settings.results_dir, settings.trainer)
    except BaseException:
        launcher.close()
        raise
    return launcher


def run_sweep(argv: Sequence[str]) -> int:
    """Check everything, write the sweep folder, then train the runs (or print the plan)."""
    console = Console()
    try:
        prepared = prepare(argv, console)
    except SweepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    settings, runs, store, cluster = prepared.settings, prepared.runs, prepared.store, prepared.cluster
    view: SweepView | None = None
    try:
        if settings.dry_run:
            if settings.search == "grid":
                print_plan(settings, runs, console)
            else:
                print_search(settings, prepared.plan, prepared.checked, console)
            return EXIT_OK
        console.keep_log(settings.sweep_dir / SWEEP_LOG)
        platform = this_platform()
        results = Results(settings.results_dir)
        launcher: Launcher = cluster if cluster is not None else LocalLauncher(
            platform, base_port=settings.base_port, concurrency=settings.concurrency,
            stride=max(run.instances for run in prepared.checked), say=console.say)
        watcher = None
        if settings.tensorboard_url:
            log = settings.sweep_dir / "logs" / "tensorboard.log"
            view = SweepView(settings.results_dir)
            watcher = MetricsWatcher(TensorBoardClient(settings.tensorboard_url), interval=settings.poll_interval,
                                     results_dir=settings.results_dir,
                                     start_server=tensorboard_starter(settings, platform, log, view),
                                     uses=tag_uses(settings.metric, prepared.plan.stop_rules))
        trainer, warning = platform.trainer_command(settings.trainer)
        if warning:
            console.warn(warning)
        supervisor = Supervisor(settings, prepared.records, launcher=launcher, policy=prepared.policy, store=store,
                                console=console, results=results, make_run=prepared.make_run, sweep=prepared.sweep,
                                watcher=watcher, trainer=trainer)
        study = start_study(settings, prepared.plan, prepared.policy, console) if settings.search != "grid" else None
        supervisor.study = study
        if settings.tensorboard_url:
            supervisor.view = view
            supervisor.hparams = start_hparams(settings, prepared.checked, supervisor.summary_tags, results, console, view,
                                               intervals=search_intervals(prepared.plan))
        handlers = install_interrupt_handlers(supervisor)
        try:
            if prepared.resumed:
                prefix = marker_prefix(settings, prepared.sweep.sweep_id)
                reclaim(leftovers_of(supervisor.records, prefix, platform), platform, settings.stop_timeout, console,
                        lambda: supervisor.signals)
                supervisor.take_up()
                done = sum(record.status.done for record in supervisor.records)
                continuing = sum(record.status is Status.PENDING and results.resumable(record.run, record.inherited)
                                 for record in supervisor.records)
                console.say(f"resuming sweep {settings.run_id}: {done} runs done, {continuing} continue from their checkpoints")
            shuffled = "" if settings.shuffle is None else f", shuffled (--shuffle {settings.shuffle} repeats the order)"
            where = "" if cluster is None else f" on the Ray cluster at {settings.ray} ({cluster.describe()})"
            if cluster is not None and cluster.warning:
                console.warn(cluster.warning)
            what = (f"{len(runs)} runs" if settings.search == "grid" else
                    f"{settings.search} search of {settings.num_trials} trials (--search-seed {settings.search_seed})")
            confirming = (f", then its {settings.confirm} best confirmed on {settings.confirm_seeds} fresh seeds"
                          if settings.confirm else "")
            gpus = f" on GPUs {','.join(settings.gpus)}" if settings.gpus else ""
            console.say(f"sweep {settings.run_id}: {what}{confirming}, at most {settings.concurrency} at once{gpus}{where}"
                        f"{shuffled}; seed {settings.seed}; folder {settings.sweep_dir}")
            with Waker() as waker:
                supervisor.sleep = waker.sleep
                code = supervisor.run()
        finally:
            restore_handlers(handlers)
        shown = supervisor.shown()
        supervisor.write_study()  # with the scores of the last poll
        importance = study.importance(supervisor.records) if study is not None else None
        write_summary(Outcome(shown, supervisor.summary_tags, supervisor.metrics_stale, supervisor.clock(),
                              prepared.policy.standing, importance), settings, console)
        unfinished = [record for record in shown if record.status in (Status.INTERRUPTED, Status.PENDING, Status.PAUSED)]
        if unfinished and settings.resume_hint:
            console.block(f"{len(unfinished)} run{'s' if len(unfinished) != 1 else ''} not done; "
                          f"to continue the sweep: {settings.resume_hint}")
        if supervisor.unsaved():
            console.warn(supervisor.unsaved())  # last: what matters most once the sweep is over
        return code
    finally:
        if view is not None:
            view.close()  # its TensorBoard has been stopped
        if cluster is not None:
            cluster.close()
        console.close()
        store.release()


def tensorboard_starter(settings: Settings, platform: Platform, log: Path, view: SweepView) -> Callable[[], Any] | None:
    """How the watcher starts a TensorBoard of its own, over the sweep's view, or None if no tensorboard can be found."""
    executable = find_tensorboard(settings.trainer)
    if executable is None or settings.tensorboard_url is None:
        return None
    parts = urllib.parse.urlsplit(settings.tensorboard_url)
    return lambda: TensorBoardProcess([executable, "--logdir", str(view.logdir), "--host", parts.hostname or "localhost",
                                       "--port", str(parts.port or 80), "--reload_interval", f"{OWN_TENSORBOARD_RELOAD:g}"],
                                      log, platform)


def install_interrupt_handlers(supervisor: Supervisor) -> dict[int, Any]:
    """Ctrl-C (and a polite SIGTERM) stop the sweep gracefully; a second Ctrl-C kills. The handlers only count."""
    previous = {}
    for name in ("SIGINT", "SIGTERM", "SIGBREAK", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None:
            previous[sig] = signal.signal(sig, lambda signum, frame: supervisor.note_signal())
    return previous


def restore_handlers(previous: Mapping[int, Any]) -> None:
    """Put back the signal handlers the sweep replaced."""
    for sig, handler in previous.items():
        signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
