"""CUDA-graph search steps against eager steps (needs a CUDA device; CPU parts always run)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.errors import ConfigError
from harness.registry import make_method
from harness.supernet.optim import sgd_update_
from harness.supernet.search import run_supernet_search
from harness.supernet.selection import (
    ArchTuning,
    PerturbationConfig,
    SelectionResult,
    select_perturbation,
)
from harness.supernet.testing import tiny_config, tiny_loaders, tiny_supernet

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.parametrize("nesterov", [True, False])
def test_sgd_update_equals_torch_sgd(nesterov: bool) -> None:
    gen = torch.Generator().manual_seed(0)
    ours = [torch.randn(5, 3, generator=gen) for _ in range(3)]
    ref = [p.clone() for p in ours]
    kwargs = dict(lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=nesterov)
    opt_ours, opt_ref = torch.optim.SGD(ours, **kwargs), torch.optim.SGD(ref, **kwargs)
    for step in range(4):
        grads = [torch.randn(5, 3, generator=gen) for _ in ours]
        for p, q, g in zip(ours, ref, grads, strict=True):
            p.grad, q.grad = g.clone(), g.clone()
        lr = 0.1 / (step + 1)
        for group in opt_ref.param_groups:
            group["lr"] = lr
        opt_ref.step()
        sgd_update_(opt_ours, torch.tensor(lr) if step % 2 else lr)
    for p, q in zip(ours, ref, strict=True):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(
            opt_ours.state[p]["momentum_buffer"], opt_ref.state[q]["momentum_buffer"]
        )


def test_cuda_graph_rejected_off_cuda_and_for_uncapturable_methods() -> None:
    train, valid = tiny_loaders(0)
    with pytest.raises(ConfigError, match="CUDA"):
        run_supernet_search(
            make_method("darts_v1"), tiny_supernet(0), train, valid,
            tiny_config(epochs=1, cuda_graph=True), np.random.default_rng(0),
        )  # fmt: skip
    assert not make_method("darts_v2").capturable()
    assert not make_method("gdas").capturable()
    assert make_method("darts_v1").capturable() and make_method("gaea").capturable()


@needs_cuda
@pytest.mark.parametrize("name", ["darts_v1", "gaea"])
def test_graphed_search_matches_eager(name: str) -> None:
    """Replayed steps train like eager ones. Not bitwise: the update and the kernels round
    differently, and Adam / EG amplify rounding in near-zero gradients, so the tolerances are
    those of two runs of one search, far below what a missing or stale update would cause."""
    results = {}
    for graph in (False, True):
        train, valid = tiny_loaders(0, batch=6)  # 32 images: 5 full batches and one of 2
        train.images, train.labels = train.images.cuda(), train.labels.cuda()
        valid.images, valid.labels = valid.images.cuda(), valid.labels.cuda()
        config = tiny_config(epochs=3, max_steps_per_epoch=None, device="cuda", cuda_graph=graph)
        result = run_supernet_search(
            make_method(name), tiny_supernet(0), train, valid, config, np.random.default_rng(0)
        )
        results[graph] = result
    eager, graphed = results[False], results[True]
    np.testing.assert_allclose(graphed.arch_weights, eager.arch_weights, atol=0.03)
    assert [r.train_loss for r in graphed.history] == pytest.approx(
        [r.train_loss for r in eager.history], rel=0.02
    )
    assert graphed.history[-1].train_loss < graphed.history[0].train_loss  # it trains
    assert graphed.ledger.forward_passes == eager.ledger.forward_passes
    assert graphed.ledger.backward_passes == eager.ledger.backward_passes


def _tuned_selection(
    device: str, search_graph: bool, tune_graph: bool
) -> tuple[torch.Tensor, torch.Tensor, SelectionResult]:
    """A short DARTS search on ``device``, then DARTS-PT selection whose tuning runs the
    method's own steps; each stage captured as a CUDA graph when asked. Returns alpha before
    and after the tuning, and the selection."""
    train, valid = tiny_loaders(0, batch=6)
    for loader in (train, valid):
        loader.images, loader.labels = loader.images.to(device), loader.labels.to(device)
    method = make_method("darts_v1", arch_lr=0.01)
    net = tiny_supernet(0)
    config = tiny_config(epochs=1, max_steps_per_epoch=None, device=device, cuda_graph=search_graph)
    result = run_supernet_search(method, net, train, valid, config, np.random.default_rng(0))
    before = result.arch_state["alpha"].detach().cpu().clone()
    tuning = ArchTuning(
        method, result.arch_state, result.method_state, valid,
        torch.Generator(device).manual_seed(0), cuda_graph=tune_graph,
    )  # fmt: skip
    perturbation = PerturbationConfig(valid_batches=2, fine_tune_steps=5, last_tune_steps=4)
    chosen = select_perturbation(
        net, result.arch_weights, valid, perturbation, np.random.default_rng(0), train,
        tuning=tuning,
    )  # fmt: skip
    return before, result.arch_state["alpha"].detach().cpu(), chosen


def test_graphed_tuning_needs_cuda() -> None:
    with pytest.raises(ConfigError, match="CUDA"):
        _tuned_selection("cpu", search_graph=False, tune_graph=True)
    before, after, _ = _tuned_selection("cpu", search_graph=False, tune_graph=False)
    assert float((after - before).abs().mean()) > 0.01  # the tuning moves alpha visibly


@needs_cuda
def test_graphed_perturbation_tuning_matches_eager() -> None:
    """One graph, captured in the first tuning phase, serves every phase: the projected
    edges it reads are updated in place. The tuned alpha of both routes agree far more
    closely than either is from the untuned one (a stale or missing update would not)."""
    before, eager, eager_pick = _tuned_selection("cuda", search_graph=False, tune_graph=False)
    same, graphed, graphed_pick = _tuned_selection("cuda", search_graph=False, tune_graph=True)
    torch.testing.assert_close(same, before)
    moved = float((eager - before).abs().mean())  # Adam amplifies rounding in tiny gradients
    assert moved > 0.01 and float((graphed - eager).abs().mean()) < 0.2 * moved
    assert graphed_pick.details["order"] == eager_pick.details["order"]
    # 30 candidates x 2 batches, then 4 phases of 5 steps and one of 4, 2 passes each
    for pick in (eager_pick, graphed_pick):
        assert pick.details["forward_passes"] == 60 + 2 * 24
        assert pick.details["backward_passes"] == 2 * 24
