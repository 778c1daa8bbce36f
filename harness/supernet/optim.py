"""Optimiser steps that read nothing back to the host, for CUDA-graph capture.

:func:`sgd_update_` is the weight update of the search loop when the learning rate lives in a
device tensor; :func:`capturable_optimisers` switches a method's optimisers (Adam on the
architecture weights) to keep their state on the device.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from harness.errors import ConfigError

logger = logging.getLogger(__name__)

__all__ = ["capturable_optimisers", "sgd_update_"]


@torch.no_grad()
def sgd_update_(optimizer: torch.optim.SGD, lr: torch.Tensor | float) -> None:
    """SGD (momentum, weight decay, Nesterov; no dampening) of ``optimizer``'s parameters at
    learning rate ``lr`` (a device tensor is read on the device), with the momentum buffers
    kept in ``optimizer.state`` as ``torch.optim.SGD`` keeps them: the same update as
    ``optimizer.step()``, without host reads. Parameters without a gradient are skipped."""
    for group in optimizer.param_groups:
        params = [p for p in group["params"] if p.grad is not None]
        if not params:
            continue
        grads = [p.grad for p in params]
        momentum, decay = group["momentum"], group["weight_decay"]
        if group.get("dampening", 0) or group.get("maximize", False):
            raise ConfigError("sgd_update_ supports neither dampening nor maximize")
        steps = torch._foreach_add(grads, params, alpha=decay) if decay else list(grads)
        if momentum:
            states = [optimizer.state[p] for p in params]
            if any(s.get("momentum_buffer") is None for s in states):  # first step
                for state, step in zip(states, steps, strict=True):
                    state["momentum_buffer"] = step.clone()
                bufs = [s["momentum_buffer"] for s in states]
            else:
                bufs = [s["momentum_buffer"] for s in states]
                torch._foreach_mul_(bufs, momentum)
                torch._foreach_add_(bufs, steps)
            if group["nesterov"]:
                steps = torch._foreach_add(steps, bufs, alpha=momentum)
            else:
                steps = bufs
        if isinstance(lr, torch.Tensor):
            torch._foreach_sub_(params, torch._foreach_mul(steps, lr))
        else:
            torch._foreach_add_(params, steps, alpha=-lr)


def capturable_optimisers(method_state: dict[str, Any]) -> None:
    """Switch the method's optimisers to ``capturable`` (state kept on the device)."""
    for value in method_state.values():
        if not isinstance(value, torch.optim.Optimizer):
            continue
        for group in value.param_groups:
            if "capturable" in group:
                group["capturable"] = True
        for param, state in value.state.items():
            if isinstance(state.get("step"), torch.Tensor):
                state["step"] = state["step"].to(param.device, torch.float32)
