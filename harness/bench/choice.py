"""Which imported store a command uses when it is not told: chosen by coverage, never by name.

A store that holds only some architectures of its space (the 3-architecture official sample
directory imports as ``tss-official``) cannot answer a search, which samples the whole
space, so it is never a default. :func:`choose_store` considers every imported store of the
space and picks one that covers the space, real data before synthetic data, an official
archive before a derived table, then ``<space>-official``, ``<space>-public`` and other
names in order. The :class:`StoreChoice` says which store was chosen and why, and names
the stores passed over. :func:`locate_store` finds a store given by name or path, and says
so when a path does not exist (rather than calling it an unknown store name).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from harness import paths
from harness.bench.store import Store, list_stores, open_store, store_path
from harness.errors import ArchiveError, ConfigError, HarnessError

__all__ = ["StoreChoice", "choose_store", "coverage_text", "locate_store", "store_summary"]

logger = logging.getLogger(__name__)


def locate_store(name_or_path: str | Path) -> Path:
    """:func:`store_path`, with a clear error for a path that does not exist or is a file.

    An argument with a path separator (or starting with ``.`` or ``~``) that is not a store
    name is a path: when it is missing, the error says so instead of "unknown store".
    """
    text = str(name_or_path)
    candidate = Path(text).expanduser()
    if (paths.stores_dir() / text).is_dir() and not candidate.exists():
        return store_path(text)
    pathlike = isinstance(name_or_path, Path) or "/" in text or text.startswith((".", "~"))
    if pathlike and not candidate.exists():
        raise ArchiveError(
            f"store path {text} does not exist (give a store name from `harness bench list` "
            "or the path of a store directory)"
        )
    if candidate.exists() and not candidate.is_dir():
        raise ArchiveError(f"{text} is a file, not a store directory (which holds manifest.json)")
    return store_path(candidate if candidate.exists() else text)


def coverage_text(store: Store) -> str:
    """``"3 of 15,625 architectures"`` or ``"all 15,625 architectures"``."""
    if store.n_present == store.n_archs:
        return f"all {store.n_archs:,} architectures"
    return f"{store.n_present:,} of {store.n_archs:,} architectures"


@dataclass(frozen=True)
class StoreChoice:
    """The store chosen for ``space``: its ``name`` and, in words, ``reason``."""

    name: str
    space: str
    reason: str

    def __str__(self) -> str:
        return f"{self.name} ({self.reason})"


def _rank(store: Store, name: str) -> tuple[int, int, str]:
    preferred = (f"{store.space_name}-official", f"{store.space_name}-public")
    return (
        0 if store.source == "official" else 1,
        preferred.index(name) if name in preferred else len(preferred),
        name,
    )


def _of_space(space: str) -> dict[str, Store]:
    found: dict[str, Store] = {}
    for name in list_stores():
        try:
            store = open_store(name)
        except HarnessError as err:  # an unreadable store is no candidate; say so
            logger.warning("store %s is unreadable, not considered: %s", name, err)
            continue
        if store.space_name == space:
            found[name] = store
    return found


def store_summary(space: str) -> str:
    """What the imported stores of ``space`` hold, in words: ``"tss-official holds 3 of
    15,625 architectures; tss-synthetic is synthetic"``, or ``"no tss store imported"``."""
    stores = _of_space(space)
    if not stores:
        return f"no {space} store imported"
    return "; ".join(_describe(name, store) for name, store in sorted(stores.items()))


def _describe(name: str, store: Store) -> str:
    if store.n_present != store.n_archs:
        return f"{name} holds {coverage_text(store)}"
    return f"{name} is synthetic" if store.synthetic else f"{name} covers the space"


def choose_store(space: str, *, allow_synthetic: bool = False) -> StoreChoice:
    """The imported store of ``space`` that covers the whole space (see the module docstring).

    Synthetic stores are candidates only with ``allow_synthetic`` (and only when no real one
    covers the space). Raises :class:`ConfigError`, saying what each store holds, when none
    qualifies; ``"no store for <space> imported"`` when the space has no store at all.
    """
    stores = _of_space(space)
    if not stores:
        held = ", ".join(list_stores()) or "none"
        raise ConfigError(
            f"no store for {space} imported; stores: {held}; import one (harness bench import) "
            "or pass --store"
        )
    covering = {n: s for n, s in stores.items() if s.n_present == s.n_archs}
    partial = [f"{n} holds {coverage_text(s)}" for n, s in stores.items() if n not in covering]
    real = {n: s for n, s in covering.items() if not s.synthetic}
    pool = real or (covering if allow_synthetic else {})
    if not pool:
        fake = [f"{n} is synthetic" for n in covering]
        raise ConfigError(
            f"no imported {space} store covers the space ({'; '.join([*partial, *fake])}), "
            "and a search samples every architecture: pass --store NAME to use one anyway, or "
            "import a whole table (harness bench import)"
        )
    name = min(pool, key=lambda n: _rank(pool[n], n))
    store = pool[name]
    kind = "synthetic data" if store.synthetic else (
        "an official archive" if store.source == "official" else f"a {store.source} table"
    )  # fmt: skip
    reason = f"{kind} covering {coverage_text(store)} of {space}"
    others = [n for n in pool if n != name]
    if others:
        reason += f"; preferred over {', '.join(sorted(others))}"
    if partial:
        reason += f"; passed over: {', '.join(partial)}"
    choice = StoreChoice(name, space, reason)
    logger.info("store for %s: %s", space, choice)
    return choice
