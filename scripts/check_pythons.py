#!/usr/bin/env python3
"""Check the real trainer on other Pythons: install ML-Agents for each, run the demo sweep, check every model.

    python scripts/check_pythons.py [PYTHON ...]     (make check-pythons)

Default: python3.10, python3.12 and python3.13, found on PATH or under pyenv.
For each it runs scripts/install_mlagents.py into .venvs/<major.minor>/ (kept,
so a second check reuses it), then scripts/demo.py in a fresh folder, and checks
that the sweep exited 0, that every run exported its model and wrote
run_logs/training_status.json. It prints one line per Python and a table.

Not part of `make test`: torch for these Pythons comes from the package
registry, a CUDA build of several GB per virtualenv.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ["python3.10", "python3.12", "python3.13"]
RUNS = 4  # examples/MoveToTarget/sweep.yaml


def runs(python: str) -> bool:
    try:
        return subprocess.run([python, "-c", "pass"], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def find(name: str) -> Optional[str]:
    """A Python by name that runs: on PATH, else the newest pyenv install of that version.

    (pyenv's shim for a version that is not selected is on PATH but fails.)
    """
    version = name.replace("python", "")
    versions = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = [shutil.which(name)] + [str(path / "bin" / "python") for path in
                                         reversed(sorted(versions.glob(f"{version}.*")) if versions.is_dir() else [])]
    return next((candidate for candidate in candidates if candidate and runs(candidate)), None)


def size_gb(folder: Path) -> float:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file() and not path.is_symlink()) / 1e9


def check(python: str) -> List[str]:
    """One row: Python, install time, sweep time, venv size, result."""
    version = subprocess.run([python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                             capture_output=True, text=True).stdout.strip()
    venv = ROOT / ".venvs" / version.rsplit(".", 1)[0]
    began = time.monotonic()
    installed = subprocess.run([python, str(ROOT / "scripts" / "install_mlagents.py"), "--venv", str(venv), "--quiet"],
                               capture_output=True, text=True)
    install_s = time.monotonic() - began
    if installed.returncode != 0:
        last = (installed.stderr.strip().splitlines() or ["no output"])[-1]
        return [version, f"{install_s:.0f} s", "", "", f"install failed: {last}"]
    folder = Path(tempfile.mkdtemp(prefix=f"check-{version}-"))
    began = time.monotonic()
    demo = subprocess.run([python, str(ROOT / "scripts" / "demo.py"), "--venv", str(venv), "--run-id", "check"],
                          cwd=folder, capture_output=True, text=True)
    sweep_s = time.monotonic() - began
    problems = [] if demo.returncode == 0 else [f"the sweep exited {demo.returncode}"]
    for n in range(RUNS):
        run = folder / "results" / f"check-{n}"
        if not (run / "MoveToTarget.onnx").is_file():
            problems.append(f"check-{n} has no model")
        try:
            json.loads((run / "run_logs" / "training_status.json").read_text())
        except (OSError, ValueError):
            problems.append(f"check-{n} has no training_status.json")
    if problems:
        (folder / "demo.log").write_text(demo.stdout + demo.stderr)
        result = "; ".join(problems) + f" (output: {folder / 'demo.log'})"
    else:
        shutil.rmtree(folder, ignore_errors=True)
        result = f"ok: {RUNS} runs, every model exported"
    return [version, f"{install_s:.0f} s", f"{sweep_s:.0f} s", f"{size_gb(venv):.1f} GB", result]


def main(argv: Optional[Sequence[str]] = None) -> int:
    names = list(argv if argv is not None else sys.argv[1:]) or DEFAULT
    rows = []
    for name in names:
        python = find(name)
        row = check(python) if python else [name, "", "", "", "not found"]
        print("  ".join(row), flush=True)
        rows.append(row)
    header = ["Python", "install", "demo sweep", "virtualenv", "result"]
    print("\n| " + " | ".join(header) + " |\n|" + " --- |" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0 if all(row[-1].startswith("ok") for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
