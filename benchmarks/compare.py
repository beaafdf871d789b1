"""Compare benchmark runs of two versions of the code, layer by layer, against their noise.

    python -m benchmarks.compare --before A1.json A2.json --after B1.json B2.json
                                 [--out comparison.json]

Each file is a JSON of ``benchmarks.ops`` or ``benchmarks.train_step``. A row is matched
across files by (layer or model, op, backend). The figure compared is the row's
``ratio_to_torch``: our median over the median of torch timed in the same interleaved pair,
so a machine that is slower as a whole during one run (a busy neighbour, a clock change)
moves both sides and cancels out. For each row:

- ``noise``: how far two runs of the *same* code disagree, the largest of
  ``max/min - 1`` over the before runs and over the after runs (0 with one run each);
- ``change``: ``mean(after ratios) / mean(before ratios) - 1`` (negative: faster);
- ``slower``: ``change > noise``, a slowdown larger than the run-to-run spread.

Prints a fixed-width table and, with ``--out``, writes the rows, the machine of the first
file and the commands as JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from benchmarks.timing import write_json


def _rows(path: Path) -> dict[tuple[str, str, str], dict]:
    """The timed rows of one benchmark JSON, keyed by (layer or model, op, backend)."""
    data = json.loads(path.read_text())
    rows = data.get("results") or data.get("rows")
    if not rows:
        raise ValueError(f"{path}: expected a 'results' or 'rows' list (a benchmarks.ops or "
                         f"benchmarks.train_step JSON), found keys {sorted(data)}")
    return {(r.get("layer") or r["model"], r.get("op", "step"), r["backend"]): r for r in rows}


def _spread(values: list[float]) -> float:
    """``max/min - 1`` of repeated measurements of one thing (0 for a single one)."""
    return max(values) / min(values) - 1 if len(values) > 1 else 0.0


def compare(before: list[Path], after: list[Path]) -> list[dict]:
    """One row per (layer, op, backend) present in every file, torch's own rows left out."""
    runs = {"before": [_rows(p) for p in before], "after": [_rows(p) for p in after]}
    keys = set.intersection(*(set(r) for side in runs.values() for r in side))
    out = []
    for key in sorted(keys):
        if key[2] == "torch":
            continue
        ratios = {side: [r[key]["ratio_to_torch"] for r in rs] for side, rs in runs.items()}
        medians = {side: [r[key]["median_ms"] for r in rs] for side, rs in runs.items()}
        noise = max(_spread(ratios["before"]), _spread(ratios["after"]))
        change = statistics.mean(ratios["after"]) / statistics.mean(ratios["before"]) - 1
        out.append({
            "layer": key[0], "op": key[1], "backend": key[2],
            "before_ratio_to_torch": ratios["before"], "after_ratio_to_torch": ratios["after"],
            "before_median_ms": medians["before"], "after_median_ms": medians["after"],
            "noise": round(noise, 4), "change": round(change, 4), "slower": change > noise,
        })
    return out


def format_rows(rows: list[dict]) -> str:
    """A fixed-width table: ratios to torch per run, noise, change, and the verdict."""
    lines = [f"{'layer':40s} {'op':8s} {'backend':7s} {'before x torch':>16s} "
             f"{'after x torch':>16s} {'noise':>6s} {'change':>7s}"]
    for r in rows:
        before = " ".join(f"{v:.2f}" for v in r["before_ratio_to_torch"])
        after = " ".join(f"{v:.2f}" for v in r["after_ratio_to_torch"])
        flag = "  SLOWER" if r["slower"] else ""
        lines.append(f"{r['layer'][:40]:40s} {r['op']:8s} {r['backend']:7s} {before:>16s} "
                     f"{after:>16s} {r['noise']:6.1%} {r['change']:+7.1%}{flag}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", nargs="+", type=Path, required=True)
    parser.add_argument("--after", nargs="+", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=None, help="write the comparison as JSON")
    args = parser.parse_args(argv)
    rows = compare(args.before, args.after)
    print(format_rows(rows))
    slower = [r for r in rows if r["slower"]]
    print(f"\n{len(rows)} rows; slower than before by more than the run-to-run noise: "
          f"{len(slower)}")
    if args.out:
        first = json.loads(args.before[0].read_text())
        write_json(args.out, {
            "command": "python -m benchmarks.compare " + " ".join(sys.argv[1:] if argv is None
                                                                   else argv),
            "machine": first.get("machine"),
            "before": [str(p) for p in args.before], "after": [str(p) for p in args.after],
            "rows": rows,
        })
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
