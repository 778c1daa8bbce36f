"""Networks of the NATS-Bench size space (sss): the weight-sharing supernet and the discrete
network of one architecture.

An architecture is five layer widths ``C1:C2:C3:C4:C5`` (each in :data:`WIDTHS`) on a fixed
skeleton; the supernet runs every layer at the widest width, 64, and masks or interpolates::

    module 0  stem: Conv3x3(3 -> C1) + BN                        layer row 0
    module 1  cell C1 -> C1                                      layer row 0
    module 2  ResNetBasicBlock(C1 -> C2, stride 2)               layer row 1
    module 3  cell C2 -> C3                                      layer row 2
    module 4  ResNetBasicBlock(C3 -> C4, stride 2)               layer row 3
    module 5  cell C4 -> C5                                      layer row 4
    head: BN + ReLU -> global average pool -> Linear(C5 -> num_classes)

Every cell is the topology :data:`GENOTYPE` (all 3x3 convolutions but a skip from node 0 to the
output). In a cell from ``c_in`` to ``c_out`` the edges leaving node 0 map ``c_in -> c_out`` and
the others stay at ``c_out``; the skip is the identity when the widths agree and otherwise, in
the benchmark, a "factorized reduce" of stride 1 (Conv1x1 + BN, no ReLU). The ``affine`` and
``track_running_stats`` flags apply to the stem BN, the cell ops and the head BN (the benchmark
network: both True; its search model: both False); the residual blocks are always affine with
running statistics. A convolution followed by a non-affine BN carries a bias.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import ClassVar, Final, cast

import numpy as np
import numpy.typing as npt
import torch
from torch import nn
from torch.nn import functional as F

from harness.errors import ArchitectureError, ConfigError, unknown
from harness.spaces import Space, get_space
from harness.spaces import sss as space
from harness.spaces import tss as topology
from harness.supernet.channels import narrow, prefix_masks, resize_table
from harness.supernet.ops import ReLUConvBN, ResNetBasicBlock, fused_batch_norm
from harness.supernet.sss_trim import (
    pad_channels,
    trimmed_block,
    trimmed_cell,
    trimmed_head,
    trimmed_stem,
)

logger = logging.getLogger(__name__)

#: The fixed cell of every size-space network.
GENOTYPE: Final = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
    "+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
)
#: Cell edges ``(src, dst)`` in the order of :data:`GENOTYPE`; edge :data:`SKIP_EDGE` is the skip.
CELL_EDGES: Final = tuple(topology.EDGES)
SKIP_EDGE: Final = 3
WIDTHS: Final = space.WIDTHS
MAX_WIDTH: Final = max(WIDTHS)
NUM_WIDTHS: Final = len(WIDTHS)
SKIPS: Final = ("factorized", "pad")
MIXINGS: Final = ("mask", "interpolate")
MASK_SCOPES: Final = ("module", "layer")

SssArch = str | int | np.integer | Sequence[int] | npt.NDArray[np.integer]


def arch_widths(arch: SssArch) -> tuple[int, ...]:
    """The 5 layer widths of an architecture given as a string, an official index or 5 widths."""
    if isinstance(arch, str):
        return space.str_to_widths(arch)
    if isinstance(arch, int | np.integer):
        return space.index_to_widths(arch)
    if not isinstance(arch, Sequence | np.ndarray):
        raise ArchitectureError(
            f"expected an sss architecture (string, index or 5 widths), got {type(arch).__name__}"
        )
    space.widths_to_str(cast(Sequence[int], arch))  # validates: 5 widths on the grid
    return tuple(int(w) for w in arch)


class FactorizedSkip(nn.Module):
    """The benchmark's width-changing skip of stride 1: Conv1x1 + BN, no ReLU."""

    def __init__(self, c_in: int, c_out: int, affine: bool, track_running_stats: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel_size=1, bias=not affine)
        self.bn = nn.BatchNorm2d(c_out, affine=affine, track_running_stats=track_running_stats)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, c_in, H, W) -> (B, c_out, H, W)."""
        return self.bn(self.conv(x))


class ChannelPad(nn.Module):
    """The width-changing skip a weight-sharing supernet computes: the identity, zero-padded or
    truncated along the channel axis to ``c_out``."""

    def __init__(self, c_out: int) -> None:
        super().__init__()
        self.c_out = c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, c_in, H, W) -> (B, c_out, H, W)."""
        extra = self.c_out - x.shape[1]
        return F.pad(x, (0, 0, 0, 0, 0, extra)) if extra > 0 else x[:, : self.c_out]


def make_skip(c_in: int, c_out: int, skip: str, affine: bool, track: bool) -> nn.Module:
    """The skip edge of a cell: identity at equal widths, else ``skip`` (one of :data:`SKIPS`)."""
    if skip not in SKIPS:
        raise ConfigError(unknown("sss skip", skip, SKIPS))
    if c_in == c_out:
        return nn.Identity()
    return FactorizedSkip(c_in, c_out, affine, track) if skip == "factorized" else ChannelPad(c_out)


class SizeCell(nn.Module):
    """The fixed cell (:data:`GENOTYPE`) from ``c_in`` to ``c_out`` channels.

    ``edges[e]`` is the op of edge ``CELL_EDGES[e]`` (3x3 ReLUConvBNs, the skip at
    :data:`SKIP_EDGE`). ``fused``: run the two convolutions leaving node 0 as one call, and the
    two leaving node 1 (see :meth:`forward_fused`; same parameters and state dict).
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        affine: bool,
        track_running_stats: bool,
        skip: str = "factorized",
        fused: bool = False,
    ) -> None:
        super().__init__()
        self.c_in, self.c_out, self.fused = c_in, c_out, fused
        self.edges = nn.ModuleList(
            make_skip(c_in, c_out, skip, affine, track_running_stats)
            if e == SKIP_EDGE
            else ReLUConvBN(
                c_in if src == 0 else c_out, c_out, 3, 1, 1, affine, track_running_stats
            )
            for e, (src, _) in enumerate(CELL_EDGES)
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, c_in, H, W) -> (B, c_out, H, W).

        ``mask`` (1, c_out, 1, 1), if given, multiplies every convolution's output (so every
        internal node is masked too); the skip and the cell output are left to the caller.
        """
        if self.fused:
            return self.forward_fused(x, mask)

        def conv(e: int, h: torch.Tensor) -> torch.Tensor:
            out = self.edges[e](h)  # (B, c_out, H, W)
            return out if mask is None else out * mask

        node1 = conv(0, x)  # (B, c_out, H, W)
        node2 = conv(1, x) + conv(2, node1)  # (B, c_out, H, W)
        return self.edges[SKIP_EDGE](x) + conv(4, node1) + conv(5, node2)  # (B, c_out, H, W)

    def forward_fused(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """:meth:`forward` with one ReLU, one convolution and one BatchNorm call for the edges
        0->1 and 0->2 (weights concatenated along the output channels; BN is per channel, so the
        concatenation changes nothing), the same for 1->2 and 1->3, and the edge 2->3 alone.
        (B, c_in, H, W) -> (B, c_out, H, W)."""
        pair_mask = None if mask is None else torch.cat([mask, mask], dim=1)  # (1, 2c, 1, 1)
        node1, to2 = self._conv_bn(x, (0, 1), pair_mask).chunk(2, dim=1)  # 2 x (B, c, H, W)
        from1_to2, from1_to3 = self._conv_bn(node1, (2, 4), pair_mask).chunk(2, dim=1)
        node2 = to2 + from1_to2  # (B, c_out, H, W)
        last = self._conv_bn(node2, (5,), mask)  # (B, c_out, H, W)
        return self.edges[SKIP_EDGE](x) + from1_to3 + last  # (B, c_out, H, W)

    def _conv_bn(
        self, h: torch.Tensor, edges: tuple[int, ...], mask: torch.Tensor | None
    ) -> torch.Tensor:
        """ReLU -> conv -> BN of the ReLUConvBNs ``edges`` (same input) in one call each:
        (B, C, H, W) -> (B, len(edges) * c_out, H, W), times ``mask`` if given."""
        units = [cast(nn.Sequential, cast(ReLUConvBN, self.edges[e]).op) for e in edges]
        convs = [cast(nn.Conv2d, u[1]) for u in units]
        bns = [cast(nn.BatchNorm2d, u[2]) for u in units]
        weight = torch.cat([c.weight for c in convs])  # (n * c_out, C, 3, 3)
        biases = [c.bias for c in convs if c.bias is not None]
        bias = torch.cat(biases) if biases else None  # (n * c_out,): convs before non-affine BNs
        y = F.conv2d(F.relu(h), weight, bias, padding=1)  # (B, n * c_out, H, W)
        y = fused_batch_norm(y, bns)
        return y if mask is None else y * mask


def _block_forward(
    block: ResNetBasicBlock, x: torch.Tensor, mask: torch.Tensor | None
) -> torch.Tensor:
    """``block(x)`` with ``mask`` (1, C, 1, 1) on both conv outputs:
    (B, C, H, W) -> (B, C, H / 2, W / 2)."""
    if mask is None:
        return block(x)
    residual = block.downsample(x)  # (B, C, H/2, W/2)
    return residual + block.conv_b(block.conv_a(x) * mask) * mask  # (B, C, H/2, W/2)


class _Skeleton(nn.Module):
    """Stem, cells and residual blocks (``cells``), head, at layer widths ``widths``."""

    def __init__(
        self,
        widths: Sequence[int],
        num_classes: int,
        affine: bool,
        track_running_stats: bool,
        make_cell: Callable[[int, int], nn.Module],
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ConfigError(f"num_classes must be >= 1; got {num_classes}")
        self.num_classes = num_classes
        self.affine, self.track_running_stats = affine, track_running_stats
        c1, c2, c3, c4, c5 = widths
        self.stem = nn.Sequential(
            nn.Conv2d(3, c1, kernel_size=3, padding=1, bias=not affine),
            nn.BatchNorm2d(c1, affine=affine, track_running_stats=track_running_stats),
        )
        self.cells = nn.ModuleList([
            make_cell(c1, c1), ResNetBasicBlock(c1, c2), make_cell(c2, c3),
            ResNetBasicBlock(c3, c4), make_cell(c4, c5),
        ])  # fmt: skip
        self.lastact = nn.Sequential(
            nn.BatchNorm2d(c5, affine=affine, track_running_stats=track_running_stats),
            nn.ReLU(inplace=False),
        )
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c5, num_classes)

    def pool_and_classify(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C5, h, w) head activations -> (B, num_classes) logits."""
        return self.classifier(self.global_pooling(x).flatten(1))  # (B, num_classes)


class SssNetwork(_Skeleton):
    """The discrete network of one architecture (the benchmark's evaluation network).

    Args:
        arch: ``'C1:C2:C3:C4:C5'``, an official index, or 5 widths.
        num_classes: 10 (CIFAR-10), 100 (CIFAR-100), 120 (ImageNet16-120).
        affine, track_running_stats: BN flags of the stem, the cells and the head (True in the
            benchmark).
        skip: width-changing skip edges: ``"factorized"`` (benchmark) or ``"pad"``, the
            zero-padded / truncated identity a weight-sharing supernet computes.
    """

    def __init__(
        self,
        arch: SssArch,
        *,
        num_classes: int,
        affine: bool = True,
        track_running_stats: bool = True,
        skip: str = "factorized",
    ) -> None:
        self.widths = arch_widths(arch)
        self.arch = space.widths_to_str(self.widths)
        super().__init__(
            self.widths,
            num_classes,
            affine,
            track_running_stats,
            lambda c_in, c_out: SizeCell(c_in, c_out, affine, track_running_stats, skip),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, H, W), H and W divisible by 4 -> logits (B, num_classes)."""
        feature = self.stem(x)  # (B, C1, H, W)
        for cell in self.cells:
            feature = cell(feature)  # (B, c, h, w)
        return self.pool_and_classify(self.lastact(feature))  # (B, num_classes)


class SssSuperNet(_Skeleton):
    """Weight-sharing supernet of the size space (the benchmark's search model).

    Six modules (stem, cell, block, cell, block, cell) at width 64; the output of module ``i``
    is narrowed by the weights of layer row ``MODULE_ROWS[i]``. It owns no architecture
    parameters: :meth:`forward` takes the weights. The stem BN, the cell ops and the head BN
    follow ``affine`` / ``track_running_stats`` (NATS-Bench searches with both False).

    Args:
        num_classes: classifier outputs.
        affine, track_running_stats: BN flags of the stem, the cells and the head.
        mask_scope: ``"module"``: narrow module outputs only (the benchmark's search model).
            ``"layer"``: also mask every convolution output inside a module (so every internal
            node) and the head's BN + ReLU output; under one-hot weights the supernet then
            computes exactly the sliced sub-network (:func:`network_from_supernet`). With
            ``"module"`` a cell's internal nodes stay 64 wide, so it differs from that network
            unless every width is 64.
        fused: cells run their 3x3 convolutions per source node as one call
            (:meth:`SizeCell.forward_fused`; same parameters and state dict).
    """

    space: ClassVar[Space] = get_space("sss")
    #: Layer row (of (5, 8) weights) that narrows the output of each of the six modules.
    MODULE_ROWS: ClassVar[tuple[int, ...]] = (0, 0, 1, 2, 3, 4)

    def __init__(
        self,
        *,
        num_classes: int,
        affine: bool = False,
        track_running_stats: bool = False,
        mask_scope: str = "module",
        fused: bool = True,
    ) -> None:
        if mask_scope not in MASK_SCOPES:
            raise ConfigError(unknown("mask_scope", mask_scope, MASK_SCOPES))
        self.mask_scope = mask_scope
        super().__init__(
            (MAX_WIDTH,) * space.NUM_LAYERS,
            num_classes,
            affine,
            track_running_stats,
            lambda c_in, c_out: SizeCell(c_in, c_out, affine, track_running_stats, "pad", fused),
        )
        self.prefix_masks: torch.Tensor
        self.resize_maps: torch.Tensor
        self.register_buffer("prefix_masks", torch.empty(NUM_WIDTHS, MAX_WIDTH), persistent=False)
        self.register_buffer(
            "resize_maps", torch.empty(NUM_WIDTHS, NUM_WIDTHS, MAX_WIDTH, MAX_WIDTH),
            persistent=False,
        )  # fmt: skip
        self.reset_constants()

    def reset_constants(self) -> None:
        """Fill the constant buffers (the (8, 64) prefix masks and the (8, 8, 64, 64) channel
        maps, whose widening entries are 1 and 1/2: exact in any dtype) in place, on their
        device; needed again after ``to_empty`` (a supernet built on the meta device)."""
        with torch.no_grad():
            self.prefix_masks.copy_(prefix_masks())
            self.resize_maps.copy_(resize_table())

    def forward(
        self,
        x: torch.Tensor,
        weights: torch.Tensor,
        *,
        mixing: str = "mask",
        skip_zero: bool | None = None,
    ) -> torch.Tensor:
        """Logits of the supernet narrowed by width weights.

        Args:
            x: images (B, 3, H, W), float; H and W divisible by 4.
            weights: (5, 8), one row per layer, or (6, 8), one row per module (the stem and
                the first cell share layer 0; six rows let them draw separately, as the
                benchmark's search code does); columns follow :data:`WIDTHS`.
            mixing: ``"mask"``: a module's output (B, 64, h, w) times the soft channel mask
                ``row @ prefix_masks`` (FBNet-V2; DARTS over widths). ``"interpolate"``: TAS;
                the nonzero entries of a row select widths ``c_k`` with weights ``w_k``, and the
                output is ``sum_k w_k * resize(feature[:, :c_k], max c_k)`` zero-padded to 64
                channels, ``resize`` the adaptive average pooling of the channel axis. With
                ``mask_scope="layer"`` the inner masks are then the prefix mask of ``max c_k``.
                One nonzero entry equal to 1 gives the same logits in both modes.
            skip_zero: whether the channels that every module's weights narrow to exactly 0
                are left out (:mod:`harness.supernet.sss_trim`; module scope only; one host
                read of the weights). ``None`` (default): only when no gradient of
                ``weights`` is recorded, which keeps the logits and every gradient; ``True``:
                also when it is (a zero weight's gradient is then 0); ``False``: never.

        Returns:
            logits (B, num_classes).
        """
        rows = self._module_rows(weights)  # (6, 8)
        narrowing, inner = self._narrowing(rows, mixing)  # (6, 64) or (6, 64, 64); (6, 64)
        widths = self._kept_widths(rows, weights, skip_zero)
        if widths is not None:
            return self._forward_trimmed(x, narrowing, widths)
        layer_scope = self.mask_scope == "layer"
        feature = x
        for i, module in enumerate([self.stem, *self.cells]):
            mask = inner[i].view(1, -1, 1, 1) if layer_scope else None  # (1, 64, 1, 1)
            if isinstance(module, SizeCell):
                feature = module(feature, mask)  # (B, 64, h, w)
            elif isinstance(module, ResNetBasicBlock):
                feature = _block_forward(module, feature, mask)  # (B, 64, h/2, w/2)
            else:
                feature = module(feature)  # (B, 64, H, W)
            feature = narrow(feature, narrowing[i])  # (B, 64, h, w)
        head = self.lastact(feature)  # (B, 64, h, w)
        if layer_scope:
            head = head * inner[-1].view(1, -1, 1, 1)
        return self.pool_and_classify(head)  # (B, num_classes)

    def _kept_widths(
        self, rows: torch.Tensor, weights: torch.Tensor, skip_zero: bool | None
    ) -> list[int] | None:
        """Per module, the widest width with a nonzero weight, when trimming applies and
        saves something (see :meth:`forward`); else None."""
        if skip_zero is None:
            skip_zero = not (weights.requires_grad and torch.is_grad_enabled())
        capturing = rows.is_cuda and torch.cuda.is_current_stream_capturing()
        if not skip_zero or self.mask_scope != "module" or capturing:
            return None
        nonzero = (rows != 0).tolist()  # one host read
        widths = [max((w for w, on in zip(WIDTHS, row, strict=True) if on), default=WIDTHS[0])
                  for row in nonzero]  # fmt: skip
        return None if min(widths) == MAX_WIDTH else widths

    def _forward_trimmed(
        self, x: torch.Tensor, narrowing: torch.Tensor, widths: list[int]
    ) -> torch.Tensor:
        """The forward on the kept channels of each module (``widths``): same logits."""
        feature = trimmed_stem(self.stem, x, widths[0])  # (B, w0, H, W)
        for i, module in enumerate([self.stem, *self.cells]):  # the stem: narrowing only
            width = widths[i]
            if isinstance(module, SizeCell):
                feature = trimmed_cell(module, feature, width)  # (B, w, h, w)
            elif isinstance(module, ResNetBasicBlock):
                feature = trimmed_block(module, feature, width)  # (B, w, h/2, w/2)
            feature = narrow(feature, narrowing[i][:width] if narrowing.dim() == 2
                             else narrowing[i][:width, :width])  # fmt: skip
        logits = trimmed_head(self.lastact, self.classifier, feature)
        if logits is None:
            logits = self.pool_and_classify(self.lastact(pad_channels(feature, MAX_WIDTH)))
        return logits  # (B, num_classes)

    def set_fused(self, fused: bool) -> None:
        """Switch every cell between the fused and the per-op forward."""
        for cell in self.cells:
            if isinstance(cell, SizeCell):
                cell.fused = fused

    def _module_rows(self, weights: torch.Tensor) -> torch.Tensor:
        """(5, 8) or (6, 8) weights -> (6, 8) rows, one per module, in the buffers' dtype."""
        shape = tuple(weights.shape)
        if shape not in ((space.NUM_LAYERS, NUM_WIDTHS), (len(self.MODULE_ROWS), NUM_WIDTHS)):
            raise ConfigError(
                f"sss weights must have shape (5, 8) (one row per layer) or (6, 8) (one row "
                f"per module); got {shape}"
            )
        rows = weights.to(self.prefix_masks.dtype)
        # rows MODULE_ROWS of a (5, 8) tensor, without an index tensor (CUDA-graph friendly)
        return torch.cat([rows[:1], rows]) if shape[0] == space.NUM_LAYERS else rows

    def _narrowing(self, rows: torch.Tensor, mixing: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Per module, what narrows its output: (6, 64) soft masks (``"mask"``) or (6, 64, 64)
        channel maps (``"interpolate"``); and the (6, 64) masks inside the modules.

        A channel map is ``sum_k w_k * resize_maps[widest, k]``: no host sync. The gradient of
        a zero weight ``w_k`` is thus that of ``resize(feature[:, :c_k], max c)``."""
        if mixing == "mask":
            masks = rows @ self.prefix_masks  # (6, 64)
            return masks, masks
        if mixing == "interpolate":
            choice = torch.arange(NUM_WIDTHS, device=rows.device)
            widest = torch.where(rows != 0, choice, 0).amax(dim=1)  # (6,) widest chosen width
            maps = torch.einsum("mk,mkoc->moc", rows, self.resize_maps[widest])  # (6, 64, 64)
            return maps, self.prefix_masks[widest]
        raise ConfigError(unknown("sss mixing", mixing, MIXINGS))


def network_from_supernet(supernet: SssSuperNet, arch: SssArch) -> SssNetwork:
    """A :class:`SssNetwork` of ``arch`` holding sliced copies of the supernet's weights.

    Conv weights are cut to ``[:c_out, :c_in]``, BN parameters and buffers to ``[:c]``, the
    classifier to ``[:, :C5]``. The network has the supernet's classes and BN flags, the
    ``"pad"`` skip (the supernet has no weights for a factorized one), the supernet's device,
    dtype and training mode. It equals the supernet under the one-hot weights of ``arch`` when
    ``mask_scope="layer"``, and also with ``"module"`` when every width is 64.
    """
    net = SssNetwork(
        arch,
        num_classes=supernet.num_classes,
        affine=supernet.affine,
        track_running_stats=supernet.track_running_stats,
        skip="pad",
    )
    first = next(supernet.parameters())
    net.to(device=first.device, dtype=first.dtype)
    source = supernet.state_dict()
    sliced = {
        key: source[key][tuple(slice(0, n) for n in value.shape)].detach().clone()
        for key, value in net.state_dict().items()
    }
    net.load_state_dict(sliced)
    return net.train(supernet.training)
