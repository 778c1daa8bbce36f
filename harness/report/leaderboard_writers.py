"""The two leaderboard writers, Markdown and LaTeX: formatting only, no number computed here.

Both render a :class:`~harness.report.leaderboard.Leaderboard` built by
:func:`~harness.report.leaderboard.build_leaderboard`, name methods and datasets by
:mod:`harness.report.names`, and say in the caption what the marks and the bold mean: the
test, the pairing, the correction family, the seeds, and where there are too few seeds for any
test to reach the level.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from harness.report.names import display_dataset, display_label, display_metric, latex_escape
from harness.report.significance import TEST_NAMES

if TYPE_CHECKING:
    from harness.report.leaderboard import Cell, Leaderboard

logger = logging.getLogger(__name__)

BETTER_MARK, WORSE_MARK = "†", "‡"
_LATEX_BETTER, _LATEX_WORSE = r"$^\dagger$", r"$^\ddagger$"
#: The first line of every LaTeX table: the packages it needs.
LATEX_PACKAGES = (
    r"% Needs \usepackage{booktabs} (\toprule, \midrule, \cmidrule, \bottomrule) and "
    r"\usepackage{adjustbox} (max width)."
)
PLUS_MINUS = {False: "±", True: r"$\pm$"}
_SYNTHETIC_BANNER = "SYNTHETIC DATA: these numbers do not come from the benchmark"


def _num(x: float | None, digits: int) -> str:
    return f"{x:.{digits}f}" if x is not None and np.isfinite(x) else "n/a"


def seconds(x: float) -> str:
    """Seconds for a table: thousands separated above 100, two significant digits below 1."""
    if not np.isfinite(x):
        return "n/a"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.1f}" if abs(x) >= 1 or x == 0 else f"{x:.2g}"


def _names(datasets: Sequence[str], latex: bool) -> str:
    return ", ".join(display_dataset(d, latex) for d in datasets)


def tests_phrase(tests_used: Sequence[str]) -> str:
    """How a caption names the tests a family used."""
    if tuple(tests_used) == ("mann_whitney", "wilcoxon"):
        return f"{TEST_NAMES['wilcoxon']} where both cover the same seeds, else Mann-Whitney U"
    return " or ".join(TEST_NAMES[t] for t in tests_used) or "no test was possible"


def _first_sentence(lb: Leaderboard, latex: bool) -> str:
    e, pm = (latex_escape, r"$\pm$") if latex else (str, "±")
    lo, hi = lb.seed_counts
    seeds = f"{lo} seeds" if lo == hi else f"{lo}{'--' if latex else '-'}{hi} seeds"
    what = display_metric(lb.metric)
    text = (
        f"{e(what[0].upper() + what[1:])} of the chosen architecture "
        f"({'higher' if lb.higher_is_better else 'lower'} is better), mean {pm} std over "
        f"{seeds} per cell; space {e(lb.space)}, protocol {e(lb.protocol)}"
    )
    if lb.fidelity:
        text += f"; {e(lb.fidelity)}"
    budgets = [(d, b) for d, b in lb.budgets.items() if np.isfinite(b)]
    if budgets:
        amounts = " / ".join(f"{b:,.0f}" for _, b in budgets)
        where = " / ".join(display_dataset(d, latex) for d, _ in budgets)
        text += f"; search budgets {amounts} simulated s on {where}"
    return text + "."


def _floor_phrase(lb: Leaderboard, datasets: Sequence[str], family: str, latex: bool) -> str:
    fams = lb.control_family if family == "control" else lb.best_family
    floors = sorted({fams[d][1] for d in datasets})
    p = "$p$" if latex else "p"
    floor = " to ".join(dict.fromkeys(f"{f:.2g}" for f in (floors[0], floors[-1])))
    return f"the smallest Holm-adjusted {p} attainable with these seeds is {floor}"


def _marks(lb: Leaderboard, latex: bool) -> list[str]:
    if lb.control is None:
        return []
    ctrl = display_label(lb.control, latex)
    better, worse = (_LATEX_BETTER, _LATEX_WORSE) if latex else (BETTER_MARK, WORSE_MARK)
    p_lt = f"$p < {lb.alpha:g}$" if latex else f"p < {lb.alpha:g}"
    tested = [d for d in lb.datasets if lb.control_family[d][0] > 0]
    can = [d for d in tested if lb.marks_possible(d)]
    cannot = [d for d in tested if not lb.marks_possible(d)]
    out = []
    if can:
        sizes = "/".join(str(n) for n in sorted({lb.control_family[d][0] for d in can}))
        where = "" if not cannot else f" on {_names(can, latex)}"
        out.append(
            f"{better} significantly better, {worse} significantly worse than {ctrl}{where} "
            f"({p_lt}; {tests_phrase(lb.tests_used)}, {lb.pairing}; Holm over the {sizes} "
            f"comparisons with {ctrl} on each dataset)."
        )
    if cannot:
        lead = "No significance marks" if not can else f"No marks on {_names(cannot, latex)}"
        out.append(
            f"{lead}: too few seeds for any test against {ctrl} to reach {p_lt} "
            f"({_floor_phrase(lb, cannot, 'control', latex)})."
        )
    return out


def _bold(lb: Leaderboard, latex: bool) -> str:
    tested = [d for d in lb.datasets if lb.bold_tested(d)]
    untested = [d for d in lb.datasets if not lb.bold_tested(d)]
    p_lt = f"$p < {lb.alpha:g}$" if latex else f"p < {lb.alpha:g}"
    parts = []
    if tested:
        where = "" if not untested else f" on {_names(tested, latex)}"
        sizes = "/".join(str(n) for n in sorted({lb.best_family[d][0] for d in tested}))
        parts.append(
            f"Bold{where}: the best mean and every method not significantly different from it "
            f"(same test, Holm over the {sizes} comparisons with the best, {p_lt})."
        )
    if untested:
        sized = [d for d in untested if lb.best_family[d][0] > 0]
        why = (
            f": too few seeds to test the others against it "
            f"({_floor_phrase(lb, sized, 'best', latex)})"
            if sized
            else ""
        )
        where = "" if not tested else f" on {_names(untested, latex)}"
        parts.append(f"Bold{where}: the best mean only{why}.")
    return " ".join(parts)


def _robust_sentence(lb: Leaderboard, latex: bool) -> str:
    percent = r"\%" if latex else "%"
    text = (
        f"IQM: interquartile mean over seeds (25{percent} trimmed each side) with its "
        f"{100 * lb.confidence:g}{percent} percentile bootstrap interval ({lb.n_boot} resamples)"
    )
    if lb.control is not None:
        ctrl = display_label(lb.control, latex)
        text += (
            f"; P(better): probability that a run of the method beats a run of {ctrl} "
            "(ties count one half), with its stratified bootstrap interval"
        )
    return text + "."


def _cost_sentence(lb: Leaderboard, latex: bool) -> str:
    e = latex_escape if latex else str
    return (
        "Search cost per task (the budgets differ, so it is never averaged across tasks): "
        "means over successful runs of the simulated seconds the oracle charged (sim.) and of "
        f"the wall-clock seconds of one run (wall: {e(lb.parallelism)})."
    )


def _caption(lb: Leaderboard, latex: bool, robust: bool = False, cost: bool = False) -> str:
    parts = [_first_sentence(lb, latex), *_marks(lb, latex), _bold(lb, latex)]
    if robust:
        parts.append(_robust_sentence(lb, latex))
    if cost:
        parts.append(_cost_sentence(lb, latex))
    if lb.caveats and latex:  # the Markdown lists them under its caption
        parts.append(f"The sweep recorded {len(lb.caveats)} data caveat(s) (see its manifest).")
    if lb.excluded:
        counts = ", ".join(f"{n} {status}" for status, n in lb.excluded.items())
        parts.append(f"{counts} run(s) excluded.")
    if lb.synthetic:
        banner = rf"\textbf{{{_SYNTHETIC_BANNER.upper()}}}" if latex else _SYNTHETIC_BANNER.upper()
        parts.insert(0, f"{banner}.")
    return " ".join(p for p in parts if p)


def _cell_text(cell: Cell | None, digits: int, latex: bool) -> str:
    """``mean ± std`` of a cell, bold where :attr:`Cell.bold`, with its mark."""
    if cell is None:
        return "--" if latex else "—"
    body = _num(cell.mean, digits)
    if np.isfinite(cell.std):
        body += f" {PLUS_MINUS[latex]} {_num(cell.std, digits)}"
    if cell.bold:
        body = rf"\textbf{{{body}}}" if latex else f"**{body}**"
    if cell.better:
        body += _LATEX_BETTER if latex else BETTER_MARK
    elif cell.worse:
        body += _LATEX_WORSE if latex else WORSE_MARK
    return body


def _interval(point: float | None, low: float | None, high: float | None, digits: int) -> str:
    if point is None:
        return "—"
    return f"{_num(point, digits)} [{_num(low, digits)}, {_num(high, digits)}]"


def _sub_cells(lb: Leaderboard, method: str, dataset: str, kind: str, digits: int) -> str:
    """One sub-column of a (method, dataset): ``mean``, ``iqm``, ``poi``, ``sim``, ``wall``."""
    cell, cost = lb.cell(method, dataset), lb.cost.get((method, dataset))
    if kind in ("sim", "wall"):
        return (
            "—"
            if cost is None
            else seconds(cost.sim_seconds if kind == "sim" else cost.wall_seconds)
        )
    if cell is None:
        return "—"
    if kind == "iqm":
        return _interval(cell.iqm, cell.iqm_low, cell.iqm_high, digits)
    return _interval(cell.poi, cell.poi_low, cell.poi_high, 2)


def _markdown_table(header: list[str], rows: list[list[str]], right: int) -> list[str]:
    align = ["---"] + ["---:"] * right + ["---"] * (len(header) - 1 - right)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def to_markdown(lb: Leaderboard, digits: int = 2, *, robust: bool = True, cost: bool = True) -> str:
    """GitHub Markdown: the main table (``mean ± std``, bold, † better / ‡ worse than the
    control, the registry label last), then the IQM / P(better) table (``robust``) and the
    per-task cost table (``cost``), each with its caption."""
    datasets = [display_dataset(d) for d in lb.datasets]
    lines = [f"> **{_SYNTHETIC_BANNER.upper()}**", ""] if lb.synthetic else []
    rows = [
        [display_label(m), *(_cell_text(lb.cell(m, d), digits, False) for d in lb.datasets),
         f"`{m}`"]
        for m in lb.methods
    ]  # fmt: skip
    lines += _markdown_table(["method", *datasets, "label"], rows, len(datasets))
    lines += ["", _caption(lb, latex=False), ""]
    if lb.caveats:
        lines += ["Data caveats the sweep recorded:", "", *(f"* {c}" for c in lb.caveats), ""]
    kinds = ["iqm", *(["poi"] if lb.control is not None else [])]
    names = {"iqm": "IQM [CI]", "poi": "P(better) [CI]", "sim": "sim. s", "wall": "wall s"}
    for flag, these, sentence in (
        (robust, kinds, _robust_sentence(lb, False)),
        (cost, ["sim", "wall"], _cost_sentence(lb, False)),
    ):
        if not flag:
            continue
        header = ["method", *(f"{d} {names[k]}" for d in datasets for k in these)]
        rows = [
            [display_label(m), *(_sub_cells(lb, m, d, k, digits) for d in lb.datasets
                                 for k in these)]
            for m in lb.methods
        ]  # fmt: skip
        lines += [*_markdown_table(header, rows, len(header) - 1), "", sentence, ""]
    return "\n".join(lines)


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()


def latex_table(
    caption: str,
    label: str,
    header: list[str],
    rows: list[list[str]],
    cols: str,
    *,
    wide: bool = False,
    groups: Sequence[tuple[str, int]] = (),
    comment: str = "",
) -> str:
    """A booktabs table in a float with caption and ``\\label``, shrunk to the column
    (``wide``: the page, ``table*``) by adjustbox; ``groups``: (title, width) spans above the
    header, each with a ``\\cmidrule``. The first line names the packages it needs."""
    env, width = ("table*", r"\textwidth") if wide else ("table", r"\columnwidth")
    lines = [LATEX_PACKAGES, *([comment] if comment else [])]
    lines += [rf"\begin{{{env}}}[t]", r"\centering", rf"\caption{{{caption}}}"]
    lines += [rf"\label{{{label}}}", rf"\begin{{adjustbox}}{{max width={width}}}"]
    lines += [rf"\begin{{tabular}}{{{cols}}}", r"\toprule"]
    if groups:
        spans, rules, start = [""], [], 2
        for title, n in groups:
            spans.append(rf"\multicolumn{{{n}}}{{c}}{{{title}}}")
            rules.append(rf"\cmidrule(lr){{{start}-{start + n - 1}}}")
            start += n
        lines += [" & ".join(spans) + r" \\", "".join(rules)]
    lines += [" & ".join(header) + r" \\", r"\midrule"]
    lines += [" & ".join(r) + r" \\" for r in rows]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{adjustbox}", rf"\end{{{env}}}", ""]
    return "\n".join(lines)


def _latex_cell(lb: Leaderboard, method: str, dataset: str, kind: str, digits: int) -> str:
    if kind == "mean":
        return _cell_text(lb.cell(method, dataset), digits, True)
    return _sub_cells(lb, method, dataset, kind, digits).replace("—", "--")


def to_latex(
    lb: Leaderboard,
    digits: int = 2,
    *,
    wide: bool = False,
    iqm: bool = False,
    poi: bool = False,
    cost: bool = False,
) -> str:
    """The leaderboard as a booktabs table that fits one column of a two-column paper
    (``wide``: the page width, ``table*``); optional sub-columns per dataset: IQM with its
    interval, probability of improvement over the control, search cost (sim. and wall s)."""
    kinds = ["mean", *(["iqm"] if iqm else []), *(["poi"] if poi and lb.control else [])]
    kinds += ["sim", "wall"] if cost else []
    names = {"mean": r"Mean $\pm$ std", "iqm": r"IQM [CI]", "poi": "P(better) [CI]",
             "sim": r"Sim.\ s", "wall": "Wall s"}  # fmt: skip
    rows = [
        [display_label(m, True), *(_latex_cell(lb, m, d, k, digits) for d in lb.datasets
                                   for k in kinds)]
        for m in lb.methods
    ]  # fmt: skip
    datasets = [display_dataset(d, True) for d in lb.datasets]
    if len(kinds) == 1:
        header, groups = ["Method", *datasets], []
    else:
        header = ["Method", *(names[k] for _ in datasets for k in kinds)]
        groups = [(d, len(kinds)) for d in datasets]
    caption = _caption(lb, True, robust=iqm or poi, cost=cost)
    label = f"tab:{slug(lb.space)}-{slug(lb.protocol)}{'-wide' if wide else ''}"
    comment = f"% {_SYNTHETIC_BANNER.upper()}" if lb.synthetic else ""
    cols = "l" + "c" * (len(kinds) * len(datasets))
    return latex_table(
        caption, label, header, rows, cols, wide=wide, groups=groups, comment=comment
    )
