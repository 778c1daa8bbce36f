"""The one place a report figure gets fresh axes when the caller passes none."""

from __future__ import annotations

from matplotlib.axes import Axes


def new_axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    """``ax``, or the axes of a new figure of ``figsize`` inches when ``ax`` is None."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt  # only when the caller wants a fresh figure

    _, new = plt.subplots(figsize=figsize)
    return new
