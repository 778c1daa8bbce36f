"""DARTS (first/second order), GAEA (exponentiated gradient), RARTS update rules."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.func import functional_call

from harness.errors import ConfigError
from harness.spaces import get_space
from harness.supernet.search import Batch, SearchConfig, SearchLedger, StepContext
from harness.supernet.testing import tiny_config, tiny_data, tiny_loaders, tiny_supernet
from methods.darts import Darts, DartsConfig, FixedAlpha, unrolled_arch_grad
from methods.drnas import Drnas, DrnasConfig, dirichlet_rsample
from methods.gaea import Gaea, GaeaConfig, candidate_mask, exponentiated_gradient_step
from methods.gdas import Gdas, GdasConfig, gumbel_hard
from methods.rarts import Rarts, RartsConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _batch(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = tiny_data(seed, n=8)
    return (x.double() - 100.0) / 50.0, y


def _context(xi: float) -> tuple[StepContext, torch.Tensor]:
    """float64 tiny supernet with a non-zero momentum buffer, and a leaf alpha (6, 5)."""
    net = tiny_supernet(1).double().train()
    opt = torch.optim.SGD(net.parameters(), lr=xi, momentum=0.9, weight_decay=5e-4)
    warm = _batch(7)
    torch.nn.functional.cross_entropy(
        net(*warm[:1], torch.full((6, 5), 0.2).double()), warm[1]
    ).backward()
    opt.step()  # fills the momentum buffers
    opt.zero_grad(set_to_none=True)
    gen = torch.Generator().manual_seed(0)
    alpha = (0.5 * torch.randn(6, 5, generator=gen, dtype=torch.float64)).requires_grad_(True)
    ctx = StepContext(
        Darts(DartsConfig(order=2)),
        net,
        opt,
        {"alpha": alpha},
        {},
        gen,
        SearchConfig(),
        SearchLedger(),
        lr=xi,
    )
    return ctx, alpha


def _unrolled_val_loss(ctx: StepContext, alpha: torch.Tensor, train: Batch, valid: Batch) -> float:
    """L_val(w - xi (m buf + grad_w L_train(w, a) + wd w), a), all in float64."""
    names, params = zip(*ctx.supernet.named_parameters(), strict=True)
    w = torch.softmax(alpha, dim=-1)
    loss = torch.nn.functional.cross_entropy(ctx.supernet(train[0], w), train[1])
    grads = torch.autograd.grad(loss, params)
    new = {}
    for n, p, g in zip(names, params, grads, strict=True):
        buf = ctx.weight_optimizer.state[p]["momentum_buffer"]
        new[n] = (p - ctx.lr * (0.9 * buf + g + 5e-4 * p)).detach()
    logits = functional_call(ctx.supernet, new, (valid[0], w))
    return float(torch.nn.functional.cross_entropy(logits, valid[1]))


def test_second_order_matches_finite_difference_hypergradient() -> None:
    xi = 0.5  # large, so that the implicit (second-order) term is far above the tolerance
    ctx, alpha = _context(xi)
    train, valid = _batch(11), _batch(12)
    # DARTS's eps = 0.01 / ||g|| is too coarse for this tiny, very non-linear net; the
    # finite-difference Hessian-vector product is checked at a finer scale
    got = unrolled_arch_grad(ctx, alpha, train, valid, hvp_scale=1e-5)
    h, fd = 1e-5, torch.zeros(6, 5, dtype=torch.float64)
    with torch.no_grad():
        for e in range(6):
            for k in range(5):
                values = []
                for sign in (1.0, -1.0):
                    a = alpha.detach().clone()
                    a[e, k] += sign * h
                    with torch.enable_grad():
                        values.append(_unrolled_val_loss(ctx, a, train, valid))
                fd[e, k] = (values[0] - values[1]) / (2 * h)
    scale = float(fd.abs().max())
    assert torch.allclose(got, fd, rtol=0, atol=2e-3 * scale), (got - fd).abs().max()
    # the first-order gradient at the unrolled weights alone is measurably different
    first = ctx.grad(ctx.loss(valid, torch.softmax(alpha, dim=-1)), [alpha])[0]
    assert float((first - fd).abs().max()) > 10 * float((got - fd).abs().max())


def test_exponentiated_gradient_stays_on_the_simplex() -> None:
    gen = torch.Generator().manual_seed(0)
    mask = candidate_mask(get_space("tss"), exclude_zero=True)
    theta = mask.double() / 4
    for _ in range(200):
        grad = 50 * torch.randn(6, 5, generator=gen, dtype=torch.float64)
        theta = exponentiated_gradient_step(theta, grad, lr=0.1, mask=mask)
        assert torch.allclose(theta.sum(dim=1), torch.ones(6, dtype=torch.float64))
        # the floor is applied before the renormalisation (as in the reference): candidates
        # stay strictly positive, not above a fixed floor
        assert bool((theta[:, 0] == 0).all()) and bool((theta[:, 1:] > 0).all())


def test_exponentiated_gradient_is_the_multiplicative_update() -> None:
    theta = torch.tensor([[0.1, 0.2, 0.3, 0.4, 0.0]], dtype=torch.float64)
    grad = torch.tensor([[1.0, -1.0, 0.5, 0.0, 9.0]], dtype=torch.float64)
    mask = torch.tensor([[True, True, True, True, False]])
    expected = theta * torch.exp(-0.3 * grad) * mask
    expected = expected / expected.sum()
    got = exponentiated_gradient_step(theta, grad, lr=0.3, mask=mask)
    assert torch.allclose(got, expected)


def test_exponentiated_gradient_clamps_before_it_normalises() -> None:
    """The floor applies to ``theta * exp(-lr * grad)`` itself, as in the reference: here the
    second entry falls to 2e-6 and is raised to 1e-5 before the renormalisation (a shift by
    the row maximum before the clamp would have left it below the floor)."""
    theta = torch.tensor([[0.5, 0.5]], dtype=torch.float64)
    grad = torch.tensor([[-1.0, math.log(0.5 / 2e-6) - 1.0]], dtype=torch.float64)
    got = exponentiated_gradient_step(theta, grad, lr=1.0, mask=torch.ones(1, 2, dtype=torch.bool))
    first = 0.5 * math.e
    assert torch.allclose(got, torch.tensor([[first, 1e-5]], dtype=torch.float64) / (first + 1e-5))


@pytest.mark.parametrize("single_level", [True, False])
def test_gaea_search_keeps_theta_on_simplex(single_level: bool) -> None:
    from harness.supernet.search import run_supernet_search

    method = Gaea(GaeaConfig(single_level=single_level, eg_lr=1.0))
    assert method.arch_split == ("train" if single_level else "valid")
    train, valid = tiny_loaders(2)
    result = run_supernet_search(
        method, tiny_supernet(), train, valid, tiny_config(), np.random.default_rng(2)
    )
    theta = result.arch_weights
    assert np.allclose(theta.sum(axis=1), 1.0) and np.all(theta[:, 0] == 0)
    assert not np.allclose(theta[:, 1:], 0.25)  # it moved


def test_rarts_copies_are_coupled_but_distinct() -> None:
    from harness.supernet.search import run_supernet_search

    train, valid = tiny_loaders(4)
    net = tiny_supernet(4)
    result = run_supernet_search(
        Rarts(RartsConfig(coupling=0.5)),
        net,
        train,
        valid,
        tiny_config(),
        np.random.default_rng(4),
    )
    y = result.method_state["y"]
    gaps = [float((y[n] - p).detach().abs().max()) for n, p in net.named_parameters()]
    assert max(gaps) > 0  # two copies trained on different splits
    assert result.ledger.forward_passes == 6 * 3  # w, y, alpha per step
    assert not np.allclose(result.arch_weights, result.arch_weights[0, 0])


def test_configs_validate() -> None:
    with pytest.raises(ConfigError, match="order"):
        DartsConfig(order=3)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="eg_lr"):
        GaeaConfig(eg_lr=0)
    with pytest.raises(ConfigError, match="coupling"):
        RartsConfig(coupling=-1)


def test_gdas_samples_one_hot_and_anneals_temperature() -> None:
    from harness.supernet.search import run_supernet_search

    method = Gdas()
    gen = torch.Generator().manual_seed(0)
    state = method.init_arch_state(get_space("tss"), gen)
    w = method.edge_weights(state, training=True, generator=gen)
    assert torch.equal(w.detach().sum(dim=1), torch.ones(6))
    assert torch.equal((w.detach() == 1).sum(dim=1), torch.ones(6, dtype=torch.long))
    grad = torch.autograd.grad((w * torch.arange(5.0)).sum(), state["alpha"])[0]
    assert float(grad.abs().sum()) > 0  # straight-through gradient reaches alpha
    train, valid = tiny_loaders(6)
    config = tiny_config(epochs=3)
    result = run_supernet_search(
        method, tiny_supernet(6), train, valid, config, np.random.default_rng(6)
    )
    assert float(result.arch_state["tau"]) == pytest.approx(0.1)
    with pytest.raises(ConfigError, match="tau"):
        GdasConfig(tau_min=0)


def test_drnas_dirichlet_samples_are_reproducible_and_unbiased() -> None:
    conc = torch.tensor([[0.5, 1.0, 2.0, 4.0, 0.5]], dtype=torch.float64).requires_grad_(True)
    draws = [dirichlet_rsample(conc, torch.Generator().manual_seed(s)) for s in range(2000)]
    again = dirichlet_rsample(conc, torch.Generator().manual_seed(0))
    assert torch.equal(draws[0], again)
    mean = torch.stack([d.detach() for d in draws]).mean(dim=0)
    assert torch.allclose(mean, conc.detach() / conc.detach().sum(), atol=0.02)
    # pathwise gradient of E[theta_3] w.r.t. the concentration matches the analytic one
    grad = torch.autograd.grad(torch.stack(draws)[:, 0, 3].mean(), conc)[0][0]
    total = float(conc.detach().sum())
    analytic = torch.tensor([-4.0, -4.0, -4.0, total - 4.0, -4.0], dtype=torch.float64) / total**2
    assert torch.allclose(grad, analytic, atol=0.003)


def test_drnas_search_runs_and_moves_alpha() -> None:
    from harness.supernet.search import run_supernet_search

    train, valid = tiny_loaders(8)
    result = run_supernet_search(
        Drnas(DrnasConfig(arch_lr=0.05)),
        tiny_supernet(8),
        train,
        valid,
        tiny_config(),
        np.random.default_rng(8),
    )
    alpha = result.arch_state["alpha"].detach()
    assert float(alpha.abs().max()) > 0.01  # far beyond the 1e-3 init after Adam steps


def test_fixed_alpha_trains_the_weights_under_the_initial_alpha() -> None:
    from harness.supernet.search import run_supernet_search

    train, valid = tiny_loaders(9)
    net = tiny_supernet(9)
    before = [p.detach().clone() for p in net.parameters()]
    result = run_supernet_search(
        FixedAlpha(), net, train, valid, tiny_config(), np.random.default_rng(9)
    )
    alpha = result.arch_state["alpha"].detach()
    assert 0 < float(alpha.abs().max()) < 0.01  # DARTS's 1e-3 init, never stepped
    assert result.method_state == {} and result.ledger.backward_passes == 6  # weight steps only
    assert any(not torch.equal(p, q) for p, q in zip(before, net.parameters(), strict=True))
    # the initial draw comes from the method's generator: same seed, same alpha
    again = run_supernet_search(
        FixedAlpha(), tiny_supernet(9), *tiny_loaders(9), tiny_config(), np.random.default_rng(9)
    )
    assert torch.equal(alpha, again.arch_state["alpha"].detach())


def test_gdas_zero_terms_give_the_unselected_ops_the_edge_gradient() -> None:
    """As in the official GDAS cell, an unselected op adds its hard weight (0 in value) to its
    edge's output: the logits do not change, and every unselected op of an edge gets the same
    gradient (that of the edge output's sum); without the term they get none."""
    from harness.supernet.testing import tiny_supernet

    net = tiny_supernet(3).double()
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    alpha = torch.randn(6, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    hard = gumbel_hard(alpha.requires_grad_(True), 1.0, torch.Generator().manual_seed(2))
    grads, logits = [], []
    for zero_terms in (True, False):
        w = hard.detach().clone().requires_grad_(True)
        out = net(x, w, skip_zero=True, zero_terms=zero_terms)
        logits.append(out.detach())
        grads.append(torch.autograd.grad(out.square().sum(), w)[0])
    assert torch.equal(logits[0], logits[1])
    picked = hard.detach().argmax(dim=1)
    for e in range(6):
        others = [k for k in range(5) if k != int(picked[e])]
        with_terms = grads[0][e, others]
        assert torch.allclose(with_terms, with_terms[0].expand_as(with_terms))
        assert float(with_terms.abs().max()) > 0 and float(grads[1][e, others].abs().max()) == 0
    assert Gdas().forward_options() == {"zero_terms": True}
