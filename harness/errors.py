"""The few exceptions the harness raises at its boundaries.

Each message says what was expected and what exists, so that a user can fix the input
without reading the source.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable, Mapping
from typing import TypeVar

T = TypeVar("T")


class HarnessError(Exception):
    """Base class of every error the harness raises on purpose."""


class ArchitectureError(HarnessError, ValueError):
    """A malformed architecture string, an unknown op or width, or an out-of-range index."""


class BenchmarkQueryError(HarnessError, KeyError):
    """A query asked for a dataset, hp, seed, epoch, split or metric the store does not hold."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ArchiveError(HarnessError):
    """An official archive or tidy table could not be read or is malformed."""


class ConfigError(HarnessError, ValueError):
    """A bad name, hyperparameter, budget or seed range given to the harness."""


class BudgetExhausted(HarnessError):
    """Raised by an oracle when a query would exceed the search budget."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ' (did you mean 'x'?)' for the closest choice, or '' if none is close.

    Case is ignored when comparing (``CIFAR10`` suggests ``cifar10``, ``REA`` suggests
    ``rea``); names stay case-sensitive, the suggestion shows the exact spelling.
    """
    options = [str(c) for c in choices]
    by_lower: dict[str, str] = {}
    for option in options:
        by_lower.setdefault(option.lower(), option)
    close = difflib.get_close_matches(str(name).lower(), list(by_lower), n=1, cutoff=0.5)
    return f" (did you mean {by_lower[close[0]]!r}?)" if close else ""


def unknown(kind: str, name: object, choices: Iterable[object]) -> str:
    """Format the standard message for an unknown name: what was asked, what exists."""
    options = [str(c) for c in choices]
    return f"unknown {kind} {name!r}{did_you_mean(str(name), options)}; expected one of: " + (
        ", ".join(options)
    )


def lookup_versioned(table: Mapping[str, T], name: str, kind: str) -> T:
    """The entry of ``table`` called ``name``, or keyed ``name@version`` with a matching version.

    Entries carry a ``version`` attribute; anything else raises :class:`ConfigError`.
    """
    base, _, version = str(name).partition("@")
    entry = table.get(base)
    if entry is None:
        raise ConfigError(unknown(kind, name, table))
    current = getattr(entry, "version", None)
    if version and version != str(current):
        raise ConfigError(f"{kind} {base!r} is at version {current}, not {version!r}")
    return entry


def reject_unknown_fields(cls: type, data: Mapping[str, object], kind: str) -> None:
    """Raise :class:`ConfigError` if ``data`` has keys that are not fields of dataclass ``cls``."""
    allowed = {f.name for f in dataclasses.fields(cls)}
    extra = sorted(set(data) - allowed)
    if extra:
        raise ConfigError(f"unknown {kind} field(s) {extra}; expected: {sorted(allowed)}")
