"""Small building blocks shared by black-box search methods.

Everything here is plain Python on short lists: a search makes a few hundred queries and a
sweep thousands of searches, so per-step overhead matters more than vectorisation.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["Member", "Population", "SearchHistory", "sample_distinct", "tournament"]


class SearchHistory:
    """Everything a method was told, in order, and the incumbent (best validation seen).

    Ties keep the architecture seen first. ``best_arch`` raises ``LookupError`` before the
    first ``add``.
    """

    __slots__ = ("_best_arch", "archs", "best_valid", "valids")

    def __init__(self) -> None:
        self.archs: list[int] = []
        self.valids: list[float] = []
        self.best_valid: float = -math.inf
        self._best_arch: int | None = None

    def add(self, arch: int, valid: float) -> None:
        self.archs.append(arch)
        self.valids.append(valid)
        if valid > self.best_valid:
            self.best_valid = valid
            self._best_arch = arch

    @property
    def best_arch(self) -> int:
        if self._best_arch is None:
            raise LookupError("no architecture has been evaluated yet")
        return self._best_arch

    def __len__(self) -> int:
        return len(self.archs)


def sample_distinct(n: int, k: int, rng: np.random.Generator) -> list[int]:
    """``k`` distinct indices drawn uniformly from ``range(n)`` (``k <= n``), in draw order.

    Rejection sampling with one ``rng.random()`` per draw: cheap for ``k`` much smaller than
    ``n``, which is the tournament case.
    """
    if not 0 <= k <= n:
        raise ValueError(f"cannot draw {k} distinct items from {n}")
    if 2 * k > n:
        return [int(i) for i in rng.permutation(n)[:k]]
    picks: list[int] = []
    while len(picks) < k:
        j = int(rng.random() * n)
        if j not in picks:
            picks.append(j)
    return picks


class Member(NamedTuple):
    """A population member: architecture index and its validation accuracy (%)."""

    arch: int
    valid: float


class Population:
    """A first-in first-out population of at most ``size`` members (aging evolution)."""

    __slots__ = ("members", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self.members: deque[Member] = deque()

    def add(self, arch: int, valid: float) -> None:
        """Add a member; the oldest is removed once the population is over ``size``."""
        self.members.append(Member(arch, valid))
        if len(self.members) > self.size:
            self.members.popleft()

    @property
    def full(self) -> bool:
        return len(self.members) >= self.size

    def __len__(self) -> int:
        return len(self.members)


def tournament(members: Sequence[Member], k: int, rng: np.random.Generator) -> Member:
    """Best of ``k`` members drawn without replacement (ties: the first drawn wins)."""
    picks = sample_distinct(len(members), min(k, len(members)), rng)
    best = members[picks[0]]
    for j in picks[1:]:
        if members[j].valid > best.valid:
            best = members[j]
    return best


class PropertyTable:
    """Abstract properties of every architecture of a space, indexed for synthesis by lookup.

    Args:
        names: one name per property.
        values: integer property values, shape ``(n_archs, n_properties)``.
        choices: choice ids per architecture, shape ``(n_archs, n_positions)`` (edit distance).

    Architectures are grouped by their property vector; :meth:`synthesize` returns, among the
    architectures whose vector equals a target (or, if none does, whose vector is nearest in
    range-normalised L1 distance), one closest to a parent in edit distance (number of
    positions whose choice differs).
    """

    def __init__(self, names: Sequence[str], values: np.ndarray, choices: np.ndarray) -> None:
        self.names = tuple(names)
        self.values = np.asarray(values, dtype=np.int64)
        self.choices = np.asarray(choices)
        if self.values.shape != (len(self.choices), len(self.names)):
            raise ValueError(
                f"values {self.values.shape} must be (n_archs={len(self.choices)}, "
                f"n_properties={len(self.names)})"
            )
        self.low = self.values.min(axis=0)
        self.high = self.values.max(axis=0)
        self.span = np.maximum(self.high - self.low, 1).astype(np.float64)
        self.vectors, group = np.unique(self.values, axis=0, return_inverse=True)
        self.group = group.reshape(-1)
        order = np.argsort(self.group, kind="stable")
        bounds = np.cumsum(np.bincount(self.group, minlength=len(self.vectors)))[:-1]
        self.members = tuple(np.split(order, bounds))
        self.lookup = {tuple(v): g for g, v in enumerate(self.vectors.tolist())}
        self.mutable = tuple(int(j) for j in np.flatnonzero(self.high > self.low))

    def vector(self, arch: int) -> tuple[int, ...]:
        """Property vector of one architecture."""
        return tuple(self.vectors[self.group[arch]].tolist())

    def mutate(
        self, vector: Sequence[int], rng: np.random.Generator, max_delta: int
    ) -> tuple[int, ...]:
        """Change one uniformly chosen property: flip a two-valued one, otherwise move it by
        1..``max_delta`` up or down (bounced back inside the values the space attains)."""
        out = list(vector)
        j = self.mutable[int(rng.random() * len(self.mutable))]
        lo, hi, v = int(self.low[j]), int(self.high[j]), out[j]
        if hi - lo == 1:
            out[j] = lo + hi - v
            return tuple(out)
        delta = 1 + int(rng.random() * max_delta)
        delta = delta if rng.random() < 0.5 else -delta
        new = min(max(v + delta, lo), hi)
        if new == v:
            new = min(max(v - delta, lo), hi)
        out[j] = new
        return tuple(out)

    def synthesize(self, target: Sequence[int], parent: int, rng: np.random.Generator) -> int:
        """An architecture satisfying ``target`` (or nearest to it), closest to ``parent``.

        The nearest-vector fallback never returns the parent's own vector, so the child always
        differs from the parent in its properties. Ties are broken uniformly with ``rng``.
        """
        g = self.lookup.get(tuple(target))
        if g is not None:
            candidates = self.members[g]
        else:
            dist = (np.abs(self.vectors - np.asarray(target)) / self.span).sum(axis=1)
            dist[self.group[parent]] = np.inf
            nearest = np.flatnonzero(dist <= dist.min() + 1e-9)
            candidates = np.concatenate([self.members[n] for n in nearest])
        edits = (self.choices[candidates] != self.choices[parent]).sum(axis=1)
        closest = candidates[edits == edits.min()]
        return int(closest[int(rng.random() * len(closest))])
