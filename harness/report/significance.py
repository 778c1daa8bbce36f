"""The tests behind a leaderboard's marks: which test, paired or not, its Holm family, and
whether the family can reach the level at all.

A column (one evaluation dataset) has up to two families: every method against the control
(the significance marks) and every method against the best one (the bold). Each member uses the
Wilcoxon signed-rank test paired by seed where pairing holds and both cover the same seeds, else
the Mann-Whitney U test; both two-sided, Holm-corrected within the family. A family whose
smallest attainable adjusted p-value (exact tests: :func:`harness.stats.min_p_wilcoxon`,
:func:`harness.stats.min_p_mann_whitney`, times the family size) is not below the level cannot
mark anything, and the report says so instead of printing marks.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from harness import stats

logger = logging.getLogger(__name__)

#: How a caption names each test.
TEST_NAMES = {
    "wilcoxon": "two-sided Wilcoxon signed-rank test paired by seed",
    "mann_whitney": "two-sided Mann-Whitney U test, unpaired",
}


@dataclass(frozen=True)
class Comparison:
    """One method against the family's reference on one dataset.

    ``direction``: +1 when the method tends to be better than the reference (in the metric's
    direction), -1 when worse, 0 when balanced; ``min_p``: the smallest raw p-value this test
    can give at its sample sizes.
    """

    test: str  # a key of TEST_NAMES
    p_value: float
    p_adjusted: float  # Holm over the family
    direction: int
    min_p: float


@dataclass(frozen=True)
class Family:
    """Every other method of a column against ``reference``, Holm-corrected together."""

    reference: str
    comparisons: Mapping[str, Comparison]
    min_p_adjusted: float  # the smallest Holm-adjusted p any member can reach (1.0 if empty)

    @property
    def size(self) -> int:
        return len(self.comparisons)

    def reachable(self, alpha: float) -> bool:
        """Whether any member could be significant at ``alpha`` with these sample sizes."""
        return self.size > 0 and self.min_p_adjusted < alpha

    @property
    def tests(self) -> tuple[str, ...]:
        return tuple(sorted({c.test for c in self.comparisons.values()}))


def use_pairing(rows: pd.DataFrame, paired: bool | None) -> tuple[bool, str]:
    """Whether to pair by seed, and why (as a caption says it): ``paired`` when given, else
    True exactly when the rows carry a ``paired_streams`` column that is true on every row (the
    methods of a seed shared their random streams, so a seed is a block)."""
    if paired is not None:
        return bool(paired), "as asked"
    streams = rows["paired_streams"] if "paired_streams" in rows.columns else None
    if (
        streams is not None
        and not rows.empty
        and bool(streams.astype("boolean").fillna(False).all())
    ):
        return True, "as the methods of a seed share their random streams"
    return False, "as the rows do not record that the methods of a seed share their random streams"


def shared_seeds(vals: pd.Series, ref: pd.Series) -> list[Any]:
    """The seeds both series hold (each seed once in each), in order; pairing uses only these
    (a seed that failed for one method drops out of the pair)."""
    if not (vals.index.is_unique and ref.index.is_unique):
        return []
    return sorted(set(vals.index) & set(ref.index))


def pair_test(vals: pd.Series, ref: pd.Series, paired: bool) -> tuple[str, stats.TestResult, float]:
    """(test name, result, smallest attainable p) of ``vals`` against ``ref`` (per seed): the
    Wilcoxon test paired by seed on the seeds both have when ``paired`` and at least two are
    shared, else the Mann-Whitney U test on all values."""
    common = shared_seeds(vals, ref) if paired else []
    if len(common) >= 2:
        x, y = vals.loc[common].to_numpy(float), ref.loc[common].to_numpy(float)
        res = stats.wilcoxon(x, y)
        return "wilcoxon", res, stats.min_p_wilcoxon(int(np.sum(x != y)))
    res = stats.mann_whitney(vals.to_numpy(float), ref.to_numpy(float))
    return "mann_whitney", res, stats.min_p_mann_whitney(len(vals), len(ref))


def compare_to(
    values: Mapping[str, pd.Series], reference: str, paired: bool, higher_is_better: bool
) -> Family:
    """Test every label of ``values`` (metric per seed, indexed by seed) against
    ``reference``; Holm over the labels tested."""
    ref = values[reference]
    raw = {k: pair_test(v, ref, paired) for k, v in values.items() if k != reference}
    labels = list(raw)
    adjusted = stats.holm([raw[k][1].p_value for k in labels])
    sign = 1 if higher_is_better else -1
    comparisons = {
        k: Comparison(test, res.p_value, float(adj), sign * res.direction, min_p)
        for k, (test, res, min_p), adj in zip(labels, raw.values(), adjusted, strict=True)
    }
    floor = min((c.min_p for c in comparisons.values()), default=1.0)
    min_adj = stats.min_p_holm(floor, len(comparisons)) if comparisons else 1.0
    return Family(reference, comparisons, min_adj)
