"""benchmarks.compare: a slowdown is flagged only when it exceeds the run-to-run noise."""

from __future__ import annotations

import json

import pytest

from benchmarks.compare import compare, main


def _write(path, ratios: dict[str, float]):
    rows = [{"layer": "L", "op": "forward", "backend": "torch", "ratio_to_torch": 1.0,
             "median_ms": 1.0}]
    rows += [{"layer": layer, "op": "forward", "backend": "numba", "ratio_to_torch": ratio,
              "median_ms": ratio} for layer, ratio in ratios.items()]
    path.write_text(json.dumps({"results": rows}))
    return path


def test_changes_are_judged_against_the_spread_of_repeated_runs(tmp_path):
    before = [_write(tmp_path / "b1.json", {"L": 1.00, "M": 1.00}),
              _write(tmp_path / "b2.json", {"L": 1.10, "M": 1.00})]
    after = [_write(tmp_path / "a1.json", {"L": 1.12, "M": 1.30}),
             _write(tmp_path / "a2.json", {"L": 1.08, "M": 1.30})]
    rows = {r["layer"]: r for r in compare(before, after)}
    assert set(rows) == {"L", "M"}  # torch's own rows are not compared
    assert rows["L"]["noise"] == pytest.approx(0.10)
    assert rows["L"]["change"] == pytest.approx(1.10 / 1.05 - 1, abs=1e-4)
    assert not rows["L"]["slower"]  # +4.8% within a 10% spread
    assert rows["M"]["slower"] and rows["M"]["change"] == pytest.approx(0.30)


def test_a_file_of_another_kind_is_refused_by_name(tmp_path):
    wrong = tmp_path / "x.json"
    wrong.write_text(json.dumps({"something": []}))
    good = _write(tmp_path / "g.json", {"L": 1.0})
    with pytest.raises(ValueError, match="x.json: expected a 'results' or 'rows' list"):
        main(["--before", str(wrong), "--after", str(good)])
