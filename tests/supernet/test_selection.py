"""Selection stage: magnitude, DARTS-PT perturbation, supernet top-K."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from harness.errors import ConfigError
from harness.spaces import get_space
from harness.spaces import tss as space
from harness.supernet import selection
from harness.supernet.search import (
    Batch,
    Loss,
    SearchConfig,
    SearchLedger,
    SearchResult,
    StepContext,
    run_supernet_search,
)
from harness.supernet.selection import (
    ArchTuning,
    PerturbationConfig,
    SelectionResult,
    TopKConfig,
    select_magnitude,
    select_perturbation,
    select_topk,
)
from harness.supernet.testing import tiny_config, tiny_loaders, tiny_supernet
from methods.darts import Darts, DartsConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")


SIGNAL_EDGE, SIGNAL_OP, DECOY_OP = 2, 3, 1


class SignalNet(nn.Module):
    """Two classes; only op 3 of edge 2 carries the label signal, op 1 of edge 2 a weaker
    anti-signal: logits = (w[2, 3] - 0.5 w[2, 1]) * s * [-1, 1], s = +-1 from the image."""

    space = get_space("tss")

    def __init__(self) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, edge_weights: torch.Tensor) -> torch.Tensor:
        s = x[:, 0, 0, 0].sign()  # (B,)
        strength = edge_weights[SIGNAL_EDGE, SIGNAL_OP] - 0.5 * edge_weights[SIGNAL_EDGE, DECOY_OP]
        return (strength * s)[:, None] * torch.tensor([-1.0, 1.0]) + 0 * self.dummy  # (B, 2)


def _signal_batches(n_batches: int = 3) -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(0)
    out = []
    for _ in range(n_batches):
        y = torch.randint(0, 2, (16,), generator=gen)
        x = torch.randn(16, 3, 4, 4, generator=gen).abs() * (2 * y - 1).float()[:, None, None, None]
        out.append((x, y))
    return out


def _method_weights() -> np.ndarray:
    """Uniform-ish weights whose argmax on the signal edge is the decoy op."""
    w = np.full((6, 5), 0.2)
    w[SIGNAL_EDGE] = [0.1, 0.4, 0.1, 0.3, 0.1]
    return w


def test_perturbation_picks_the_op_that_carries_the_signal() -> None:
    weights = _method_weights()
    magnitude = select_magnitude(weights, get_space("tss"))
    assert space.index_to_ops(magnitude.arch_index)[SIGNAL_EDGE] == DECOY_OP
    config = PerturbationConfig()
    result = select_perturbation(
        SignalNet(), weights, _signal_batches(), config, np.random.default_rng(0)
    )
    ops = space.index_to_ops(result.arch_index)
    assert ops[SIGNAL_EDGE] == SIGNAL_OP
    # the other edges do not matter: every removal ties and the lowest op id wins
    assert all(o == 0 for e, o in enumerate(ops) if e != SIGNAL_EDGE)
    signal = next(d for d in result.details["decisions"] if d["row"] == SIGNAL_EDGE)
    assert signal["scores"][SIGNAL_OP] < 50 < signal["scores"][DECOY_OP]
    assert result.config == dataclasses.asdict(config) and result.selector == "perturbation"
    assert sorted(result.details["order"]) == list(range(6))


def test_perturbation_fixed_weights_and_edge_order_from_rng() -> None:
    config = PerturbationConfig(fixed_weights=True, tune_arch=False)
    a = select_perturbation(SignalNet(), None, _signal_batches(), config, np.random.default_rng(1))
    b = select_perturbation(SignalNet(), None, _signal_batches(), config, np.random.default_rng(1))
    c = select_perturbation(SignalNet(), None, _signal_batches(), config, np.random.default_rng(2))
    assert space.index_to_ops(a.arch_index)[SIGNAL_EDGE] == SIGNAL_OP
    assert a.details["order"] == b.details["order"] != c.details["order"]


def test_perturbation_with_fine_tuning_on_a_real_supernet() -> None:
    train, valid = tiny_loaders(0)
    net = tiny_supernet(0)
    before = [p.detach().clone() for p in net.parameters()]
    config = PerturbationConfig(
        valid_batches=2, fine_tune_steps=2, fine_tune_lr=0.05, tune_arch=False
    )
    result = select_perturbation(
        net, np.full((6, 5), 0.2), valid, config, np.random.default_rng(0), train=train
    )
    assert 0 <= result.arch_index < space.NUM_ARCHS
    assert len(result.details["decisions"]) == 6
    # 6 edges x 5 candidates x 2 batches evaluated, 5 x 2 tuning steps
    assert result.details["forward_passes"] == 60 + 10
    assert result.details["backward_passes"] == 10
    assert any(not torch.equal(p, q) for p, q in zip(before, net.parameters(), strict=True))
    with pytest.raises(ConfigError, match="train loader"):
        select_perturbation(net, np.full((6, 5), 0.2), valid, config, np.random.default_rng(0))


def test_one_tuning_optimizer_serves_the_whole_selection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[torch.optim.SGD] = []
    original = selection._tuning_optimizer

    def recording(supernet: nn.Module, cfg: PerturbationConfig) -> torch.optim.SGD:
        made.append(original(supernet, cfg))
        return made[-1]

    monkeypatch.setattr(selection, "_tuning_optimizer", recording)
    train, valid = tiny_loaders(0)
    config = PerturbationConfig(valid_batches=1, fine_tune_steps=2, tune_arch=False)
    select_perturbation(
        tiny_supernet(0), np.full((6, 5), 0.2), valid, config, np.random.default_rng(0), train
    )
    assert len(made) == 1  # momentum carries over from one tuning phase to the next
    momentum = [made[0].state[p].get("momentum_buffer") for p in made[0].param_groups[0]["params"]]
    assert any(m is not None and bool(m.abs().sum() > 0) for m in momentum)


def _trained_darts(seed: int) -> tuple[nn.Module, SearchResult, Darts]:
    train, valid = tiny_loaders(seed)
    method = Darts(DartsConfig(arch_lr=0.05))
    net = tiny_supernet(seed)
    result = run_supernet_search(
        method, net, train, valid, tiny_config(), np.random.default_rng(seed)
    )
    return net, result, method


def test_perturbation_tuning_keeps_training_alpha_with_decided_edges_projected() -> None:
    net, result, method = _trained_darts(3)
    train, valid = tiny_loaders(4)
    alpha0 = result.arch_state["alpha"].detach().clone()
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []  # (alpha, projected mask) per step

    class Recording(Darts):
        def step(self, ctx: StepContext, train_batch: Batch, arch_batch: Batch) -> Loss:
            assert ctx.projection is not None
            seen.append((ctx.arch_state["alpha"].detach().clone(), ctx.projection[0].clone()))
            return super().step(ctx, train_batch, arch_batch)

    tuning = ArchTuning(
        Recording(method.config), result.arch_state, result.method_state, valid,
        torch.Generator().manual_seed(0),
    )  # fmt: skip
    config = PerturbationConfig(
        valid_batches=1, fine_tune_steps=3, last_tune_steps=2, fine_tune_lr=0.05
    )
    chosen = select_perturbation(
        net, result.arch_weights, valid, config, np.random.default_rng(0), train, tuning=tuning
    )
    order, decisions = chosen.details["order"], chosen.details["decisions"]
    alpha = result.arch_state["alpha"].detach()
    # 4 tuning phases of 3 method steps (weight + architecture), then 2 before the last edge
    starts = [0, 3, 6, 9, 12, 14]
    assert len(seen) == starts[-1]
    assert chosen.details["forward_passes"] == 30 + 2 * 14  # 30 candidates x 1 batch + tuning
    assert chosen.details["backward_passes"] == 2 * 14
    trajectory = [*[a for a, _ in seen], alpha]
    for phase in range(5):
        start, end = trajectory[starts[phase]], trajectory[starts[phase + 1]]
        mask = seen[starts[phase]][1]
        assert mask.tolist() == [e in order[: phase + 1] for e in range(6)]
        undecided = [e for e in order[phase + 1 :]]
        assert not torch.equal(start[undecided], end[undecided])  # alpha keeps training
    assert not torch.equal(alpha0, alpha)
    assert list(space.index_to_ops(chosen.arch_index)) == [
        next(d["choice"] for d in decisions if d["row"] == e) for e in range(6)
    ]
    with pytest.raises(ConfigError, match="tuning=ArchTuning"):
        select_perturbation(net, alpha, valid, config, np.random.default_rng(0), train)
    with pytest.raises(ConfigError, match="tune_arch=False"):
        PerturbationConfig(fixed_weights=True)


class Killed(Exception):
    pass


def _resumable_selection(path: Path, kill_after_edge: int | None = None) -> tuple[
    SelectionResult, nn.Module, dict[str, torch.Tensor], dict[str, Any]
]:  # fmt: skip
    """DARTS-PT with method tuning from a fresh copy of one trained supernet, checkpointed to
    ``path``; a progress callback raising after decision ``kill_after_edge`` plays the kill."""
    net, result, method = _trained_darts(3)
    train, valid = tiny_loaders(4)
    tuning = ArchTuning(
        method, result.arch_state, result.method_state, valid, torch.Generator().manual_seed(0)
    )
    config = PerturbationConfig(
        valid_batches=1, fine_tune_steps=3, last_tune_steps=2, fine_tune_lr=0.05
    )

    def progress(line: str) -> None:
        if kill_after_edge is not None and line.startswith(f"edge {kill_after_edge}/"):
            raise Killed

    chosen = select_perturbation(
        net, result.arch_weights, valid, config, np.random.default_rng(0), train,
        tuning=tuning, progress=progress, checkpoint=path,
    )  # fmt: skip
    return chosen, net, result.arch_state, result.method_state


def test_a_killed_perturbation_selection_resumes_to_the_same_result(tmp_path: Path) -> None:
    whole, net, arch_state, method_state = _resumable_selection(tmp_path / "whole.pt")
    with pytest.raises(Killed):
        _resumable_selection(tmp_path / "part.pt", kill_after_edge=4)
    saved = torch.load(tmp_path / "part.pt", weights_only=False)
    assert saved["extra"]["record"]["position"] == 2  # the last finished decision + tuning: edge 3
    resumed, net2, arch_state2, method_state2 = _resumable_selection(tmp_path / "part.pt")
    assert resumed.arch_index == whole.arch_index
    for key in ("order", "decisions", "forward_passes", "backward_passes"):
        assert resumed.details[key] == whole.details[key]
    for name, value in net.state_dict().items():
        assert torch.equal(value, net2.state_dict()[name]), name
    assert torch.equal(arch_state["alpha"], arch_state2["alpha"])
    adam, adam2 = (
        state["arch_optimizer"].state_dict()["state"] for state in (method_state, method_state2)
    )
    assert all(torch.equal(adam[0][k], adam2[0][k]) for k in ("exp_avg", "exp_avg_sq"))
    assert resumed.details["seconds"] > 0
    # a checkpoint of another selection is refused, not silently resumed
    with pytest.raises(ConfigError, match="another selection"):
        select_perturbation(
            tiny_supernet(0), np.full((6, 5), 0.2), tiny_loaders(0)[1],
            PerturbationConfig(valid_batches=1), np.random.default_rng(0),
            checkpoint=tmp_path / "part.pt",
        )  # fmt: skip


def test_projection_stops_the_gradient_of_decided_edges() -> None:
    net = tiny_supernet(0)
    batch = next(iter(tiny_loaders(0)[0]))
    alpha = torch.zeros(6, 5, requires_grad=True)
    decided = torch.tensor([True, False, False, True, False, False])
    onehot = torch.zeros(6, 5)
    onehot[decided, 2] = 1.0
    ctx = StepContext(
        Darts(), net, torch.optim.SGD(net.parameters(), lr=0.1), {"alpha": alpha}, {},
        torch.Generator(), SearchConfig(), SearchLedger(), projection=(decided, onehot),
    )  # fmt: skip
    grad = ctx.grad(ctx.loss(batch, torch.softmax(alpha, dim=-1)), [alpha])[0]
    assert torch.equal(grad[decided], torch.zeros(2, 5))
    assert bool((grad[~decided].abs() > 0).any())
    ctx.projection = None
    full = ctx.grad(ctx.loss(batch, torch.softmax(alpha, dim=-1)), [alpha])[0]
    assert bool((full[decided].abs() > 0).any())


def test_topk_finds_an_architecture_with_the_signal_op() -> None:
    config = TopKConfig(k=40, valid_batches=2)
    result = select_topk(SignalNet(), _signal_batches(), config, np.random.default_rng(0))
    assert space.index_to_ops(result.arch_index)[SIGNAL_EDGE] == SIGNAL_OP
    scored = result.details["scored"]
    assert len(scored) == 40 and max(s for _, s in scored) == 100.0
    first_best = next(a for a, s in scored if s == 100.0)
    assert result.arch_index == first_best
    assert result.config == dataclasses.asdict(config)


def test_topk_sampling_from_weights_stays_in_support() -> None:
    w = np.zeros((6, 5))
    w[:, 2] = 0.5
    w[:, 4] = 0.5
    result = select_topk(
        SignalNet(),
        _signal_batches(),
        TopKConfig(k=10, sampling="weights"),
        np.random.default_rng(0),
        weights=w,
    )
    for arch, _ in result.details["scored"]:
        assert set(space.index_to_ops(arch)) <= {2, 4}
    with pytest.raises(ConfigError, match="weights"):
        select_topk(
            SignalNet(), _signal_batches(), TopKConfig(sampling="weights"), np.random.default_rng(0)
        )


class _Counting:
    """An iterable of batches that counts the batches drawn and the passes started."""

    def __init__(self, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        self.batches, self.drawn, self.passes = batches, 0, 0
        self.generator = None

    def __iter__(self) -> Any:
        self.passes += 1
        for batch in self.batches:
            self.drawn += 1
            yield batch


def test_perturbation_scores_each_candidate_on_fresh_batches_when_asked() -> None:
    """DARTS-PT scores every masked candidate on a new pass of its (shuffled, augmented)
    validation loader; the fixed mode draws the batches once for all candidates."""
    weights = np.full((6, 5), 0.2)
    for fresh, passes in ((False, 1), (True, 30)):
        loader = _Counting(_signal_batches(3))
        config = PerturbationConfig(valid_batches=2, fresh_batches=fresh)
        result = select_perturbation(SignalNet(), weights, loader, config, np.random.default_rng(0))
        assert loader.passes == passes and loader.drawn == 2 * passes
        assert space.index_to_ops(result.arch_index)[SIGNAL_EDGE] == SIGNAL_OP


def test_topk_scores_each_candidate_on_its_own_batches_when_asked() -> None:
    """NATS-Bench's get_best_arch: candidate i on the next batch of the loader (cycling)."""
    seen: list[int] = []

    class Recording(SignalNet):
        def forward(self, x: torch.Tensor, edge_weights: torch.Tensor) -> torch.Tensor:
            seen.append(int(x[0, 0, 0, 0] * 1000))  # which batch this is
            return super().forward(x, edge_weights)

    batches = _signal_batches(3)
    for b, (x, _) in enumerate(batches):
        x[0, 0, 0, 0] = (b + 1) / 1000  # a positive marker: the signal sign of image 0
    config = TopKConfig(k=5, valid_batches=1, per_candidate=True, train_mode=False)
    result = select_topk(Recording(), _Counting(batches), config, np.random.default_rng(0))
    assert seen == [1, 2, 3, 1, 2] and result.details["forward_passes"] == 5
    seen.clear()
    select_topk(Recording(), _Counting(batches), TopKConfig(k=5), np.random.default_rng(0))
    assert seen == [1] * 5


def test_the_head_batchnorm_can_follow_the_cell_flags() -> None:
    """NATS-Bench's search model: the head BN is non-affine with batch statistics, like the
    cells (2 x 4C fewer parameters); NAS-Bench-201's keeps it affine with running statistics."""
    nb201 = tiny_supernet(0)
    from harness.supernet.tss import TssSuperNet, network_from_supernet

    nats = TssSuperNet(num_classes=3, C=4, N=1, head_like_cells=True)
    count = lambda net: sum(p.numel() for p in net.parameters())  # noqa: E731
    assert count(nb201) - count(nats) == 2 * 4 * 4
    head = nats.lastact[0]
    assert not head.affine and not head.track_running_stats
    assert not network_from_supernet(nats, 0).lastact[0].affine
