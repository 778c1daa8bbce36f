"""Argument and output helpers shared by the ``run`` and ``supernet`` command groups."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.errors import ConfigError


def add_report_arguments(
    report: argparse.ArgumentParser, produced_by: str, n_boot_type: Callable[[str], int] = int
) -> None:
    """Add the positional results dir, ``--out``, ``--seed`` and ``--n-boot`` to ``report``.

    ``produced_by`` names the command that writes such a results directory (help text only).
    """
    report.add_argument("results", type=Path, help=f"results directory of `{produced_by}`")
    report.add_argument("--out", type=Path, help="where to write (default: the results dir)")
    report.add_argument("--seed", type=int, default=0, help="seed of the bootstrap intervals")
    report.add_argument("--n-boot", type=n_boot_type, default=1000, help="bootstrap resamples")


def require_results_dir(path: Path) -> None:
    """Raise :class:`ConfigError` unless ``path`` is an existing directory."""
    if not path.is_dir():
        raise ConfigError(f"results directory {path} does not exist")


def print_sweep_summary(summary: Any, planned: str) -> None:
    """Print a sweep's counts and wall time (seconds) after ``"<n> <planned>: "``, then its dir."""
    print(
        f"{summary.planned} {planned}: {summary.skipped} already finished, "
        f"{summary.ran} run now ({summary.retried} of them retried after failing before), "
        f"{summary.failed} failed, in {summary.wall_seconds:.1f} s"
    )
    for note in getattr(summary, "notes", ()):
        print(f"note: {note}")
    print(f"results: {summary.out}")
