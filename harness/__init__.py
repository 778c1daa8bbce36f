"""Evaluation harness for neural architecture search on NATS-Bench.

Packages: :mod:`harness.spaces` (the topology and size spaces), :mod:`harness.bench` (the
benchmark store and its importers), :mod:`harness.protocol` / :mod:`harness.oracle` (method
protocols and the budgeted oracle), :mod:`harness.runner` (experiment grids), :mod:`harness.stats`
and :mod:`harness.report` (statistics, leaderboards, figures), :mod:`harness.data` and
:mod:`harness.supernet` (images and weight-sharing supernets). The command line is ``harness``.
"""

from importlib import metadata

try:
    __version__ = metadata.version("nats-harness")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
