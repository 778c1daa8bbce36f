"""αNAS adapted to the NATS spaces: evolution with property-guided mutation + synthesis by lookup.

αNAS (Jin, Phothilimthana and Roy, OOPSLA 2022) mutates a network through abstract properties
of its program (depth, shape, how inputs mix) and synthesises a new subgraph that satisfies the
mutated properties, instead of editing operations directly. Here the abstract properties of
every architecture of a space are computed once (vectorised, cached per space name):

* tss: depth (most convolutions on a live input-to-output path), live conv3x3, conv1x1 and
  pooling counts, an identity (skip-only) input-to-output path, the receptive field of the
  cell (1 + 2 per 3x3 op on the longest live path), a parameter bucket
  ``(n_conv1x1 + 9 n_conv3x3) // 10`` over all edges; an edge is *live* if it is not ``none``,
  its source is reachable from the input and its destination reaches the output.
* sss: total width (sum of widths / 8), bottleneck (narrowest width / 8), a parameter bucket
  (half-octaves of a conv-weight proxy of the skeleton) and monotone widening.

The loop is REA's (random initial population, tournament, aging) but a mutation picks one
property and changes its value (flip a boolean, or move a count by 1..``max_delta``), then
synthesises a concrete child by lookup: among the architectures with exactly that property
vector (or the nearest other vector, range-normalised L1, if none has it) the one closest to the
parent in edit distance, ties broken by the method's generator.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from harness.protocol import BlackBoxMethod, check_config
from harness.registry import register_method
from harness.search_utils import Population, PropertyTable, tournament
from harness.spaces import Space, get_space, sss, tss

IntArray = npt.NDArray[np.int64]

_OP_NAMES = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
_NONE, _SKIP, _C1, _C3, _POOL = (tss.OPS.index(op) for op in _OP_NAMES)
TSS_PROPERTIES = ("depth", "conv3x3", "conv1x1", "pool", "identity", "receptive", "params")
SSS_PROPERTIES = ("total_width", "bottleneck", "params", "widening")


def _longest(live: npt.NDArray[np.bool_], weight: IntArray) -> IntArray:
    """Largest total ``weight`` over live input-to-output paths (0 if the output is dead)."""
    n = len(live)
    best = [np.zeros(n, dtype=np.int64)] + [np.full(n, -1, dtype=np.int64)] * (tss.NUM_NODES - 1)
    for e, (src, dst) in enumerate(tss.EDGES):  # EDGES are in topological order of dst
        through = np.where(live[:, e] & (best[src] >= 0), best[src] + weight[:, e], -1)
        best[dst] = np.maximum(best[dst], through)
    return np.maximum(best[-1], 0)


def tss_properties(ops: npt.NDArray[np.integer]) -> IntArray:
    """Property values of tss cells: ``ops`` ``(n, 6)`` -> ``(n, 7)``, TSS_PROPERTIES order."""
    ops = np.asarray(ops, dtype=np.int64)
    on = ops != _NONE
    fwd = [np.ones(len(ops), bool), on[:, 0], on[:, 1] | (on[:, 0] & on[:, 2])]
    bwd2 = on[:, 5]
    bwd = {1: on[:, 4] | (on[:, 2] & bwd2), 2: bwd2, 3: np.ones(len(ops), bool)}
    live = np.stack(
        [on[:, e] & fwd[src] & bwd[dst] for e, (src, dst) in enumerate(tss.EDGES)], axis=1
    )
    conv = (ops == _C1) | (ops == _C3)
    wide = (ops == _C3) | (ops == _POOL)
    skip = ops == _SKIP
    s1 = skip[:, 0]
    s2 = skip[:, 1] | (s1 & skip[:, 2])
    identity = skip[:, 3] | (s1 & skip[:, 4]) | (s2 & skip[:, 5])
    params = ((ops == _C1).sum(axis=1) + 9 * (ops == _C3).sum(axis=1)) // 10
    return np.stack(
        [
            _longest(live, conv.astype(np.int64)),
            (live & (ops == _C3)).sum(axis=1),
            (live & (ops == _C1)).sum(axis=1),
            (live & (ops == _POOL)).sum(axis=1),
            identity.astype(np.int64),
            1 + 2 * _longest(live, wide.astype(np.int64)),
            params,
        ],
        axis=1,
    )


def sss_properties(widths: npt.NDArray[np.integer]) -> IntArray:
    """Property values of sss networks, ``widths`` (channels) ``(n, 5)`` -> ``(n, 4)``."""
    w = np.asarray(widths, dtype=np.float64)
    c1, c2, c3, c4, c5 = w.T

    def cell(cin: np.ndarray, cout: np.ndarray) -> np.ndarray:
        # 2 convs from the input, 3 inner, and a 1x1 skip where the width changes
        return 9 * (2 * cin * cout + 3 * cout * cout) + np.where(cin != cout, cin * cout, 0)

    def block(cin: np.ndarray, cout: np.ndarray) -> np.ndarray:  # two 3x3 convs + 1x1 shortcut
        return 9 * (cin * cout + cout * cout) + cin * cout

    # the benchmark's order: stem and first cell at C1, block to C2, cell C2 -> C3, block to
    # C4, cell C4 -> C5 (its classifier reads C5)
    proxy = 27 * c1 + cell(c1, c1) + block(c1, c2) + cell(c2, c3) + block(c3, c4) + cell(c4, c5)
    bucket = np.floor(2 * np.log2(proxy / proxy.min())).astype(np.int64)
    step = int(sss.WIDTHS[0])
    return np.stack(
        [
            (w.sum(axis=1) // step).astype(np.int64),
            (w.min(axis=1) // step).astype(np.int64),
            bucket,
            (np.diff(w, axis=1) >= 0).all(axis=1).astype(np.int64),
        ],
        axis=1,
    )


@functools.cache
def property_table(space_name: str) -> PropertyTable:
    """The property table of a whole space (built once per process; deterministic)."""
    space = get_space(space_name)
    choices = space.all_choices()
    if space_name == "tss":
        return PropertyTable(TSS_PROPERTIES, tss_properties(choices), choices)
    return PropertyTable(SSS_PROPERTIES, sss_properties(sss.all_widths()), choices)


@register_method
class AlphaNas(BlackBoxMethod):
    """Aging evolution whose mutations act on abstract properties (see the module docstring)."""

    name = "alpha_nas"

    @dataclass(frozen=True)
    class Config:
        """REA's population and tournament; ``max_delta`` bounds a count property's change."""

        population_size: int = 10
        tournament_size: int = 3
        max_delta: int = 1

        def __post_init__(self) -> None:
            for key in ("population_size", "tournament_size", "max_delta"):
                value = getattr(self, key)
                check_config(
                    isinstance(value, int) and not isinstance(value, bool) and value >= 1,
                    f"alpha_nas: {key} must be an int >= 1, got {value!r}",
                )
            check_config(
                self.tournament_size <= self.population_size,
                f"alpha_nas: tournament_size {self.tournament_size} exceeds population_size "
                f"{self.population_size}",
            )

    config: Config
    population: Population
    table: PropertyTable

    def setup(self, space: Space, rng: np.random.Generator) -> None:
        super().setup(space, rng)
        self.population = Population(self.config.population_size)
        self.table = property_table(space.name)

    def ask(self) -> int:
        if len(self.history) < self.config.population_size:
            return self.space.sample(self.rng)
        parent = tournament(self.population.members, self.config.tournament_size, self.rng)
        target = self.table.mutate(self.table.vector(parent.arch), self.rng, self.config.max_delta)
        return self.table.synthesize(target, parent.arch, self.rng)

    def tell(self, arch: int, valid: float) -> None:
        super().tell(arch, valid)
        self.population.add(arch, valid)
