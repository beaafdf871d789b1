"""Data: the IDX reader for MNIST-format files, the bundled digits, a loader, normalisation.

Two sources, both giving a :class:`Split` of float32 images ``(N, 1, 28, 28)`` in [0, 1]
and int64 labels ``(N,)``:

- ``load_mnist(directory)``: the four IDX files of MNIST or Fashion-MNIST in a local
  directory (``train-images-idx3-ubyte`` etc., gzipped or not; also found under
  ``directory/MNIST/raw`` as torchvision stores them). Nothing is downloaded.
- ``load_digits()``: scikit-learn's bundled handwritten digits (1,797 images of 8x8 pixels
  with values 0..16, no download), made MNIST-like: scaled to [0, 1], upsampled bilinearly
  by exactly 3 to 24x24 (PyTorch's ``interpolate(mode="bilinear", align_corners=False)``
  rule), then zero-padded by 2 pixels on every side to 28x28 (MNIST, too, keeps a blank
  border around the digit). The pixels are still 8x8 worth of information: this is an easy
  data set, about 20 times smaller than MNIST, and a seeded split keeps 20% for testing.

``load_dataset("digits" | "mnist:DIR" | ...)`` picks one by name (the CLI's ``--data``) from
:data:`DATA_SOURCES`, the one table of the forms ``--data`` takes (``train --help`` prints it).
A ``DIR`` may start with ``~`` and hold environment variables (``$HOME/data/mnist``): see
:func:`expand_path`, which every path the CLI takes goes through.
"""

from __future__ import annotations

import gzip
import math
import os
import re
import struct
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np

# The third byte of an IDX magic number is the element type; the fourth, the number of dims.
IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (raw or gzip) into an array of its dims and native dtype.

    Layout: two zero bytes, a type code, the number of dims ``d``; then ``d`` big-endian
    uint32 sizes; then the data, big-endian, row-major. Raises ``ValueError`` naming the
    file for a bad magic number, a bad gzip stream, or a length that does not match the
    dims (truncated files and trailing bytes both).
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":  # the gzip magic
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"{path}: not a valid gzip file ({exc})") from None
    if len(raw) < 4:
        raise ValueError(f"{path}: truncated IDX file: {len(raw)} bytes, not even a header")
    zero1, zero2, code, ndim = raw[0], raw[1], raw[2], raw[3]
    if zero1 != 0 or zero2 != 0 or code not in IDX_DTYPES or ndim == 0:
        raise ValueError(
            f"{path}: not an IDX file: magic number 0x{raw[:4].hex()} (expected 0x0000TTDD, "
            f"TT a type code in {[hex(c) for c in IDX_DTYPES]}, DD >= 1 dims)"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header: {ndim} dims need {header} bytes, "
                         f"got {len(raw)}")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = IDX_DTYPES[code]
    expected = header + math.prod(dims) * dtype.itemsize
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "trailing bytes after the data"
        raise ValueError(
            f"{path}: {what}: dims {dims} of {dtype.name} need {expected} bytes, "
            f"got {len(raw)}"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return data.astype(dtype.newbyteorder("="))


class Split(NamedTuple):
    """Train and test arrays: images (N, 1, H, W) float32, labels (N,) int64."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


MNIST_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


def _find_idx(directory: Path, stem: str) -> Path:
    candidates = []
    for folder in (directory, directory / "MNIST" / "raw", directory / "raw"):
        for name in (stem, stem.replace("-idx", ".idx")):  # some mirrors write images.idx3
            candidates += [folder / name, folder / f"{name}.gz"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"{directory}: no {stem}[.gz] (looked in {directory}, {directory}/MNIST/raw and "
        f"{directory}/raw); download the four MNIST or Fashion-MNIST IDX files there"
    )


def load_mnist(directory: str | Path) -> Split:
    """MNIST or Fashion-MNIST from the four IDX files in ``directory``.

    Images become float32 ``(N, 1, 28, 28)`` in [0, 1] (pixel / 255); labels int64.
    Raises ``ValueError`` when a file is corrupt, images and labels disagree in number, or
    the arrays do not have the MNIST layout.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: not a directory")
    arrays = {}
    for key, stem in MNIST_FILES.items():
        path = _find_idx(directory, stem)
        array = read_idx(path)
        if key.startswith("x") and (array.ndim != 3 or array.dtype != np.uint8):
            raise ValueError(f"{path}: expected uint8 images (N, H, W), got {array.dtype} "
                             f"{array.shape}")
        if key.startswith("y") and (array.ndim != 1 or array.dtype != np.uint8):
            raise ValueError(f"{path}: expected uint8 labels (N,), got {array.dtype} "
                             f"{array.shape}")
        if key.startswith("y") and array.size and array.max() > 9:
            raise ValueError(f"{path}: expected labels 0..9, got a {array.max()}")
        arrays[key] = (path, array)
    for part in ("train", "test"):
        (x_path, x), (y_path, y) = arrays[f"x_{part}"], arrays[f"y_{part}"]
        if len(x) != len(y):
            raise ValueError(f"{x_path} has {len(x)} images but {y_path} has {len(y)} labels")
    return Split(*(
        (a[:, None].astype(np.float32) / np.float32(255)) if k.startswith("x")
        else a.astype(np.int64)
        for k, (_, a) in arrays.items()
    ))


def upsample_bilinear(images: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Bilinear resize of ``images : (..., H, W)`` to ``(..., out_h, out_w)``.

    PyTorch's ``align_corners=False`` rule: output pixel ``i`` samples input coordinate
    ``(i + 0.5) * H / out_h - 0.5``, clamped at 0; the four neighbours are blended.
    """
    H, W = images.shape[-2:]

    def weights(out_size, in_size):
        src = np.maximum((np.arange(out_size) + 0.5) * (in_size / out_size) - 0.5, 0.0)
        lo = np.minimum(np.floor(src).astype(np.intp), in_size - 1)
        hi = np.minimum(lo + 1, in_size - 1)
        return lo, hi, (src - lo)  # frac in [0, 1)

    h_lo, h_hi, h_frac = weights(out_h, H)
    w_lo, w_hi, w_frac = weights(out_w, W)
    h_frac = h_frac[:, None]  # (out_h, 1): broadcasts over columns
    top = images[..., h_lo, :] * (1 - h_frac) + images[..., h_hi, :] * h_frac  # (..., out_h, W)
    return top[..., w_lo] * (1 - w_frac) + top[..., w_hi] * w_frac  # (..., out_h, out_w)


def train_test_split(x: np.ndarray, y: np.ndarray, test_fraction: float = 0.2,
                     seed: int = 0) -> Split:
    """A seeded random split; ``round(test_fraction * N)`` samples go to the test set."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction: expected a fraction in (0, 1), got {test_fraction}")
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = round(test_fraction * len(x))
    test, train = order[:n_test], order[n_test:]
    return Split(x[train], y[train], x[test], y[test])


def load_digits(test_fraction: float = 0.2, seed: int = 0) -> Split:
    """scikit-learn's bundled 8x8 digits, resized to 1x28x28 as the module docstring says."""
    from sklearn.datasets import load_digits as sklearn_digits  # lazy: an optional extra

    digits = sklearn_digits()
    images = digits.images.astype(np.float32) / np.float32(16)  # (1797, 8, 8), values 0..1
    images = upsample_bilinear(images, 24, 24)  # (1797, 24, 24)
    images = np.pad(images, ((0, 0), (2, 2), (2, 2)))  # (1797, 28, 28)
    images = images[:, None].astype(np.float32)  # (1797, 1, 28, 28)
    return train_test_split(images, digits.target.astype(np.int64), test_fraction, seed)


_VARIABLE = re.compile(r"\$(?:(\w+)|\{([^}]*)\})")  # $NAME or ${NAME}, as expandvars reads them


def expand_path(path: str | os.PathLike, argument: str = "path") -> Path:
    """``path`` with environment variables and a leading ``~`` expanded, as a shell would.

    ``"$HOME/data/mnist"`` and ``"~/data/mnist"`` both become ``/home/<user>/data/mnist``.
    The shell cannot do this for ``--data mnist:~/data`` (a ``~`` after ``:`` is not
    expanded), nor for a path in a config, so every path the CLI takes comes through here.
    Raises ``ValueError`` naming ``argument`` when a variable in the path is not set (a shell
    would silently put nothing in its place).
    """
    text = os.fspath(path)
    for variable in _VARIABLE.finditer(text):
        name = variable.group(1) or variable.group(2)
        if name not in os.environ:
            raise ValueError(f"{argument}: environment variable {name} in {text!r} is not set")
    return Path(os.path.expanduser(os.path.expandvars(text)))


class DataSource(NamedTuple):
    """One form of ``--data``: its syntax, what it is, and the function that loads it.

    ``load(directory, seed)`` returns a :class:`Split`; ``directory`` is the expanded ``DIR``
    of a ``kind:DIR`` form and ``None`` for a form without one.
    """

    form: str  # what the user types: "digits" or "mnist:DIR"
    description: str
    load: Callable[[Path | None, int], Split]

    @property
    def takes_dir(self) -> bool:
        return self.form.endswith(":DIR")


def _load_digits_source(directory: Path | None, seed: int) -> Split:
    return load_digits(seed=seed)


def _load_idx_source(directory: Path | None, seed: int) -> Split:
    return load_mnist(directory)


DATA_SOURCES: dict[str, DataSource] = {
    "digits": DataSource("digits", "scikit-learn's bundled 8x8 digits, upsampled to 1x28x28; "
                         "no download (a seeded 80/20 train/test split)", _load_digits_source),
    "mnist": DataSource("mnist:DIR", "MNIST: the four IDX files in DIR (gzipped or not; also "
                        "DIR/MNIST/raw as torchvision stores them)", _load_idx_source),
    "fashion-mnist": DataSource("fashion-mnist:DIR", "Fashion-MNIST: its four IDX files in "
                                "DIR, same layout as MNIST", _load_idx_source),
    "idx": DataSource("idx:DIR", "any four IDX files with MNIST's names: uint8 images "
                      "(N, H, W), uint8 labels 0..9", _load_idx_source),
}
"""The forms ``--data`` takes, keyed by the part before ``:``; ``train --help`` lists them."""


def data_forms() -> list[str]:
    """What ``--data`` accepts, in table order: ``["digits", "mnist:DIR", ...]``."""
    return [source.form for source in DATA_SOURCES.values()]


def load_dataset(spec: str, seed: int = 0) -> Split:
    """The data set ``spec`` names: a form of :data:`DATA_SOURCES` (``"digits"``, ``"mnist:DIR"``).

    ``DIR`` goes through :func:`expand_path` (``~`` and ``$VARIABLES``). Raises
    ``ValueError`` listing the accepted forms for anything else.
    """
    kind, sep, directory = str(spec).partition(":")
    source = DATA_SOURCES.get(kind)
    if source is None or (source.takes_dir != bool(sep)) or (sep and not directory):
        raise ValueError(f"data: expected one of {', '.join(map(repr, data_forms()))}; "
                         f"got {spec!r}")
    path = expand_path(directory, argument="data") if source.takes_dir else None
    return source.load(path, seed)


def normalization_stats(x: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation of all pixels (compute them on the training set only)."""
    return float(x.mean()), float(x.std())


def normalize(x: np.ndarray, mean: float, std: float) -> np.ndarray:
    """``(x - mean) / std`` in x's dtype (as ``torchvision.transforms.Normalize``)."""
    if std <= 0:
        raise ValueError(f"std: expected a positive standard deviation, got {std}")
    return ((x - mean) / std).astype(x.dtype, copy=False)


class DataLoader:
    """Mini-batches ``(x, y)`` of a data set, optionally shuffled with a seed.

    Each pass (epoch) draws a fresh permutation from one generator seeded once, so epochs
    differ from each other but a run is reproducible. The last batch is smaller unless
    ``drop_last``.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int = 64,
                 shuffle: bool = False, seed: int | None = 0, drop_last: bool = False) -> None:
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} samples but y has {len(y)}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size: expected a positive int, got {batch_size!r}")
        self.x, self.y = x, y
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        n = len(self.x)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        n = len(self.x)
        order = self.rng.permutation(n) if self.shuffle else np.arange(n)
        for batch in range(len(self)):
            index = order[batch * self.batch_size:(batch + 1) * self.batch_size]
            yield self.x[index], self.y[index]


__all__ = [
    "DATA_SOURCES",
    "DataLoader",
    "DataSource",
    "Split",
    "data_forms",
    "expand_path",
    "load_dataset",
    "load_digits",
    "load_mnist",
    "normalization_stats",
    "normalize",
    "read_idx",
    "train_test_split",
    "upsample_bilinear",
]
