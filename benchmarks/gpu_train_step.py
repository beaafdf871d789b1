"""One training step on the GPU, ours vs PyTorch (cuDNN): LeNet-5, the MNIST CNN, ResNet-18.

    python -m benchmarks.gpu_train_step [--model lenet5|mnist_cnn|resnet18] [--batch 64]
                                        [--repeats 50] [--warmup 5] [--rung igemm]
                                        [--out PATH.json] [--rehearse]

A step is forward, mean softmax cross-entropy, backward and SGD (lr 0.1, momentum 0.9,
weight decay 1e-3) on a batch of float32 images already on the device (1x28x28; ResNet-18
1x96x96, d2l's size); it ends with the loss copied to the host (``float(loss)`` on both
sides, which also waits for the GPU). Contenders:

- ``ours``: the framework's model (``minitorch_cnn.models``) after ``model.to("cuda")``,
  with ``optim.SGD`` and ``losses.CrossEntropyLoss``, every op on the cuda backend, convs on
  the ``--rung`` kernels;
- ``torch``: ``reference.models`` on CUDA with ``torch.optim.SGD``,
  ``cudnn.benchmark = True`` and TF32 off (``cudnn.allow_tf32 = matmul.allow_tf32 = False``:
  FP32 against FP32).

Order of work, as in llm.c's ``dev/cuda``: check first (one step of each contender from the
same weights on the same batch; the loss and every parameter must equal torch's to 1e-4 of
their scale, float32), then warm up (JIT compiles, cuDNN autotunes), then time the steps
round-robin (``benchmarks.timing.time_interleaved``) with ``torch.cuda.synchronize()``
before and after each, and report the median and the min. "vs torch" is
``torch_ms / ours_ms`` (1.0 is parity). Our step's time includes Numba's per-launch Python
overhead (~60 launches) and a ``cudaMalloc`` per intermediate array (Numba does not cache
device allocations, unless a pooling allocator is set: ``kernels.cuda.memory``, whose
answer the JSON records); at LeNet sizes these, not the arithmetic, are most of it.

Writes ``benchmarks/results/gpu_train_step.json`` (device name, versions, model, shapes, ms;
``--out`` to keep one JSON per model).
Without a GPU it says so and exits with status 2. ``--rehearse`` runs the whole script (the
check, the timing loop, the JSON) in the Numba CUDA simulator with torch on the CPU, batch 1,
one timed step, the JSON in a temporary folder (LeNet-5 and the MNIST CNN only): a dry run, not a
measurement
(:mod:`benchmarks.gpu_device`).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.gpu_device import NO_GPU_EXIT, fill_defaults, open_device
from benchmarks.timing import format_table, machine_info, time_interleaved, write_json

RESULTS = Path(__file__).resolve().parent / "results" / "gpu_train_step.json"
INPUTS = {"lenet5": (1, 28, 28), "mnist_cnn": (1, 28, 28), "resnet18": (1, 96, 96)}  # d2l's
REHEARSE = {"lenet5", "mnist_cnn"}  # resnet18 in the simulator would take hours
LR, MOMENTUM, WEIGHT_DECAY = 0.1, 0.9, 1e-3
TOLERANCE = 1e-4  # float32: |ours - torch| <= 1e-4 * max(1, |torch|.max()) per tensor


def _framework(name, state, x, labels):
    """The framework's model on the device: ``model.to("cuda")``, our SGD and loss, every op
    on the cuda backend; the loss is the one number a step copies back."""
    import minitorch_cnn as mc
    from minitorch_cnn import losses, models, optim

    model = models.get_model(name)
    model.load_state_dict(state)
    model.to("cuda")
    model.needs_input_grad = False  # the images need no gradient, as in torch
    opt = optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    crit = losses.NLLLoss() if name in models.OUTPUTS_LOG_PROBS else losses.CrossEntropyLoss()

    def step() -> float:
        with mc.use_backend("cuda"):
            loss = crit(model(x), labels)
            opt.zero_grad()
            model.backward(crit.backward())
            opt.step()
        return loss

    return model, step


def _torch(name, state, x, labels, torch_device):
    import torch

    from minitorch_cnn import models
    from reference import models as ref_models

    model = ref_models.MODELS[name]().to(torch_device)
    loss_fn = (torch.nn.functional.nll_loss if name in models.OUTPUTS_LOG_PROBS
               else torch.nn.functional.cross_entropy)
    model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in state.items()})
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM,
                          weight_decay=WEIGHT_DECAY)

    def step() -> float:
        opt.zero_grad()
        loss = loss_fn(model(x), labels)
        loss.backward()
        opt.step()
        return float(loss.detach())

    return model, step


def _check(name, loss, params, torch_loss, torch_params) -> list[str]:
    """Differences beyond TOLERANCE between one of our steps and torch's, as messages."""
    errors = []
    if abs(loss - torch_loss) > TOLERANCE * max(1.0, abs(torch_loss)):
        errors.append(f"{name}: loss {loss} != torch {torch_loss}")
    for key, value in params.items():
        ref = torch_params[key]
        err = float(np.abs(value - ref).max())
        if err > TOLERANCE * max(1.0, float(np.abs(ref).max())):
            errors.append(f"{name}: {key} differs from torch by {err:.3g}")
    return errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=None, help="default 64; rehearsal 1")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed steps per contender (default 50; rehearsal 1)")
    parser.add_argument("--warmup", type=int, default=None,
                        help="untimed steps first (default 5; rehearsal 0)")
    parser.add_argument("--rung", default="igemm", help="conv rung: direct, tiled or igemm")
    parser.add_argument("--model", default="lenet5", choices=sorted(INPUTS),
                        help="the model whose step is timed")
    parser.add_argument("--rehearse", action="store_true",
                        help="dry run in the Numba CUDA simulator, torch on the CPU")
    parser.add_argument("--out", type=Path, default=None,
                        help="the JSON (default benchmarks/results/gpu_train_step.json; "
                             "rehearsal: in a new temporary folder)")
    args = parser.parse_args(argv)

    if args.rehearse and args.model not in REHEARSE:
        print(f"benchmarks.gpu_train_step: --model {args.model} is too large to rehearse in the "
              f"simulator; rehearse one of {sorted(REHEARSE)}", file=sys.stderr)
        return 2
    device = open_device(args.rehearse)
    if isinstance(device, str):
        print(f"benchmarks.gpu_train_step needs a CUDA GPU: {device}", file=sys.stderr)
        return NO_GPU_EXIT
    fill_defaults(args, device, batch=(64, 1), repeats=(50, 1), warmup=(5, 0))
    if args.out is None:
        args.out = (Path(tempfile.mkdtemp(prefix="gpu_train_step_rehearsal_"))
                    / "gpu_train_step_rehearsal.json" if device.rehearsal else RESULTS)

    import torch
    from numba import cuda

    import kernels.cuda as kc
    from kernels.cuda import memory
    from minitorch_cnn import init, models

    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    kc.set_conv_algorithm(args.rung)
    print(f"device: {device.name}; {args.model}, batch {args.batch}, float32, conv rung "
          f"{args.rung}")

    init.manual_seed(0)
    state = {k: v.astype(np.float32)
             for k, v in models.get_model(args.model).state_dict().items()}
    rng = np.random.default_rng(0)
    images = rng.standard_normal((args.batch, *INPUTS[args.model])).astype(np.float32)
    labels = rng.integers(0, 10, args.batch).astype(np.int64)
    d_images, d_labels = cuda.to_device(images), cuda.to_device(labels)
    t_images = torch.from_numpy(images).to(device.torch_device)
    t_labels = torch.from_numpy(labels).to(device.torch_device)

    # check: one step of each contender from the same weights on the same batch
    torch_model, torch_step = _torch(args.model, state, t_images, t_labels,
                                     device.torch_device)
    torch_loss = torch_step()
    torch_params = {k: v.detach().cpu().numpy() for k, v in torch_model.state_dict().items()}
    steps = {"torch": torch_step}
    model, step = _framework(args.model, state, d_images, d_labels)
    errors = _check("ours", step(), model.state_dict(), torch_loss, torch_params)
    steps["ours"] = step
    if errors:
        print("check failed, nothing timed:\n  " + "\n  ".join(errors), file=sys.stderr)
        return 1
    print(f"checked: one SGD step of each equals torch's (loss {torch_loss:.5f}, "
          f"parameters to {TOLERANCE:g} of their scale)")

    timings = time_interleaved(steps, repeats=args.repeats, warmup=args.warmup,
                               sync=device.sync)
    torch_ms = timings["torch"].median_ms
    rows = [
        {"step": name, "median_ms": t.median_ms, "min_ms": t.min_ms,
         "images_per_s": args.batch / (t.median_ms * 1e-3),
         "vs_torch": torch_ms / t.median_ms}
        for name, t in timings.items()
    ]
    print(format_table(rows, list(rows[0]), {"median_ms": ".3f", "min_ms": ".3f",
                                               "images_per_s": ",.0f", "vs_torch": ".2f"}))
    payload = {
        "model": args.model,
        "allocator": memory.allocator_name(),
        "benchmark": f"{args.model} training step on the GPU (forward + cross-entropy + backward + "
                     "SGD momentum 0.9, weight decay 1e-3), float32, batch on the device",
        "command": "python -m benchmarks.gpu_train_step " + " ".join(argv or sys.argv[1:]),
        "device": device.name,
        "rehearsal": device.rehearsal,
        "versions": device.versions(),
        "batch": args.batch,
        "dtype": "float32",
        "conv_rung": args.rung,
        "torch_settings": {"cudnn.benchmark": True, "cudnn.allow_tf32": False,
                           "matmul.allow_tf32": False},
        "check": {"tolerance": TOLERANCE, "torch_loss": torch_loss},
        "machine": machine_info(),
        "rows": rows,
        "samples_ms": {name: t.samples_ms for name, t in timings.items()},
    }
    print(f"wrote {write_json(args.out, payload)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
