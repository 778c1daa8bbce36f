"""The supernet report's paired comparison of selection rules."""

from __future__ import annotations

from typing import Any

import pytest

from harness.report.supernet import compare_selections, comparison_markdown


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
    assert c.mean_difference == pytest.approx((36 + 34 - 10 + 0) / 4)
    assert c.wins == pytest.approx((1 + 1 + 0 + 0.5) / 4)
    assert 0 <= c.p_value <= 1 and 0 <= c.probability_of_improvement <= 1
    text = comparison_markdown([c])
    assert "| darts_v1 | tiny-cpu@1 | cifar10 | cifar10 | 4 |" in text and "+15.00" in text
    assert comparison_markdown([]).startswith("_no paired")


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
