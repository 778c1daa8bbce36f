"""Compiled dense forwards of a supernet (``torch.compile``), shared by search and selection.

A dense forward evaluates every candidate op (``skip_zero=False``), so it never reads the edge
weights on the host and traces to one graph per (batch shape, whether the weights need
gradients). It gives the same logits as the eager forward; it is only offered to methods whose
weights have no exact zeros besides ``none`` (``SupernetMethod.dense_weights``), where it also
gives the same gradients. One compiled function serves every supernet of the process: it takes
the module as an argument, so nothing here holds a supernet alive.

Modes (:data:`COMPILE_MODES`): ``default`` fuses the elementwise work around the convolutions;
``reduce-overhead`` also replays the forward and backward as CUDA graphs;
``max-autotune-no-cudagraphs`` tunes kernels at compile time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from harness.errors import ConfigError, unknown

logger = logging.getLogger(__name__)

__all__ = ["COMPILE_MODES", "check_compile_mode", "dense_forward"]

COMPILE_MODES: tuple[str, ...] = ("default", "reduce-overhead", "max-autotune-no-cudagraphs")
#: recompilations allowed per compiled function: weight and architecture forwards, the last
#: smaller batch of an epoch, and every supernet a process builds (search, selection copies).
RECOMPILE_LIMIT = 64

_COMPILED: dict[str, Callable[..., Any]] = {}


def check_compile_mode(mode: str | None) -> None:
    """ConfigError unless ``mode`` is None or one of :data:`COMPILE_MODES`."""
    if mode is not None and mode not in COMPILE_MODES:
        raise ConfigError(unknown("compile mode", mode, COMPILE_MODES))


def _dense(net: nn.Module, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    return net(x, weights, skip_zero=False)


def dense_forward(
    supernet: nn.Module, mode: str
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``(x, weights) -> logits`` of ``supernet`` evaluated densely, compiled with ``mode``.

    Compilation happens at the first call of each new input signature (tens of seconds).
    """
    check_compile_mode(mode)
    compiled = _COMPILED.get(mode)
    if compiled is None:
        dynamo = torch._dynamo.config
        dynamo.cache_size_limit = max(dynamo.cache_size_limit, RECOMPILE_LIMIT)
        compiled = torch.compile(_dense, mode=mode, dynamic=False)
        _COMPILED[mode] = compiled
        logger.info("supernet forwards compiled with torch.compile(mode=%r)", mode)

    def forward(x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return compiled(supernet, x, weights)

    return forward
