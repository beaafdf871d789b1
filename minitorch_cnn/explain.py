"""The pictures of ``docs/``, drawn from the code they explain.

    minitorch-cnn explain                          # every picture, into the checkout's docs/img/
    minitorch-cnn explain sliding im2col --out /tmp/img
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

import numpy as np

from .io import save_figure

PICTURES = ("sliding", "im2col", "lenet", "ladder")
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


def draw_sliding(out_dir: Path) -> list[Path]:
    """``sliding.png``: the 3x3 kernel 1..9 at two positions of the 5x5 input, padding 1.

    Left, the padded input (padding grey) with the two windows outlined; middle, the kernel;
    right, the 5x5 output computed by the naive backend, with the two cells the windows make
    outlined in the same colours; below, each cell's sum of products written out.
    """
    from . import functional as F

    plt = _pyplot()
    x_pad = np.pad(X5, 1)  # (7, 7)
    y = F.conv2d(X5[None, None], K9[None, None], padding=1, backend="naive")[0, 0]  # (5, 5)
    positions = [(0, 0), (2, 3)]  # output cells (i, j); window rows i..i+2, cols j..j+2

    fig, axes = plt.subplots(1, 3, figsize=(11, 4.6),
                             gridspec_kw=dict(width_ratios=[7, 3, 5]))
    ax_in, ax_k, ax_out = axes
    _grid(ax_in, x_pad, "input, padding=1  (7, 7)", shade=np.pad(np.zeros((5, 5), bool), 1,
                                                                constant_values=True))
    _grid(ax_k, K9, "kernel  (3, 3)")
    _grid(ax_out, y, "output  (5, 5)")
    lines = []
    for (i, j), color in zip(positions, COLORS, strict=True):
        _outline(ax_in, j, i, 3, 3, color)
        _outline(ax_out, j, i, 1, 1, color)
        window = x_pad[i:i + 3, j:j + 3]  # (3, 3)
        terms = [f"{a:g}*{k:g}" for a, k in zip(window.ravel(), K9.ravel(), strict=True)
                 if a != 0]
        lines.append((f"y[{i}, {j}] = " + " + ".join(terms) + f" = {y[i, j]:g}", color))
    for n, (text, color) in enumerate(lines):
        fig.text(0.5, 0.1 - 0.055 * n, text, ha="center", fontsize=11, color=color,
                 family="monospace")
    fig.suptitle("cross-correlation: slide the kernel, multiply, sum (stride 1, padding 1)",
                 fontsize=12)
    fig.subplots_adjust(left=0.02, right=0.98, top=0.85, bottom=0.16, wspace=0.12)
    path = Path(out_dir) / "sliding.png"
    save_figure(fig, path, dpi=110)
    plt.close(fig)
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


def _bars(ax, rows, value_key, impl_key, title, unit):
    """Horizontal grouped bars: one group per layer, one bar per implementation."""
    layers = list(dict.fromkeys(r["layer"] for r in rows))
    impls = list(dict.fromkeys(r[impl_key] for r in rows))
    height = 0.8 / max(len(impls), 1)
    for k, impl in enumerate(impls):
        values = {r["layer"]: r[value_key] for r in rows if r[impl_key] == impl}
        ys = [i + k * height for i, layer in enumerate(layers) if layer in values]
        xs = [values[layer] for layer in layers if layer in values]
        ax.barh(ys, xs, height, label=impl)
    ax.set_yticks([i + 0.4 - height / 2 for i in range(len(layers))])
    ax.set_yticklabels(layers, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(unit)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)


def draw_ladder(out_dir: Path, results_dir: str | Path = RESULTS_DIR) -> list[Path]:
    """``ladder.png``: conv GFLOP/s per layer and backend, forward and backward.

    The CPU panels read ``cpu_ops.json`` (``python -m benchmarks.ops``): one bar per backend
    and PyTorch, with the machine's measured SGEMM rate as a dashed line. For each
    ``gpu_ops_*.json`` (``python -m benchmarks.gpu_ops``) a row of GPU panels is added, one
    bar per rung and cuDNN; without one, the figure says that no GPU has been measured.
    """
    plt = _pyplot()
    results_dir = Path(results_dir)
    cpu_path = results_dir / "cpu_ops.json"
    if not cpu_path.exists():
        raise FileNotFoundError(f"{cpu_path}: run `python -m benchmarks.ops` first")
    cpu = json.loads(cpu_path.read_text())
    gpu_runs = [json.loads(p.read_text()) for p in sorted(results_dir.glob("gpu_ops_*.json"))]
    gpu_runs = [run for run in gpu_runs if not run.get("rehearsal")]  # the simulator times nothing
    conv = [r for r in cpu["results"] if r["kind"] == "conv"]
    machine = cpu["machine"]
    peak = cpu.get("sgemm_gflops", {}).get("peak")

    n_rows = 1 + len(gpu_runs)
    fig, axes = plt.subplots(n_rows, 2, figsize=(13, 6.5 * n_rows), squeeze=False)
    for ax, op in zip(axes[0], ("forward", "backward"), strict=True):
        _bars(ax, [r for r in conv if r["op"] == op], "gflops", "backend",
              f"CPU conv {op}, {cpu.get('dtype', 'float32')}", "GFLOP/s (higher is better)")
        if peak:
            ax.axvline(peak, color="0.3", linestyle="--", linewidth=1)
            ax.text(peak, ax.get_ylim()[1], f" SGEMM {peak:.0f}", fontsize=8, va="top",
                    ha="right", rotation=90, color="0.3")
        ax.legend(fontsize=8, loc="lower right")
    axes[0, 1].set_yticklabels([])
    title = (f"CPU: {machine.get('cpu_model', '?')}, {machine.get('logical_cpus', '?')} "
             f"logical CPUs ({cpu_path.name}, `python -m benchmarks.ops`)")
    for row, run in enumerate(gpu_runs, start=1):
        for ax, op in zip(axes[row], ("forward", "backward"), strict=True):
            rows = [dict(r, gflops=1e3 * r["tflops"]) for r in run["conv"] if r["op"] == op]
            _bars(ax, rows, "gflops", "impl", f"GPU conv {op}: {run.get('device', '?')}",
                  "GFLOP/s (higher is better)")
            ax.legend(fontsize=8, loc="lower right")
        axes[row, 1].set_yticklabels([])
    if gpu_runs:
        title += "\nGPU: " + ", ".join(str(run.get("device", "?")) for run in gpu_runs)
    else:
        title += ("\nGPU: no measurements yet (no GPU has been available); "
                  "`python -m benchmarks.gpu_ops` on a GPU adds them")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    path = Path(out_dir) / "ladder.png"
    save_figure(fig, path, dpi=100)
    plt.close(fig)
    return [path]


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
                        help=f"pictures to draw: {', '.join(PICTURES)} (default: these "
                             f"four), or samples (a data set's first images: --data, --n)")
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
        "im2col": lambda: draw_im2col(out),
        "lenet": lambda: draw_lenet(out, args.checkpoint, args.epochs, args.backend,
                                    args.limit_train),
        "ladder": lambda: draw_ladder(out, args.results),
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


__all__ = ["ON_REQUEST", "PICTURES", "add_arguments", "draw_im2col", "draw_ladder",
           "draw_lenet", "draw_samples", "draw_sliding", "main", "run"]


if __name__ == "__main__":
    sys.exit(main())
