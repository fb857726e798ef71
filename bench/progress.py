#!/usr/bin/env python3
"""Progress and pause latency of real sweeps on the bundled environment, at the default --poll-interval.

    python bench/progress.py [--halving-repeats 3] [--quick]

Real PPO (mlagents-learn 1.1.0, .venv) on examples/MoveToTarget, --num-envs 2, the sweep's own
TensorBoard (nothing at the URL), every setting at its default. mlagents-learn.py is loaded as a
module and its main() run in this process, so that two of its constants can be set for measuring
(nothing else is changed):

1. Time left. The demo's sweep (4 runs of 20,000 steps, two at a time) without its opt_stop, so
   that every run trains to the end (the time left says "if none is stopped early"). The status
   line is printed every 5 s instead of every minute (FIRST_STATUS, STATUS_INTERVAL), each line
   stamped here as it arrives. For every status line with a time left whose every running run had
   shown two points of its session (each row gives its own time left), the error is |(line time + time left) - the
   sweep's last run end| / (the last run end - line time). Goal: at most 0.25 (the median and
   the largest are reported).
2. Halving's overshoot: the demo grid with `rule: halving, step: 4000, factor: 2` instead of its
   threshold rule. A paused run's overshoot is the step ML-Agents saved at its pause (its session's
   `saved`) minus its rung. Measured with the TensorBoard the sweep starts reloading every 1 s
   (OWN_TENSORBOARD_RELOAD, the default) and every 5 s (TensorBoard's own default, what the sweep
   started before), interleaved.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, emit, figure, load_script  # noqa: E402

EXAMPLE = ROOT / "examples" / "MoveToTarget" / "sweep.yaml"
ENV = ROOT / ".venv" / "bin" / "MoveToTarget"
TRAINER = ROOT / ".venv" / "bin" / "mlagents-learn"
STOP_RULE = """    opt_stop:
      tag: Environment/Cumulative Reward
      step: 8000
      min: -0.3
"""
HALVING_RULE = """    opt_stop:
      tag: Environment/Cumulative Reward
      rule: halving
      step: 4000
      factor: 2
"""


class Stamped(io.TextIOBase):
    """stdout that keeps each line with the monotonic time it was written, and still shows it."""

    def __init__(self, out) -> None:
        self.out, self.lines, self.walls, self.partial = out, [], {}, ""
        self.lock = threading.Lock()

    def write(self, text: str) -> int:
        with self.lock:
            self.out.write(text)
            self.partial += text
            *done, self.partial = self.partial.split("\n")
            now, wall = time.monotonic(), time.time()
            self.lines += [(now, line) for line in done]
            self.walls.update((line, wall) for line in done)
        return len(text)

    def flush(self) -> None:
        self.out.flush()


def sweep(ml, folder: Path, name: str, config: str) -> tuple[Stamped, dict]:
    path = folder / f"{name}.yaml"
    path.write_text(config)
    port = 16100 + sum(map(ord, name)) % 800  # below the ephemeral range
    argv = [str(path), f"--env={ENV}", "--num-envs", "2", "--run-id", name, "--trainer", str(TRAINER),
            "--results-dir", str(folder / "results"), "--tensorboard-url", f"http://127.0.0.1:{port}", "--no-graphics"]
    stamped, real = Stamped(sys.stdout), sys.stdout
    sys.stdout = stamped
    try:
        code = ml.main(argv)
    finally:
        sys.stdout = real
    if code != 0:
        raise SystemExit(f"progress: the sweep {name} ended with exit {code}")
    state = json.loads((folder / "results" / f"{name}-sweep" / "sweep_state.json").read_text())
    return stamped, state


def seconds(text: str) -> float:
    """A duration as the sweep prints it: 1h02m, 3m05s, 42s."""
    parts = dict((unit, float(value)) for value, unit in re.findall(r"(\d+)([hms])", text))
    return parts.get("h", 0) * 3600 + parts.get("m", 0) * 60 + parts.get("s", 0)


def time_left_errors(lines: list[tuple[float, str]]) -> list[float]:
    """One per status line whose every running run has a pace (has shown two points of its session)."""
    ends = [at for at, line in lines if re.search(r"\] (finished|stopped|failed|interrupted) ", line)]
    end = max(ends)
    errors = []
    for n, (at, line) in enumerate(lines):
        found = re.search(r"status: .*; about (\S+) left", line)
        rows = list(itertools.takewhile(lambda row: row.startswith("  "), (row for _, row in lines[n + 1:])))
        if found and rows and all(row.endswith(" left") for row in rows) and at < end:
            errors.append(abs(at + seconds(found.group(1)) - end) / (end - at))
    return errors


def overshoots(state: dict, stamped: Stamped, results: Path) -> list[tuple[float, float]]:
    """Per pause: the steps saved past the rung, and the seconds from the trainer writing its point at the
    rung (its event's wall time) to the sweep asking the pause (its "pausing" line)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    found = []
    for run in state["runs"]:
        for session in run["sessions"]:
            rung = re.search(r"halving: at rung \d+, step (\d+)", session.get("reason") or "")
            if session.get("asked") != "pause" or not rung or session.get("saved") is None:
                continue
            step = float(rung.group(1))
            events = EventAccumulator(str(results / run["run_id"] / "MoveToTarget"))
            events.Reload()
            written = [event.wall_time for event in events.Scalars("Environment/Cumulative Reward") if event.step == step]
            # This pause's own line: a run paused at two rungs has two.
            asked = [wall for line, wall in stamped.walls.items() if f"pausing {run['run_id']}: {session['reason']}" in line]
            delay = asked[0] - written[0] if written and asked else float("nan")
            found.append((session["saved"] - step, delay))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--halving-repeats", type=int, default=3, help="halving sweeps per reload interval (default 3)")
    parser.add_argument("--quick", action="store_true", help="one halving sweep per reload interval")
    args = parser.parse_args()
    if args.quick:
        args.halving_repeats = 1
    for needed in (ENV, TRAINER):
        if not needed.exists():
            raise SystemExit(f"progress: no {needed}: install ML-Agents first (make install)")
    ml = load_script()
    base = EXAMPLE.read_text()
    if STOP_RULE not in base:
        raise SystemExit(f"progress: {EXAMPLE} no longer has the stop rule this benchmark replaces")
    figures = []
    with tempfile.TemporaryDirectory(prefix="bench-progress-") as tmp:
        folder = Path(tmp)
        ml.FIRST_STATUS = ml.STATUS_INTERVAL = 5.0
        stamped, _ = sweep(ml, folder, "left", base.replace(STOP_RULE, ""))
        errors = time_left_errors(stamped.lines)
        figures.append(figure("time_left_error_median", statistics.median(errors) if errors else None, "ratio", "<= 0.25",
                              f"|predicted end - end| / time still to go, {len(errors)} status lines once every "
                              "running run had shown two points"))
        figures.append(figure("time_left_error_max", max(errors) if errors else None, "ratio", None, "the largest of them"))
        ml.FIRST_STATUS, ml.STATUS_INTERVAL = 30.0, 60.0
        found: dict[float, list[tuple[float, float]]] = {1.0: [], 5.0: []}
        for repeat in range(args.halving_repeats):
            for reload in (1.0, 5.0):
                ml.OWN_TENSORBOARD_RELOAD = reload
                name = f"halving{int(reload)}r{repeat}"
                stamped, state = sweep(ml, folder, name, base.replace(STOP_RULE, HALVING_RULE))
                found[reload] += overshoots(state, stamped, folder / "results")
        for reload, pauses in found.items():
            steps = [steps for steps, _ in pauses]
            delays = [delay for _, delay in pauses if delay == delay]
            figures.append(figure(f"halving_overshoot_steps_reload_{int(reload)}s",
                                  statistics.median(steps) if steps else None, "steps", None,
                                  f"median of {len(steps)} pauses: steps saved past the rung "
                                  f"(range {min(steps, default=0):g}-{max(steps, default=0):g})"))
            figures.append(figure(f"halving_ask_delay_s_reload_{int(reload)}s",
                                  statistics.median(delays) if delays else None, "s", None,
                                  "median: the rung's point written -> the pause asked (TensorBoard's reload, the poll)"))
    emit("progress", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
