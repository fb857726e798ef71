"""What differs by OS, tested on Linux wherever its logic can run.

- The Windows launcher: how the trainer's Python is found, the command line it
  builds, that it forwards every argument unchanged and that it turns a signal
  into Ctrl-C's KeyboardInterrupt (here with SIGUSR1; on Windows SIGBREAK).
- Windows and macOS process handling, through fakes of kernel32, taskkill and
  ps, and macOS's ps parsing with this machine's real ps.
- Linux identities from /proc, with real processes.
- The demo environment's layout per OS, checked against mlagents' own lookup.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import mlagents_learn as ml
from conftest import ROOT
from helpers import wait_until

LINUX = sys.platform.startswith("linux")
sys.path.insert(0, str(ROOT / "scripts"))
import install_mlagents  # noqa: E402


# -- finding the trainer's Python ------------------------------------------------------------

def executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


def pip_exe_launcher(path: Path, python: str) -> Path:
    """What pip writes on Windows: a launcher program, a shebang line, then a zip with __main__.py."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"MZ\x90\x00 launcher code #!not-this\x00" * 50 + f"#!{python}\r\n".encode()
                     + b"PK\x03\x04 zip with __main__.py: from mlagents.trainers.learn import main\x00")
    return path


@pytest.mark.parametrize("case", ["exe shebang", "exe quoted shebang", "python.exe beside", "python.exe above",
                                  "script shebang", "env shebang", "pip's /bin/sh form", "python -m",
                                  "python running a script", "nothing names a Python"])
def test_the_trainers_python_is_found_where_pip_and_venv_put_it(tmp_path, case):
    python = str(executable(tmp_path / "real python" / "python3", "#!/bin/sh\n"))
    scripts = tmp_path / "venv" / "Scripts"
    expected = (python, ["--x"])
    if case == "exe shebang":
        trainer = [str(pip_exe_launcher(scripts / "mlagents-learn.exe", python)), "--x"]
    elif case == "exe quoted shebang":
        trainer = [str(pip_exe_launcher(scripts / "mlagents-learn.exe", f'"{python}"')), "--x"]
    elif case == "python.exe beside":
        trainer = [str(pip_exe_launcher(scripts / "mlagents-learn.exe", "C:\\gone\\python.exe")), "--x"]
        expected = (str(executable(scripts / "python.exe", "")), ["--x"])
    elif case == "python.exe above":
        trainer = [str(pip_exe_launcher(scripts / "mlagents-learn.exe", "C:\\gone\\python.exe")), "--x"]
        expected = (str(executable(scripts.parent / "python.exe", "")), ["--x"])
    elif case == "script shebang":  # a shebang cannot hold a space: pip writes the /bin/sh form then
        plain = str(executable(tmp_path / "plain" / "python3", "#!/bin/sh\n"))
        trainer = [str(executable(tmp_path / "bin" / "mlagents-learn", f"#!{plain}\nimport re\n")), "--x"]
        expected = (plain, ["--x"])
    elif case == "env shebang":
        trainer = [str(executable(tmp_path / "bin" / "mlagents-learn", "#!/usr/bin/env sh\n")), "--x"]
        expected = (ml.shutil.which("sh"), ["--x"])
    elif case == "pip's /bin/sh form":
        trainer = [str(executable(tmp_path / "bin" / "mlagents-learn",
                                  f"#!/bin/sh\n'''exec' \"{python}\" \"$0\" \"$@\"\n' '''\nimport re\n")), "--x"]
    elif case == "python -m":
        trainer = [python, "-m", "mlagents.trainers.learn", "--x"]
        trainer[0] = str(executable(tmp_path / "bin" / "python3.11", ""))
        expected = (trainer[0], ["--x"])
    elif case == "python running a script":
        trainer = [str(executable(tmp_path / "bin" / "python", "")), "train.py"]
        expected = None
    else:
        trainer = [str(executable(tmp_path / "bin" / "mlagents-learn", "echo no shebang\n")), "--x"]
        expected = None
    assert ml.trainer_python(trainer) == expected


def test_the_launcher_wraps_the_trainer_when_its_python_has_mlagents_and_warns_when_not(tmp_path):
    exe = pip_exe_launcher(tmp_path / "Scripts" / "mlagents-learn.exe", sys.executable)
    assert ml.interruptible_trainer([str(exe), "--debug"], "SIGBREAK", probe=lambda python: True) == (
        [sys.executable, "-c", ml.TRAINER_LAUNCHER, "SIGBREAK", "--debug"], None)
    command, warning = ml.interruptible_trainer([str(exe)], "SIGBREAK", probe=lambda python: False)
    assert command == [str(exe)]
    assert warning == (f"the Python that runs {exe} was not found (or cannot import mlagents.trainers.learn): a run "
                       "stopped on Windows will end without saving its model. Pass --trainer "
                       '"<its Python> -m mlagents.trainers.learn" to fix that')


def test_windows_runs_start_under_the_launcher_of_the_trainers_own_python(tmp_path):
    # The real probe: this test's Python has ML-Agents (the venv make test installs).
    exe = pip_exe_launcher(tmp_path / "Scripts" / "mlagents-learn.exe", sys.executable)
    assert ml.WindowsPlatform().trainer_command([str(exe)]) == ([sys.executable, "-c", ml.TRAINER_LAUNCHER, "SIGBREAK"], None)
    assert ml.LinuxPlatform().trainer_command([str(exe)]) == ([str(exe)], None)  # SIGINT needs no launcher


def fake_mlagents(folder: Path, main_body: str) -> dict:
    """A package named mlagents whose trainers.learn.main runs main_body; the environment that finds it."""
    learn = folder / "mlagents" / "trainers" / "learn.py"
    learn.parent.mkdir(parents=True)
    (folder / "mlagents" / "__init__.py").write_text("")
    (learn.parent / "__init__.py").write_text("")
    learn.write_text("import json, sys, time\n\ndef main():\n" + "".join(f"    {line}\n" for line in main_body.splitlines()))
    return {**os.environ, "PYTHONPATH": str(folder)}


def test_the_launcher_forwards_every_argument_unchanged(tmp_path):
    env = fake_mlagents(tmp_path, "print(json.dumps(sys.argv))\nreturn 3")
    arguments = ["config with spaces.yaml", "--run-id=r-0", "--env", "C:\\Builds\\3D Ball", "-c", "SIGINT", "'\"",
                 "--env-args", "--level", "ünïcode", ""]
    done = subprocess.run(ml.launcher_command(sys.executable, "SIGUSR1", arguments), env=env, capture_output=True, text=True)
    assert done.returncode == 3, done.stderr
    assert json.loads(done.stdout) == ["mlagents-learn", *arguments]


SAVES_ON_CTRL_C = """try:
    print("training", flush=True)
    time.sleep(60)
except KeyboardInterrupt:
    print("saved the model", flush=True)
    return 0
return 5"""


@pytest.mark.skipif(os.name != "posix", reason="SIGUSR1 stands in for Windows' SIGBREAK")
@pytest.mark.parametrize("launched, code, output", [
    (True, 0, "training\nsaved the model\n"),            # the signal is Ctrl-C's KeyboardInterrupt
    (False, -signal.SIGUSR1, "training\n"),              # as SIGBREAK on Windows without the launcher: gone, nothing saved
])
def test_the_launcher_turns_the_signal_into_ctrl_c(tmp_path, launched, code, output):
    env = fake_mlagents(tmp_path, SAVES_ON_CTRL_C)
    plain = [sys.executable, "-c", "import sys; from mlagents.trainers.learn import main; sys.exit(main())"]
    command = ml.launcher_command(sys.executable, "SIGUSR1", []) if launched else plain
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True, start_new_session=True)
    first = proc.stdout.readline()
    os.killpg(proc.pid, signal.SIGUSR1)
    rest = proc.stdout.read()
    assert proc.wait(30) == code
    assert first + rest == output


# -- Windows process handling, through fakes of kernel32 and taskkill --------------------------

class FakeKernel32:
    """kernel32 as WindowsPlatform uses it: processes are pid -> (creation FILETIME, still running)."""

    def __init__(self, processes):
        self.processes = processes
        self.closed = []

    def OpenProcess(self, access, inherit, pid):
        return pid + 1000 if pid in self.processes else 0

    def GetProcessTimes(self, handle, creation, exit_time, kernel, user):
        creation._obj.value = self.processes[handle - 1000][0]
        return 1

    def GetExitCodeProcess(self, handle, code):
        code._obj.value = 259 if self.processes[handle - 1000][1] else 0
        return 1

    def CloseHandle(self, handle):
        self.closed.append(handle)


class FakePopen:
    pid = 4242

    def __init__(self):
        self.sent = []

    def send_signal(self, sig):
        self.sent.append(sig)

    def terminate(self):
        self.sent.append("terminate")

    def poll(self):
        return None


def test_windows_starts_a_new_process_group_stops_with_ctrl_break_and_kills_the_tree(monkeypatch):
    ran = []
    monkeypatch.setenv("SystemRoot", "C:\\Windows")
    platform = ml.WindowsPlatform(kernel32=FakeKernel32({}), run=ran.append)
    popen = FakePopen()
    assert platform.popen_options() == {"creationflags": 0x200}  # CREATE_NEW_PROCESS_GROUP
    platform.interrupt(popen)
    platform.terminate(popen)
    platform.kill(popen)
    assert popen.sent == [getattr(signal, "CTRL_BREAK_EVENT", 1), "terminate"]
    assert ran == [[os.path.join("C:\\Windows", "System32", "taskkill.exe"), "/F", "/T", "/PID", "4242"]]
    assert platform.exited(popen) is None


def test_windows_knows_a_process_by_its_creation_time_and_kills_only_that_one():
    kernel = FakeKernel32({10: (133_000_000_000_000_001, True), 11: (133_000_000_000_000_002, False)})
    ran = []
    platform = ml.WindowsPlatform(kernel32=kernel, run=ran.append)
    identity = platform.identify(10, "m")
    assert identity == ml.ProcessIdentity("", "133000000000000001", "m")
    assert platform.identify(11, "m") is None  # it has exited
    assert platform.identify(12, "m") is None  # no such process
    assert kernel.closed == [1010, 1011]
    # Windows has no process groups: a left-over trainer is killed with its tree (no Ctrl-C can reach it).
    leftover = platform.leftovers("r-0", 10, identity)
    assert leftover == ml.Leftover("r-0", None, (10,), "m")
    assert platform.leftovers("r-0", 10, ml.ProcessIdentity("", "133000000000000009", "m")) is None  # a reused pid
    platform.signal_leftover(leftover, hard=True)
    assert ran[-1][-2:] == ["/PID", "10"]
    assert platform.trainer_alive(leftover) is False


# -- macOS: ps and sysctl --------------------------------------------------------------------

PS = """    1     1 Wed Dec  2 16:59:12 2026
  300   300 Wed Dec  2 17:00:01 2026
  301   300 Wed Dec  2 17:00:02 2026
  302   302 Wed Dec  2 17:00:03 2026
"""


def mac(outputs):
    calls = []

    def run(command):
        calls.append(command)
        return outputs[command[0]]

    return ml.MacPlatform(run=run), calls


def test_macos_knows_a_run_by_its_trainers_start_time_and_boot():
    platform, calls = mac({"ps": PS, "sysctl": "{ sec = 1733150000, usec = 97043 } Wed Dec  2 16:59:00 2026\n"})
    identity = platform.identify(300, "m")
    assert identity == ml.ProcessIdentity("1733150000", "Wed Dec 2 17:00:01 2026", "m")
    assert calls[:2] == [["ps", "-A", "-o", "pid=,pgid=,lstart="], ["sysctl", "-n", "kern.boottime"]]
    assert platform.leftovers("r-0", 300, identity) == ml.Leftover("r-0", 300, (300, 301), "m")
    assert platform.leftovers("r-0", 300, ml.ProcessIdentity("1733150000", "Wed Dec 2 17:09:09 2026", "m")) is None
    assert platform.leftovers("r-0", 300, ml.ProcessIdentity("1600000000", identity.start, "m")) is None  # rebooted
    assert platform.identify(999, "m") is None


@pytest.mark.skipif(not LINUX, reason="this machine's ps is procps")
def test_macos_ps_reading_works_with_a_real_ps_and_real_processes():
    platform = ml.MacPlatform()
    platform.boot_time = lambda: "boot"  # sysctl's kern.boottime is macOS's own
    trainer = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        identity = platform.identify(trainer.pid, "m")
        assert identity is not None and identity.boot == "boot" and identity.start.endswith(time.strftime("%Y"))
        assert platform.leftovers("r-0", trainer.pid, identity) == ml.Leftover("r-0", trainer.pid, (trainer.pid,), "m")
    finally:
        trainer.kill()
        trainer.wait()
    assert platform.leftovers("r-0", trainer.pid, identity) is None


# -- Linux: /proc ------------------------------------------------------------------------------

@pytest.mark.skipif(not LINUX, reason="/proc")
def test_linux_finds_every_process_with_the_runs_marker_and_nothing_else(tmp_path):
    marker = "sweep|r-0|0123"
    marked = {**os.environ, ml.RUN_MARKER: marker}
    trainer = subprocess.Popen(["sleep", "60"], env=marked, start_new_session=True)
    # Its environment, in a session of its own (as mlagents starts a Unity build), and a stranger.
    environment = subprocess.Popen(["sleep", "61"], env=marked, start_new_session=True)
    stranger = subprocess.Popen(["sleep", "62"], env={**os.environ, ml.RUN_MARKER: "sweep|r-1|4567"}, start_new_session=True)
    platform = ml.LinuxPlatform()
    try:
        identity = platform.identify(trainer.pid, marker)
        assert identity.boot == Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        leftover = platform.leftovers("r-0", trainer.pid, identity)
        assert (leftover.trainer, sorted(leftover.pids)) == (trainer.pid, sorted([trainer.pid, environment.pid]))
        assert platform.trainer_alive(leftover)
        # A pid reused since (another start time) is not the trainer; its marked processes still are the run's.
        reused = platform.leftovers("r-0", trainer.pid, ml.ProcessIdentity(identity.boot, "1", marker))
        assert reused.trainer is None
        assert platform.leftovers("r-0", trainer.pid, ml.ProcessIdentity("another boot", identity.start, marker)) is None
        platform.signal_leftover(leftover, hard=True)
        assert trainer.wait(10) == -signal.SIGKILL and environment.wait(10) == -signal.SIGKILL
        assert stranger.poll() is None
        assert platform.leftovers("r-0", trainer.pid, identity) is None
    finally:
        for proc in (trainer, environment, stranger):
            proc.kill()
            proc.wait()


@pytest.mark.skipif(not LINUX, reason="waitid and process groups")
def test_a_finished_run_takes_its_left_over_workers_with_it():
    platform = ml.LinuxPlatform()
    code = "import os, time, sys\nif os.fork() == 0:\n    time.sleep(60)\nelse:\n    sys.exit(4)\n"
    popen = subprocess.Popen([sys.executable, "-c", code], **platform.popen_options())
    wait_until(lambda: platform.exited(popen) is not None, 30)
    assert popen.returncode == 4
    wait_until(lambda: subprocess.run(["pgrep", "-g", str(popen.pid)], capture_output=True).returncode == 1, 10)


# -- the demo environment, per OS --------------------------------------------------------------

@pytest.mark.parametrize("os_name, platform, files", [
    ("nt", "win32", {"python": "Scripts/python.exe", "mlagents_learn": "Scripts/mlagents-learn.exe",
                     "demo_env": "Scripts/MoveToTarget", "demo_app": None}),
    ("posix", "darwin", {"python": "bin/python", "mlagents_learn": "bin/mlagents-learn", "demo_env": "bin/MoveToTarget",
                         "demo_app": "bin/MoveToTarget.app/Contents/MacOS/MoveToTarget"}),
    ("posix", "linux", {"python": "bin/python", "mlagents_learn": "bin/mlagents-learn", "demo_env": "bin/MoveToTarget",
                        "demo_app": None}),
])
def test_the_demo_environment_sits_where_each_oss_mlagents_learn_looks(tmp_path, monkeypatch, os_name, platform, files):
    from mlagents_envs import env_utils

    venv = install_mlagents.venv_layout(tmp_path, os_name, platform)
    for name, relative in files.items():
        assert getattr(venv, name) == (tmp_path / relative if relative else None)
    # What the installer leaves on that OS, then mlagents-learn's own lookup for --env=<demo_env>.
    launcher = {"win32": venv.demo_env.with_suffix(".exe"), "darwin": venv.demo_app, "linux": venv.demo_env}[platform]
    executable(launcher, "#!/bin/sh\n")
    if platform == "darwin":
        executable(venv.demo_env, "#!/bin/sh\n")  # the console script itself, which the bundle copies
    monkeypatch.setattr(env_utils, "get_platform", lambda: platform)
    monkeypatch.chdir(tmp_path)
    assert env_utils.validate_environment_path(str(venv.demo_env)) == str(launcher)


@pytest.mark.skipif(not (ROOT / ".venv" / "bin" / "MoveToTarget").is_file(), reason="make install puts the demo environment there")
def test_the_installed_demo_environment_runs_this_repositorys_source():
    assert install_mlagents.demo_installed(install_mlagents.venv_layout(ROOT / ".venv"))


@pytest.mark.skipif(not (ROOT / ".venv" / "bin" / "MoveToTarget").is_file(), reason="make install puts the demo environment there")
def test_the_demo_command_runs_the_sweep_with_the_venvs_own_programs(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "demo.py"), "--venv", str(ROOT / ".venv"),
                           "--run-id", "plan", "--dry-run"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    venv = ROOT / ".venv" / "bin"
    assert done.stdout.splitlines()[:3] == [
        "4 runs, at most 2 at once; configs and config_info.txt in results/plan-sweep",
        "plan-0: learning_rate=0.003 hidden_units=64",
        f"  {venv / 'mlagents-learn'} {tmp_path / 'results' / 'plan-sweep' / 'configs' / 'plan-0.yaml'} --run-id=plan-0 "
        "--base-port=5005 "
        f"--env={venv / 'MoveToTarget'} --force",
    ]


@pytest.mark.skipif(not LINUX, reason="this machine's ps is procps")
@pytest.mark.parametrize("ignores_sigint", [False, True])
def test_macos_stops_a_left_over_run_through_its_trainer_and_kills_what_is_left(ignores_sigint):
    platform = ml.MacPlatform()
    platform.boot_time = lambda: "boot"
    trap = "trap '' INT; " if ignores_sigint else ""
    # SIGINT at its default, as the sweep's runs get it (its handler is reset on exec), even when the
    # tests themselves run with SIGINT ignored (a background job of a shell script): sh could not undo that.
    trainer = subprocess.Popen(["sh", "-c", f"{trap}sleep 60 & wait"], start_new_session=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        wait_until(lambda: len(platform.leftovers("r-0", trainer.pid, platform.identify(trainer.pid, "m")).pids) == 2, 10)
        leftover = platform.leftovers("r-0", trainer.pid, platform.identify(trainer.pid, "m"))
        assert platform.trainer_alive(leftover)
        platform.signal_leftover(leftover, hard=False)  # Ctrl-C's SIGINT to the trainer's group
        if ignores_sigint:
            time.sleep(0.5)
            assert trainer.poll() is None
            platform.signal_leftover(leftover, hard=True)
            assert trainer.wait(10) == -signal.SIGKILL
        else:
            assert trainer.wait(10) == -signal.SIGINT
        wait_until(lambda: not platform.trainer_alive(leftover), 10)
    finally:
        trainer.kill()
        trainer.wait()


@pytest.mark.parametrize("windows, platform, kind", [
    (True, "win32", ml.WindowsPlatform), (False, "linux", ml.LinuxPlatform), (False, "darwin", ml.MacPlatform),
    (False, "freebsd14", ml.Platform),
])
def test_each_os_gets_its_platform(monkeypatch, windows, platform, kind):
    monkeypatch.setattr(ml, "WINDOWS", windows)
    monkeypatch.setattr(ml.sys, "platform", platform)
    assert type(ml.this_platform()) is kind


def test_a_trainer_that_cannot_be_read_or_names_no_python_has_none(tmp_path):
    (tmp_path / "Scripts").mkdir()
    plain_exe = tmp_path / "Scripts" / "mlagents-learn.exe"
    plain_exe.write_bytes(b"MZ a program with no shebang in it")
    assert ml.launcher_shebang(plain_exe) is None
    assert ml.launcher_shebang(tmp_path / "missing.exe") is None
    assert ml.script_shebang(tmp_path / "missing") is None
    assert ml.trainer_python([str(tmp_path / "missing")]) is None
    assert ml.has_mlagents(str(tmp_path / "no-python")) is False


@pytest.mark.skipif(not LINUX, reason="waitid and process groups")
def test_asking_again_how_a_reaped_run_ended_signals_nothing():
    # Its pid, so its group id, may be another process's by then.
    platform = ml.LinuxPlatform()
    popen = subprocess.Popen([sys.executable, "-c", "pass"], **platform.popen_options())
    wait_until(lambda: platform.exited(popen) is not None, 30)
    sent = []
    platform.signal_group = lambda pgid, sig: sent.append((pgid, sig))
    assert platform.exited(popen) == 0 and platform.exited(popen) == 0
    assert sent == []


class WatchedSignals(ml.LinuxPlatform):
    """Linux, recording each group signal and whether its target had been reaped by then (its pid free for reuse)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = []

    def signal_group(self, pgid, sig) -> None:
        try:
            os.waitid(os.P_PID, pgid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            reaped = False  # alive, or a zombie that still holds its pid
        except ChildProcessError:
            reaped = True
        self.sent.append((sig, reaped))
        super().signal_group(pgid, sig)


@pytest.mark.skipif(not LINUX, reason="waitid and process groups")
def test_a_tensorboard_that_exited_at_once_is_never_signalled_once_reaped(tmp_path):
    # A new session leader may have its pid by the end of the sweep: signalling that group would kill it.
    platform = WatchedSignals()
    server = ml.TensorBoardProcess(["sh", "-c", "exit 3"], tmp_path / "tensorboard.log", platform)
    wait_until(lambda: server.poll() is not None, 30)
    assert server.poll() == 3
    server.terminate()
    assert [reaped for _, reaped in platform.sent] == [False]  # its group, once, while it was a zombie


@pytest.mark.skipif(not LINUX, reason="waitid and process groups")
def test_a_live_tensorboard_is_stopped_with_its_group_and_never_signalled_once_reaped(tmp_path):
    platform = WatchedSignals()
    server = ml.TensorBoardProcess(["sleep", "60"], tmp_path / "tensorboard.log", platform)
    server.terminate()
    assert server.poll() == -signal.SIGTERM
    assert platform.sent == [(signal.SIGTERM, False), (signal.SIGKILL, False)]  # the data server, if it lingers
    server.terminate()
    assert platform.sent == [(signal.SIGTERM, False), (signal.SIGKILL, False)]
