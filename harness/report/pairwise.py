"""All pairs of methods, per evaluation dataset, Holm-corrected together: ``pairwise.md`` and
``pairwise.csv`` (``harness report --pairwise``).

Where the leaderboard tests each method against one control, an ablation or a paper's
discussion often needs every pair. Each pair uses the same test as the leaderboard's marks
(:mod:`harness.report.significance`: the Wilcoxon signed-rank test paired by seed where the
runs share their random streams and cover the same seeds, else the Mann-Whitney U test; both
two-sided), with Holm over the ``k (k - 1) / 2`` pairs of a dataset. A family that cannot reach
the level at its sample sizes says so instead of marking pairs.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pandas as pd

from harness import stats
from harness.report.leaderboard import method_labels, task_order
from harness.report.names import display_dataset, display_label
from harness.report.significance import TEST_NAMES, pair_test, shared_seeds, use_pairing

__all__ = ["PAIRWISE_COLUMNS", "Pairwise", "pairwise_markdown", "pairwise_tests"]

PAIRWISE_COLUMNS = (
    "space", "protocol", "eval_dataset", "a", "b", "n_a", "n_b", "n_pairs", "mean_a", "mean_b",
    "difference", "test", "p_value", "p_holm", "min_p_holm", "better", "significant",
)  # fmt: skip


@dataclass(frozen=True)
class Pairwise:
    """Every pair of methods of one (space, protocol), per dataset: ``table`` (one row per
    pair and dataset, :data:`PAIRWISE_COLUMNS`), with how the tests were chosen."""

    table: pd.DataFrame
    metric: str
    alpha: float
    paired: bool
    why: str


def pairwise_tests(
    runs: pd.DataFrame, metric: str = "test_acc", alpha: float = 0.05, paired: bool | None = None
) -> Pairwise:
    """All pairs of the labels (method and config) of ``runs`` (one space and protocol) on each
    evaluation dataset, over their successful runs. ``difference``: mean of ``a`` minus mean of
    ``b`` in the metric's units; ``better``: the label that tends to win (in the metric's
    direction; empty when balanced); ``significant``: Holm-adjusted p below ``alpha``."""
    higher = stats.higher_is_better(metric)
    ok = runs[runs["status"] == "ok"].reset_index(drop=True)
    ok = ok.assign(label=method_labels(ok))
    use, why = use_pairing(ok, paired)
    rows: list[dict[str, object]] = []
    setting = ok[["space", "protocol"]].drop_duplicates().to_numpy().tolist()
    space, protocol = setting[0] if len(setting) == 1 else ("", "")
    for dataset in sorted(ok["eval_dataset"].astype(str).unique(), key=task_order):
        mine = ok[ok["eval_dataset"] == dataset]
        values = {
            str(label): group.set_index("seed")[metric].astype(float).dropna()
            for label, group in mine.groupby("label", sort=True)
        }
        pairs = list(itertools.combinations(values, 2))
        tested = [pair_test(values[a], values[b], use) for a, b in pairs]
        adjusted = stats.holm([res.p_value for _, res, _ in tested])
        floor = min((m for _, _, m in tested), default=1.0)
        reachable = stats.min_p_holm(floor, len(pairs)) if pairs else 1.0
        for (a, b), (test, res, _), adj in zip(pairs, tested, adjusted, strict=True):
            sign = res.direction if higher else -res.direction
            rows.append({
                "space": space, "protocol": protocol, "eval_dataset": dataset, "a": a, "b": b,
                "n_a": len(values[a]), "n_b": len(values[b]),
                "n_pairs": len(shared_seeds(values[a], values[b])) if test == "wilcoxon" else 0,
                "mean_a": float(values[a].mean()), "mean_b": float(values[b].mean()),
                "difference": float(values[a].mean() - values[b].mean()), "test": test,
                "p_value": res.p_value, "p_holm": float(adj), "min_p_holm": reachable,
                "better": a if sign > 0 else b if sign < 0 else "",
                "significant": bool(adj < alpha),
            })  # fmt: skip
    table = pd.DataFrame(rows, columns=list(PAIRWISE_COLUMNS))
    return Pairwise(table, metric, alpha, use, why)


def _p(value: float) -> str:
    return "<0.001" if value < 1e-3 else f"{value:.3f}"


def pairwise_markdown(result: Pairwise) -> str:
    """The pairs as a Markdown table per dataset, with a caption naming the tests."""
    table, out = result.table, []
    for dataset, rows in table.groupby("eval_dataset", sort=False):
        floor = float(rows["min_p_holm"].to_numpy()[0])
        reachable = floor < result.alpha
        out.append(f"**{display_dataset(str(dataset))}**\n")
        out.append("| a | b | n | mean a - b | p (Holm) | significant |")
        out.append("|---|---|---:|---:|---:|---|")
        for r in rows.to_dict("records"):
            n = f"{r['n_pairs']} pairs" if r["n_pairs"] else f"{r['n_a']} / {r['n_b']}"
            better = display_label(str(r["better"]))
            mark = f"yes, {better} better" if r["significant"] else "no" if reachable else "—"
            out.append(
                f"| {display_label(str(r['a']))} | {display_label(str(r['b']))} | {n} "
                f"| {float(r['difference']):+.2f} | {_p(float(r['p_holm']))} | {mark} |"
            )
        if not reachable:
            out.append(
                f"\nToo few seeds: with {len(rows)} pairs the smallest Holm-adjusted p-value "
                f"these sample sizes allow is {floor:.3g}, not "
                f"below {result.alpha}; no pair can be significant."
            )
        out.append("")
    tests = sorted(set(table["test"]))
    named = "; ".join(TEST_NAMES[t] for t in tests) or "no test"
    out.append(
        f"Every pair of methods on each dataset, metric {result.metric} over successful runs "
        f"({named}, {result.why}); p-values "
        f"Holm-adjusted over the pairs of a dataset; significant: below {result.alpha}. "
        "Mean a - b in the metric's units; n: the seeds paired (a seed that failed for one "
        "of the two drops out of the pair), or the runs of each when unpaired."
    )
    return "\n".join(out) + "\n"
