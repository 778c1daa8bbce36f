"""Regularized evolution (REA), as in NATS-Bench's multi-trial baselines.

The first ``population_size`` architectures are sampled uniformly. After that each step draws
``tournament_size`` members of the population without replacement, mutates the best of them
(one edge op for tss, one layer width for sss, always to a different value) and adds the child,
removing the oldest member (aging). The chosen architecture is the best validation of the whole
history, as NATS-Bench reports. Defaults: population 10, tournament 3.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.protocol import BlackBoxMethod, check_config
from harness.registry import register_method
from harness.search_utils import Population, tournament
from harness.spaces import Space


@register_method
class RegularizedEvolution(BlackBoxMethod):
    """Aging evolution with tournament selection and one-position mutation."""

    name = "rea"

    @dataclass(frozen=True)
    class Config:
        """``population_size`` members; parents are the best of ``tournament_size`` drawn."""

        population_size: int = 10
        tournament_size: int = 3

        def __post_init__(self) -> None:
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
        parent = tournament(self.population.members, self.config.tournament_size, self.rng)
        return self.space.mutate(parent.arch, self.rng)

    def tell(self, arch: int, valid: float) -> None:
        super().tell(arch, valid)
        self.population.add(arch, valid)
