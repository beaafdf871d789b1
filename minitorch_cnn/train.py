"""The training loop: mini-batch SGD with explicit forward, loss, backward and step.

One step, written out as a learner would::

    logits = model(x)                  # every layer caches what its backward needs
    loss = criterion(logits, y)        # a float
    model.backward(criterion.backward())   # grad_logits back through every layer
    optimizer.step(); optimizer.zero_grad()

:func:`train` adds what a real run needs: data loading and normalisation, a progress bar
(tqdm, if installed), per-epoch loss and train/test accuracy, an ``.npz`` checkpoint after
every epoch, ``metrics.json`` and a PNG of the curves, and, with ``compare_torch``, the
PyTorch twin trained on the very same batches. Output goes to ``runs/<name>/``.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

from . import backend as _backend
from . import data as _data
from . import init, io, losses, models, optim


@dataclasses.dataclass
class TrainConfig:
    """Everything a run depends on; the CLI flags map one to one onto these fields."""

    model: str = "lenet5"
    data: str = "digits"
    epochs: int = 10
    backend: str | None = None  # None: the fastest CPU backend (numba, else numpy)
    batch_size: int = 64
    optimizer: str | None = None  # "sgd" or "adam"; None: the model's preset
    lr: float | None = None  # None: the model's preset
    momentum: float | None = None
    weight_decay: float = 0.0
    init: str | None = None  # "default" (PyTorch's) or "xavier"; None: the model's preset
    seed: int = 0
    out: str = "runs"
    run_name: str | None = None
    progress: bool = True
    plot: bool = True
    checkpoint: bool = True
    compare_torch: bool = False
    limit_train: int | None = None  # use only the first N training / test images
    limit_test: int | None = None


# Settings that train each model in a few epochs. The ReLU nets learn with SGD + momentum.
# The sigmoid LeNet sits on a plateau (loss 2.30) for hundreds of SGD steps, in PyTorch too:
# d2l trains it with lr 0.9 for 10 epochs of 60,000 images, ~2,300 steps; the bundled digits
# give 45 steps an epoch. Adam with Xavier init leaves the plateau within 2-3 epochs.
PRESETS = {
    "lenet5": dict(optimizer="adam", lr=0.01, momentum=0.0, init="xavier"),
    "mnist_cnn": dict(optimizer="sgd", lr=0.01, momentum=0.9, init="default"),
    "mnist_cnn3": dict(optimizer="sgd", lr=0.01, momentum=0.9, init="default"),
    "residual_net": dict(optimizer="sgd", lr=0.01, momentum=0.9, init="default"),
    "inception_net": dict(optimizer="sgd", lr=0.01, momentum=0.9, init="default"),
    "simple_cnn": dict(optimizer="sgd", lr=0.01, momentum=0.9, init="default"),
    "resnet18": dict(optimizer="sgd", lr=0.01, momentum=0.9, init="default"),
}

DEFAULT_LR = {"sgd": 0.01, "adam": 1e-3}  # when --optimizer differs from the preset's


@dataclasses.dataclass
class EpochStats:
    epoch: int
    train_loss: float
    train_accuracy: float
    test_accuracy: float
    seconds: float  # training time of the epoch (forward, backward, step), not evaluation
    images_per_second: float
    torch_train_loss: float | None = None
    torch_test_accuracy: float | None = None


@dataclasses.dataclass
class TrainResult:
    config: TrainConfig
    backend: str
    history: list[EpochStats]
    test_accuracy: float
    test_correct: int
    test_total: int
    images_per_second: float
    run_dir: Path
    plot_path: Path | None
    checkpoint_path: Path | None
    torch_test_accuracy: float | None = None


def fastest_cpu_backend() -> str:
    """``"numba"`` if it is usable here, else ``"numpy"``."""
    return "numba" if "numba" in _backend.backends() else "numpy"


def xavier_init_(model) -> None:
    """Xavier-uniform weights and zero biases for every Conv2d and Linear (d2l's LeNet init)."""
    from .nn import Conv2d, Linear

    for module in model.modules():
        if isinstance(module, (Conv2d, Linear)):
            init.xavier_uniform_(module.weight)
            if module.bias is not None:
                init.zeros_(module.bias)


def predict(model, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Predicted classes (N,) in eval mode; the model's mode is restored afterwards."""
    modes = [m.training for m in model.modules()]
    model.eval()
    try:
        out = [model(x[i:i + batch_size]).argmax(axis=1) for i in range(0, len(x), batch_size)]
    finally:
        for m, mode in zip(model.modules(), modes, strict=True):
            object.__setattr__(m, "training", mode)
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def _torch_predict(twin, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    import torch

    twin.eval()
    with torch.no_grad():
        out = [twin(torch.from_numpy(x[i:i + batch_size])).argmax(1).numpy()
               for i in range(0, len(x), batch_size)]
    twin.train()
    return np.concatenate(out)


def _progress(iterable, enabled: bool, desc: str, total: int):
    if not enabled:
        return iterable
    try:
        from tqdm import tqdm
    except ImportError:
        return iterable
    return tqdm(iterable, desc=desc, total=total, leave=False, file=sys.stderr,
                dynamic_ncols=True)


def _make_optimizer(name: str, params, lr: float, momentum: float, weight_decay: float):
    if name == "sgd":
        return optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return optim.Adam(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"optimizer: expected 'sgd' or 'adam', got {name!r}")


class _TorchTwin:
    """The PyTorch twin of the model, trained on the same batches (``--compare-torch``)."""

    def __init__(self, config: TrainConfig, model, optimizer: str, lr: float,
                 momentum: float) -> None:
        try:
            import torch

            import reference.models as ref_models
        except ImportError as exc:
            raise ValueError(
                f"compare_torch: needs torch and the repository's reference package "
                f"(pip install -e '.[reference]'); {exc}") from None
        self.torch = torch
        self.model = ref_models.MODELS[config.model]()
        self.model.load_state_dict({k: torch.from_numpy(v) for k, v in
                                    model.state_dict().items()})
        self.model.train()
        if optimizer == "sgd":
            self.opt = torch.optim.SGD(self.model.parameters(), lr=lr, momentum=momentum,
                                       weight_decay=config.weight_decay)
        else:
            self.opt = torch.optim.Adam(self.model.parameters(), lr=lr,
                                        weight_decay=config.weight_decay)
        self.loss_fn = (torch.nn.NLLLoss() if config.model in models.OUTPUTS_LOG_PROBS
                        else torch.nn.CrossEntropyLoss())

    def step(self, x: np.ndarray, y: np.ndarray) -> float:
        self.opt.zero_grad()
        loss = self.loss_fn(self.model(self.torch.from_numpy(x)), self.torch.from_numpy(y))
        loss.backward()
        self.opt.step()
        return float(loss.item())


def train(config: TrainConfig, log=print) -> TrainResult:
    """Train ``config.model`` on ``config.data``; see the module docstring."""
    if config.model not in models.MODELS:
        raise ValueError(f"model: unknown model {config.model!r}; expected one of "
                         f"{sorted(models.MODELS)}")
    if config.epochs < 1:
        raise ValueError(f"epochs: expected a positive int, got {config.epochs}")
    backend = config.backend or fastest_cpu_backend()
    preset = PRESETS[config.model]
    optimizer_name = config.optimizer or preset["optimizer"]
    if optimizer_name == preset["optimizer"]:
        default_lr, default_momentum = preset["lr"], preset["momentum"]
    else:  # the preset's step size is for the preset's optimizer
        default_lr, default_momentum = DEFAULT_LR.get(optimizer_name, 0.01), 0.9
    lr = default_lr if config.lr is None else config.lr
    momentum = default_momentum if config.momentum is None else config.momentum
    init_name = config.init or preset["init"]

    with _backend.use_backend(backend):
        split = _data.load_dataset(config.data, seed=config.seed)
        x_train, y_train, x_test, y_test = split
        if config.limit_train:
            x_train, y_train = x_train[:config.limit_train], y_train[:config.limit_train]
        if config.limit_test:
            x_test, y_test = x_test[:config.limit_test], y_test[:config.limit_test]
        mean, std = _data.normalization_stats(x_train)
        x_train, x_test = _data.normalize(x_train, mean, std), _data.normalize(x_test, mean, std)

        init.manual_seed(config.seed)
        model = models.get_model(config.model)
        if init_name == "xavier":
            xavier_init_(model)
        elif init_name != "default":
            raise ValueError(f"init: expected 'default' or 'xavier', got {init_name!r}")
        criterion = (losses.NLLLoss() if config.model in models.OUTPUTS_LOG_PROBS
                     else losses.CrossEntropyLoss())
        optimizer = _make_optimizer(optimizer_name, model.parameters(), lr, momentum,
                                    config.weight_decay)
        twin = (_TorchTwin(config, model, optimizer_name, lr, momentum)
                if config.compare_torch else None)

        run_name = config.run_name or (
            f"{config.model}-{config.data.split(':')[0]}-{backend}-"
            f"{time.strftime('%Y%m%d-%H%M%S')}")
        run_dir = Path(config.out) / run_name
        run_dir.mkdir(parents=True, exist_ok=True)
        loader = _data.DataLoader(x_train, y_train, config.batch_size, shuffle=True,
                                  seed=config.seed)
        log(f"training {config.model} on {config.data} ({len(x_train)} train / {len(x_test)} "
            f"test images) with backend {backend}: {optimizer_name} lr={lr} "
            f"momentum={momentum} weight_decay={config.weight_decay} "
            f"batch_size={config.batch_size} init={init_name}, {config.epochs} epochs")

        history: list[EpochStats] = []
        checkpoint_path = run_dir / "checkpoint.npz" if config.checkpoint else None
        total_images, total_seconds = 0, 0.0
        for epoch in range(1, config.epochs + 1):
            model.train()
            loss_sum, correct, seen, seconds, torch_loss_sum = 0.0, 0, 0, 0.0, 0.0
            batches = _progress(loader, config.progress, f"epoch {epoch}/{config.epochs}",
                                len(loader))
            for xb, yb in batches:
                start = time.perf_counter()
                logits = model(xb)
                loss = criterion(logits, yb)
                model.backward(criterion.backward())
                optimizer.step()
                optimizer.zero_grad()
                seconds += time.perf_counter() - start
                if not np.isfinite(loss):
                    raise FloatingPointError(
                        f"epoch {epoch}: the loss became {loss}; lower the learning rate "
                        f"(--lr, now {lr})")
                loss_sum += loss * len(xb)
                correct += int((logits.argmax(axis=1) == yb).sum())
                seen += len(xb)
                if twin is not None:
                    torch_loss_sum += twin.step(xb, yb) * len(xb)
                if hasattr(batches, "set_postfix"):
                    batches.set_postfix(loss=f"{loss:.4f}")
            total_images += seen
            total_seconds += seconds
            test_accuracy = float((predict(model, x_test) == y_test).mean())
            stats = EpochStats(epoch, loss_sum / seen, correct / seen, test_accuracy, seconds,
                               seen / seconds if seconds > 0 else float("inf"))
            line = (f"epoch {epoch:>3}/{config.epochs}  loss {stats.train_loss:.4f}  "
                    f"train acc {stats.train_accuracy:.4f}  test acc {test_accuracy:.4f}  "
                    f"({seconds:.1f} s, {stats.images_per_second:,.0f} images/s)")
            if twin is not None:
                stats.torch_train_loss = torch_loss_sum / seen
                stats.torch_test_accuracy = float(
                    (_torch_predict(twin.model, x_test) == y_test).mean())
                line += (f"  | torch: loss {stats.torch_train_loss:.4f}  "
                         f"test acc {stats.torch_test_accuracy:.4f}")
            log(line)
            history.append(stats)
            if checkpoint_path is not None:
                io.save(model, checkpoint_path, meta=dict(
                    model=config.model, epoch=epoch, test_accuracy=test_accuracy,
                    backend=backend, data=config.data, normalize_mean=mean,
                    normalize_std=std))

    test_correct = int(round(history[-1].test_accuracy * len(x_test)))
    images_per_second = total_images / total_seconds if total_seconds > 0 else float("inf")
    io.write_text(run_dir / "metrics.json", json.dumps(dict(
        config=dataclasses.asdict(config), backend=backend, optimizer=optimizer_name, lr=lr,
        momentum=momentum,
        init=init_name, normalize_mean=mean, normalize_std=std,
        history=[dataclasses.asdict(h) for h in history],
        images_per_second=images_per_second), indent=2))
    plot_path = plot_curves(history, run_dir / "curves.png",
                            title=f"{config.model} on {config.data} ({backend})") \
        if config.plot else None
    return TrainResult(config, backend, history, history[-1].test_accuracy, test_correct,
                       len(x_test), images_per_second, run_dir, plot_path, checkpoint_path,
                       history[-1].torch_test_accuracy)


def plot_curves(history: list[EpochStats], path: Path, title: str = "") -> Path | None:
    """Loss and train/test accuracy per epoch, as a PNG (matplotlib's Agg backend).

    Returns ``None`` (and draws nothing) when matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    epochs = [h.epoch for h in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax_loss.plot(epochs, [h.train_loss for h in history], "o-", label="train loss")
    ax_acc.plot(epochs, [h.train_accuracy for h in history], "o-", label="train acc")
    ax_acc.plot(epochs, [h.test_accuracy for h in history], "s-", label="test acc")
    if history and history[0].torch_train_loss is not None:
        ax_loss.plot(epochs, [h.torch_train_loss for h in history], "--", label="torch loss")
        ax_acc.plot(epochs, [h.torch_test_accuracy for h in history], "--",
                    label="torch test acc")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy")
    ax_acc.set_ylim(0, 1.01)
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    path = io.save_figure(fig, path, dpi=100)
    plt.close(fig)
    return path


def final_line(result: TrainResult) -> str:
    """The run's last line: test accuracy and training throughput."""
    line = (f"final test accuracy {result.test_accuracy:.4f} ({result.test_correct}/"
            f"{result.test_total}), {result.images_per_second:,.0f} images/s training "
            f"(backend {result.backend})")
    if result.torch_test_accuracy is not None:
        line += f"; torch twin: test accuracy {result.torch_test_accuracy:.4f}"
    return line


__all__ = ["PRESETS", "EpochStats", "TrainConfig", "TrainResult", "fastest_cpu_backend",
           "final_line", "plot_curves", "predict", "train", "xavier_init_"]
