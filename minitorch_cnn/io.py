"""Save and load a model's state dict as ``.npz``: atomic writes, no pickle, clear errors.

``save(model, path)`` writes every entry of ``model.state_dict()`` (PyTorch's keys, e.g.
``"0.weight"``) as one array of an ``.npz`` archive, plus an optional JSON ``meta`` dict
(epoch, model name, ...) stored as a string under ``"__meta__"``. The archive goes to a
temporary file in the same directory first and is moved over ``path`` with ``os.replace``,
so a crash mid-write never leaves a half-written checkpoint under the real name. The same
:func:`atomic_write` writes the training metrics, plots and pictures (:func:`write_text`,
:func:`save_figure`).

``load(model, path)`` reads with ``allow_pickle=False`` (an ``.npz`` can otherwise carry
pickled Python objects that run code on load), checks every key and shape against the model
before writing anything, and raises ``ValueError`` naming the first problem.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np

META_KEY = "__meta__"

_UMASK = os.umask(0o022)  # read the process umask (the only portable way) ...
os.umask(_UMASK)  # ... and put it back at once


def atomic_write(path: str | Path, write: Callable[[BinaryIO], object]) -> Path:
    """Call ``write(f)`` on a temporary file beside ``path``, then move it over ``path``.

    Folders are created. A crash or an exception inside ``write`` leaves ``path`` as it was
    (the previous file, or none) and removes the temporary file: no half-written file ever
    appears under the real name. Every file this package writes goes through here.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if hasattr(os, "fchmod"):  # mkstemp makes 0600; give the file open() would have
            os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (:func:`atomic_write`)."""
    return atomic_write(path, lambda f: f.write(text.encode()))


def save_figure(fig, path: str | Path, **savefig_kwargs) -> Path:
    """``fig.savefig`` to ``path`` atomically; the format comes from the suffix (``.png``)."""
    fmt = Path(path).suffix.lstrip(".") or None
    return atomic_write(path, lambda f: fig.savefig(f, format=fmt, **savefig_kwargs))


def save(model, path: str | Path, meta: dict | None = None) -> Path:
    """Write ``model.state_dict()`` (and ``meta``, JSON-serialisable) to ``path`` atomically."""
    arrays = model.state_dict()
    if META_KEY in arrays:
        raise ValueError(f"the model has a state entry named {META_KEY!r}, reserved for meta")
    if meta is not None:
        arrays[META_KEY] = np.array(json.dumps(meta))
    return atomic_write(path, lambda f: np.savez(f, **arrays))


def read_state(path: str | Path) -> tuple[dict[str, np.ndarray], dict]:
    """The arrays and the meta dict of a checkpoint; ``ValueError`` if it is not one."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise ValueError("a single .npy array, not an .npz archive")
            arrays = {key: archive[key] for key in archive.files}
    except FileNotFoundError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise ValueError(f"{path}: not a readable .npz checkpoint ({exc})") from None
    meta = {}
    if META_KEY in arrays:
        try:
            meta = json.loads(str(arrays.pop(META_KEY)))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: corrupt {META_KEY} entry ({exc})") from None
    return arrays, meta


def load(model, path: str | Path, strict: bool = True) -> dict:
    """Load the checkpoint at ``path`` into ``model``; returns its meta dict.

    Raises ``ValueError`` naming a missing, unexpected or wrongly shaped entry, or a file
    that is not a checkpoint; in every such case the model is left untouched.
    """
    arrays, meta = read_state(path)
    try:
        model.load_state_dict(arrays, strict=strict)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    return meta


__all__ = ["atomic_write", "load", "read_state", "save", "save_figure", "write_text"]
