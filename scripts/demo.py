#!/usr/bin/env python3
"""The demo: a real 4-run sweep of the bundled headless environment, the same on Windows, macOS and Linux.

    python scripts/demo.py [--venv DIR] [--run-id demo] [more mlagents-learn.py flags]

It installs ML-Agents 1.1.0 and the demo environment into the virtualenv
(scripts/install_mlagents.py; a second run only checks them), then runs, with
that virtualenv's Python and mlagents-learn:

    mlagents-learn.py examples/MoveToTarget/sweep.yaml --env=<venv>/<bin>/MoveToTarget
        --num-envs 2 --run-id demo --trainer <venv>/<bin>/mlagents-learn --force

Its exit status is the sweep's. `make demo` runs this.
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import List, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
from install_mlagents import DEFAULT_VENV, REPO_ROOT, venv_layout  # noqa: E402

SCRIPT = REPO_ROOT / "mlagents-learn.py"
CONFIG = REPO_ROOT / "examples" / "MoveToTarget" / "sweep.yaml"


def sweep_command(venv_root: Path, run_id: str, extra: Sequence[str]) -> List[str]:
    """The demo sweep's command line, with the virtualenv's own programs."""
    venv = venv_layout(venv_root)
    return [str(venv.python), str(SCRIPT), str(CONFIG), f"--env={venv.demo_env}", "--num-envs", "2",
            "--run-id", run_id, "--trainer", str(venv.mlagents_learn), "--force", *extra]


def wait(proc: "subprocess.Popen[bytes]") -> int:
    """Wait for the sweep. A Ctrl-C reaches it too (same console) and it stops its runs itself:
    this process must only keep waiting, never kill it."""
    while True:
        try:
            return proc.wait()
        except KeyboardInterrupt:
            continue


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="demo.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="virtualenv (default: %(default)s)")
    parser.add_argument("--run-id", default="demo", help="the sweep's run id (default: demo)")
    args, extra = parser.parse_known_args(argv)
    root = args.venv.expanduser().absolute()
    installer = [sys.executable, str(REPO_ROOT / "scripts" / "install_mlagents.py"), "--venv", str(root), "--quiet"]
    if subprocess.run(installer, stdout=subprocess.DEVNULL).returncode != 0:
        return 1  # the installer said why, in one line
    code = wait(subprocess.Popen(sweep_command(root, args.run_id, extra), cwd=os.getcwd()))
    if "--dry-run" not in extra and "--generate-only" not in extra:
        venv = venv_layout(root)
        results = Path("results")
        print()
        print(f"Results:  {results / (args.run_id + '-<n>')} (models: MoveToTarget.onnx)")
        print(f"Summary:  {results / (args.run_id + '-sweep') / 'summary.md'} (and summary.csv, config_info.txt)")
        tensorboard = venv.python.with_name("tensorboard.exe" if os.name == "nt" else "tensorboard")
        print(f"Curves:   {tensorboard} --logdir results   then open http://localhost:6006")
    return code


if __name__ == "__main__":
    sys.exit(main())
