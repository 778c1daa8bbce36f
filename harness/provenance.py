"""Provenance of a sweep for its manifest: code version, packages, machine, data, protocols.

Re-exported by :mod:`harness.results`, whose results directories store these entries in
``manifest.json``.
"""

from __future__ import annotations

import logging
import os
import platform
import subprocess
import time
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.bench.store import Store
    from harness.protocol import ProtocolCard

logger = logging.getLogger(__name__)

_PACKAGES = (
    "nats-harness",
    "numpy",
    "scipy",
    "pandas",
    "pyarrow",
    "joblib",
    "tqdm",
    "torch",
    "nats_bench",
)  # fmt: skip


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def git_commit() -> dict[str, Any]:
    """Commit hash and dirty flag of the checkout holding this package, or nulls."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root, capture_output=True, text=True, timeout=10,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    if head.returncode != 0:
        return {"commit": None, "dirty": None}
    return {
        "commit": head.stdout.strip(),
        "dirty": bool(dirty.stdout.strip()) if dirty.returncode == 0 else None,
    }


def package_versions(names: Iterable[str] = _PACKAGES) -> dict[str, str | None]:
    """Installed version of each package (None when absent)."""
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def machine_info(device: str = "cpu") -> dict[str, Any]:
    """Platform, Python, CPU count, compute ``device`` and, for a GPU, its name (an H100 and
    an H200 differ in what their numbers mean)."""
    name = None
    if device.startswith("cuda"):
        import torch  # only where a GPU ran the sweep

        name = (
            torch.cuda.get_device_name(torch.device(device)) if torch.cuda.is_available() else None
        )
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "device": device,
        "device_name": name,
    }


def sweep_manifest(
    store: Store, cards: Mapping[str, ProtocolCard], budgets: Mapping[str, float]
) -> dict[str, Any]:
    """Manifest entries of a sweep: code, packages, machine, data and protocol cards."""
    return {
        "git": git_commit(),
        "packages": package_versions(),
        "machine": machine_info(),
        "data": {
            "checksum": store.checksum, "store": store.path.name, "source": store.source,
            "synthetic": store.synthetic, "space": store.space_name,
            "archs_present": store.n_present, "created": store.manifest.get("created"),
        },
        "synthetic": store.synthetic,
        "protocols": {
            label: {**card.to_dict(), **({"budget_overrides": dict(budgets)} if budgets else {})}
            for label, card in cards.items()
        },
    }  # fmt: skip
