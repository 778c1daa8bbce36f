"""Leaderboard value matrix on a hand-made runs table, and its Markdown/LaTeX writers."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest

from harness.errors import ArchiveError, ConfigError
from harness.registry import get_method
from harness.report.leaderboard import (
    build_leaderboard,
    config_label,
    latex_escape,
    method_labels,
    to_latex,
    to_markdown,
)

COST = {"random_search": 1000.0, "rea": 2000.0, "darts_v1": 500.0, "gdas": 300.0}


def _row(method: str, dataset: str, seed: int, acc: float, status: str = "ok") -> dict:
    return {
        "run_key": f"{method}-{dataset}-{seed}",
        "method": method,
        "config": "{}",
        "space": "tss",
        "dataset": dataset,
        "eval_dataset": dataset,
        "protocol": "hp12",
        "seed": seed,
        "arch_index": seed,
        "arch": "|none~0|",
        "valid_acc": acc - 1.0,
        "test_acc": acc if status == "ok" else float("nan"),
        "regret": 100.0 - acc,
        "rank": int(100 - acc),
        "percentile": acc,
        "sim_seconds": COST[method],
        "queries": None,
        "distinct_archs": None,
        "wall_seconds": COST[method] / 100.0,
        "status": status,
        "synthetic": False,
    }


def make_runs() -> pd.DataFrame:
    """cifar10: 7 shared seeds (paired tests); cifar100: rea on other seeds (unpaired)."""
    rows = []
    rs = np.arange(80.0, 87.0)  # 80..86
    steps = np.arange(1.0, 8.0)  # 1..7, distinct so the exact Wilcoxon p is 2 / 2^7
    for seed in range(7):
        rows.append(_row("random_search", "cifar10", seed, rs[seed]))
        rows.append(_row("rea", "cifar10", seed, rs[seed] + steps[seed]))
        rows.append(_row("darts_v1", "cifar10", seed, rs[seed] - steps[seed]))  # all 79
        rows.append(_row("gdas", "cifar10", seed, rs[seed]))  # identical to the control
    for seed in range(3):
        rows.append(_row("random_search", "cifar100", seed, 60.0 + seed))
        rows.append(_row("rea", "cifar100", 10 + seed, 70.0 + seed))
        rows.append(_row("darts_v1", "cifar100", seed, 50.0))
    rows.append(_row("darts_v1", "cifar100", 3, 0.0, status="failed"))
    return pd.DataFrame(rows)


def test_value_matrix_paired_column_by_hand() -> None:
    lb = build_leaderboard(make_runs(), rng=0, n_boot=500)
    assert lb.methods == ("random_search", "darts_v1", "gdas", "rea")  # control first
    assert lb.datasets == ("cifar10", "cifar100")
    rs = lb.cell("random_search", "cifar10")
    assert rs is not None
    # 80..86: mean 83; squared deviations 9+4+1+0+1+4+9 = 28 -> std sqrt(28 / 6)
    assert (rs.mean, rs.n) == (83.0, 7)
    assert rs.std == pytest.approx(math.sqrt(28 / 6))
    # IQM of 7 values trims int(0.25 * 7) = 1 each side: mean(81..85) = 83
    assert rs.iqm == pytest.approx(83.0)
    assert rs.ci_low <= rs.mean <= rs.ci_high
    assert rs.p_value is None and not rs.significant
    rea, darts, gdas = (lb.cell(m, "cifar10") for m in ("rea", "darts_v1", "gdas"))
    assert rea is not None and darts is not None and gdas is not None
    # rea = control + (1..7): mean 87; deviations -6,-4,...,6 -> squares sum 112 -> sqrt(112/6)
    assert rea.mean == pytest.approx(87.0)
    assert rea.std == pytest.approx(math.sqrt(112 / 6))
    # all 7 paired differences positive and distinct: exact two-sided p = 2 / 2^7
    assert rea.test == "wilcoxon" and darts.test == "wilcoxon"
    assert rea.p_value == pytest.approx(0.015625)
    assert darts.p_value == pytest.approx(0.015625)
    assert gdas.p_value == pytest.approx(1.0)  # all differences zero
    # Holm, m = 3: 0.015625 * 3 = 0.046875 twice, then 1.0 * 1 -> 0.046875, 0.046875, 1
    assert rea.p_adjusted == pytest.approx(0.046875)
    assert darts.p_adjusted == pytest.approx(0.046875)
    assert gdas.p_adjusted == pytest.approx(1.0)
    assert rea.significant and darts.significant and not gdas.significant
    assert (darts.mean, darts.std) == (79.0, 0.0)
    assert rea.is_best and not rs.is_best and not darts.is_best


def test_value_matrix_unpaired_column_failed_and_missing() -> None:
    lb = build_leaderboard(make_runs(), rng=0, n_boot=200)
    rea, darts = lb.cell("rea", "cifar100"), lb.cell("darts_v1", "cifar100")
    assert rea is not None and darts is not None
    # seeds 10..12 vs 0..2 are not the same seeds: Mann-Whitney, complete separation of 3 vs 3
    # -> exact p = 2 / C(6, 3) = 0.1
    assert rea.test == "mann_whitney"
    assert rea.p_value == pytest.approx(0.1)
    # darts_v1 pairs with the control on seeds 0..2 (the failed seed 3 is excluded): all three
    # differences negative and distinct -> exact p = 2 / 2^3 = 0.25
    assert darts.test == "wilcoxon" and darts.n == 3
    assert darts.p_value == pytest.approx(0.25)
    # Holm, m = 2: 0.1 * 2 = 0.2; max(0.2, 0.25) = 0.25
    assert rea.p_adjusted == pytest.approx(0.2)
    assert darts.p_adjusted == pytest.approx(0.25)
    assert not rea.significant and rea.is_best and rea.mean == pytest.approx(71.0)
    assert lb.cell("gdas", "cifar100") is None
    assert lb.cost["darts_v1"].n_failed == 1 and lb.cost["darts_v1"].n_ok == 10
    assert lb.cost["rea"].sim_seconds == 2000.0 and lb.cost["rea"].wall_seconds == 20.0
    assert lb.seed_counts == (3, 7)
    assert lb.tests_used == ("mann_whitney", "wilcoxon")
    frame = lb.to_frame()
    assert len(frame) == 7  # 4 methods x 2 datasets minus gdas on cifar100
    assert set(frame.columns) >= {"method", "eval_dataset", "mean", "p_adjusted", "is_best"}


def test_lower_is_better_metric_and_no_control() -> None:
    lb = build_leaderboard(make_runs(), metric="regret", control=None, rng=0, n_boot=50)
    best = [m for m in lb.methods if (c := lb.cell(m, "cifar10")) is not None and c.is_best]
    assert best == ["rea"]  # lowest regret = highest accuracy
    assert all(c.p_value is None and not c.significant for c in lb.cells.values())
    assert lb.methods[0] == "darts_v1"  # no control: alphabetical


def test_ties_for_best_are_all_bold() -> None:
    runs = make_runs()
    runs = runs[runs["method"].isin(["random_search", "gdas"])]
    lb = build_leaderboard(runs, rng=0, n_boot=50)
    assert all(c.is_best for (m, d), c in lb.cells.items() if d == "cifar10")
    assert to_markdown(lb).count("**83.00 ± 2.16**") == 2


def test_bootstrap_seeded() -> None:
    a = build_leaderboard(make_runs(), rng=5, n_boot=100)
    b = build_leaderboard(make_runs(), rng=np.random.default_rng(5), n_boot=100)
    assert a.cells == b.cells


def test_markdown_bold_marks_and_caption() -> None:
    md = to_markdown(build_leaderboard(make_runs(), rng=0, n_boot=100))
    lines = md.splitlines()
    rea_row = next(line for line in lines if line.startswith("| rea |"))
    assert "**87.00 ± 4.32**†" in rea_row
    assert "**71.00 ± 1.00**" in rea_row and "**71.00 ± 1.00**†" not in rea_row
    assert "2,000" in rea_row and "20.0" in rea_row
    darts_row = next(line for line in lines if line.startswith("| darts_v1 |"))
    assert "79.00 ± 0.00†" in darts_row and "**79" not in darts_row
    gdas_row = next(line for line in lines if line.startswith("| gdas |"))
    assert "—" in gdas_row and "†" not in gdas_row
    assert lines[0].startswith("| method | cifar10 | cifar100 |")
    assert "SYNTHETIC" not in md
    caption = lines[-1]
    for needle in ("test_acc", "higher is better", "hp12", "3-7 seeds", "random_search"):
        assert needle in caption
    assert "Wilcoxon" in caption and "Mann-Whitney" in caption and "Holm" in caption
    assert "1 failed run(s) excluded" in caption


def test_latex_booktabs_bold_marks_escapes() -> None:
    tex = to_latex(build_leaderboard(make_runs(), rng=0, n_boot=100))
    for needle in (r"\toprule", r"\midrule", r"\bottomrule", r"\begin{tabular}{lccrr}"):
        assert needle in tex
    assert r"\textbf{87.00 $\pm$ 4.32}$^\dagger$" in tex
    assert r"79.00 $\pm$ 0.00$^\dagger$" in tex
    assert r"random\_search &" in tex and r"darts\_v1 &" in tex
    assert r"\caption{" in tex and r"test\_acc" in tex and "Wilcoxon" in tex
    assert "random_search" not in tex.replace(r"random\_search", "")
    assert latex_escape("a_b&c%d#e$f") == r"a\_b\&c\%d\#e\$f"


def test_synthetic_banner_in_both_writers() -> None:
    runs = make_runs()
    runs.loc[0, "synthetic"] = True
    lb = build_leaderboard(runs, rng=0, n_boot=50)
    assert lb.synthetic
    md, tex = to_markdown(lb), to_latex(lb)
    assert md.splitlines()[0].startswith("> **SYNTHETIC DATA")
    assert tex.splitlines()[0].startswith("% SYNTHETIC DATA")
    assert r"\caption{\textbf{SYNTHETIC DATA" in tex


def test_method_labels_split_configs() -> None:
    """Several configs of one method are named by what differs from its defaults; configs
    that cannot be told apart that way (an unregistered method) are numbered."""
    runs = make_runs()
    default = json.dumps(dataclasses.asdict(get_method("rea").Config()))
    small = json.dumps({**json.loads(default), "population_size": 20})
    runs.loc[runs["method"] == "rea", "config"] = [default, small] * 5
    labels = method_labels(runs)
    assert set(labels[runs["method"] == "rea"]) == {"rea", "rea(population_size=20)"}
    assert (labels[runs["config"] == small] == "rea(population_size=20)").all()
    assert set(labels[runs["method"] == "gdas"]) == {"gdas"}
    lb = build_leaderboard(runs, rng=0, n_boot=20)
    assert lb.configs["rea(population_size=20)"] == small
    runs.loc[runs["method"] == "rea", "method"] = "my_rea"  # not registered
    assert set(method_labels(runs)[runs["method"] == "my_rea"]) == {"my_rea#1", "my_rea#2"}
    assert config_label("rea", default) == "rea" and config_label("rea", "[1]") is None


def test_errors_name_what_exists() -> None:
    runs = make_runs()
    with pytest.raises(ConfigError, match="did you mean 'random_search'"):
        build_leaderboard(runs, control="random_serch", rng=0)
    with pytest.raises(ConfigError, match="unknown metric"):
        build_leaderboard(runs, metric="accuracy", rng=0)
    with pytest.raises(ArchiveError, match=r"lacks column\(s\) \['status'\]"):
        build_leaderboard(runs.drop(columns="status"), rng=0)
    two = pd.concat([runs, runs.assign(space="sss")])
    with pytest.raises(ConfigError, match="filter first"):
        build_leaderboard(two, rng=0)
    with pytest.raises(ConfigError, match="no successful run"):
        build_leaderboard(runs.assign(status="failed"), rng=0)


def test_successful_run_without_value_is_left_out() -> None:
    runs = make_runs()
    runs.loc[(runs["method"] == "rea") & (runs["eval_dataset"] == "cifar100"), "test_acc"] = [
        70.0,
        float("nan"),
        72.0,
    ]
    cell = build_leaderboard(runs, rng=0, n_boot=20).cell("rea", "cifar100")
    assert cell is not None and cell.n == 2 and cell.mean == pytest.approx(71.0)
