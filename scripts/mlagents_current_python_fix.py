"""Make mlagents 1.1.0 train on Python 3.12 and later, with numpy 2.

Installed by scripts/install_mlagents.py, with mlagents_current_python_fix.pth,
on Python 3.12 and later, where mlagents' numpy<1.24 pin has no wheel.
Three things break there; each is patched as the mlagents module that needs
it is imported, and nothing else changes:

1. mlagents/trainers/buffer.py names np.float (gone since numpy 1.24) in a
   signature, so importing it fails: numpy.float is set to float first.
2. mlagents/plugins/trainer_type.py and stats_writer.py index
   importlib.metadata.entry_points() by group, which Python 3.12 no longer
   allows: those two modules get an importlib.metadata whose entry_points()
   is a mapping of group to entry points again.
3. numpy 2 keeps float32 where numpy 1 gave float64 (NEP 50), so the reward
   that run_logs/training_status.json records is a numpy float32, which json
   cannot write, and the run ends with exit 1: that module's json writes
   numpy scalars as Python numbers.

Set MLAGENTS_CURRENT_PYTHON_FIX=0 to disable it.
"""

import os
import sys


def numpy_aliases(module):
    """Before mlagents.trainers.buffer runs: the aliases numpy 1.24 removed."""
    import numpy

    for name, value in (("float", float), ("long", int)):
        try:
            getattr(numpy, name)
        except AttributeError:
            setattr(numpy, name, value)


class EntryPointsByGroup:
    """importlib.metadata, but entry_points() is a mapping of group -> entry points, as before Python 3.12."""

    def __getattr__(self, name):
        import importlib.metadata

        return getattr(importlib.metadata, name)

    @staticmethod
    def entry_points():
        import importlib.metadata

        found = importlib.metadata.entry_points()
        return {group: found.select(group=group) for group in found.groups}


def entry_points_by_group(module):
    module.importlib_metadata = EntryPointsByGroup()


class JsonOfNumpy:
    """json, writing numpy scalars (numpy 2's float32 rewards) as the Python numbers they hold."""

    def __getattr__(self, name):
        import json

        return getattr(json, name)

    @staticmethod
    def _plain(value):
        if hasattr(value, "item"):
            return value.item()
        raise TypeError(f"Object of type {value.__class__.__name__} is not JSON serializable")

    def dump(self, obj, fp, **options):
        import json

        options.setdefault("default", self._plain)
        return json.dump(obj, fp, **options)

    def dumps(self, obj, **options):
        import json

        options.setdefault("default", self._plain)
        return json.dumps(obj, **options)


def json_of_numpy(module):
    module.json = JsonOfNumpy()


BEFORE = {"mlagents.trainers.buffer": numpy_aliases}
AFTER = {
    "mlagents.plugins.trainer_type": entry_points_by_group,
    "mlagents.plugins.stats_writer": entry_points_by_group,
    "mlagents.trainers.training_status": json_of_numpy,
}


class _PatchAround:
    """Loader wrapper: a patch before the real loader runs the module, another after."""

    def __init__(self, loader, name):
        self._loader, self._name = loader, name

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        for patches in (BEFORE, None, AFTER):
            if patches is None:
                self._loader.exec_module(module)
            elif self._name in patches:
                try:
                    patches[self._name](module)
                except Exception as exc:  # never break the trainer over this
                    sys.stderr.write("mlagents_current_python_fix: %s not patched: %r\n" % (self._name, exc))

    def __getattr__(self, name):
        return getattr(self._loader, name)


class _Hook:
    """Meta path finder that answers only for the modules above, once each."""

    def __init__(self):
        self.waiting = set(BEFORE) | set(AFTER)

    def find_spec(self, name, path=None, target=None):
        if name not in self.waiting:
            return None
        self.waiting.discard(name)
        from importlib.machinery import PathFinder

        spec = PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return None
        spec.loader = _PatchAround(spec.loader, name)
        return spec


if os.environ.get("MLAGENTS_CURRENT_PYTHON_FIX", "1") != "0" and not any(
    type(f).__name__ == "_Hook" and type(f).__module__ == __name__ for f in sys.meta_path
):
    sys.meta_path.insert(0, _Hook())
