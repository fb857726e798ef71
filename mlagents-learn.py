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
import functools
import hashlib
import io
import itertools
import json
import math
import os
import re
import select
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import requests
import yaml

# ---------------------------------------------------------------------------
# Constants and defaults
# ---------------------------------------------------------------------------

DEFAULT_RUN_ID = "ppo"  # mlagents-learn's own default
DEFAULT_RESULTS_DIR = "results"
DEFAULT_BASE_PORT = 5005
DEFAULT_STOP_TIMEOUT = 60.0
DEFAULT_POLL_INTERVAL = 60.0
DEFAULT_TENSORBOARD_URL = "http://localhost:6006"
DEFAULT_METRIC = "Environment/Cumulative Reward"
DEFAULT_MAX_RUNS = 10_000
DEFAULT_MEDIAN_MIN_RUNS = 3
MLAGENTS_MAX_STEPS, MLAGENTS_SUMMARY_FREQ = 500_000, 50_000  # mlagents-learn's defaults per behavior
TICK = 0.2  # supervisor period: a freed slot is refilled within this
STATUS_INTERVAL = 60.0
HTTP_TIMEOUT = 10.0
TENSORBOARD_START_TIMEOUT = 60.0
# TensorBoard reads new event data every --reload_interval seconds (default 5):
# the summary waits this long after the last run ends so its last points are in.
TENSORBOARD_SETTLE = 6.0

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
STATE_FILE = "sweep_state.json"
STATE_VERSION = 1

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
SWEEP_OWNED_FLAGS = ("--run-id", "--num-envs", "--base-port")

OPTION_KEY = "opt_values"
STOP_KEY = "opt_stop"
STOP_FIELDS = {"tag", "step", "min", "max", "rule", "min_runs", "mode"}
STOP_RULES = ("threshold", "median")
STOP_MODES = ("max", "min")

RUN_ID_FORBIDDEN = set('/\\:*?"<>|')

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


@dataclass(frozen=True)
class Option:
    """One `opt_values` key: where it lives and the values it takes."""

    heading: str  # behavior name, or the top-level section it sits in
    path: tuple[str | int, ...]  # keys below the heading
    values: tuple[Any, ...]
    in_behavior: bool


@dataclass(frozen=True)
class StopRule:
    """One `opt_stop` condition of one behavior."""

    behavior: str
    tag: str
    step: float = 0
    min: float | None = None
    max: float | None = None
    rule: str = "threshold"  # or "median"
    min_runs: int = DEFAULT_MEDIAN_MIN_RUNS
    mode: str = "max"  # median rule: "max" when higher is better


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

    def in_last_stretch(self, behavior: str, step: float) -> bool:
        """True once a behavior is within one summary period of its max_steps.

        The run is about to finish and export its model; a stop then saves
        almost nothing, and a SIGINT during the export kills mlagents-learn
        before it has written its final model.
        """
        max_steps, summary_freq = self.horizons.get(behavior, (math.inf, 0))
        return step + summary_freq >= max_steps

    def describe(self) -> str:
        """The run's values in one short line, for the console and tables."""
        if not self.values:
            return "no value options"
        multi = len({heading for heading, _, _ in self.values}) > 1
        parts = [f"{heading + '.' if multi else ''}{label}={flow(value)}" for heading, label, value in self.values]
        return " ".join(parts)


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
    force: bool
    resume: bool
    max_runs: int

    @property
    def sweep_dir(self) -> Path:
        return self.results_dir / f"{self.run_id}-sweep"


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


def parse_config(text: str, where: str = "config") -> dict[str, Any]:
    """Parse config text; raise SweepError for anything mlagents-learn would not take."""
    try:
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
        if is_option(body) and not all(isinstance(value, dict) for value in body[OPTION_KEY] or [None]):
            raise SweepError(f"behavior {name!r} is an option whose values are not all mappings",
                             f"{where}: behaviors.{name}.{OPTION_KEY}", "list the behavior's settings as a mapping per option")
        if is_option(body) and contains_option(config.get("default_settings")):
            # Whether a default option applied would depend on which of the behavior's values is chosen.
            raise SweepError(f"behavior {name!r} is an option as a whole, so default_settings' options cannot apply to it",
                             f"{where}: behaviors.{name}.{OPTION_KEY}",
                             "put the options on keys inside the behavior, or inside its option values")
    if config.get("default_settings") is not None and not isinstance(config["default_settings"], dict):
        raise SweepError("default_settings is not a mapping", where, "give default_settings as a mapping")
    check_options(config, (), where)
    return config


def is_option(node: Any) -> bool:
    """True for a mapping that holds opt_values: an option, not a value."""
    return isinstance(node, dict) and OPTION_KEY in node


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
    if OPTION_KEY in node:
        place = f"{where}: {dotted(path + (OPTION_KEY,))}"
        extra = sorted(str(key) for key in node if key != OPTION_KEY)
        if extra:
            raise SweepError(f"opt_values has other keys beside it: {', '.join(extra)}", place,
                             "put opt_values alone in its mapping, e.g. beta: {opt_values: [0.001, 0.002]}")
        values = node[OPTION_KEY]
        if not isinstance(values, list):
            raise SweepError("opt_values is not a list", place, "write the options as a list, e.g. opt_values: [0.1, 0.2]")
        if not values:
            raise SweepError("opt_values is empty", place, "list at least one value")
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
                raise SweepError(f"unknown key {key}", f"{where}: {dotted(path + (key,))}", "use opt_values or opt_stop")
            continue
        check_options(value, path + (key,), where)


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


def find_options(node: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], tuple[Any, ...]]]:
    """Yield (path, values) of every option below node, in document order."""
    if is_option(node):
        yield path, tuple(node[OPTION_KEY])
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
        options += [Option(str(name), path, values, True) for path, values in find_options(effective)]
    for section, body in config.items():
        if section in ("behaviors", "default_settings"):
            continue
        options += [Option(str(section), path, values, False) for path, values in find_options(body, ())]
    return options


def option_labels(options: Sequence[Option]) -> list[str]:
    """The name config_info.txt gives each option: its key, or its dotted path if ambiguous."""
    labels = []
    for option in options:
        same_key = [o for o in options if o.heading == option.heading and o.path[-1:] == option.path[-1:]]
        if not option.path:
            labels.append(option.heading)  # the whole behavior or section is the option
        else:
            labels.append(str(option.path[-1]) if len(same_key) == 1 else dotted(option.path))
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
    return rules


def parse_stop_rule(behavior: str, spec: Any, where: str) -> StopRule:
    """One opt_stop mapping, checked field by field."""
    if not isinstance(spec, dict):
        raise SweepError("opt_stop is not a mapping", where, "write it as {tag: ..., step: ..., min: ...}")
    unknown = sorted(str(key) for key in spec if key not in STOP_FIELDS)
    if unknown:
        raise SweepError(f"unknown opt_stop field {unknown[0]}", where, f"use only {', '.join(sorted(STOP_FIELDS))}")
    tag = spec.get("tag")
    if tag is not None and not isinstance(tag, str):
        raise SweepError(f"opt_stop tag is not a name: {tag!r}", where, "quote it, e.g. tag: 'Environment/Cumulative Reward'")
    if not tag:
        raise SweepError("opt_stop has no tag", where, "name the TensorBoard scalar, e.g. tag: Environment/Cumulative Reward")
    rule = spec.get("rule", "threshold")
    if rule not in STOP_RULES:
        raise SweepError(f"unknown opt_stop rule {rule!r}", where, "use rule: median, or leave rule out for min/max")
    numbers: dict[str, float | None] = {}
    for name in ("step", "min", "max"):
        value = spec.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value)):
            raise SweepError(f"opt_stop {name} is not a number: {value!r}", where, f"write {name} as a number")
        numbers[name] = value
    step = numbers["step"] if numbers["step"] is not None else 0
    low, high = numbers["min"], numbers["max"]
    if low is not None and high is not None and low > high:
        raise SweepError(f"opt_stop min {low} is above max {high}", where, "swap them, or drop one")
    mode = spec.get("mode", "max")
    if mode not in STOP_MODES:
        raise SweepError(f"opt_stop mode {mode!r} is neither max nor min", where, "mode: max when higher is better, min when lower is")
    min_runs = spec.get("min_runs", DEFAULT_MEDIAN_MIN_RUNS)
    if isinstance(min_runs, bool) or not isinstance(min_runs, int) or min_runs < 1:
        raise SweepError(f"opt_stop min_runs is not a whole number of at least 1: {min_runs!r}", where, "e.g. min_runs: 3")
    if rule == "threshold":
        if low is None and high is None:
            raise SweepError("opt_stop has neither min nor max", where, "add min or max, or rule: median")
        if "mode" in spec or "min_runs" in spec:
            raise SweepError("mode and min_runs belong to rule: median", where, "add rule: median or drop them")
    elif low is not None or high is not None:
        raise SweepError("rule: median takes no min or max", where, "drop min/max, or drop rule: median")
    return StopRule(behavior, tag, step, low, high, rule, min_runs, mode)


def expand(config: Mapping[str, Any], run_id: str, repetitions: int = 1,
           max_runs: int = DEFAULT_MAX_RUNS, where: str = "config") -> list[Run]:
    """Expand a checked config into its runs: the cartesian product of its options, in laps."""
    options = plan_options(config)
    total = count_runs(options, repetitions)
    if total > max_runs:
        raise SweepError(f"the sweep has {total} runs, more than --max-runs {max_runs}", where,
                         f"remove options, or pass --max-runs {total} if you mean it")
    labels = option_labels(options)
    stop_rules = parse_stop_rules(config, where)
    template = config_template(config)
    behaviors = [str(name) for name in config["behaviors"]]
    combos = list(itertools.product(*(option.values for option in options)))
    runs: list[Run] = []
    for index in range(total):
        repetition, combo = divmod(index, len(combos))
        run_config = copy_tree(template)
        for option, value in zip(options, combos[combo]):
            # The heading is part of the path: a whole behavior or section may be one option.
            set_path(run_config["behaviors"] if option.in_behavior else run_config, (option.heading, *option.path), value)
        values = [(option.heading, label, value) for option, label, value in zip(options, labels, combos[combo])]
        runs.append(Run(index, f"{run_id}-{index}", run_config, values, repetition + 1,
                        stop_rules, instances_per_run(run_config, where), behaviors, horizons(run_config)))
    return runs


def horizons(config: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """Each behavior's max_steps and summary_freq, as mlagents-learn reads them (defaults included)."""
    defaults = config.get("default_settings") or {}
    found = {}
    for name, own in config["behaviors"].items():
        merged = merge_settings(defaults, own) if isinstance(own, dict) else {}
        found[str(name)] = (number(merged.get("max_steps"), MLAGENTS_MAX_STEPS),
                            number(merged.get("summary_freq"), MLAGENTS_SUMMARY_FREQ))
    return found


def number(value: Any, default: float) -> float:
    """A config number as mlagents-learn would read it (it also takes numeric strings), else default."""
    try:
        return float(value) if value is not None and not isinstance(value, bool) else default
    except (TypeError, ValueError):
        return default


def instances_per_run(config: Mapping[str, Any], where: str) -> int:
    """How many Unity instances (so ports) one run starts: env_settings.num_envs."""
    env_settings = config.get("env_settings") or {}
    count = env_settings.get("num_envs", 1) if isinstance(env_settings, dict) else 1
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise SweepError(f"env_settings.num_envs is not a whole number of at least 1: {count!r}", where, "e.g. num_envs: 1")
    return count


def flow(value: Any) -> str:
    """A value as a one-line YAML flow scalar, as config_info.txt writes it."""
    if isinstance(value, (str, int, float, type(None))):
        return _flow_scalar(type(value), value)  # a grid repeats few values many times
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
        if repetitions > 1:
            lines.append(f"- repetition {run.repetition} of {repetitions}")
        if not run.values:
            for behavior in run.behaviors:
                lines += [f"- {behavior}", "  - no value options"]
        heading = None
        for value_heading, label, value in run.values:
            if value_heading != heading:
                heading = value_heading
                lines.append(f"- {heading}")
            lines.append(f"  - {label}: {flow(value)}")
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def dump_config(config: Mapping[str, Any]) -> str:
    """A run's config as YAML, keys in the source's order."""
    return yaml.dump(dict(config), Dumper=_YamlDumper, sort_keys=False, default_flow_style=False, width=1 << 30)


def made_by(config_text: str, settings: Settings, runs: Sequence[Run]) -> dict[str, Any]:
    """What made the sweep: a resumed sweep must come from the same config, grid and flags."""
    return {"config_sha256": hashlib.sha256(config_text.encode()).hexdigest(),
            "repetitions": settings.repetitions, "flags": [flag for flag in settings.forwarded if flag != "--force"],
            "env_args": settings.env_args,
            "runs": [[run.run_id, run.describe()] for run in runs]}


def sweep_changes(before: Mapping[str, Any], now: Mapping[str, Any]) -> str | None:
    """What differs between the sweep on disk and the one asked for now, or None."""
    if before.get("repetitions") != now["repetitions"]:
        return f"--num-repetitions was {before.get('repetitions')}, now {now['repetitions']}"
    if before.get("flags") != now["flags"] or before.get("env_args") != now["env_args"]:
        old_flags = shlex.join(before.get("flags") or []) + (" --env-args ..." if before.get("env_args") is not None else "")
        return f"the mlagents-learn flags were '{old_flags}', now '{shlex.join(now['flags'])}'"
    old_runs, new_runs = [tuple(run) for run in before.get("runs", [])], [tuple(run) for run in now["runs"]]
    if len(old_runs) != len(new_runs):
        return f"the grid had {len(old_runs)} runs, now {len(new_runs)}"
    for (old_id, old_values), (new_id, new_values) in zip(old_runs, new_runs):
        if (old_id, old_values) != (new_id, new_values):
            return f"{old_id} was {old_values}, now {new_id} is {new_values}"
    if before.get("config_sha256") != now["config_sha256"]:
        return "the config file changed (the grid is the same, other settings are not)"
    return None


# ---------------------------------------------------------------------------
# Metrics: TensorBoard client, stop rules
# ---------------------------------------------------------------------------

Points = list[tuple[float, float]]  # (step, value), sorted by step


class TensorBoardDown(Exception):
    """TensorBoard did not answer; training goes on without it."""


class TensorBoard:
    """The few calls of TensorBoard's HTTP API the sweep needs; requests go only to url."""

    def __init__(self, url: str, timeout: float = HTTP_TIMEOUT) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.http = requests.Session()
        self.http.trust_env = False  # a proxy from the environment must not see a loopback server

    def alive(self) -> bool:
        try:
            return self.http.get(f"{self.url}/data/environment", timeout=self.timeout).ok
        except requests.RequestException:
            return False

    def scalars(self, tag: str, runs: Sequence[str]) -> dict[str, Points]:
        """The points of one tag for many runs, in one request; runs without data are left out."""
        if not runs:
            return {}
        try:
            reply = self.http.post(f"{self.url}/data/plugin/scalars/scalars_multirun",
                                   data={"tag": tag, "runs": list(runs)}, timeout=self.timeout)
        except requests.RequestException as exc:
            raise TensorBoardDown(exc.__class__.__name__) from None
        if not reply.ok:
            raise TensorBoardDown(f"HTTP {reply.status_code}")
        try:
            body = reply.json()
            return {run: [(float(step), float(value)) for _, step, value in points] for run, points in body.items()}
        except (ValueError, TypeError) as exc:
            raise TensorBoardDown(f"unexpected answer: {exc}") from None


def tensorboard_run(run_id: str, behavior: str) -> str:
    """TensorBoard's name for a behavior's run: a forward slash on every OS."""
    return f"{run_id}/{behavior}"


def value_at(points: Points, step: float) -> float | None:
    """The running mean of the points up to step, or None if the run has not reached it."""
    if not points or points[-1][0] < step:
        return None
    upto = [value for point_step, value in points if point_step <= step]
    return statistics.fmean(upto) if upto else None


def check_threshold(rule: StopRule, points: Points) -> str | None:
    """Why a run breaks a min/max rule (its latest value, once past step), or None."""
    if not points:
        return None
    step, value = points[-1]
    if step < rule.step:
        return None
    if rule.min is not None and value < rule.min:
        return f"{rule.tag} = {value:g} < min {rule.min:g} at step {step:g}"
    if rule.max is not None and value > rule.max:
        return f"{rule.tag} = {value:g} > max {rule.max:g} at step {step:g}"
    return None


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
    median = statistics.median(theirs)
    worse = mine < median if rule.mode == "max" else mine > median
    if not worse:
        return None
    sign = "<" if rule.mode == "max" else ">"
    return f"{rule.tag} mean {mine:g} {sign} median {median:g} of {len(theirs)} runs at step {step:g}"


def check_rule(rule: StopRule, points: Points, others: Sequence[Points]) -> str | None:
    """Why a run breaks a rule of either kind, or None."""
    if rule.rule == "median":
        return check_median(rule, points, others)
    return check_threshold(rule, points)


# ---------------------------------------------------------------------------
# Processes: launch, watch, stop (the only place that touches Popen and signals)
# ---------------------------------------------------------------------------

WINDOWS = os.name == "nt"


@functools.lru_cache(maxsize=1)
def die_with_parent_hook() -> Callable[[], None] | None:
    """Linux: a hook for the child that makes the kernel send it SIGINT if the sweep dies,
    so a run whose sweep was killed saves its model and exits instead of training on.

    libc is looked up here, once, in the parent: between fork and exec the child
    should do as little as possible (an import there cost every launch 10-100 ms).
    """
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    death_signal = int(signal.SIGINT)

    def hook() -> None:  # pragma: no cover - runs in the child
        prctl(1, death_signal)  # 1 = PR_SET_PDEATHSIG

    return hook


class Process:
    """A trainer (or TensorBoard) in its own process group, output to a log file."""

    def __init__(self, command: Sequence[str], log_path: Path) -> None:
        options: dict[str, Any] = {}
        if WINDOWS:
            options["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP  # type: ignore[attr-defined]
        else:
            # Its own session: a Ctrl-C in the sweep's terminal reaches the sweep
            # only, and the sweep decides how each run is stopped.
            options["start_new_session"] = True
            if sys.platform.startswith("linux") and die_with_parent_hook() is not None:
                options["preexec_fn"] = die_with_parent_hook()
        with open(log_path, "ab") as log:
            self.popen = subprocess.Popen(list(command), stdin=subprocess.DEVNULL, stdout=log,
                                          stderr=subprocess.STDOUT, **options)
        self.pid = self.popen.pid

    def poll(self) -> int | None:
        code = self.popen.poll()
        if code is not None and not WINDOWS:
            # A forked worker that outlived its trainer dies with it.
            self._signal_group(signal.SIGKILL)
        return code

    def interrupt(self) -> None:
        """What Ctrl-C in the run's own terminal does: ML-Agents saves its model and exits."""
        if WINDOWS:
            self.popen.send_signal(signal.CTRL_BREAK_EVENT)  # type: ignore[attr-defined]
        else:
            self._signal_group(signal.SIGINT)

    def terminate(self) -> None:
        """For TensorBoard, which has nothing to save."""
        if WINDOWS:
            self.popen.terminate()
        else:
            self._signal_group(signal.SIGTERM)

    def kill(self) -> None:
        if WINDOWS:
            taskkill = Path(os.environ.get("SystemRoot", r"C:\Windows"), "System32", "taskkill.exe")
            subprocess.run([str(taskkill), "/F", "/T", "/PID", str(self.pid)], capture_output=True, check=False)
        else:
            self._signal_group(signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int | None:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def _signal_group(self, sig: signal.Signals) -> None:
        try:
            os.killpg(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


Launcher = Callable[[Sequence[str], Path], Process]


def group_alive(pgid: int) -> bool:
    """True while any process of the group (a run of an earlier sweep) is alive."""
    if WINDOWS:
        return False  # no process groups to ask; Windows runs die with their console
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_group(pgid: int, timeout: float, clock: Callable[[], float], sleep: Callable[[float], None]) -> bool:
    """Stop a left-over run's group as Ctrl-C would, killing it after timeout; True if it had to be killed."""
    for sig in (signal.SIGINT, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            return False
        deadline = clock() + timeout
        while clock() < deadline:
            if not group_alive(pgid):
                return False
            sleep(TICK)
    return True


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


def resolve_command(command: str) -> list[str] | None:
    """A command line as an argument list with its program found on PATH, or None."""
    words = shlex.split(command, posix=not WINDOWS)
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


def write_atomically(path: Path, text: str) -> None:
    """Write a file so that a reader (or a crash) never sees half of it."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


# ---------------------------------------------------------------------------
# The sweep supervisor
# ---------------------------------------------------------------------------

PENDING, RUNNING, FINISHED, STOPPED, FAILED, INTERRUPTED = (
    "pending", "running", "finished", "stopped early", "failed", "interrupted")
DONE = (FINISHED, STOPPED)  # a resumed sweep does not train these again


class Console:
    """The sweep's voice: timestamped lines on stdout, warnings on stderr."""

    def __init__(self, wall: Callable[[], float] = time.time) -> None:
        self.wall = wall

    def say(self, text: str) -> None:
        stamp = time.strftime("%H:%M:%S", time.localtime(self.wall()))
        print(f"[{stamp}] {text}", flush=True)

    def warn(self, text: str) -> None:
        stamp = time.strftime("%H:%M:%S", time.localtime(self.wall()))
        print(f"[{stamp}] warning: {text}", file=sys.stderr, flush=True)

    def block(self, text: str) -> None:
        print(text, flush=True)


@dataclass
class RunState:
    """What became of one run; saved in the sweep's state file at every change."""

    run: Run
    status: str = PENDING
    exit_code: int | None = None
    start: float | None = None
    end: float | None = None
    pid: int | None = None
    ports: tuple[int, int] | None = None  # first and last port
    slot: int | None = None
    stop_reason: str = ""
    stop_asked: float | None = None  # when the run was asked to stop
    killed: bool = False
    resume: bool = False  # continue from its checkpoint (mlagents-learn --resume)
    process: Process | None = None
    metrics: dict[tuple[str, str], float] = field(default_factory=dict)  # (behavior, tag) -> last value
    last_step: float | None = None

    @property
    def duration(self) -> float | None:
        if self.start is None:
            return None
        return (self.end if self.end is not None else time.time()) - self.start

    def to_json(self) -> dict[str, Any]:
        return {"run_id": self.run.run_id, "status": self.status, "exit_code": self.exit_code,
                "start": self.start, "end": self.end, "pid": self.pid,
                "ports": list(self.ports) if self.ports else None, "stop_reason": self.stop_reason,
                "killed": self.killed}


def run_command(settings: Settings, run: Run, config_path: Path, ports: tuple[int, int] | None,
                resume: bool) -> list[str]:
    """The exact mlagents-learn command line of one run."""
    command = [*settings.trainer, str(config_path), f"--run-id={run.run_id}"]
    if ports is not None:
        command.append(f"--base-port={ports[0]}")
    command += settings.forwarded
    if resume:
        command.append("--resume")
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


class Sweep:
    """Trains the runs, at most `concurrency` at once, and stops those that break a rule."""

    def __init__(self, settings: Settings, runs: Sequence[Run], console: Console, *,
                 launch: Launcher = Process, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep,
                 is_port_free: Callable[[int], bool] = port_free,
                 tensorboard: TensorBoard | None = None, made_by: Mapping[str, Any] | None = None) -> None:
        self.settings = settings
        self.states = [RunState(run) for run in runs]
        self.console = console
        self.launch = launch
        self.clock = clock
        self.sleep = sleep
        self.is_port_free = is_port_free
        self.tensorboard = tensorboard
        self.made_by = dict(made_by or {})
        self.interrupted = False
        self.killing = False
        self.changed = False  # the state file is behind
        self.tensorboard_ok: bool | None = None  # None: not asked yet
        self.tensorboard_process: Process | None = None
        self.stride = max((run.instances for run in runs), default=1)
        self.has_rules = any(run.stop_rules for run in runs)

    # -- paths --------------------------------------------------------------

    @property
    def sweep_dir(self) -> Path:
        return self.settings.sweep_dir

    def config_path(self, run: Run) -> Path:
        return self.sweep_dir / "configs" / f"{run.run_id}.yaml"

    def log_path(self, run: Run) -> Path:
        return self.sweep_dir / "logs" / f"{run.run_id}.log"

    # -- the loop -----------------------------------------------------------

    def run(self) -> int:
        """Train every pending run; return the sweep's exit code."""
        self.save_state()
        self.start_tensorboard()
        next_poll = self.clock() + self.settings.poll_interval
        next_status = self.clock() + STATUS_INTERVAL
        try:
            while True:
                self.reap()
                self.enforce_stop_timeouts()
                if self.interrupted:
                    self.stop_all()
                else:
                    self.fill_slots()
                if self.changed:  # once per tick: a burst of starts or ends is one write
                    self.save_state()
                if not self.running() and (self.interrupted or not self.pending()):
                    break
                now = self.clock()
                if self.tensorboard and self.has_rules and now >= next_poll:
                    self.poll()
                    next_poll = self.clock() + self.settings.poll_interval
                if now >= next_status:
                    self.console.say(self.status_line())
                    next_status = now + STATUS_INTERVAL
                self.sleep(TICK)
            self.collect_metrics()
        finally:
            self.stop_tensorboard()
            self.save_state()
        return self.exit_code()

    def running(self) -> list[RunState]:
        return [state for state in self.states if state.status == RUNNING]

    def pending(self) -> list[RunState]:
        return [state for state in self.states if state.status == PENDING]

    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        if any(state.status in (FAILED, INTERRUPTED) for state in self.states):
            return EXIT_FAILED
        return EXIT_OK

    def status_line(self) -> str:
        counts = {status: 0 for status in (RUNNING, FINISHED, STOPPED, FAILED, PENDING)}
        for state in self.states:
            counts[state.status] = counts.get(state.status, 0) + 1
        return "status: " + ", ".join(f"{count} {status}" for status, count in counts.items())

    # -- starting runs --------------------------------------------------------

    def fill_slots(self) -> None:
        busy = {state.slot for state in self.running()}
        for slot in range(self.settings.concurrency):
            if slot in busy:
                continue
            pending = self.pending()
            if not pending:
                return
            self.start(pending[0], slot)

    def pick_ports(self, slot: int, run: Run) -> tuple[int, int] | None:
        """The slot's own port range: base + slot * stride, moved up past ports other programs hold.

        Lanes of different slots never overlap, so concurrent runs never share a port.
        """
        lane = slot
        while True:
            first = self.settings.base_port + lane * self.stride
            last = first + run.instances - 1
            if last > 65535:
                return None
            taken = [port for port in range(first, last + 1) if not self.is_port_free(port)]
            if not taken:
                return first, last
            self.console.say(f"port {taken[0]} is in use by another program; {run.run_id} skips it")
            lane += self.settings.concurrency

    def start(self, state: RunState, slot: int) -> None:
        run = state.run
        ports = None
        if self.settings.env_path is not None:
            ports = self.pick_ports(slot, run)
            if ports is None:
                self.finish(state, None, FAILED, "no free port range below 65536")
                return
        command = run_command(self.settings, run, self.config_path(run), ports, state.resume)
        try:
            state.process = self.launch(command, self.log_path(run))
        except OSError as exc:  # e.g. the trainer vanished from PATH mid-sweep
            state.start = self.clock()
            self.finish(state, None, FAILED, f"could not start {command[0]}: {exc.strerror or exc}")
            return
        state.status, state.slot, state.ports = RUNNING, slot, ports
        state.pid, state.start, state.end = state.process.pid, self.clock(), None
        state.exit_code, state.stop_reason, state.stop_asked, state.killed = None, "", None, False
        port_text = "" if ports is None else f", port {ports[0]}" if ports[0] == ports[1] else f", ports {ports[0]}-{ports[1]}"
        verb = "resume" if state.resume else "start"
        self.console.say(f"{verb} {run.run_id}: {run.describe()}{port_text}")
        self.changed = True

    # -- watching and stopping runs ------------------------------------------

    def reap(self) -> None:
        for state in self.running():
            code = state.process.poll() if state.process is not None else None
            if code is None:
                continue
            if state.stop_reason:
                status = STOPPED if code == 0 and not state.killed else FAILED
            elif state.stop_asked is not None:
                status = INTERRUPTED
            else:
                status = FINISHED if code == 0 else FAILED
            self.finish(state, code, status)

    def finish(self, state: RunState, code: int | None, status: str, why: str = "") -> None:
        state.status, state.exit_code, state.end, state.process = status, code, self.clock(), None
        run, took = state.run, format_duration(state.duration)
        if status == FINISHED:
            self.console.say(f"finished {run.run_id}: exit 0 after {took}")
        elif status == STOPPED:
            self.console.say(f"stopped {run.run_id} early after {took}: {state.stop_reason}")
        elif status == INTERRUPTED:
            killed = ", killed after --stop-timeout" if state.killed else ""
            self.console.say(f"interrupted {run.run_id}: exit {code} after {took}{killed}")
        else:
            detail = why or f"exit {code}"
            if state.killed:
                detail += f", killed: it did not stop within --stop-timeout {self.settings.stop_timeout:g}s"
            elif state.stop_reason:
                detail += f" while stopping ({state.stop_reason})"
            self.console.say(f"FAILED {run.run_id}: {detail} after {took}; log: {self.log_path(run)}")
        self.changed = True

    def stop(self, state: RunState, reason: str = "") -> None:
        """Ask a run to stop as Ctrl-C would: it saves its model; killed after --stop-timeout."""
        if state.stop_asked is not None or state.process is None:
            return
        state.stop_reason, state.stop_asked = reason, self.clock()
        if reason:
            self.console.say(f"stopping {state.run.run_id}: {reason}")
        state.process.interrupt()
        self.changed = True

    def stop_all(self) -> None:
        for state in self.running():
            self.stop(state)

    def enforce_stop_timeouts(self) -> None:
        now = self.clock()
        for state in self.running():
            if state.stop_asked is not None and not state.killed and now - state.stop_asked >= self.settings.stop_timeout:
                self.kill(state)

    def kill(self, state: RunState) -> None:
        if state.process is not None and not state.killed:
            state.killed = True
            self.console.say(f"killing {state.run.run_id}: it did not stop within {self.settings.stop_timeout:g}s")
            state.process.kill()

    def interrupt(self) -> None:
        """Ctrl-C on the sweep: the first stops every run gracefully, the second kills them."""
        if not self.interrupted:
            self.interrupted = True
            self.console.say("interrupted: stopping every run so it saves its model (Ctrl-C again kills them)")
            return
        if not self.killing:
            self.killing = True
            self.console.say("interrupted again: killing every run")
            for state in self.running():
                state.stop_asked = state.stop_asked or self.clock()
                self.kill(state)

    # -- TensorBoard ----------------------------------------------------------

    def start_tensorboard(self) -> None:
        """Use the TensorBoard at the URL; if none answers there and the URL is local, start one."""
        board = self.tensorboard
        if board is None:
            return
        if board.alive():
            self.tensorboard_ok = True
            self.console.say(f"TensorBoard: {board.url}")
            return
        parts = urllib.parse.urlsplit(board.url)
        executable = find_tensorboard(self.settings.trainer)
        if parts.hostname not in ("localhost", "127.0.0.1", "::1") or executable is None:
            self.tensorboard_down("nothing answers there" + ("" if executable else " and no tensorboard was found to start"))
            return
        command = [executable, "--logdir", str(self.settings.results_dir), "--host", parts.hostname,
                   "--port", str(parts.port or 80)]
        self.tensorboard_process = self.launch(command, self.sweep_dir / "logs" / "tensorboard.log")
        deadline = self.clock() + TENSORBOARD_START_TIMEOUT
        while self.clock() < deadline and not self.interrupted:
            if self.tensorboard_process.poll() is not None:
                break
            if board.alive():
                self.tensorboard_ok = True
                self.console.say(f"TensorBoard started: {board.url}")
                return
            self.sleep(0.5)
        self.tensorboard_down(f"the TensorBoard started there did not answer (log: {self.sweep_dir / 'logs' / 'tensorboard.log'})")

    def stop_tensorboard(self) -> None:
        process = self.tensorboard_process
        if process is not None:
            process.terminate()
            if process.wait(10) is None:
                process.kill()
                process.wait()

    def tensorboard_down(self, why: str) -> None:
        if self.tensorboard_ok is not False and self.tensorboard is not None:
            self.console.warn(f"TensorBoard at {self.tensorboard.url} does not answer ({why}); "
                              "training goes on, stop conditions are checked again at each poll")
        self.tensorboard_ok = False

    def tensorboard_up(self) -> None:
        if self.tensorboard_ok is False:
            self.console.say("TensorBoard answers again: stop conditions are checked")
        self.tensorboard_ok = True

    # -- stop conditions and metrics ------------------------------------------

    def fetch(self, wanted: Mapping[str, set[str]]) -> dict[str, dict[str, Points]] | None:
        """One request per tag for all the runs that need it; None if TensorBoard is down."""
        if self.tensorboard is None:
            return None
        data = {}
        try:
            for tag, names in wanted.items():
                data[tag] = self.tensorboard.scalars(tag, sorted(names))
        except TensorBoardDown as exc:
            self.tensorboard_down(str(exc))
            return None
        self.tensorboard_up()
        return data

    def poll(self) -> None:
        """Check every live run's stop conditions once, and stop those that break one."""
        live = [state for state in self.running() if state.stop_asked is None and state.run.stop_rules]
        if not live:
            return
        started = [state for state in self.states if state.start is not None]
        wanted: dict[str, set[str]] = {}
        for state in live:
            for rule in state.run.stop_rules:
                names = wanted.setdefault(rule.tag, set())
                peers = started if rule.rule == "median" else [state]
                names.update(tensorboard_run(peer.run.run_id, rule.behavior) for peer in peers)
        data = self.fetch(wanted)
        if data is None:
            return
        for state in live:
            for rule in state.run.stop_rules:
                points = data[rule.tag]
                mine = points.get(tensorboard_run(state.run.run_id, rule.behavior), [])
                others = [points.get(tensorboard_run(peer.run.run_id, rule.behavior), [])
                          for peer in started if peer is not state] if rule.rule == "median" else []
                reason = check_rule(rule, mine, others)
                if reason and not state.run.in_last_stretch(rule.behavior, mine[-1][0]):
                    self.stop(state, f"opt_stop of {rule.behavior}: {reason}")
                    break

    def summary_tags(self) -> list[str]:
        tags = [self.settings.metric]
        for state in self.states:
            tags += [rule.tag for rule in state.run.stop_rules if rule.tag not in tags]
        return tags

    def collect_metrics(self) -> None:
        """Read each started run's last step and last values for the summary."""
        started = [state for state in self.states if state.start is not None]
        if self.tensorboard is None or not started:
            return
        if self.tensorboard_ok is False and not self.tensorboard.alive():
            return
        last_end = max(state.end or 0.0 for state in started)
        if not self.interrupted and self.clock() < last_end + TENSORBOARD_SETTLE:
            self.sleep(last_end + TENSORBOARD_SETTLE - self.clock())
        wanted = {tag: {tensorboard_run(state.run.run_id, behavior) for state in started
                        for behavior in state.run.behaviors} for tag in self.summary_tags()}
        data = self.fetch(wanted)
        if data is None:
            return
        for state in started:
            for tag, by_run in data.items():
                for behavior in state.run.behaviors:
                    points = by_run.get(tensorboard_run(state.run.run_id, behavior))
                    if points:
                        state.metrics[(behavior, tag)] = points[-1][1]
                        if tag == self.settings.metric:
                            state.last_step = max(state.last_step or 0, points[-1][0])

    # -- state file -----------------------------------------------------------

    def save_state(self) -> None:
        self.changed = False
        state = {"version": STATE_VERSION, "made_by": self.made_by,
                 "runs": [run_state.to_json() for run_state in self.states]}
        # Compact: it is rewritten at every start and end, and a big grid makes it long.
        write_atomically(state_path(self.settings), json.dumps(state, separators=(",", ":")) + "\n")

    def restore(self, previous: Mapping[str, Any]) -> None:
        """Take up a sweep where it stopped: done runs stay done, the others continue."""
        saved = {entry["run_id"]: entry for entry in previous.get("runs", [])}
        self.reclaim(saved.values())
        for state in self.states:
            entry = saved.get(state.run.run_id, {})
            if entry.get("status") in DONE:
                state.status, state.exit_code = entry["status"], entry.get("exit_code")
                state.start, state.end = entry.get("start"), entry.get("end")
                state.stop_reason, state.killed = entry.get("stop_reason", ""), bool(entry.get("killed"))
        self.continue_from_checkpoints()

    def reclaim(self, entries: Iterator[Mapping[str, Any]] | Any) -> None:
        """Stop what is left of runs the earlier sweep was training, so no run ever trains twice at once."""
        for entry in entries:
            pid = entry.get("pid")
            if entry.get("status") != RUNNING or not isinstance(pid, int) or not group_alive(pid):
                continue
            self.console.say(f"{entry['run_id']} of the earlier sweep left processes behind (group {pid}): stopping them")
            if stop_group(pid, self.settings.stop_timeout, self.clock, self.sleep):
                self.console.warn(f"{entry['run_id']}'s earlier processes (group {pid}) did not stop within "
                                  f"--stop-timeout {self.settings.stop_timeout:g}s even when killed")

    def continue_from_checkpoints(self) -> None:
        """Runs that left results (interrupted, failed, or running when the sweep died) resume."""
        for state in self.pending():
            state.resume = (self.settings.results_dir / state.run.run_id).exists()


# ---------------------------------------------------------------------------
# The summary: which settings won
# ---------------------------------------------------------------------------


def status_text(state: RunState) -> str:
    """A run's status as the summary shows it."""
    return "not started" if state.status == PENDING else state.status


def ranking_value(state: RunState, metric: str) -> float | None:
    """The value runs are ranked by: the metric's last value, averaged over behaviors."""
    values = [state.metrics[(behavior, metric)] for behavior in state.run.behaviors if (behavior, metric) in state.metrics]
    return statistics.fmean(values) if values else None


def summary_rows(sweep: Sweep) -> tuple[list[str], list[list[str]], list[RunState]]:
    """The summary table, best run first: header, rows, and the states in that order."""
    behaviors = sweep.states[0].run.behaviors if sweep.states else []
    columns = [(behavior, tag) for tag in sweep.summary_tags() for behavior in behaviors]
    header = ["run", "values", "status", "exit", "duration", "last step"]
    header += [tag if len(behaviors) == 1 else f"{behavior}: {tag}" for behavior, tag in columns]
    header.append("note")
    metric = sweep.settings.metric

    def order(indexed: tuple[int, RunState]) -> tuple[bool, float, int]:
        index, state = indexed
        value = ranking_value(state, metric)
        return (value is None, -(value or 0.0), index)

    ranked = [state for _, state in sorted(enumerate(sweep.states), key=order)]
    rows = []
    for state in ranked:
        note = state.stop_reason or (str(sweep.log_path(state.run)) if state.status == FAILED else "")
        if state.killed:
            note = (note + "; " if note else "") + "killed after --stop-timeout"
        row = [state.run.run_id, state.run.describe(), status_text(state),
               "" if state.exit_code is None else str(state.exit_code), format_duration(state.duration),
               "" if state.last_step is None else f"{state.last_step:g}"]
        row += [f"{state.metrics[key]:g}" if key in state.metrics else "" for key in columns]
        row.append(note)
        rows.append(row)
    return header, rows, ranked


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


def write_summary(sweep: Sweep) -> None:
    """Print the table of all runs, best first, and save it as summary.csv and summary.md."""
    header, rows, ranked = summary_rows(sweep)
    best = next((state for state in ranked if ranking_value(state, sweep.settings.metric) is not None), None)
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([header, *rows])
    write_atomically(sweep.sweep_dir / "summary.csv", buffer.getvalue())
    best_line = (f"Best run: {best.run.run_id} ({best.run.describe()}), "
                 f"{sweep.settings.metric} = {ranking_value(best, sweep.settings.metric):g}; "
                 f"its config: {sweep.config_path(best.run)}") if best else ""
    markdown = f"# Sweep {sweep.settings.run_id}\n\n{markdown_table(header, rows)}\n"
    if best_line:
        markdown += f"\n{best_line}\n"
    write_atomically(sweep.sweep_dir / "summary.md", markdown)
    sweep.console.block("\n" + text_table(header, rows) + "\n")
    if best_line:
        sweep.console.block(best_line)
    sweep.console.block(f"Summary: {sweep.sweep_dir / 'summary.md'} and summary.csv")


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad command line is a SweepError like any other bad input."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        raise SweepError(message, "command line", "see python mlagents-learn.py --help")


def build_parser() -> ArgumentParser:
    """The command line: the sweep's own flags, and mlagents-learn's (hidden from --help) to forward."""
    parser = ArgumentParser(
        prog="python mlagents-learn.py", allow_abbrev=False,
        usage="python mlagents-learn.py config.yaml [--env=BUILD] [--num-envs=N] [sweep flags] [mlagents-learn flags]",
        description="Hyperparameter sweeps for Unity ML-Agents: every combination of the config's "
                    "opt_values becomes a training run of mlagents-learn.",
        epilog="All other flags go to each run's mlagents-learn unchanged (see mlagents-learn --help). "
               "--results-dir, --force and --resume keep their mlagents-learn meaning; --resume also "
               "continues an interrupted sweep where it stopped.")
    parser.add_argument("config", nargs="?", metavar="config.yaml", help="ML-Agents trainer config with opt_values")
    ours = parser.add_argument_group("sweep flags")
    ours.add_argument("--num-envs", type=int, metavar="N", help="how many runs train at once (default 1)")
    ours.add_argument("--run-id", metavar="ID", help="base run id: runs are ID-0, ID-1, ... (default ppo)")
    ours.add_argument("--base-port", type=int, metavar="PORT",
                      help=f"first port; concurrent runs get disjoint port ranges from here (default {DEFAULT_BASE_PORT})")
    ours.add_argument("--dry-run", "--generate-only", action="store_true", dest="dry_run",
                      help="write the configs and config_info.txt, print the plan, start nothing")
    ours.add_argument("--num-repetitions", type=int, default=1, metavar="N",
                      help="train every combination N times, in laps (default 1)")
    ours.add_argument("--trainer", default="mlagents-learn", metavar="CMD",
                      help="the trainer to launch (default: mlagents-learn from PATH)")
    ours.add_argument("--stop-timeout", type=float, default=DEFAULT_STOP_TIMEOUT, metavar="SECONDS",
                      help="how long a stopped run may take to save its model before it is killed (default 60)")
    ours.add_argument("--poll-interval", type=float, default=DEFAULT_POLL_INTERVAL, metavar="SECONDS",
                      help="how often stop conditions are checked in TensorBoard (default 60)")
    ours.add_argument("--tensorboard-url", default=DEFAULT_TENSORBOARD_URL, metavar="URL",
                      help=f"TensorBoard to read metrics from; one is started there if none answers (default {DEFAULT_TENSORBOARD_URL})")
    ours.add_argument("--no-tensorboard", action="store_true",
                      help="neither read nor start TensorBoard: no stop conditions, no metrics in the summary")
    ours.add_argument("--metric", default=DEFAULT_METRIC, metavar="TAG",
                      help=f"TensorBoard tag that ranks the runs in the summary (default {DEFAULT_METRIC})")
    ours.add_argument("--max-runs", type=int, default=DEFAULT_MAX_RUNS, metavar="N",
                      help=f"refuse a grid of more runs than this (default {DEFAULT_MAX_RUNS})")
    for flag, takes_value in MLAGENTS_FLAGS.items():
        if flag in SWEEP_OWNED_FLAGS:
            continue
        if takes_value:
            parser.add_argument(flag, help=argparse.SUPPRESS)
        else:
            parser.add_argument(flag, action="store_true", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--env-args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def check_run_id(run_id: str, where: str) -> None:
    """Refuse a run id that could put files outside the results folder."""
    if not run_id or run_id in (".", "..") or ".." in run_id or any(char in RUN_ID_FORBIDDEN for char in run_id) \
            or any(ord(char) < 32 for char in run_id):
        raise SweepError(f"run id {run_id!r} is not a plain name", where,
                         "use letters, digits, '-', '_' or '.', without '..' or path separators")


def forwarded_flags(argv: Sequence[str]) -> list[str]:
    """The user's own mlagents-learn flags, as typed and in order, less those the sweep owns."""
    forwarded, words = [], list(argv)
    ours_with_value = {option for action in build_parser()._actions if action.nargs is None and action.option_strings
                       for option in action.option_strings} - set(MLAGENTS_FLAGS)
    index = 0
    while index < len(words) and words[index] != "--env-args":
        word = words[index]
        name, has_value, _ = word.partition("=")
        takes_value = MLAGENTS_FLAGS.get(name, name in ours_with_value) and not has_value
        # --resume is decided per run: only runs that left a checkpoint continue from it.
        if name in MLAGENTS_FLAGS and name not in SWEEP_OWNED_FLAGS and name != "--resume":
            forwarded += words[index:index + 1 + takes_value]
        index += 1 + takes_value
    return forwarded


def parse_args(argv: Sequence[str]) -> tuple[Settings, dict[str, Any], str]:
    """Check the command line and the config; return the settings, the config and its text."""
    args = build_parser().parse_args(list(argv))
    if args.config is None:
        raise SweepError("no config file given", "command line", "usage: python mlagents-learn.py config.yaml [flags]")
    for flag, value, least in (("--num-envs", args.num_envs, 1), ("--num-repetitions", args.num_repetitions, 1),
                               ("--max-runs", args.max_runs, 1), ("--base-port", args.base_port, 1)):
        if value is not None and value < least:
            raise SweepError(f"{flag} must be at least {least}, not {value}", "command line", f"pass {flag} {least} or more")
    if args.base_port is not None and args.base_port > 65535:
        raise SweepError(f"--base-port {args.base_port} is not a port", "command line", "pick a port below 65536")
    for flag, value in (("--stop-timeout", args.stop_timeout), ("--poll-interval", args.poll_interval)):
        if not math.isfinite(value) or value < 0 or (flag == "--poll-interval" and value == 0):
            raise SweepError(f"{flag} must be a positive number of seconds, not {value:g}", "command line", f"e.g. {flag} 60")
    url = args.tensorboard_url
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SweepError(f"--tensorboard-url {url!r} is not an http URL", "command line", "e.g. --tensorboard-url http://localhost:6006")

    config_path = Path(args.config)
    text = read_config_text(config_path)
    config = parse_config(text, str(config_path))
    checkpoint = config.get("checkpoint_settings") if isinstance(config.get("checkpoint_settings"), dict) else {}
    env_settings = config.get("env_settings") if isinstance(config.get("env_settings"), dict) else {}

    run_id = args.run_id if args.run_id is not None else str(checkpoint.get("run_id") or DEFAULT_RUN_ID)
    check_run_id(run_id, "--run-id" if args.run_id is not None else f"{config_path}: checkpoint_settings.run_id")
    env_path = args.env if args.env is not None else env_settings.get("env_path")
    concurrency = args.num_envs if args.num_envs is not None else 1
    if env_path is None and concurrency > 1:
        raise SweepError(f"--num-envs {concurrency} without --env: the Unity Editor trains one run at a time on its fixed port",
                         "command line", "pass --env=<your build> to train runs at once, or --num-envs 1")
    base_port = args.base_port if args.base_port is not None else int(env_settings.get("base_port") or DEFAULT_BASE_PORT)
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
        env_path=env_path, forwarded=forwarded_flags(argv), env_args=args.env_args, trainer=trainer, dry_run=args.dry_run,
        repetitions=args.num_repetitions, stop_timeout=args.stop_timeout, poll_interval=args.poll_interval,
        tensorboard_url=None if args.no_tensorboard else url, metric=args.metric,
        force=bool(args.force or checkpoint.get("force")), resume=bool(args.resume or checkpoint.get("resume")),
        max_runs=args.max_runs)
    return settings, config, text


def read_config_text(path: Path) -> str:
    """The config file's text, or a SweepError that says why it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SweepError("config file not found", str(path), "check the path of the config") from None
    except IsADirectoryError:
        raise SweepError("the config path is a folder", str(path), "pass the config file itself") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SweepError(f"cannot read the config ({exc.__class__.__name__})", str(path), "check the file and its permissions") from None


def check_results(settings: Settings, runs: Sequence[Run]) -> None:
    """Refuse to overwrite earlier runs' results unless --force or --resume says so."""
    if settings.force or settings.resume:
        return
    clashing = [run.run_id for run in runs if (settings.results_dir / run.run_id).exists()]
    if clashing:
        shown = ", ".join(clashing[:5]) + (f" and {len(clashing) - 5} more" if len(clashing) > 5 else "")
        raise SweepError(f"results of {shown} already exist", str(settings.results_dir),
                         "pass --resume to continue them, --force to overwrite them, or choose another --run-id")


def state_path(settings: Settings) -> Path:
    """Where the sweep's state file lives."""
    return settings.sweep_dir / STATE_FILE


def load_previous_sweep(settings: Settings, now: Mapping[str, Any]) -> dict[str, Any] | None:
    """The state of the sweep --resume continues, checked to be the same sweep; None if there is none."""
    path = state_path(settings)
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise SweepError(f"the sweep's state file cannot be read ({exc.__class__.__name__})", str(path),
                         "start the sweep anew with --force, or choose another --run-id") from None
    if not isinstance(previous, dict) or previous.get("version") != STATE_VERSION or not isinstance(previous.get("made_by"), dict):
        raise SweepError("the sweep's state file is not one this version wrote", str(path),
                         "start the sweep anew with --force, or choose another --run-id")
    change = sweep_changes(previous["made_by"], now)
    if change:
        raise SweepError(f"--resume asks for a different sweep than the one in {settings.sweep_dir}: {change}",
                         str(settings.config_path),
                         "resume with the original config and flags, or start a new sweep with another --run-id")
    return previous


def write_sweep_folder(settings: Settings, runs: Sequence[Run]) -> None:
    """The sweep folder: every run's config and config_info.txt; logs/ for the runs' output."""
    try:
        (settings.sweep_dir / "configs").mkdir(parents=True, exist_ok=True)
        (settings.sweep_dir / "logs").mkdir(exist_ok=True)
        for run in runs:
            # Plain writes: no run has started yet, and a temp file and a rename each would double the file work.
            (settings.sweep_dir / "configs" / f"{run.run_id}.yaml").write_text(dump_config(run.config), encoding="utf-8")
        write_atomically(settings.sweep_dir / "config_info.txt", render_config_info(runs, settings.repetitions))
    except OSError as exc:
        raise SweepError(f"cannot write the sweep folder ({exc.strerror or exc})", str(settings.sweep_dir),
                         "check that the results folder is writable, or pass --results-dir") from None


def print_plan(settings: Settings, runs: Sequence[Run], console: Console) -> None:
    """--dry-run: every run's values and exact command line."""
    combos = len(runs) // settings.repetitions
    laps = f" ({combos} combinations x {settings.repetitions} repetitions)" if settings.repetitions > 1 else ""
    console.block(f"{len(runs)} runs{laps}, at most {settings.concurrency} at once; "
                  f"configs and config_info.txt in {settings.sweep_dir}")
    stride = max(run.instances for run in runs)
    for run in runs:
        slot = run.index % settings.concurrency
        ports = None if settings.env_path is None else (settings.base_port + slot * stride,) * 2
        command = run_command(settings, run, settings.sweep_dir / "configs" / f"{run.run_id}.yaml", ports, False)
        console.block(f"{run.run_id}: {run.describe()}\n  {shlex.join(command)}")
    if settings.env_path is not None and settings.concurrency > 1:
        console.block("(each run's --base-port is picked when it starts: its slot's range, past ports in use)")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sweep the command line describes; return the exit code."""
    try:
        return run_sweep(sys.argv[1:] if argv is None else argv)
    except KeyboardInterrupt:  # before the sweep's own handlers are in place, or after
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def run_sweep(argv: Sequence[str]) -> int:
    """Check everything, write the sweep folder, then train the runs (or print the plan)."""
    console = Console()
    try:
        settings, config, text = parse_args(argv)
        runs = expand(config, settings.run_id, settings.repetitions, settings.max_runs, str(settings.config_path))
        origin = made_by(text, settings, runs)
        previous = None
        if not settings.dry_run:
            check_results(settings, runs)
            previous = load_previous_sweep(settings, origin) if settings.resume else None
        write_sweep_folder(settings, runs)
    except SweepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if settings.dry_run:
        print_plan(settings, runs, console)
        return EXIT_OK
    tensorboard = TensorBoard(settings.tensorboard_url) if settings.tensorboard_url else None
    sweep = Sweep(settings, runs, console, tensorboard=tensorboard, made_by=origin)
    handlers = install_interrupt_handlers(sweep)
    try:
        if previous is not None:
            sweep.restore(previous)
            done = len(runs) - len(sweep.pending())
            console.say(f"resuming sweep {settings.run_id}: {done} runs done, "
                        f"{sum(state.resume for state in sweep.states)} continue from their checkpoints")
        elif settings.resume:
            sweep.continue_from_checkpoints()
        console.say(f"sweep {settings.run_id}: {len(runs)} runs, at most {settings.concurrency} at once; "
                    f"folder {settings.sweep_dir}")
        with Waker() as waker:
            sweep.sleep = waker.sleep
            code = sweep.run()
    finally:
        restore_handlers(handlers)
    write_summary(sweep)
    return code


def install_interrupt_handlers(sweep: Sweep) -> dict[int, Any]:
    """Ctrl-C (and a polite SIGTERM) stop the sweep gracefully; a second Ctrl-C kills."""
    previous = {}
    names = ["SIGINT", "SIGTERM", "SIGBREAK", "SIGHUP"]
    for name in names:
        sig = getattr(signal, name, None)
        if sig is not None:
            previous[sig] = signal.signal(sig, lambda signum, frame: sweep.interrupt())
    return previous


def restore_handlers(previous: Mapping[int, Any]) -> None:
    """Put back the signal handlers the sweep replaced."""
    for sig, handler in previous.items():
        signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
