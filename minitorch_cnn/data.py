"""Data from local files, never downloaded: IDX (MNIST), CIFAR-10 binary, image folders.

Every source gives a :class:`Split` of float32 images ``(N, C, H, W)`` in [0, 1] and int64
labels ``(N,)``:

- ``load_mnist(directory)``: the four IDX files of MNIST or Fashion-MNIST in a local
  directory (``train-images-idx3-ubyte`` etc., gzipped or not; also found under
  ``directory/MNIST/raw`` as torchvision stores them): ``(N, 1, 28, 28)``.
- ``load_digits()``: scikit-learn's bundled handwritten digits (1,797 images of 8x8 pixels
  with values 0..16, no download), made MNIST-like: scaled to [0, 1], upsampled bilinearly
  by exactly 3 to 24x24 (PyTorch's ``interpolate(mode="bilinear", align_corners=False)``
  rule), then zero-padded by 2 pixels on every side to 28x28 (MNIST, too, keeps a blank
  border around the digit). The pixels are still 8x8 worth of information: this is an easy
  data set, about 20 times smaller than MNIST, and a seeded split keeps 20% for testing.
- ``load_cifar10(directory)`` / ``load_cifar2(directory)``: the *binary* version of CIFAR-10
  (``data_batch_1.bin`` .. ``data_batch_5.bin``, ``test_batch.bin``; records of 1 label byte
  and 3072 pixel bytes, the R, G and B planes of 32x32): ``(N, 3, 32, 32)``. Never the pickled
  Python version: unpickling a file runs code from it. CIFAR-2 is the airplane-vs-bird subset
  of "Deep Learning with PyTorch", chapter 7: labels 0 (airplane) and 2 (bird), remapped to 0
  and 1 by the book's ``label_map = {0: 0, 2: 1}``.
- ``load_image_folder(directory)``: one sub-folder per class, as torchvision's
  ``ImageFolder`` (class index = position in the sorted folder names), images read with
  Pillow as RGB: ``(N, 3, H, W)``, split 80/20 with a seed.

``resize=N`` (``--resize N``) brings any of them to ``N x N`` with :func:`resize_bilinear`
(PIL's BILINEAR filter, which is PyTorch's ``interpolate(mode="bilinear", antialias=True)``).

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
    """Train and test arrays: images (N, C, H, W) float32 in [0, 1], labels (N,) int64."""

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


# --------------------------------------------------------------------------- resizing


def _bilinear_weights(in_size: int, out_size: int) -> np.ndarray:
    """The ``(out_size, in_size)`` matrix of PIL's BILINEAR filter along one axis.

    Output pixel ``i`` is centred at input coordinate ``c = (i + 0.5) * s``, ``s = in / out``.
    It blends input pixel ``j`` (centred at ``j + 0.5``) with the triangle
    ``max(0, 1 - |t|)``, ``t = (j + 0.5 - c) / max(s, 1)``, the weights normalised to sum 1.
    Enlarging (``s <= 1``) that is plain bilinear interpolation at ``c - 0.5``, the edge pixel
    repeated (:func:`upsample_bilinear`); shrinking, the triangle widens by ``s`` so that every
    input pixel counts (antialiasing) where plain bilinear would read two pixels in ``s``.
    """
    scale = in_size / out_size
    stretch = max(scale, 1.0)
    centre = (np.arange(out_size) + 0.5) * scale  # (out,)
    t = (np.arange(in_size)[None, :] + 0.5 - centre[:, None]) / stretch  # (out, in)
    weights = np.maximum(0.0, 1.0 - np.abs(t))
    return weights / weights.sum(axis=1, keepdims=True)  # rows cut at an edge renormalised


def resize_bilinear(images: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Resize ``images : (..., H, W)`` to ``(..., out_h, out_w)`` with PIL's BILINEAR filter.

    The filter of ``PIL.Image.resize(..., Image.BILINEAR)`` and of PyTorch's
    ``interpolate(mode="bilinear", align_corners=False, antialias=True)`` (torchvision's
    ``Resize`` on tensors): separable, one weight matrix per axis (:func:`_bilinear_weights`).
    Enlarging, the same as :func:`upsample_bilinear`; shrinking, an average over each output
    pixel's footprint, not a sample of two pixels. Floats keep their dtype; ints become
    float32. (Equal to Pillow's float ``"F"`` mode to rounding; PyTorch 2.x departs from the
    filter along H when ``out_w == 1``.)
    """
    images = np.asarray(images)
    dtype = images.dtype if images.dtype.kind == "f" else np.dtype(np.float32)
    H, W = images.shape[-2:]
    rows = _bilinear_weights(H, out_h).astype(dtype)  # (out_h, H)
    cols = _bilinear_weights(W, out_w).astype(dtype)  # (out_w, W)
    return (rows @ images.astype(dtype, copy=False)) @ cols.T  # (..., out_h, out_w)


def _check_resize(resize) -> int | None:
    if resize is None:
        return None
    if isinstance(resize, bool) or not isinstance(resize, (int, np.integer)):
        raise TypeError(f"resize: expected a positive int (the side of the square images) or "
                        f"None, got {type(resize).__name__}")
    if resize < 1:
        raise ValueError(f"resize: expected a positive int (the side of the square images) "
                         f"or None, got {resize}")
    return int(resize)


def resize_split(split: Split, resize: int | None) -> Split:
    """``split`` with its images resized to ``resize x resize`` (unchanged for ``None``)."""
    resize = _check_resize(resize)
    if resize is None:
        return split
    return Split(resize_bilinear(split.x_train, resize, resize), split.y_train,
                 resize_bilinear(split.x_test, resize, resize), split.y_test)


# --------------------------------------------------------------------------- CIFAR-10

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")
CIFAR2_LABEL_MAP = {0: 0, 2: 1}
"""CIFAR-2 as "Deep Learning with PyTorch" builds it: ``label_map = {0: 0, 2: 1}``."""
CIFAR2_CLASSES = ("airplane", "bird")
CIFAR_RECORD = 1 + 3 * 32 * 32  # 3073 bytes: the label, then the R, G, B planes, row-major
CIFAR_FILES = {"train": tuple(f"data_batch_{i}.bin" for i in range(1, 6)),
               "test": ("test_batch.bin",)}


def read_cifar_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """One file of the CIFAR-10 binary version: images ``(N, 3, 32, 32)`` and labels ``(N,)``.

    Both uint8. Raises ``ValueError`` naming the file when it is empty, its length is not a
    whole number of 3073-byte records (a truncated file, the pickled Python version, or
    CIFAR-100's 3074-byte records), or a label byte is above 9.
    """
    path = Path(path)
    raw = path.read_bytes()
    if len(raw) == 0 or len(raw) % CIFAR_RECORD:
        hint = ("; this looks like the pickled Python version: use the binary version "
                "(cifar-10-binary.tar.gz)" if raw[:1] == b"\x80" else "")
        raise ValueError(f"{path}: not a CIFAR-10 binary batch: {len(raw)} bytes is not a "
                         f"whole, nonzero number of {CIFAR_RECORD}-byte records (1 label byte "
                         f"+ 3072 pixel bytes){hint}")
    records = np.frombuffer(raw, np.uint8).reshape(-1, CIFAR_RECORD)  # (N, 3073)
    labels = records[:, 0]
    if labels.max() > 9:
        bad = int(np.argmax(labels > 9))
        raise ValueError(f"{path}: record {bad} has label byte {labels[bad]}; CIFAR-10 labels "
                         f"are 0..9 (CIFAR-100 is not supported)")
    return records[:, 1:].reshape(-1, 3, 32, 32), labels  # (N, 3, 32, 32), (N,)


def _cifar_folder(directory: Path) -> Path:
    """``directory`` or ``directory/cifar-10-batches-bin``: the one holding all six files."""
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: not a directory")
    names = [name for part in CIFAR_FILES.values() for name in part]
    for folder in (directory, directory / "cifar-10-batches-bin"):
        if all((folder / name).is_file() for name in names):
            return folder
    pickled = any((folder / "data_batch_1").is_file()
                  for folder in (directory, directory / "cifar-10-batches-py"))
    hint = ("; found the pickled Python version (data_batch_1, no .bin), which is not read "
            "because unpickling runs code" if pickled else "")
    raise FileNotFoundError(
        f"{directory}: no CIFAR-10 binary version (looked in {directory} and "
        f"{directory}/cifar-10-batches-bin for {', '.join(names)}){hint}; extract "
        f"cifar-10-binary.tar.gz there")


def load_cifar10(directory: str | Path) -> Split:
    """CIFAR-10 from the binary version in ``directory``: float32 ``(N, 3, 32, 32)`` in [0, 1].

    The five ``data_batch_*.bin`` files are the training set (50,000 images), ``test_batch.bin``
    the test set (10,000); labels int64 0..9 (:data:`CIFAR10_CLASSES`).
    """
    folder = _cifar_folder(Path(directory))
    arrays = []
    for part in ("train", "test"):
        batches = [read_cifar_batch(folder / name) for name in CIFAR_FILES[part]]
        images = np.concatenate([x for x, _ in batches])  # (N, 3, 32, 32) uint8
        labels = np.concatenate([y for _, y in batches])  # (N,) uint8
        arrays += [images.astype(np.float32) / np.float32(255), labels.astype(np.int64)]
    return Split(*arrays)


def load_cifar2(directory: str | Path) -> Split:
    """CIFAR-2, airplanes (label 0) and birds (label 1) of CIFAR-10, as in the book's chapter 7.

    "Deep Learning with PyTorch" keeps CIFAR-10's labels 0 and 2 and renames them with
    ``label_map = {0: 0, 2: 1}`` (:data:`CIFAR2_LABEL_MAP`), in the files' order:
    10,000 training and 2,000 test images.
    """
    split = load_cifar10(directory)
    remap = np.full(10, -1, np.int64)
    for old, new in CIFAR2_LABEL_MAP.items():
        remap[old] = new
    arrays = []
    for x, y in ((split.x_train, split.y_train), (split.x_test, split.y_test)):
        keep = remap[y] >= 0
        arrays += [x[keep], remap[y[keep]]]
    return Split(*arrays)


# --------------------------------------------------------------------------- image folders


def image_folder_classes(directory: str | Path) -> list[str]:
    """The class names of an image folder: its sub-folders' names, sorted (hidden ones skipped).

    torchvision's ``ImageFolder.find_classes`` rule; class ``k`` is the ``k``-th name.
    Raises ``FileNotFoundError`` when ``directory`` is not one, ``ValueError`` when it holds
    no sub-folder.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: not a directory")
    classes = sorted(entry.name for entry in os.scandir(directory)
                     if entry.is_dir() and not entry.name.startswith("."))
    if not classes:
        raise ValueError(f"{directory}: no class folders; an image folder holds one "
                         f"sub-folder of images per class (cat/, dog/, ...)")
    return classes


def _class_files(folder: Path) -> list[Path]:
    """Every non-hidden file under ``folder``, in torchvision's order (sorted walk)."""
    files = []
    for root, dirs, names in sorted(os.walk(folder, followlinks=True)):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        files += [Path(root) / name for name in sorted(names) if not name.startswith(".")]
    return files


def read_image(path: str | Path) -> np.ndarray:
    """One image file as RGB uint8 ``(3, H, W)``, read with Pillow (torchvision's ``pil_loader``).

    Raises ``ValueError`` naming the file when Pillow cannot read it (not an image, or a
    truncated or corrupt one).
    """
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise ImportError("imagefolder: reading images needs Pillow "
                          "(pip install -e '.[data]')") from None
    try:
        with Image.open(path) as image:
            rgb = np.asarray(image.convert("RGB"))  # (H, W, 3)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ValueError(f"{path}: not an image Pillow can read ({exc}); a class folder "
                         f"must hold only images (hidden files are skipped)") from None
    return rgb.transpose(2, 0, 1)  # (3, H, W)


def load_image_folder(directory: str | Path, resize: int | None = None,
                      test_fraction: float = 0.2, seed: int = 0) -> Split:
    """An image folder (``DIR/<class>/<image>``) as float32 RGB ``(N, 3, H, W)`` in [0, 1].

    Classes as :func:`image_folder_classes`; within a class, files in sorted order. Every
    non-hidden file must be an image (torchvision silently skips files without an image
    extension; here they are an error, so a stray file is seen). With ``resize=N`` each image
    is resized to ``N x N`` (:func:`resize_bilinear`); without, all must have one size, and
    the first that differs raises ``ValueError`` naming both files and sizes. The images are
    split with :func:`train_test_split`, which takes this function's last two arguments.
    """
    directory = Path(directory)
    resize = _check_resize(resize)
    images, labels, first = [], [], None
    for label, name in enumerate(image_folder_classes(directory)):
        files = _class_files(directory / name)
        if not files:
            raise ValueError(f"{directory / name}: empty class folder (no image files)")
        for path in files:
            image = read_image(path).astype(np.float32) / np.float32(255)  # (3, H, W)
            if resize is not None:
                image = resize_bilinear(image, resize, resize)  # (3, N, N)
            elif first is None:
                first = (path, image.shape[1:])
            elif image.shape[1:] != first[1]:
                raise ValueError(
                    f"{path}: {image.shape[1]}x{image.shape[2]} pixels (H x W) but "
                    f"{first[0]}: {first[1][0]}x{first[1][1]}; images of different sizes "
                    f"need --resize N (resize=N)")
            images.append(image)
            labels.append(label)
    split = train_test_split(np.stack(images), np.array(labels, np.int64), test_fraction, seed)
    if len(split.x_train) == 0 or len(split.x_test) == 0:
        raise ValueError(f"{directory}: {len(images)} images are too few for a train/test "
                         f"split with test_fraction {test_fraction}")
    return split


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
    """One form of ``--data``: its syntax, what it is, the function that loads it, its classes.

    ``load(directory, seed, resize)`` returns a :class:`Split`; ``directory`` is the expanded
    ``DIR`` of a ``kind:DIR`` form and ``None`` for a form without one; ``resize`` is ``None``
    or the side ``N`` of the ``N x N`` images wanted. ``classes(directory)`` gives the class
    names (``None``: the labels are their own names).
    """

    form: str  # what the user types: "digits" or "mnist:DIR"
    description: str
    load: Callable[[Path | None, int, int | None], Split]
    classes: Callable[[Path | None], list[str]] | None = None

    @property
    def takes_dir(self) -> bool:
        return self.form.endswith(":DIR")


FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot")


def _load_digits_source(directory: Path | None, seed: int, resize: int | None) -> Split:
    return resize_split(load_digits(seed=seed), resize)


def _load_idx_source(directory: Path | None, seed: int, resize: int | None) -> Split:
    return resize_split(load_mnist(directory), resize)


def _load_cifar10_source(directory: Path | None, seed: int, resize: int | None) -> Split:
    return resize_split(load_cifar10(directory), resize)


def _load_cifar2_source(directory: Path | None, seed: int, resize: int | None) -> Split:
    return resize_split(load_cifar2(directory), resize)


def _load_image_folder_source(directory: Path | None, seed: int, resize: int | None) -> Split:
    return load_image_folder(directory, resize=resize, seed=seed)  # resized image by image


DATA_SOURCES: dict[str, DataSource] = {
    "digits": DataSource("digits", "scikit-learn's bundled 8x8 digits, upsampled to 1x28x28; "
                         "no download (a seeded 80/20 train/test split)", _load_digits_source),
    "mnist": DataSource("mnist:DIR", "MNIST: the four IDX files in DIR (gzipped or not; also "
                        "DIR/MNIST/raw as torchvision stores them)", _load_idx_source),
    "fashion-mnist": DataSource("fashion-mnist:DIR", "Fashion-MNIST: its four IDX files in "
                                "DIR, same layout as MNIST", _load_idx_source,
                                lambda directory: list(FASHION_MNIST_CLASSES)),
    "idx": DataSource("idx:DIR", "any four IDX files with MNIST's names: uint8 images "
                      "(N, H, W), uint8 labels 0..9", _load_idx_source),
    "cifar10": DataSource("cifar10:DIR", "CIFAR-10, 3x32x32, 10 classes: the binary version "
                          "(data_batch_1.bin .. data_batch_5.bin, test_batch.bin) in DIR or "
                          "DIR/cifar-10-batches-bin; never the pickled Python version",
                          _load_cifar10_source, lambda directory: list(CIFAR10_CLASSES)),
    "cifar2": DataSource("cifar2:DIR", "CIFAR-2 of \"Deep Learning with PyTorch\": the "
                         "airplanes (0) and birds (1) of cifar10:DIR", _load_cifar2_source,
                         lambda directory: list(CIFAR2_CLASSES)),
    "imagefolder": DataSource("imagefolder:DIR", "one sub-folder of images per class "
                              "(DIR/cat/*.jpg, DIR/dog/*.jpg; classes in sorted order), RGB, "
                              "read with Pillow; one size, or --resize N; a seeded 80/20 split",
                              _load_image_folder_source, image_folder_classes),
}
"""The forms ``--data`` takes, keyed by the part before ``:``; ``train --help`` lists them."""


def data_forms() -> list[str]:
    """What ``--data`` accepts, in table order: ``["digits", "mnist:DIR", ...]``."""
    return [source.form for source in DATA_SOURCES.values()]


def _parse_spec(spec: str) -> tuple[DataSource, Path | None]:
    """The row of :data:`DATA_SOURCES` that ``spec`` names, and its expanded ``DIR``."""
    kind, sep, directory = str(spec).partition(":")
    source = DATA_SOURCES.get(kind)
    if source is None or (source.takes_dir != bool(sep)) or (sep and not directory):
        raise ValueError(f"data: expected one of {', '.join(map(repr, data_forms()))}; "
                         f"got {spec!r}")
    return source, (expand_path(directory, argument="data") if source.takes_dir else None)


def load_dataset(spec: str, seed: int = 0, resize: int | None = None) -> Split:
    """The data set ``spec`` names: a form of :data:`DATA_SOURCES` (``"digits"``, ``"mnist:DIR"``).

    ``DIR`` goes through :func:`expand_path` (``~`` and ``$VARIABLES``). ``resize=N`` gives
    ``N x N`` images (:func:`resize_bilinear`). Raises ``ValueError`` listing the accepted
    forms for anything else.
    """
    resize = _check_resize(resize)
    source, directory = _parse_spec(spec)
    return source.load(directory, seed, resize)


def class_names(spec: str) -> list[str] | None:
    """The names of the classes of the data set ``spec`` (``None``: label ``k`` is "k")."""
    source, directory = _parse_spec(spec)
    return None if source.classes is None else source.classes(directory)


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
    "CIFAR10_CLASSES",
    "CIFAR2_CLASSES",
    "CIFAR2_LABEL_MAP",
    "DATA_SOURCES",
    "FASHION_MNIST_CLASSES",
    "DataLoader",
    "DataSource",
    "Split",
    "class_names",
    "data_forms",
    "expand_path",
    "image_folder_classes",
    "load_cifar10",
    "load_cifar2",
    "load_dataset",
    "load_digits",
    "load_image_folder",
    "load_mnist",
    "normalization_stats",
    "normalize",
    "read_cifar_batch",
    "read_idx",
    "read_image",
    "resize_bilinear",
    "resize_split",
    "train_test_split",
    "upsample_bilinear",
]
