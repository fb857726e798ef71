"""Small utilities for the process tests: ports, polling, a real TensorBoard server,
the stand-in trainer's records, and process checks.  Standard library only."""

import atexit
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

HERE = os.path.dirname(os.path.abspath(__file__))
STAND_IN = os.path.join(HERE, "stand_in_trainer.py")


# Linux's ephemeral range starts at 32768: ports below it are not handed to
# another program's outgoing connections while a test uses them.
PORT_FLOOR, PORT_CEILING = 20_000, 32_768
_handed_out: set = set()


def free_port(count: int = 8) -> int:
    """The first of `count` consecutive loopback ports below the ephemeral range, free a moment ago.

    Consecutive, because a sweep at --num-envs N gives each slot its own range from
    --base-port up. No port is handed out twice in one test session.
    """
    import random

    # Each pytest-xdist worker (gw0, gw1, ...) draws from a band of its own.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    band = (PORT_CEILING - PORT_FLOOR) // max(workers, 1)
    low = PORT_FLOOR + band * (int(worker[2:]) if worker[2:].isdigit() else 0)
    chooser = random.Random()
    for _ in range(2000):
        base = chooser.randrange(low, low + band - count)
        ports = range(base, base + count)
        if _handed_out.intersection(ports):
            continue
        held = []
        try:
            for port in ports:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                held.append(sock)
                sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
        _handed_out.update(ports)
        return base
    raise RuntimeError(f"no {count} consecutive free ports below {PORT_CEILING}")


def wait_until(
    predicate: Callable[[], Any],
    timeout: float,
    interval: float = 0.1,
    message: Union[str, Callable[[], str]] = "",
) -> Any:
    """Poll predicate until it returns something truthy and return that; AssertionError on timeout.

    message (a string, or a callable run at the timeout) says what was expected and seen."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            name = getattr(predicate, "__name__", repr(predicate))
            text = message() if callable(message) else message
            detail = f": {text}" if text else ""
            raise AssertionError(
                f"timed out after {timeout} s waiting for {name} (last value {value!r}){detail}"
            )
        time.sleep(interval)


def _tensorboard_command() -> List[str]:
    """The tensorboard next to this Python, else the one on PATH, else `python -m`."""
    bindir = os.path.dirname(sys.executable)
    for name in ("tensorboard", "tensorboard.exe", os.path.join("Scripts", "tensorboard.exe")):
        candidate = os.path.join(bindir, name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return [candidate]
    on_path = shutil.which("tensorboard")
    if on_path:
        return [on_path]
    return [sys.executable, "-m", "tensorboard.main"]


def _kill_group(proc: "subprocess.Popen[bytes]", grace: float = 5.0) -> None:
    """Stop a process started in its own group, and everything in that group."""
    if proc.poll() is None:
        if os.name == "posix":
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        else:
            proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    if os.name == "posix":
        # Also whatever is left in the group (tensorboard's data server).
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    elif proc.poll() is None:
        proc.kill()
    proc.wait()


class TensorBoardServer:
    """A real `tensorboard` process on 127.0.0.1, for the life of a `with` block.

    `.stop()` takes it down and `.start()` brings it back on the same port, so a
    test can make TensorBoard vanish in the middle of a sweep."""

    def __init__(self, logdir: str, port: Optional[int] = None, reload_interval: float = 1) -> None:
        self.logdir = str(logdir)
        self.port = port if port is not None else free_port()
        self.reload_interval = reload_interval
        self.url = f"http://127.0.0.1:{self.port}"
        self.tmpdir = tempfile.mkdtemp(prefix="tensorboard-test-")
        self.log_path = os.path.join(self.tmpdir, "tensorboard.log")
        self.proc: Optional["subprocess.Popen[bytes]"] = None
        atexit.register(self.stop)  # a crashed test must not leave a server behind

    def __enter__(self) -> "TensorBoardServer":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
        atexit.unregister(self.stop)
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def start(self, timeout: float = 60.0) -> None:
        """Start the server (again, on the same port) and wait until it answers."""
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("TensorBoard is already running")
        command = _tensorboard_command() + [
            "--logdir", self.logdir,
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--reload_interval", str(self.reload_interval),
        ]
        with open(self.log_path, "ab") as log:
            log.write(("$ " + " ".join(command) + "\n").encode())
            log.flush()
            self.proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=(os.name == "posix"),
                creationflags=getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0),
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.stop()
                raise AssertionError(
                    f"tensorboard exited with {code} before answering:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(self.url + "/data/environment", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() >= deadline:
                self.stop()
                raise AssertionError(
                    f"tensorboard did not answer on {self.url} within {timeout} s:\n{self.log_tail()}"
                )
            time.sleep(0.1)

    def stop(self) -> None:
        """Kill the server and its data server, and wait for them."""
        if self.proc is not None:
            _kill_group(self.proc)


def read_records(directory: str) -> List[Dict[str, Any]]:
    """The stand-in trainer's records in a STAND_IN_RECORDS directory, oldest start first."""
    records = []
    for path in glob.glob(os.path.join(str(directory), "*.json")):
        with open(path, encoding="utf-8") as f:
            records.append(json.load(f))
    return sorted(records, key=lambda r: r["start"])


def scalars(url: str, run: str, tag: str) -> List[Tuple[int, float]]:
    """(step, value) points TensorBoard serves for run/tag; [] while it has none (404)."""
    query = urllib.parse.urlencode({"run": run, "tag": tag}, quote_via=urllib.parse.quote)
    try:
        with urllib.request.urlopen(f"{url}/data/plugin/scalars/scalars?{query}", timeout=10) as resp:
            points = json.load(resp)
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return []
        raise
    return [(int(step), float(value)) for _wall, step, value in points]


def scalars_multirun(url: str, tag: str, runs: Sequence[str]) -> Dict[str, List[Tuple[int, float]]]:
    """POST scalars_multirun: {run: [(step, value), ...]} for the runs that have data."""
    body = urllib.parse.urlencode([("tag", tag)] + [("runs", run) for run in runs]).encode()
    request = urllib.request.Request(f"{url}/data/plugin/scalars/scalars_multirun", data=body)
    with urllib.request.urlopen(request, timeout=10) as resp:
        by_run = json.load(resp)
    return {
        run: [(int(step), float(value)) for _wall, step, value in points]
        for run, points in by_run.items()
    }


def process_alive(pid: int) -> bool:
    """True while pid runs; a zombie (exited, not yet reaped) counts as dead."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as f:
            stat = f.read()
    except FileNotFoundError:
        return os.name != "posix" or not os.path.isdir("/proc")
    # The command name may hold spaces and parentheses; the state follows the last ')'.
    return stat[stat.rfind(")") + 2 :][:1] != "Z"


def kill_group(pgid: int) -> None:
    """SIGKILL a whole process group, if anything is left in it (test cleanup)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def namespaces_work() -> bool:
    """Can we make a private network namespace with only loopback (`unshare -n`, as root on Linux)?
    Ray binds to the machine's network address whatever it is told: its tests and benchmark run in one."""
    if not sys.platform.startswith("linux") or shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    probe = subprocess.run(["unshare", "-n", "sh", "-c", "ip link set lo up"], capture_output=True)
    return probe.returncode == 0


def stand_in_search(folder, run_id: str, tag: str = "Score"):
    """A search config for the stand-in: its score a range, halving at steps 100 and 300 of 900. Each run
    holds at its rungs until the sweep pauses it or lets it pass (see the stand-in's `hold`), so no late
    poll lets it train past a rung."""
    state = json.dumps(str(folder / "results" / f"{run_id}-sweep" / "sweep_state.json"))
    path = folder / "search.yaml"
    path.write_text("behaviors:\n  B:\n    max_steps: 900\n    summary_freq: 100\n"
                    f"    opt_stop: {{tag: {tag}, rule: halving, step: 100, factor: 3}}\n"
                    f"stand_in:\n  duration: 1\n  points: 9\n  steps: 900\n"
                    f"  hold: {{steps: [100, 300], sweep_state: {state}}}\n"
                    f"  scalars: {{B: {{{tag}: {{opt_range: [0.0, 1.0]}}}}}}\n")
    return path
