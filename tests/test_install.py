"""scripts/install_mlagents.py's decisions, and the fix it adds on Python 3.12 and later.

That the fix lets the real trainer train, export and resume on Python 3.12 and
3.13 is checked by `make check-pythons` (it downloads torch for each: GBs, so
not here); this file checks its mechanism on the Python the tests run on.
"""

import subprocess
import sys
import types
from pathlib import Path

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import install_mlagents as install  # noqa: E402
import mlagents_current_python_fix as fix  # noqa: E402


@pytest.mark.parametrize("version, recipe", [
    ((3, 10, 5), "plain"), ((3, 10, 13), "no-deps"), ((3, 11, 7), "no-deps"), ((3, 12, 1), "current"), ((3, 13, 0), "current"),
])
def test_each_python_gets_its_recipe(version, recipe):
    assert install.choose_recipe(version) == recipe


@pytest.mark.parametrize("version, message", [
    ((3, 9, 18), "Python 3.9 is too old for mlagents 1.1.0: run this script with Python 3.10 or 3.11"),
    ((3, 14, 0), "Python 3.14.0 is not supported: mlagents 1.1.0 was tried up to Python 3.13; "
                 "run this script with Python 3.10 to 3.13"),
])
def test_pythons_outside_the_tried_ones_are_refused_with_a_reason(version, message):
    with pytest.raises(install.InstallError) as refused:
        install.choose_recipe(version)
    assert str(refused.value) == message


def test_the_current_recipe_installs_onnx_without_its_protobuf_4_requirement():
    pip = ["py", "-m", "pip", "install", "--disable-pip-version-check", "-c", "c.txt"]
    commands = install.pip_commands("current", Path("py"), Path("c.txt"), quiet=False)
    deps = [name for name in install.RECIPE_DEPENDENCIES if name not in ("torch", "onnx")] + ["typing_extensions"]
    assert commands == [pip + ["torch"], pip + deps, pip + ["--no-deps", "onnx"],
                        pip + ["--no-deps", "--ignore-requires-python", "mlagents==1.1.0", "mlagents-envs==1.1.0"]]


def test_only_the_current_recipe_adds_the_current_python_fix():
    names = lambda recipe: [name for name, _ in install.fix_files(recipe)]  # noqa: E731
    assert names("no-deps") == ["mlagents_onnx_export_fix.py", "mlagents_onnx_export_fix.pth"]
    assert names("current") == names("no-deps") + ["mlagents_current_python_fix.py", "mlagents_current_python_fix.pth"]
    current = dict(install.fix_files("current"))
    assert current["mlagents_current_python_fix.py"] == (ROOT / "scripts" / "mlagents_current_python_fix.py").read_text()
    assert current["mlagents_current_python_fix.pth"] == "import mlagents_current_python_fix\n"


def test_the_numpy_aliases_are_set_only_where_numpy_lacks_them(monkeypatch):
    stub = types.ModuleType("numpy")
    stub.long = "numpy's own"
    monkeypatch.setitem(sys.modules, "numpy", stub)
    fix.numpy_aliases(None)
    assert (stub.float, stub.long) == (float, "numpy's own")


def test_training_status_json_writes_numpy_scalars_as_numbers():
    import io

    import numpy

    out = io.StringIO()
    fix.JsonOfNumpy().dump({"reward": numpy.float32(0.5), "steps": numpy.int64(7)}, out, indent=None)
    assert out.getvalue() == '{"reward": 0.5, "steps": 7}'
    with pytest.raises(TypeError, match="Object of type object is not JSON serializable"):
        fix.JsonOfNumpy().dumps({"x": object()})


HOOKED = """
import sys
sys.path.insert(0, {scripts!r})
import mlagents_current_python_fix
import mlagents.plugins.trainer_type as trainer_type, mlagents.plugins.stats_writer as stats_writer
import mlagents.trainers.training_status as training_status
import mlagents.trainers.buffer
kinds, _ = trainer_type.register_trainer_plugins()
print(type(trainer_type.importlib_metadata).__name__, type(stats_writer.importlib_metadata).__name__,
      type(training_status.json).__name__, sorted(kinds))
"""


@pytest.mark.parametrize("switch, expected", [
    ("1", "EntryPointsByGroup EntryPointsByGroup JsonOfNumpy ['poca', 'ppo', 'sac']"),
    ("0", "module module module ['poca', 'ppo', 'sac']"),  # MLAGENTS_CURRENT_PYTHON_FIX=0: nothing patched
])
def test_the_hook_patches_mlagents_modules_as_they_are_imported(switch, expected):
    pytest.importorskip("mlagents.trainers")
    done = subprocess.run([sys.executable, "-c", HOOKED.format(scripts=str(ROOT / "scripts"))], capture_output=True,
                          text=True, timeout=120, env={**__import__("os").environ, "MLAGENTS_CURRENT_PYTHON_FIX": switch})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == expected
