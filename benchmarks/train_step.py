"""One training step (forward, backward, SGD) with our framework vs PyTorch on the CPU.

    python -m benchmarks.train_step [--batch 64] [--repeats 20] [--backends numpy,numba]
                                    [--models lenet5,mnist_cnn] [--rounds 1] [--threads 2]
                                    [--out benchmarks/results/cpu_train_step.json]

Models: d2l's LeNet-5 (``minitorch_cnn.models.lenet5`` and its twin
``reference.models.lenet5``) and the MNIST CNN of "PyTorch Deep Learning Practice", lecture
10 (``models.MnistCNN``, twin ``reference.models.MnistCNN``). The same float32 weights, the
same batch of 1x28x28 images and labels, the same SGD (lr 0.1, momentum 0.9). Our model has
``needs_input_grad = False``, as a training loop sets it: its first conv skips grad_x, as
PyTorch's does for an input that does not require grad. Before timing, one step of each is
compared: the loss and every updated parameter must agree (float32, 1e-4 relative to each
tensor's scale). Then the steps are timed interleaved (ours, torch, ours, ...), after
warm-up, ``--rounds`` times (each round a fresh interleaved run: on a busy machine the
spread between rounds is the noise), and the table gives the median and min in ms, images
per second and the ratio to torch of the same round. Thread counts are the same on both
sides (``--threads``), and written to the JSON with the machine and versions.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from benchmarks.timing import format_table, machine_info, time_interleaved, write_json

MODELS = {  # name -> (our constructor, its PyTorch twin's), both in module ``models``
    "lenet5": ("lenet5", "lenet5"),
    "mnist_cnn": ("MnistCNN", "MnistCNN"),
}


def _our_step(name: str, backend: str, batch: np.ndarray, labels: np.ndarray, state: dict):
    import minitorch_cnn as mc
    from minitorch_cnn import models, nn, optim

    model = getattr(models, MODELS[name][0])().to(np.float32)
    model.load_state_dict(state)
    model.needs_input_grad = False  # the batch is data: the first conv skips grad_x
    criterion = nn.CrossEntropyLoss()
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    def step() -> float:
        with mc.use_backend(backend):
            opt.zero_grad()
            loss = criterion(model(batch), labels)
            model.backward(criterion.backward())
            opt.step()
        return loss

    return model, step


def _torch_step(name: str, batch: np.ndarray, labels: np.ndarray, state: dict):
    import torch

    from reference import models as tm

    model = getattr(tm, MODELS[name][1])().float()
    model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in state.items()})
    criterion = torch.nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    xb, yb = torch.from_numpy(batch), torch.from_numpy(labels)

    def step() -> float:
        opt.zero_grad()
        loss = criterion(model(xb), yb)
        loss.backward()
        opt.step()
        return float(loss.detach())

    return model, step


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--backends", default="numpy,numba")
    parser.add_argument("--models", "--model", default=",".join(MODELS),
                        help="one model or a comma list (default: all)")
    parser.add_argument("--out", default="benchmarks/results/cpu_train_step.json")
    args = parser.parse_args(argv)

    import torch

    import minitorch_cnn as mc
    from minitorch_cnn import models

    torch.set_num_threads(args.threads)
    try:
        import numba

        numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    except ImportError:
        pass
    backends = [b for b in args.backends.split(",") if b in mc.backends()]
    rng = np.random.default_rng(0)
    batch = rng.standard_normal((args.batch, 1, 28, 28)).astype(np.float32)
    labels = rng.integers(0, 10, args.batch)
    rows, samples = [], {}
    for name in args.models.split(","):
        model = getattr(models, MODELS[name][0])()
        state = {k: v.astype(np.float32) for k, v in model.state_dict().items()}
        steps = _checked_steps(name, backends, batch, labels, state)
        for round_ in range(args.rounds):
            timings = time_interleaved(steps, repeats=args.repeats, warmup=args.warmup)
            torch_ms = timings["torch"].median_ms
            rows += [
                {"model": name, "batch": args.batch, "round": round_, "backend": backend,
                 "median_ms": t.median_ms, "min_ms": t.min_ms,
                 "images_per_s": args.batch / (t.median_ms * 1e-3),
                 "ratio_to_torch": t.median_ms / torch_ms}
                for backend, t in timings.items()
            ]
            samples[f"{name}/{round_}"] = {b: t.samples_ms for b, t in timings.items()}
    print(format_table(rows, list(rows[0]), {"median_ms": ".2f", "min_ms": ".2f",
                                               "images_per_s": ",.0f", "ratio_to_torch": ".2f"}))
    payload = {
        "benchmark": "training step (forward + backward + SGD momentum), float32, per model",
        "command": "python -m benchmarks.train_step " + " ".join(argv or sys.argv[1:]),
        "threads": {"torch": torch.get_num_threads(), "numba": _numba_threads()},
        "machine": machine_info(),
        "rows": rows,
        "samples_ms": samples,
    }
    print(f"wrote {write_json(args.out, payload)}")
    return 0


def _checked_steps(name: str, backends: list[str], batch, labels, state: dict) -> dict:
    """``{"torch": step, backend: step, ...}`` after one step of each equals torch's."""
    torch_model, torch_step = _torch_step(name, batch, labels, state)
    torch_loss = torch_step()
    expected = {k: v.detach().numpy() for k, v in torch_model.state_dict().items()}
    steps = {"torch": torch_step}
    for backend in backends:
        model, step = _our_step(name, backend, batch, labels, state)
        loss = step()
        assert abs(loss - torch_loss) <= 1e-4 * max(1.0, abs(torch_loss)), (backend, loss)
        for key, value in model.state_dict().items():
            scale = max(1.0, float(np.abs(expected[key]).max()))
            assert np.abs(value - expected[key]).max() <= 1e-4 * scale, (name, backend, key)
        steps[backend] = step
    print(f"checked {name}: one SGD step of each backend equals torch's "
          f"(loss {torch_loss:.4f})")
    return steps


def _numba_threads() -> int | None:
    try:
        import numba
    except ImportError:
        return None
    return numba.get_num_threads()


if __name__ == "__main__":
    raise SystemExit(main())
