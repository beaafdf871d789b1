"""minitorch_cnn.memory: freed buffers stay in the process, so a repeated step does not fault."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from minitorch_cnn import memory

STEPS = """
import resource, sys
import numpy as np
from minitorch_cnn.memory import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
counts = []
for step in range(4):  # a "training step": 32 buffers of 1 MiB, written, then all freed
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    arrays = [np.ones(2**18, np.float32) for _ in range(32)]
    del arrays
    counts.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(*counts)
"""


def _faults_per_step(mode: str) -> list[int]:
    out = subprocess.run([sys.executable, "-c", STEPS, mode], capture_output=True, text=True,
                         check=True).stdout
    return [int(v) for v in out.split()]


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt only")
def test_repeated_steps_reuse_freed_memory_without_page_faults():
    kept = _faults_per_step("keep")
    pages = 32 * 2**20 // 4096  # one step's 32 MiB, in 4 KiB pages
    assert max(kept[1:]) < pages // 8, kept  # after the first step: its pages, reused
    # glibc's default gives the 32 MiB back after every step (here: ~8200 faults a step;
    # a kernel with transparent huge pages on the heap may fault less, so not asserted)
    print("default:", _faults_per_step("default"), "kept:", kept)


def test_keep_freed_memory_rejects_bad_limits():
    with pytest.raises(TypeError, match="limit_bytes: expected an int, got float"):
        memory.keep_freed_memory(1.5)
    with pytest.raises(TypeError, match="limit_bytes"):
        memory.keep_freed_memory(True)
    with pytest.raises(ValueError, match=r"limit_bytes: expected 0 < limit_bytes < 2\*\*31"):
        memory.keep_freed_memory(0)
    with pytest.raises(ValueError, match="got 2147483648"):
        memory.keep_freed_memory(2**31)


def test_keep_freed_memory_is_a_no_op_without_glibc(monkeypatch):
    monkeypatch.setattr(memory, "_libc", lambda: None)
    assert memory.keep_freed_memory() is False
