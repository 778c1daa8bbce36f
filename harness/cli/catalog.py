"""``harness list methods|protocols|cards``: what can be run, with its knobs and defaults."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

WHAT = ("methods", "protocols", "cards")


def register(groups: Any) -> None:
    """Add the ``list`` command to ``groups``."""
    cmd = groups.add_parser(
        "list", help="list the methods (with hyperparameters), protocol cards and supernet cards"
    )
    cmd.add_argument("what", choices=WHAT, help="methods, protocols (black-box) or cards")
    cmd.add_argument("name", nargs="?", help="one of them, shown in full")
    cmd.set_defaults(handler=list_command)


def _fields(config: Any) -> str:
    knobs = [f"{f.name}={getattr(config, f.name)!r}" for f in dataclasses.fields(config)]
    return ", ".join(knobs) or "(no hyperparameters)"


def list_command(args: argparse.Namespace) -> int:
    if args.what == "methods":
        from harness.registry import get_method, method_kind, method_names

        names = [args.name] if args.name else list(method_names())
        for name in names:
            cls = get_method(name)  # unknown names raise with did-you-mean
            spaces = "/".join(getattr(cls, "spaces", ("tss", "sss")))
            print(f"{name} [{method_kind(name)}, {spaces}]: {_fields(cls.Config())}")
        return 0
    if args.what == "protocols":
        from harness.protocol import get_protocol, protocol_names

        for name in [args.name] if args.name else protocol_names():
            card = get_protocol(name)
            print(f"{card.key}: {_fields(card)}")
        return 0
    from harness.supernet.cards import card_names, get_card

    for name in [args.name] if args.name else card_names():
        supernet_card = get_card(name)
        print(f"{supernet_card.key} [{supernet_card.space}]: {supernet_card.description}")
        if args.name:
            print(f"  {_fields(supernet_card)}")
    return 0
