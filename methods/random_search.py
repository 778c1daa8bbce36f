"""Random search: sample architectures uniformly (with replacement) until the budget is spent.

This is NATS-Bench's RS baseline; the chosen architecture is the best validation seen.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.protocol import BlackBoxMethod
from harness.registry import register_method


@register_method
class RandomSearch(BlackBoxMethod):
    """Uniform sampling over the whole space; no hyperparameters."""

    name = "random_search"

    @dataclass(frozen=True)
    class Config:
        """Random search has no hyperparameters."""

    config: Config

    def ask(self) -> int:
        return self.space.sample(self.rng)
