"""Test configuration: hypothesis profiles and the CUDA simulator switch.

Profiles (choose with ``HYPOTHESIS_PROFILE``; ``make test`` uses ``ci``):

- ``ci``: bounded and deterministic, what CI runs on 2 cores;
- ``dev``: few examples, for a quick local loop (the default outside CI);
- ``thorough``: many examples, for a long run before a release.

Without a GPU, the Numba CUDA simulator is switched on *before* anything imports
``numba.cuda``, so the ``cuda`` backend is tested everywhere; the ``strict_device_arrays``
fixture cuts the simulator's device arrays down to a real GPU's (no NumPy methods, no
arithmetic), for the tests that run layers and models on the device.
"""

import os

import pytest

if "NUMBA_ENABLE_CUDASIM" not in os.environ and not os.path.exists("/dev/nvidiactl"):
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"

from hypothesis import HealthCheck, settings  # noqa: E402

_common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", max_examples=50, derandomize=True, print_blob=True, **_common)
settings.register_profile("dev", max_examples=10, **_common)
settings.register_profile("thorough", max_examples=500, **_common)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def _device_array_api() -> frozenset[str]:
    """The attributes a real ``numba.cuda`` DeviceNDArray has, read off numba-cuda's source.

    Its methods and the attributes its ``__init__`` sets, of ``DeviceNDArrayBase`` and
    ``DeviceNDArray``: no ``mean``, ``sum`` or ``astype``, and no arithmetic operators. The
    source is parsed rather than imported: under the simulator ``numba.cuda`` is the
    simulator's.
    """
    import ast
    import importlib.util
    from pathlib import Path

    origin = importlib.util.find_spec("numba_cuda").submodule_search_locations[0]
    source = Path(origin, "numba", "cuda", "cudadrv", "devicearray.py").read_text()
    names = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.ClassDef) and node.name in ("DeviceNDArrayBase", "DeviceNDArray"):
            for item in ast.walk(node):
                if isinstance(item, ast.FunctionDef):
                    names.add(item.name)
                elif isinstance(item, ast.Attribute) and isinstance(item.value, ast.Name) \
                        and item.value.id == "self" and isinstance(item.ctx, ast.Store):
                    names.add(item.attr)
    return frozenset(names)


@pytest.fixture
def strict_device_arrays(monkeypatch):
    """The simulator's device arrays, cut down to what a real GPU's offer.

    The simulator's ``FakeCUDAArray`` wraps a NumPy array and hands on any attribute and
    operator to it, so ``x.mean()`` or ``x - mean`` on a "device array" works there and fails
    on a GPU. Here an attribute a real DeviceNDArray lacks raises AttributeError and an
    arithmetic operator TypeError, so NumPy code reached with a device array fails as it
    would on a GPU.
    """
    from numba import config

    if not config.ENABLE_CUDASIM:  # real device arrays are strict already
        return
    from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray

    api = _device_array_api()
    wrapped = FakeCUDAArray.__getattr__

    def getattr_(self, name):
        if name not in api and not name.startswith("_"):  # "_": the simulator's own
            raise AttributeError(f"a real device array has no attribute {name!r}")
        return wrapped(self, name)

    def no_arithmetic(self, *args):
        raise TypeError("a real device array has no arithmetic operators")

    monkeypatch.setattr(FakeCUDAArray, "__getattr__", getattr_)
    for op in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "neg"):
        if hasattr(FakeCUDAArray, f"__{op}__"):
            monkeypatch.setattr(FakeCUDAArray, f"__{op}__", no_arithmetic)
