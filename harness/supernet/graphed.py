"""Whole search steps captured as CUDA graphs and replayed (``SearchConfig.cuda_graph``).

At the NAS-Bench-201 size a search step launches thousands of small kernels; eagerly, the host
cannot launch them as fast as the GPU runs them. A captured step is replayed with one launch.

What makes a step capturable, and how this module provides it:

* no host reads: the supernet is evaluated densely (``skip_zero=False``, methods with
  ``dense_weights``), losses stay on the device, and only methods whose step reads nothing
  back opt in (:meth:`~harness.supernet.method.SupernetMethod.capturable`);
* a learning rate that changes per step: the weight update is
  :func:`harness.supernet.optim.sgd_update_`, which
  reads the rate from a device tensor that the loop fills before each step;
* optimiser state on the device: the method's optimisers are switched to ``capturable``;
* static inputs: batches are copied into the captured step's input tensors; a batch of
  another shape (the last, smaller batch of an epoch) runs eagerly, with the same code.

The first ``WARMUP_STEPS`` steps run eagerly on a side stream (they are real search steps;
PyTorch needs them before a capture), the next step is captured, and every later full-size
step replays it. Eager and replayed steps compute the same update; they differ only in
floating-point rounding order where kernels differ.
"""

from __future__ import annotations

import logging

import torch

from harness.errors import ConfigError
from harness.supernet.method import Batch, StepContext
from harness.supernet.optim import capturable_optimisers

logger = logging.getLogger(__name__)

__all__ = ["WARMUP_STEPS", "GraphedStep"]

WARMUP_STEPS = 3


class GraphedStep:
    """Runs a method's search steps, replaying a captured CUDA graph when it can (module
    docstring). It gives ``ctx`` a device learning rate, ``ctx.lr_tensor``, that the loop fills
    before each step."""

    def __init__(self, ctx: StepContext) -> None:
        if torch.device(ctx.config.device).type != "cuda":
            raise ConfigError(f"cuda_graph needs a CUDA device; got {ctx.config.device!r}")
        if not ctx.method.capturable():
            raise ConfigError(
                f"method {ctx.method.name!r} with this config cannot be captured in a CUDA "
                "graph (it reads values back to the host or draws random numbers per step)"
            )
        ctx.lr_tensor = torch.zeros((), device=ctx.config.device)  # the loop fills it
        capturable_optimisers(ctx.method_state)
        self.ctx = ctx
        self.eager_steps = 0
        self.graph: torch.cuda.CUDAGraph | None = None
        self.static: tuple[Batch, Batch] | None = None
        self.static_loss: torch.Tensor | None = None
        self.passes = (0, 0)
        self.side = torch.cuda.Stream(device=ctx.config.device)

    def _eager(self, train_batch: Batch, arch_batch: Batch) -> torch.Tensor:
        ctx = self.ctx
        self.side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(self.side):
            loss = torch.as_tensor(ctx.method.step(ctx, train_batch, arch_batch))
        torch.cuda.current_stream().wait_stream(self.side)
        self.eager_steps += 1
        return loss

    def _capture(self, train_batch: Batch, arch_batch: Batch) -> None:
        ctx = self.ctx
        self.static = (
            (train_batch[0].clone(), train_batch[1].clone()),
            (arch_batch[0].clone(), arch_batch[1].clone()),
        )
        before = (ctx.ledger.forward_passes, ctx.ledger.backward_passes)
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            loss = ctx.method.step(ctx, self.static[0], self.static[1])
            self.static_loss = torch.as_tensor(loss)
        # the capture ran nothing: take back its counts, charge them per replay instead
        ledger = ctx.ledger
        self.passes = (ledger.forward_passes - before[0], ledger.backward_passes - before[1])
        ctx.ledger.forward_passes, ctx.ledger.backward_passes = before
        self.graph = graph
        logger.info("search step captured as a CUDA graph after %d eager steps", self.eager_steps)

    def __call__(self, train_batch: Batch, arch_batch: Batch) -> torch.Tensor:
        """One search step (eager, or a replay of the captured graph); returns its loss."""
        if self.eager_steps < WARMUP_STEPS:
            return self._eager(train_batch, arch_batch)
        if self.graph is None:
            self._capture(train_batch, arch_batch)
        assert self.static is not None and self.graph is not None
        (x, y), (ax, ay) = self.static
        if x.shape != train_batch[0].shape or ax.shape != arch_batch[0].shape:
            return self._eager(train_batch, arch_batch)
        x.copy_(train_batch[0])
        y.copy_(train_batch[1])
        ax.copy_(arch_batch[0])
        ay.copy_(arch_batch[1])
        self.graph.replay()
        self.ctx.ledger.forward_passes += self.passes[0]
        self.ctx.ledger.backward_passes += self.passes[1]
        assert self.static_loss is not None
        return self.static_loss.clone()
