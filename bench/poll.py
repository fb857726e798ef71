#!/usr/bin/env python3
"""Stop-condition benchmark: how soon a run that breaks opt_stop is stopped, and what one poll costs.

    python bench/poll.py [--repeats 5] [--runs 64] [--points 100] [--polls 20] [--quick]

Both parts use a real TensorBoard (tests/helpers.TensorBoardServer, --reload_interval 1).

1. Stop latency at --poll-interval 2.  One real sweep (subprocess, --num-envs 1) of
   --repeats stand-in runs with `opt_stop: {tag: Score, min: 0}`; run i writes
   Score = 1 for its first N_i points, then -1 (a list value spec; N_i differ so
   the crossings fall at different phases of the sweep's poll cycle).
   - crossing time: the wall_time of the run's first event with Score < 0, read
     from its event file: the stand-in stamps each event with time.time() just
     before it writes and flushes it, so this is when the value was written;
   - stop time: when the sweep's line "stopping <run>: ..." reached us.  The sweep
     prints (and flushes) it right before it sends SIGINT to the run, and a
     reader thread stamps each line as it arrives, so it marks the SIGINT within
     milliseconds.  The sweep's own [HH:MM:SS] stamps are too coarse (1 s), and
     the stand-in's record holds which signals came but not when; its `end`
     (written after it saw SIGINT, within its 20 ms tick, and saved its model) is
     reported too, as an upper bound that checks the line time.
   Expected: up to TensorBoard's reload (1 s + its pass) + one poll period (2 s +
   the poll + the sweep's 0.2 s tick).
2. Poll cost for --runs live runs.  Event files for --runs runs (<results>/<run>/B/,
   --points points of 2 tags) are written with tensorboard's EventFileWriter, as the
   stand-in does; once TensorBoard serves them all, mlagents-learn.py is loaded as a
   module and we time, over --polls polls (median):
   - fetch: TensorBoardClient(url).scalars(tag, runs) for both tags (one request per tag),
     each tag's request apart, and one request for a single run (a request's fixed
     cost); each timed request follows IDLE s of quiet (see IDLE);
   - checks: a check_rule pass over all runs, for a threshold rule and a median rule
     (min_runs above the run count, so it computes everything and stops nothing);
   - a whole poll: MetricsWatcher.poll_once() (/data/runs, one request per tag) and
     GridPolicy.decide() on its snapshot, every run marked running, with the HTTP
     requests it makes counted.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SCRIPT, STAND_IN, emit, figure, load_script  # noqa: E402
from helpers import TensorBoardServer, read_records, scalars_multirun  # noqa: E402  (tests/helpers.py)

POLL_INTERVAL = 2.0
SECONDS_PER_POINT = 0.25
TAG = "Score"
OTHER_TAG = "Environment/Cumulative Reward"
# Idle time before each timed request.  Back-to-back requests to TensorBoard's default
# (fast-loading, Rust data server) backend stall ~40 ms each, a request after even 50 ms
# of quiet does not; the sweep's polls are seconds apart, so the benchmark idles too.
IDLE = 0.1


# -- 1. stop latency -------------------------------------------------------------

def crossing_time(run_dir: Path, tag: str, below: float) -> float | None:
    """wall_time of the first event in run_dir/B whose `tag` value is below `below`."""
    from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader

    first = None
    for path in sorted((run_dir / "B").glob("events.out.tfevents.*")):
        for event in LegacyEventFileLoader(str(path)).Load():
            for value in event.summary.value:
                if value.tag == tag and value.simple_value < below:
                    first = event.wall_time if first is None else min(first, event.wall_time)
    return first


def read_lines(stream: Any, lines: list[tuple[float, str]]) -> None:
    """Stamp every line of the sweep's output with the time it reached us."""
    for line in iter(stream.readline, ""):
        lines.append((time.time(), line.rstrip("\n")))


def bench_latency(repeats: int, tmp: Path) -> list[dict[str, Any]]:
    results, records = tmp / "results", tmp / "records"
    results.mkdir()
    records.mkdir()
    # Crossings spread over ~1.2 poll periods: 4, 6, 8, ... points of Score = 1, then -1.
    highs = [4 + (2 * i) % 11 for i in range(repeats)]
    longest = max(highs) * SECONDS_PER_POINT
    duration = longest + 4 * POLL_INTERVAL + 4  # never ends by itself before it should have been stopped
    points = int(duration / SECONDS_PER_POINT)
    specs = ", ".join("[" + ", ".join(["1"] * n + ["-1"]) + "]" for n in highs)
    config = tmp / "latency.yaml"
    # max_steps and summary_freq say what the stand-in does (a point every 100 steps), as a real
    # config would: the sweep leaves a run in its last summary period alone.
    config.write_text("behaviors:\n  B:\n    max_steps: %d\n    summary_freq: 100\n    opt_stop: {tag: %s, min: 0}\n"
                      "stand_in:\n  duration: %g\n  points: %d\n  steps: %d\n"
                      "  scalars:\n    B:\n      %s: {opt_values: [%s]}\n"
                      % (points * 100, TAG, duration, points, points * 100, TAG, specs))
    print(f"stop latency: {repeats} runs, crossings after {highs} points of {SECONDS_PER_POINT} s, "
          f"--poll-interval {POLL_INTERVAL:g} ...", flush=True)
    lines: list[tuple[float, str]] = []
    with TensorBoardServer(str(results), reload_interval=1) as board:
        command = [sys.executable, str(SCRIPT), str(config), "--trainer", f"{sys.executable} {STAND_IN}",
                   "--num-envs", "1", "--tensorboard-url", board.url, "--poll-interval", str(POLL_INTERVAL),
                   "--stop-timeout", "20", "--results-dir", str(results), "--run-id", "lat", "--metric", TAG]
        proc = subprocess.Popen(command, cwd=tmp, env={**os.environ, "STAND_IN_RECORDS": str(records)},
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, bufsize=1)
        reader = threading.Thread(target=read_lines, args=(proc.stdout, lines), daemon=True)
        reader.start()
        try:
            proc.wait(timeout=repeats * (duration + 10) + 60)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # stops its runs gracefully
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            reader.join(5)
    output = "\n".join(text for _, text in lines)
    if proc.returncode != 0:
        raise SystemExit(f"the latency sweep exited {proc.returncode}:\n{output[-3000:]}")
    stopped = {}
    for stamp, text in lines:
        match = re.search(r"\] stopping (lat-\d+): ", text)
        if match:
            stopped[match.group(1)] = stamp
    recs = {rec["run_id"]: rec for rec in read_records(str(records))}
    by_line, by_end = [], []
    for index in range(repeats):
        run_id = f"lat-{index}"
        crossed = crossing_time(results / run_id, TAG, 0)
        if crossed is None:
            raise SystemExit(f"{run_id} wrote no Score below 0")
        if run_id not in stopped or recs[run_id]["signals"] != ["SIGINT"]:
            print(f"{run_id}: NOT stopped (signals {recs[run_id]['signals']})", flush=True)
            by_line.append(math.inf)
            by_end.append(math.inf)
            continue
        by_line.append(stopped[run_id] - crossed)
        by_end.append(recs[run_id]["end"] - crossed)
        print(f"{run_id}: Score < 0 written after {highs[index]} points; stop line {by_line[-1]:.2f} s later, "
              f"run ended {by_end[-1]:.2f} s later", flush=True)
    return [
        figure("stop_latency_median_s", statistics.median(by_line), "s", "< 4",
               f"crossing written -> SIGINT sent, median of {repeats}, --poll-interval {POLL_INTERVAL:g}"),
        figure("stop_latency_max_s", max(by_line), "s", "< 4", f"worst of {repeats}"),
        figure("stop_latency_to_exit_max_s", max(by_end), "s", None,
               "crossing written -> the run's end (it saved and exited), worst"),
    ]


# -- 2. poll cost ------------------------------------------------------------------

def write_events(results: Path, run_ids: list[str], points: int) -> None:
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    for number, run_id in enumerate(run_ids):
        writer = EventFileWriter(str(results / run_id / "B"))
        for k in range(points):
            values = [summary_pb2.Summary.Value(tag=TAG, simple_value=1.0 + number + 0.01 * k),
                      summary_pb2.Summary.Value(tag=OTHER_TAG, simple_value=0.5 * number + 0.001 * k)]
            writer.add_event(event_pb2.Event(wall_time=time.time(), step=(k + 1) * 1000,
                                             summary=summary_pb2.Summary(value=values)))
        writer.close()


def wait_loaded(url: str, names: list[str], points: int, timeout: float = 120) -> float:
    """Wait until TensorBoard serves every point of both tags for every run; seconds waited."""
    started = time.monotonic()
    while True:
        try:
            complete = all(len(scalars_multirun(url, tag, names).get(name, [])) == points
                           for tag in (TAG, OTHER_TAG) for name in names)
        except (urllib.error.URLError, OSError):
            complete = False
        if complete:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise SystemExit(f"TensorBoard did not load {len(names)} runs within {timeout} s")
        time.sleep(0.5)


def bench_poll_cost(runs: int, points: int, polls: int, tmp: Path) -> list[dict[str, Any]]:
    mod = load_script()
    results = tmp / "cost"
    results.mkdir()
    rates = ", ".join(f"{(i + 1) * 1e-5:.5g}" for i in range(runs))
    config = tmp / "cost.yaml"
    config.write_text(
        "behaviors:\n  B:\n    max_steps: 1000000\n"
        f"    hyperparameters:\n      learning_rate: {{opt_values: [{rates}]}}\n"
        f"    opt_stop:\n      - {{tag: {TAG}, min: -1000000000.0}}\n"
        f"      - {{tag: {OTHER_TAG}, rule: median, min_runs: {runs + 1000}}}\n")
    print(f"poll cost: {runs} runs x {points} points x 2 tags, {polls} polls ...", flush=True)
    with TensorBoardServer(str(results), reload_interval=1) as board:
        settings, parsed, _ = mod.parse_args([str(config), "--trainer", sys.executable, "--results-dir", str(results),
                                              "--run-id", "cost", "--num-envs", str(runs), "--env=Fake",
                                              "--tensorboard-url", board.url])
        plan = mod.expand(parsed, settings.run_id, max_runs=runs)
        run_ids = [run.run_id for run in plan]
        write_started = time.monotonic()
        write_events(results, run_ids, points)
        names = [f"{run_id}/B" for run_id in run_ids]  # as the data server names them
        loaded = wait_loaded(board.url, names, points)
        print(f"events written and loaded by TensorBoard in {time.monotonic() - write_started:.1f} s "
              f"({loaded:.1f} s waiting for TensorBoard)", flush=True)

        client = mod.TensorBoardClient(board.url)
        requests_made = [0]
        request = client.request

        def counted_request(*args: Any, **kwargs: Any) -> Any:
            requests_made[0] += 1
            return request(*args, **kwargs)

        client.request = counted_request  # type: ignore[method-assign]
        deadline = lambda: time.monotonic() + mod.POLL_DEADLINE  # noqa: E731
        client.scalars(TAG, names, deadline())  # warm TensorBoard's caches

        # A poll is what the watcher's thread does (/data/runs, then one request per tag)
        # and what the policy then decides on the snapshot, for runs all marked running.
        watcher = mod.MetricsWatcher(client, interval=60, results_dir=results)
        watcher.healthy = True
        states = [mod.RunRecord(run) for run in plan]
        for record in states:
            record.begin_session(time.time(), False, None)  # every run marked running
        policy = mod.make_policy(plan)
        watcher.want(mod.MetricsRequest(tuple(policy.tags()), tuple((run.run_id, "B") for run in plan)))
        rules = plan[0].stop_rules

        # Rounds interleave the measurements, so a slow spell of this noisy machine
        # (or of TensorBoard's reloads) falls on all of them alike.
        fetch_ms, first_ms, next_ms, one_ms, threshold_ms, median_ms, poll_ms, requests_per_poll = ([] for _ in range(8))
        for _ in range(polls):
            time.sleep(IDLE)
            started = time.perf_counter()
            data = {TAG: client.scalars(TAG, names, deadline())}
            middle = time.perf_counter()
            data[OTHER_TAG] = client.scalars(OTHER_TAG, names, deadline())
            ended = time.perf_counter()
            fetch_ms.append(1000 * (ended - started))
            first_ms.append(1000 * (middle - started))
            next_ms.append(1000 * (ended - middle))
            if not all(len(data[tag]) == runs for tag in data):
                raise RuntimeError("TensorBoard left runs out: the poll would measure less than it claims")

            time.sleep(IDLE)
            started = time.perf_counter()  # a request's fixed cost: one tag, one run
            client.scalars(TAG, names[:1], deadline())
            one_ms.append(1000 * (time.perf_counter() - started))

            for rule, sink in zip(rules, (threshold_ms, median_ms)):
                # (step, value) points, as the watcher hands them to the policy (the wall time dropped)
                points_of = {name: mod.own_points(served, None) for name, served in data[rule.tag].items()}
                started = time.perf_counter()
                for name in names:  # each run against the others, as the policy does it
                    others = [points_of.get(other, []) for other in names if other != name] if rule.rule == "median" else []
                    if mod.check_rule(rule, points_of.get(name, []), others) is not None:
                        raise RuntimeError(f"{rule.rule} rule fired on {name}: the data was meant to stop nothing")
                sink.append(1000 * (time.perf_counter() - started))

            time.sleep(IDLE)
            before = requests_made[0]
            started = time.perf_counter()
            snapshot = watcher.poll_once()
            decisions = policy.decide(states, snapshot) if snapshot is not None else None
            poll_ms.append(1000 * (time.perf_counter() - started))
            requests_per_poll.append(requests_made[0] - before)
            if snapshot is None or decisions or len(snapshot.points) != 2 * runs:
                raise RuntimeError("a poll failed, missed runs or stopped one: the timings would not be of a full poll")

    fetch, poll = statistics.median(fetch_ms), statistics.median(poll_ms)
    return [
        figure("poll_ms", poll, "ms", None,
               f"one watcher poll and the policy's decisions for {runs} live runs x {points} points, "
               f"threshold + median rule, median of {polls}"),
        figure("poll_ms_per_run", poll / runs, "ms"),
        figure("poll_requests", statistics.median(requests_per_poll), "requests", None,
               "HTTP requests per poll (/data/runs, then one per tag)"),
        figure("poll_fetch_ms", fetch, "ms", None,
               f"TensorBoardClient(url).scalars() for both tags, {runs} runs each"),
        figure("poll_request_first_ms", statistics.median(first_ms), "ms", None,
               f"of those, the first tag's request ({runs} runs, after {IDLE:g} s idle)"),
        figure("poll_request_next_ms", statistics.median(next_ms), "ms", None,
               "the second tag's request, sent right after the first"),
        figure("poll_fetch_1run_ms", statistics.median(one_ms), "ms", None,
               f"one request for one tag of one run, after {IDLE:g} s idle: the fixed cost of a request"),
        figure("poll_check_threshold_ms", statistics.median(threshold_ms), "ms", None,
               f"check_rule over {runs} runs, threshold rule"),
        figure("poll_check_median_ms", statistics.median(median_ms), "ms", None,
               f"check_rule over {runs} runs, median rule (each run against the {runs - 1} others)"),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="stop-latency samples (runs in the sweep)")
    parser.add_argument("--runs", type=int, default=64, help="live runs for the poll cost")
    parser.add_argument("--points", type=int, default=100, help="points per tag and run for the poll cost")
    parser.add_argument("--polls", type=int, default=20, help="polls timed (median reported)")
    parser.add_argument("--quick", action="store_true", help="tiny: 1 latency run; 8 runs x 20 points, 5 polls")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder and say where")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.runs, args.points, args.polls = 1, 8, 20, 5
    tmp = Path(tempfile.mkdtemp(prefix="bench-poll-"))
    try:
        figures = bench_latency(args.repeats, tmp)
        figures += bench_poll_cost(args.runs, args.points, args.polls, tmp)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    emit("poll", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
