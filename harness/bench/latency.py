"""Latency tables: measured latency (ms) of every architecture per device setting, attached
to a store as one side file.

:func:`import_latency` checks a table (CSV / CSV.gz: ``index, arch_str, <device>...``; every
architecture once, in official index order, with its official string; values >= 0 ms, NaN
where not measured) and writes it as ``latency_ms.npz`` into the store's directory, atomically;
the store's own arrays, manifest and checksum are untouched. :func:`latency_table` reads it
back (once per file version). :mod:`harness.bench.costs` answers ``latency:<device>`` from it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from harness.errors import BenchmarkQueryError, ConfigError, unknown
from harness.fileio import atomic_write

if TYPE_CHECKING:
    from harness.bench.store import Store

__all__ = ["DEVICE_NAME", "LATENCY_FILE", "LatencyTable", "import_latency", "latency_table"]

logger = logging.getLogger(__name__)

LATENCY_FILE = "latency_ms.npz"
#: What a device column may be called (the part after ``latency:``).
DEVICE_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")


@dataclass(frozen=True, eq=False)
class LatencyTable:
    """Measured latency (ms) of every architecture: ``values`` ``(n_devices, n_archs)``."""

    devices: tuple[str, ...]
    values: npt.NDArray[np.float32]
    source: str
    sha256: str
    imported: str

    def device(self, name: str) -> npt.NDArray[np.float64]:
        """The ``(n_archs,)`` latencies of one device setting (read-only float64)."""
        if name not in self.devices:
            raise BenchmarkQueryError(unknown("latency device", name, self.devices))
        out = self.values[self.devices.index(name)].astype(np.float64)
        out.flags.writeable = False
        return out


_TABLES: dict[tuple[str, int, int], LatencyTable] = {}


def latency_table(store: Store) -> LatencyTable | None:
    """The latency table attached to ``store`` (read once per file version), or None."""
    file = store.path / LATENCY_FILE
    try:
        stat = file.stat()
    except FileNotFoundError:
        return None
    key = (str(file), stat.st_mtime_ns, stat.st_size)
    if key not in _TABLES:
        with np.load(file, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            _TABLES[key] = LatencyTable(
                tuple(str(d) for d in data["devices"]), np.array(data["values"]),
                meta["source"], meta["sha256"], meta["imported"],
            )  # fmt: skip
    return _TABLES[key]


def import_latency(store: Store, source: str | Path, *, overwrite: bool = False) -> LatencyTable:
    """Attach the latency table ``source`` (CSV / CSV.gz: ``index, arch_str, <device>...``,
    ms) to ``store``. Every architecture must appear once, in official index order, with its
    official string; values must be numbers >= 0 (NaN: not measured)."""
    import pandas as pd  # only an import reads CSV

    path = Path(source)
    if not path.is_file():
        raise ConfigError(f"latency table {path} does not exist")
    if (store.path / LATENCY_FILE).exists() and not overwrite:
        raise ConfigError(
            f"store {store.path.name} already has a latency table; pass --overwrite to replace it"
        )
    try:
        frame = pd.read_csv(path)
    except Exception as err:
        raise ConfigError(f"cannot read {path.name}: {type(err).__name__}: {err}") from None
    devices = _check_frame(frame, store, path.name)
    values = frame[list(devices)].to_numpy(dtype=np.float32).T  # (n_devices, n_archs)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    meta = {"source": path.name, "sha256": digest, "imported": stamp, "unit": "ms"}

    def write(tmp: Path) -> None:
        with tmp.open("wb") as handle:  # a handle: np.savez would append .npz to a name
            np.savez(handle, devices=np.array(devices), values=values, meta=json.dumps(meta))

    atomic_write(store.path / LATENCY_FILE, write)
    logger.info("attached %s (%d devices) to store %s", path.name, len(devices), store.path.name)
    table = latency_table(store)
    assert table is not None
    return table


def _check_frame(frame: object, store: Store, name: str) -> tuple[str, ...]:
    """The device columns of a latency table, after checking its rows against ``store``."""
    import pandas as pd

    assert isinstance(frame, pd.DataFrame)
    missing = [c for c in ("index", "arch_str") if c not in frame.columns]
    if missing:
        raise ConfigError(
            f"{name} lacks column(s) {missing}; expected index, arch_str, <device>..."
        )
    devices = tuple(str(c) for c in frame.columns if c not in ("index", "arch_str"))
    bad = [d for d in devices if not DEVICE_NAME.match(d)] or (() if devices else ("(none)",))
    if bad:
        raise ConfigError(f"{name}: bad device column name(s) {list(bad)}")
    if (
        len(frame) != store.n_archs
        or not (frame["index"].to_numpy() == np.arange(len(frame))).all()
    ):
        raise ConfigError(
            f"{name} must list the {store.n_archs:,} architectures of store {store.path.name} "
            f"once each in index order; it has {len(frame):,} rows"
        )
    strings = [store.space.index_to_str(i) for i in range(store.n_archs)]
    wrong = np.flatnonzero(frame["arch_str"].astype(str).to_numpy() != np.array(strings))
    if wrong.size:
        raise ConfigError(
            f"{name}: {wrong.size} rows name another architecture than their index in "
            f"{store.space_name} (first: index {int(wrong[0])})"
        )
    numbers = frame[list(devices)].apply(pd.to_numeric, errors="coerce")
    bad_cells = (numbers.isna() & frame[list(devices)].notna()) | ~(numbers.abs() < np.inf)
    bad_cells = (bad_cells & frame[list(devices)].notna()) | (numbers < 0)
    if bad_cells.any().any():
        column = str(bad_cells.any().idxmax())
        raise ConfigError(f"{name}: column {column} holds values that are not latencies >= 0")
    return devices
