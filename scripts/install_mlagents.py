#!/usr/bin/env python3
"""Install mlagents 1.1.0 (mlagents-learn) into a virtualenv, ready to train.

usage: python scripts/install_mlagents.py [--venv DIR] [--force] [--dry-run] [--quiet]

The virtualenv (default: .venv at the repository root) is made with the Python
that runs this script.  On Python 3.10.1 to 3.10.12, which mlagents 1.1.0
supports, it is a plain `pip install mlagents==1.1.0`.  On 3.10.0, 3.10.13+
and 3.11 mlagents' metadata refuses the interpreter and its grpcio pin
(<=1.48.2) has no 3.11 wheel, so mlagents and mlagents-envs go in with
--no-deps --ignore-requires-python and their dependencies are installed by
name.  Every pip call uses scripts/mlagents-constraints.txt, which holds the
versions (install anything else into the venv with `-c` that file too).
On Python 3.12 and 3.13 numpy 1.23.5 has no wheel: the same recipe installs
numpy 2 and adds scripts/mlagents_current_python_fix.py, an import hook that
patches the three places where mlagents 1.1.0 breaks there (see that file).
Python 3.14 and later are refused: not tried.

Then it adds the ONNX export fix (see FIX_MODULE_SOURCE), installs the demo
environment (examples/MoveToTarget) and checks that `mlagents-learn --help`
runs.  A second run finds everything in place and
only re-checks (a couple of seconds).  Progress goes to stderr; the last line,
on stdout, is the path of the virtualenv's mlagents-learn.

Exit status: 0 done, 1 failed (one line `error: ...` on stderr), 2 bad usage.
"""

import sys

# Checked before anything else so that an old interpreter gets one clear line
# (the rest of this file only has to parse there, not run).
MIN_PYTHON = (3, 10)
if sys.version_info < MIN_PYTHON:
    sys.stderr.write(
        "error: Python %d.%d is too old for mlagents 1.1.0 (%s): run this script "
        "with Python 3.10 or 3.11\n" % (sys.version_info[0], sys.version_info[1], sys.executable)
    )
    sys.exit(1)

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import List, Optional, Sequence  # noqa: E402

# ---------------------------------------------------------------------------
# constants
# ---------------------------------------------------------------------------

MLAGENTS_VERSION = "1.1.0"
SCRIPT_DIR = Path(__file__).resolve().parent
REPO_ROOT = SCRIPT_DIR.parent
DEFAULT_VENV = REPO_ROOT / ".venv"
# The demo environment, installed into the venv as the console script
# MoveToTarget (editable: it runs the repository's own move_to_target.py).
DEMO_SOURCE = REPO_ROOT / "examples" / "MoveToTarget"
DEMO_NAME = "MoveToTarget"
DEMO_CHECK_SCRIPT = "import move_to_target; print(move_to_target.__file__)"
CONSTRAINTS = SCRIPT_DIR / "mlagents-constraints.txt"

# Dependencies installed by name when mlagents itself goes in with --no-deps;
# their versions come from the constraints file.  gym and pettingzoo
# (mlagents-envs' extras for other front ends) are not needed by mlagents-learn.
RECIPE_DEPENDENCIES = [
    "torch", "grpcio", "protobuf", "numpy", "h5py", "Pillow", "pyyaml",
    "tensorboard", "six", "attrs", "cattrs", "onnx", "cloudpickle", "filelock",
    "huggingface_hub", "setuptools", "requests",
]

FIX_MODULE = "mlagents_onnx_export_fix"
FIX_PTH = FIX_MODULE + ".pth"
# Python 3.12 and later: a module kept beside this script, copied with its .pth.
CURRENT_FIX = "mlagents_current_python_fix"
CURRENT_FIX_SOURCE = SCRIPT_DIR / (CURRENT_FIX + ".py")
NEWEST_TRIED = (3, 13)

# The export fix, installed as a module plus a .pth file in the venv's
# site-packages, so that the venv's unmodified `mlagents-learn` works and no
# file of mlagents itself is edited.
FIX_MODULE_SOURCE = '''\
"""Make mlagents 1.1.0 export its ONNX model under torch >= 2.9.

Installed by scripts/install_mlagents.py together with mlagents_onnx_export_fix.pth.

Why: since torch 2.9, torch.onnx.export() defaults to dynamo=True, the new
exporter, which needs the onnxscript package; onnxscript needs protobuf >= 4
and numpy 2, which mlagents 1.1.0 cannot run with.  mlagents calls
torch.onnx.export() without a dynamo argument, so mlagents-learn trains and then
exits 1 when it exports the model (at the end of training, or on Ctrl-C).
With dynamo=False the TorchScript exporter writes the model as before.

How: the .pth line imports this module at every interpreter start, so it stays
tiny and never imports torch itself: it only registers an import hook.  When a
process imports mlagents' model serialization module (only trainers do), the
hook wraps torch.onnx.export so that dynamo defaults to False; an explicit
dynamo argument still wins.  Set MLAGENTS_ONNX_EXPORT_FIX=0 to disable it.
"""

import os
import sys

TARGET = "mlagents.trainers.torch_entities.model_serialization"
MARKER = "_mlagents_dynamo_default_false"


def patch_torch_onnx_export():
    """Wrap torch.onnx.export so that dynamo defaults to False; returns what happened."""
    import torch.onnx

    export = torch.onnx.export
    if getattr(export, MARKER, False):
        return "patched"
    import inspect

    try:
        dynamo = inspect.signature(export).parameters.get("dynamo")
    except (TypeError, ValueError):
        return "not needed"
    if dynamo is None or dynamo.default is not True:
        return "not needed"  # an older torch: its default exporter works
    import functools

    @functools.wraps(export)
    def export_without_dynamo(*args, **kwargs):
        kwargs.setdefault("dynamo", False)
        return export(*args, **kwargs)

    setattr(export_without_dynamo, MARKER, True)
    torch.onnx.export = export_without_dynamo
    return "patched"


def status():
    """'patched', 'not needed' or 'inactive' (torch not imported yet, or hook disabled)."""
    torch = sys.modules.get("torch")
    if torch is None or "torch.onnx" not in sys.modules:
        return "inactive"
    if getattr(torch.onnx.export, MARKER, False):
        return "patched"
    try:
        import inspect

        dynamo = inspect.signature(torch.onnx.export).parameters.get("dynamo")
    except (TypeError, ValueError):
        return "not needed"
    return "inactive" if dynamo is not None and dynamo.default is True else "not needed"


class _PatchAfterLoad:
    """Loader wrapper: run the real loader, then patch torch (imported by then)."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        try:
            patch_torch_onnx_export()
        except Exception as exc:  # never break the trainer over this
            sys.stderr.write("mlagents_onnx_export_fix: not applied: %r\\n" % (exc,))

    def __getattr__(self, name):
        return getattr(self._loader, name)


class _Hook:
    """Meta path finder that only ever answers for TARGET, once."""

    def __init__(self):
        self.done = False

    def find_spec(self, name, path=None, target=None):
        if name != TARGET or self.done:
            return None
        self.done = True
        from importlib.machinery import PathFinder

        spec = PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return None
        spec.loader = _PatchAfterLoad(spec.loader)
        return spec


if os.environ.get("MLAGENTS_ONNX_EXPORT_FIX", "1") != "0" and not any(
    type(f).__name__ == "_Hook" and type(f).__module__ == __name__ for f in sys.meta_path
):
    sys.meta_path.insert(0, _Hook())
'''

# A .pth line that starts with "import" is executed by site.py at start-up.
FIX_PTH_SOURCE = "import " + FIX_MODULE + "\n"

# Run with the venv's Python: where its site-packages is, and which
# constraints its installed packages break.
CHECK_SCRIPT = r'''
import json, sys, sysconfig
import importlib.metadata as md
try:
    from packaging.requirements import Requirement
except ImportError:
    from pip._vendor.packaging.requirements import Requirement
problems = []
with open(sys.argv[1], encoding="utf-8") as fh:
    for line in fh:
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate():
            continue
        try:
            version = md.version(req.name)
        except md.PackageNotFoundError:
            problems.append(req.name + " is not installed")
            continue
        if not req.specifier.contains(version, prereleases=True):
            problems.append("%s %s is installed, %s wanted" % (req.name, version, req.specifier))
print(json.dumps({"purelib": sysconfig.get_paths()["purelib"],
                  "version": list(sys.version_info[:3]), "problems": problems}))
'''

# Run with the venv's Python after installing: mlagents' export path patched?
FIX_CHECK_SCRIPT = r'''
import sys
import mlagents.trainers.torch_entities.model_serialization
import mlagents_onnx_export_fix as fix
state = fix.status()
print(state)
if state not in ("patched", "not needed"):
    sys.exit(3)
'''
CURRENT_FIX_CHECK = r'''
import io, numpy
import mlagents.trainers.training_status as status
status.json.dump({"reward": numpy.float32(0.5)}, io.StringIO())
'''


# ---------------------------------------------------------------------------
# errors and data types
# ---------------------------------------------------------------------------


class InstallError(Exception):
    """An expected failure: main() prints it as one line and exits 1."""


@dataclass
class Venv:
    root: Path
    python: Path
    mlagents_learn: Path
    demo_env: Path  # what --env names: mlagents-learn adds .exe on Windows, .app/... on macOS
    demo_app: Optional[Path] = None  # macOS: the .app bundle's executable, a copy of the console script


@dataclass
class Health:
    purelib: Optional[Path]
    version: Sequence[int]
    problems: List[str]


# ---------------------------------------------------------------------------
# pure logic: which recipe, which commands
# ---------------------------------------------------------------------------


def choose_recipe(version: Sequence[int]) -> str:
    """'plain' where mlagents 1.1.0 installs as published, 'no-deps' where it needs the recipe."""
    major, minor, micro = version[0], version[1], version[2]
    if (major, minor) < MIN_PYTHON:
        raise InstallError(f"Python {major}.{minor} is too old for mlagents {MLAGENTS_VERSION}: "
                           "run this script with Python 3.10 or 3.11")
    if (major, minor) > NEWEST_TRIED:
        raise InstallError(f"Python {major}.{minor}.{micro} is not supported: mlagents {MLAGENTS_VERSION} "
                           f"was tried up to Python {NEWEST_TRIED[0]}.{NEWEST_TRIED[1]}; run this script "
                           "with Python 3.10 to 3.13")
    if (major, minor) == (3, 10) and 1 <= micro <= 12:
        return "plain"
    return "current" if (major, minor) >= (3, 12) else "no-deps"


def pip_commands(recipe: str, python: Path, constraints: Path, quiet: bool) -> List[List[str]]:
    """The pip invocations (argument lists) that install mlagents with the given recipe."""
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check",
           "-c", str(constraints)]
    if quiet:
        pip.append("-q")
    if recipe == "plain":
        # setuptools is named so that its pin (pkg_resources) also applies to
        # the copy that venv put there.
        return [pip + [f"mlagents=={MLAGENTS_VERSION}", "setuptools"]]
    # torch goes in alone: should a later step ever fail to resolve, pip's
    # backtracking must not start downloading other torch builds (GBs of CUDA).
    # mlagents comes last, so that pip's closing complaint lists only the
    # expected mismatches (grpcio, and the unused gym and pettingzoo).
    if recipe == "no-deps":
        return [
            pip + ["torch"],
            pip + [name for name in RECIPE_DEPENDENCIES if name != "torch"],
            pip + ["--no-deps", "--ignore-requires-python",
                   f"mlagents=={MLAGENTS_VERSION}", f"mlagents-envs=={MLAGENTS_VERSION}"],
        ]
    # "current" (Python 3.12 and later): the first onnx with wheels there (1.18)
    # declares protobuf>=4.25, which mlagents' generated protocol code cannot
    # run with; onnx itself works with protobuf 3.20.3 (torch's exporter needs
    # it), so it goes in without its declared dependencies, and with the one it
    # needs that nothing else brings.
    return [
        pip + ["torch"],
        pip + [name for name in RECIPE_DEPENDENCIES if name not in ("torch", "onnx")] + ["typing_extensions"],
        pip + ["--no-deps", "onnx"],
        pip + ["--no-deps", "--ignore-requires-python",
               f"mlagents=={MLAGENTS_VERSION}", f"mlagents-envs=={MLAGENTS_VERSION}"],
    ]


def venv_layout(root: Path, os_name: str = os.name, platform: str = sys.platform) -> Venv:
    """Where a virtualenv keeps its python, its console scripts and the demo environment on an OS.

    mlagents-learn looks for <env>.exe on Windows and for
    <env>.app/Contents/MacOS/<name> on macOS: --env names the same path on
    every OS, and each finds its own launcher there.
    """
    if os_name == "nt":
        scripts = root / "Scripts"
        return Venv(root, scripts / "python.exe", scripts / "mlagents-learn.exe", scripts / DEMO_NAME)
    scripts = root / "bin"
    app = scripts / f"{DEMO_NAME}.app" / "Contents" / "MacOS" / DEMO_NAME if platform == "darwin" else None
    return Venv(root, scripts / "python", scripts / "mlagents-learn", scripts / DEMO_NAME, app)


def demo_pip_command(python: Path, quiet: bool) -> List[str]:
    """pip's editable install of the demo environment (setuptools from the venv, no dependencies)."""
    command = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--no-deps",
               "--no-build-isolation", "-e", str(DEMO_SOURCE)]
    return command + (["-q"] if quiet else [])


# ---------------------------------------------------------------------------
# side effects: processes and files
# ---------------------------------------------------------------------------


def say(message: str) -> None:
    sys.stderr.write(f"install_mlagents: {message}\n")
    sys.stderr.flush()


def run(cmd: Sequence[str], what: str) -> None:
    """Run a command with its output on our stderr (stdout is kept for the final path)."""
    say("$ " + " ".join(cmd))
    try:
        code = subprocess.run(list(cmd), stdout=sys.stderr, stdin=subprocess.DEVNULL).returncode
    except OSError as exc:
        raise InstallError(f"{what} could not start ({exc})") from None
    if code != 0:
        raise InstallError(f"{what} failed with exit status {code} (see the output above)")


def create_venv(venv: Venv) -> None:
    if venv.root.exists() and any(venv.root.iterdir()):
        if not venv.python.exists():
            raise InstallError(f"{venv.root} exists but is not a virtualenv (no {venv.python}): "
                               "remove it or choose another --venv")
        return
    run([sys.executable, "-m", "venv", str(venv.root)], "creating the virtualenv")


def check_health(venv: Venv) -> Health:
    """Ask the venv's Python where site-packages is and which pins are not met."""
    try:
        proc = subprocess.run([str(venv.python), "-c", CHECK_SCRIPT, str(CONSTRAINTS)],
                              capture_output=True, text=True, stdin=subprocess.DEVNULL)
    except OSError as exc:
        return Health(None, (0, 0, 0), [f"{venv.python} does not run ({exc})"])
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return Health(None, (0, 0, 0), [f"checking the venv failed: {last}"])
    data = json.loads(proc.stdout)
    return Health(Path(data["purelib"]), data["version"], data["problems"])


def fix_files(recipe: str) -> List[tuple]:
    """(file name, text) of every fix the recipe needs in site-packages."""
    files = [(FIX_MODULE + ".py", FIX_MODULE_SOURCE), (FIX_PTH, FIX_PTH_SOURCE)]
    if recipe == "current":
        try:
            files += [(CURRENT_FIX + ".py", CURRENT_FIX_SOURCE.read_text(encoding="utf-8")),
                      (CURRENT_FIX + ".pth", "import " + CURRENT_FIX + "\n")]
        except OSError as exc:
            raise InstallError(f"{CURRENT_FIX_SOURCE} cannot be read ({exc}): it must sit beside this script") from None
    return files


def install_fix(purelib: Path, recipe: str) -> bool:
    """Write the fix modules and their .pth files; True if a file had to be (re)written."""
    changed = False
    for name, text in fix_files(recipe):
        path = purelib / name
        try:
            if path.is_file() and path.read_text(encoding="utf-8") == text:
                continue
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise InstallError(f"cannot write {path} ({exc})") from None
        changed = True
    return changed


def demo_installed(venv: Venv) -> bool:
    """True if the venv's MoveToTarget console script runs this repository's move_to_target.py."""
    launcher = venv.demo_env.with_suffix(".exe") if os.name == "nt" else venv.demo_env
    if not launcher.is_file() or (venv.demo_app is not None and not venv.demo_app.is_file()):
        return False
    try:
        proc = subprocess.run([str(venv.python), "-c", DEMO_CHECK_SCRIPT], capture_output=True, text=True,
                              stdin=subprocess.DEVNULL)
    except OSError:
        return False
    found = proc.stdout.strip()
    return proc.returncode == 0 and bool(found) and Path(found).resolve() == (DEMO_SOURCE / "move_to_target.py").resolve()


def install_demo(venv: Venv, quiet: bool) -> bool:
    """Install the demo environment if it is not in place (and its macOS .app); True if anything was done."""
    if demo_installed(venv):
        return False
    run(demo_pip_command(venv.python, quiet), "installing the demo environment")
    if venv.demo_app is not None:
        # The bundle's executable is a copy: mlagents-learn runs that file, and
        # the console script names its Python by absolute path.
        try:
            venv.demo_app.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(venv.demo_env, venv.demo_app)
            venv.demo_app.chmod(0o755)
        except OSError as exc:
            raise InstallError(f"cannot write {venv.demo_app} ({exc})") from None
    if not demo_installed(venv):
        raise InstallError(f"the demo environment is not in place after the install: {venv.demo_env}")
    return True


def verify(venv: Venv, recipe: str = "no-deps") -> None:
    """`mlagents-learn --help` runs and mlagents' export path gets the fix (both at once: ~2 s).

    On Python 3.12 and later, --help itself imports the buffer and the plugin
    registry (fixes 1 and 2), and the check also writes a numpy float32 the
    way training_status.json is written (fix 3).
    """
    if not venv.mlagents_learn.exists():
        raise InstallError(f"{venv.mlagents_learn} is missing after the install")
    quiet = dict(stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        help_proc = subprocess.Popen([str(venv.mlagents_learn), "--help"], **quiet)
        check = FIX_CHECK_SCRIPT + (CURRENT_FIX_CHECK if recipe == "current" else "")
        fix_proc = subprocess.Popen([str(venv.python), "-c", check], **quiet)
    except OSError as exc:
        raise InstallError(f"cannot run the virtualenv's programs ({exc})") from None
    help_out, help_err = help_proc.communicate()
    fix_out, fix_err = fix_proc.communicate()
    if help_proc.returncode != 0 or "--run-id" not in help_out:
        last = (help_err.strip().splitlines() or ["no output"])[-1]
        raise InstallError(f"`{venv.mlagents_learn} --help` failed (exit {help_proc.returncode}): {last}")
    if fix_proc.returncode != 0:
        last = ((fix_err or fix_out).strip().splitlines() or ["no output"])[-1]
        raise InstallError(f"the ONNX export fix is not active in {venv.root}: {last}")


# ---------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="install_mlagents.py",
        description=f"Install mlagents {MLAGENTS_VERSION} into a virtualenv made with this Python "
                    "and print the path of its mlagents-learn.")
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV,
                        help="virtualenv directory (default: %(default)s)")
    parser.add_argument("--force", action="store_true",
                        help="run the pip steps even if the virtualenv looks complete")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the recipe and the pip commands, change nothing")
    parser.add_argument("--quiet", "-q", action="store_true", help="pass -q to pip")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    started = time.monotonic()
    venv = venv_layout(args.venv.expanduser().absolute())
    try:
        recipe = choose_recipe(sys.version_info[:3])
        if not CONSTRAINTS.is_file():
            raise InstallError(f"{CONSTRAINTS} is missing: it must sit beside this script")
        commands = pip_commands(recipe, venv.python, CONSTRAINTS, args.quiet)
        if args.dry_run:
            say(f"Python {sys.version.split()[0]} ({sys.executable}): recipe '{recipe}'")
            if not venv.python.exists():
                say("$ " + " ".join([sys.executable, "-m", "venv", str(venv.root)]))
            for cmd in commands:
                say("$ " + " ".join(cmd))
            say(f"then write {FIX_MODULE}.py and {FIX_PTH} into site-packages, install the demo environment "
                f"(--env={venv.demo_env}) and check `{venv.mlagents_learn} --help`")
            say("$ " + " ".join(demo_pip_command(venv.python, args.quiet)))
            print(venv.mlagents_learn)
            return 0

        health = check_health(venv) if venv.python.exists() else None
        if health is not None and health.purelib is not None:
            if tuple(health.version[:2]) != tuple(sys.version_info[:2]):
                raise InstallError(
                    f"{venv.root} was made with Python {'.'.join(map(str, health.version))}, "
                    f"this is {sys.version.split()[0]}: remove it, or choose another --venv")
        packages_ok = health is not None and health.purelib is not None and not health.problems
        if packages_ok and not args.force:
            # Nothing for pip to do: (re)write the fix if it is not in place, then check.
            if install_fix(health.purelib, recipe):
                say(f"wrote the fixes into {health.purelib}")
            if install_demo(venv, args.quiet):
                say(f"installed the demo environment: --env={venv.demo_env}")
            verify(venv, recipe)
            say(f"already installed, checked in {time.monotonic() - started:.1f} s")
            print(venv.mlagents_learn)
            return 0

        if health is not None and health.problems:
            say("to fix: " + "; ".join(health.problems[:5])
                + (" ..." if len(health.problems) > 5 else ""))
        say(f"installing mlagents {MLAGENTS_VERSION} into {venv.root} "
            f"(Python {sys.version.split()[0]}, recipe '{recipe}')")
        create_venv(venv)
        for cmd in commands:
            run(cmd, "pip install")
        if recipe != "plain" and not args.quiet:  # --quiet hides the note this explains
            say("expected: pip's note that mlagents wants grpcio<=1.48.2, gym and pettingzoo "
                "(no 3.11 wheel for that grpcio; mlagents-learn needs neither of the others)")
        health = check_health(venv)
        if health.purelib is None or health.problems:
            raise InstallError("after pip, the virtualenv still does not match "
                               f"{CONSTRAINTS.name}: " + "; ".join(health.problems))
        install_fix(health.purelib, recipe)
        install_demo(venv, args.quiet)
        verify(venv, recipe)
        say(f"done in {time.monotonic() - started:.0f} s; the demo environment: --env={venv.demo_env}")
        print(venv.mlagents_learn)
        return 0
    except InstallError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted: run the script again to finish the install\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
