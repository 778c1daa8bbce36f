"""The supernet report's paired comparison of selection rules."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from matplotlib.figure import Figure

from harness import stats
from harness.report.supernet import (
    collapsed_cell,
    compare_selections,
    comparison_markdown,
    plot_paired_selection,
)
from harness.report.supernet_selection import comparison_latex, paired_plot_data


def _row(key: str, seed: int, selection: str, test: float | None, **extra: Any) -> dict:
    return {"run_key": key, "method": "darts_v1", "protocol": "tiny-cpu@1", "dataset": "cifar10",
            "eval_dataset": "cifar10", "seed": seed, "selection": selection, "test_acc": test,
            "status": "ok", **extra}  # fmt: skip


def test_compare_selections_pairs_rows_of_the_same_supernet() -> None:
    rows = []
    for seed, (pt, mag) in enumerate([(90.0, 54.0), (88.0, 54.0), (50.0, 60.0), (70.0, 70.0)]):
        rows += [
            _row(f"k{seed}", seed, "perturbation", pt),
            _row(f"k{seed}", seed, "magnitude", mag),
        ]
    rows.append(_row("k9", 9, "perturbation", 99.0))  # unpaired: ignored
    rows.append(_row("k8", 8, "magnitude", None))  # null: ignored
    (c,) = compare_selections(rows)
    assert c.n == 4 and c.group == ("darts_v1", "tiny-cpu@1", "cifar10", "cifar10")
    assert c.seeds == (0, 1, 2, 3) and c.differences == (36.0, 34.0, -10.0, 0.0)
    assert c.mean_difference == pytest.approx((36 + 34 - 10 + 0) / 4)
    # P(a > b) over the pairs (a supernet against itself), not across supernets (0.5625)
    assert c.probability_of_improvement == pytest.approx((1 + 1 + 0 + 0.5) / 4)
    # Student-t interval: mean 15, sd of (36, 34, -10, 0) = sqrt(1652 / 3), t_{0.975, 3}
    half = 3.182446 * math.sqrt(1652 / 3) / 2
    assert (c.ci_low, c.ci_high) == (pytest.approx(15 - half, abs=1e-4),
                                     pytest.approx(15 + half, abs=1e-4))  # fmt: skip
    # 3 nonzero differences: no exact signed-rank p below 2 / 2^3
    assert c.min_p == pytest.approx(0.25) and not c.testable
    assert c.effect_size == pytest.approx(15 / math.sqrt(1652 / 3))
    assert c.n_needed == stats.paired_t_sample_size(c.effect_size)
    assert c.collapsed is None and c.n_collapsed is None  # rows without architectures
    text = comparison_markdown([c])
    assert "| darts_v1 | tiny-cpu@1 | cifar10 | cifar10 | 4 |" in text and "+15.00" in text
    assert "too few seeds (min p = 0.25)" in text  # instead of a p-value
    assert "| cifar10 | darts_v1 | 2 | 50.00 | 60.00 | -10.00 | — |" in text  # per seed
    assert comparison_markdown([]).startswith("_no paired")


DEAD = "|none~0|+|none~0|nor_conv_3x3~1|+|none~0|none~1|nor_conv_3x3~2|"  # no path from input
POOL = "|none~0|+|none~0|nor_conv_3x3~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|"
SKIPS = "|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|"
CONV = "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|nor_conv_1x1~1|none~2|"
DEAD_END = "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"  # 1 leads nowhere


def test_collapsed_cell_means_no_convolution_on_an_input_output_path() -> None:
    assert collapsed_cell(DEAD) and collapsed_cell(POOL) and collapsed_cell(SKIPS)
    assert collapsed_cell(DEAD_END)
    assert not collapsed_cell(CONV)
    assert not collapsed_cell("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
                              "+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")  # fmt: skip


def _study() -> list[dict]:
    rows = []
    for seed, (mag, arch) in enumerate([(10.0, DEAD), (91.0, CONV), (75.0, POOL)]):
        rows += [
            _row(f"k{seed}", seed, "magnitude", mag, arch=arch, space="tss"),
            _row(f"k{seed}", seed, "perturbation", 92.0 + seed, arch=CONV, space="tss"),
        ]
    return rows


def test_collapsed_supernets_are_counted_on_the_magnitude_side() -> None:
    (c,) = compare_selections(_study())
    assert c.collapsed == (True, False, True) and c.n_collapsed == 2
    (sss,) = compare_selections([{**r, "space": "sss"} for r in _study()])
    assert sss.collapsed is None  # the size space has no collapse notion
    assert compare_selections(_study(), a="perturbation", b="topk") == []  # no topk rows


def test_selection_latex_and_paired_plot() -> None:
    comparisons = compare_selections(_study())
    tex = comparison_latex(comparisons)
    for needle in (r"\toprule", r"\bottomrule", r"\label{tab:selection-perturbation-vs-magnitude}",
                   r"\caption{", "DARTS-V1 & CIFAR-10 & 3", "2/3", "n/a (min 0.25)"):  # fmt: skip
        assert needle in tex
    data = paired_plot_data(comparisons, "cifar10", "tiny-cpu@1")
    np.testing.assert_array_equal(data.collapsed["darts_v1"], [True, False, True])
    ax = plot_paired_selection(data, Figure().add_subplot())
    pairs = [line for line in ax.get_lines() if len(line.get_xdata()) == 2]
    assert len(pairs) == 3  # one line per supernet, magnitude (left) to perturbation (right)
    assert [list(line.get_ydata()) for line in pairs] == [[10.0, 92.0], [91.0, 93.0], [75.0, 94.0]]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["magnitude", "PT"]
    assert ax.get_legend() is not None  # the collapse marker is explained


def test_selection_report_states_the_caveats_of_the_methods_it_shows() -> None:
    import pandas as pd

    from harness.report.supernet import method_caveats, selection_markdown

    assert [m for m, _ in method_caveats(["rarts", "darts_v1", "dnal", "unknown"])] == [
        "dnal", "rarts",
    ]  # fmt: skip
    rows = [_row("k0", 0, "magnitude", 50.0, kendall_tau=0.1, synthetic=False),
            _row("k0", 0, "perturbation", 60.0, kendall_tau=0.1, synthetic=False)]  # fmt: skip
    runs = pd.DataFrame(rows).assign(method="rarts")
    text = selection_markdown(runs)
    assert "> **rarts:** RARTS's update equations and hyperparameters have no published" in text
    assert "too few seeds (min p = 1)" in text and "rough guide" in text
