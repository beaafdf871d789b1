"""Test configuration: hypothesis profiles and the CUDA simulator switch.

Profiles (choose with ``HYPOTHESIS_PROFILE``; ``make test`` uses ``ci``):

- ``ci``: bounded and deterministic, what CI runs on 2 cores;
- ``dev``: few examples, for a quick local loop (the default outside CI);
- ``thorough``: many examples, for a long run before a release.

Without a GPU, the Numba CUDA simulator is switched on *before* anything imports
``numba.cuda``, so the ``cuda`` backend is tested everywhere.
"""

import os

if "NUMBA_ENABLE_CUDASIM" not in os.environ and not os.path.exists("/dev/nvidiactl"):
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"

from hypothesis import HealthCheck, settings  # noqa: E402

_common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", max_examples=50, derandomize=True, print_blob=True, **_common)
settings.register_profile("dev", max_examples=10, **_common)
settings.register_profile("thorough", max_examples=500, **_common)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
