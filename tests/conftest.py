"""Loads the hyphenated script once, under the name mlagents_learn."""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "mlagents-learn.py"

spec = importlib.util.spec_from_file_location("mlagents_learn", SCRIPT)
mlagents_learn = importlib.util.module_from_spec(spec)
sys.modules["mlagents_learn"] = mlagents_learn
spec.loader.exec_module(mlagents_learn)


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """A test's own working folder, where stand-in trainers keep their records (records/)."""
    (tmp_path / "records").mkdir()
    monkeypatch.setenv("STAND_IN_RECORDS", str(tmp_path / "records"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def real(tmp_path, monkeypatch):
    """A folder for a sweep of real processes (records/ and results/, the working folder) and a real TensorBoard
    over its results, reloading every second; the summary waits 2 s for TensorBoard's last points, not 6."""
    from helpers import TensorBoardServer

    (tmp_path / "records").mkdir()
    (tmp_path / "results").mkdir()
    monkeypatch.setenv("STAND_IN_RECORDS", str(tmp_path / "records"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(mlagents_learn, "TENSORBOARD_SETTLE", 2.0)
    with TensorBoardServer(str(tmp_path / "results"), reload_interval=1) as board:
        yield tmp_path, board
