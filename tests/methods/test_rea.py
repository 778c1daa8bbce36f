"""REA's NATS-Bench variant: tournament with replacement, node-then-edge mutation."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from harness.errors import ConfigError
from harness.registry import make_method
from harness.spaces import get_space
from methods.rea import nats_mutate


def _changed(space_name: str, seed: int, n: int) -> collections.Counter[tuple[int, ...]]:
    space, rng = get_space(space_name), np.random.default_rng(seed)
    counts: collections.Counter[tuple[int, ...]] = collections.Counter()
    parent = space.index_to_choices(1234)
    for _ in range(n):
        child = space.index_to_choices(nats_mutate(space, 1234, rng))
        counts[tuple(i for i, (a, b) in enumerate(zip(parent, child, strict=True)) if a != b)] += 1
    return counts


def test_tss_mutation_picks_a_node_then_one_of_its_edges() -> None:
    """Node 1 has one incoming edge, node 2 two, node 3 three: edge 0 changes a third of the
    time, edges 1-2 a sixth each, edges 3-5 a ninth each; the op always changes."""
    counts, n = _changed("tss", 0, 36_000), 36_000
    assert set(counts) == {(0,), (1,), (2,), (3,), (4,), (5,)}  # exactly one edge, always
    expected = {0: 1 / 3, 1: 1 / 6, 2: 1 / 6, 3: 1 / 9, 4: 1 / 9, 5: 1 / 9}
    for edge, share in expected.items():
        assert counts[(edge,)] / n == pytest.approx(share, abs=0.01)


def test_sss_mutation_may_redraw_the_same_width() -> None:
    counts, n = _changed("sss", 1, 16_000), 16_000
    assert counts[()] / n == pytest.approx(1 / 8, abs=0.01)  # the drawn width was the old one
    assert sum(v for k, v in counts.items() if len(k) == 1) / n == pytest.approx(7 / 8, abs=0.01)


def test_variants_and_their_validation() -> None:
    assert make_method("rea").config.variant == "nats"
    assert make_method("rea", variant="distinct").config.variant == "distinct"
    with pytest.raises(ConfigError, match="variant"):
        make_method("rea", variant="official")
