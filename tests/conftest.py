"""Shared fixtures: locating the shared development data.

Tests that need ``../shared/data`` (or ``$HARNESS_SHARED_DATA``) skip with a reason when it is
absent, and fail instead when ``HARNESS_REQUIRE_SHARED=1`` (as in CI).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.paths import shared_data_dir


def _require_shared() -> bool:
    return os.environ.get("HARNESS_REQUIRE_SHARED", "") not in ("", "0")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Root of the shared data directory (skips, or fails under HARNESS_REQUIRE_SHARED=1)."""
    path = shared_data_dir()
    if path is None:
        msg = "shared data not found (set HARNESS_SHARED_DATA or place ../shared/data)"
        if _require_shared():
            pytest.fail(msg)
        pytest.skip(msg)
    return path


def shared_path(root: Path, *parts: str) -> Path:
    """A path inside the shared data; fails or skips like ``shared_data`` when it is missing."""
    path = root.joinpath(*parts)
    if not path.exists():
        msg = f"shared data file missing: {'/'.join(parts)}"
        if _require_shared():
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@pytest.fixture(scope="session")
def tss_samples(shared_data: Path) -> Path:
    return shared_path(shared_data, "nats-official-samples", "NATS-tss-v1_0-3ffb9-simple")


@pytest.fixture(scope="session")
def sss_samples(shared_data: Path) -> Path:
    return shared_path(shared_data, "nats-official-samples", "NATS-sss-v1_0-50262-simple")


@pytest.fixture(scope="session")
def tss_public_table(shared_data: Path) -> Path:
    return shared_path(shared_data, "nats-tss-public", "nats_tss_public.csv.gz")
