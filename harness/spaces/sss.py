"""The NATS-Bench size search space (sss).

A network has a fixed topology and 5 layers whose channel counts are chosen among
:data:`WIDTHS`, so there are 8**5 = 32,768 architectures, written ``'C1:C2:C3:C4:C5'``
(for example ``'64:64:64:64:64'``, the largest). The official index order is the product order
of the widths with the last layer varying fastest, so index ``i`` has width position
``(i // 8**(4 - l)) % 8`` at layer ``l``. Every architecture is its own isomorphism class.

Encodings: the official index, the string, the widths (5 ints, channels) and the width
positions (5 ints, each indexing :data:`WIDTHS`).
"""

from __future__ import annotations

import functools
import itertools
import logging
from collections.abc import Sequence
from typing import Final, TypeAlias, overload

import numpy as np
import numpy.typing as npt

from harness.errors import ArchitectureError, unknown
from harness.spaces._common import check_index, mutate_digits, one_change_codes, sample_indices

logger = logging.getLogger(__name__)

WIDTHS: Final = (8, 16, 24, 32, 40, 48, 56, 64)
NUM_LAYERS: Final = 5
NUM_WIDTHS: Final = len(WIDTHS)
NUM_ARCHS: Final = NUM_WIDTHS**NUM_LAYERS  # 32,768
FORMAT: Final = "C1:C2:C3:C4:C5"

Arch: TypeAlias = int | str | np.integer

_POSITION: Final = {w: i for i, w in enumerate(WIDTHS)}
_PLACE: Final = tuple(NUM_WIDTHS ** (NUM_LAYERS - 1 - layer) for layer in range(NUM_LAYERS))


def _malformed(text: str, detail: str) -> ArchitectureError:
    return ArchitectureError(
        f"malformed sss architecture string {text!r}: {detail}; expected the form {FORMAT!r} "
        f"with each width one of: {', '.join(map(str, WIDTHS))}"
    )


def _check_index(index: int | np.integer) -> int:
    return check_index(index, "sss", NUM_ARCHS, article="an")


def _check_positions(positions: Sequence[int] | npt.NDArray[np.integer]) -> tuple[int, ...]:
    values = tuple(int(p) for p in positions)
    if len(values) != NUM_LAYERS or any(not 0 <= p < NUM_WIDTHS for p in values):
        raise ArchitectureError(
            f"expected {NUM_LAYERS} width positions in 0..{NUM_WIDTHS - 1} "
            f"(indexing {WIDTHS}), got {values}"
        )
    return values


def _widths_to_positions(widths: Sequence[int] | npt.NDArray[np.integer]) -> tuple[int, ...]:
    values = tuple(int(w) for w in widths)
    if len(values) != NUM_LAYERS:
        raise ArchitectureError(f"expected {NUM_LAYERS} widths, got {len(values)}: {values}")
    for w in values:
        if w not in _POSITION:
            raise ArchitectureError(unknown("sss width", w, WIDTHS))
    return tuple(_POSITION[w] for w in values)


@functools.cache
def _all_positions() -> npt.NDArray[np.int8]:
    index = np.arange(NUM_ARCHS, dtype=np.int64)
    positions = np.stack([(index // p) % NUM_WIDTHS for p in _PLACE], axis=1).astype(np.int8)
    positions.flags.writeable = False
    return positions


@functools.cache
def _all_widths() -> npt.NDArray[np.int16]:
    widths = np.asarray(WIDTHS, dtype=np.int16)[_all_positions()]
    widths.flags.writeable = False
    return widths


@functools.cache
def _strings() -> tuple[tuple[str, ...], dict[str, int]]:
    # product order with the last layer fastest is the official index order
    strings = tuple(map(":".join, itertools.product(map(str, WIDTHS), repeat=NUM_LAYERS)))
    logger.debug("built the sss index tables (%d architectures)", NUM_ARCHS)
    return strings, {s: i for i, s in enumerate(strings)}


def all_strings() -> tuple[str, ...]:
    """All 32,768 architecture strings in official index order (cached)."""
    return _strings()[0]


def all_widths() -> npt.NDArray[np.int16]:
    """Channels per layer for every architecture: shape (32768, 5) int16, official order."""
    return _all_widths()


def all_positions() -> npt.NDArray[np.int8]:
    """Width position (index into :data:`WIDTHS`) per layer: shape (32768, 5) int8."""
    return _all_positions()


def parse(arch: Arch) -> int:
    """Validate an architecture given as an official index or a string; return the index."""
    if isinstance(arch, str):
        return str_to_index(arch)
    return _check_index(arch)


def index_to_str(index: int | np.integer) -> str:
    """The string of official index ``index``."""
    return _strings()[0][_check_index(index)]


def str_to_index(text: str) -> int:
    """The official index of an architecture string such as ``'8:16:64:32:8'``."""
    found = _strings()[1].get(text) if isinstance(text, str) else None
    if found is None:
        return positions_to_index(_widths_to_positions(str_to_widths(text)))
    return found


def str_to_widths(text: str) -> tuple[int, ...]:
    """Channels per layer (5 ints) of an architecture string."""
    if not isinstance(text, str):
        raise ArchitectureError(f"expected an sss string, got {type(text).__name__} {text!r}")
    parts = text.split(":")
    if len(parts) != NUM_LAYERS:
        raise _malformed(text, f"found {len(parts)} ':'-separated width(s), need {NUM_LAYERS}")
    if not all(p.isdigit() and p.isascii() for p in parts):
        raise _malformed(text, "every width must be a plain decimal integer")
    widths = tuple(int(p) for p in parts)
    _widths_to_positions(widths)  # unknown widths raise here
    if ":".join(map(str, widths)) != text:
        raise _malformed(text, "widths must be written without leading zeros")
    return widths


def widths_to_str(widths: Sequence[int] | npt.NDArray[np.integer]) -> str:
    """The architecture string of 5 channel counts."""
    _widths_to_positions(widths)
    return ":".join(str(int(w)) for w in widths)


def widths_to_index(widths: Sequence[int] | npt.NDArray[np.integer]) -> int:
    """The official index of 5 channel counts."""
    return positions_to_index(_widths_to_positions(widths))


def index_to_widths(index: int | np.integer) -> tuple[int, ...]:
    """Channels per layer (5 ints) of official index ``index``."""
    return tuple(int(w) for w in _all_widths()[_check_index(index)])


def positions_to_index(positions: Sequence[int] | npt.NDArray[np.integer]) -> int:
    """The official index of 5 width positions (each indexing :data:`WIDTHS`)."""
    return sum(p * place for p, place in zip(_check_positions(positions), _PLACE, strict=True))


def index_to_positions(index: int | np.integer) -> tuple[int, ...]:
    """Width positions (5 ints, each indexing :data:`WIDTHS`) of official index ``index``."""
    i = _check_index(index)
    return tuple((i // place) % NUM_WIDTHS for place in _PLACE)


def canonical(arch: Arch) -> str:
    """Isomorphism key: the architecture string itself (no two sss networks are isomorphic)."""
    return index_to_str(parse(arch))


@functools.cache
def _iso_classes() -> npt.NDArray[np.int32]:
    ids = np.arange(NUM_ARCHS, dtype=np.int32)
    ids.flags.writeable = False
    return ids


def iso_classes() -> npt.NDArray[np.int32]:
    """Class id per official index, shape (32768,) int32, read-only: ``arange(32768)``."""
    return _iso_classes()


def neighbours(arch: Arch) -> list[int]:
    """The 35 indices that differ from ``arch`` in exactly one layer's width, sorted."""
    return sorted(one_change_codes(index_to_positions(parse(arch)), _PLACE, NUM_WIDTHS))


def mutate(arch: Arch, rng: np.random.Generator) -> int:
    """Change one uniformly chosen layer to a uniformly chosen different width."""
    return positions_to_index(mutate_digits(index_to_positions(parse(arch)), NUM_WIDTHS, rng))


@overload
def sample(rng: np.random.Generator, size: None = None) -> int: ...
@overload
def sample(rng: np.random.Generator, size: int | tuple[int, ...]) -> npt.NDArray[np.int64]: ...
def sample(
    rng: np.random.Generator, size: int | tuple[int, ...] | None = None
) -> int | npt.NDArray[np.int64]:
    """Uniform random official indices: an int if ``size`` is None, else an int64 array."""
    return sample_indices(rng, NUM_ARCHS, size)
