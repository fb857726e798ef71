"""What the benchmarks in bench/ share: paths, the script as a module, /proc readings,
and the result format bench/run collects.

Every benchmark prints its figures for people, then, as its LAST line on stdout,
one JSON object:

    {"benchmark": "scheduler", "figures": [
        {"name": "makespan_ratio_runs", "value": 1.03, "unit": "x", "goal": "<= 1.05",
         "met": true, "note": "first run start -> last run end / ideal"}, ...]}

`goal` is a string such as "<= 1.05" or null (a figure reported for context);
`met` is true/false, or null when there is no goal.  A benchmark exits 0 when it
measured (whether or not the goals are met) and non-zero when it could not.
"""

from __future__ import annotations

import importlib.util
import json
import math
import operator
import os
import signal
import socket
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "mlagents-learn.py"
TESTS = ROOT / "tests"
STAND_IN = TESTS / "stand_in_trainer.py"

if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))  # tests/helpers.py: TensorBoardServer, free_port, read_records

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
OPS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt}


def load_script() -> Any:
    """mlagents-learn.py as the module `mlagents_learn` (as tests/conftest.py loads it)."""
    if "mlagents_learn" in sys.modules:
        return sys.modules["mlagents_learn"]
    spec = importlib.util.spec_from_file_location("mlagents_learn", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["mlagents_learn"] = module
    if spec.loader is None:
        raise RuntimeError(f"cannot load {SCRIPT}")
    spec.loader.exec_module(module)
    return module


# -- /proc -------------------------------------------------------------------

def proc_cpu(pid: int) -> tuple[float, float] | None:
    """(own CPU seconds, reaped children's CPU seconds) of pid, from /proc/<pid>/stat.

    Fields 14-15 (utime, stime) are the process's own threads only; 16-17
    (cutime, cstime) are its waited-for children.  Still readable while pid is a
    zombie (exited, not yet reaped), which is how the final value is taken.
    """
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat[stat.rfind(")") + 2:].split()  # the name may hold spaces and parentheses
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return (utime + stime) / CLK_TCK, (cutime + cstime) / CLK_TCK


def proc_hwm_mb(pid: int) -> float | None:
    """VmHWM (peak resident memory) of a live pid, in MiB; None once it has exited."""
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def machine_busy_s() -> float:
    """CPU seconds all cores have been busy since boot, from /proc/stat's first line.

    user + nice + system + irq + softirq (not idle, iowait, or steal).  The
    difference over a measurement, less the CPU time of the processes measured,
    is what other programs (other sessions on a shared machine) took meanwhile.
    """
    with open("/proc/stat", encoding="ascii") as f:
        user, nice, system, _idle, _iowait, irq, softirq = (int(x) for x in f.readline().split()[1:8])
    return (user + nice + system + irq + softirq) / CLK_TCK


def free_port_range(count: int) -> int:
    """A first port of `count` consecutive loopback ports that were all free a moment ago.

    Below Linux's ephemeral range (32768-60999), so that no outgoing connection of
    another program takes one of them during the sweep.
    """
    for base in range(20_000 + (os.getpid() % 97) * 100, 32_768 - count, count):
        held = []
        try:
            for port in range(base, base + count):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                held.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
    raise SystemExit(f"no {count} consecutive free ports below 32768")


# -- results ------------------------------------------------------------------

def figure(name: str, value: float | None, unit: str, goal: str | None = None, note: str = "") -> dict[str, Any]:
    """One measured figure; `met` is decided here from goal ("<= 1.05", "< 4", ...)."""
    met = None
    if goal is not None:
        op, _, bound = goal.partition(" ")
        met = value is not None and math.isfinite(value) and OPS[op](value, float(bound))
    if value is not None and not math.isfinite(value):
        value = None  # JSON has no inf/nan
    return {"name": name, "value": value, "unit": unit, "goal": goal, "met": met, "note": note}


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0 or 0.01 <= abs(value) < 100_000:
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return f"{value:.3g}"


def emit(benchmark: str, figures: Sequence[dict[str, Any]]) -> None:
    """Print the figures as a table, then the JSON line bench/run reads (the last line)."""
    width = max(len(f["name"]) for f in figures)
    print(f"\n{benchmark}:")
    for f in figures:
        goal = f" (goal {f['goal']}: {'met' if f['met'] else 'NOT met'})" if f["goal"] else ""
        note = f"  -- {f['note']}" if f["note"] else ""
        print(f"  {f['name'].ljust(width)}  {fmt(f['value'])} {f['unit']}{goal}{note}")
    print(json.dumps({"benchmark": benchmark, "figures": list(figures)}), flush=True)


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def stop_sweep(proc: subprocess.Popen, timeout: float = 60) -> None:
    """A sweep the benchmark gave up on: stop it as Ctrl-C would (it stops its runs), else kill it."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class HungServer:
    """A TensorBoard URL whose server accepts every connection and never answers (until closed)."""

    def __init__(self, port: int) -> None:
        import threading

        self.url = f"http://127.0.0.1:{port}"
        self.listener = socket.create_server(("127.0.0.1", port))
        self.closing = threading.Event()
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        import threading

        while not self.closing.is_set():
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._hold, args=(connection,), daemon=True).start()

    def _hold(self, connection: socket.socket) -> None:
        with connection:
            self.closing.wait()

    def close(self) -> None:
        self.closing.set()
        self.listener.close()
