"""The selection study of a supernet report: each rule against ``magnitude`` on the same
supernets, paired by run.

:func:`compare_selections` computes every number once (per-seed differences, a Student-t
interval of the mean difference, P(a > b) over the pairs, the exact Wilcoxon p with the
smallest p attainable at this n, the number of collapsed supernets, a rough sample size for
80% power); :func:`comparison_markdown`, :func:`comparison_latex` and the paired plot
(:func:`paired_plot_data` -> :func:`plot_paired_selection`) only present it.

A topology cell is *collapsed* when no path from its input to its output passes a parametric
op (a 1x1 or 3x3 convolution): it computes no learned function of its input (only none, skip
and pooling on its live paths, or no live path at all), the failure magnitude selection is
known for. The size space has no such notion, and its rows leave the count out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from harness import stats
from harness.report.axes import new_axes
from harness.report.leaderboard_writers import latex_table, slug
from harness.report.names import SELECTION_NAMES, display_dataset, display_label
from harness.report.style import method_style
from harness.spaces import tss

FloatArray = npt.NDArray[np.float64]
COMPARISON_GROUP: tuple[str, ...] = ("method", "protocol", "dataset", "eval_dataset")
ALPHA, POWER, CONFIDENCE = 0.05, 0.8, 0.95


def collapsed_cell(arch: str) -> bool:
    """Whether the tss cell ``arch`` has no parametric op on any input-to-output path (see
    the module docstring); e.g. ``|none~0|+|none~0|nor_conv_3x3~1|+|none~0|none~1|nor_conv_3x3~2|``
    (its convolutions see no input) is collapsed."""
    ops = [tss.OPS[o] for o in tss.str_to_ops(arch)]
    live = {edge: op != "none" for edge, op in zip(tss.EDGES, ops, strict=True)}
    reached = [True] + [False] * (tss.NUM_NODES - 1)  # from the input, over live edges
    for src, dst in tss.EDGES:  # EDGES is in topological order of dst
        reached[dst] |= reached[src] and live[(src, dst)]
    leads = [False] * (tss.NUM_NODES - 1) + [True]  # to the output, over live edges
    for src, dst in sorted(tss.EDGES, key=lambda e: -e[0]):
        leads[src] |= leads[dst] and live[(src, dst)]
    return not any(
        op in tss.PARAMETRIC_OPS and reached[src] and leads[dst]
        for (src, dst), op in zip(tss.EDGES, ops, strict=True)
    )


@dataclass(frozen=True)
class PairedComparison:
    """Selection rule ``a`` vs ``b`` on the same supernets (paired by run) for one group.

    Per pair, in seed order: ``seeds``, ``values_a``, ``values_b``; ``collapsed``: whether the
    ``magnitude`` rule's architecture collapsed (None: neither rule is magnitude, or the space
    has no collapse notion). ``ci_low``/``ci_high``: Student-t interval of the mean difference
    a - b; ``probability_of_improvement``: share of pairs where a is better (ties one half);
    ``statistic``/``p_value``: two-sided exact Wilcoxon signed-rank test of the pairs;
    ``min_p``: the smallest p it can give at this n; ``effect_size``: mean / sd of the
    differences; ``n_needed``: pairs a one-sided paired t-test at 0.05 needs for power 0.8
    against that effect (None: no effect or sd 0).
    """

    group: tuple[str, ...]
    a: str
    b: str
    metric: str
    n: int
    seeds: tuple[int, ...]
    values_a: tuple[float, ...]
    values_b: tuple[float, ...]
    collapsed: tuple[bool, ...] | None
    mean_a: float
    mean_b: float
    mean_difference: float
    ci_low: float
    ci_high: float
    probability_of_improvement: float
    statistic: float
    p_value: float
    min_p: float
    effect_size: float
    n_needed: int | None

    @property
    def differences(self) -> tuple[float, ...]:
        return tuple(x - y for x, y in zip(self.values_a, self.values_b, strict=True))

    @property
    def n_collapsed(self) -> int | None:
        return None if self.collapsed is None else sum(self.collapsed)

    @property
    def testable(self) -> bool:
        """Whether the test could reach p < 0.05 with these pairs at all."""
        return self.min_p < ALPHA


def _collapsed(side: Mapping[str, Any]) -> bool | None:
    arch, space = side.get("arch"), side.get("space")
    if space != "tss" or not isinstance(arch, str):
        return None
    return collapsed_cell(arch)


def _comparison(
    ident: tuple[str, ...], a: str, b: str, metric: str, pairs: list[Any]
) -> PairedComparison:
    pairs = sorted(pairs, key=lambda p: (p[0], str(p[1])))
    x = np.array([p[2][a]["value"] for p in pairs])
    y = np.array([p[2][b]["value"] for p in pairs])
    diff = x - y
    rule = a if a == "magnitude" else b if b == "magnitude" else None
    flags = None if rule is None else [_collapsed(p[2][rule]) for p in pairs]
    collapsed = None if flags is None or None in flags else tuple(bool(f) for f in flags)
    test = stats.wilcoxon(x, y)
    low, high = stats.t_interval(diff, CONFIDENCE)
    sd = float(diff.std(ddof=1)) if diff.size > 1 else float("nan")
    d = float(diff.mean() / sd) if sd > 0 else float("nan")
    nonzero = int(np.sum(diff != 0))
    return PairedComparison(
        ident, a, b, metric, len(pairs), tuple(int(p[0]) for p in pairs), tuple(x.tolist()),
        tuple(y.tolist()), collapsed, float(x.mean()), float(y.mean()), float(diff.mean()),
        low, high, float(np.mean((diff > 0) + 0.5 * (diff == 0))), test.statistic,
        test.p_value, stats.min_p_wilcoxon(nonzero), d,
        stats.paired_t_sample_size(d, ALPHA, POWER) if math.isfinite(d) else None,
    )  # fmt: skip


def compare_selections(
    rows: Iterable[Mapping[str, Any]],
    a: str = "perturbation",
    b: str = "magnitude",
    metric: str = "test_acc",
    group: Sequence[str] = COMPARISON_GROUP,
) -> list[PairedComparison]:
    """Pair rows of selection ``a`` and ``b`` that share a ``run_key`` (the same supernet) and
    an eval task, within each ``group``; rows with a null ``metric`` or status other than
    ``ok`` are left out. Higher ``metric`` is better (test accuracy)."""
    paired: dict[tuple[str, ...], dict[tuple[Any, Any], dict[str, Any]]] = {}
    for row in rows:
        value = row.get(metric)
        if row.get("status", "ok") != "ok" or value is None or row["selection"] not in (a, b):
            continue
        if isinstance(value, float) and math.isnan(value):
            continue
        ident = tuple(str(row[g]) for g in group)
        cell = paired.setdefault(ident, {}).setdefault((row["run_key"], row["eval_dataset"]), {})
        cell["seed"] = row.get("seed", 0)
        cell[row["selection"]] = {"value": float(value), "arch": row.get("arch"),
                                  "space": row.get("space")}  # fmt: skip
    out = []
    for ident, cells in sorted(paired.items()):
        both = [(c["seed"], key, c) for key, c in cells.items() if a in c and b in c]
        if both:
            out.append(_comparison(ident, a, b, metric, both))
    return out


def _p_text(c: PairedComparison) -> str:
    return f"{c.p_value:.3g}" if c.testable else f"too few seeds (min p = {c.min_p:.2g})"


def _needed(c: PairedComparison) -> str:
    return "—" if c.n_needed is None else str(c.n_needed)


def _collapsed_text(c: PairedComparison) -> str:
    return "—" if c.n_collapsed is None else f"{c.n_collapsed}/{c.n}"


def comparison_markdown(comparisons: Sequence[PairedComparison]) -> str:
    """A Markdown table of :func:`compare_selections`' output, then its per-seed differences
    (numbers formatted only)."""
    if not comparisons:
        return "_no paired runs_\n"
    first = comparisons[0]
    head = [*COMPARISON_GROUP[: len(first.group)], "n", f"{first.a}", f"{first.b}"]
    head += ["mean diff", "P(a>b)", "95% t-interval", "collapsed", "Wilcoxon p", "min p"]
    head += ["n for 80% power"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in comparisons:
        cells = [*c.group, str(c.n), f"{c.mean_a:.2f}", f"{c.mean_b:.2f}"]
        cells += [f"{c.mean_difference:+.2f}", f"{c.probability_of_improvement:.2f}"]
        cells += [f"[{c.ci_low:+.2f}, {c.ci_high:+.2f}]", _collapsed_text(c), _p_text(c)]
        cells += [f"{c.min_p:.2g}", _needed(c)]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"Per seed ({first.metric}; a = `{first.a}`, b = `{first.b}`):", ""]
    lines += ["| eval task | method | seed | a | b | a - b | magnitude collapsed |"]
    lines += ["|---|---|---:|---:|---:|---:|---|"]
    for c in comparisons:
        flags = c.collapsed or (None,) * c.n
        for seed, x, y, flag in zip(c.seeds, c.values_a, c.values_b, flags, strict=True):
            mark = "—" if flag is None else ("yes" if flag else "no")
            lines.append(f"| {c.group[-1]} | {c.group[0]} | {seed} | {x:.2f} | {y:.2f} | "
                         f"{x - y:+.2f} | {mark} |")  # fmt: skip
    return "\n".join(lines) + "\n"


#: What selection.md and selection.tex say the columns mean.
NOTE = (
    "Paired by supernet (one trained supernet per run, both rules applied to it): mean test "
    "accuracy (%) of each rule; mean difference a - b with its 95% Student-t interval; "
    "P(a>b): the share of supernets on which a beats b (ties count one half), over the pairs; "
    "collapsed: supernets whose magnitude architecture has no parametric op (convolution) on "
    "any path from the cell's input to its output (only none, skip and pooling there, or no "
    "path at all; topology space only); Wilcoxon p: two-sided exact signed-rank test per row, "
    "not corrected across rows; min p: the smallest p that test can give with n pairs "
    "(2 / 2^n), and where it is not below 0.05 the table says 'too few seeds' instead of a "
    "p-value; n for 80% power: the supernets a one-sided paired t-test at 0.05 would need to "
    "detect the observed standardized difference d = mean / sd with power 0.8, a rough guide "
    "only, since d from a few seeds is itself very uncertain."
)


def comparison_latex(comparisons: Sequence[PairedComparison]) -> str:
    """The comparison table as a one-column booktabs table with caption and label."""
    if not comparisons:
        return ""
    first = comparisons[0]
    a, b = (SELECTION_NAMES.get(r, r) for r in (first.a, first.b))
    head = ["Method", "Task", "$n$", b, a, r"$\Delta$ [95\% CI]", "P($a>b$)", "Coll.", "$p$"]
    rows = []
    for c in comparisons:
        p = f"{c.p_value:.2g}" if c.testable else f"n/a (min {c.min_p:.2g})"
        coll = "--" if c.n_collapsed is None else f"{c.n_collapsed}/{c.n}"
        rows.append([display_label(c.group[0], True), display_dataset(c.group[-1], True),
                     str(c.n), f"{c.mean_b:.2f}", f"{c.mean_a:.2f}",
                     f"{c.mean_difference:+.2f} [{c.ci_low:+.2f}, {c.ci_high:+.2f}]",
                     f"{c.probability_of_improvement:.2f}", coll, p])  # fmt: skip
    protocols = ", ".join(sorted({c.group[1] for c in comparisons}))
    caption = (
        f"Selection rule {a} ($a$) against {b} ($b$) on the same supernets (protocol "
        f"{protocols}): test accuracy (\\%) of each; $\\Delta$: mean difference $a - b$ with its "
        "95\\% Student-$t$ interval; P($a>b$): share of supernets where $a$ is better (ties one "
        "half); Coll.: supernets whose magnitude architecture has no convolution on any "
        "input-output path; $p$: two-sided exact Wilcoxon signed-rank test, not corrected across "
        "rows, and n/a where the smallest attainable $p$ at this $n$ (given) is not below 0.05."
    )
    label = f"tab:selection-{slug(first.a)}-vs-{slug(first.b)}"
    return latex_table(caption, label, head, rows, "ll" + "r" * 7)


# --------------------------------------------------------------------------- paired plot
@dataclass(frozen=True)
class PairedPlotData:
    """For one protocol and eval task: per method, the ``b`` and ``a`` values of each supernet
    (``(n,)`` each, seed order) and whether its magnitude architecture collapsed."""

    eval_dataset: str
    protocol: str
    a: str
    b: str
    methods: tuple[str, ...]
    values_a: Mapping[str, FloatArray]
    values_b: Mapping[str, FloatArray]
    collapsed: Mapping[str, npt.NDArray[np.bool_]]


def paired_plot_data(
    comparisons: Sequence[PairedComparison], eval_dataset: str, protocol: str
) -> PairedPlotData:
    """The paired figure's data from :func:`compare_selections` output (group order
    :data:`COMPARISON_GROUP`)."""
    mine = [c for c in comparisons if c.group[1] == protocol and c.group[-1] == eval_dataset]
    if not mine:
        raise ValueError(f"no comparison for {protocol} on {eval_dataset}")
    collapsed = {c.group[0]: np.array(c.collapsed or (False,) * c.n, bool) for c in mine}
    return PairedPlotData(
        eval_dataset, protocol, mine[0].a, mine[0].b, tuple(c.group[0] for c in mine),
        {c.group[0]: np.array(c.values_a) for c in mine},
        {c.group[0]: np.array(c.values_b) for c in mine}, collapsed,
    )  # fmt: skip


def plot_paired_selection(data: PairedPlotData, ax: Axes | None = None) -> Axes:
    """One line per supernet from its ``b`` (left) to its ``a`` (right) accuracy, grouped by
    method; a collapsed magnitude architecture is drawn as a black-edged cross."""
    ax = new_axes(ax, (max(5.0, 2.0 * len(data.methods)), 4.5))
    ticks, names = [], []
    left = data.b == "magnitude"  # the side a collapse marker goes to
    for i, method in enumerate(data.methods):
        x0, x1 = 2.5 * i, 2.5 * i + 1.0
        color = str(method_style(method)["color"])
        for vb, va, flag in zip(data.values_b[method], data.values_a[method],
                                data.collapsed[method], strict=True):  # fmt: skip
            ax.plot([x0, x1], [vb, va], color=color, marker="o", linewidth=1.2, alpha=0.8)
            if flag:
                ax.scatter([x0 if left else x1], [vb if left else va], marker="X", s=90,
                           color=color, edgecolors="black", zorder=4)  # fmt: skip
        ticks += [x0, x1]
        names += [SELECTION_NAMES.get(data.b, data.b), SELECTION_NAMES.get(data.a, data.a)]
        ax.text(x0 + 0.5, 1.01, display_label(method), ha="center", va="bottom",
                transform=ax.get_xaxis_transform(), fontsize="small")  # fmt: skip
    ax.set_xticks(ticks, names)
    ax.set_xlim(-0.5, 2.5 * len(data.methods) - 1.0)
    ax.set_ylabel("test accuracy of the selected architecture (%)")
    ax.set_title(
        f"{display_dataset(data.eval_dataset)}, {data.protocol}: one line per supernet (seed)",
        pad=18,
    )
    if any(f.any() for f in data.collapsed.values()):
        cross = Line2D([], [], marker="X", color="grey", markeredgecolor="black", linestyle="",
                       markersize=9, label="magnitude architecture collapsed")  # fmt: skip
        ax.legend(handles=[cross], fontsize="small", loc="lower right")
    return ax
