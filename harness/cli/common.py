"""Argument and output helpers shared by the command groups (``bench``, ``run``, ``supernet``).

This module imports nothing from the ``harness.cli`` package itself, so that the group
modules and the package can all import it without an import circle.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from harness.errors import ConfigError


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr (exit code 2), not a usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def jobs_arg(text: str) -> int:
    """``--jobs``: ``N`` workers; ``-1`` or ``0`` (any value below 1) means one per CPU.

    Every command that takes ``--jobs`` reads it here, so they all agree.
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int, got {text!r}") from None
    return value if value > 0 else (os.cpu_count() or 1)


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


def require_results_dir(path: Path, produced_by: str = "harness run") -> None:
    """Raise :class:`ConfigError` unless ``path`` is an existing directory."""
    if path.exists() and not path.is_dir():
        raise ConfigError(
            f"{path} is a file, not a results directory (give the directory that "
            f"`{produced_by} --out DIR` wrote)"
        )
    if not path.is_dir():
        raise ConfigError(f"results directory {path} does not exist")


def add_plugin_argument(parser: argparse.ArgumentParser) -> None:
    """``--plugin MODULE`` (repeatable): a module of one's own that registers methods."""
    parser.add_argument(
        "--plugin", action="append", default=[], metavar="MODULE",
        help="module that registers methods of your own: an importable name or a path to a "
        ".py file (repeatable); every worker imports it",
    )  # fmt: skip


def use_plugins(plugins: Sequence[str], *, export: bool = False) -> tuple[str, ...]:
    """Load the ``--plugin`` modules; with ``export`` also name them in ``$HARNESS_PLUGINS``,
    which the worker processes this command starts inherit and load. Returns them as workers
    are given them (:func:`harness.registry.load_plugins`)."""
    from harness.registry import PLUGINS_ENV, load_plugins

    keys = load_plugins(plugins)
    if export and keys:
        old = [p for p in os.environ.get(PLUGINS_ENV, "").split(os.pathsep) if p]
        os.environ[PLUGINS_ENV] = os.pathsep.join(dict.fromkeys([*old, *keys]))
    return keys


def print_sweep_summary(summary: Any, planned: str) -> None:
    """Print a sweep's counts and wall time (seconds) after ``"<n> <planned>: "``, then its dir."""
    print(
        f"{summary.planned} {planned}: {summary.skipped} already finished, "
        f"{summary.ran} run now ({summary.retried} of them retried after failing before), "
        f"{summary.failed} failed, in {summary.wall_seconds:.1f} s"
    )
    for note in getattr(summary, "notes", ()):
        print(f"note: {note}")
    if getattr(summary, "infeasible", 0):
        print(
            f"note: {summary.infeasible} runs saw no architecture within the protocol's "
            "constraint (status infeasible: no chosen architecture; they are not run again)"
        )
    print(f"results: {summary.out}")
