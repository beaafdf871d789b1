"""The pictures of ``docs/``, drawn from the code they explain.

    minitorch-cnn explain                          # every picture, into the checkout's docs/img/
    minitorch-cnn explain sliding im2col --out /tmp/img
    minitorch-cnn explain animations               # the GIFs only
    minitorch-cnn explain lenet --checkpoint runs/lenet5-digits-numpy-.../checkpoint.npz
    minitorch-cnn explain samples --data cifar2:~/data/cifar-10 --n 16 --out /tmp/img
    python -m minitorch_cnn.explain ladder         # the same, without the console script

==========  ===============================  ==================================================
what        file(s)                          shows
==========  ===============================  ==================================================
sliding     sliding.png                      a 3x3 kernel at two positions of the padded 5x5
                                             input (the textbook's example), the output cell
                                             each position makes, and its sum
im2col      im2col.png                       the im2col matrix of a 2x4x4 input and a 2x2
                                             kernel, two windows and their columns highlighted
lenet       lenet_filters.png,               LeNet-5 trained briefly on the bundled digits (or
            lenet_feature_maps.png           loaded from ``--checkpoint``): the conv1 filters;
                                             one digit's maps after conv1 and conv2
ladder      ladder.png                       GFLOP/s of every conv layer per backend, from
                                             ``benchmarks/results/cpu_ops.json``, and the GPU
                                             rungs from ``gpu_ops_*.json`` when one exists
animations  conv_padding.gif,                GIFs in the manner of Dumoulin and Visin's "A
            conv_stride.gif,                 guide to convolution arithmetic for deep
            conv_dilation.gif,               learning": a kernel sliding with padding, with
            conv_transpose.gif               stride 2, with dilation 2 (one frame per output),
                                             and a transposed conv's scatter (one frame per
                                             input cell)
samples     samples.png                      on request only (not in the default set): the
                                             first ``--n`` training images of ``--data``
                                             (after ``--resize``), each with its label
==========  ===============================  ==================================================

Every number in a picture is computed when it is drawn (by the ``naive`` backend, or read
from the benchmark JSON), never typed in. matplotlib (the ``train`` extra) draws with the Agg
backend, so no display is needed. ``lenet`` trains with the ``numpy`` backend by default:
about 1 s an epoch on 2 cores, no JIT compile.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .io import save_figure

PICTURES = ("sliding", "backward", "im2col", "lenet", "ladder", "animations")
"""What ``explain`` draws by default, in the order it draws them."""

ON_REQUEST = ("samples",)
"""What ``explain`` draws only when named (it depends on ``--data``, not on the code)."""

RESULTS_DIR = Path(__file__).resolve().parent.parent / "benchmarks" / "results"
"""Where the benchmarks write their JSON (the ``ladder`` picture reads it)."""

X5 = np.array([[3, 4, 6, 5, 7], [2, 4, 6, 8, 2], [1, 6, 7, 8, 4], [9, 7, 4, 6, 2],
               [3, 7, 5, 4, 1]], dtype=np.float64)
"""The textbook's 5x5 input of the padding/stride example."""

K9 = np.arange(1.0, 10.0).reshape(3, 3)
"""Its 3x3 kernel, 1..9."""

COLORS = ("tab:orange", "tab:blue")  # one per highlighted window


def _pyplot():
    """``matplotlib.pyplot`` on the Agg backend (files only, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _grid(ax, values, title="", shade=None, fmt="{:g}", fontsize=10):
    """Draw a 2-D array as a table of numbered cells on ``ax`` (row 0 at the top).

    ``shade`` is an optional boolean array of the same shape: those cells are grey (padding).
    """
    values = np.asarray(values)
    rows, cols = values.shape
    for r in range(rows):
        for c in range(cols):
            grey = shade is not None and shade[r, c]
            ax.add_patch(_rect(c, r, 1, 1, facecolor="0.88" if grey else "white",
                               edgecolor="0.6", linewidth=0.8))
            ax.text(c + 0.5, r + 0.5, fmt.format(values[r, c]), ha="center", va="center",
                    fontsize=fontsize, color="0.45" if grey else "black")
    ax.set_xlim(-0.05, cols + 0.05)
    ax.set_ylim(rows + 0.05, -0.05)
    ax.set_aspect("equal")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=11)


def _rect(x, y, w, h, **kwargs):
    from matplotlib.patches import Rectangle

    return Rectangle((x, y), w, h, **kwargs)


def _outline(ax, x, y, w, h, color, linewidth=3.0):
    ax.add_patch(_rect(x, y, w, h, fill=False, edgecolor=color, linewidth=linewidth))


# --------------------------------------------------------------------------- sliding


def _window_figure(padded, shade, kernel, out, positions, titles, suptitle, name):
    """A kernel at two positions of a padded plane, and the outputs those windows make.

    padded : (Hp, Wp), its padding cells ``shade`` (bool, same shape) drawn grey; kernel :
    (kh, kw); out : (Hp - kh + 1, Wp - kw + 1), the cross-correlation of the two (the caller
    computes it with the naive backend). ``positions``: two output cells ``(i, j)``, each the
    top-left corner of its window; ``titles``: the three panels'; ``name``: the output's
    name in the sums written below the panels. Returns the figure.
    """
    plt = _pyplot()
    kh, kw = kernel.shape
    fig, axes = plt.subplots(1, 3, figsize=(11, 4.6), gridspec_kw=dict(
        width_ratios=[padded.shape[1], kernel.shape[1] + 1, out.shape[1]]))
    ax_in, ax_k, ax_out = axes
    for ax, values, title, grey in ((ax_in, padded, titles[0], shade),
                                    (ax_k, kernel, titles[1], None),
                                    (ax_out, out, titles[2], None)):
        _grid(ax, values, title, shade=grey)
    lines = []
    for (i, j), color in zip(positions, COLORS, strict=True):
        _outline(ax_in, j, i, kw, kh, color)
        _outline(ax_out, j, i, 1, 1, color)
        window = padded[i:i + kh, j:j + kw]  # (kh, kw)
        terms = [f"{_num(a)}*{_num(k)}" for a, k in zip(window.ravel(), kernel.ravel(),
                                                         strict=True) if a != 0]
        lines.append((f"{name}[{i}, {j}] = " + " + ".join(terms) + f" = {out[i, j]:g}", color))
    for n, (text, color) in enumerate(lines):
        fig.text(0.5, 0.1 - 0.055 * n, text, ha="center", fontsize=11, color=color,
                 family="monospace")
    fig.suptitle(suptitle, fontsize=12)
    fig.subplots_adjust(left=0.02, right=0.98, top=0.85, bottom=0.16, wspace=0.12)
    return fig


def _num(v) -> str:
    """``3``, or ``(-1)`` for a negative number inside a sum of products."""
    return f"{v:g}" if v >= 0 else f"({v:g})"


def _padding_mask(shape, pad):
    """Bool mask of the ``pad`` border cells of a ``shape`` plane padded by ``pad``."""
    return np.pad(np.zeros(shape, bool), pad, constant_values=True)


def draw_sliding(out_dir: Path) -> list[Path]:
    """``sliding.png``: the 3x3 kernel 1..9 at two positions of the 5x5 input, padding 1.

    Left, the padded input (padding grey) with the two windows outlined; middle, the kernel;
    right, the 5x5 output computed by the naive backend, with the two cells the windows make
    outlined in the same colours; below, each cell's sum of products written out.
    """
    from . import functional as F

    y = F.conv2d(X5[None, None], K9[None, None], padding=1, backend="naive")[0, 0]  # (5, 5)
    fig = _window_figure(np.pad(X5, 1), _padding_mask(X5.shape, 1), K9, y, [(0, 0), (2, 3)],
                         ["input, padding=1  (7, 7)", "kernel  (3, 3)", "output  (5, 5)"],
                         "cross-correlation: slide the kernel, multiply, sum "
                         "(stride 1, padding 1)", "y")
    path = Path(out_dir) / "sliding.png"
    save_figure(fig, path, dpi=110)
    _pyplot().close(fig)
    return [path]


# --------------------------------------------------------------------------- backward

X3 = np.array([[1, 2, 0], [3, 1, 2], [0, 1, 1]], dtype=np.float64)
"""The worked backward's input (docs/05-backward.md, "A worked backward, by hand")."""

K2 = np.array([[1, 2], [0, -1]], dtype=np.float64)
"""Its 2x2 kernel."""

G2 = np.array([[1, 0], [2, -1]], dtype=np.float64)
"""Its upstream gradient ``dL/dY`` (Y = corr2d(X3, K2) is 2x2)."""


def backward_example() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The worked backward's picture as arrays: (padded G (4, 4), flipped K (2, 2), grad_x).

    grad_x (3, 3) is ``conv2d_backward``'s (naive backend); that it equals the flipped kernel
    slid over the zero-padded gradient is checked here, so the picture cannot draw anything
    else.
    """
    from . import functional as F

    grad_x = F.conv2d_backward(G2[None, None], X3[None, None], K2[None, None],
                               backend="naive").grad_x[0, 0]  # (3, 3)
    padded, flipped = np.pad(G2, 1), K2[::-1, ::-1]  # (4, 4), (2, 2)
    slid = F.corr2d(padded, flipped, backend="naive")  # (3, 3)
    if not np.array_equal(slid, grad_x):  # pragma: no cover - the maths of docs/05
        raise AssertionError(f"flipped kernel over padded G gives {slid}, not {grad_x}")
    return padded, flipped, grad_x


def draw_backward(out_dir: Path) -> list[Path]:
    """``backward.png``: grad_x of the worked example as the flipped kernel sliding over ``G``.

    Left, ``G = dL/dY`` zero-padded by ``k - 1 = 1`` (padding grey) with two windows outlined;
    middle, the kernel flipped in both axes; right, grad_x (:func:`backward_example`), the
    two cells the windows make outlined, and below each one's sum of products.
    """
    padded, flipped, grad_x = backward_example()
    fig = _window_figure(padded, _padding_mask(G2.shape, 1), flipped, grad_x,
                         [(1, 1), (1, 0)],
                         ["G = dL/dY, padded by 1  (4, 4)", "K flipped  (2, 2)",
                          "grad_x  (3, 3)"],
                         "grad_x: the flipped kernel slides over the zero-padded gradient",
                         "grad_x")
    path = Path(out_dir) / "backward.png"
    save_figure(fig, path, dpi=110)
    _pyplot().close(fig)
    return [path]


# --------------------------------------------------------------------------- im2col


def draw_im2col(out_dir: Path) -> list[Path]:
    """``im2col.png``: the column matrix of ``x = arange(32).reshape(1, 2, 4, 4)``, 2x2 kernel.

    The matrix comes from ``kernels.vectorized._im2col`` (what the ``numpy`` backend runs);
    rows are labelled ``(c, i, j)``, columns ``(h_out, w_out)``. Two windows are outlined on
    the input and their columns in the matrix, in the same colours.
    """
    from kernels import vectorized
    from kernels.common import ConvSpec

    plt = _pyplot()
    C, H, W, k = 2, 4, 4, 2
    H_out, W_out = H - k + 1, W - k + 1  # (3, 3)
    x = np.arange(float(C * H * W)).reshape(1, C, H, W)  # (1, 2, 4, 4)
    spec = ConvSpec.from_shapes(x.shape, (1, C, k, k), stride=(1, 1), padding=(0, 0),
                                dilation=(1, 1), groups=1)  # one output channel: shapes only
    columns = vectorized._im2col(x, spec)[0]
    # columns: (C*k*k, H_out*W_out) = (8, 9)
    windows = [(0, 0), (1, 2)]  # (h_out, w_out) of the two highlighted windows

    fig = plt.figure(figsize=(11, 5.2))
    grid = fig.add_gridspec(2, 2, width_ratios=[4, 9.5], hspace=0.35, wspace=0.08,
                            left=0.03, right=0.99, top=0.84, bottom=0.04)
    for c in range(C):
        ax = fig.add_subplot(grid[c, 0])
        _grid(ax, x[0, c], f"x[0, {c}]  (channel {c})", fmt="{:.0f}")
        for (h, w), color in zip(windows, COLORS, strict=True):
            _outline(ax, w, h, k, k, color)
    ax = fig.add_subplot(grid[:, 1])
    _grid(ax, columns, "", fmt="{:.0f}")
    for (h, w), color in zip(windows, COLORS, strict=True):
        _outline(ax, h * W_out + w, 0, 1, C * k * k, color)
    for col in range(H_out * W_out):  # column labels: the output position it makes
        ax.text(col + 0.5, -0.25, f"({col // W_out},{col % W_out})", ha="center", va="bottom",
                fontsize=9)
    for row in range(C * k * k):  # row labels: (channel, kernel row, kernel column)
        c, i, j = row // (k * k), (row // k) % k, row % k
        ax.text(-0.15, row + 0.5, f"c{c} i{i} j{j}", ha="right", va="center", fontsize=9)
    ax.set_xlim(-1.6, H_out * W_out + 0.05)
    ax.set_ylim(C * k * k + 0.05, -1.0)
    ax.set_title("columns = im2col(x)  (C_in*kH*kW, H_out*W_out) = (8, 9)\n"
                 "one column per window, labelled (h_out, w_out)", fontsize=11)
    fig.suptitle("im2col: every 2x2 window of both channels becomes one column; "
                 "conv = weight.reshape(C_out, 8) @ columns", fontsize=12)
    path = Path(out_dir) / "im2col.png"
    save_figure(fig, path, dpi=110)
    plt.close(fig)
    return [path]


# --------------------------------------------------------------------------- lenet


def _lenet_checkpoint(checkpoint, epochs, backend, limit_train, work_dir, log) -> Path:
    """The checkpoint to draw: ``checkpoint`` if given, else a short training run's."""
    if checkpoint is not None:
        return Path(checkpoint)
    from .train import TrainConfig, train

    config = TrainConfig(model="lenet5", data="digits", epochs=epochs, backend=backend,
                         out=str(work_dir), run_name="explain-lenet", progress=False,
                         plot=False, limit_train=limit_train)
    return train(config, log=log).checkpoint_path


def draw_lenet(out_dir: Path, checkpoint: str | Path | None = None, epochs: int = 8,
               backend: str = "numpy", limit_train: int | None = None,
               log=print) -> list[Path]:
    """``lenet_filters.png`` and ``lenet_feature_maps.png`` of a (briefly) trained LeNet-5.

    Without ``checkpoint``, trains LeNet-5 on the bundled digits for ``epochs`` epochs with
    ``backend`` (the run goes to a temporary folder and is deleted). The feature maps are
    those of the first test digit, normalised with the checkpoint's mean and std: the
    outputs of the two conv layers before their sigmoids (after it, conv1's maps are
    saturated and all look alike).
    """
    from . import data, io, models

    plt = _pyplot()
    with tempfile.TemporaryDirectory() as work_dir:
        path = _lenet_checkpoint(checkpoint, epochs, backend, limit_train, work_dir, log)
        model = models.lenet5()
        meta = io.load(model, path)
    model.eval()
    split = data.load_digits()
    mean = meta.get("normalize_mean", float(split.x_train.mean()))
    std = meta.get("normalize_std", float(split.x_train.std()))
    digit = data.normalize(split.x_test[:1], mean, std)  # (1, 1, 28, 28)
    label = int(split.y_test[0])
    accuracy = meta.get("test_accuracy")
    trained = (f"{meta.get('epoch', '?')} epochs on the bundled digits"
               + (f", test accuracy {accuracy:.2f}" if accuracy is not None else ""))

    from .backend import use_backend

    with use_backend(backend):
        maps = {}
        a = digit
        for index, layer in enumerate(model):  # Sequential: run it layer by layer
            a = layer(a)
            maps[index] = a
    conv1 = maps[0][0]  # (6, 28, 28): conv1's output, before its sigmoid
    conv2 = maps[3][0]  # (16, 10, 10): conv2's output, before its sigmoid

    # the conv1 filters
    weight = model[0].weight.data[:, 0]  # (6, 5, 5)
    limit = float(np.abs(weight).max())
    fig, axes = plt.subplots(1, 6, figsize=(10, 2.6))
    for o, ax in enumerate(axes):
        image = ax.imshow(weight[o], cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set_title(f"filter {o}", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(image, ax=list(axes), fraction=0.02, pad=0.02)
    fig.suptitle(f"LeNet-5 conv1 weights (6, 1, 5, 5), red > 0 > blue; {trained}",
                 fontsize=11)
    filters_path = Path(out_dir) / "lenet_filters.png"
    save_figure(fig, filters_path, dpi=110, bbox_inches="tight")
    plt.close(fig)

    # one digit's feature maps
    fig, axes = plt.subplots(3, 8, figsize=(11, 4.8))
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_frame_on(False)
    axes[0, 0].imshow(digit[0, 0], cmap="gray_r")
    axes[0, 0].set_title(f"input (a {label})", fontsize=9)
    for o in range(6):
        axes[0, o + 1].imshow(conv1[o], cmap="viridis")  # each map on its own scale
        axes[0, o + 1].set_title(f"conv1 map {o}", fontsize=9)
    for o in range(16):
        ax = axes[1 + o // 8, o % 8]
        ax.imshow(conv2[o], cmap="viridis")
        ax.set_title(f"conv2 map {o}", fontsize=9)
    fig.suptitle("one test digit through LeNet-5: the outputs of conv1 (6, 28, 28) and conv2 "
                 f"(16, 10, 10), before the sigmoid, each map on its own colour scale\n"
                 f"{trained}", fontsize=10)
    fig.tight_layout()
    maps_path = Path(out_dir) / "lenet_feature_maps.png"
    save_figure(fig, maps_path, dpi=110)
    plt.close(fig)
    return [filters_path, maps_path]


# --------------------------------------------------------------------------- ladder


def _bars(ax, rows, value_key, impl_key, title, unit, colors):
    """Horizontal grouped bars: one group per layer, one bar per implementation.

    ``colors`` maps an implementation to its colour, shared by every panel, so that one
    legend outside the panels serves them all; new implementations are added to it.
    """
    layers = list(dict.fromkeys(r["layer"] for r in rows))
    impls = list(dict.fromkeys(r[impl_key] for r in rows))
    height = 0.8 / max(len(impls), 1)
    for k, impl in enumerate(impls):
        color = colors.setdefault(impl, f"C{len(colors) % 10}")
        values = {r["layer"]: r[value_key] for r in rows if r[impl_key] == impl}
        ys = [i + k * height for i, layer in enumerate(layers) if layer in values]
        xs = [values[layer] for layer in layers if layer in values]
        ax.barh(ys, xs, height, label=impl, color=color)
    ax.set_yticks([i + 0.4 - height / 2 for i in range(len(layers))])
    ax.set_yticklabels(layers, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(unit)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)


def _legend(fig, ax_row, colors, y, title):
    """One legend for a row of panels, centred in the figure at height ``y``, below the bars."""
    from matplotlib.patches import Patch

    seen = {label for ax in ax_row for label in ax.get_legend_handles_labels()[1]}
    handles = [Patch(color=color, label=impl) for impl, color in colors.items() if impl in seen]
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, y), ncol=len(handles),
               fontsize=9, title=title, title_fontsize=9, frameon=False)


PEAK_NOTE = ("dashed line: SGEMM peak = the best float32 2048x2048 matrix product "
             "(NumPy's or torch's) measured in the same run. GFLOP/s counts a direct conv's "
             "2*N*C_out*H_out*W_out*C_in*kH*kW FLOPs,\nso a conv that does fewer "
             "multiplications (Winograd, as oneDNN may choose) or a better-tuned GEMM shape "
             "can pass the line: it does the counted work faster than the matrix product ran.")
"""The footnote of ``ladder.png`` that says what the dashed peak line is."""


def ladder_title(machine: dict, cpu_file: str, gpu_runs: list[dict]) -> str:
    """The title of ``ladder.png``: "CPU only" without a GPU run, else the GPUs measured.

    ``machine`` is the first CPU run's ``"machine"`` record, ``cpu_file`` the CPU runs' file
    names, ``gpu_runs`` the loaded ``gpu_ops_*.json`` files (rehearsals already left out).
    """
    cpu_line = (f"CPU: {machine.get('cpu_model', '?')}, {machine.get('logical_cpus', '?')} "
                f"logical CPUs ({cpu_file}, `python -m benchmarks.ops`)")
    if not gpu_runs:
        return ("conv GFLOP/s per layer, CPU only (no GPU run yet: "
                "`python -m benchmarks.gpu_ops` on a GPU adds its rungs)\n" + cpu_line)
    devices = ", ".join(str(run.get("device", "?")) for run in gpu_runs)
    return (f"conv GFLOP/s per layer: CPU backends and GPU rungs vs PyTorch\n{cpu_line}; "
            f"GPU: {devices}")


LADDER_CPU_RUNS = ("cpu_ops.json", "cpu_ops_epyc_avx512.json", "cpu_ops_epyc_avx2.json")
"""The CPU runs ``ladder.png`` shows, a row of panels each (those that exist): the default
``python -m benchmarks.ops`` output, then the latest run of each machine kind measured (the
AVX-512 EPYC, the AVX2 EPYC), as the README's tables."""


def _simd_width(machine: dict) -> str:
    """"AVX-512", "AVX2" or "SIMD not recorded", from a benchmark JSON's machine record."""
    flags = machine.get("simd") or []
    if any(f.startswith("avx512") for f in flags):
        return "AVX-512"
    return "AVX2" if "avx2" in flags else "SIMD not recorded"


def draw_ladder(out_dir: Path, results_dir: str | Path = RESULTS_DIR) -> list[Path]:
    """``ladder.png``: conv GFLOP/s per layer and backend, forward and backward.

    A row of CPU panels per run of :data:`LADDER_CPU_RUNS` found in ``results_dir`` (``python
    -m benchmarks.ops``, float32; at least ``cpu_ops.json``), its file and SIMD width in the
    panel titles, the CPU model in the figure's title: one bar
    per backend and PyTorch, with that machine's measured SGEMM rate as a dashed line,
    labelled, and a footnote saying what it is. For each ``gpu_ops_*.json`` (``python -m
    benchmarks.gpu_ops``) a row of GPU panels is added, one bar per rung and cuDNN; without one
    the title says "CPU only". Each row's legend sits under its panels, outside the bars.
    """
    plt = _pyplot()
    results_dir = Path(results_dir)
    cpu_path = results_dir / "cpu_ops.json"
    if not cpu_path.exists():
        raise FileNotFoundError(f"{cpu_path}: run `python -m benchmarks.ops` first")
    cpu_runs = [(name, json.loads((results_dir / name).read_text()))
                for name in LADDER_CPU_RUNS if (results_dir / name).exists()]
    gpu_runs = [json.loads(p.read_text()) for p in sorted(results_dir.glob("gpu_ops_*.json"))]
    gpu_runs = [run for run in gpu_runs if not run.get("rehearsal")]  # the simulator times nothing

    n_cpu = len(cpu_runs)
    n_rows = n_cpu + len(gpu_runs)
    row_inches = 6.4  # one row of panels, its legend and notes
    top_inches = 0.8  # the title
    height = top_inches + row_inches * n_rows
    fig, axes = plt.subplots(n_rows, 2, figsize=(13, height), squeeze=False)
    colors: dict[str, str] = {}
    for row, (name, cpu) in enumerate(cpu_runs):
        conv = [r for r in cpu["results"] if r["kind"] == "conv"]
        machine, peak = cpu["machine"], cpu.get("sgemm_gflops", {}).get("peak")
        for ax, op in zip(axes[row], ("forward", "backward"), strict=True):
            _bars(ax, [r for r in conv if r["op"] == op], "gflops", "backend",
                  f"CPU {op}, {_simd_width(machine)} ({name})",
                  "GFLOP/s (higher is better)", colors)
            if peak:
                ax.axvline(peak, color="0.3", linestyle="--", linewidth=1)
                ax.text(peak, 1.005, f"SGEMM peak {peak:.0f}", fontsize=8, va="bottom",
                        ha="center", color="0.3", transform=ax.get_xaxis_transform())
                ax.set_title(ax.get_title(), fontsize=10, pad=14)
                ax.set_xlim(0, max(ax.get_xlim()[1], 1.05 * peak))
        axes[row, 1].set_yticklabels([])
    for row, run in enumerate(gpu_runs, start=n_cpu):
        for ax, op in zip(axes[row], ("forward", "backward"), strict=True):
            rows = [dict(r, gflops=1e3 * r["tflops"]) for r in run["conv"] if r["op"] == op]
            _bars(ax, rows, "gflops", "impl", f"GPU conv {op}: {run.get('device', '?')}",
                  "GFLOP/s (higher is better)", colors)
        axes[row, 1].set_yticklabels([])

    fig.suptitle(ladder_title(cpu_runs[0][1]["machine"], ", ".join(n for n, _ in cpu_runs),
                              gpu_runs), fontsize=11)
    # each row: panels on top, then the legend and (first row) the peak note underneath
    panel_bottom, panel_top = 1.75, 0.5  # inches of a row below / above its panels
    for row in range(n_rows):
        row_top = height - top_inches - row * row_inches
        bottom = (row_top - row_inches + panel_bottom) / height
        for ax, left in zip(axes[row], (0.21, 0.6), strict=True):
            ax.set_position([left, bottom, 0.37, (row_inches - panel_bottom - panel_top)
                             / height])
        legend_y = bottom - 0.55 / height
        _legend(fig, axes[row], colors, legend_y, "CPU backend" if row < n_cpu else "GPU rung")
        if row == 0 and cpu_runs[0][1].get("sgemm_gflops", {}).get("peak"):
            fig.text(0.5, legend_y - 0.6 / height, PEAK_NOTE, ha="center", va="top",
                     fontsize=8, color="0.3")
    path = Path(out_dir) / "ladder.png"
    save_figure(fig, path, dpi=100)
    plt.close(fig)
    return [path]


# --------------------------------------------------------------------------- animations


class Slide(NamedTuple):
    """One sliding-kernel animation (``conv_<name>.gif``): the input and kernel sizes and the
    conv's stride, padding and dilation, the same along both axes.
    """

    name: str
    size: int
    kernel: int
    stride: int
    padding: int
    dilation: int


SLIDES = (
    Slide("padding", 5, 3, 1, 1, 1),  # the textbook's 5x5 example: 5x5 out, one frame each
    Slide("stride", 5, 3, 2, 1, 1),  # the same with stride 2: 3x3 out
    Slide("dilation", 7, 3, 1, 0, 2),  # a 3x3 kernel with holes covers 5x5: 3x3 out
)
"""The convolutions ``explain animations`` animates, one GIF each (``conv_<name>.gif``)."""

TRANSPOSE_X = np.array([[1.0, 2.0], [3.0, 4.0]])
"""The 2x2 input of the transposed-convolution animation (3x3 kernel 1..9, stride 2)."""

FRAME_MS = 700
"""How long each frame of a GIF shows, in milliseconds."""


def _frames_to_gif(frames, path: Path) -> Path:
    """Write a list of PIL images as a looping GIF at ``path`` (atomically)."""
    from .io import atomic_write

    first, rest = frames[0], frames[1:]
    return atomic_write(path, lambda f: first.save(f, format="GIF", save_all=True,
                                                   append_images=rest, duration=FRAME_MS,
                                                   loop=0, disposal=1))


def _frame(fig):
    """The figure drawn by Agg, as a palette PIL image (one GIF frame)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    image = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba())
    return image.convert("RGB").convert("P", palette=Image.Palette.ADAPTIVE, colors=64)


def slide_frames(slide: Slide) -> list:
    """The frames of one sliding-kernel GIF: one per output cell, in row-major order.

    Left, the input with its padding (grey) and, in blue, the taps the kernel reads for the
    current output (with dilation, every ``dilation``-th cell of its window); right, the
    output, each cell filled in when its window has been visited, the current one outlined.
    Values: the input 0..9 repeating, the kernel all ones, so each output is the sum of the
    taps it reads; the output comes from the naive backend.
    """
    from . import functional as F

    plt = _pyplot()
    _, n, k, s, p, d = slide
    x = (np.arange(n * n) % 10).reshape(n, n).astype(np.float64)  # (n, n)
    y = F.conv2d(x[None, None], np.ones((1, 1, k, k)), stride=s, padding=p, dilation=d,
                 backend="naive")[0, 0]  # (H_out, W_out)
    x_pad = np.pad(x, p)  # (n + 2p, n + 2p)
    pad_mask = np.pad(np.zeros((n, n), bool), p, constant_values=True)
    H_out, W_out = y.shape
    fig, (ax_in, ax_out) = plt.subplots(1, 2, figsize=(7.2, 3.9),
                                        gridspec_kw=dict(width_ratios=[n + 2 * p, n]))
    _grid(ax_in, x_pad, f"input {n}x{n}, padding={p}", shade=pad_mask)
    _grid(ax_out, y, f"output {H_out}x{W_out}")
    cells = list(ax_out.texts)  # row-major, filled in as the kernel visits them
    for text in cells:
        text.set_text("")
    taps = [_rect(0, 0, 1, 1, facecolor="tab:blue", alpha=0.35, edgecolor="tab:blue",
                  linewidth=1.5) for _ in range(k * k)]
    for tap in taps:
        ax_in.add_patch(tap)
    current = _rect(0, 0, 1, 1, fill=False, edgecolor="tab:cyan", linewidth=3.0)
    ax_out.add_patch(current)
    fig.subplots_adjust(left=0.02, right=0.98, top=0.78, bottom=0.03, wspace=0.15)
    frames = []
    for cell in range(H_out * W_out):  # one frame per output, the figure updated in place
        i, j = divmod(cell, W_out)
        for tap, (a, b) in zip(taps, np.ndindex(k, k), strict=True):
            tap.set_xy((j * s + b * d, i * s + a * d))  # (column, row) of the tap read
        cells[cell].set_text(f"{y[i, j]:g}")
        current.set_xy((j, i))
        fig.suptitle(f"conv2d: {k}x{k} kernel of ones, stride={s}, padding={p}, dilation={d}"
                     f"\ny[{i}, {j}] = sum of the {k * k} blue taps = {y[i, j]:g}", fontsize=10)
        frames.append(_frame(fig))
    plt.close(fig)
    return frames


def transpose_frames() -> list:
    """The frames of the transposed-convolution GIF: one per input cell, then the result.

    A transposed conv (stride 2, 3x3 kernel 1..9) *scatters*: input cell ``(i, j)`` adds
    ``x[i, j] * kernel`` onto the output window at ``(2i, 2j)``; overlapping windows add up.
    Frame ``t`` shows the output after the first ``t + 1`` scatters, the current window
    outlined; the last frame's output is checked against the naive backend's
    ``conv_transpose2d``.
    """
    from . import functional as F

    plt = _pyplot()
    x, k, s = TRANSPOSE_X, K9, 2
    H, W = x.shape
    size = (H - 1) * s + k.shape[0]  # 5
    y = np.zeros((size, size))
    steps = []
    for i in range(H):
        for j in range(W):
            y[i * s:i * s + 3, j * s:j * s + 3] += x[i, j] * k
            steps.append(((i, j), y.copy()))
    expected = F.conv_transpose2d(x[None, None], k[None, None], stride=s, backend="naive")
    if not np.array_equal(y, expected[0, 0]):
        raise RuntimeError("transposed-conv animation: the scatter disagrees with the "
                           "naive backend")
    fig, (ax_in, ax_k, ax_out) = plt.subplots(1, 3, figsize=(8.4, 3.8),
                                              gridspec_kw=dict(width_ratios=[2, 3, 5]))
    _grid(ax_in, x, "input 2x2")
    _grid(ax_k, k, "kernel 3x3")
    _grid(ax_out, y, f"output {size}x{size}")
    source = _rect(0, 0, 1, 1, fill=False, edgecolor="tab:orange", linewidth=3.0)
    ax_in.add_patch(source)
    window = _rect(0, 0, 3, 3, facecolor="tab:orange", alpha=0.25, edgecolor="tab:orange",
                   linewidth=2.5)
    ax_out.add_patch(window)
    fig.subplots_adjust(left=0.02, right=0.98, top=0.8, bottom=0.03, wspace=0.15)
    frames = []
    for (i, j), partial in steps:  # one frame per input cell, the figure updated in place
        for text, value in zip(ax_out.texts, partial.ravel(), strict=True):
            text.set_text(f"{value:g}")
        source.set_xy((j, i))
        window.set_xy((j * s, i * s))
        fig.suptitle(f"conv_transpose2d, stride={s}: input cell ({i}, {j}) adds "
                     f"{x[i, j]:g} * kernel onto output rows {i * s}..{i * s + 2}, "
                     f"columns {j * s}..{j * s + 2}\noverlapping windows add up",
                     fontsize=10)
        frames.append(_frame(fig))
    plt.close(fig)
    return frames


def animation_frame_counts() -> dict[str, int]:
    """``{file name: frames}`` of every GIF ``explain animations`` writes."""
    from kernels.common import conv_output_size

    counts = {f"conv_{sl.name}.gif": conv_output_size(sl.size, sl.kernel, sl.stride,
                                                       sl.padding, sl.dilation) ** 2
              for sl in SLIDES}
    counts["conv_transpose.gif"] = TRANSPOSE_X.size
    return counts


def draw_animations(out_dir: Path) -> list[Path]:
    """``conv_padding.gif``, ``conv_stride.gif``, ``conv_dilation.gif``, ``conv_transpose.gif``.

    In the manner of Dumoulin and Visin's "A guide to convolution arithmetic for deep
    learning" (its animations): a kernel sliding over an input with padding, with a stride,
    with dilation (:func:`slide_frames`), and a transposed convolution scattering each input
    cell onto the output (:func:`transpose_frames`).
    """
    paths = [_frames_to_gif(slide_frames(sl), Path(out_dir) / f"conv_{sl.name}.gif")
             for sl in SLIDES]
    paths.append(_frames_to_gif(transpose_frames(), Path(out_dir) / "conv_transpose.gif"))
    return paths


# --------------------------------------------------------------------------- samples


def draw_samples(out_dir: Path, data: str = "digits", n: int = 16,
                 resize: int | None = None, seed: int = 0) -> list[Path]:
    """``samples.png``: the first ``n`` training images of the data set ``data``, labelled.

    ``data`` is a ``--data`` form (``"cifar2:~/data/cifar-10"``); the images are shown as the
    model sees them before normalisation: after ``resize``, pixel values in [0, 1], one
    channel in grey, three as RGB. Each title is the label and, where the data set names
    its classes (:func:`minitorch_cnn.data.class_names`), the class name.
    """
    from . import data as _data

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n: expected a positive int (how many images), got {n!r}")
    plt = _pyplot()
    split = _data.load_dataset(data, seed=seed, resize=resize)
    names = _data.class_names(data)
    images, labels = split.x_train[:n], split.y_train[:n]  # (n, C, H, W), (n,)
    cols = min(len(images), 8)
    rows = -(-len(images) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.5 * cols, 1.7 * rows + 0.5),
                             squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, image, label in zip(axes.ravel(), images, labels, strict=False):
        if image.shape[0] == 1:
            ax.imshow(image[0], cmap="gray", vmin=0, vmax=1)
        else:
            ax.imshow(np.clip(image.transpose(1, 2, 0), 0, 1))  # (H, W, 3)
        name = f" {names[label]}" if names is not None and 0 <= label < len(names) else ""
        ax.set_title(f"{label}{name}", fontsize=9)
    C, H, W = images.shape[1:]
    fig.suptitle(f"{data}: the first {len(images)} training images ({C}x{H}x{W}) and labels",
                 fontsize=10)
    fig.tight_layout()
    path = Path(out_dir) / "samples.png"
    save_figure(fig, path, dpi=100)
    plt.close(fig)
    return [path]


# --------------------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``minitorch-cnn explain`` (shared with ``python -m``)."""
    parser.add_argument("what", nargs="*", metavar="WHAT",
                        help=f"pictures to draw: {', '.join(PICTURES)} (default: all "
                             f"of these), or samples (a data set's first images: --data, --n)")
    parser.add_argument("--out", default=None,
                        help="output folder (default: docs/img of the checkout this package "
                             "runs from; required for an installed package)")
    parser.add_argument("--checkpoint", default=None,
                        help="lenet: draw this LeNet-5 checkpoint instead of training one")
    parser.add_argument("--epochs", type=int, default=8,
                        help="lenet: epochs of the short training run (default 8)")
    parser.add_argument("--backend", default="numpy",
                        help="lenet: backend to train with (default numpy)")
    parser.add_argument("--limit-train", type=int, default=None,
                        help="lenet: train on the first N images only")
    parser.add_argument("--results", default=str(RESULTS_DIR),
                        help="ladder: the folder of the benchmark JSON files")
    parser.add_argument("--data", default="digits",
                        help="samples: the data set, a form of train's --data (default digits)")
    parser.add_argument("--n", type=int, default=16,
                        help="samples: how many images (default 16)")
    parser.add_argument("--resize", type=int, default=None, metavar="N",
                        help="samples: show the images resized to N x N, as train --resize")


CHECKOUT_IMG = Path(__file__).resolve().parents[1] / "docs" / "img"
"""Where the pictures of docs/ live when the package runs from a checkout (``pip install -e``)."""


def default_out() -> Path | None:
    """The checkout's ``docs/img`` (whatever the current folder), or None outside a checkout."""
    return CHECKOUT_IMG if CHECKOUT_IMG.is_dir() else None


def run(args: argparse.Namespace) -> int:
    """Draw what ``args`` asks for; print one line per file written. Returns the exit status."""
    what = list(dict.fromkeys(args.what)) or list(PICTURES)
    unknown = [name for name in what if name not in PICTURES + ON_REQUEST]
    if unknown:
        print(f"minitorch-cnn explain: error: unknown picture {unknown[0]!r}; expected some "
              f"of {', '.join(PICTURES + ON_REQUEST)}", file=sys.stderr)
        return 2
    try:
        _pyplot()
    except ImportError:
        print("minitorch-cnn explain: error: needs matplotlib (pip install -e '.[train]')",
              file=sys.stderr)
        return 2
    out = Path(args.out) if args.out is not None else default_out()
    if out is None:
        print("minitorch-cnn explain: error: --out DIR is required: this package does not run "
              f"from a checkout of minitorch-cnn (no {CHECKOUT_IMG})", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    draw = {
        "sliding": lambda: draw_sliding(out),
        "backward": lambda: draw_backward(out),
        "im2col": lambda: draw_im2col(out),
        "lenet": lambda: draw_lenet(out, args.checkpoint, args.epochs, args.backend,
                                    args.limit_train),
        "ladder": lambda: draw_ladder(out, args.results),
        "animations": lambda: draw_animations(out),
        "samples": lambda: draw_samples(out, args.data, args.n, args.resize),
    }
    for name in what:
        start = time.perf_counter()
        try:
            paths = draw[name]()
        except (FileNotFoundError, ValueError) as exc:
            print(f"minitorch-cnn explain {name}: error: {exc}", file=sys.stderr)
            return 2
        for path in paths:
            print(f"{path}  ({time.perf_counter() - start:.1f} s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m minitorch_cnn.explain [WHAT ...] [--out DIR]``; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m minitorch_cnn.explain",
                                     description="Draw the pictures of docs/.")
    add_arguments(parser)
    return run(parser.parse_args(argv))


__all__ = ["LADDER_CPU_RUNS", "ON_REQUEST", "PICTURES", "SLIDES", "Slide", "add_arguments",
           "animation_frame_counts", "backward_example", "draw_animations", "draw_backward",
           "draw_im2col", "draw_ladder",
           "draw_lenet", "draw_samples", "draw_sliding", "ladder_title", "main", "run",
           "slide_frames", "transpose_frames"]


if __name__ == "__main__":
    sys.exit(main())
