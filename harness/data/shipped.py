"""The official data splits shipped inside the package, so runs need no ``../shared`` files.

Every official split (:data:`~harness.data.splits.SPLIT_SPECS`) has two parts that together
cover its set of images, so one bit per image says which part it is in. The package data
``harness/data/splits_data/`` holds:

* ``splits.npz``: per split name, ``np.packbits`` of the membership mask (bit ``i`` set iff
  image ``i`` is in the first part; the second part is the rest), uint8;
* ``splits.json``: per split name, the official file it came from and that file's sha256, the
  part names, sizes and total, and ``indices_sha256``, a digest of the decoded index arrays
  (checked on every load, so a damaged package cannot pass as the official split);
* ``LICENSE-AutoDL-Projects.txt``: the MIT notice of the official files.

:func:`write_shipped_splits` generates them from the official files
(``benchmarks/make_split_data.py`` runs it once); :func:`shipped_split` reads one back as a
:class:`~harness.data.splits.Split` whose provenance carries both checksums.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from harness.data.splits import SPLIT_SPECS, Split, load_official_split
from harness.errors import ArchiveError, ConfigError, unknown
from harness.fileio import atomic_write, atomic_write_text

__all__ = [
    "SHIPPED_FILES",
    "indices_sha256",
    "shipped_split",
    "write_shipped_splits",
]

logger = logging.getLogger(__name__)

#: The package data files (in ``harness/data/splits_data/``).
SHIPPED_FILES = ("splits.npz", "splits.json", "LICENSE-AutoDL-Projects.txt")
_PACKAGE = "harness.data.splits_data"
_FORMAT = 1

_NOTICE = """\
The split index arrays in splits.npz / splits.json are derived from the official data-split
files of NAS-Bench-201 / NATS-Bench (github.com/D-X-Y/AutoDL-Projects,
configs/nas-benchmark/{cifar-split.txt, cifar100-test-split.txt,
imagenet-16-120-test-split.txt, ImageNet16-120-split.txt}), under the following licence.

MIT License

Copyright (c) since 2019.01.01, author: Xuanyi Dong (GitHub: https://github.com/D-X-Y)

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""


def indices_sha256(parts: dict[str, np.ndarray]) -> str:
    """Digest of a split's index arrays: part names and their sorted int64 indices, in order
    (independent of how a file spells them)."""
    digest = hashlib.sha256()
    for name, indices in parts.items():
        digest.update(name.encode() + b"\0")
        digest.update(np.sort(np.asarray(indices, dtype=np.int64)).astype("<i8").tobytes())
    return digest.hexdigest()


def _mask(split: Split) -> np.ndarray:
    """(total,) bool: image in the first part. Raises unless the two parts cover the set."""
    first, second = split.parts.values()
    if first.size + second.size != split.total:
        raise ArchiveError(f"split {split.name!r}: its parts do not cover all {split.total}")
    mask = np.zeros(split.total, dtype=bool)
    mask[first] = True
    return mask


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with path.open("wb") as handle:  # a handle: np.savez would append ".npz" to a path
        np.savez_compressed(handle, **arrays)  # type: ignore[arg-type]  # stubs: allow_pickle


def write_shipped_splits(splits_dir: str | Path, dest: str | Path) -> dict[str, Any]:
    """Encode every official split of ``splits_dir`` into the package data files in ``dest``.

    Returns the manifest written as ``splits.json``. Files are written atomically.
    """
    dest = Path(dest)
    manifest: dict[str, Any] = {"format": _FORMAT, "encoding": "packbits-first-part", "splits": {}}
    arrays: dict[str, np.ndarray] = {}
    for name in SPLIT_SPECS:
        split = load_official_split(name, splits_dir)
        arrays[name] = np.packbits(_mask(split))
        manifest["splits"][name] = {
            "file": split.provenance["file"],
            "sha256": split.provenance["sha256"],
            "parts": list(split.parts),
            "sizes": [int(v.size) for v in split.parts.values()],
            "total": split.total,
            "indices_sha256": indices_sha256(split.parts),
        }
    atomic_write(dest / "splits.npz", lambda tmp: _save_npz(tmp, arrays))
    atomic_write_text(dest / "splits.json", json.dumps(manifest, indent=1) + "\n")
    atomic_write_text(dest / "LICENSE-AutoDL-Projects.txt", _NOTICE)
    return manifest


@functools.cache
def _package_data() -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    folder = resources.files(_PACKAGE)
    try:
        manifest = json.loads(folder.joinpath("splits.json").read_text(encoding="utf-8"))
        with folder.joinpath("splits.npz").open("rb") as handle, np.load(handle) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as err:
        raise ArchiveError(f"the package's split data ({_PACKAGE}) cannot be read: {err}") from err
    if manifest.get("format") != _FORMAT:
        raise ArchiveError(f"{_PACKAGE}/splits.json has format {manifest.get('format')}")
    return manifest, arrays


def shipped_split(name: str) -> Split:
    """The official split ``name`` (a key of :data:`SPLIT_SPECS`) from the package data.

    Its provenance is ``{'source': 'package', 'file': <official file>, 'sha256': <that file's
    sha256>, 'indices_sha256': <digest of the indices>}``; the indices equal
    :func:`~harness.data.splits.load_official_split` on the official file.
    """
    if name not in SPLIT_SPECS:
        raise ConfigError(unknown("official split", name, SPLIT_SPECS))
    manifest, arrays = _package_data()
    entry = manifest["splits"].get(name)
    if entry is None or name not in arrays:
        raise ArchiveError(f"the package's split data lacks {name!r} (regenerate it)")
    total = int(entry["total"])
    mask = np.unpackbits(arrays[name], count=total).astype(bool)
    first, second = entry["parts"]
    parts = {first: np.flatnonzero(mask), second: np.flatnonzero(~mask)}
    parts = {k: v.astype(np.int64) for k, v in parts.items()}
    if indices_sha256(parts) != entry["indices_sha256"]:
        raise ArchiveError(f"the package's split {name!r} does not match its recorded digest")
    if [int(v.size) for v in parts.values()] != entry["sizes"]:
        raise ArchiveError(f"the package's split {name!r} has the wrong part sizes")
    provenance = {
        "source": "package",
        "file": entry["file"],
        "sha256": entry["sha256"],
        "indices_sha256": entry["indices_sha256"],
    }
    return Split(name, parts, total, provenance)
