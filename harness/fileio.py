"""Atomic file writes that respect the umask: the one helper every results writer uses.

:func:`atomic_write` calls ``write(tmp)`` on a new temporary file beside the target and then
renames it into place, so a reader sees the old file or the new one, whole, and a killed
writer leaves only a ``.<name>.<random>.tmp`` file behind (never a half-written target).

``tempfile.mkstemp`` creates its file with mode 0600 whatever the umask, and ``os.replace``
keeps that mode, so results written through it could be read by their owner only. Here the
temporary file is created with ``os.open(..., 0o666)``, which the kernel narrows by the
process umask exactly as for any ordinary file (0644 under the usual umask 0022), without
reading or changing the process-wide umask.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "TMP_SUFFIX",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "temp_dir",
    "temp_file",
]

#: Suffix of the temporary files (a killed writer's leftovers match ``.*.tmp``).
TMP_SUFFIX = ".tmp"
_FILE_MODE = 0o666  # narrowed by the umask, as open() does for any new file
_DIR_MODE = 0o777  # narrowed by the umask, as mkdir does
_ATTEMPTS = 100


def temp_file(directory: Path, prefix: str, suffix: str = TMP_SUFFIX) -> Path:
    """Create a new empty file ``<directory>/<prefix><random><suffix>`` (mode ``0666 & ~umask``)
    and return its path; the caller owns (and removes) it."""
    for _ in range(_ATTEMPTS):
        path = directory / f"{prefix}{secrets.token_hex(6)}{suffix}"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE)
        except FileExistsError:
            continue
        os.close(fd)
        return path
    raise FileExistsError(f"no free temporary name in {directory} after {_ATTEMPTS} tries")


def temp_dir(directory: Path, prefix: str, suffix: str = TMP_SUFFIX) -> Path:
    """Create a new empty directory like :func:`temp_file` (mode ``0777 & ~umask``, where
    ``tempfile.mkdtemp`` would make it 0700) and return its path."""
    for _ in range(_ATTEMPTS):
        path = directory / f"{prefix}{secrets.token_hex(6)}{suffix}"
        try:
            path.mkdir(_DIR_MODE)
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"no free temporary name in {directory} after {_ATTEMPTS} tries")


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it to ``path``.

    The parent directory is created if needed. If ``write`` raises, the temporary file is
    removed and ``path`` is left as it was. Returns ``path``.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_file(target.parent, f".{target.name}.")
    try:
        write(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))
