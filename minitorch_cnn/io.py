"""Save and load arrays, nested structures and state dicts as ``.npz``: atomic, no pickle.

PyTorch's habit, ``torch.save(obj, path)`` / ``torch.load(path)``, without pickle:

- ``save(obj, path, meta=None)`` takes a module (its ``state_dict()`` is written, as
  ``torch.save(model.state_dict(), path)`` would) or any nesting of dicts (string keys),
  lists and tuples whose leaves are NumPy arrays, NumPy scalars, ``int``, ``float``,
  ``bool``, ``None`` or ``str``; ``load(path)`` gives the same structure back, so
  ``model.load_state_dict(io.load(path))`` works as in d2l's "File I/O" section.
- ``load(model, path, strict=True)`` loads a checkpoint straight into ``model`` and returns
  its ``meta`` dict (epoch, model name, ...); ``read_state(path)`` gives ``(arrays, meta)``.

The format (version 1) is an ordinary ``.npz`` archive that ``np.load`` opens:

- every array is one ``<name>.npy`` member, named by its path in the structure: a state dict's
  ``"0.weight"`` stays ``0.weight``; ``{"w": [a, b]}`` gives ``w/0`` and ``w/1``. Characters
  other than letters, digits, ``.``, ``_`` and ``-`` become ``_``; a clash gets a ``~2``
  suffix; the root array alone is ``root``;
- the member ``__structure__`` is a 0-d string array holding a JSON manifest
  ``{"format": "minitorch_cnn.io", "version": 1, "root": NODE, "meta": ...}``, where a NODE
  is one of ``{"array": name}``, ``{"scalar": name}`` (a NumPy scalar, stored 0-d),
  ``{"dict": [[key, NODE], ...]}`` (in order), ``{"list": [NODE, ...]}``,
  ``{"tuple": [NODE, ...]}``, ``{"int": 3}``, ``{"float": "0.1"}`` (``repr``, so exact,
  ``"nan"`` and ``"inf"`` included), ``{"bool": true}``, ``{"str": "..."}``, ``{"none": null}``.

A file without ``__structure__`` is a checkpoint of the first version (the state dict's arrays,
plus the meta JSON as a string under ``"__meta__"``): it loads as that dict.

Reading uses ``allow_pickle=False`` (an ``.npz`` can otherwise carry pickled Python objects
that run code on load). A file that is not one of ours (random bytes, a ``.npy``, a zip of
other things, a truncated or corrupt archive, a manifest that does not add up) raises one
``ValueError`` naming the file and what is wrong. Every write goes to a temporary file beside
``path`` and is moved over it with ``os.replace`` (:func:`atomic_write`), so a crash mid-write
never leaves a half-written file under the real name; the training metrics, plots and pictures
are written the same way (:func:`write_text`, :func:`save_figure`).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np

FORMAT = "minitorch_cnn.io"
VERSION = 1
MANIFEST_KEY = "__structure__"
META_KEY = "__meta__"  # the meta entry of version-0 checkpoints (no manifest)
_RESERVED = {MANIFEST_KEY, META_KEY, "file", "allow_pickle"}  # np.savez's own keywords too

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


# --------------------------------------------------------------------------- writing


def _where(keys: tuple) -> str:
    """``obj['w'][0]``: a leaf's place in the structure, for error messages."""
    return "obj" + "".join(f"[{key!r}]" for key in keys)


def _array_name(keys: tuple, taken: dict) -> str:
    """A member name for the array at ``keys``, unique in ``taken``."""
    parts = [re.sub(r"[^A-Za-z0-9._-]", "_", str(key)) or "_" for key in keys]
    base = "/".join(parts) or "root"
    name, count = base, 1
    while name in taken or name in _RESERVED:
        count += 1
        name = f"{base}~{count}"
    return name


def _host_array(obj: object) -> np.ndarray | None:
    """``obj`` as a NumPy array if it is one (or a device array / torch tensor), else None."""
    if isinstance(obj, np.ndarray):
        return obj
    if hasattr(obj, "copy_to_host"):  # a Numba CUDA device array
        return obj.copy_to_host()
    if hasattr(obj, "detach") and hasattr(obj, "numpy"):  # a torch tensor: no torch import
        return obj.detach().cpu().numpy()
    return None


def _encode(obj: object, keys: tuple, arrays: dict, open_ids: set) -> dict:
    """The manifest node of ``obj``; its arrays are added to ``arrays`` under fresh names."""
    array = _host_array(obj)
    if array is not None or isinstance(obj, np.generic):
        kind = "array" if array is not None else "scalar"
        array = np.asarray(obj) if array is None else array
        if array.dtype.hasobject:
            raise TypeError(f"io.save: {_where(keys)} is an array of Python objects, which "
                            f"only pickle can store; convert it to a numeric dtype")
        name = _array_name(keys, arrays)
        arrays[name] = array
        return {kind: name}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return _encode_value(obj)
    if not isinstance(obj, (dict, list, tuple)):
        hint = "; store module.state_dict() instead" if hasattr(obj, "state_dict") else ""
        raise TypeError(f"io.save: {_where(keys)}: cannot store a {type(obj).__name__} (expected "
                        f"an array, a number, a bool, None, a str, or a dict, list or tuple of "
                        f"them){hint}")
    if id(obj) in open_ids:
        raise ValueError(f"io.save: {_where(keys)} contains itself")
    open_ids.add(id(obj))
    if isinstance(obj, dict):
        for key in obj:
            if not isinstance(key, str):
                raise TypeError(f"io.save: {_where(keys)} has a key {key!r} of type "
                                f"{type(key).__name__}; expected str keys")
        node = {"dict": [[k, _encode(v, (*keys, k), arrays, open_ids)] for k, v in obj.items()]}
    else:
        kind = "tuple" if isinstance(obj, tuple) else "list"
        node = {kind: [_encode(v, (*keys, i), arrays, open_ids) for i, v in enumerate(obj)]}
    open_ids.discard(id(obj))
    return node


def _encode_value(value: object) -> dict:
    """The node of a Python scalar: ``{"int": 3}``, ``{"float": "0.1"}``, ..."""
    if value is None:
        return {"none": None}
    if isinstance(value, bool):
        return {"bool": bool(value)}
    if isinstance(value, int):
        return {"int": int(value)}
    if isinstance(value, float):
        return {"float": repr(float(value))}
    return {"str": str(value)}


def _as_path(path: object) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a str or os.PathLike, got {type(path).__name__}")
    return Path(path)


def save(obj: object, path: str | Path, meta: dict | None = None) -> Path:
    """Write ``obj`` to ``path`` atomically; returns the path (written as given, no suffix added).

    Parameters
    ----------
    obj : Module, ndarray, or dict / list / tuple of arrays and Python scalars
        A module (anything with ``state_dict()``) is stored as its state dict.
    path : str or os.PathLike
    meta : JSON-serialisable, optional
        Stored in the manifest; :func:`load` ``(model, path)`` and :func:`read_state` return it.

    Raises ``TypeError`` naming the first leaf that cannot be stored without pickle.
    """
    path = _as_path(path)
    if callable(getattr(obj, "state_dict", None)):
        obj = obj.state_dict()
    arrays: dict[str, np.ndarray] = {}
    manifest = {"format": FORMAT, "version": VERSION, "root": _encode(obj, (), arrays, set())}
    if meta is not None:
        manifest["meta"] = meta
    arrays[MANIFEST_KEY] = np.array(json.dumps(manifest))
    return atomic_write(path, lambda f: np.savez(f, **arrays))


# --------------------------------------------------------------------------- reading


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every member of the ``.npz`` at ``path``; ``ValueError`` if it is not one."""
    try:
        with open(path, "rb") as f:
            head = f.read(6)
        if not head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"\x93NUMPY")):
            raise ValueError("empty file" if not head else "no zip signature at its start")
        archive = np.load(path, allow_pickle=False)  # an ndarray for a .npy: no `with` then
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ValueError("a single .npy array, not an .npz archive")
        with archive:
            arrays = {key: archive[key] for key in archive.files}
    except FileNotFoundError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise ValueError(f"{path}: not a readable .npz checkpoint ({exc})") from None
    for key, value in arrays.items():
        if not isinstance(value, np.ndarray):
            raise ValueError(f"{path}: not a readable .npz checkpoint (a zip archive whose "
                             f"member {key!r} is not a .npy array)")
    return arrays


def _json_entry(arrays: dict, key: str) -> object:
    """The JSON held, as a 0-d string array, by ``arrays[key]`` (removed from ``arrays``)."""
    entry = arrays.pop(key)
    if entry.shape != () or entry.dtype.kind != "U":
        raise ValueError(f"{key} is a {entry.dtype} array of shape {entry.shape}, not a string")
    try:
        return json.loads(str(entry))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{key} is not JSON ({exc})") from None


def _decode(node: object, arrays: dict, used: set) -> object:
    """The object a manifest node describes; ``ValueError`` if the node is malformed."""
    if not (isinstance(node, dict) and len(node) == 1):
        raise ValueError(f"malformed node {str(node)[:80]}")
    ((kind, value),) = node.items()
    if kind in ("array", "scalar"):
        if not isinstance(value, str) or value not in arrays:
            raise ValueError(f"the manifest names an array {value!r} that the archive lacks")
        used.add(value)
        if kind == "scalar" and arrays[value].shape != ():
            raise ValueError(f"scalar {value!r} has shape {arrays[value].shape}")
        return arrays[value] if kind == "array" else arrays[value][()]
    if kind == "dict" and isinstance(value, list):
        if not all(isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) for p in value):
            raise ValueError(f"malformed dict node {str(value)[:80]}")
        return {key: _decode(child, arrays, used) for key, child in value}
    if kind in ("list", "tuple") and isinstance(value, list):
        items = [_decode(child, arrays, used) for child in value]
        return tuple(items) if kind == "tuple" else items
    return _decode_value(kind, value)


def _decode_value(kind: str, value: object) -> object:
    expected = {"none": type(None), "bool": bool, "int": int, "str": str, "float": str}
    if kind not in expected or not isinstance(value, expected[kind]) or (
            kind == "int" and isinstance(value, bool)):
        raise ValueError(f"malformed node {{{kind!r}: {str(value)[:60]}}}")
    return float(value) if kind == "float" else value  # float("nan"), float("x") -> ValueError


def _read(path: str | Path) -> tuple[object, object]:
    """``(obj, meta)`` of a file written by :func:`save` (or a version-0 checkpoint)."""
    path = _as_path(path)
    arrays = _read_arrays(path)
    try:
        if MANIFEST_KEY not in arrays:  # version 0: a plain state dict (and __meta__)
            meta = _json_entry(arrays, META_KEY) if META_KEY in arrays else {}
            return arrays, meta
        manifest = _json_entry(arrays, MANIFEST_KEY)
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise ValueError(f"{MANIFEST_KEY} is not a {FORMAT} manifest")
        version = manifest.get("version")
        if not isinstance(version, int) or version > VERSION or "root" not in manifest:
            raise ValueError(f"format version {version!r}; this minitorch_cnn reads up to "
                             f"{VERSION}")
        used: set[str] = set()
        obj = _decode(manifest["root"], arrays, used)
        if set(arrays) - used:
            raise ValueError(f"arrays not in the manifest: {sorted(set(arrays) - used)}")
    except ValueError as exc:
        raise ValueError(f"{path}: corrupt or foreign file ({exc})") from None
    return obj, manifest.get("meta", {})


def read_state(path: str | Path) -> tuple[dict[str, np.ndarray], object]:
    """The arrays and the meta dict of a checkpoint; ``ValueError`` if it is not one."""
    obj, meta = _read(path)
    if not (isinstance(obj, dict) and all(isinstance(v, np.ndarray) for v in obj.values())):
        raise ValueError(f"{path}: holds a {type(obj).__name__} that is not a state dict "
                         f"({{name: array}}); read it with io.load(path)")
    return obj, meta


def load(model_or_path: object, path: str | Path | None = None, strict: bool = True) -> object:
    """``load(path) -> obj`` as ``torch.load``; ``load(model, path) -> meta`` loads a model.

    Parameters
    ----------
    model_or_path : str, os.PathLike, or Module
        With one argument: the file, and what :func:`save` stored is returned (a module's
        state dict as a dict of arrays; tuples stay tuples; arrays keep dtype and shape).
        With two: the model (anything with ``load_state_dict``) to load ``path`` into.
    path : str or os.PathLike, optional
    strict : bool
        For the model form: as ``load_state_dict(..., strict)``.

    Raises ``ValueError`` naming the file for a file that is not ours or is corrupt, and for
    a missing, unexpected or wrongly shaped entry; in every such case the model is untouched.
    """
    if path is None:
        return _read(model_or_path)[0]
    model = model_or_path
    if not callable(getattr(model, "load_state_dict", None)):
        raise TypeError(f"model: expected a module (with load_state_dict), got "
                        f"{type(model).__name__}; io.load(path) alone returns what was saved")
    arrays, meta = read_state(path)
    try:
        model.load_state_dict(arrays, strict=strict)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    return meta


__all__ = ["atomic_write", "load", "read_state", "save", "save_figure", "write_text"]
