"""One colour, marker and line style per method, shared by every figure.

Known methods have a fixed entry; any other name gets a deterministic style derived from a
hash of its name (stable across processes, unlike Python's salted ``hash``). A label with a
configuration suffix such as ``"rea#1"`` is styled like its method ``"rea"``.
"""

from __future__ import annotations

import hashlib

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
