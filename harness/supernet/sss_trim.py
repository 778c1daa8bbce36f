"""The size-space supernet's forward with zero channels left out (``SssSuperNet`` with
``skip_zero``).

Under NATS-Bench's module-scope masking, module ``i``'s output is multiplied by a mask that is
exactly zero beyond its widest selected width ``w_i`` whenever the weights of every wider
candidate are exactly 0 (one-hot samples: TuNAS, warm-up steps; TAS's two widths). Those
channels need not be computed: the module computes only the ``w_i`` channels its output keeps
(the convolutions that write the output take the first ``w_i`` filters), and the next module
reads only the ``w_i`` channels that are not zero (its convolutions take the first ``w_i``
input channels). The inner nodes of a cell and a block's first convolution stay 64 wide, as
in the full forward. Logits, and the gradients of every parameter and nonzero weight, are
those of the full forward (to rounding). What differs, as in the topology space's skipped ops:
the left-out channels' BatchNorm running statistics are not updated in that step (only the
residual blocks keep running statistics in the NATS supernet), and a zero weight's gradient is
0 instead of its channels' contribution.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import cast

import torch
from torch import nn
from torch.nn import functional as F

from harness.supernet.ops import ReLUConvBN, ResNetBasicBlock, cat, fused_batch_norm

logger = logging.getLogger(__name__)

__all__ = ["trimmed_block", "trimmed_cell", "trimmed_head", "trimmed_stem"]


def relu_conv_bn(units: Sequence[nn.Module], h: torch.Tensor, outs: Sequence[int]) -> torch.Tensor:
    """ReLU -> conv -> BN of ReLUConvBN ``units`` that share the input ``h`` (B, c, H, W),
    each on its first ``c`` input channels and giving its first ``outs[i]`` output channels,
    in one call each: -> (B, sum(outs), H', W')."""
    seqs = [cast(nn.Sequential, cast(ReLUConvBN, u).op) for u in units]
    convs = [cast(nn.Conv2d, s[1]) for s in seqs]
    c_in = h.shape[1]
    weight = cat([c.weight[:o, :c_in] for c, o in zip(convs, outs, strict=True)])
    biases = [c.bias[:o] for c, o in zip(convs, outs, strict=True) if c.bias is not None]
    first = convs[0]
    y = F.conv2d(F.relu(h), weight, cat(biases) if biases else None, first.stride, first.padding)
    return fused_batch_norm(y, [cast(nn.BatchNorm2d, s[2]) for s in seqs], outs)


def _resize_channels(x: torch.Tensor, width: int) -> torch.Tensor:
    """The first ``width`` channels of ``x`` (B, c, H, W), zero-padded when ``c < width``."""
    extra = width - x.shape[1]
    return F.pad(x, (0, 0, 0, 0, 0, extra)) if extra > 0 else x[:, :width]


def trimmed_stem(stem: nn.Sequential, x: torch.Tensor, width: int) -> torch.Tensor:
    """Conv3x3 + BN of the stem giving its first ``width`` channels: (B, 3, H, W) ->
    (B, width, H, W)."""
    conv, bn = cast(nn.Conv2d, stem[0]), cast(nn.BatchNorm2d, stem[1])
    bias = None if conv.bias is None else conv.bias[:width]
    y = F.conv2d(x, conv.weight[:width], bias, conv.stride, conv.padding)  # (B, width, H, W)
    return fused_batch_norm(y, [bn], [width])


def trimmed_cell(cell: nn.Module, x: torch.Tensor, width: int) -> torch.Tensor:
    """The fixed cell (64 wide inside) on the nonzero input channels ``x`` (B, c, H, W),
    giving its first ``width`` output channels: -> (B, width, H, W)."""
    edges = cast(nn.ModuleList, cell.edges)
    full = int(cast(nn.Conv2d, cast(ReLUConvBN, edges[0]).op[1]).out_channels)
    node1, to2 = relu_conv_bn([edges[0], edges[1]], x, [full, full]).split(full, dim=1)
    from1 = relu_conv_bn([edges[2], edges[4]], node1, [full, width])
    from1_to2, from1_to3 = from1.split([full, width], dim=1)
    last = relu_conv_bn([edges[5]], to2 + from1_to2, [width])  # (B, width, H, W)
    return _resize_channels(x, width) + from1_to3 + last  # the skip is the identity


def trimmed_block(block: ResNetBasicBlock, x: torch.Tensor, width: int) -> torch.Tensor:
    """The residual block (its first convolution 64 wide) on the nonzero input channels ``x``
    (B, c, H, W), giving its first ``width`` output channels: -> (B, width, H/2, W/2)."""
    full = int(cast(nn.Conv2d, block.conv_a.op[1]).out_channels)
    inner = relu_conv_bn([block.conv_a], x, [full])  # (B, 64, H/2, W/2)
    out = relu_conv_bn([block.conv_b], inner, [width])  # (B, width, H/2, W/2)
    pool, conv = block.downsample[0], cast(nn.Conv2d, block.downsample[1])
    residual = F.conv2d(pool(x), conv.weight[:width, : x.shape[1]])  # (B, width, H/2, W/2)
    return residual + out


def trimmed_head(
    lastact: nn.Sequential, classifier: nn.Linear, feature: torch.Tensor
) -> torch.Tensor | None:
    """BN + ReLU, global pool and classifier on the nonzero channels ``feature`` (B, c, h, w)
    -> logits, or None when the head BN has affine parameters or running statistics (its
    zero channels then are not zero after it: the caller pads back to 64 channels)."""
    bn = cast(nn.BatchNorm2d, lastact[0])
    if bn.affine or bn.track_running_stats:
        return None
    c = feature.shape[1]
    head = F.relu(fused_batch_norm(feature, [bn], [c]))  # (B, c, h, w)
    pooled = F.adaptive_avg_pool2d(head, 1).flatten(1)  # (B, c)
    return F.linear(pooled, classifier.weight[:, :c], classifier.bias)  # (B, num_classes)


def pad_channels(feature: torch.Tensor, width: int) -> torch.Tensor:
    """(B, c, h, w) zero-padded to ``width`` channels."""
    return _resize_channels(feature, width)
