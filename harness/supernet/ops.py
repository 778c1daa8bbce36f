"""Candidate operations of the NATS-Bench topology space and the residual reduction block.

Each cell op maps ``(B, C, H, W) -> (B, C, H, W)`` (cells never change width or resolution) and
takes the two BatchNorm flags the benchmark threads through its cells: ``affine`` (learnable
scale and shift) and ``track_running_stats`` (keep running estimates for evaluation; when off,
batch statistics are used in training and in evaluation alike). As in the benchmark's code, a
convolution followed by a non-affine BatchNorm carries a bias (``bias = not affine``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import torch
from torch import nn

from harness.errors import ArchitectureError, ConfigError, unknown
from harness.spaces import tss as space

logger = logging.getLogger(__name__)

#: Candidate operations of the topology space, in the benchmark's order.
OP_NAMES: tuple[str, ...] = tuple(space.OPS)


class ReLUConvBN(nn.Module):
    """ReLU -> Conv2d -> BatchNorm2d.

    Args:
        c_in, c_out: input and output channels.
        kernel_size, stride, padding: of the convolution.
        affine: BatchNorm scale/shift; the convolution has a bias exactly when this is False.
        track_running_stats: BatchNorm running estimates.
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel_size: int,
        stride: int,
        padding: int,
        affine: bool = True,
        track_running_stats: bool = True,
    ) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel_size, stride=stride, padding=padding, bias=not affine),
            nn.BatchNorm2d(c_out, affine=affine, track_running_stats=track_running_stats),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, c_in, H, W) -> (B, c_out, H / stride, W / stride)."""
        return self.op(x)


class AvgPool3x3(nn.Module):
    """3x3 average pooling, stride 1, padding 1, padded cells not counted in the mean.

    The benchmark prepends a 1x1 ReLUConvBN only when input and output widths differ, which
    never happens inside a cell; that case is rejected here.
    """

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        if c_in != c_out:
            raise ArchitectureError(f"avg_pool_3x3 keeps the width; got {c_in} -> {c_out}")
        self.op = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        return self.op(x)


class Identity(nn.Module):
    """``skip_connect`` inside a cell (stride 1, same width)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> the same tensor."""
        return x


class Zero(nn.Module):
    """``none``: an all-zero output of the input's shape."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> zeros (B, C, H, W)."""
        return torch.zeros_like(x)


class ResNetBasicBlock(nn.Module):
    """The residual block that joins the stages: halves the resolution, changes the width.

    ``conv_b(conv_a(x)) + downsample(x)`` with ``conv_a`` a 3x3 ReLUConvBN of stride 2, ``conv_b``
    a 3x3 ReLUConvBN of stride 1, and the shortcut ``AvgPool2d(2)`` then a bias-free 1x1 conv.
    """

    def __init__(
        self, c_in: int, c_out: int, affine: bool = True, track_running_stats: bool = True
    ) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1, affine, track_running_stats)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1, affine, track_running_stats)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            nn.Conv2d(c_in, c_out, kernel_size=1, stride=1, padding=0, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, c_in, H, W) -> (B, c_out, H / 2, W / 2)."""
        residual = self.downsample(x)  # (B, c_out, H/2, W/2)
        return residual + self.conv_b(self.conv_a(x))  # (B, c_out, H/2, W/2)


def cat(tensors: list[torch.Tensor]) -> torch.Tensor:
    """``torch.cat`` along dim 0, without a copy for a single tensor."""
    return tensors[0] if len(tensors) == 1 else torch.cat(tensors)


def fused_batch_norm(
    y: torch.Tensor, bns: Sequence[nn.BatchNorm2d], widths: Sequence[int] | None = None
) -> torch.Tensor:
    """``bns`` (same flags, default momentum) applied to their channel blocks of ``y`` in one
    call, with the running statistics and batch counts updated as each BN would (a BN is per
    channel, so batching the channels of several changes nothing). ``widths``: BN ``i`` uses
    only its first ``widths[i]`` channels (a width-trimmed forward); default all of them."""
    first = bns[0]
    if first.momentum is None:
        raise ConfigError("fused supernet cells need BatchNorm momentum; build with fused=False")
    sizes = [b.num_features for b in bns] if widths is None else [int(w) for w in widths]
    track = first.track_running_stats

    def joined(name: str) -> torch.Tensor:
        return cat([getattr(b, name)[:w] for b, w in zip(bns, sizes, strict=True)])

    mean = joined("running_mean") if track else None
    var = joined("running_var") if track else None
    out = nn.functional.batch_norm(
        y, mean, var, joined("weight") if first.affine else None,
        joined("bias") if first.affine else None, first.training or not track,
        first.momentum, first.eps,
    )  # fmt: skip
    if track and first.training:
        with torch.no_grad():
            if len(bns) > 1:  # a single BN updated its own buffers (or a view of them) in place
                assert mean is not None and var is not None
                buffers = [
                    (b.running_mean, b.running_var, w) for b, w in zip(bns, sizes, strict=True)
                ]
                targets = [t[:w] for m, v, w in buffers for t in (m, v) if t is not None]
                sources = [t for pair in zip(mean.split(sizes), var.split(sizes), strict=True)
                           for t in pair]  # fmt: skip
                torch._foreach_copy_(targets, sources)
            torch._foreach_add_([b.num_batches_tracked for b in bns], 1)  # type: ignore[misc]
    return out


OpFactory = Callable[[int, bool, bool], nn.Module]

_FACTORIES: dict[str, OpFactory] = {
    "none": lambda c, affine, track: Zero(),
    "skip_connect": lambda c, affine, track: Identity(),
    "nor_conv_1x1": lambda c, affine, track: ReLUConvBN(c, c, 1, 1, 0, affine, track),
    "nor_conv_3x3": lambda c, affine, track: ReLUConvBN(c, c, 3, 1, 1, affine, track),
    "avg_pool_3x3": lambda c, affine, track: AvgPool3x3(c, c),
}


def make_op(
    name: str, channels: int, affine: bool = True, track_running_stats: bool = True
) -> nn.Module:
    """Build the cell operation ``name`` at width ``channels`` (stride 1, width kept)."""
    if name not in _FACTORIES:
        raise ArchitectureError(unknown("operation", name, OP_NAMES))
    return _FACTORIES[name](channels, affine, track_running_stats)


def op_param_count(name: str, channels: int, affine: bool = True) -> int:
    """Learnable parameters of one cell op at width ``channels`` (closed form).

    A ``k x k`` ReLUConvBN has ``k*k*C*C`` conv weights plus ``2*C`` BatchNorm parameters when
    affine, or ``C`` conv biases when not; the other ops have none.
    """
    if name not in _FACTORIES:
        raise ArchitectureError(unknown("operation", name, OP_NAMES))
    kernel = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}.get(name)
    if kernel is None:
        return 0
    extra = 2 * channels if affine else channels
    return kernel * kernel * channels * channels + extra
