"""The ``minitorch-cnn`` command.

    minitorch-cnn train --model lenet5 --epochs 10 --backend numba --data digits
    minitorch-cnn train --model mnist_cnn --epochs 3 --data mnist:~/data/mnist --compare-torch
    minitorch-cnn demo                # LeNet-5 on the bundled digits, fastest CPU backend
    minitorch-cnn summary --model resnet18 --input 1 96 96
    minitorch-cnn backends
    minitorch-cnn explain [WHAT ...] [--out docs/img]   # the pictures of docs/

``train`` writes ``runs/<model>-<data>-<backend>-<time>/`` (checkpoint.npz, metrics.json,
curves.png) and ends with a line giving the test accuracy and the images per second.
"""

from __future__ import annotations

import argparse
import sys

from . import backend as _backend
from . import explain, models

DEMO = dict(model="lenet5", data="digits", epochs=15, batch_size=32)
"""``make demo``: LeNet-5 on the bundled digits; the CLI picks the fastest CPU backend."""


def _add_train_options(parser: argparse.ArgumentParser, defaults: dict) -> None:
    parser.add_argument("--model", default=defaults.get("model", "lenet5"),
                        choices=sorted(models.MODELS))
    parser.add_argument("--data", default=defaults.get("data", "digits"),
                        help="'digits' (bundled, no download) or 'mnist:DIR' (IDX files)")
    parser.add_argument("--epochs", type=int, default=defaults.get("epochs", 10))
    parser.add_argument("--backend", default=None,
                        help="naive, numpy, numba or cuda (default: numba if available, "
                             "else numpy)")
    parser.add_argument("--batch-size", type=int, default=defaults.get("batch_size", 64))
    parser.add_argument("--optimizer", choices=["sgd", "adam"], default=None,
                        help="default: the model's preset")
    parser.add_argument("--lr", type=float, default=None, help="default: the model's preset")
    parser.add_argument("--momentum", type=float, default=None)
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument("--init", choices=["default", "xavier"], default=None,
                        help="weight init (default: the model's preset)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs", help="output directory (default: runs/)")
    parser.add_argument("--run-name", default=None)
    parser.add_argument("--compare-torch", action="store_true",
                        help="also train the PyTorch twin on the same batches")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--no-checkpoint", action="store_true")
    parser.add_argument("--limit-train", type=int, default=None,
                        help="train on the first N images only")
    parser.add_argument("--limit-test", type=int, default=None)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minitorch-cnn",
        description="Train the seed CNNs with hand-written kernels, no autograd.")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train_options(sub.add_parser("train", help="train a model"), {})
    _add_train_options(sub.add_parser("demo", help="a short LeNet-5 run on the bundled "
                                                   "digits (what `make demo` runs)"), DEMO)
    summary = sub.add_parser("summary", help="layer-by-layer shapes, parameters and FLOPs")
    summary.add_argument("--model", default="lenet5", choices=sorted(models.MODELS))
    summary.add_argument("--input", type=int, nargs=3, default=None, metavar=("C", "H", "W"),
                         help="input shape (default 1 28 28; resnet18 1 96 96)")
    sub.add_parser("backends", help="which kernel backends run here")
    explain.add_arguments(sub.add_parser(
        "explain", help="draw the pictures of docs/ (sliding, im2col, lenet, ladder)"))
    return parser


def _config_from_args(args):
    from .train import TrainConfig

    return TrainConfig(
        model=args.model, data=args.data, epochs=args.epochs, backend=args.backend,
        batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr,
        momentum=args.momentum, weight_decay=args.weight_decay, init=args.init,
        seed=args.seed, out=args.out, run_name=args.run_name,
        progress=not args.no_progress, plot=not args.no_plot,
        checkpoint=not args.no_checkpoint, compare_torch=args.compare_torch,
        limit_train=args.limit_train, limit_test=args.limit_test)


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.command == "backends":
        for name, status in _backend.backends(verbose=True).items():
            print(f"{name:<6} {status}")
        return 0
    if args.command == "explain":
        return explain.run(args)
    if args.command == "summary":
        from .summary import summary

        shape = tuple(args.input) if args.input else (
            (1, 96, 96) if args.model == "resnet18" else (1, 28, 28))
        summary(models.get_model(args.model), shape)
        return 0

    from .train import final_line, train

    try:
        result = train(_config_from_args(args))
    except (ValueError, FileNotFoundError, FloatingPointError) as exc:
        print(f"minitorch-cnn {args.command}: error: {exc}", file=sys.stderr)
        return 2
    if result.plot_path is not None:
        print(f"plot: {result.plot_path}")
    if result.checkpoint_path is not None:
        print(f"checkpoint: {result.checkpoint_path}")
    print(final_line(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
