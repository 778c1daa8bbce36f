"""Command-line interface: ``harness <group> <command>``; the only place that prints.

Each command group lives in its own module and registers its sub-parsers; errors raised on
purpose by the harness (:class:`~harness.errors.HarnessError`) become one line on stderr and
exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from harness.cli.common import OneLineParser as OneLineParser
from harness.errors import HarnessError


def build_parser() -> argparse.ArgumentParser:
    from harness.cli import bench, catalog, run, supernet, train

    parser = OneLineParser(prog="harness", description="Evaluation harness for NAS on NATS-Bench.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    groups = parser.add_subparsers(dest="group", metavar="COMMAND", required=True)
    bench.register(groups)
    run.register(groups)
    supernet.register(groups)
    train.register(groups)
    catalog.register(groups)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        code: int = args.handler(args)
    except HarnessError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return code
