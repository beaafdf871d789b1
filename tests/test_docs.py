"""The docs run: every ```python block of docs/*.md and README.md, the links, the pictures.

- Each Markdown file's ```python blocks (fenced exactly so; ```text / ```console blocks are
  not run) are executed in order in one shared namespace, with the current directory a
  temporary folder: one test per file, named by its path.
  On the pages of ``OUTPUT_SHOWN``, a block followed by a ```text block must print exactly
  that text.
- Every relative link of docs/*.md points at a file that exists; a link whose text is a
  backticked name and whose target is a .py file names a function, class or constant that
  file defines, so a renamed kernel breaks the test, not the docs.
- ``minitorch-cnn explain`` draws valid PNGs (the cheap pictures, a tiny LeNet run, and the
  ladder chart with and without a GPU results file).
- ``minitorch-cnn summary`` works for every model, and its total equals count_parameters.
- Every number in prose that comes from a benchmark or a run is a link to its JSON whose title
  names the row and the field (``[114.9 ms](../benchmarks/results/cpu_ops.json "LAYER | OP |
  BACKEND | FIELD")``) or a dotted path (``"summary.numba.pool_all.geomean_ratio"``); the
  number must equal that field, to the digits shown. A scanner finds every measurement-like
  number of the prose (a time, a speed, a ratio, a decimal with two places or more) that is
  no such link; each must be in ``ALLOWED``, with its reason. The README's benchmark tables
  are generated from their JSON (``ops_table_row``) and compared row by row, and its demo
  output is the last line of the recorded run.
- Every exercise of docs/exercises/ is graded with the ``minitorch-cnn check`` command its
  docstring gives: the worked solution passes, the starter (body removed) fails, and both
  have the same signature.
"""

from __future__ import annotations

import inspect
import json
import re
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

import minitorch_cnn as mc
from minitorch_cnn import cli, explain, models
from minitorch_cnn.check import load_function
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


OUTPUT_SHOWN = {"docs/06c-winograd-direct.md"}
"""Pages whose every ```python block that is followed (after blank lines only) by a ```text
block prints exactly that text; elsewhere a text block may be annotated output."""


def shown_outputs(path: Path) -> dict[int, str]:
    """``{first line of a python block: the text block right after it}`` of ``path``."""
    lines, shown = path.read_text().splitlines(), {}
    for start, code in python_blocks(path):
        after = start + code.count("\n")  # the index of the line after the closing fence
        while after < len(lines) and not lines[after].strip():
            after += 1
        if after < len(lines) and lines[after].rstrip() == "```text":
            end = lines.index("```", after + 1)
            shown[start] = "\n".join(lines[after + 1:end]) + "\n"
    return shown


def _id(path: Path) -> str:
    return str(path.relative_to(REPO))


@pytest.mark.parametrize("path", MARKDOWN, ids=_id)
def test_markdown_python_blocks_run(path, tmp_path, monkeypatch, capsys):
    blocks = python_blocks(path)
    if path in CHAPTERS:
        assert blocks, f"{path.name}: a chapter should end with code that runs"
    shown = shown_outputs(path) if _id(path) in OUTPUT_SHOWN else {}
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__docs__"}
    backend = mc.get_backend()
    try:
        for line, code in blocks:
            capsys.readouterr()
            # the file name and line in tracebacks point at the Markdown source
            exec(compile("\n" * (line - 1) + code, str(path), "exec"), namespace)
            if line in shown:
                assert capsys.readouterr().out == shown[line], \
                    f"{path.name}: the block at line {line} prints other than its text block"
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


def test_explain_backward_draws_conv2d_backwards_grad_x_as_the_flipped_kernels_slide(
        tmp_path, capsys):
    pytest.importorskip("matplotlib")
    padded, flipped, grad_x = explain.backward_example()
    assert np.array_equal(grad_x, [[1, 2, 0], [2, 2, -2], [0, -2, 1]])  # docs/05's numbers
    assert np.array_equal(padded[1:3, 1:3], explain.G2) and not padded[[0, 3]].any()
    assert np.array_equal(flipped, [[-1, 0], [2, 1]])
    assert cli.main(["explain", "backward", "--out", str(tmp_path)]) == 0
    width, height = png_size(tmp_path / "backward.png")
    assert width > 600 and height > 300
    assert "backward.png" in capsys.readouterr().out


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


def test_explain_ladder_legend_outside_the_bars_peak_labelled_title_says_cpu_only(
        tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    figures = []
    save = explain.save_figure

    def keep(fig, path, **kwargs):
        figures.append(fig)
        save(fig, path, **kwargs)

    monkeypatch.setattr(explain, "save_figure", keep)
    explain.draw_ladder(tmp_path)  # the committed results: no GPU run
    fig = figures[-1]
    assert "CPU only" in fig._suptitle.get_text()
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()  # the figure is closed: draw it anew
    runs = [n for n in explain.LADDER_CPU_RUNS if (explain.RESULTS_DIR / n).exists()]
    assert len(runs) == 3, runs  # the first run and both machine kinds, as the README's tables
    panels = fig.axes
    assert len(panels) == 2 * len(runs) and all(ax.get_legend() is None for ax in panels)
    for row, name in enumerate(runs):  # a row per run, its file in the titles
        titles = [ax.get_title() for ax in panels[2 * row:2 * row + 2]]
        assert all(name in t for t in titles), titles
    assert "AVX-512" in panels[2].get_title() and "AVX2" in panels[4].get_title()
    assert len(fig.legends) == len(runs)
    for legend, row in zip(fig.legends, range(len(runs)), strict=True):
        top = legend.get_window_extent(renderer).y1
        row_panels = panels[2 * row:2 * row + 2]  # the legend sits under its own row's bars
        assert top < min(ax.get_window_extent(renderer).y0 for ax in row_panels)
        assert {t.get_text() for t in legend.get_texts()} == {"torch", "numpy", "numba"}
    texts = [t.get_text() for ax in panels for t in ax.texts] + [t.get_text() for t in fig.texts]
    assert sum(t.startswith("SGEMM peak ") for t in texts) == 2 * len(runs)
    assert any(t.startswith("dashed line: SGEMM peak = ") for t in texts)
    runs = [dict(device="Test GPU", conv=[])]
    assert "CPU only" not in explain.ladder_title({}, "cpu_ops.json", runs)
    assert "GPU: Test GPU" in explain.ladder_title({}, "cpu_ops.json", runs)


def test_explain_rejects_unknown_pictures_and_missing_results(tmp_path, capsys):
    assert explain.main(["nonsense", "--out", str(tmp_path)]) == 2
    assert "unknown picture 'nonsense'" in capsys.readouterr().err
    pytest.importorskip("matplotlib")
    assert explain.main(["ladder", "--out", str(tmp_path), "--results",
                         str(tmp_path / "none")]) == 2
    assert "benchmarks.ops" in capsys.readouterr().err


def gif_frames(path: Path) -> list:
    """The frames of a GIF file as RGB arrays; fails if it is not a GIF."""
    import numpy as np
    from PIL import Image, ImageSequence

    assert Path(path).read_bytes()[:6] in (b"GIF87a", b"GIF89a"), f"{path} is not a GIF"
    with Image.open(path) as image:
        return [np.asarray(frame.convert("RGB")) for frame in ImageSequence.Iterator(image)]


def test_explain_animations_writes_gifs_one_frame_per_output_or_scatter(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert cli.main(["explain", "animations", "--out", str(tmp_path)]) == 0
    counts = {"conv_padding.gif": 25,  # 5x5 input, 3x3 kernel, padding 1: 5x5 outputs
              "conv_stride.gif": 9,  # the same with stride 2: 3x3
              "conv_dilation.gif": 9,  # 7x7, 3x3 kernel dilated 2 (covers 5x5): 3x3
              "conv_transpose.gif": 4}  # one scatter per cell of the 2x2 input
    assert explain.animation_frame_counts() == counts
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(counts)
    for name, expected in counts.items():
        frames = gif_frames(tmp_path / name)
        assert len(frames) == expected, name
        still = [f for f in range(1, expected) if (frames[f] == frames[f - 1]).all()]
        assert not still, f"{name}: frames {still} repeat the one before"
    assert "conv_transpose.gif" in capsys.readouterr().out


def test_transposed_conv_animation_checks_its_scatter_against_the_naive_backend(monkeypatch):
    pytest.importorskip("matplotlib")
    from minitorch_cnn import functional as F

    right = F.conv_transpose2d
    monkeypatch.setattr(F, "conv_transpose2d",  # a backend that flips the kernel disagrees
                        lambda x, w, **kw: right(x, w[..., ::-1, ::-1].copy(), **kw))
    with pytest.raises(RuntimeError, match="disagrees with the naive backend"):
        explain.transpose_frames()


def test_committed_pictures_are_pngs():
    for name in ("sliding", "im2col", "lenet_filters", "lenet_feature_maps", "ladder"):
        png_size(DOCS / "img" / f"{name}.png")
    for name, frames in explain.animation_frame_counts().items():
        assert len(gif_frames(DOCS / "img" / name)) == frames, name


# --------------------------------------------------------------------------- summary


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_summary_total_matches_count_parameters(name, capsys):
    assert cli.main(["summary", "--model", name]) == 0
    out = capsys.readouterr().out
    total = re.search(r"^total: ([\d,]+) parameters, ([\d,]+) forward FLOPs", out, flags=re.M)
    assert total, out[-500:]
    assert int(total[1].replace(",", "")) == count_parameters(models.get_model(name))
    assert int(total[2].replace(",", "")) > 0


# --------------------------------------------------------------------------- exercises

EXERCISES = DOCS / "exercises"
STARTERS = sorted(EXERCISES.glob("*.py"))
CHECK = re.compile(r"^\s*(?:[A-Z_]+=\S+\s+)*(minitorch-cnn check .+?)$", flags=re.M)
"""The command of an exercise's docstring, after any ``NAME=value`` environment settings."""


def check_command(path: Path) -> list[str]:
    """The ``minitorch-cnn check`` argv of an exercise file's docstring (``\\`` joins lines)."""
    doc = re.sub(r"\\\n\s*", "", Path(path).read_text())
    match = CHECK.search(doc)
    assert match, f"{path.name}: its docstring gives no 'minitorch-cnn check' command"
    return match[1].split()[1:]


@pytest.mark.parametrize("starter", STARTERS, ids=lambda p: p.name)
def test_exercise_solution_passes_and_starter_fails(starter, monkeypatch, capsys):
    solution = EXERCISES / "solutions" / starter.name
    assert solution.is_file(), f"{starter.name} has no worked solution"
    monkeypatch.chdir(REPO)  # the commands name files from the repository's root
    argv = check_command(solution)
    assert argv[1] == f"docs/exercises/solutions/{starter.name}:{argv[1].split(':')[1]}"
    assert check_command(starter) == [argv[0], argv[1].replace("solutions/", ""), *argv[2:]]
    assert cli.main([*argv, "--examples", "30"]) == 0, capsys.readouterr().out
    assert "passed 30 cases" in capsys.readouterr().out
    assert cli.main([*check_command(starter), "--examples", "5"]) == 1
    assert "raised NotImplementedError" in capsys.readouterr().out
    ours, theirs = (load_function(f"{p}:{argv[1].split(':')[1]}") for p in (starter, solution))
    assert inspect.signature(ours) == inspect.signature(theirs)
    assert ours.__doc__ == theirs.__doc__


def test_every_exercise_is_listed_in_the_exercises_readme():
    readme = (EXERCISES / "README.md").read_text()
    for starter in STARTERS:
        assert f"[`{starter.name}`]({starter.name})" in readme, starter.name


# --------------------------------------------------------------------------- prose numbers

BENCH_NUMBER = re.compile(r'\[([-\d.,]+(?:e-?\d+)?)[^\]]*\]\((\S+?\.json) "([^"]+)"\)')


def bench_numbers(path: Path) -> list[tuple[str, Path, list[str]]]:
    """``[(number as written, JSON file, [layer, op, backend, field])]`` of a Markdown file."""
    return [(m[1], (path.parent / m[2]).resolve(), [k.strip() for k in m[3].split("|")])
            for m in BENCH_NUMBER.finditer(path.read_text())]


def json_field(file: Path, key: list[str]):
    """The value a prose number's link title names in ``file``.

    ``["LAYER", "OP", "BACKEND", "FIELD"]``: FIELD of the one row of ``results`` with that
    layer, op and backend (the benchmarks' JSON); ``["a.b.-1.c"]``: a dotted path through
    dicts and lists (integers index lists, ``-1`` the last), for summaries and run records.
    """
    payload = json.loads(file.read_text())
    if len(key) == 1:
        value = payload
        for part in key[0].split("."):
            value = value[int(part)] if isinstance(value, list) else value[part]
        return value
    assert len(key) == 4, f"title {key} is neither LAYER | OP | BACKEND | FIELD nor a.b.c"
    layer, op, backend, field = key
    rows = [r for r in payload["results"]
            if (r.get("layer"), r.get("op"), r.get("backend")) == (layer, op, backend)]
    assert len(rows) == 1, f"{len(rows)} rows of {file.name} match {key}"
    return rows[0][field]


@pytest.mark.parametrize("path", [p for p in MARKDOWN if bench_numbers(p)], ids=_id)
def test_prose_numbers_equal_their_benchmark_json(path):
    for text, file, key in bench_numbers(path):
        value = float(json_field(file, key))
        mantissa, _, _ = text.partition("e")  # "6.4e-7": to the mantissa's digits
        decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
        value = float(f"{value:.{decimals}e}") if "e" in text else round(value, decimals)
        assert float(text.replace(",", "")) == value, \
            f"{path.name}: the text says {text}, {file.name} {key} says {value}"


def test_prose_number_check_catches_a_stale_number(tmp_path):
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"results": [dict(layer="L", op="forward", backend="numpy",
                                                    median_ms=114.93)]}))
    page = tmp_path / "page.md"
    page.write_text('took [228 ms](results.json "L | forward | numpy | median_ms")\n')
    with pytest.raises(AssertionError, match="the text says 228, results.json"):
        test_prose_numbers_equal_their_benchmark_json(page)
    page.write_text('took [114.9 ms](results.json "L | forward | numpy | median_ms")\n')
    test_prose_numbers_equal_their_benchmark_json(page)
    page.write_text('an error of [1.2e-4](results.json "L | forward | numpy | median_ms")\n')
    with pytest.raises(AssertionError, match="the text says 1.2e-4, results.json"):
        test_prose_numbers_equal_their_benchmark_json(page)
    results.write_text(json.dumps({"results": [dict(layer="L", op="forward", backend="numpy",
                                                    median_ms=1.151e-4)]}))
    test_prose_numbers_equal_their_benchmark_json(page)


def test_explain_out_defaults_to_the_checkouts_docs_img_else_asks(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # not the repository: the default must not depend on it
    assert explain.default_out() == DOCS / "img"
    monkeypatch.setattr(explain, "CHECKOUT_IMG", tmp_path / "site-packages" / "docs" / "img")
    assert explain.default_out() is None
    assert explain.main(["sliding"]) == 2
    assert "--out DIR is required: this package does not run from a checkout" in \
        capsys.readouterr().err
    assert not (tmp_path / "docs").exists()


# --------------------------------------------------------------------------- sources by name

NOT_A_SOURCE_NAME = re.compile(r"\bthe seed\b|\bseed's\b|\bseed (chapter|notebook|lecture|"
                               r"material|model|example)s?\b", flags=re.I)


def _docstrings() -> dict[str, str]:
    import ast

    texts = {}
    for folder in ("minitorch_cnn", "kernels", "reference", "benchmarks"):
        for file in sorted((REPO / folder).rglob("*.py")):
            tree = ast.parse(file.read_text())
            for node in [tree, *ast.walk(tree)]:
                if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)):
                    doc = ast.get_docstring(node)
                    if doc:
                        texts[f"{file.relative_to(REPO)}:{getattr(node, 'name', '')}"] = doc
    return texts


def test_sources_are_named_by_title_never_the_seed(capsys):
    texts = {_id(p): p.read_text() for p in [*DOCS.rglob("*.md"), *DOCS.rglob("*.py"),
                                             REPO / "README.md"]}
    texts.update(_docstrings())
    for command in ([], *([c] for c in ("train", "demo", "summary", "backends", "explain",
                                         "check"))):
        with pytest.raises(SystemExit):
            cli.main([*command, "--help"])
        texts[f"minitorch-cnn {' '.join(command)} --help"] = capsys.readouterr().out
    found = {where: m[0] for where, text in texts.items() if (m := NOT_A_SOURCE_NAME.search(text))}
    assert not found, f"name the book or lecture by its title instead: {found}"


def test_prose_number_check_reads_dotted_paths(tmp_path):
    (tmp_path / "run.json").write_text(json.dumps({"summary": {"numba": {"ratio": 0.967}},
                                                   "history": [{"acc": 0.5}, {"acc": 0.9749}]}))
    page = tmp_path / "page.md"
    page.write_text('[0.967](run.json "summary.numba.ratio"), [0.9749](run.json '
                    '"history.-1.acc")\n')
    test_prose_numbers_equal_their_benchmark_json(page)
    page.write_text('[0.5](run.json "history.-1.acc")\n')
    with pytest.raises(AssertionError, match="the text says 0.5"):
        test_prose_numbers_equal_their_benchmark_json(page)


# --------------------------------------------------------------------------- generated tables

TABLE_FROM = re.compile(r"^<!-- table from (\S+\.json) -->$", flags=re.M)


def ops_table_row(results: list[dict], layer: str, op: str) -> str:
    """README's row of one layer and op: torch, numpy and numba medians (ms), numba / torch.

    The last column is the numba row's ``ratio_to_torch``, against the torch median of its
    own interleaved pair (so not always the ratio of the two printed medians).
    """
    row = {r["backend"]: r for r in results if (r["layer"], r["op"]) == (layer, op)}
    assert {"torch", "numpy", "numba"} <= set(row), f"{layer} {op}: rows {sorted(row)}"
    cells = [row[b]["median_ms"] for b in ("torch", "numpy", "numba")]
    return (f"| {layer} | {op} | " + " | ".join(f"{c:.2f}" for c in cells)
            + f" | {row['numba']['ratio_to_torch']:.2f} |")


def generated_tables(text: str) -> list[tuple[str, list[str]]]:
    """``[(json path, [row, ...])]``: each table after a ``<!-- table from X.json -->`` line."""
    tables = []
    for mark in TABLE_FROM.finditer(text):
        lines = text[mark.end():].lstrip("\n").split("\n")
        rows = []
        for line in lines[2:]:  # past the header and the rule
            if not line.startswith("|"):
                break
            rows.append(line)
        tables.append((mark[1], rows))
    return tables


def test_readme_benchmark_tables_are_generated_from_their_json(readme=REPO / "README.md"):
    """Each benchmark table of the README equals what its JSON gives, row by row: a table is
    written by ``ops_table_row`` (a template step), never by hand."""
    tables = generated_tables(readme.read_text())
    assert len(tables) >= 2, "the README shows the results of both machine kinds"
    for name, rows in tables:
        results = json.loads((readme.parent / name).read_text())["results"]
        assert rows, f"{name}: an empty table"
        for line in rows:
            layer, op = (c.strip() for c in line.strip("|").split("|")[:2])
            assert line == ops_table_row(results, layer, op), f"{name}: {line}"


def test_table_check_catches_a_hand_edited_cell(tmp_path):
    shutil.copy(REPO / "README.md", tmp_path / "README.md")
    (tmp_path / "benchmarks").symlink_to(REPO / "benchmarks")
    page = tmp_path / "README.md"
    name, rows = generated_tables(page.read_text())[0]
    cells = rows[0].split("|")
    cells[3] = " 0.01 "
    page.write_text(page.read_text().replace(rows[0], "|".join(cells)))
    with pytest.raises(AssertionError, match=re.escape(name)):
        test_readme_benchmark_tables_are_generated_from_their_json(page)


# --------------------------------------------------------------------------- bare numbers

MEASURED = re.compile(
    r"(?<![\w.\-/])(?:"
    r"\d[\d,]*(?:\.\d+)?\s?(?:ms|µs|us|s|min|GFLOP/s|TFLOP/s|TB/s|GB/s|img/s|images/s)(?![\w/])"
    r"|\d+(?:\.\d+)?(?:-\d+(?:\.\d+)?)?(?:x| times)(?!\w)"
    r"|\d+\.\d{2,}(?!\w)"
    r"|\d+m\d+s)")
"""What reads as a measurement: a number with a unit of time or speed, a ratio ("1.5x",
"6.6 times"), or a decimal with two or more places."""

ALLOWED = {  # (page, number as written): why it may stand without a JSON link
    ("README.md", "3.10"): "a Python version",
    ("docs/05-backward.md", "0.01"): "asserted by the code block above it",
    ("docs/08-lenet.md", "2.303"): "ln 10, chance level",
    ("docs/08-lenet.md", "0.01"): "asserted by the code block above it; an exercise's target",
    ("docs/07-gpu-ladder.md", "8x"): "arithmetic: 32 sectors of 32 bytes for 128 bytes",
    ("docs/07-gpu-ladder.md", "67 TFLOP/s"): "NVIDIA's H100 SXM datasheet",
    ("docs/07-gpu-ladder.md", "3.35 TB/s"): "NVIDIA's H100 SXM datasheet",
    ("docs/07-gpu-ladder.md", "4.8 TB/s"): "NVIDIA's H200 datasheet",
    ("docs/07-gpu-ladder.md", "3.35"): "the datasheet's bandwidth in the ridge-point sum",
    ("docs/07-gpu-ladder.md", "0.5x"): "the issue's goal, not a result",
    **{("docs/06b-numba.md", n): "a ratio of the quoted run, checked against it below"
       for n in ("66 times", "4.6 times", "1.6 times", "1.07", "6.6 times", "0.024",
                 "0.036 ms", "12 times", "1.1 times")},
}


def bare_numbers(path: Path) -> list[str]:
    """Measurement-like numbers of ``path``'s prose that are no JSON link.

    Skipped: fenced blocks (code and printed output, which the code-block test runs), table
    rows (the README's are generated from their JSON, chapter 7's from ``ptxas``; both are
    compared by tests), inline code and link targets.
    """
    found, fenced = [], False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
            continue
        if fenced or line.startswith("|"):
            continue
        line = BENCH_NUMBER.sub("", line)
        line = re.sub(r"`[^`]*`", "", line)
        line = re.sub(r"\]\([^)]*\)", "]", line)
        found += MEASURED.findall(line)
    return found


@pytest.mark.parametrize("path", MARKDOWN, ids=_id)
def test_every_measured_number_in_prose_is_linked_to_its_json(path):
    page = _id(path)
    loose = [n for n in bare_numbers(path) if (page, n) not in ALLOWED]
    assert not loose, (f"{page}: numbers without a JSON link: {loose}; link each to the JSON "
                       '("[1.2 ms](x.json \"LAYER | OP | BACKEND | FIELD\")"), or say it in '
                       "words, or add it to ALLOWED with the reason")
    stale = [n for (p, n) in ALLOWED if p == page and n not in bare_numbers(path)]
    assert not stale, f"{page}: ALLOWED lists numbers the page no longer has: {stale}"


def test_bare_number_scanner_flags_times_ratios_and_decimals(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("took 228 ms, 1.5x torch, 6.6 times faster, a geomean of 0.967, 1m19s;\n"
                    "not `0.123 ms` in code, a 3x3 kernel, [0.5 ms](r.json \"a.b\")\n"
                    "```text\n12.5 ms\n```\n| 1.23 | 4.56 |\n")
    assert bare_numbers(page) == ["228 ms", "1.5x", "6.6 times", "0.967", "1m19s"]


QUOTED_STEP = re.compile(r"^(\S+) .*?lenet5\.conv2\s+([\d.]+) ms\s+resnet18\.layer3\s+([\d.]+) ms$",
                         flags=re.M)


def test_numba_chapter_ratios_are_those_of_its_quoted_run():
    """docs/06b's prose ratios ("66 times", ...) are ratios of its quoted run's times."""
    text = (DOCS / "06b-numba.md").read_text()
    quoted = text[text.index("## What the runs printed"):]
    times = {(step, layer): float(ms) for step, lenet, resnet in QUOTED_STEP.findall(quoted)
             for layer, ms in (("lenet", lenet), ("resnet", resnet))}
    claims = [("66 times", "lenet", "0", "1"), ("4.6 times", "resnet", "0", "1"),
              ("1.6 times", "lenet", "2", "3"), ("1.07", "resnet", "2", "3"),
              ("6.6 times", "resnet", "3", "4"), ("12 times", "lenet", "5'", "5"),
              ("1.1 times", "resnet", "5'", "5")]
    for text_number, layer, slow, fast in claims:
        assert text_number in text, text_number
        number = text_number.split()[0]
        decimals = len(number.split(".")[1]) if "." in number else 0
        ratio = round(times[slow, layer] / times[fast, layer], decimals)
        assert float(number) == ratio, f"{text_number}: the quoted run gives {ratio}"
    assert "(0.024 against 0.036 ms per sample)" in text
    assert (times["3", "lenet"], times["4", "lenet"]) == (0.024, 0.036)


def test_readme_demo_output_is_the_recorded_runs_last_line():
    """The ``final test accuracy`` line the README shows is ``train.final_line`` of the run
    recorded in ``benchmarks/results/demo_epyc_avx512.json``, not typed by hand."""
    from minitorch_cnn.train import TrainResult, final_line

    record = json.loads((REPO / "benchmarks/results/demo_epyc_avx512.json").read_text())
    result = TrainResult(None, record["backend"], [], record["test_accuracy"],
                         record["test_correct"], record["test_total"],
                         record["images_per_second"], None, None, None, None,
                         record["compile_seconds"])
    shown = re.search(r"^final test accuracy .*$", (REPO / "README.md").read_text(), re.M)
    assert shown and shown[0] == final_line(result)
