"""Where things live: the one place that decides paths.

* ``HARNESS_HOME`` (default ``~/.cache/nats-harness``) holds imported benchmark stores
  (``$HARNESS_HOME/stores/<name>``) and run results unless told otherwise.
* Official NATS-Bench archives are looked up where ``nats_bench`` looks for them:
  ``$TORCH_HOME`` (default ``~/.torch``).
* Development data shared beside a checkout is found through ``HARNESS_SHARED_DATA``.
"""

from __future__ import annotations

import os
from pathlib import Path

OFFICIAL_ARCHIVE_NAMES = {
    "tss": ("NATS-tss-v1_0-3ffb9-simple", "NATS-tss-v1_0-3ffb9.pickle.pbz2"),
    "sss": ("NATS-sss-v1_0-50262-simple", "NATS-sss-v1_0-50262.pickle.pbz2"),
}


def harness_home() -> Path:
    """Root of everything the harness writes by default."""
    env = os.environ.get("HARNESS_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "nats-harness"


def stores_dir() -> Path:
    """Directory that holds one sub-directory per imported benchmark store."""
    return harness_home() / "stores"


def torch_home() -> Path:
    """Where ``nats_bench`` expects the official archives."""
    env = os.environ.get("TORCH_HOME")
    return Path(env).expanduser() if env else Path.home() / ".torch"


def official_archives(space: str) -> list[Path]:
    """Official archives of ``space`` present under ``$TORCH_HOME`` (directory layout first)."""
    return [p for name in OFFICIAL_ARCHIVE_NAMES[space] if (p := torch_home() / name).exists()]


def shared_data_dir() -> Path | None:
    """The shared development data directory, if one is configured or sits beside the checkout."""
    env = os.environ.get("HARNESS_SHARED_DATA")
    if env:
        path = Path(env).expanduser()
        return path if path.is_dir() else None
    beside = Path(__file__).resolve().parents[2] / "shared" / "data"
    return beside if beside.is_dir() else None
