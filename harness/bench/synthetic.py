"""Seeded synthetic NATS-Bench archives in the exact official file format.

Files are bz2-compressed protocol-4 pickles with the keys, key order, python/numpy types,
seeds, evaluation-set gaps and float precision patterns of the genuine archives, in the
fast-mode directory layout or as the single-file archive; ``nats_bench`` reads both. Only the
metrics are invented: accuracy curves rise to a plateau set by the architecture (many
``nor_conv_3x3`` on input-output paths is best; a cell with no such path stays at chance),
losses follow the accuracies, per-epoch times are constant per run and grow with FLOPs.
Parameter and FLOP counts are computed in closed form and equal the genuine values
(the value model is in :mod:`harness.bench.synthetic_values`).

A file depends only on ``(space, index, entropy)``, ``entropy`` being one draw from the
caller's generator: the same seed gives byte-identical files whatever ``n_jobs`` or subset.
"""

from __future__ import annotations

import bz2
import logging
import os
import pickle
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import numpy as np
from joblib import Parallel, delayed
from tqdm import tqdm

from harness.bench.synthetic_values import (
    DATASETS,
    HPS,
    SSS_GENOTYPE,
    arch_record,
    network_costs,
    quality,
)
from harness.errors import ConfigError, unknown
from harness.fileio import temp_dir
from harness.paths import OFFICIAL_ARCHIVE_NAMES
from harness.spaces import sss, tss

__all__ = [
    "CORRUPTIONS",
    "DATASETS",
    "FILE_LAYOUT_MAX_ARCHS",
    "HPS",
    "LAYOUTS",
    "SPACES",
    "SSS_GENOTYPE",
    "arch_record",
    "corrupt_file",
    "encode",
    "network_costs",
    "quality",
    "write_synthetic_archive",
]

logger = logging.getLogger(__name__)

SPACES: Final = ("tss", "sss")
LAYOUTS: Final = ("dir", "file")
CORRUPTIONS: Final = ("truncate", "garbage", "wrong_type")
FILE_LAYOUT_MAX_ARCHS: Final = 1000  # the single file is built in memory (a few MB per record)

_NUM_ARCHS: Final = {"tss": tss.NUM_ARCHS, "sss": sss.NUM_ARCHS}
# numpy >= 2 pickles scalars under numpy._core; the genuine files name numpy.core.
_NUMPY_MODULE: Final = (b"\x8c\x16numpy._core.multiarray", b"\x8c\x15numpy.core.multiarray")


def _legacy_numpy_names(raw: bytes) -> bytes:
    """Name numpy's scalar constructor as the genuine files do, keeping frame lengths valid."""
    old, new = _NUMPY_MODULE
    parts, pos = [raw[:2]], 2  # PROTO 4, then FRAME opcodes; no opcode spans two frames
    while pos < len(raw) and raw[pos] == 0x95:
        size = int.from_bytes(raw[pos + 1 : pos + 9], "little")
        body = raw[pos + 9 : pos + 9 + size].replace(old, new)
        parts += [b"\x95", len(body).to_bytes(8, "little"), body]
        pos += 9 + size
    parts.append(raw[pos:].replace(old, new))
    return b"".join(parts)


def encode(obj: object) -> bytes:
    """Bytes of an archive file: protocol-4 pickle, bz2 level 9 (as ``nats_bench`` saves)."""
    return bz2.compress(_legacy_numpy_names(pickle.dumps(obj, protocol=4)), 9)


def _write_chunk(folder: str, space: str, entropy: int, indices: list[int], unpadded: bool) -> int:
    for i in indices:
        name = f"{i}.pickle.pbz2" if unpadded else f"{i:06d}.pickle.pbz2"
        Path(folder, name).write_bytes(encode(arch_record(space, i, entropy)))
    return len(indices)


def _records(space: str, entropy: int, indices: list[int]) -> dict[int, bytes]:
    # Pickled here, unpickled by the caller: the objects shared inside the final single file
    # (and so its bytes) are then the same whichever process made them.
    return {i: pickle.dumps(arch_record(space, i, entropy), protocol=4) for i in indices}


def _check(space: str, layout: str, indices: Sequence[int] | None) -> list[int]:
    if space not in SPACES:
        raise ConfigError(unknown("search space", space, SPACES))
    if layout not in LAYOUTS:
        raise ConfigError(unknown("archive layout", layout, LAYOUTS))
    total = _NUM_ARCHS[space]
    chosen = list(range(total)) if indices is None else [int(i) for i in indices]
    bad = [i for i in chosen if not 0 <= i < total]
    if bad or len(set(chosen)) != len(chosen):
        raise ConfigError(
            f"indices must be distinct integers in 0..{total - 1} for {space}; "
            f"got {len(chosen)} indices, out of range: {bad[:5]}"
        )
    if layout == "file" and len(chosen) > FILE_LAYOUT_MAX_ARCHS:
        raise ConfigError(
            f"the single-file layout is built in memory: at most {FILE_LAYOUT_MAX_ARCHS} "
            f"architectures, got {len(chosen)}; use layout='dir' for more"
        )
    return chosen


def _fill(tmp: Path, space: str, entropy: int, chosen: list[int], layout: str, n_jobs: int,
          progress: bool, unpadded: bool) -> dict[int, bytes]:  # fmt: skip
    """Generate every record in parallel chunks: files in ``tmp`` ("dir") or returned ("file")."""
    workers = (os.cpu_count() or 1) if n_jobs < 0 else max(1, n_jobs)
    size = max(1, min(64, len(chosen) // (workers * 16)))
    chunks = [chosen[k : k + size] for k in range(0, len(chosen), size)]
    if layout == "dir":
        jobs = (delayed(_write_chunk)(str(tmp), space, entropy, c, unpadded) for c in chunks)
    else:
        jobs = (delayed(_records)(space, entropy, c) for c in chunks)
    records: dict[int, bytes] = {}
    with tqdm(total=len(chosen), disable=not progress, unit="arch", desc=space) as bar:
        for done in Parallel(n_jobs=n_jobs, return_as="generator_unordered")(jobs):
            if isinstance(done, dict):
                records.update(done)
            bar.update(len(done) if isinstance(done, dict) else done)
    return records


def write_synthetic_archive(
    out: Path,
    space: str,
    rng: np.random.Generator,
    indices: Sequence[int] | None = None,
    layout: str = "dir",
    n_jobs: int = 1,
    progress: bool = False,
    unpadded_names: bool = False,
) -> Path:
    """Write a synthetic archive under ``out`` and return its path.

    ``layout="dir"``: ``out/NATS-{space}-...-simple/`` with ``meta.pickle.pbz2`` (every
    architecture string) and one file per index, ``NNNNNN.pickle.pbz2`` (``N.pickle.pbz2``
    when ``unpadded_names``). ``layout="file"``: the single non-fast-mode archive
    ``out/NATS-{space}-....pickle.pbz2`` holding ``meta_archs``, ``arch2infos`` (index -> hp ->
    state), ``evaluated_indexes`` and ``total_archs``. ``indices=None`` is the whole space.
    The archive appears atomically (built in a temporary sibling, then renamed); on any
    failure nothing is left behind. Uses one draw of ``rng``; ``n_jobs`` as in joblib.
    """
    chosen = _check(space, layout, indices)
    out = Path(out)
    target = out / OFFICIAL_ARCHIVE_NAMES[space][0 if layout == "dir" else 1]
    if target.exists():
        raise ConfigError(f"{target} already exists; remove it or choose another directory")
    entropy = int(rng.integers(0, 2**63))
    created = [p for p in (out, *out.parents) if not p.exists()]  # deepest first
    out.mkdir(parents=True, exist_ok=True)
    tmp = temp_dir(out, f".{target.name}.")  # an ordinary directory: its mode follows the umask
    try:
        strings = list(tss.all_strings() if space == "tss" else sss.all_strings())
        records = _fill(tmp, space, entropy, chosen, layout, n_jobs, progress, unpadded_names)
        if layout == "dir":
            meta = {"meta_archs": strings, "total_archs": len(strings), "arch2infos": None,
                    "evaluated_indexes": set()}  # fmt: skip
            (tmp / "meta.pickle.pbz2").write_bytes(encode(meta))
            os.replace(tmp, target)
        else:
            infos = {i: pickle.loads(records[i]) for i in chosen}
            whole = {"meta_archs": strings, "arch2infos": infos,
                     "evaluated_indexes": set(chosen), "total_archs": len(strings)}  # fmt: skip
            (tmp / target.name).write_bytes(encode(whole))
            os.replace(tmp / target.name, target)
            tmp.rmdir()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for path in created:  # directories this call made, if still empty
            try:
                path.rmdir()
            except OSError:
                break
        raise
    logger.info("wrote synthetic %s archive %s (%d architectures)", space, target, len(chosen))
    return target


def corrupt_file(path: Path, mode: str) -> Path:
    """Damage an archive file in place, for tests of importers; returns ``path``.

    ``truncate``: keep the first half of the bytes (a cut bz2 stream). ``garbage``: same
    length of bytes that are not bz2. ``wrong_type``: a valid bz2 pickle of a list.
    """
    if mode not in CORRUPTIONS:
        raise ConfigError(unknown("corruption mode", mode, CORRUPTIONS))
    path = Path(path)
    data = path.read_bytes()
    if mode == "truncate":
        damaged = data[: len(data) // 2]
    elif mode == "garbage":
        pattern = b"\x00not a bz2 archive\xff"
        damaged = (pattern * (len(data) // len(pattern) + 1))[: max(len(data), len(pattern))]
    else:
        damaged = encode(["not", "an", "archive", "record"])
    path.write_bytes(damaged)
    return path
