"""Generate the package's shipped splits (``harness/data/splits_data/``) from the official files.

    python benchmarks/make_split_data.py [--splits ../shared/data/nats-splits]

Run once when the official files change; ``tests/data/test_shipped.py`` checks that the shipped
arrays equal the official files.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from harness.data.shipped import write_shipped_splits
from harness.paths import shared_data_dir

DEST = Path(__file__).resolve().parents[1] / "harness" / "data" / "splits_data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    shared = shared_data_dir()
    default = shared / "nats-splits" if shared is not None else None
    parser.add_argument("--splits", type=Path, default=default, help="official split files")
    parser.add_argument("--dest", type=Path, default=DEST, help="package data directory")
    args = parser.parse_args()
    if args.splits is None:
        parser.error("no shared data found; pass --splits DIR")
    manifest = write_shipped_splits(args.splits, args.dest)
    sizes = {p.name: p.stat().st_size for p in sorted(args.dest.iterdir()) if p.is_file()}
    print(json.dumps({"splits": list(manifest["splits"]), "bytes": sizes}, indent=1))


if __name__ == "__main__":
    main()
