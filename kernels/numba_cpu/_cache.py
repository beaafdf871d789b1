"""Numba's on-disk cache of this backend, dropped whenever one of its sources changes.

Numba stamps each cached kernel with the modification time and size of the one file the
kernel is defined in, and loads it while that file is unchanged. But a kernel carries the
machine code of every helper it calls, inlined, and the helpers live in other files (every
kernel calls ``_loops``; the Winograd kernels call ``winograd_f2`` and ``winograd_layout``
and read their matrices from :mod:`kernels.winograd`). After an edit of a helper, the
kernels of the other files went on running the old helper's code, from the cache, until
their own file changed: a broken transform in ``winograd_f2.py`` passed the tests against
PyTorch until the cache was deleted by hand.

:func:`drop_stale_cache` closes that gap with one fingerprint for all of them: a hash of
every source the compiled code is built from (this package's files and the modules of
:mod:`kernels` beside it). The package calls it once, at import, before any kernel is
compiled or loaded; when the cache directory holds no mark of the current fingerprint, it
deletes the cached kernels (``*.nbi`` index and ``*.nbc`` data files, nothing else) and
writes the mark, and each kernel compiles afresh on its first call.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def sources_fingerprint(package_dir: Path = PACKAGE_DIR) -> str:
    """16 hex digits of SHA-256 over the ``.py`` files of ``package_dir`` and of its parent
    (names and contents, in sorted order).
    """
    digest = hashlib.sha256()
    for path in sorted(package_dir.glob("*.py")) + sorted(package_dir.parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def drop_stale_cache(cache_dir: str | Path, fingerprint: str) -> bool:
    """Delete the Numba cache files in ``cache_dir`` unless they were written under
    ``fingerprint``; return True when it deleted (or found nothing yet).

    The mark is an empty file ``sources-<fingerprint>.stamp`` in ``cache_dir``. Two processes
    starting together (pytest's workers) may both delete; Numba then finds an index without
    its data file, or no index, and compiles again, as it does on a cold cache. A cache
    directory that cannot be written is left alone (Numba does not write there either).
    """
    cache_dir = Path(cache_dir)
    mark = cache_dir / f"sources-{fingerprint}.stamp"
    if mark.exists():
        return False
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        for pattern in ("*.nbi", "*.nbc", "sources-*.stamp"):
            for path in cache_dir.glob(pattern):
                path.unlink(missing_ok=True)
        mark.touch()
    except OSError:
        return False
    return True
