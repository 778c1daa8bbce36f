"""Every pair of methods per dataset (``harness report --pairwise``): the tests, Holm over the
pairs, pairing on shared seeds, too few seeds, and the CLI flags."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from harness.cli import main as cli
from harness.report.pairwise import pairwise_markdown, pairwise_tests
from harness.stats import holm


def _runs(n_seeds: int, paired: bool = True, drop: tuple[str, int] | None = None) -> pd.DataFrame:
    """Three methods on cifar10; rea beats random search by 1 + seed/10, reinforce ties it."""
    rows = []
    for seed in range(n_seeds):
        base = 90.0 + (seed % 3)
        for method, acc in (("random_search", base), ("rea", base + 1 + seed / 10),
                            ("reinforce", base + (0.05 if seed % 2 else -0.05))):  # fmt: skip
            if drop == (method, seed):
                continue
            rows.append({
                "run_key": f"{method}-{seed}", "method": method, "config": "{}", "space": "tss",
                "dataset": "cifar10", "eval_dataset": "cifar10", "protocol": "p@1",
                "seed": seed, "test_acc": acc, "regret": 95.0 - acc, "rank": int(95 - acc),
                "status": "ok",
                "paired_streams": paired,
            })  # fmt: skip
    return pd.DataFrame(rows)


def test_every_pair_is_tested_and_holm_runs_over_the_pairs_of_a_dataset() -> None:
    runs = _runs(8)
    result = pairwise_tests(runs)
    table = result.table
    assert result.paired and list(zip(table["a"], table["b"], strict=True)) == list(
        itertools.combinations(["random_search", "rea", "reinforce"], 2)
    )
    assert (table["test"] == "wilcoxon").all() and (table["n_pairs"] == 8).all()
    by_seed = runs.pivot(index="seed", columns="method", values="test_acc")
    raw = [
        sps.wilcoxon(by_seed[a], by_seed[b]).pvalue
        for a, b in zip(table["a"], table["b"], strict=True)
    ]
    assert np.allclose(table["p_value"], raw) and np.allclose(table["p_holm"], holm(raw))
    rea = table[(table["a"] == "random_search") & (table["b"] == "rea")].iloc[0]
    assert rea["better"] == "rea" and rea["significant"] and rea["difference"] < 0
    tie = table[(table["a"] == "random_search") & (table["b"] == "reinforce")].iloc[0]
    assert not tie["significant"]
    text = pairwise_markdown(result)
    assert "yes, REA better" in text and "Wilcoxon signed-rank test paired by seed" in text


def test_a_lower_is_better_metric_flips_the_winner() -> None:
    table = pairwise_tests(_runs(8), metric="regret").table
    rea = table[(table["a"] == "random_search") & (table["b"] == "rea")].iloc[0]
    assert rea["better"] == "rea" and rea["difference"] > 0  # rea has the lower regret


def test_a_failed_seed_drops_out_of_its_pairs_only() -> None:
    table = pairwise_tests(_runs(8, drop=("rea", 3))).table
    pairs = zip(table["a"], table["b"], strict=True)
    counts = dict(zip(pairs, table["n_pairs"], strict=True))
    assert counts[("random_search", "rea")] == 7 and counts[("rea", "reinforce")] == 7
    assert counts[("random_search", "reinforce")] == 8
    assert "7 pairs" in pairwise_markdown(pairwise_tests(_runs(8, drop=("rea", 3))))


def test_unpaired_rows_use_mann_whitney_and_three_seeds_cannot_reach_the_level() -> None:
    result = pairwise_tests(_runs(3, paired=False))
    assert not result.paired and (result.table["test"] == "mann_whitney").all()
    assert not result.table["significant"].any() and (result.table["min_p_holm"] >= 0.05).all()
    text = pairwise_markdown(result)
    assert "Too few seeds" in text and "unpaired" in text and "yes," not in text


def test_the_report_cli_takes_control_metric_and_pairwise(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from harness import results

    res = tmp_path / "res"
    res.mkdir()
    runs = _runs(8)
    full = pd.DataFrame({c: pd.Series(dtype=t) for c, t in results.RUN_COLUMNS.items()})
    full = pd.concat([full, runs], ignore_index=True).astype(results.RUN_COLUMNS)
    full["synthetic"] = False
    full["sim_seconds"] = full["wall_seconds"] = 1.0
    full.to_parquet(res / results.RUNS_FILE, index=False)
    traj = pd.DataFrame({c: pd.Series(dtype=t) for c, t in results.TRAJECTORY_COLUMNS.items()})
    traj.to_parquet(res / results.TRAJECTORIES_FILE, index=False)
    out = tmp_path / "report"
    args = ["report", str(res), "--out", str(out), "--n-boot", "50"]
    assert cli([*args, "--control", "rea", "--metric", "regret", "--pairwise"]) == 0
    board = (out / "leaderboard.md").read_text()
    assert (out / "pairwise.md").is_file() and board.startswith("| method | CIFAR-10 |")
    assert "Regret (percentage points" in board and "‡ significantly worse than REA" in board
    assert len(pd.read_csv(out / "pairwise.csv")) == 3
    assert cli([*args, "--control", "reaa"]) == 2
    assert "did you mean 'rea'" in capsys.readouterr().err
    assert cli([*args, "--metric", "accuracy"]) == 2
    assert cli([*args, "--control", "none"]) == 0
