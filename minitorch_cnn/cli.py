"""The ``minitorch-cnn`` command.

    minitorch-cnn train --model lenet5 --epochs 10 --backend numba --data digits
    minitorch-cnn train --model mnist_cnn --epochs 3 --data mnist:~/data/mnist --compare-torch
    minitorch-cnn train --model dlwpt_net --epochs 5 --data cifar2:~/data/cifar-10
    minitorch-cnn demo                # LeNet-5 on the bundled digits, fastest CPU backend
    minitorch-cnn summary --model resnet18 --input 1 96 96
    minitorch-cnn backends
    minitorch-cnn explain [WHAT ...] [--out docs/img]   # the pictures of docs/
    minitorch-cnn explain samples --data cifar10:~/data/cifar-10 --n 16
    minitorch-cnn check my_conv.py:conv2d --op conv2d --no-groups --no-dilation

``check`` grades a learner's own kernel against PyTorch (:mod:`minitorch_cnn.check`): exit
status 0 when every drawn case passed, 1 on a failing case (the smallest one is printed).

``train`` writes ``runs/<model>-<data>-<backend>-<time>/`` (checkpoint.npz, metrics.json,
curves.png) and ends with a line giving the test accuracy and the images per second.

Every path it takes (``--data KIND:DIR``, ``--out``, ``explain --checkpoint``, ...) may start
with ``~`` and hold ``$VARIABLES``: :func:`minitorch_cnn.data.expand_path` expands them, as a
shell would have if it could see them. ``minitorch-cnn --help`` shows examples; ``train
--help`` lists every form of ``--data``, from :data:`minitorch_cnn.data.DATA_SOURCES`.
"""

from __future__ import annotations

import argparse
import sys
import textwrap

from . import backend as _backend
from . import data as _data
from . import explain, models

EXAMPLES = """\
examples:
  minitorch-cnn demo                   # LeNet-5 on the bundled digits (what `make demo` runs)
  minitorch-cnn train --model lenet5 --epochs 10 --backend numba --data digits
  minitorch-cnn train --model mnist_cnn --epochs 3 --data mnist:~/data/mnist --compare-torch
  minitorch-cnn train --data fashion-mnist:$HOME/data/fashion --out ~/runs > train.log 2>&1
  minitorch-cnn train --model dlwpt_net --epochs 5 --data cifar2:~/data/cifar-10
  minitorch-cnn train --model dlwpt_net --data imagefolder:~/data/birds-vs-planes --resize 32
  minitorch-cnn summary --model resnet18 --input 1 96 96
  minitorch-cnn backends               # which kernel backends run here, and why not
  minitorch-cnn explain sliding im2col --out docs/img
  minitorch-cnn explain samples --data cifar10:~/data/cifar-10 --n 16 --out /tmp
  minitorch-cnn check my_conv.py:conv2d --op conv2d --no-groups --no-dilation
                                       # grade your own conv2d against PyTorch
  minitorch-cnn train --help           # every option, and every form of --data
"""

PATH_OPTIONS = ("out", "checkpoint", "results")
"""The options (of any command) that name a file or folder; ``--data``'s DIR is the data's."""

DEMO = dict(model="lenet5", data="digits", epochs=15, batch_size=32)
"""``make demo``: LeNet-5 on the bundled digits; the CLI picks the fastest CPU backend."""


def _add_train_options(parser: argparse.ArgumentParser, defaults: dict) -> None:
    parser.add_argument("--model", default=defaults.get("model", "lenet5"),
                        choices=sorted(models.MODELS))
    parser.add_argument("--data", default=defaults.get("data", "digits"),
                        help=f"one of {', '.join(_data.data_forms())} (see 'data' below; "
                             f"default {defaults.get('data', 'digits')})")
    parser.add_argument("--resize", type=int, default=None, metavar="N",
                        help="resize every image to N x N (bilinear, antialiased when "
                             "shrinking: PIL's BILINEAR; default: the data's own size)")
    parser.add_argument("--epochs", type=int, default=defaults.get("epochs", 10))
    parser.add_argument("--backend", default=None,
                        help=f"one of {', '.join(_backend.BACKEND_MODULES)} (default: numba "
                             f"if available, else numpy); numba and cuda compile their "
                             f"kernels on first use, about a minute on a cold cache")
    parser.add_argument("--batch-size", type=int, default=defaults.get("batch_size", 64))
    parser.add_argument("--optimizer", choices=["sgd", "adam"], default=None,
                        help="default: the model's preset")
    parser.add_argument("--lr", type=float, default=None, help="default: the model's preset")
    parser.add_argument("--momentum", type=float, default=None)
    from .train import LR_SCHEDULES

    parser.add_argument("--lr-schedule", choices=LR_SCHEDULES, default="none",
                        help="step: x0.1 after each third of the epochs; cosine: to 0 over the "
                             "epochs; warmup-cosine: a linear warm-up from lr/10 over the first "
                             "fifth, then cosine; onecycle: up to lr and down, per batch "
                             "(default: none, a constant lr)")
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument("--init", choices=["default", "xavier"], default=None,
                        help="weight init (default: the model's preset)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs",
                        help="output directory (default: runs/; ~ and $VARIABLES expanded)")
    parser.add_argument("--run-name", default=None)
    parser.add_argument("--compare-torch", action="store_true",
                        help="also train the PyTorch twin on the same batches")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress display (a bar on a terminal; one line per epoch "
                             "in a log file or pipe)")
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--no-checkpoint", action="store_true")
    parser.add_argument("--limit-train", type=int, default=None,
                        help="train on the first N images only")
    parser.add_argument("--limit-test", type=int, default=None)


def data_help(width: int = 100) -> str:
    """The ``data`` section of ``train --help``: one entry per row of ``DATA_SOURCES``."""
    lines = ["data (--data; a DIR may start with ~ and hold $VARIABLES):"]
    for source in _data.DATA_SOURCES.values():
        lines.append(textwrap.fill(source.description, width=width,
                                   initial_indent=f"  {source.form:<20} ",
                                   subsequent_indent=" " * 23))
    return "\n".join(lines)


def _train_epilog(command: str) -> str:
    examples = [line for line in EXAMPLES.splitlines()[1:]
                if f" {command} " in line and "--help" not in line]
    return data_help() + "\n\nexamples:\n" + "\n".join(examples) + "\n"


def _subparser(sub, name: str, summary: str, **kwargs) -> argparse.ArgumentParser:
    """A command whose help keeps its epilog's line breaks (the examples, the data table)."""
    return sub.add_parser(name, help=summary, description=summary[0].upper() + summary[1:] + ".",
                          formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minitorch-cnn",
        description="Train the CNNs of d2l and the PyTorch lectures with hand-written "
                    "kernels, no autograd.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train_options(_subparser(sub, "train", "train a model",
                                  epilog=_train_epilog("train")), {})
    _add_train_options(_subparser(sub, "demo", "a short LeNet-5 run on the bundled digits "
                                               "(what `make demo` runs)",
                                  epilog=_train_epilog("demo")), DEMO)
    summary = sub.add_parser("summary", help="layer-by-layer shapes, parameters and FLOPs")
    summary.add_argument("--model", default="lenet5", choices=sorted(models.MODELS))
    summary.add_argument("--input", type=int, nargs=3, default=None, metavar=("C", "H", "W"),
                         help="input shape (default: the model's, models.INPUT_SHAPES: 1 28 28; "
                              "resnet18 1 96 96; the CIFAR-2 nets 3 32 32)")
    sub.add_parser("backends", help="which kernel backends run here")
    from .check import add_arguments as add_check_arguments

    add_check_arguments(_subparser(
        sub, "check", "grade your own kernel: run the tests' hypothesis problems through "
                      "FILE:FUNCTION and compare with PyTorch (else the naive backend); exit "
                      "0 when every case passed, 1 on a failing case, whose smallest form "
                      "is printed",
        epilog="examples:\n  minitorch-cnn check docs/exercises/solutions/conv2d.py:conv2d "
               "--op conv2d\n  minitorch-cnn check my_conv.py:conv2d --op conv2d --no-groups "
               "--no-dilation\n"))
    explain.add_arguments(sub.add_parser(
        "explain", help="draw the pictures of docs/ (sliding, im2col, lenet, ladder, "
                        "animations), or a data set's first images (samples --data SPEC)"))
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
        limit_train=args.limit_train, limit_test=args.limit_test, resize=args.resize,
        lr_schedule=args.lr_schedule)


def expand_path_options(args: argparse.Namespace) -> argparse.Namespace:
    """Expand ``~`` and ``$VARIABLES`` in every option of :data:`PATH_OPTIONS` that is set.

    Raises ``ValueError`` naming the option when a variable is not set.
    """
    for name in PATH_OPTIONS:
        value = getattr(args, name, None)
        if isinstance(value, str):
            setattr(args, name, str(_data.expand_path(value, argument=f"--{name}")))
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        expand_path_options(args)
    except ValueError as exc:
        print(f"minitorch-cnn {args.command}: error: {exc}", file=sys.stderr)
        return 2
    if args.command == "backends":
        for name, status in _backend.backends(verbose=True).items():
            print(f"{name:<6} {status}")
        return 0
    if args.command == "explain":
        return explain.run(args)
    if args.command == "check":
        from .check import run as run_check

        return run_check(args)
    if args.command == "summary":
        from .summary import summary

        shape = tuple(args.input) if args.input else models.INPUT_SHAPES[args.model]
        summary(models.get_model(args.model), shape)
        return 0

    from .memory import keep_freed_memory
    from .train import final_line, train

    keep_freed_memory()  # this process is ours: the steps reuse freed buffers (memory.py)
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
