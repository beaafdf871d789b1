"""benchmarks.overhead: per-call costs of tiny ops, checked against torch before timing."""

from __future__ import annotations

import json

import pytest

from benchmarks import overhead


def _ratio_bounds(a, b, half=0.05, x_half=0.005):
    """The range a ratio may take when a and b were rounded to 0.1 and the ratio to 0.01.

    x_torch is computed before rounding: 5.45 / 1.725 = 3.16, but 5.5 / 1.7 = 3.24.
    """
    return (a - half) / (b + half) - x_half, (a + half) / (b - half) + x_half


def test_overhead_writes_one_row_per_op_and_the_batch1_step(tmp_path, capsys):
    out = tmp_path / "ov.json"
    assert overhead.main(["--calls", "5", "--steps", "2", "--out", str(out)]) == 0
    payload = json.loads(out.read_text())
    rows = {r["op"]: r for r in payload["rows"]}
    assert set(rows) == {"conv2d", "conv2d_backward", "max_pool2d", "avg_pool2d", "relu",
                         "linear"}
    for r in rows.values():
        assert min(r["F_us"], r["backend_us"], r["torch_us"]) > 0
        # each of the three was rounded to 0.1 on its own: 0.05 + 0.05 + 0.05 apart at most
        assert r["F_adds_us"] == pytest.approx(r["F_us"] - r["backend_us"], abs=0.151)
        low, high = _ratio_bounds(r["F_us"], r["torch_us"])
        assert low <= r["x_torch"] <= high
    step = payload["lenet5_step_batch1_ms"]
    assert step["x_torch"] == pytest.approx(step["numba"] / step["torch"], abs=0.01)
    assert payload["command"].startswith("python -m benchmarks.overhead")
    assert "conv2d_backward" in capsys.readouterr().out


def test_a_backend_result_that_differs_from_torch_stops_the_run(monkeypatch, tmp_path):
    ops = overhead._ops()
    ours, backend, theirs = ops["relu"]
    ops["relu"] = (ours, lambda: backend() + 1, theirs)
    monkeypatch.setattr(overhead, "_ops", lambda: ops)
    with pytest.raises(AssertionError):
        overhead.main(["--calls", "2", "--steps", "2", "--out", str(tmp_path / "x.json")])
    assert not (tmp_path / "x.json").exists()
