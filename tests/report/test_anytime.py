"""The anytime table: median regret at fractions of each task's budget, by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harness.errors import ConfigError
from harness.report.anytime import anytime_latex, anytime_markdown, build_anytime


def _run(key: str, method: str, budget: float, dataset: str = "cifar10") -> dict:
    return {"run_key": key, "method": method, "config": "{}", "space": "tss",
            "protocol": "p@1", "eval_dataset": dataset, "status": "ok", "budget": budget,
            "synthetic": False}  # fmt: skip


def _traj(key: str, points: list[tuple[float, float]], dataset: str = "cifar10") -> list[dict]:
    return [{"run_key": key, "eval_dataset": dataset, "step": i, "sim_seconds": t, "regret": r}
            for i, (t, r) in enumerate(points)]  # fmt: skip


def _tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    runs = pd.DataFrame([_run("r1", "rea", 100.0), _run("r2", "rea", 100.0),
                         _run("s1", "random_search", 100.0),
                         _run("c1", "rea", 1000.0, "cifar100")])  # fmt: skip
    traj = pd.DataFrame(
        _traj("r1", [(5.0, 4.0), (40.0, 2.0), (120.0, 1.0)])  # last query ends past the budget
        + _traj("r2", [(20.0, 3.0), (60.0, 0.0)])
        + _traj("s1", [(1.0, 9.0)])
        + _traj("c1", [(50.0, 7.0), (400.0, 5.0)], "cifar100")
    )
    return runs, traj


def test_anytime_regret_by_hand() -> None:
    runs, traj = _tables()
    table = build_anytime(runs, traj, rng=0, n_boot=200, methods=("random_search", "rea"))
    assert table.methods == ("random_search", "rea") and table.datasets == ("cifar10", "cifar100")
    assert table.budgets == {"cifar10": 100.0, "cifar100": 1000.0}
    # 10% = 10 s: r2 has no incumbent yet -> no median, and the cell says how many lack one
    early = table.cells[("rea", "cifar10", 0.1)]
    assert np.isnan(early.median) and (early.n, early.n_missing) == (2, 1)
    # 50% = 50 s: r1 2.0, r2 3.0 -> 2.5; 100%: the final incumbents 1.0 and 0.0 -> 0.5
    mid = table.cells[("rea", "cifar10", 0.5)]
    assert mid.median == pytest.approx(2.5) and mid.low <= 2.5 <= mid.high
    assert table.cells[("rea", "cifar10", 1.0)].median == pytest.approx(0.5)
    # cifar100's budget is its own: 10% = 100 s -> 7.0, 50% = 500 s -> 5.0
    assert table.cells[("rea", "cifar100", 0.1)].median == 7.0
    assert table.cells[("rea", "cifar100", 0.5)].median == 5.0
    md = anytime_markdown(table)
    assert "| task | method | 10% of budget | 50% of budget | 100% of budget |" in md
    assert "| CIFAR-10 | REA | — (1 of 2 runs without incumbent) | 2.50 [" in md
    assert "100 / 1,000 simulated s on CIFAR-10 / CIFAR-100" in md
    tex = anytime_latex(table)
    for needle in (r"\toprule", r"\bottomrule", r"\label{tab:anytime-tss-p-1}", r"10\% & 50\%",
                   r"\midrule CIFAR-100 & REA", r"% Needs \usepackage{booktabs}"):  # fmt: skip
        assert needle in tex


def test_anytime_needs_budgets_and_sane_fractions() -> None:
    runs, traj = _tables()
    with pytest.raises(ConfigError, match="budget"):
        build_anytime(runs.assign(budget=np.nan), traj, rng=0)
    with pytest.raises(ConfigError, match="fractions"):
        build_anytime(runs, traj, fractions=(0.5, 1.5), rng=0)
