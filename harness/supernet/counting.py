"""Parameter and FLOP counting, in the benchmark's conventions.

NATS-Bench reports ``params`` in MB, meaning millions of learnable parameters (BatchNorm running
statistics excluded), and ``flop`` in M, meaning millions of multiply-adds of one image counted
on ``Conv2d`` and ``Linear`` layers only, their biases included; BatchNorm, ReLU, pooling and
additions are free. :func:`count_flops` measures that with forward hooks; the closed forms
:func:`tss_param_counts` and :func:`tss_flop_counts` give the same numbers for many topology-space
architectures at once without building modules, and :func:`sss_param_counts` and
:func:`sss_flop_counts` for size-space architectures.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from harness.errors import ConfigError
from harness.spaces import sss as sss_space
from harness.supernet.ops import OP_NAMES, op_param_count

logger = logging.getLogger(__name__)

_KERNEL = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}


@dataclass(frozen=True)
class ModelCost:
    """Size of a model in the benchmark's units: ``params_mb`` (1e6 parameters), ``flop_m``
    (1e6 multiply-adds per image)."""

    params_mb: float
    flop_m: float


def count_params(model: nn.Module) -> int:
    """Number of learnable parameters (BatchNorm buffers are not parameters)."""
    return sum(p.numel() for p in model.parameters())


def count_flops(
    model: nn.Module,
    input_size: Sequence[int],
    forward_args: tuple[object, ...] = (),
    *,
    include_bias: bool = True,
    include_pooling: bool = False,
) -> int:
    """Multiply-adds of one forward pass of one image, measured with forward hooks.

    Args:
        model: any module; it is run once in eval mode under ``torch.no_grad`` on zeros, on the
            device and dtype of its first parameter, and its training mode is restored.
        input_size: ``(3, H, W)`` (one image).
        forward_args: extra positional arguments of ``model.forward`` (e.g. edge weights).
        include_bias: count one addition per output of a conv/linear with a bias (benchmark).
        include_pooling: also count ``k*k`` per output of ``AvgPool2d`` / ``MaxPool2d`` (the
            benchmark does not).

    Returns:
        Multiply-adds (divide by 1e6 for the benchmark's ``flop`` field).
    """
    if len(input_size) != 3:
        raise ConfigError(f"input_size must be (C, H, W); got {tuple(input_size)}")
    total = [0]

    def conv_hook(module: nn.Conv2d, inputs: object, output: torch.Tensor) -> None:
        kh, kw = module.kernel_size
        positions = output.numel() // module.out_channels  # B * H_out * W_out
        per_position = kh * kw * module.in_channels * module.out_channels // module.groups
        total[0] += per_position * positions
        if include_bias and module.bias is not None:
            total[0] += output.numel()

    def linear_hook(module: nn.Linear, inputs: object, output: torch.Tensor) -> None:
        total[0] += output.numel() * module.in_features
        if include_bias and module.bias is not None:
            total[0] += output.numel()

    def pool_hook(
        module: nn.AvgPool2d | nn.MaxPool2d, inputs: object, output: torch.Tensor
    ) -> None:
        k = module.kernel_size
        kh, kw = (k, k) if isinstance(k, int) else k
        total[0] += output.numel() * kh * kw

    handles = []
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            handles.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, nn.Linear):
            handles.append(module.register_forward_hook(linear_hook))
        elif include_pooling and isinstance(module, nn.AvgPool2d | nn.MaxPool2d):
            handles.append(module.register_forward_hook(pool_hook))
    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    dtype = first.dtype if first is not None else torch.float32
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *input_size, device=device, dtype=dtype), *forward_args)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return total[0]


def model_cost(
    model: nn.Module, input_size: Sequence[int], forward_args: tuple[object, ...] = ()
) -> ModelCost:
    """Params (MB) and FLOPs (M) of ``model`` as the benchmark reports them."""
    flops = count_flops(model, input_size, forward_args)
    return ModelCost(params_mb=count_params(model) / 1e6, flop_m=flops / 1e6)


def _op_counts(ops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Numbers of 1x1 and 3x3 convolution edges per architecture; ops (n, 6) op indices."""
    ops = np.asarray(ops)
    if ops.ndim != 2 or ops.shape[1] != 6 or ops.min(initial=0) < 0 or ops.max(initial=0) > 4:
        raise ConfigError(f"ops must be an (n, 6) array of op indices 0..4; got {ops.shape}")
    n1 = (ops == OP_NAMES.index("nor_conv_1x1")).sum(axis=1)
    n3 = (ops == OP_NAMES.index("nor_conv_3x3")).sum(axis=1)
    return n1.astype(np.int64), n3.astype(np.int64)


def tss_param_counts(ops: np.ndarray, num_classes: int, C: int = 16, N: int = 5) -> np.ndarray:
    """Closed-form learnable-parameter counts of :class:`~harness.supernet.tss.TssNetwork`.

    Args:
        ops: (n, 6) op indices into :data:`OP_NAMES`, edges in string order.
        num_classes, C, N: as for the network (benchmark: C=16, N=5).

    Returns:
        (n,) int64 parameter counts (divide by 1e6 for the benchmark's ``params``).
    """
    n1, n3 = _op_counts(ops)
    widths = (C, 2 * C, 4 * C)
    per_1x1 = sum(op_param_count("nor_conv_1x1", w) for w in widths)
    per_3x3 = sum(op_param_count("nor_conv_3x3", w) for w in widths)
    stem = 9 * 3 * C + 2 * C
    blocks = sum(9 * c * 2 * c + 9 * (2 * c) ** 2 + c * 2 * c + 4 * 2 * c for c in (C, 2 * C))
    head = 2 * 4 * C + 4 * C * num_classes + num_classes
    return stem + blocks + head + N * (n1 * per_1x1 + n3 * per_3x3)


def tss_flop_counts(
    ops: np.ndarray, num_classes: int, resolution: int, C: int = 16, N: int = 5
) -> np.ndarray:
    """Closed-form multiply-adds per image of :class:`~harness.supernet.tss.TssNetwork`, counted
    as :func:`count_flops` does by default.

    Args:
        ops: (n, 6) op indices into :data:`OP_NAMES`, edges in string order.
        num_classes, C, N: as for the network.
        resolution: input side (32 for CIFAR, 16 for ImageNet16-120), divisible by 4.

    Returns:
        (n,) int64 multiply-adds (divide by 1e6 for the benchmark's ``flop``).
    """
    if resolution % 4:
        raise ConfigError(f"resolution must be divisible by 4; got {resolution}")
    n1, n3 = _op_counts(ops)
    stages = [(C * (2**s), (resolution // 2**s) ** 2) for s in range(3)]  # (width, pixels)
    per_1x1 = sum(w * w * px for w, px in stages)
    per_3x3 = sum(9 * w * w * px for w, px in stages)
    stem = 9 * 3 * C * resolution**2
    blocks = sum(
        (9 * c * 2 * c + 9 * (2 * c) ** 2 + c * 2 * c) * px
        for (c, _), (_, px) in itertools.pairwise(stages)
    )
    head = 4 * C * num_classes + num_classes
    return stem + blocks + head + N * (n1 * per_1x1 + n3 * per_3x3)


def _sss_widths(widths: np.ndarray) -> np.ndarray:
    """(n, 5) layer widths as int64, each one of the size space's widths."""
    widths = np.asarray(widths)
    if widths.ndim != 2 or widths.shape[1] != sss_space.NUM_LAYERS:
        raise ConfigError(f"widths must be an (n, 5) array of layer widths; got {widths.shape}")
    if not np.isin(widths, sss_space.WIDTHS).all():
        raise ConfigError(f"sss widths must be among {sss_space.WIDTHS}")
    return widths.astype(np.int64)


def sss_param_counts(widths: np.ndarray, num_classes: int) -> np.ndarray:
    """Closed-form learnable-parameter counts of :class:`~harness.supernet.sss.SssNetwork` (the
    benchmark's network: affine BNs, so no conv biases; factorized width-changing skips).

    A cell ``a -> b`` has two 3x3 ReLUConvBNs ``a -> b``, three ``b -> b`` and, when ``a != b``,
    a 1x1 conv + BN skip; a residual block ``a -> b`` has 3x3 convs ``a -> b`` and ``b -> b``
    with BNs and a bias-free 1x1 shortcut ``a -> b``.

    Args:
        widths: (n, 5) layer widths ``C1..C5`` (e.g. ``harness.spaces.sss.all_widths()``).
        num_classes: classifier outputs.

    Returns:
        (n,) int64 parameter counts (divide by 1e6 for the benchmark's ``params``).
    """
    c1, c2, c3, c4, c5 = _sss_widths(widths).T

    def cell(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return 2 * (9 * a * b + 2 * b) + 3 * (9 * b * b + 2 * b) + (a != b) * (a * b + 2 * b)

    def block(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return 9 * a * b + 9 * b * b + 4 * b + a * b

    stem = 27 * c1 + 2 * c1
    head = 2 * c5 + c5 * num_classes + num_classes
    return stem + cell(c1, c1) + block(c1, c2) + cell(c2, c3) + block(c3, c4) + cell(c4, c5) + head


def sss_flop_counts(widths: np.ndarray, num_classes: int, resolution: int) -> np.ndarray:
    """Closed-form multiply-adds per image of :class:`~harness.supernet.sss.SssNetwork` (the
    benchmark's network), counted as :func:`count_flops` does by default.

    Args:
        widths: (n, 5) layer widths ``C1..C5``.
        num_classes: classifier outputs.
        resolution: input side (32 for CIFAR, 16 for ImageNet16-120), divisible by 4.

    Returns:
        (n,) int64 multiply-adds (divide by 1e6 for the benchmark's ``flop``).
    """
    if resolution % 4:
        raise ConfigError(f"resolution must be divisible by 4; got {resolution}")
    c1, c2, c3, c4, c5 = _sss_widths(widths).T
    px1, px2, px3 = ((resolution // 2**s) ** 2 for s in range(3))  # pixels per stage

    def cell(a: np.ndarray, b: np.ndarray, px: int) -> np.ndarray:
        return (2 * 9 * a * b + 3 * 9 * b * b + (a != b) * a * b) * px

    def block(a: np.ndarray, b: np.ndarray, px_out: int) -> np.ndarray:
        return (9 * a * b + 9 * b * b + a * b) * px_out

    stem = 27 * c1 * px1
    head = c5 * num_classes + num_classes
    return (
        stem
        + cell(c1, c1, px1)
        + block(c1, c2, px2)
        + cell(c2, c3, px2)
        + block(c3, c4, px3)
        + cell(c4, c5, px3)
        + head
    )
