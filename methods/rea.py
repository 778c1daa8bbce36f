"""Regularized evolution (REA), as in NATS-Bench's multi-trial baselines.

The first ``population_size`` architectures are sampled uniformly. After that each step draws
``tournament_size`` members of the population, mutates the best of them and adds the child,
removing the oldest member (aging). The chosen architecture is the best validation of the whole
history, as NATS-Bench reports. Defaults: population 10, tournament 3.

``variant="nats"`` (the default) is NATS-Bench's code: the tournament draws with replacement;
a tss mutation picks one of the cell's 3 nodes, then one of its incoming edges, and gives it a
different op (so node 1's single edge changes a third of the time); an sss mutation gives one
layer a uniformly drawn width, which may be the one it had. ``variant="distinct"`` draws the
tournament without replacement and changes one uniformly chosen position to a different value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.protocol import BlackBoxMethod, check_config
from harness.registry import register_method
from harness.search_utils import Population, tournament
from harness.spaces import Space, tss


@register_method
class RegularizedEvolution(BlackBoxMethod):
    """Aging evolution with tournament selection and one-position mutation."""

    name = "rea"

    @dataclass(frozen=True)
    class Config:
        """``population_size`` members; parents are the best of ``tournament_size`` drawn."""

        population_size: int = 10
        tournament_size: int = 3
        variant: str = "nats"

        def __post_init__(self) -> None:
            check_config(
                self.variant in VARIANTS,
                f"rea: variant must be one of {', '.join(VARIANTS)}, got {self.variant!r}",
            )
            for key in ("population_size", "tournament_size"):
                value = getattr(self, key)
                check_config(
                    isinstance(value, int) and not isinstance(value, bool) and value >= 1,
                    f"rea: {key} must be an int >= 1, got {value!r}",
                )
            check_config(
                self.tournament_size <= self.population_size,
                f"rea: tournament_size {self.tournament_size} exceeds population_size "
                f"{self.population_size}",
            )

    config: Config
    population: Population

    def setup(self, space: Space, rng: np.random.Generator) -> None:
        super().setup(space, rng)
        self.population = Population(self.config.population_size)

    def ask(self) -> int:
        if len(self.history) < self.config.population_size:
            return self.space.sample(self.rng)
        members, k = self.population.members, self.config.tournament_size
        if self.config.variant == "distinct":
            return self.space.mutate(tournament(members, k, self.rng).arch, self.rng)
        picks = self.rng.integers(len(members), size=k)  # with replacement
        parent = max((members[int(j)] for j in picks), key=lambda m: m.valid)  # first wins ties
        return nats_mutate(self.space, parent.arch, self.rng)

    def tell(self, arch: int, valid: float) -> None:
        super().tell(arch, valid)
        self.population.add(arch, valid)


#: REA variants: NATS-Bench's code, or draws without repetition (module docstring).
VARIANTS = ("nats", "distinct")
#: tss edges grouped by the node they enter (nodes 1, 2, 3), as NATS-Bench's mutation sees them
_TSS_NODES = tuple(
    tuple(e for e, (_, dst) in enumerate(tss.EDGES) if dst == node) for node in (1, 2, 3)
)


def nats_mutate(space: Space, arch: int, rng: np.random.Generator) -> int:
    """NATS-Bench's mutation (module docstring) of official index ``arch``."""
    choices = list(space.index_to_choices(arch))
    width = space.shape[1]
    if space.name == "tss":
        node = _TSS_NODES[int(rng.integers(len(_TSS_NODES)))]
        position = node[int(rng.integers(len(node)))]
        choices[position] = (choices[position] + int(rng.integers(1, width))) % width
    else:
        choices[int(rng.integers(len(choices)))] = int(rng.integers(width))
    return space.choices_to_index(choices)
