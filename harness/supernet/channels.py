"""Channel masks and channel-wise interpolation over the size space's width grid.

The size-space supernet runs every module at the widest width (64) and narrows its output to a
mixture of the candidate widths :data:`~harness.spaces.sss.WIDTHS`: by a soft channel mask
(FBNet-V2 masking; DARTS over widths) built from :func:`prefix_masks`, or by a channel map
(TAS's channel-wise interpolation) built from :func:`resize_table`; :func:`narrow` applies
either to a feature map.
"""

from __future__ import annotations

import torch

from harness.spaces import sss as space

WIDTHS = space.WIDTHS
MAX_WIDTH = max(WIDTHS)
NUM_WIDTHS = len(WIDTHS)


def prefix_masks() -> torch.Tensor:
    """(8, 64) float: row ``k`` has ones in the first ``WIDTHS[k]`` channels, zeros after."""
    channel = torch.arange(MAX_WIDTH)
    return (channel[None, :] < torch.tensor(WIDTHS)[:, None]).to(torch.get_default_dtype())


def channel_resize_matrix(c_in: int, c_out: int) -> torch.Tensor:
    """(c_out, c_in) float64 ``R`` with ``R @ x`` the adaptive average pooling of the channel
    axis from ``c_in`` to ``c_out`` (TAS's channel-wise interpolation): output ``o`` averages
    inputs ``floor(o * c_in / c_out) .. ceil((o + 1) * c_in / c_out) - 1``."""
    out = torch.arange(c_out)
    start = (out * c_in) // c_out  # (c_out,)
    end = -((-(out + 1) * c_in) // c_out)  # (c_out,) ceil division
    inputs = torch.arange(c_in)
    inside = (inputs[None, :] >= start[:, None]) & (inputs[None, :] < end[:, None])
    return inside.double() / (end - start).double()[:, None]  # (c_out, c_in)


def resize_table() -> torch.Tensor:
    """(8, 8, 64, 64) float64: ``[j, k]`` resizes the first ``WIDTHS[k]`` of 64 channels to the
    first ``WIDTHS[j]`` (:func:`channel_resize_matrix`), zeros elsewhere; ``[k, k]`` is the
    diagonal of prefix mask ``k``."""
    table = torch.zeros(NUM_WIDTHS, NUM_WIDTHS, MAX_WIDTH, MAX_WIDTH, dtype=torch.float64)
    for j, c_out in enumerate(WIDTHS):
        for k, c_in in enumerate(WIDTHS):
            table[j, k, :c_out, :c_in] = channel_resize_matrix(c_in, c_out)
    return table


def narrow(feature: torch.Tensor, narrowing: torch.Tensor) -> torch.Tensor:
    """(B, 64, h, w) times a (64,) channel mask, or mapped by a (64, 64) channel map."""
    if narrowing.dim() == 1:
        return feature * narrowing.view(1, -1, 1, 1)  # (B, 64, h, w)
    return torch.einsum("oc,bchw->bohw", narrowing, feature)  # (B, 64, h, w)
