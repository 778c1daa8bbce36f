"""One colour, marker and line style per method, shared by every figure.

Known methods have a fixed entry; any other name gets a deterministic style derived from a
hash of its name (stable across processes, unlike Python's salted ``hash``). A label with a
configuration suffix such as ``"rea#1"`` has its method's colour; :func:`label_styles` gives
the labels of one figure distinct line styles and markers within that colour (each config of
a method its own line style, each selection rule its own marker).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

# Black-box searchers are solid, one-shot (supernet) methods dashed, so the family reads
# at a glance; colours are the Tableau palette plus a few distinct extras.
_KNOWN: dict[str, tuple[str, str, str]] = {
    "random_search": ("#7f7f7f", "o", "-"),
    "rea": ("#1f77b4", "s", "-"),
    "reinforce": ("#ff7f0e", "^", "-"),
    "alpha_nas": ("#2ca02c", "v", "--"),
    "darts_v1": ("#d62728", "D", "--"),
    "darts_v2": ("#9467bd", "P", "--"),
    "fixed_alpha": ("#000000", ">", "--"),
    "rarts": ("#8c564b", "X", "--"),
    "gaea": ("#e377c2", "*", "--"),
    "gdas": ("#bcbd22", "h", "--"),
    "drnas": ("#17becf", "p", "--"),
    "dnal": ("#393b79", "<", "--"),
    "tas": ("#637939", "d", "-."),
    "fbnet_v2": ("#843c39", "8", "-."),
    "tunas": ("#7b4173", "H", "-."),
}

_FALLBACK_COLORS = (
    "#aec7e8",
    "#ffbb78",
    "#98df8a",
    "#ff9896",
    "#c5b0d5",
    "#c49c94",
    "#f7b6d2",
    "#dbdb8d",
    "#9edae5",
    "#637939",
    "#8c6d31",
    "#843c39",
)
_FALLBACK_MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*", "h", "p", "<", ">")
_FALLBACK_LINESTYLES = ("-.", ":", (0, (5, 1, 1, 1)))  # distinct from the known table


#: Marker of each supernet selection rule (a ``method+rule`` label), in every figure.
RULE_MARKERS: dict[str, str] = {"magnitude": "o", "perturbation": "^", "topk": "s"}
_VARIANT_LINESTYLES: tuple[object, ...] = (
    "-", "--", ":", "-.", (0, (5, 1, 1, 1)), (0, (1, 1)), (0, (8, 2)), (0, (3, 1, 1, 1, 1, 1)),
)  # fmt: skip
_VARIANT_MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*", "h", "p", "<", ">")


def base_method(label: str) -> str:
    """The method name of a leaderboard label (``"rea#1"``, ``"rea(population_size=20)"``,
    ``"darts_v1+magnitude"`` -> ``"rea"``, ``"rea"``, ``"darts_v1"``)."""
    return label.split("#", 1)[0].split("(", 1)[0].split("+", 1)[0]


def method_style(name: str) -> dict[str, object]:
    """Matplotlib keyword arguments ``color``, ``marker`` and ``linestyle`` for ``name``."""
    key = base_method(name)
    if key in _KNOWN:
        color, marker, linestyle = _KNOWN[key]
        return {"color": color, "marker": marker, "linestyle": linestyle}
    digest = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big")
    return {
        "color": _FALLBACK_COLORS[digest % len(_FALLBACK_COLORS)],
        "marker": _FALLBACK_MARKERS[(digest // 16) % len(_FALLBACK_MARKERS)],
        "linestyle": _FALLBACK_LINESTYLES[(digest // 256) % len(_FALLBACK_LINESTYLES)],
    }


def known_methods() -> tuple[str, ...]:
    """Names with a fixed style entry."""
    return tuple(_KNOWN)


def _rule(label: str) -> str:
    _, plus, rule = label.rpartition("+")
    return rule if plus and rule in RULE_MARKERS else ""


def label_styles(labels: Iterable[str]) -> dict[str, dict[str, object]]:
    """A style per label of one figure: the method's colour; the first config of a method (in
    sorted order, the bare method name first) keeps its line style and marker, each further
    config gets the next line style and marker not used by the method; a selection rule
    (``+magnitude``, ``+perturbation``, ``+topk``) sets the marker (:data:`RULE_MARKERS`).
    Labels are told apart by (colour, line style, marker) as long as a method has fewer than
    eight configs."""
    unique = sorted(set(labels))
    configs: dict[str, list[str]] = {}
    for label in unique:
        rule = _rule(label)
        config = label[: -len(rule) - 1] if rule else label
        group = configs.setdefault(base_method(label), [])
        if config not in group:
            group.append(config)
    out = {}
    for label in unique:
        rule = _rule(label)
        config = label[: -len(rule) - 1] if rule else label
        style = method_style(label)
        group = sorted(configs[base_method(label)], key=lambda c: (c != base_method(c), c))
        i = group.index(config)
        if i:
            lines = [ls for ls in _VARIANT_LINESTYLES if ls != style["linestyle"]]
            marks = [m for m in _VARIANT_MARKERS if m != style["marker"]]
            style["linestyle"] = lines[(i - 1) % len(lines)]
            style["marker"] = marks[(i - 1) % len(marks)]
        if rule:
            style["marker"] = RULE_MARKERS[rule]
        out[label] = style
    return out
