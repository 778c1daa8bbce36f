"""The two NATS-Bench search spaces behind one small description.

Generic methods see a space as ``num_archs`` architectures, each a tuple of categorical
choices (``choices[k]`` options at position ``k``): the op id per edge for ``tss`` and the width
position per layer for ``sss``. Architectures are named by their official index; strings are
accepted wherever an architecture is (``parse`` validates both).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeAlias, overload

import numpy as np
import numpy.typing as npt

from harness.errors import ArchitectureError, unknown
from harness.spaces import sss, tss

__all__ = ["Arch", "Space", "get_space", "space_names", "sss", "tss"]

Arch: TypeAlias = int | str | np.integer


class Sampler(Protocol):
    """``sample(rng, size=None)``: one uniform index (int), or an int64 array of shape ``size``."""

    @overload
    def __call__(self, rng: np.random.Generator, size: None = None) -> int: ...
    @overload
    def __call__(
        self, rng: np.random.Generator, size: int | tuple[int, ...]
    ) -> npt.NDArray[np.int64]: ...


@dataclass(frozen=True)
class Space:
    """What a search method may know about a space; every function validates its input.

    Attributes:
        name: ``"tss"`` or ``"sss"``.
        num_archs: number of architectures (official indices ``0 .. num_archs - 1``).
        choices: number of options per categorical position, e.g. ``(5,) * 6`` for tss.
        index_to_str / str_to_index / parse: index <-> official string; ``parse`` takes either.
        index_to_choices / choices_to_index: index <-> tuple of choice ids (len(choices) ints).
        all_choices: choice ids of every architecture, shape (num_archs, len(choices)).
        neighbours: indices at distance one (one position changed), sorted.
        mutate: ``mutate(arch, rng)`` changes one position; returns the new index.
        sample: ``sample(rng, size=None)``, uniform over indices.
        canonical: isomorphism key string; iso_classes: class id per index, shape (num_archs,).
        position_name: what a position is (``"edge"`` for tss, ``"layer"`` for sss);
        choice_labels: the name of each choice id (the ops of tss, the widths of sss).
    """

    name: str
    num_archs: int
    choices: tuple[int, ...]
    index_to_str: Callable[[int | np.integer], str] = field(repr=False)
    str_to_index: Callable[[str], int] = field(repr=False)
    parse: Callable[[Arch], int] = field(repr=False)
    index_to_choices: Callable[[int | np.integer], tuple[int, ...]] = field(repr=False)
    choices_to_index: Callable[[Sequence[int] | npt.NDArray[np.integer]], int] = field(repr=False)
    all_choices: Callable[[], npt.NDArray[np.int8]] = field(repr=False)
    neighbours: Callable[[Arch], list[int]] = field(repr=False)
    mutate: Callable[[Arch, np.random.Generator], int] = field(repr=False)
    sample: Sampler = field(repr=False)
    canonical: Callable[[Arch], str] = field(repr=False)
    iso_classes: Callable[[], npt.NDArray[np.int32]] = field(repr=False)
    position_name: str = "position"
    choice_labels: tuple[str, ...] = ()

    @property
    def num_positions(self) -> int:
        """Number of categorical positions (6 edges for tss, 5 layers for sss)."""
        return len(self.choices)

    @property
    def shape(self) -> tuple[int, int]:
        """``(positions, choices)``: the shape of one-row-per-position architecture weights
        (tss (6, 5), sss (5, 8)); both spaces have the same number of choices everywhere."""
        return (self.num_positions, self.choices[0])


_SPACES: dict[str, Space] = {
    "tss": Space(
        name="tss",
        num_archs=tss.NUM_ARCHS,
        choices=(tss.NUM_OPS,) * tss.NUM_EDGES,
        index_to_str=tss.index_to_str,
        str_to_index=tss.str_to_index,
        parse=tss.parse,
        index_to_choices=tss.index_to_ops,
        choices_to_index=tss.ops_to_index,
        all_choices=tss.all_ops,
        neighbours=tss.neighbours,
        mutate=tss.mutate,
        sample=tss.sample,
        canonical=tss.canonical,
        iso_classes=tss.iso_classes,
        position_name="edge",
        choice_labels=tuple(tss.OPS),
    ),
    "sss": Space(
        name="sss",
        num_archs=sss.NUM_ARCHS,
        choices=(sss.NUM_WIDTHS,) * sss.NUM_LAYERS,
        index_to_str=sss.index_to_str,
        str_to_index=sss.str_to_index,
        parse=sss.parse,
        index_to_choices=sss.index_to_positions,
        choices_to_index=sss.positions_to_index,
        all_choices=sss.all_positions,
        neighbours=sss.neighbours,
        mutate=sss.mutate,
        sample=sss.sample,
        canonical=sss.canonical,
        iso_classes=sss.iso_classes,
        position_name="layer",
        choice_labels=tuple(str(w) for w in sss.WIDTHS),
    ),
}


def space_names() -> tuple[str, ...]:
    """Names accepted by :func:`get_space`."""
    return tuple(_SPACES)


def get_space(name: str) -> Space:
    """The description of space ``name`` ("tss" or "sss"); builds no tables until used."""
    try:
        return _SPACES[name]
    except (KeyError, TypeError):
        raise ArchitectureError(unknown("search space", name, _SPACES)) from None
