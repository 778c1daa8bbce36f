"""The two leaderboard writers, Markdown and LaTeX: formatting only, no number computed here.

Both render a :class:`~harness.report.leaderboard.Leaderboard` built by
:func:`~harness.report.leaderboard.build_leaderboard`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from harness.report.leaderboard import Cell, Leaderboard

logger = logging.getLogger(__name__)

TEST_NAMES = {
    "wilcoxon": "two-sided Wilcoxon signed-rank test paired by seed",
    "mann_whitney": "two-sided Mann-Whitney U test (unpaired)",
}
SIGNIFICANT_MARK = "†"
_LATEX_MARK = r"$^\dagger$"

_SYNTHETIC_BANNER = "SYNTHETIC DATA: these numbers do not come from the benchmark"
_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def latex_escape(text: str) -> str:
    """Escape the characters LaTeX treats specially (underscores included)."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def _num(x: float, digits: int) -> str:
    return f"{x:.{digits}f}" if np.isfinite(x) else "n/a"


def _seconds(x: float) -> str:
    if not np.isfinite(x):
        return "n/a"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.1f}" if abs(x) >= 1 or x == 0 else f"{x:.2g}"


def _tests_phrase(tests_used: tuple[str, ...]) -> str:
    if tests_used == ("mann_whitney", "wilcoxon"):
        return f"{TEST_NAMES['wilcoxon']}, or Mann-Whitney U test where the seeds differ"
    return " or ".join(TEST_NAMES[t] for t in tests_used) or "no test was possible"


def _caption(lb: Leaderboard, latex: bool) -> str:
    e, pm, mark = (latex_escape, r"$\pm$", _LATEX_MARK) if latex else (str, "±", SIGNIFICANT_MARK)
    lo, hi = lb.seed_counts
    seeds = f"{lo} seeds" if lo == hi else f"{lo}{'--' if latex else '-'}{hi} seeds"
    p_lt = f"$p < {lb.alpha:g}$" if latex else f"p < {lb.alpha:g}"
    parts = [
        f"Metric: {e(lb.metric)} ({'higher' if lb.higher_is_better else 'lower'} is better), "
        f"mean {pm} std over {seeds} per cell; space {e(lb.space)}, protocol {e(lb.protocol)}.",
        "Bold: best mean per dataset.",
    ]
    if lb.control is not None:
        parts.append(
            f"{mark} {p_lt} vs {e(lb.control)} ({_tests_phrase(lb.tests_used)}), "
            "Holm-corrected over the methods of each dataset."
        )
    parts.append("Search cost: mean simulated and wall-clock seconds per successful run.")
    failed = sum(c.n_failed for c in lb.cost.values())
    if failed:
        parts.append(f"{failed} failed run(s) excluded.")
    if lb.synthetic:
        banner = rf"\textbf{{{_SYNTHETIC_BANNER.upper()}}}" if latex else _SYNTHETIC_BANNER.upper()
        parts.insert(0, f"{banner}.")
    return " ".join(parts)


def _cell_text(cell: Cell | None, digits: int, pm: str) -> tuple[str, bool, bool]:
    """Formatted ``mean ± std`` of a cell, whether it is best, whether it is significant."""
    if cell is None:
        return "", False, False
    body = _num(cell.mean, digits)
    if np.isfinite(cell.std):
        body += f" {pm} {_num(cell.std, digits)}"
    return body, cell.is_best, cell.significant


def to_markdown(lb: Leaderboard, digits: int = 2) -> str:
    """GitHub Markdown table: ``mean ± std``, best in bold, † for significant vs control."""
    header = ["method", *lb.datasets, "sim. seconds", "wall seconds"]
    lines = []
    if lb.synthetic:
        lines += [f"> **{_SYNTHETIC_BANNER.upper()}**", ""]
    lines += [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|",
    ]
    for method in lb.methods:
        row = [method]
        for dataset in lb.datasets:
            body, best, sig = _cell_text(lb.cell(method, dataset), digits, "±")
            body = f"**{body}**" if best and body else body or "—"
            row.append(body + (SIGNIFICANT_MARK if sig else ""))
        cost = lb.cost[method]
        row += [_seconds(cost.sim_seconds), _seconds(cost.wall_seconds)]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", _caption(lb, latex=False), ""]
    return "\n".join(lines)


def to_latex(lb: Leaderboard, digits: int = 2) -> str:
    """A booktabs ``table`` environment with the same content as :func:`to_markdown`."""
    cols = "l" + "c" * len(lb.datasets) + "rr"
    header = ["Method", *map(latex_escape, lb.datasets), "Sim. s", "Wall s"]
    lines = []
    if lb.synthetic:
        lines.append(f"% {_SYNTHETIC_BANNER.upper()}")
    lines += [r"\begin{table}[t]", r"\centering"]
    caption = _caption(lb, latex=True)
    lines += [rf"\caption{{{caption}}}", rf"\begin{{tabular}}{{{cols}}}", r"\toprule"]
    lines.append(" & ".join(header) + r" \\")
    lines.append(r"\midrule")
    for method in lb.methods:
        row = [latex_escape(method)]
        for dataset in lb.datasets:
            body, best, sig = _cell_text(lb.cell(method, dataset), digits, r"$\pm$")
            body = rf"\textbf{{{body}}}" if best and body else body or "--"
            row.append(body + (_LATEX_MARK if sig else ""))
        cost = lb.cost[method]
        row += [_seconds(cost.sim_seconds), _seconds(cost.wall_seconds)]
        lines.append(" & ".join(row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(lines)
