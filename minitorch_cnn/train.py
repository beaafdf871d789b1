"""The training loop: mini-batch SGD with explicit forward, loss, backward and step.

One step, written out as a learner would::

    logits = model(x)                  # every layer caches what its backward needs
    loss = criterion(logits, y)        # a float
    model.backward(criterion.backward())   # grad_logits back through every layer
    optimizer.step(); optimizer.zero_grad()

:func:`train` adds what a real run needs: data loading and normalisation, a progress bar
(tqdm on a terminal; one plain line per epoch in a log file), per-epoch loss and train/test
accuracy, an ``.npz`` checkpoint after every epoch, ``metrics.json`` and a PNG of the curves,
and, with ``compare_torch``, the PyTorch twin trained on the very same batches. Output goes
to ``runs/<name>/`` (``~`` and ``$VARIABLES`` in ``out`` and the data's ``DIR`` are expanded).

``backend="cuda"`` (``--backend cuda``) trains any model the same way on the GPU: the model
is moved with ``model.to("cuda")``, each batch is copied over once, and a step brings back
the loss and the batch's logits (for the train-accuracy count); the checkpoint is NumPy, so
it loads on the CPU.

Throughput counts only steps that ran already-compiled code. The Numba backends compile
their kernels on first use (about a minute on a cold cache; ``cache=True`` keeps them on disk
afterwards): :class:`CompileWatch` sees each compilation Numba starts, the run prints
:data:`COMPILE_NOTICE` before the first, and a step during which kernels were compiled is
reported as compile time, not training time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import sys
import time
from pathlib import Path

import numpy as np

from . import backend as _backend
from . import data as _data
from . import init, io, losses, models, optim
from .device import _move, to_host


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
    resize: int | None = None  # None: the data's own size; N: every image resized to N x N
    lr_schedule: str = "none"  # one of LR_SCHEDULES (make_scheduler says what each does)


# Settings that train each model in a few epochs. The ReLU nets learn with SGD + momentum.
# The sigmoid LeNet sits on a plateau (loss 2.30) for hundreds of SGD steps, in PyTorch too:
# d2l trains it with lr 0.9 for 10 epochs of 60,000 images, ~2,300 steps; the bundled digits
# give 45 steps an epoch. Adam with Xavier init leaves the plateau within 2-3 epochs.
PRESETS = {
    "lenet5": dict(optimizer="adam", lr=0.01, momentum=0.0, init="xavier"),
    "mnist_cnn": dict(optimizer="sgd", lr=0.01, momentum=0.9, init="default"),
    "mnist_cnn3": dict(optimizer="sgd", lr=0.01, momentum=0.9, init="default"),
    "residual_net": dict(optimizer="sgd", lr=0.01, momentum=0.9, init="default"),
    "residual_net_constant_scaling": dict(optimizer="sgd", lr=0.01, momentum=0.9,
                                          init="default"),
    "residual_net_conv_shortcut": dict(optimizer="sgd", lr=0.01, momentum=0.9, init="default"),
    "inception_net": dict(optimizer="sgd", lr=0.01, momentum=0.9, init="default"),
    "simple_cnn": dict(optimizer="sgd", lr=0.01, momentum=0.9, init="default"),
    "resnet18": dict(optimizer="sgd", lr=0.01, momentum=0.9, init="default"),
    # "Deep Learning with PyTorch", chapter 8: plain SGD, lr 1e-2, as the book trains them
    "dlwpt_net": dict(optimizer="sgd", lr=0.01, momentum=0.0, init="default"),
    "dlwpt_net_5x5": dict(optimizer="sgd", lr=0.01, momentum=0.0, init="default"),
    "dlwpt_netres": dict(optimizer="sgd", lr=0.01, momentum=0.0, init="default"),
}

DEFAULT_LR = {"sgd": 0.01, "adam": 1e-3}  # when --optimizer differs from the preset's

LR_SCHEDULES = ("none", "step", "cosine", "warmup-cosine", "onecycle")
"""The values of ``--lr-schedule``; :func:`make_scheduler` builds each."""


def make_scheduler(lr_scheduler, name: str, optimizer, epochs: int, steps_per_epoch: int):
    """``(scheduler, per_batch)`` for ``--lr-schedule name``; ``(None, False)`` for "none".

    ``lr_scheduler`` is ours (``minitorch_cnn.optim.lr_scheduler``) or
    ``torch.optim.lr_scheduler``: the same classes and arguments build both, so a
    ``--compare-torch`` twin follows the same schedule. Epoch schedules step once per epoch;
    ``per_batch`` (one-cycle) steps after every batch.

    - ``step``: StepLR, the rate times 0.1 after each third of the epochs (step decay);
    - ``cosine``: CosineAnnealingLR from the rate to 0 over the epochs (the ResNet chapter's);
    - ``warmup-cosine``: LinearLR from a tenth of the rate over the first fifth of the epochs
      (at least one), then cosine over the rest (SequentialLR);
    - ``onecycle``: OneCycleLR up to the rate and down again, per batch.
    """
    if name not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule: expected one of {LR_SCHEDULES}, got {name!r}")
    if name == "none":
        return None, False
    if name == "step":
        return lr_scheduler.StepLR(optimizer, step_size=max(1, epochs // 3), gamma=0.1), False
    if name == "cosine":
        return lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs), False
    if name == "warmup-cosine":
        warmup = max(1, epochs // 5)
        return lr_scheduler.SequentialLR(optimizer, [
            lr_scheduler.LinearLR(optimizer, start_factor=0.1, total_iters=warmup),
            lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs - warmup)),
        ], milestones=[warmup]), False
    max_lr = optimizer.param_groups[0]["lr"]
    return lr_scheduler.OneCycleLR(optimizer, max_lr=max_lr, epochs=epochs,
                                   steps_per_epoch=steps_per_epoch), True


@dataclasses.dataclass
class EpochStats:
    epoch: int
    train_loss: float
    train_accuracy: float
    test_accuracy: float
    seconds: float  # training time of the epoch (forward, backward, step), not evaluation,
    # nor the steps that compiled kernels
    images_per_second: float  # over the steps counted in ``seconds``; nan if there were none
    torch_train_loss: float | None = None
    torch_test_accuracy: float | None = None
    compile_seconds: float = 0.0  # time of the steps during which kernels were compiled
    lr: float | None = None  # the first parameter group's learning rate during this epoch


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
    compile_seconds: float = 0.0  # all epochs' steps that compiled kernels (not in throughput)


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
    """Predicted classes (N,) in eval mode; the model's mode is restored afterwards.

    ``x`` is NumPy; for a model on the device (``model.to("cuda")``) each batch is copied
    over and its logits (batch, classes) back for the argmax.
    """
    modes = [m.training for m in model.modules()]
    model.eval()
    device = model.device
    try:
        out = [to_host(model(_move(x[i:i + batch_size], device))).argmax(axis=1)
               for i in range(0, len(x), batch_size)]
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


COMPILE_NOTICE = "compiling kernels (once; cached afterwards)..."
# package -> (its event module, the events it raises while it compiles, and only then)
_JIT_EVENTS = {
    "numba": ("numba.core.event", ("numba:compile",)),
    # numba-cuda documents "numba-cuda:compile", but its CUDADispatcher.compile (0.30)
    # raises none; every compiler pass it runs raises "numba-cuda:run_pass"
    "numba.cuda": ("numba.cuda.core.event", ("numba-cuda:compile", "numba-cuda:run_pass")),
}


class CompileWatch:
    """Counts the compile events Numba raises inside a ``with`` block.

    Numba announces each compilation it really does through its event API
    (``numba.core.event``; numba-cuda has its own copy of that module): ``"numba:compile"``
    on a CPU cache miss, compiler passes on the GPU. A kernel loaded from the on-disk cache
    (``@njit(cache=True)``) raises none, so ``count`` stays 0 on a warm cache and the first
    event means a cold one. ``on_first()`` is called at that first event, before the
    compilation runs. Only packages already imported are watched: a backend that has not
    imported Numba cannot compile with it.
    """

    def __init__(self, on_first=None) -> None:
        self.count = 0
        self.on_first = on_first
        self._listeners = contextlib.ExitStack()

    def _compile_started(self) -> None:
        self.count += 1
        if self.count == 1 and self.on_first is not None:
            self.on_first()

    def __enter__(self) -> CompileWatch:
        for package, (name, kinds) in _JIT_EVENTS.items():
            if package in sys.modules:
                event = importlib.import_module(name)
                for kind in kinds:
                    self._listeners.enter_context(
                        event.install_listener(kind, _listener(event, self)))
        return self

    def __exit__(self, *exc_info) -> None:
        self._listeners.close()


def _listener(event, watch: CompileWatch):
    """A ``Listener`` of ``event`` (a module: Numba's or numba-cuda's) that tells ``watch``."""

    class OnCompile(event.Listener):
        def on_start(self, _event) -> None:
            watch._compile_started()

        def on_end(self, _event) -> None:
            pass

    return OnCompile()


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        return False


def _progress(iterable, enabled: bool, desc: str, total: int, stream=None):
    """The batches of one epoch, with a progress display on ``stream`` (default stderr).

    A terminal gets a tqdm bar (if tqdm is installed); anything else (a log file, a pipe)
    gets :class:`_EpochLine`, one plain line when the epoch ends, not hundreds of
    carriage-return updates.
    """
    if not enabled:
        return iterable
    stream = sys.stderr if stream is None else stream
    if _is_terminal(stream):
        try:
            from tqdm import tqdm
        except ImportError:
            pass
        else:
            return tqdm(iterable, desc=desc, total=total, leave=False, file=stream,
                        dynamic_ncols=True)
    return _EpochLine(iterable, desc, total, stream)


class _EpochLine:
    """The progress "bar" of a log file: ``epoch 2/5: 45/45 batches in 3.1 s, loss 0.2104``."""

    def __init__(self, iterable, desc: str, total: int, stream) -> None:
        self.iterable, self.desc, self.total, self.stream = iterable, desc, total, stream
        self.postfix = ""

    def __len__(self) -> int:
        return self.total

    def set_postfix(self, **values) -> None:
        """Remember ``name=value`` pairs (as tqdm's) for the end-of-epoch line."""
        self.postfix = ", ".join(f"{name} {value}" for name, value in values.items())

    def __iter__(self):
        start, done = time.perf_counter(), 0
        for item in self.iterable:
            yield item
            done += 1
        line = (f"{self.desc}: {done}/{self.total} batches in "
                f"{time.perf_counter() - start:.1f} s")
        print(line + (f", {self.postfix}" if self.postfix else ""), file=self.stream,
              flush=True)


def check_model_fits_data(model, name: str, x: np.ndarray, labels: np.ndarray) -> None:
    """Refuse, before any training, a data set whose images or labels ``model`` cannot take.

    One image goes through the model in eval mode on the numpy backend (shapes do not depend
    on the backend, and numpy compiles nothing), so a model built for 3x32x32 images meets a
    1x28x28 data set here, with a message naming both, rather than inside a layer in step 1.
    x : (N, C, H, W); labels : (N,) ints from 0.
    """
    shape = "x".join(map(str, x.shape[1:]))
    expected = "x".join(map(str, models.INPUT_SHAPES[name]))
    model.eval()
    try:
        with _backend.use_backend("numpy"):
            logits = model(x[:1])
    except ValueError as exc:
        raise ValueError(
            f"data: --model {name} takes {expected} images (models.INPUT_SHAPES), the data "
            f"set's are {shape}; choose a data set of that shape (--resize N sets H and W, "
            f"not C) (the layer said: {exc})") from exc
    finally:
        model.train()
    classes = logits.shape[-1]
    if labels.size and int(labels.max()) >= classes:
        raise ValueError(
            f"data: --model {name} has {classes} outputs, the data set has labels up to "
            f"{int(labels.max())}; choose a data set of at most {classes} classes")


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
        self.scheduler = None  # set by train() with the same schedule as ours

    def step(self, x: np.ndarray, y: np.ndarray) -> float:
        self.opt.zero_grad()
        loss = self.loss_fn(self.model(self.torch.from_numpy(x)), self.torch.from_numpy(y))
        loss.backward()
        self.opt.step()
        return float(loss.item())


@dataclasses.dataclass
class _EpochTally:
    """Running sums over one epoch's steps."""

    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0
    seconds: float = 0.0  # steps that compiled nothing
    timed_images: int = 0  # the images of those steps
    compile_seconds: float = 0.0  # steps during which kernels were compiled
    torch_loss_sum: float = 0.0


def _train_epoch(model, criterion, optimizer, batches, watch: CompileWatch, twin=None,
                 epoch: int = 1, batch_scheduler=None) -> _EpochTally:
    """One pass over ``batches``: forward, loss, backward, step; each step timed alone.

    A step during which ``watch`` saw a compilation goes to ``compile_seconds``, the others
    to ``seconds``: compile time never counts as training time. ``batch_scheduler`` (and the
    twin's) steps after every batch (one-cycle).
    """
    lr = optimizer.param_groups[0]["lr"]
    tally = _EpochTally()
    device = model.device
    for xb, yb in batches:
        compiles, start = watch.count, time.perf_counter()
        logits = model(_move(xb, device))  # on the device: the batch goes over once
        loss = criterion(logits, yb)
        model.backward(criterion.backward())
        optimizer.step()
        optimizer.zero_grad()
        elapsed = time.perf_counter() - start
        if watch.count > compiles:
            tally.compile_seconds += elapsed
        else:
            tally.seconds += elapsed
            tally.timed_images += len(xb)
        if not np.isfinite(loss):
            raise FloatingPointError(
                f"epoch {epoch}: the loss became {loss}; lower the learning rate "
                f"(--lr, now {lr})")
        tally.loss_sum += loss * len(xb)
        # on the device the (batch, classes) logits come back for this count: the one host
        # copy of a step besides the loss
        tally.correct += int((to_host(logits).argmax(axis=1) == yb).sum())
        tally.seen += len(xb)
        if twin is not None:
            tally.torch_loss_sum += twin.step(xb, yb) * len(xb)
        if batch_scheduler is not None:
            batch_scheduler.step()
            if twin is not None:
                twin.scheduler.step()
        if hasattr(batches, "set_postfix"):
            batches.set_postfix(loss=f"{loss:.4f}")
    return tally


def _rate(images: int, seconds: float) -> float:
    """Images per second; nan when nothing was timed (every step compiled kernels)."""
    return images / seconds if seconds > 0 else float("nan")


def _epoch_line(stats: EpochStats, epochs: int) -> str:
    line = (f"epoch {stats.epoch:>3}/{epochs}  "
            + (f"lr {stats.lr:.4g}  " if stats.lr is not None else "")
            + f"loss {stats.train_loss:.4f}  "
            f"train acc {stats.train_accuracy:.4f}  test acc {stats.test_accuracy:.4f}  "
            f"({stats.seconds:.1f} s, {stats.images_per_second:,.0f} images/s")
    if stats.compile_seconds:
        line += f"; not counted: {stats.compile_seconds:.1f} s of steps compiling kernels"
    line += ")"
    if stats.torch_train_loss is not None:
        line += (f"  | torch: loss {stats.torch_train_loss:.4f}  "
                 f"test acc {stats.torch_test_accuracy:.4f}")
    return line


def train(config: TrainConfig, log=print) -> TrainResult:
    """Train ``config.model`` on ``config.data``; see the module docstring."""
    if config.model not in models.MODELS:
        raise ValueError(f"model: unknown model {config.model!r}; expected one of "
                         f"{sorted(models.MODELS)}")
    if config.epochs < 1:
        raise ValueError(f"epochs: expected a positive int, got {config.epochs}")
    if config.lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule: expected one of {LR_SCHEDULES}, got "
                         f"{config.lr_schedule!r}")
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
        split = _data.load_dataset(config.data, seed=config.seed, resize=config.resize)
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
        check_model_fits_data(model, config.model, x_train, y_train)
        model.needs_input_grad = False  # the data needs no gradient: skip the first conv's grad_x
        if backend == "cuda":  # parameters, gradients and optimizer state on the device
            model.to("cuda")
        criterion = (losses.NLLLoss() if config.model in models.OUTPUTS_LOG_PROBS
                     else losses.CrossEntropyLoss())
        optimizer = _make_optimizer(optimizer_name, model.parameters(), lr, momentum,
                                    config.weight_decay)
        twin = (_TorchTwin(config, model, optimizer_name, lr, momentum)
                if config.compare_torch else None)
        loader = _data.DataLoader(x_train, y_train, config.batch_size, shuffle=True,
                                  seed=config.seed)
        scheduler, per_batch = make_scheduler(optim.lr_scheduler, config.lr_schedule,
                                              optimizer, config.epochs, len(loader))
        if twin is not None and scheduler is not None:
            twin.scheduler = make_scheduler(twin.torch.optim.lr_scheduler, config.lr_schedule,
                                            twin.opt, config.epochs, len(loader))[0]

        run_name = config.run_name or (
            f"{config.model}-{config.data.split(':')[0]}-{backend}-"
            f"{time.strftime('%Y%m%d-%H%M%S')}")
        run_dir = _data.expand_path(config.out, argument="out") / run_name
        run_dir.mkdir(parents=True, exist_ok=True)
        log(f"training {config.model} on {config.data} ({len(x_train)} train / {len(x_test)} "
            f"test images of {'x'.join(map(str, x_train.shape[1:]))}) with backend {backend}: "
            f"{optimizer_name} lr={lr} "
            f"momentum={momentum} weight_decay={config.weight_decay} "
            f"batch_size={config.batch_size} init={init_name} "
            f"lr_schedule={config.lr_schedule}, {config.epochs} epochs")

        history: list[EpochStats] = []
        checkpoint_path = run_dir / "checkpoint.npz" if config.checkpoint else None
        watch = CompileWatch(on_first=lambda: log(COMPILE_NOTICE))
        timed_images, timed_seconds = 0, 0.0  # over all epochs, compiling steps left out
        for epoch in range(1, config.epochs + 1):
            model.train()
            batches = _progress(loader, config.progress, f"epoch {epoch}/{config.epochs}",
                                len(loader))
            epoch_lr = optimizer.param_groups[0]["lr"]
            with watch:
                tally = _train_epoch(model, criterion, optimizer, batches, watch, twin, epoch,
                                     scheduler if per_batch else None)
                test_accuracy = float((predict(model, x_test) == y_test).mean())
            timed_images, timed_seconds = (timed_images + tally.timed_images,
                                           timed_seconds + tally.seconds)
            stats = EpochStats(epoch, tally.loss_sum / tally.seen, tally.correct / tally.seen,
                               test_accuracy, tally.seconds,
                               _rate(tally.timed_images, tally.seconds),
                               compile_seconds=tally.compile_seconds, lr=epoch_lr)
            if scheduler is not None and not per_batch:
                scheduler.step()
                if twin is not None:
                    twin.scheduler.step()
            if twin is not None:
                stats.torch_train_loss = tally.torch_loss_sum / tally.seen
                stats.torch_test_accuracy = float(
                    (_torch_predict(twin.model, x_test) == y_test).mean())
            log(_epoch_line(stats, config.epochs))
            history.append(stats)
            if checkpoint_path is not None:
                io.save(model, checkpoint_path, meta=dict(
                    model=config.model, epoch=epoch, test_accuracy=test_accuracy,
                    backend=backend, data=config.data, normalize_mean=mean,
                    normalize_std=std))

    test_correct = int(round(history[-1].test_accuracy * len(x_test)))
    images_per_second = _rate(timed_images, timed_seconds)
    compile_seconds = sum(h.compile_seconds for h in history)
    io.write_text(run_dir / "metrics.json", json.dumps(dict(
        config=dataclasses.asdict(config), backend=backend, optimizer=optimizer_name, lr=lr,
        momentum=momentum,
        init=init_name, normalize_mean=mean, normalize_std=std,
        history=[dataclasses.asdict(h) for h in history],
        images_per_second=images_per_second, compile_seconds=compile_seconds), indent=2))
    plot_path = plot_curves(history, run_dir / "curves.png",
                            title=f"{config.model} on {config.data} ({backend})") \
        if config.plot else None
    return TrainResult(config, backend, history, history[-1].test_accuracy, test_correct,
                       len(x_test), images_per_second, run_dir, plot_path, checkpoint_path,
                       history[-1].torch_test_accuracy, compile_seconds)


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
    if result.compile_seconds:
        line += f", not counting {result.compile_seconds:.1f} s of steps compiling kernels"
    if result.torch_test_accuracy is not None:
        line += f"; torch twin: test accuracy {result.torch_test_accuracy:.4f}"
    return line


__all__ = ["COMPILE_NOTICE", "PRESETS", "CompileWatch", "EpochStats", "TrainConfig",
           "TrainResult", "fastest_cpu_backend", "final_line", "plot_curves", "predict", "train",
           "xavier_init_"]
