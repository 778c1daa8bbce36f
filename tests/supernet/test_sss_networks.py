"""Size-space networks: the discrete network and the supernet (masking, TAS interpolation, the
sliced sub-network), parity with the reference implementation, and parameter / FLOP counts
against the official sample files and over the whole space.
"""

from __future__ import annotations

import bz2
import copy
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from harness.errors import ArchitectureError, ConfigError
from harness.spaces import get_space
from harness.spaces import sss as space
from harness.spaces import tss as topology
from harness.supernet.channels import channel_resize_matrix
from harness.supernet.counting import (
    count_flops,
    count_params,
    model_cost,
    sss_flop_counts,
    sss_param_counts,
)
from harness.supernet.ops import ResNetBasicBlock
from harness.supernet.search import one_hot
from harness.supernet.sss import (
    GENOTYPE,
    SKIP_EDGE,
    WIDTHS,
    ChannelPad,
    FactorizedSkip,
    SizeCell,
    SssNetwork,
    SssSuperNet,
    arch_widths,
    network_from_supernet,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")
ModuleT = TypeVar("ModuleT", bound=nn.Module)

# dataset -> (num_classes, input side)
DATASETS = {"cifar10": (10, 32), "cifar100": (100, 32), "ImageNet16-120": (120, 16)}
OFFICIAL = {0: "8:8:8:8:8", 11: "8:8:8:16:32", 284: "8:8:40:32:40"}
# every cell of these two changes width (the first cell never does), both ways
WIDTH_CHANGING = ("16:48:24:64:8", "40:8:56:24:32")
ARCHS = (*OFFICIAL.values(), *WIDTH_CHANGING)
FLAGS = [(False, False), (True, True)]  # (affine, track_running_stats): search, benchmark


def _images(seed: int, n: int = 4, side: int = 8) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, side, side, generator=gen, dtype=torch.float64)


def _one_hot(arch: str) -> torch.Tensor:
    return one_hot(SssSuperNet.space, space.str_to_index(arch), dtype=torch.float64)  # (5, 8)


def _random_archs(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [space.index_to_str(i) for i in rng.choice(space.NUM_ARCHS, size=n, replace=False)]


def _randomize(net: ModuleT, seed: int) -> ModuleT:
    """Float64, parameters ~ N(0, 0.3^2) (BN scales and shifts away from 1 and 0) and random
    BN running statistics, from a seeded generator."""
    gen = torch.Generator().manual_seed(seed)
    net.double()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d) and m.track_running_stats:
                assert m.running_mean is not None and m.running_var is not None
                m.running_mean.copy_(0.2 * torch.randn(m.num_features, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=gen))
    return net


def _supernet(seed: int = 0, **options: Any) -> SssSuperNet:
    return _randomize(SssSuperNet(num_classes=5, **options), seed)


# --- architectures and the discrete network ------------------------------------------------


def test_arch_widths_accepts_string_index_and_widths() -> None:
    assert arch_widths("8:8:40:32:40") == arch_widths(284) == arch_widths([8, 8, 40, 32, 40])
    assert arch_widths(np.array([64] * 5)) == (64,) * 5
    net = SssNetwork(np.int64(11), num_classes=10)
    assert net.widths == (8, 8, 8, 16, 32) and net.arch == "8:8:8:16:32"


@pytest.mark.parametrize(
    "bad",
    ["8:8:8:8", "8:8:8:8:12", "08:8:8:8:8", "8:8:8:8:x", " 8:8:8:8:8", 32768, -1, [8] * 4,
     [8, 8, 8, 8, 72], 1.5],
)  # fmt: skip
def test_bad_architectures_raise(bad: Any) -> None:
    with pytest.raises(ArchitectureError):
        SssNetwork(bad, num_classes=10)


def test_bad_options_raise() -> None:
    with pytest.raises(ConfigError, match="did you mean 'pad'"):
        SssNetwork("8:16:8:8:8", num_classes=10, skip="padd")
    with pytest.raises(ConfigError, match="mask_scope"):
        SssSuperNet(num_classes=10, mask_scope="cell")
    with pytest.raises(ConfigError, match="num_classes"):
        SssNetwork("8:8:8:8:8", num_classes=0)
    with pytest.raises(ConfigError, match="did you mean 'interpolate'"):
        SssSuperNet(num_classes=3)(_images(0).float(), torch.ones(5, 8), mixing="interpolat")


def test_the_cell_is_the_benchmark_genotype() -> None:
    ops = [topology.OPS[i] for i in topology.str_to_ops(GENOTYPE)]
    assert ops[SKIP_EDGE] == "skip_connect"
    assert ops[:SKIP_EDGE] + ops[SKIP_EDGE + 1 :] == ["nor_conv_3x3"] * 5


def test_network_layout_and_skip_edges() -> None:
    net = SssNetwork("8:16:24:24:40", num_classes=10)
    stem_conv, stem_bn = net.stem
    assert isinstance(stem_conv, nn.Conv2d) and stem_conv.bias is None
    assert isinstance(stem_bn, nn.BatchNorm2d) and stem_bn.affine and stem_bn.track_running_stats
    cells = [c for c in net.cells if isinstance(c, SizeCell)]
    assert [(c.c_in, c.c_out) for c in cells] == [(8, 8), (16, 24), (24, 40)]
    skips = [type(c.edges[SKIP_EDGE]) for c in cells]
    assert skips == [nn.Identity, FactorizedSkip, FactorizedSkip]
    assert [type(c) for c in net.cells[1::2]] == [ResNetBasicBlock] * 2
    assert net(_images(0).float()).shape == (4, 10)
    padded = SssNetwork("8:16:24:24:40", num_classes=10, skip="pad")
    skips = [type(c.edges[SKIP_EDGE]) for c in padded.cells if isinstance(c, SizeCell)]
    assert skips == [nn.Identity, ChannelPad, ChannelPad]
    assert count_params(net) - count_params(padded) == 16 * 24 + 2 * 24 + 24 * 40 + 2 * 40


def test_channel_pad_pads_and_truncates() -> None:
    x = torch.randn(2, 3, 4, 4)
    assert torch.equal(ChannelPad(5)(x), torch.cat([x, torch.zeros(2, 2, 4, 4)], dim=1))
    assert torch.equal(ChannelPad(2)(x), x[:, :2])


# --- supernet --------------------------------------------------------------------------------


def test_supernet_holds_the_benchmark_search_model() -> None:
    net = SssSuperNet(num_classes=10)
    assert net.space is get_space("sss") and net.space.shape == (5, 8)
    assert SssSuperNet.MODULE_ROWS == (0, 0, 1, 2, 3, 4)
    flagged = [net.stem[1], net.lastact[0]]
    flagged += [m for c in net.cells if isinstance(c, SizeCell) for m in c.modules()]
    bns = [m for m in flagged if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == 2 + 3 * 5 and all(not b.affine and not b.track_running_stats for b in bns)
    assert all(m.bias is not None for m in flagged if isinstance(m, nn.Conv2d))
    block_bns = [m for b in net.cells[1::2] for m in b.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(block_bns) == 4 and all(b.affine and b.track_running_stats for b in block_bns)
    cells = [c for c in net.cells if isinstance(c, SizeCell)]
    assert all(isinstance(c.edges[SKIP_EDGE], nn.Identity) for c in cells)  # 64 -> 64
    assert not any("mask" in k or "resize" in k for k in net.state_dict())  # derived buffers


@pytest.mark.parametrize("mixing", ["mask", "interpolate"])
def test_supernet_forward_shapes_per_layer_and_per_module_weights(mixing: str) -> None:
    net = _supernet()
    x = _images(1)
    gen = torch.Generator().manual_seed(2)
    layers = torch.softmax(torch.randn(5, 8, generator=gen, dtype=torch.float64), dim=-1)
    if mixing == "interpolate":  # two widths per row, as TAS draws them
        layers = layers * (layers >= layers.topk(2, dim=1).values[:, 1:])
    out = net(x, layers, mixing=mixing)
    assert out.shape == (4, 5)
    modules = torch.cat([layers[:1], layers])  # (6, 8): rows MODULE_ROWS
    torch.testing.assert_close(net(x, modules, mixing=mixing), out, rtol=0, atol=0)
    for row in (0, 1):  # the stem and the first cell read different rows of (6, 8) weights
        changed = modules.clone()
        changed[row] = changed[row].flip(0)
        assert not torch.allclose(net(x, changed, mixing=mixing), out)


@pytest.mark.parametrize("shape", [(8, 5), (4, 8), (7, 8), (5, 8, 1), (40,)])
def test_supernet_rejects_bad_weight_shapes(shape: tuple[int, ...]) -> None:
    with pytest.raises(ConfigError, match=r"\(5, 8\).*\(6, 8\)"):
        SssSuperNet(num_classes=3)(_images(0).float(), torch.ones(shape))


def test_skip_zero_is_accepted_and_ignored() -> None:
    net, x, weights = _supernet(), _images(3), _one_hot("8:16:24:32:40")
    reference = net(x, weights)
    for skip_zero in (True, False):
        assert torch.equal(net(x, weights, skip_zero=skip_zero), reference)


@pytest.mark.parametrize(("affine", "track"), FLAGS)
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_one_hot_layer_scope_supernet_equals_the_sliced_network(
    affine: bool, track: bool, mode: str
) -> None:
    """Under one-hot weights a ``mask_scope="layer"`` supernet computes exactly its sliced
    sub-network, with batch statistics (train) and with the running statistics of the blocks
    (and of the cells and head when tracked) in eval mode."""
    supernet = _supernet(3, affine=affine, track_running_stats=track, mask_scope="layer")
    supernet.train(mode == "train")
    for arch in (*WIDTH_CHANGING, *_random_archs(3, seed=4)):
        net = network_from_supernet(supernet, arch)
        assert net.training == (mode == "train")
        x = _images(5)
        torch.testing.assert_close(supernet(x, _one_hot(arch)), net(x), rtol=0, atol=1e-10)


def test_module_scope_supernet_equals_the_sliced_network_only_at_full_width() -> None:
    """With ``mask_scope="module"`` (NATS-Bench) only module outputs are masked: a cell's
    internal nodes keep all 64 channels, so narrower architectures differ from their sliced
    network; at 64:64:64:64:64 nothing is masked and they agree."""
    supernet = _supernet(6)
    x = _images(7)
    full = "64:64:64:64:64"
    torch.testing.assert_close(
        supernet(x, _one_hot(full)), network_from_supernet(supernet, full)(x), rtol=0, atol=1e-10
    )
    arch = WIDTH_CHANGING[0]
    gap = supernet(x, _one_hot(arch)) - network_from_supernet(supernet, arch)(x)
    assert gap.abs().max() > 1e-3


def test_network_from_supernet_holds_sliced_copies() -> None:
    supernet = _supernet(8, affine=True, track_running_stats=True).eval()
    net = network_from_supernet(supernet, "16:48:24:64:8")
    assert not net.training and next(net.parameters()).dtype == torch.float64
    source, sliced = supernet.state_dict(), net.state_dict()
    conv = "cells.2.edges.0.op.1.weight"  # cell 48 -> 24, edge 0 -> 1
    assert torch.equal(sliced[conv], source[conv][:24, :48])
    assert torch.equal(sliced["classifier.weight"], source["classifier.weight"][:, :8])
    assert torch.equal(sliced["lastact.0.running_var"], source["lastact.0.running_var"][:8])
    cell = net.cells[2]
    assert isinstance(cell, SizeCell) and isinstance(cell.edges[SKIP_EDGE], ChannelPad)
    with torch.no_grad():
        net.classifier.weight.zero_()  # a copy, not a view
    assert supernet.classifier.weight.abs().sum() > 0


@pytest.mark.parametrize("scope", ["module", "layer"])
def test_one_hot_interpolation_equals_masking(scope: str) -> None:
    supernet = _supernet(9, mask_scope=scope)
    x = _images(10)
    for arch in (*WIDTH_CHANGING, *_random_archs(2, seed=11)):
        weights = _one_hot(arch)
        torch.testing.assert_close(
            supernet(x, weights, mixing="interpolate"), supernet(x, weights), rtol=0, atol=1e-12
        )


def test_channel_resize_matrix_is_adaptive_average_pooling() -> None:
    gen = torch.Generator().manual_seed(12)
    for c_in in WIDTHS:
        x = torch.randn(2, c_in, 3, 3, generator=gen, dtype=torch.float64)
        for c_out in WIDTHS:
            expected = F.adaptive_avg_pool3d(x, (c_out, 3, 3))  # (C, H, W) of a 4-D tensor
            ours = torch.einsum("oc,bchw->bohw", channel_resize_matrix(c_in, c_out), x)
            torch.testing.assert_close(ours, expected, rtol=1e-14, atol=1e-15)


def _run(net: SssSuperNet, weights: torch.Tensor, mixing: str) -> tuple[Any, ...]:
    weights = weights.clone().requires_grad_(True)
    out = net(_images(13), weights, mixing=mixing)
    (out**2).sum().backward()
    grads = [weights.grad, *(p.grad for p in net.parameters())]
    net.eval()
    return out, grads, net.state_dict(), net(_images(14), weights, mixing=mixing)


@pytest.mark.parametrize(("affine", "track"), [*FLAGS, (True, False), (False, True)])
@pytest.mark.parametrize(("mixing", "scope"), [("mask", "module"), ("interpolate", "layer")])
def test_fused_cells_equal_the_per_op_cells(
    affine: bool, track: bool, mixing: str, scope: str
) -> None:
    fused = _supernet(15, affine=affine, track_running_stats=track, mask_scope=scope)
    per_op = copy.deepcopy(fused)
    per_op.set_fused(False)
    gen = torch.Generator().manual_seed(16)
    weights = torch.softmax(torch.randn(6, 8, generator=gen, dtype=torch.float64), dim=-1)
    if mixing == "interpolate":
        weights = weights * (weights >= weights.topk(2, dim=1).values[:, 1:])
    (out_f, grads_f, state_f, eval_f), (out_r, grads_r, state_r, eval_r) = (
        _run(net, weights, mixing) for net in (fused, per_op)
    )
    torch.testing.assert_close(out_f, out_r, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(eval_f, eval_r, rtol=1e-12, atol=1e-12)
    for a, b in zip(grads_f, grads_r, strict=True):
        assert a is not None and b is not None
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    assert state_f.keys() == state_r.keys()
    for key in state_f:  # running statistics and batch counts included
        torch.testing.assert_close(state_f[key], state_r[key], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("c_in", "c_out"), [(16, 24), (40, 8)])
def test_fused_width_changing_cell_equals_the_per_op_cell(c_in: int, c_out: int) -> None:
    fused = _randomize(SizeCell(c_in, c_out, True, True, fused=True), seed=30)
    per_op = copy.deepcopy(fused)
    per_op.fused = False
    x = torch.randn(3, c_in, 4, 4, generator=torch.Generator().manual_seed(31), dtype=torch.float64)
    mask = (torch.arange(c_out) < c_out // 2).double().view(1, -1, 1, 1)
    for m in (None, mask):
        torch.testing.assert_close(fused(x, m), per_op(x, m), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mixing", ["mask", "interpolate"])
def test_gradient_flows_to_the_architecture_logits(mixing: str) -> None:
    supernet = _supernet(17)
    gen = torch.Generator().manual_seed(18)
    alpha = torch.randn(5, 8, generator=gen, dtype=torch.float64).requires_grad_()
    probs = alpha.softmax(dim=-1)
    if mixing == "interpolate":  # TAS: renormalised weights of two drawn widths per row
        chosen = torch.tensor([[0, 3], [1, 7], [2, 4], [5, 6], [0, 7]])
        pair = probs.gather(1, chosen)
        probs = torch.zeros_like(probs).scatter(1, chosen, pair / pair.sum(1, keepdim=True))
    loss = F.cross_entropy(supernet(_images(19), probs, mixing=mixing), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    assert alpha.grad is not None and torch.isfinite(alpha.grad).all()
    assert (alpha.grad.abs().sum(dim=1) > 0).all()  # every layer's row gets a gradient


# --- counting --------------------------------------------------------------------------------


def test_closed_forms_reject_bad_widths() -> None:
    with pytest.raises(ConfigError, match=r"\(n, 5\)"):
        sss_param_counts(np.array([8, 8, 8, 8, 8]), 10)
    with pytest.raises(ConfigError, match="among"):
        sss_flop_counts(np.array([[8, 8, 8, 8, 12]]), 10, 32)
    with pytest.raises(ConfigError, match="divisible"):
        sss_flop_counts(np.array([[8, 8, 8, 8, 8]]), 10, 30)


def _official_runs(sss_samples: Path, index: int) -> Iterator[tuple[str, str, dict]]:
    with bz2.open(sss_samples / f"{index:06d}.pickle.pbz2", "rb") as f:
        data = pickle.load(f)
    for state in data.values():  # hp '01', '12', '90'
        for (dataset, _seed), run in state["all_results"].items():
            yield state["arch_str"], dataset, run


@pytest.mark.parametrize("index", sorted(OFFICIAL))
def test_params_and_flops_match_the_official_sample_files(sss_samples: Path, index: int) -> None:
    runs = list(_official_runs(sss_samples, index))
    assert {d for _, d, _ in runs} == {"cifar10-valid", *DATASETS}
    costs = {}
    for arch, dataset, run in runs:
        assert arch == OFFICIAL[index] == space.index_to_str(index)
        assert run["arch_config"]["genotype"] == GENOTYPE
        classes, side = DATASETS.get(dataset, (10, 32))
        if dataset not in costs:
            costs[dataset] = model_cost(SssNetwork(arch, num_classes=classes), (3, side, side))
            widths = np.array([arch_widths(arch)])
            assert sss_param_counts(widths, classes)[0] / 1e6 == pytest.approx(run["params"])
            assert sss_flop_counts(widths, classes, side)[0] / 1e6 == pytest.approx(run["flop"])
        assert costs[dataset].params_mb == pytest.approx(run["params"], abs=1e-9), dataset
        assert costs[dataset].flop_m == pytest.approx(run["flop"], abs=1e-9), dataset


N_BUILT = 500


@pytest.mark.slow
def test_closed_forms_match_built_networks_on_a_sample() -> None:
    """Counted on :data:`N_BUILT` built networks (a fixed seeded sample) for the three datasets.

    Building all 32,768 networks takes about 8-13 ms each here (the cost is module
    construction; the meta device is no faster), and a FLOP count on the meta device about
    30 ms, so the whole space is covered by the per-module test below instead.
    """
    widths = space.all_widths()[np.random.default_rng(2024).choice(space.NUM_ARCHS, N_BUILT)]
    expected = {
        name: (sss_param_counts(widths, k), sss_flop_counts(widths, k, side))
        for name, (k, side) in DATASETS.items()
    }
    for row, w in enumerate(widths):
        net = SssNetwork(w.tolist(), num_classes=10)
        for name, (classes, side) in DATASETS.items():
            net.classifier = nn.Linear(int(w[-1]), classes)  # only the head depends on classes
            params, flops = expected[name]
            assert count_params(net) == params[row], (name, w)
            assert count_flops(net, (3, side, side)) == flops[row], (name, w)


def _measured_module_counts(classes: int, side: int) -> dict[str, np.ndarray]:
    """Params and FLOPs of each module, built alone, over width positions: ``stem`` (8,),
    ``head`` (8,), and ``cell{s}`` / ``block{s}`` (8, 8) = (c_in, c_out) at stage s."""
    n = len(WIDTHS)
    counts = {key: np.zeros((2, n), np.int64) for key in ("stem", "head")}
    counts |= {key: np.zeros((2, n, n), np.int64) for key in ("cell1", "cell2", "cell3")}
    counts |= {key: np.zeros((2, n, n), np.int64) for key in ("block1", "block2")}
    sides = (side, side // 2, side // 4)
    for i, c in enumerate(WIDTHS):
        net = SssNetwork((c,) * 5, num_classes=classes)
        head = nn.Sequential(net.lastact, net.global_pooling, nn.Flatten(), net.classifier)
        counts["stem"][:, i] = count_params(net.stem), count_flops(net.stem, (3, side, side))
        counts["head"][:, i] = count_params(head), count_flops(head, (c, sides[2], sides[2]))
        for j, c_out in enumerate(WIDTHS):
            cell, block = SizeCell(c, c_out, True, True), ResNetBasicBlock(c, c_out)
            for s in (1, 2, 3):
                flops = count_flops(cell, (c, sides[s - 1], sides[s - 1]))
                counts[f"cell{s}"][:, i, j] = count_params(cell), flops
            for s in (1, 2):
                flops = count_flops(block, (c, sides[s - 1], sides[s - 1]))
                counts[f"block{s}"][:, i, j] = count_params(block), flops
    return counts


def test_closed_forms_are_the_sum_of_measured_module_counts_for_every_architecture() -> None:
    """A network's count is the sum of its modules' counts (stem, cell, block, cell, block,
    cell, head; checked on a few built networks), so measuring every module at every
    (c_in, c_out) pair and summing proves the closed forms on all 32,768 architectures."""
    p = space.all_positions().astype(np.int64)
    for name, (classes, side) in DATASETS.items():
        m = _measured_module_counts(classes, side)
        c1, c2, c3, c4, c5 = p.T
        total = (
            m["stem"][:, c1]
            + m["cell1"][:, c1, c1]
            + m["block1"][:, c1, c2]
            + m["cell2"][:, c2, c3]
            + m["block2"][:, c3, c4]
            + m["cell3"][:, c4, c5]
            + m["head"][:, c5]
        )  # fmt: skip  (2, 32768): params, flops
        widths = space.all_widths()
        np.testing.assert_array_equal(total[0], sss_param_counts(widths, classes), err_msg=name)
        np.testing.assert_array_equal(total[1], sss_flop_counts(widths, classes, side), name)
        for index in (0, 11, 284, 9999, space.NUM_ARCHS - 1):  # additivity on built networks
            net = SssNetwork(index, num_classes=classes)
            assert count_params(net) == total[0, index]
            assert count_flops(net, (3, side, side)) == total[1, index]


# --- parity with the reference implementation (xautodl) ----------------------------------------


def _our_key(key: str) -> str | None:
    """Our state-dict key of an xautodl one; None for its search-only entries. xautodl's search
    model keeps the stem as ``_cells.0`` and the other modules as ``_cells.1..5``; cells name
    their edges ``layers`` (in genotype order, as ours); everything else is named alike."""
    if key in ("_arch_parameters", "_tau", "_masks"):
        return None
    key = key.replace(".layers.", ".edges.")
    if key.startswith("_cells."):
        module, rest = key.removeprefix("_cells.").split(".", 1)
        return f"stem.{rest}" if module == "0" else f"cells.{int(module) - 1}.{rest}"
    return key


def _copy_into(reference: nn.Module, ours: nn.Module) -> None:
    """Load our (float64) state into ``reference``, entry by entry in state-dict order (both
    register stem, cells and blocks, head BN, classifier in the same order), asserting that the
    names correspond and the shapes agree pairwise."""
    reference.double()
    theirs, mine = reference.state_dict(), ours.state_dict()
    pairs = [(key, mapped) for key in theirs if (mapped := _our_key(key)) is not None]
    assert [m for _, m in pairs] == list(mine)
    for key, mapped in pairs:
        assert theirs[key].shape == mine[mapped].shape, key
        theirs[key] = mine[mapped].clone()
    reference.load_state_dict(theirs)


def _structure() -> Any:
    from xautodl.models.cell_searchs.genotypes import Structure

    return Structure.str2structure(GENOTYPE)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.usefixtures("xautodl")
def test_network_matches_xautodl(arch: str) -> None:
    from xautodl.models.shape_infers import DynamicShapeTinyNet

    ours = _randomize(SssNetwork(arch, num_classes=7), seed=20)
    reference = DynamicShapeTinyNet(list(arch_widths(arch)), _structure(), 7)
    _copy_into(reference, ours)
    assert count_params(ours) == count_params(reference)
    for mode in (True, False):
        ours.train(mode)
        reference.train(mode)
        x = _images(21)
        torch.testing.assert_close(ours(x), reference(x)[1], rtol=0, atol=1e-10)


def _reference_supernet(ours: SssSuperNet, algo: str) -> Any:
    from xautodl.models.shape_searchs import GenericNAS301Model

    reference = GenericNAS301Model(
        list(WIDTHS), 5, _structure(), 5, ours.affine, ours.track_running_stats
    )
    reference.set_algo(algo)
    _copy_into(reference, ours)
    assert count_params(ours) == sum(p.numel() for p in reference.weights)
    with torch.no_grad():  # distinct rows, to see which row each module reads
        reference._arch_parameters.copy_(torch.arange(40.0).view(5, 8))
    return reference


def _rows_in_calls(reference: Any, calls: list[torch.Tensor]) -> None:
    """Each module of the reference asked for row MODULE_ROWS[i] of its architecture logits."""
    rows = [reference._arch_parameters[r : r + 1] for r in SssSuperNet.MODULE_ROWS]
    assert len(calls) == 6 and all(torch.equal(c, r) for c, r in zip(calls, rows, strict=True))


@pytest.mark.parametrize(("affine", "track"), FLAGS)
@pytest.mark.usefixtures("xautodl")
def test_full_width_supernet_matches_xautodl(affine: bool, track: bool) -> None:
    """``set_warmup_ratio(1.0)`` makes the reference mask every module with the full-width mask
    (it draws ``random.random() < 1.0``: always), i.e. one-hot weights on 64."""
    ours = _supernet(22, affine=affine, track_running_stats=track)
    reference = _reference_supernet(ours, "mask_gumbel")
    reference.set_warmup_ratio(1.0)
    full = torch.zeros(5, 8, dtype=torch.float64)
    full[:, -1] = 1.0
    for mode in (True, False):
        ours.train(mode)
        reference.train(mode)
        x = _images(23)
        torch.testing.assert_close(ours(x, full), reference(x)[1], rtol=0, atol=1e-10)


@pytest.mark.parametrize(("affine", "track"), FLAGS)
@pytest.mark.usefixtures("xautodl")
def test_soft_masks_match_xautodl_mask_gumbel(
    affine: bool, track: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reference draws ``gumbel_softmax(logits[row])`` once per module; patched to return
    fixed soft rows (six: the stem and the first cell differ), its forward is deterministic and
    must equal ours under the same (6, 8) weights. The patch also records which row each module
    asked for."""
    ours = _supernet(24, affine=affine, track_running_stats=track)
    reference = _reference_supernet(ours, "mask_gumbel")
    gen = torch.Generator().manual_seed(25)
    rows = torch.softmax(2 * torch.randn(6, 8, generator=gen, dtype=torch.float64), dim=-1)
    calls: list[torch.Tensor] = []

    def fixed_draw(logits: torch.Tensor, tau: Any, dim: int) -> torch.Tensor:
        calls.append(logits)
        return rows[len(calls) - 1 : len(calls)]  # (1, 8)

    monkeypatch.setattr(torch.nn.functional, "gumbel_softmax", fixed_draw)
    x = _images(26)
    torch.testing.assert_close(ours(x, rows), reference(x)[1], rtol=0, atol=1e-10)
    _rows_in_calls(reference, calls)


@pytest.mark.parametrize(("affine", "track"), FLAGS)
@pytest.mark.usefixtures("xautodl")
def test_tas_interpolation_matches_xautodl(
    affine: bool, track: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reference's TAS draws two widths and their renormalised probabilities per module
    with ``select2withP``; patched (in the module that calls it) to return fixed pairs, its
    forward is deterministic: ``ChannelWiseInterV2`` of both prefixes to the wider one, mixed,
    zero-padded. Ours gets the same pairs as (6, 8) weights with two nonzero entries a row."""
    import xautodl.models.shape_searchs.generic_size_tiny_cell_model as searched

    ours = _supernet(27, affine=affine, track_running_stats=track)
    reference = _reference_supernet(ours, "tas")
    pairs = torch.tensor([[7, 2], [0, 1], [3, 6], [4, 5], [1, 0], [7, 6]])  # (6, 2) indices
    probs = torch.tensor([[0.3, 0.7], [0.9, 0.1], [0.5, 0.5], [0.2, 0.8], [0.6, 0.4], [0.45, 0.55]])
    weights = torch.zeros(6, 8, dtype=torch.float64).scatter(1, pairs, probs.double())
    calls: list[torch.Tensor] = []

    def fixed_pair(logits: torch.Tensor, tau: Any, num: int) -> tuple[torch.Tensor, torch.Tensor]:
        calls.append(logits)
        i = len(calls) - 1
        return pairs[i : i + 1], probs[i : i + 1].double()

    monkeypatch.setattr(searched, "select2withP", fixed_pair)
    for mode in (True, False):
        ours.train(mode)
        reference.train(mode)
        calls.clear()
        x = _images(28)
        torch.testing.assert_close(
            ours(x, weights, mixing="interpolate"), reference(x)[1], rtol=0, atol=1e-10
        )
        _rows_in_calls(reference, calls)


@pytest.mark.usefixtures("xautodl")
def test_channel_resize_matches_xautodl_channel_wise_interpolation() -> None:
    from xautodl.models.shape_searchs.SoftSelect import ChannelWiseInterV2

    gen = torch.Generator().manual_seed(29)
    for c_in in WIDTHS:
        x = torch.randn(2, c_in, 3, 3, generator=gen, dtype=torch.float64)
        for c_out in (c for c in WIDTHS if c >= c_in):  # TAS only widens
            ours = torch.einsum("oc,bchw->bohw", channel_resize_matrix(c_in, c_out), x)
            torch.testing.assert_close(ours, ChannelWiseInterV2(x, c_out), rtol=0, atol=1e-15)
