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

COST = {"random_search": 1000.0, "rea": 2000.0, "darts_v1": 500.0, "gdas": 300.0, "gaea": 400.0}
SCALE = {"cifar10": 1.0, "cifar100": 3.0}  # the budgets differ per task, and so does the cost


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
        "sim_seconds": COST[method] * SCALE[dataset],
        "queries": None,
        "distinct_archs": None,
        "wall_seconds": COST[method] * SCALE[dataset] / 100.0,
        "status": status,
        "synthetic": False,
        "paired_streams": True,  # the methods of a seed share their random streams
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
    # the marks say which side: rea is better than the control, darts_v1 worse
    assert rea.better and not rea.worse and rea.direction == 1
    assert darts.worse and not darts.better and darts.direction == -1
    assert (darts.mean, darts.std) == (79.0, 0.0)
    assert rea.is_best and not rs.is_best and not darts.is_best
    # against the best (rea): the others differ by 1..7, 2..14, 1..7 -> all Holm 0.046875
    assert rs.p_vs_best == pytest.approx(0.046875) and rea.p_vs_best is None
    assert rea.bold and not rs.bold and not gdas.bold and not darts.bold
    assert lb.paired and lb.control_family["cifar10"] == (3, pytest.approx(3 * 2 / 2**7))
    # P(rea beats a control run): rea = 81, 83, ..., 93 against 80..86. 81 beats 80 and ties
    # 81 (1.5), 83 -> 3.5, 85 -> 5.5, 87..93 beat all 7: (1.5 + 3.5 + 5.5 + 4 * 7) / 49
    assert rea.poi == pytest.approx(38.5 / 49) and rs.poi is None
    assert rea.poi_low is not None and rea.poi_low <= rea.poi <= (rea.poi_high or 0)
    assert rea.iqm_low <= rea.iqm <= rea.iqm_high


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
    # no family on cifar100 can reach 0.05: the smallest Holm-adjusted p is 2 * 0.1
    assert lb.control_family["cifar100"] == (2, pytest.approx(0.2))
    assert not lb.marks_possible("cifar100") and lb.marks_possible("cifar10")
    assert not lb.bold_tested("cifar100")
    assert lb.cell("gdas", "cifar100") is None
    # cost per task, never averaged across them (the failed run was on cifar100)
    assert lb.cost[("darts_v1", "cifar100")].n_failed == 1
    assert lb.cost[("darts_v1", "cifar100")].n_ok == 3
    assert lb.cost[("darts_v1", "cifar10")].n_ok == 7
    assert lb.cost[("rea", "cifar10")].sim_seconds == 2000.0
    assert lb.cost[("rea", "cifar100")].sim_seconds == 6000.0
    assert lb.cost[("rea", "cifar100")].wall_seconds == 60.0
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
    rea_row = next(line for line in lines if line.startswith("| REA |"))
    assert "**87.00 ± 4.32**†" in rea_row and rea_row.endswith("| `rea` |")
    assert "**71.00 ± 1.00**" in rea_row and "**71.00 ± 1.00**†" not in rea_row
    darts_row = next(line for line in lines if line.startswith("| DARTS-V1 |"))
    # significantly worse than the control: the other mark, never the dagger
    assert "79.00 ± 0.00‡" in darts_row and "†" not in darts_row and "**79" not in darts_row
    gdas_row = next(line for line in lines if line.startswith("| GDAS |"))
    assert "—" in gdas_row and "†" not in gdas_row and "‡" not in gdas_row
    assert lines[0] == "| method | CIFAR-10 | CIFAR-100 | label |"
    assert "SYNTHETIC" not in md
    caption = next(line for line in lines if line.startswith("Test accuracy (%)"))
    for needle in ("Test accuracy (%)", "higher is better", "hp12", "3-7 seeds", "random search"):
        assert needle in caption
    assert "† significantly better, ‡ significantly worse than random search on CIFAR-10" in caption
    assert "Wilcoxon signed-rank test paired by seed" in caption and "Mann-Whitney" in caption
    assert "as the methods of a seed share their random streams" in caption
    assert "Holm over the 3 comparisons with random search on each dataset" in caption
    # cifar100 has 3 seeds: no test can reach the level, and the caption says so
    assert "No marks on CIFAR-100: too few seeds" in caption and "0.2" in caption
    assert "Bold on CIFAR-10: the best mean and every method not significantly different" in caption
    assert "Bold on CIFAR-100: the best mean only: too few seeds" in caption
    assert "1 failed run(s) excluded" in caption
    # the cost table has a column per task; the cifar100 cost (3x) is not averaged in
    cost = md.split("| method | CIFAR-10 sim. s | CIFAR-10 wall s | CIFAR-100 sim. s |")[1]
    rea_cost = next(line for line in cost.splitlines() if line.startswith("| REA |"))
    assert rea_cost == "| REA | 2,000 | 20.0 | 6,000 | 60.0 |"
    assert "never averaged across tasks" in md and "not recorded" in md
    assert "| method | CIFAR-10 IQM [CI] | CIFAR-10 P(better) [CI] |" in md


def test_too_few_seeds_print_no_marks_and_say_so() -> None:
    """3 seeds: the exact Wilcoxon p can be no smaller than 2 / 2^3 = 0.25, whatever the data."""
    runs = make_runs()
    runs = runs[(runs["eval_dataset"] == "cifar10") & (runs["seed"] < 3)]
    lb = build_leaderboard(runs, rng=0, n_boot=20)
    assert not lb.marks_possible("cifar10") and lb.control_family["cifar10"] == (3, 0.75)
    md = to_markdown(lb)
    assert "†" not in md.split("\n\n")[0] and "‡" not in md.split("\n\n")[0]
    assert "No significance marks: too few seeds for any test against random search" in md
    assert "is 0.75" in md
    assert "Bold: the best mean only" in md


def test_pairing_follows_paired_streams_or_the_caller() -> None:
    runs = make_runs()
    unpaired = runs.drop(columns="paired_streams")  # rows made before streams were shared
    lb = build_leaderboard(unpaired, rng=0, n_boot=20)
    assert not lb.paired and lb.tests_used == ("mann_whitney",)
    assert {c.test for c in lb.cells.values() if c.test} == {"mann_whitney"}
    assert "unpaired, as the rows do not record" in to_markdown(lb)
    false = runs.assign(paired_streams=[False] + [True] * (len(runs) - 1))
    assert not build_leaderboard(false, rng=0, n_boot=20).paired
    forced = build_leaderboard(unpaired, rng=0, n_boot=20, paired=True)
    assert forced.paired and forced.cell("rea", "cifar10").test == "wilcoxon"  # type: ignore[union-attr]
    assert "else Mann-Whitney U, as asked" in to_markdown(forced)
    off = build_leaderboard(runs, rng=0, n_boot=20, paired=False)
    assert not off.paired and "unpaired, as asked" in to_markdown(off)


def test_bold_is_the_best_and_every_method_not_different_from_it() -> None:
    runs = make_runs()
    runs = runs[(runs["eval_dataset"] == "cifar10") & runs["method"].isin(["random_search", "rea"])]
    near = runs[runs["method"] == "rea"].copy()
    wiggle = [-0.1, 0.2, -0.3, 0.4, -0.5, 0.6, 0.05]  # W+ = 16, W- = 12: p far above 0.05
    near = near.assign(method="gaea", test_acc=near["test_acc"].to_numpy() + wiggle)
    # Holm over the 2 comparisons with the best: the smallest attainable p is 2 * 2 / 2^7 < 0.05
    lb = build_leaderboard(pd.concat([runs, near]), rng=0, n_boot=20)
    assert lb.bold_tested("cifar10")
    rea, gaea = lb.cell("rea", "cifar10"), lb.cell("gaea", "cifar10")
    assert rea is not None and gaea is not None
    assert gaea.is_best and not rea.is_best  # gaea's mean is 87.0 + 0.35 / 7
    assert rea.bold and rea.p_vs_best is not None and rea.p_vs_best >= 0.05
    assert not lb.cell("random_search", "cifar10").bold  # type: ignore[union-attr]
    assert to_markdown(lb).count("**") == 4  # two bold cells


def test_latex_booktabs_label_packages_display_names() -> None:
    lb = build_leaderboard(make_runs(), rng=0, n_boot=100)
    tex = to_latex(lb)
    assert tex.startswith(r"% Needs \usepackage{booktabs}") and r"\usepackage{adjustbox}" in tex
    for needle in (r"\toprule", r"\midrule", r"\bottomrule", r"\begin{tabular}{lcc}",
                   r"\begin{table}[t]", r"\label{tab:tss-hp12}",
                   r"\begin{adjustbox}{max width=\columnwidth}"):  # fmt: skip
        assert needle in tex
    assert r"\textbf{87.00 $\pm$ 4.32}$^\dagger$" in tex
    assert r"79.00 $\pm$ 0.00$^\ddagger$" in tex and r"79.00 $\pm$ 0.00$^\dagger$" not in tex
    assert "random search &" in tex and "DARTS-V1 &" in tex and "REA &" in tex
    assert "Method & CIFAR-10 & CIFAR-100" in tex
    assert r"\caption{" in tex and "Wilcoxon" in tex and "Holm" in tex
    assert "random_search" not in tex.replace(r"random\_search", "")
    assert latex_escape("a_b&c%d#e$f") == r"a\_b\&c\%d\#e\$f"
    wide = to_latex(lb, wide=True, iqm=True, poi=True, cost=True)
    for needle in (r"\begin{table*}[t]", r"\begin{adjustbox}{max width=\textwidth}",
                   r"\multicolumn{5}{c}{CIFAR-10}", r"\cmidrule(lr){2-6}", r"\cmidrule(lr){7-11}",
                   r"\label{tab:tss-hp12-wide}", "IQM [CI]", "P(better) [CI]", r"Sim.\ s",
                   "Wall s", "never averaged across tasks"):  # fmt: skip
        assert needle in wide
    rea = next(line for line in wide.splitlines() if line.startswith("REA &"))
    assert "& 2,000 & 20.0 &" in rea and "& 6,000 & 60.0" in rea  # per task, not averaged


def test_synthetic_banner_in_both_writers() -> None:
    runs = make_runs()
    runs.loc[0, "synthetic"] = True
    lb = build_leaderboard(runs, rng=0, n_boot=50)
    assert lb.synthetic
    md, tex = to_markdown(lb), to_latex(lb)
    assert md.splitlines()[0].startswith("> **SYNTHETIC DATA")
    assert tex.splitlines()[1].startswith("% SYNTHETIC DATA")
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
