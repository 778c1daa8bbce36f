"""Display names of methods, selection rules, datasets and metrics: defined here once.

Every table and figure of a report names things through :func:`display_label`,
:func:`display_dataset` and :func:`display_metric`; the registry names (``rea``,
``darts_v1+perturbation``) stay the keys. A label with a configuration keeps it:
``rea(population_size=20)`` -> ``REA (population_size=20)``, ``rea#2`` -> ``REA #2``.
"""

from __future__ import annotations

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


#: Display name of every registered method (``harness.registry.method_names()``), plain text
#: and LaTeX (only where they differ).
METHOD_NAMES: dict[str, str] = {
    "random_search": "random search",
    "rea": "REA",
    "reinforce": "REINFORCE",
    "alpha_nas": "alpha-NAS",
    "darts_v1": "DARTS-V1",
    "darts_v2": "DARTS-V2",
    "fixed_alpha": "fixed alpha",
    "gaea": "GAEA",
    "gdas": "GDAS",
    "drnas": "DrNAS",
    "rarts": "RARTS",
    "dnal": "DNAL",
    "tas": "TAS",
    "fbnet_v2": "FBNet-V2",
    "tunas": "TuNAS",
}
_METHOD_LATEX: dict[str, str] = {"alpha_nas": r"$\alpha$-NAS", "fixed_alpha": r"fixed $\alpha$"}

#: Selection rules of a supernet (``method+rule`` labels); DARTS-PT's perturbation is "PT".
SELECTION_NAMES: dict[str, str] = {"magnitude": "magnitude", "perturbation": "PT", "topk": "top-K"}
#: Method + rule combinations with a published name: DARTS-PT is the perturbation selection on
#: a DARTS supernet, "fix alpha" its variant on a supernet whose alpha never trains.
_COMBINED: dict[str, tuple[str, str]] = {
    "darts_v1+perturbation": ("DARTS-PT", "DARTS-PT"),
    "fixed_alpha+perturbation": ("DARTS-PT (fix alpha)", r"DARTS-PT (fix $\alpha$)"),
}

DATASET_NAMES: dict[str, str] = {
    "cifar10": "CIFAR-10",
    "cifar100": "CIFAR-100",
    "ImageNet16-120": "ImageNet16-120",
}

#: A metric's name with its unit, as a table caption or an axis names it.
METRIC_NAMES: dict[str, str] = {
    "test_acc": "test accuracy (%)",
    "valid_acc": "validation accuracy (%)",
    "regret": "regret (percentage points of test accuracy)",
    "rank": "rank among all architectures (1 = best)",
    "percentile": "percentile among all architectures (100 = best)",
    "sim_seconds": "simulated search time (s)",
    "wall_seconds": "wall-clock time (s)",
    "queries": "queries",
}


def split_label(label: str) -> tuple[str, str, str]:
    """``(method, config suffix, rule)`` of a label: ``"rea(population_size=20)"`` ->
    ``("rea", "(population_size=20)", "")``; ``"dnal#2+magnitude"`` -> ``("dnal", "#2",
    "magnitude")``. Only a known rule after the last ``+`` counts as a rule."""
    head, plus, rule = label.rpartition("+")
    if not plus or rule not in SELECTION_NAMES:
        head, rule = label, ""
    cut = min((i for i in (head.find("("), head.find("#")) if i >= 0), default=len(head))
    return head[:cut], head[cut:], rule


def display_label(label: str, latex: bool = False) -> str:
    """The display name of a leaderboard or figure label (module docstring); an unknown
    method keeps its name. ``latex`` escapes what needs it."""
    method, config, rule = split_label(label)
    if not config and rule and f"{method}+{rule}" in _COMBINED:
        plain, tex = _COMBINED[f"{method}+{rule}"]
        return tex if latex else plain
    name = METHOD_NAMES.get(method, method)
    if latex:
        name = _METHOD_LATEX.get(method) or latex_escape(name)
    suffix = latex_escape(config) if latex else config
    if suffix:
        name += f" {suffix}"
    if rule:
        name += f" + {SELECTION_NAMES[rule]}"
    return name


def display_dataset(dataset: str, latex: bool = False) -> str:
    """``cifar10`` -> ``CIFAR-10``; an unknown name is kept (escaped for LaTeX)."""
    name = DATASET_NAMES.get(dataset, dataset)
    return latex_escape(name) if latex else name


def display_metric(metric: str) -> str:
    """``test_acc`` -> ``test accuracy (%)``; an unknown metric keeps its name."""
    return METRIC_NAMES.get(metric, metric)
