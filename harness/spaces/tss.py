"""The NATS-Bench topology search space (tss, the NAS-Bench-201 cell).

A cell has 4 nodes; node 0 is the cell input and node 3 its output. Each of the 6 edges
``src -> dst`` (``src < dst``) carries one of 5 operations, so there are 5**6 = 15,625 cells.
An architecture is written ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``: one ``|...|`` group per
node 1..3 listing the op on each incoming edge, ``op~k`` meaning "op applied to node k".

Three equivalent encodings are used throughout:

* the official index ``0 <= i < 15625`` (the order of the official NATS-Bench archives),
* the string above,
* the op ids per edge, a tuple of 6 ints in :data:`EDGES` order, each indexing :data:`OPS`.

The official index order is the benchmark generator's enumeration (edges in :data:`EDGES`
order, ops in :data:`OPS` order, last edge varying fastest) shuffled once by
``random.Random(88).shuffle``; it is regenerated here, not read from a file.
"""

from __future__ import annotations

import functools
import itertools
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, TypeAlias, overload

import numpy as np
import numpy.typing as npt

from harness.errors import ArchitectureError, unknown
from harness.spaces._common import check_index, mutate_digits, one_change_codes, sample_indices

logger = logging.getLogger(__name__)

OPS: Final = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES: Final = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
NUM_NODES: Final = 4
NUM_EDGES: Final = 6
NUM_OPS: Final = 5
NUM_ARCHS: Final = NUM_OPS**NUM_EDGES  # 15,625
PARAMETRIC_OPS: Final = ("nor_conv_1x1", "nor_conv_3x3")
FORMAT: Final = "|op~0|+|op~0|op~1|+|op~0|op~1|op~2|"

Arch: TypeAlias = int | str | np.integer

_SHUFFLE_SEED: Final = 88  # the seed the benchmark generator shuffled its enumeration with
_OP_ID: Final = {op: i for i, op in enumerate(OPS)}
_NONE: Final = _OP_ID["none"]
_SKIP: Final = _OP_ID["skip_connect"]
# Weight of each edge's op id in the enumeration code (base NUM_OPS, last edge least significant).
_PLACE: Final = tuple(NUM_OPS ** (NUM_EDGES - 1 - e) for e in range(NUM_EDGES))
# For each node 1..3, its incoming edges as (edge position, source node).
_INCOMING: Final = tuple(
    tuple((e, src) for e, (src, dst) in enumerate(EDGES) if dst == node)
    for node in range(1, NUM_NODES)
)


@dataclass(frozen=True)
class _Tables:
    strings: tuple[str, ...]  # (NUM_ARCHS,) official order
    ops: npt.NDArray[np.int8]  # (NUM_ARCHS, NUM_EDGES) official order, read-only
    index_of: dict[str, int]  # string -> official index
    index_of_code: tuple[int, ...]  # enumeration code -> official index


def _format(ops: Sequence[int]) -> str:
    names = [OPS[o] for o in ops]
    return "+".join(
        "|" + "|".join(f"{names[e]}~{src}" for e, src in incoming) + "|" for incoming in _INCOMING
    )


def _strings_by_code() -> list[str]:
    """All strings in enumeration-code order, built from per-node fragments (fast)."""
    fragments = []
    for node in range(1, NUM_NODES):
        tokens = [[f"{op}~{src}" for op in OPS] for src in range(node)]
        fragments.append(["|" + "|".join(c) + "|" for c in itertools.product(*tokens)])
    return ["+".join(parts) for parts in itertools.product(*fragments)]


@functools.cache
def _tables() -> _Tables:
    codes = list(range(NUM_ARCHS))  # enumeration order: code = base-5 number of the op ids
    random.Random(_SHUFFLE_SEED).shuffle(codes)
    code_arr = np.asarray(codes, dtype=np.int64)
    ops = np.stack([(code_arr // p) % NUM_OPS for p in _PLACE], axis=1).astype(np.int8)
    ops.flags.writeable = False
    by_code = _strings_by_code()
    strings = tuple(by_code[c] for c in codes)
    index_of_code = [0] * NUM_ARCHS
    for index, code in enumerate(codes):
        index_of_code[code] = index
    logger.debug("built the tss index tables (%d architectures)", NUM_ARCHS)
    return _Tables(
        strings=strings,
        ops=ops,
        index_of=dict(zip(strings, range(NUM_ARCHS), strict=True)),
        index_of_code=tuple(index_of_code),
    )


def _malformed(text: str, detail: str) -> ArchitectureError:
    return ArchitectureError(
        f"malformed tss architecture string {text!r}: {detail}; expected the form {FORMAT!r} "
        f"with each op one of: {', '.join(OPS)}"
    )


def _parse_string(text: str) -> tuple[int, ...]:
    """Op ids of a tss string, with a specific message for each way it can be wrong."""
    groups = text.split("+")
    if len(groups) != NUM_NODES - 1:
        raise _malformed(text, f"found {len(groups)} node group(s) separated by '+', need 3")
    ops: list[int] = []
    for node, group in enumerate(groups, start=1):
        if len(group) < 2 or group[0] != "|" or group[-1] != "|":
            raise _malformed(text, f"node {node} group {group!r} must start and end with '|'")
        tokens = group[1:-1].split("|")
        if len(tokens) != node:
            raise _malformed(text, f"node {node} needs {node} input(s), found {len(tokens)}")
        for src, token in enumerate(tokens):
            op, sep, source = token.partition("~")
            if not sep or source != str(src):
                raise _malformed(text, f"token {token!r} of node {node} should be 'op~{src}'")
            if op not in _OP_ID:
                raise ArchitectureError(f"{unknown('tss op', op, OPS)} (in {text!r})")
            ops.append(_OP_ID[op])
    return tuple(ops)


def _check_index(index: int | np.integer) -> int:
    return check_index(index, "tss", NUM_ARCHS)


def _check_ops(ops: Sequence[int] | npt.NDArray[np.integer]) -> tuple[int, ...]:
    values = tuple(int(o) for o in ops)
    if len(values) != NUM_EDGES or any(not 0 <= o < NUM_OPS for o in values):
        raise ArchitectureError(
            f"expected {NUM_EDGES} op ids in 0..{NUM_OPS - 1} (edges {EDGES}, ops {OPS}), "
            f"got {values}"
        )
    return values


def all_strings() -> tuple[str, ...]:
    """All 15,625 architecture strings in official index order (cached)."""
    return _tables().strings


def all_ops() -> npt.NDArray[np.int8]:
    """Op id per edge for every architecture: shape (15625, 6), official order, read-only."""
    return _tables().ops


def parse(arch: Arch) -> int:
    """Validate an architecture given as an official index or a string; return the index."""
    if isinstance(arch, str):
        return str_to_index(arch)
    return _check_index(arch)


def index_to_str(index: int | np.integer) -> str:
    """The string of official index ``index``."""
    return _tables().strings[_check_index(index)]


def str_to_index(text: str) -> int:
    """The official index of an architecture string."""
    found = _tables().index_of.get(text) if isinstance(text, str) else None
    if found is None:
        if not isinstance(text, str):
            raise ArchitectureError(f"expected a tss string, got {type(text).__name__} {text!r}")
        _parse_string(text)  # raises with the specific problem
        raise _malformed(text, "not a tss architecture")  # unreachable for well-formed strings
    return found


def str_to_ops(text: str) -> tuple[int, ...]:
    """Op ids per edge (6 ints, :data:`EDGES` order) of an architecture string."""
    return index_to_ops(str_to_index(text))


def ops_to_str(ops: Sequence[int] | npt.NDArray[np.integer]) -> str:
    """The architecture string of 6 op ids in :data:`EDGES` order."""
    return _format(_check_ops(ops))


def ops_to_index(ops: Sequence[int] | npt.NDArray[np.integer]) -> int:
    """The official index of 6 op ids in :data:`EDGES` order."""
    code = sum(o * p for o, p in zip(_check_ops(ops), _PLACE, strict=True))
    return _tables().index_of_code[code]


def index_to_ops(index: int | np.integer) -> tuple[int, ...]:
    """Op ids per edge (6 ints, :data:`EDGES` order) of official index ``index``."""
    return tuple(int(o) for o in _tables().ops[_check_index(index)])


def to_matrix(arch: Arch) -> npt.NDArray[np.int8]:
    """Adjacency matrix, shape (4, 4) int8: ``m[dst, src]`` = op id if ``src < dst``, else -1."""
    m = np.full((NUM_NODES, NUM_NODES), -1, dtype=np.int8)
    for (src, dst), op in zip(EDGES, index_to_ops(parse(arch)), strict=True):
        m[dst, src] = op
    return m


def _canonical_from_ops(ops: tuple[int, ...]) -> str:
    # NATS-Bench's own convention (``to_unique_str(consider_zero=True)``): a node is the sorted,
    # '+'-joined list of its input terms; 'none', or any op on a node that is exactly zero, is
    # the zero term '#'; skip_connect passes its source's expression through unchanged; other
    # ops write '(source)@op'. The sorting and joining act on text, so the classes are the
    # official ones (6,466), which are finer than functional equivalence.
    nodes = ["0"]
    for incoming in _INCOMING:
        terms = []
        for e, src in incoming:
            op, source = ops[e], nodes[src]
            if op == _NONE or source == "#":
                terms.append("#")
            elif op == _SKIP:
                terms.append(source)
            else:
                terms.append(f"({source})@{OPS[op]}")
        nodes.append("+".join(sorted(terms)))
    return nodes[-1]


def canonical(arch: Arch) -> str:
    """Isomorphism key of a cell: equal keys <=> same class under NATS-Bench's convention.

    The key equals ``nats_bench`` ``to_unique_str(consider_zero=True)``; it merges cells that
    differ only on edges that carry zero and cells whose skip connections rewrite to the same
    expression, giving 6,466 classes. It does not merge every functionally equivalent pair
    (for instance swapping nodes 1 and 2 when edge 1->2 is 'none' can change the key).
    """
    return _canonical_from_ops(index_to_ops(parse(arch)))


@functools.cache
def _iso_classes() -> npt.NDArray[np.int32]:
    class_of: dict[str, int] = {}
    ids = np.empty(NUM_ARCHS, dtype=np.int32)
    for i, row in enumerate(_tables().ops.tolist()):
        ids[i] = class_of.setdefault(_canonical_from_ops(tuple(row)), len(class_of))
    ids.flags.writeable = False
    logger.debug("tss isomorphism classes: %d", len(class_of))
    return ids


def iso_classes() -> npt.NDArray[np.int32]:
    """Class id per official index, shape (15625,) int32, read-only (cached).

    Ids are numbered by first appearance in index order, so ``iso_classes()[0] == 0``.
    """
    return _iso_classes()


def neighbours(arch: Arch) -> list[int]:
    """The 24 indices that differ from ``arch`` on exactly one edge, sorted ascending."""
    index_of_code = _tables().index_of_code
    codes = one_change_codes(index_to_ops(parse(arch)), _PLACE, NUM_OPS)
    return sorted(index_of_code[c] for c in codes)


def mutate(arch: Arch, rng: np.random.Generator) -> int:
    """Change one uniformly chosen edge to a uniformly chosen different op; return the index."""
    return ops_to_index(mutate_digits(index_to_ops(parse(arch)), NUM_OPS, rng))


@overload
def sample(rng: np.random.Generator, size: None = None) -> int: ...
@overload
def sample(rng: np.random.Generator, size: int | tuple[int, ...]) -> npt.NDArray[np.int64]: ...
def sample(
    rng: np.random.Generator, size: int | tuple[int, ...] | None = None
) -> int | npt.NDArray[np.int64]:
    """Uniform random official indices: an int if ``size`` is None, else an int64 array."""
    return sample_indices(rng, NUM_ARCHS, size)
