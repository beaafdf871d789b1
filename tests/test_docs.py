"""The docs run: every ```python block of docs/*.md and README.md, the links, the pictures.

- Each Markdown file's ```python blocks (fenced exactly so; ```text / ```console blocks are
  not run) are executed in order in one shared namespace, with the current directory a
  temporary folder: one test per file, named by its path.
- Every relative link of docs/*.md points at a file that exists; a link whose text is a
  backticked name and whose target is a .py file names a function, class or constant that
  file defines, so a renamed kernel breaks the test, not the docs.
- ``minitorch-cnn explain`` draws valid PNGs (the cheap pictures, a tiny LeNet run, and the
  ladder chart with and without a GPU results file).
- ``minitorch-cnn summary`` works for every model, and its total equals count_parameters.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
from pathlib import Path

import pytest

import minitorch_cnn as mc
from minitorch_cnn import cli, explain, models
from minitorch_cnn.summary import count_parameters

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
MARKDOWN = [*sorted(DOCS.glob("*.md")), REPO / "README.md"]
CHAPTERS = [p for p in MARKDOWN if p.parent == DOCS and p.name[:2].isdigit()]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def python_blocks(path: Path) -> list[tuple[int, str]]:
    """``[(first line number, code)]`` of the blocks fenced exactly as ```python ... ```."""
    blocks, code, start = [], None, 0
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if code is None:
            if line.rstrip() == "```python":
                code, start = [], number + 1
        elif line.rstrip() == "```":
            blocks.append((start, "\n".join(code) + "\n"))
            code = None
        else:
            code.append(line)
    assert code is None, f"{path.name}: a ```python block opened at line {start - 1} never closes"
    return blocks


def _id(path: Path) -> str:
    return str(path.relative_to(REPO))


@pytest.mark.parametrize("path", MARKDOWN, ids=_id)
def test_markdown_python_blocks_run(path, tmp_path, monkeypatch, capsys):
    blocks = python_blocks(path)
    if path in CHAPTERS:
        assert blocks, f"{path.name}: a chapter should end with code that runs"
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__docs__"}
    backend = mc.get_backend()
    try:
        for line, code in blocks:
            # the file name and line in tracebacks point at the Markdown source
            exec(compile("\n" * (line - 1) + code, str(path), "exec"), namespace)
    finally:
        mc.set_backend(backend)


# --------------------------------------------------------------------------- links

LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
NAME = re.compile(r"^`([A-Za-z_][A-Za-z0-9_]*)`$")


def _links(path: Path) -> list[tuple[str, str]]:
    prose, fenced = [], False
    for line in path.read_text().splitlines():  # links inside fenced blocks do not count
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced:
            prose.append(line)
    return [m.groups() for m in LINK.finditer("\n".join(prose))
            if not m.group(2).startswith(("http://", "https://", "#"))]


@pytest.mark.parametrize("path", [p for p in MARKDOWN if p.parent == DOCS], ids=_id)
def test_docs_links_resolve(path):
    links = _links(path)
    for text, target in links:
        file = (path.parent / target.split("#")[0]).resolve()
        assert file.exists(), f"{path.name}: link [{text}]({target}) points at nothing"
        name = NAME.match(text)
        if name and file.suffix == ".py":
            source = file.read_text()
            defined = re.search(rf"^\s*(def|class)\s+{name[1]}\b|^{name[1]}\s*[:=]", source,
                                flags=re.M)
            assert defined, f"{path.name}: [{text}]({target}): {file.name} defines no {name[1]}"
    if path in CHAPTERS:
        assert any(t.endswith(".py") for _, t in links), f"{path.name} links no kernel"


# --------------------------------------------------------------------------- pictures


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) of a PNG file, read from its IHDR chunk; fails if it is not a PNG."""
    head = Path(path).read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    assert head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


def test_explain_draws_sliding_and_im2col(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert cli.main(["explain", "sliding", "im2col", "--out", str(tmp_path)]) == 0
    for name in ("sliding.png", "im2col.png"):
        width, height = png_size(tmp_path / name)
        assert width > 600 and height > 300
    assert "sliding.png" in capsys.readouterr().out


def test_explain_lenet_tiny_training_run(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    pytest.importorskip("sklearn")
    argv = ["explain", "lenet", "--out", str(tmp_path), "--epochs", "1", "--limit-train",
            "64", "--backend", "numpy"]
    assert cli.main(argv) == 0
    for name in ("lenet_filters.png", "lenet_feature_maps.png"):
        png_size(tmp_path / name)


def test_explain_ladder_adds_gpu_rows_when_a_gpu_result_exists(tmp_path):
    pytest.importorskip("matplotlib")
    results = tmp_path / "results"
    results.mkdir()
    shutil.copy(explain.RESULTS_DIR / "cpu_ops.json", results / "cpu_ops.json")
    assert explain.main(["ladder", "--out", str(tmp_path / "cpu"), "--results",
                         str(results)]) == 0
    cpu_only = png_size(tmp_path / "cpu" / "ladder.png")
    rows = [dict(layer=layer, op=op, impl=impl, tflops=t)
            for layer in ("lenet5.conv1", "resnet18.layer1")
            for op in ("forward", "backward")
            for impl, t in (("direct", 0.5), ("igemm", 5.0), ("cudnn_fp32", 10.0))]
    (results / "gpu_ops_rehearsal.json").write_text(json.dumps(dict(  # simulator: ignored
        device="Numba CUDA simulator", rehearsal=True, conv=rows)))
    assert explain.main(["ladder", "--out", str(tmp_path / "rehearsal"), "--results",
                         str(results)]) == 0
    assert png_size(tmp_path / "rehearsal" / "ladder.png") == cpu_only
    (results / "gpu_ops_test_gpu.json").write_text(json.dumps(dict(device="Test GPU",
                                                                   conv=rows)))
    assert explain.main(["ladder", "--out", str(tmp_path / "gpu"), "--results",
                         str(results)]) == 0
    assert png_size(tmp_path / "gpu" / "ladder.png")[1] > cpu_only[1]  # a second row


def test_explain_rejects_unknown_pictures_and_missing_results(tmp_path, capsys):
    assert explain.main(["nonsense", "--out", str(tmp_path)]) == 2
    assert "unknown picture 'nonsense'" in capsys.readouterr().err
    pytest.importorskip("matplotlib")
    assert explain.main(["ladder", "--out", str(tmp_path), "--results",
                         str(tmp_path / "none")]) == 2
    assert "benchmarks.ops" in capsys.readouterr().err


def test_committed_pictures_are_pngs():
    for name in ("sliding", "im2col", "lenet_filters", "lenet_feature_maps", "ladder"):
        png_size(DOCS / "img" / f"{name}.png")


# --------------------------------------------------------------------------- summary


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_summary_total_matches_count_parameters(name, capsys):
    assert cli.main(["summary", "--model", name]) == 0
    out = capsys.readouterr().out
    total = re.search(r"^total: ([\d,]+) parameters, ([\d,]+) forward FLOPs", out, flags=re.M)
    assert total, out[-500:]
    assert int(total[1].replace(",", "")) == count_parameters(models.get_model(name))
    assert int(total[2].replace(",", "")) > 0
