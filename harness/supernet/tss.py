"""Networks of the NATS-Bench topology space (tss): the weight-sharing supernet and the
discrete network of one architecture.

Both share the benchmark's macro skeleton (channels ``C``, ``N`` cells per stage)::

    stem: Conv3x3(3 -> C, no bias) + BN
    N cells at C   -> ResNetBasicBlock(C -> 2C, stride 2)
    N cells at 2C  -> ResNetBasicBlock(2C -> 4C, stride 2)
    N cells at 4C  -> BN + ReLU -> global average pool -> Linear(4C -> num_classes)

A cell is a DAG of 4 nodes: node 0 is the cell input, node ``j`` sums its incoming edges
``(i, j)``, node 3 is the output; the 6 edges are ordered as in :data:`EDGES`. The stem, the
residual blocks and the head BN are always affine with running statistics; the ``affine`` and
``track_running_stats`` flags apply to the ops inside the cells only, as in the benchmark.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import ClassVar, cast

import numpy as np
import torch
from torch import nn

from harness.errors import ArchitectureError, ConfigError, unknown
from harness.spaces import Space, get_space
from harness.spaces import tss as space
from harness.supernet.ops import OP_NAMES, ResNetBasicBlock, cat, fused_batch_norm, make_op

logger = logging.getLogger(__name__)

#: Cell edges as ``(src, dst)`` node pairs, in the order of the architecture string.
EDGES: tuple[tuple[int, int], ...] = tuple(space.EDGES)
NUM_EDGES = len(EDGES)
NUM_OPS = len(OP_NAMES)
_NONE = OP_NAMES.index("none")
_SKIP, _CONV1, _CONV3, _POOL = (
    OP_NAMES.index(op) for op in ("skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
)
#: Edges leaving each source node (0, 1, 2), in :data:`EDGES` order.
_FROM_SOURCE: tuple[tuple[int, ...], ...] = tuple(
    tuple(e for e, (src, _) in enumerate(EDGES) if src == node) for node in (0, 1, 2)
)


def arch_ops(arch: str | int | Sequence[int] | Sequence[str]) -> tuple[str, ...]:
    """The 6 op names of an architecture given as a string, an official index, or per-edge ops.

    Per-edge ops may be op ids (into :data:`OP_NAMES`) or op names, in :data:`EDGES` order.
    """
    if isinstance(arch, str):
        ids = space.str_to_ops(arch)
    elif isinstance(arch, int | np.integer):
        ids = space.index_to_ops(arch)
    else:
        unknown_names = [o for o in arch if isinstance(o, str) and o not in OP_NAMES]
        if unknown_names:
            raise ArchitectureError(unknown("operation", unknown_names[0], OP_NAMES))
        ids = tuple(OP_NAMES.index(o) if isinstance(o, str) else int(o) for o in arch)
        space.ops_to_str(ids)  # validates: 6 ids in range
    return tuple(OP_NAMES[i] for i in ids)


def stage_layout(C: int, N: int) -> list[tuple[str, int, int]]:
    """The macro skeleton as ``(kind, c_in, c_out)`` rows, kind ``'cell'`` or ``'reduce'``."""
    if C < 1 or N < 1:
        raise ConfigError(f"need C >= 1 and N >= 1; got C={C}, N={N}")
    rows: list[tuple[str, int, int]] = []
    for stage, width in enumerate((C, 2 * C, 4 * C)):
        if stage > 0:
            rows.append(("reduce", width // 2, width))
        rows.extend(("cell", width, width) for _ in range(N))
    return rows


class _Skeleton(nn.Module):
    """Stem, cells and residual blocks, head; ``make_cell(width)`` builds each cell.
    ``head_flags``: ``(affine, track_running_stats)`` of the head BatchNorm."""

    def __init__(
        self,
        C: int,
        N: int,
        num_classes: int,
        make_cell: Callable[[int], nn.Module],
        head_flags: tuple[bool, bool] = (True, True),
    ):
        super().__init__()
        if num_classes < 1:
            raise ConfigError(f"num_classes must be >= 1; got {num_classes}")
        self.C, self.N, self.num_classes = C, N, num_classes
        self.stem = nn.Sequential(
            nn.Conv2d(3, C, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(C)
        )
        self.cells = nn.ModuleList(
            ResNetBasicBlock(c_in, c_out) if kind == "reduce" else make_cell(c_out)
            for kind, c_in, c_out in stage_layout(C, N)
        )
        affine, track = head_flags
        self.lastact = nn.Sequential(
            nn.BatchNorm2d(4 * C, affine=affine, track_running_stats=track), nn.ReLU(inplace=False)
        )
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(4 * C, num_classes)

    @property
    def n_cells(self) -> int:
        """Number of search/discrete cells (3N); residual blocks not included."""
        return 3 * self.N

    def head(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 4C, h, w) features -> (B, num_classes) logits."""
        x = self.lastact(x)  # (B, 4C, h, w)
        x = self.global_pooling(x).flatten(1)  # (B, 4C)
        return self.classifier(x)  # (B, num_classes)


class MixedCell(nn.Module):
    """A search cell: every edge holds all candidate ops.

    ``edges[e][k]`` is op ``OP_NAMES[k]`` on edge ``EDGES[e]``. ``fused``: evaluate all ops
    at once per source node when every op is active (see :meth:`forward_fused`).
    """

    def __init__(
        self, channels: int, affine: bool, track_running_stats: bool, fused: bool = True
    ) -> None:
        super().__init__()
        self.channels, self.fused = channels, fused
        self.edges = nn.ModuleList(
            nn.ModuleList(make_op(name, channels, affine, track_running_stats) for name in OP_NAMES)
            for _ in EDGES
        )

    def edge_op(self, edge: int, op: int) -> nn.Module:
        """The instance of op ``OP_NAMES[op]`` on edge ``EDGES[edge]``."""
        return cast(nn.ModuleList, self.edges[edge])[op]

    def forward(
        self,
        x: torch.Tensor,
        weights: torch.Tensor,
        active: list[list[bool]] | None,
        zero_terms: bool = False,
    ) -> torch.Tensor:
        """(B, C, H, W), weights (6, 5) -> (B, C, H, W).

        Edge ``e`` outputs ``sum_k weights[e, k] * op_k(x)``. ``none`` is never evaluated (its
        term is identically zero); ``active[e][k] == False`` drops op ``k`` of edge ``e`` too.
        ``zero_terms``: a dropped op adds its weight itself (0 in value) to the edge output, as
        GDAS's official forward does, so its weight's gradient is the sum of the edge output's.
        """
        dense = active is None or all(
            active[e][k] for e in range(NUM_EDGES) for k in range(NUM_OPS) if k != _NONE
        )
        if self.fused and dense:
            return self.forward_fused(x, weights)
        nodes = [x]
        for dst in (1, 2, 3):
            total: torch.Tensor | None = None
            for e, (src, d) in enumerate(EDGES):
                if d != dst:
                    continue
                edge: torch.Tensor | None = None
                zeros: list[torch.Tensor] = []  # weights of the dropped ops (zero_terms)
                for k in range(NUM_OPS):
                    dropped = active is not None and not active[e][k]
                    if zero_terms and dropped:
                        zeros.append(weights[e, k])
                    if k == _NONE or dropped:
                        continue
                    term = weights[e, k] * self.edge_op(e, k)(nodes[src])  # (B, C, H, W)
                    edge = term if edge is None else edge + term
                if zeros:  # 0 in value, broadcast over the edge output
                    scalar = torch.stack(zeros).sum()
                    edge = scalar.expand_as(nodes[src]) if edge is None else edge + scalar
                if edge is not None:
                    total = edge if total is None else total + edge  # (B, C, H, W)
            nodes.append(torch.zeros_like(x) if total is None else total)
        return nodes[3]

    def forward_fused(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """The dense forward with the ops of each source node batched (same math, far fewer
        kernels: GPU steps at this size are bound by kernel launches).

        Per source node: one ReLU, one convolution for the 1x1 ops of all its edges and one for
        the 3x3 ops (weights concatenated along the output channels), one BatchNorm call for
        each (BN is per channel, so concatenating channels changes nothing), one average pool
        and one skip shared by its edges. (B, C, H, W), weights (6, 5) -> (B, C, H, W).
        """
        nodes = [x]
        into: dict[int, list[torch.Tensor]] = {1: [], 2: [], 3: []}
        for src, edges in enumerate(_FROM_SOURCE):
            if src > 0:
                nodes.append(sum(into[src][1:], into[src][0]))
            h = nodes[src]  # (B, C, H, W)
            relu = nn.functional.relu(h)
            # (n, 5) rows of this node's edges; stacked views, no index tensor (a host copy
            # that CUDA-graph capture would refuse)
            w = torch.stack([weights[e] for e in edges])
            shape = (len(edges), 1, 1, 1)  # broadcast over (n, C, H, W) per sample
            mixed = (
                self._conv_bn(relu, edges, _CONV1).unflatten(1, (len(edges), self.channels))
                * w[:, _CONV1].reshape(shape)
                + self._conv_bn(relu, edges, _CONV3).unflatten(1, (len(edges), self.channels))
                * w[:, _CONV3].reshape(shape)
                + h.unsqueeze(1) * w[:, _SKIP].reshape(shape)
                + self.edge_op(edges[0], _POOL)(h).unsqueeze(1) * w[:, _POOL].reshape(shape)
            )  # (B, n, C, H, W)
            for j, e in enumerate(edges):
                into[EDGES[e][1]].append(mixed[:, j])
        return sum(into[3][1:], into[3][0])

    def _conv_bn(self, relu: torch.Tensor, edges: tuple[int, ...], op: int) -> torch.Tensor:
        """Conv + BN of op ``op`` on every edge in ``edges`` as one call each:
        (B, C, H, W) -> (B, len(edges) * C, H, W)."""
        units = [cast(nn.Sequential, self.edge_op(e, op).op) for e in edges]
        convs = [cast(nn.Conv2d, u[1]) for u in units]
        bns = [cast(nn.BatchNorm2d, u[2]) for u in units]
        bias = None if convs[0].bias is None else cat([c.bias for c in convs])  # type: ignore[misc]
        y = nn.functional.conv2d(
            relu, cat([c.weight for c in convs]), bias, padding=convs[0].padding
        )
        return fused_batch_norm(y, bns)


class TssSuperNet(_Skeleton):
    """Weight-sharing supernet of the topology space (the benchmark's search model).

    It owns no architecture parameters: :meth:`forward` takes the edge weights. Cell BNs follow
    ``affine`` / ``track_running_stats`` (NATS-Bench searches with both False; NAS-Bench-201
    scripts with ``track_running_stats=True``).

    Args:
        num_classes: classifier outputs.
        C: channels of the first stage. N: cells per stage.
        affine, track_running_stats: BatchNorm flags of the cell ops.
        fused: evaluate dense cells with the ops of each source node batched
            (:meth:`MixedCell.forward_fused`; same parameters and state dict).
        head_like_cells: the head BatchNorm takes the cells' flags, as in NATS-Bench's search
            model (``GenericNAS201Model``); default affine with running statistics, as in
            NAS-Bench-201's (``TinyNetworkDarts``).
    """

    #: the space it searches: architecture weights of shape (6 edges, 5 ops)
    space: ClassVar[Space] = get_space("tss")

    def __init__(
        self,
        *,
        num_classes: int,
        C: int = 16,
        N: int = 5,
        affine: bool = False,
        track_running_stats: bool = False,
        fused: bool = True,
        head_like_cells: bool = False,
    ) -> None:
        self.affine, self.track_running_stats = affine, track_running_stats
        self.head_like_cells = head_like_cells
        super().__init__(
            C, N, num_classes, lambda c: MixedCell(c, affine, track_running_stats, fused),
            (affine, track_running_stats) if head_like_cells else (True, True),
        )  # fmt: skip

    def forward(
        self,
        x: torch.Tensor,
        edge_weights: torch.Tensor,
        *,
        skip_zero: bool | None = None,
        zero_terms: bool = False,
    ) -> torch.Tensor:
        """Logits of the weighted mixture.

        Args:
            x: images (B, 3, H, W), float; H and W divisible by 4.
            edge_weights: (6, 5) shared by all cells, or (3N, 6, 5) one slice per cell;
                row ``e`` weighs the ops of edge ``EDGES[e]`` in ``OP_NAMES`` order.
            skip_zero: whether ops whose weight is exactly 0 are left out.
                ``None`` (default): only when no gradient of ``edge_weights`` is recorded (it
                does not require grad, or grad mode is off). The logits are then identical to
                the dense sum, but the skipped ops' parameters get no gradient (None, not
                zeros) and their BNs no running-stat update, as in the benchmark's single-path
                forwards. ``True``: also when it requires grad; the gradient of a zero weight
                is then 0 instead of ``<dL/d out, op(x)>``. ``False``: dense evaluation.
            zero_terms: with ``skip_zero``, every left-out op adds its (zero) weight to its
                edge's output, as GDAS's official cell does: the logits are unchanged and a
                zero weight's gradient is the sum of the gradient of that edge's output.

        Returns:
            logits (B, num_classes).
        """
        per_cell = self._check_weights(edge_weights)
        if skip_zero is None:  # exact for the logits and for d logits / d edge_weights
            skip_zero = not (edge_weights.requires_grad and torch.is_grad_enabled())
        active = (edge_weights != 0).tolist() if skip_zero else None  # one host sync
        feature = self.stem(x)  # (B, C, H, W)
        index = 0
        for cell in self.cells:
            if isinstance(cell, MixedCell):
                weights = edge_weights[index] if per_cell else edge_weights  # (6, 5)
                mask = (active[index] if per_cell else active) if active is not None else None
                feature = cell(feature, weights, mask, zero_terms)  # (B, c, h, w)
                index += 1
            else:
                feature = cell(feature)  # (B, 2c, h/2, w/2)
        return self.head(feature)  # (B, num_classes)

    def set_fused(self, fused: bool) -> None:
        """Switch every cell between the fused and the per-op dense forward."""
        for cell in self.cells:
            if isinstance(cell, MixedCell):
                cell.fused = fused

    def _check_weights(self, edge_weights: torch.Tensor) -> bool:
        shared, per_cell = (NUM_EDGES, NUM_OPS), (self.n_cells, NUM_EDGES, NUM_OPS)
        shape = tuple(edge_weights.shape)
        if shape not in (shared, per_cell):
            raise ConfigError(f"edge_weights must have shape {shared} or {per_cell}; got {shape}")
        return shape == per_cell


class DiscreteCell(nn.Module):
    """A cell with one op per edge; ``edges[e]`` is the op of edge ``EDGES[e]``."""

    def __init__(
        self, ops: Sequence[str], channels: int, affine: bool, track_running_stats: bool
    ) -> None:
        super().__init__()
        self.op_names = tuple(ops)
        self.edges = nn.ModuleList(
            make_op(name, channels, affine, track_running_stats) for name in self.op_names
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W); ``none`` edges add nothing."""
        nodes = [x]
        for dst in (1, 2, 3):
            total: torch.Tensor | None = None
            for e, (src, d) in enumerate(EDGES):
                if d != dst or self.op_names[e] == "none":
                    continue
                out = self.edges[e](nodes[src])  # (B, C, H, W)
                total = out if total is None else total + out
            nodes.append(torch.zeros_like(x) if total is None else total)
        return nodes[3]


class TssNetwork(_Skeleton):
    """The discrete network of one architecture (the benchmark's evaluation network).

    Args:
        arch: architecture string, official index, or 6 per-edge ops (names or indices).
        num_classes: 10 (CIFAR-10), 100 (CIFAR-100), 120 (ImageNet16-120).
        C, N: channels of the first stage and cells per stage (16 and 5 in the benchmark).
        affine, track_running_stats: BatchNorm flags of the cell ops (True in the benchmark).
        head_like_cells: the head BatchNorm takes those flags too (a network from a supernet
            built so); default affine with running statistics.
    """

    def __init__(
        self,
        arch: str | int | Sequence[int] | Sequence[str],
        *,
        num_classes: int,
        C: int = 16,
        N: int = 5,
        affine: bool = True,
        track_running_stats: bool = True,
        head_like_cells: bool = False,
    ) -> None:
        self.ops = arch_ops(arch)
        self.affine, self.track_running_stats = affine, track_running_stats
        super().__init__(
            C, N, num_classes, lambda c: DiscreteCell(self.ops, c, affine, track_running_stats),
            (affine, track_running_stats) if head_like_cells else (True, True),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, H, W), H and W divisible by 4 -> logits (B, num_classes)."""
        feature = self.stem(x)  # (B, C, H, W)
        for cell in self.cells:
            feature = cell(feature)  # (B, c, h, w)
        return self.head(feature)  # (B, num_classes)


def network_from_supernet(
    supernet: TssSuperNet, arch: str | int | Sequence[int] | Sequence[str]
) -> TssNetwork:
    """A :class:`TssNetwork` of ``arch`` holding copies of the supernet's weights.

    The network has the supernet's C, N, classes and BN flags; each edge takes the weights of
    the chosen op on that edge of the same cell. It sits on the CPU in float32 unless moved.
    """
    net = TssNetwork(
        arch,
        num_classes=supernet.num_classes,
        C=supernet.C,
        N=supernet.N,
        affine=supernet.affine,
        track_running_stats=supernet.track_running_stats,
        head_like_cells=supernet.head_like_cells,
    )
    source = supernet.state_dict()
    target: dict[str, torch.Tensor] = {}
    for key in net.state_dict():
        parts = key.split(".")
        if parts[0] == "cells" and len(parts) > 3 and parts[2] == "edges":
            parts.insert(4, str(OP_NAMES.index(net.ops[int(parts[3])])))
        target[key] = source[".".join(parts)].detach().clone()
    net.load_state_dict(target)
    return net
