"""Parity of the topology-space networks with the reference implementation (xautodl 1.0.0).

Each test builds one of our networks and the reference's, checks that they hold the same number
of parameters, copies the same float64 weights and buffers into both through an explicit name
map (every key mapped exactly once, every shape pair equal, strict loading), and compares the
logits of one input in train mode, the running statistics that forward left behind, and the
logits in eval mode (atol 1e-10). For the supernets it also compares the gradients of a
cross-entropy with respect to alpha (through softmax(alpha)) and to every weight.

Reference networks:

* ``cell_infers.tiny_network.TinyNetwork``: the discrete network of one architecture;
* ``cell_searchs.search_model_darts.TinyNetworkDarts``: NAS-Bench-201's DARTS search model;
* ``cell_searchs.generic_model.GenericNAS201Model``: NATS-Bench's search model
  (``search-cell.py``). Its head BatchNorm follows the cell flags, where ours is always affine
  with running statistics; that is the one difference, and its test pins it.

Reference edges are keyed ``'j<-i'`` (sorted, so in our ``EDGES`` order, but mapped by name
here) and hold their ops in the order of the search space's op list (mapped by name too).
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from torch import nn

from harness.supernet import EDGES, OP_NAMES, TssNetwork, TssSuperNet

# tiny networks: one torch thread is fastest and steady on a shared machine
pytestmark = pytest.mark.usefixtures("one_torch_thread")

ATOL = 1e-10
CLASSES = 5
SIZES = ({"C": 4, "N": 1, "side": 8}, {"C": 8, "N": 2, "side": 16})
SIZE_IDS = ("C4-N1", "C8-N2")
ARCHS = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
    "|none~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|nor_conv_1x1~1|none~2|",
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|none~1|avg_pool_3x3~2|",
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
)
# (affine, track_running_stats) of the cell BatchNorms: NATS-Bench's, NAS-Bench-201's, both on
FLAGS = ((False, False), (False, True), (True, True))
ALPHA = "arch_parameters"


# --------------------------------------------------------------------------- helpers
def _inputs(size: dict[str, int], seed: int, n: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, 3, side, side) float64 images and (n,) labels."""
    gen = torch.Generator().manual_seed(seed)
    side = size["side"]
    x = torch.randn(n, 3, side, side, generator=gen, dtype=torch.float64)
    return x, torch.randint(0, CLASSES, (n,), generator=gen)


def _n_params(net: nn.Module) -> int:
    """Learnable parameters, the reference's architecture parameters left out."""
    return sum(p.numel() for name, p in net.named_parameters() if name != ALPHA)


def _randomize_(net: nn.Module, seed: int) -> None:
    """Seeded float64 values in every parameter and statistic: unit-variance-scaled weights,
    BN scales near 1 and shifts near 0 (so affine BNs are not the identity), running means near
    0 and variances in [0.5, 1.5] (so eval mode is not batch statistics in disguise)."""
    gen = torch.Generator().manual_seed(seed)

    def uniform(t: torch.Tensor, low: float, high: float) -> torch.Tensor:
        return torch.rand(t.shape, generator=gen, dtype=torch.float64) * (high - low) + low

    with torch.no_grad():
        for name, p in net.named_parameters():
            if p.ndim > 1:
                bound = math.sqrt(3.0 / p[0].numel())
                p.copy_(uniform(p, -bound, bound))
            elif name.endswith("weight"):
                p.copy_(uniform(p, 0.8, 1.2))
            else:
                p.copy_(uniform(p, -0.2, 0.2))
        for name, b in net.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(uniform(b, -0.1, 0.1))
            elif name.endswith("running_var"):
                b.copy_(uniform(b, 0.5, 1.5))
            elif name.endswith("num_batches_tracked"):
                b.fill_(3)


def _load_mapped(ours: nn.Module, ref: nn.Module, key_map: dict[str, str], **extra: Any) -> None:
    """Copy our state into ``ref`` through ``key_map`` (ours -> ref), which must cover both
    state dicts exactly (``extra``: reference-only entries, e.g. alpha); shapes must agree."""
    mine, theirs = ours.state_dict(), ref.state_dict()
    assert sorted(key_map) == sorted(mine), "map must name every key of ours once"
    assert sorted([*key_map.values(), *extra]) == sorted(theirs), "map must hit every ref key"
    state = {}
    for key, ref_key in key_map.items():
        assert mine[key].shape == theirs[ref_key].shape, (key, ref_key)
        state[ref_key] = mine[key].detach().clone()
    ref.load_state_dict({**state, **extra}, strict=True)


def _assert_same_state(ours: nn.Module, ref: nn.Module, key_map: dict[str, str]) -> None:
    """Every mapped parameter and buffer (running statistics, batch counts) equal."""
    mine, theirs = ours.state_dict(), ref.state_dict()
    for key, ref_key in key_map.items():
        torch.testing.assert_close(mine[key], theirs[ref_key], rtol=0, atol=ATOL, msg=key)


def _close(a: torch.Tensor, b: torch.Tensor) -> None:
    torch.testing.assert_close(a, b, rtol=0, atol=ATOL)


# GenericNAS201Model's names of the modules TinyNetworkDarts and ours call stem and cells
_GENERIC_NAMES = {"_stem": "stem", "_cells": "cells"}


def _search_cell_key(ref_key: str, op_names: list[str]) -> str:
    """``cells.i.edges.{j<-s}.{k}.rest`` (reference) -> ``cells.i.edges.{e}.{op}.rest`` (ours):
    ``e`` is ``EDGES.index((s, j))`` and ``op`` the position of ``op_names[k]`` in OP_NAMES."""
    parts = ref_key.split(".")
    parts[0] = _GENERIC_NAMES.get(parts[0], parts[0])
    if parts[0] != "cells" or len(parts) < 4 or parts[2] != "edges":
        return ".".join(parts)  # stem, residual blocks, head: same names
    dst, src = (int(node) for node in parts[3].split("<-"))
    parts[3] = str(EDGES.index((src, dst)))
    parts[4] = str(OP_NAMES.index(op_names[int(parts[4])]))
    return ".".join(parts)


def _supernet_map(ref: nn.Module, op_names: list[str]) -> dict[str, str]:
    """ours -> reference state-dict keys of a search model (alpha left out)."""
    keys = [k for k in ref.state_dict() if k != ALPHA]
    mapping = {_search_cell_key(k, op_names): k for k in keys}
    assert len(mapping) == len(keys), "two reference keys mapped to one of ours"
    return mapping


# --------------------------------------------------------------------------- discrete network
def _discrete_map(ref: nn.Module, genotype: Any) -> dict[str, str]:
    """ours -> reference keys of the discrete network. A reference cell holds its ops as
    ``layers.k`` in the genotype's order (node 1's inputs, then node 2's, then node 3's);
    ours as ``edges.e`` in EDGES order."""
    layer_edges = [
        EDGES.index((src, node))
        for node, inputs in enumerate(genotype.nodes, start=1)
        for _op, src in inputs
    ]
    mapping = {}
    for key in ref.state_dict():
        parts = key.split(".")
        if parts[0] == "cells" and len(parts) > 3 and parts[2] == "layers":
            parts[2:4] = ["edges", str(layer_edges[int(parts[3])])]
        mapping[".".join(parts)] = key
    return mapping


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
@pytest.mark.parametrize("arch", ARCHS)
def test_discrete_network_matches_the_reference(
    xautodl: object, arch: str, size: dict[str, int]
) -> None:
    from xautodl.models.cell_infers.tiny_network import TinyNetwork
    from xautodl.models.cell_searchs.genotypes import Structure

    genotype = Structure.str2structure(arch)
    ours = TssNetwork(arch, num_classes=CLASSES, C=size["C"], N=size["N"]).double()
    ref = TinyNetwork(size["C"], size["N"], genotype, CLASSES).double()
    assert _n_params(ours) == _n_params(ref)
    key_map = _discrete_map(ref, genotype)
    _randomize_(ours, seed=len(arch))
    _load_mapped(ours, ref, key_map)
    x, _ = _inputs(size, seed=1)
    _close(ours.train()(x), ref.train()(x)[1])
    _assert_same_state(ours, ref, key_map)  # running statistics updated alike
    _close(ours.eval()(x), ref.eval()(x)[1])


# --------------------------------------------------------------------------- supernets
def _alpha(seed: int) -> torch.Tensor:
    """(6, 5) float64 architecture logits, far from uniform (scale 1)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(len(EDGES), len(OP_NAMES), generator=gen, dtype=torch.float64)


def _compare_supernets(
    ours: TssSuperNet, ref: nn.Module, key_map: dict[str, str], size: dict[str, int]
) -> None:
    """Same alpha in both; logits (train, then eval), statistics and gradients equal."""
    alpha = _alpha(seed=size["C"])
    _randomize_(ours, seed=size["C"] + size["N"])
    _load_mapped(ours, ref, key_map, **{ALPHA: alpha})
    x, y = _inputs(size, seed=2)
    mine = alpha.clone().requires_grad_(True)
    logits = ours.train()(x, torch.softmax(mine, dim=-1))
    ref_logits = ref.train()(x)[1]
    _close(logits, ref_logits)
    _assert_same_state(ours, ref, key_map)
    nn.functional.cross_entropy(logits, y).backward()
    nn.functional.cross_entropy(ref_logits, y).backward()
    ref_alpha = dict(ref.named_parameters())[ALPHA]
    assert mine.grad is not None and ref_alpha.grad is not None
    _close(mine.grad, ref_alpha.grad)
    ref_params = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        grad, ref_grad = p.grad, ref_params[key_map[name]].grad
        assert grad is not None and ref_grad is not None, name
        torch.testing.assert_close(grad, ref_grad, rtol=0, atol=ATOL, msg=name)
    with torch.no_grad():
        _close(ours.eval()(x, torch.softmax(alpha, dim=-1)), ref.eval()(x)[1])


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "per-op"])
@pytest.mark.parametrize("flags", FLAGS, ids=[f"affine{a:d}-track{t:d}" for a, t in FLAGS])
@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_supernet_matches_the_darts_search_model(
    xautodl: object, size: dict[str, int], flags: tuple[bool, bool], fused: bool
) -> None:
    from xautodl.models.cell_operations import NAS_BENCH_201
    from xautodl.models.cell_searchs.search_model_darts import TinyNetworkDarts

    affine, track = flags
    C, N = size["C"], size["N"]
    ours = TssSuperNet(
        num_classes=CLASSES, C=C, N=N, affine=affine, track_running_stats=track, fused=fused
    ).double()
    ref = TinyNetworkDarts(C, N, 4, CLASSES, list(NAS_BENCH_201), affine, track).double()
    assert _n_params(ours) == _n_params(ref)
    _compare_supernets(ours, ref, _supernet_map(ref, list(ref.op_names)), size)


def test_reference_edge_and_op_order_is_ours(xautodl: object) -> None:
    """The name maps above do not rely on it, but the orders agree (alpha rows and columns)."""
    from xautodl.models.cell_operations import NAS_BENCH_201
    from xautodl.models.cell_searchs.search_model_darts import TinyNetworkDarts

    ref = TinyNetworkDarts(4, 1, 4, CLASSES, list(NAS_BENCH_201), False, False)
    assert [ref.edge2index[f"{dst}<-{src}"] for src, dst in EDGES] == list(range(len(EDGES)))
    assert tuple(ref.op_names) == OP_NAMES


@pytest.mark.parametrize("flags", FLAGS, ids=[f"affine{a:d}-track{t:d}" for a, t in FLAGS])
def test_supernet_matches_the_nats_search_model_but_for_the_head_batchnorm(
    xautodl: object, flags: tuple[bool, bool]
) -> None:
    """NATS-Bench's GenericNAS201Model builds its head BatchNorm with the cell flags; ours keeps
    it affine with running statistics (as NAS-Bench-201's TinyNetworkDarts does). The counts
    differ by exactly that BN's scale and shift; with our head BN set to act like the
    reference's (scale 1, shift 0, batch statistics when the flags say so), all else is equal."""
    from xautodl.models.cell_operations import NAS_BENCH_201
    from xautodl.models.cell_searchs.generic_model import GenericNAS201Model

    affine, track = flags
    size = SIZES[0]
    C, N = size["C"], size["N"]
    ours = TssSuperNet(num_classes=CLASSES, C=C, N=N, affine=affine, track_running_stats=track)
    ours = ours.double()
    ref = GenericNAS201Model(C, N, 4, CLASSES, list(NAS_BENCH_201), affine, track)
    ref.set_algo("darts-v1")
    ref.set_cal_mode("joint")
    ref = ref.double()
    head = ours.lastact[0]
    assert isinstance(head, nn.BatchNorm2d)
    extra = 2 * 4 * C if head.affine and not affine else 0
    assert _n_params(ours) - _n_params(ref) == extra
    # Make our head BN act like the reference's, then map everything the reference has.
    if not affine:
        head.affine = False
        head.weight, head.bias = None, None  # type: ignore[assignment]
    if not track:
        head.track_running_stats = False
        head.running_mean = head.running_var = head.num_batches_tracked = None
    assert _n_params(ours) == _n_params(ref)
    _compare_supernets(ours, ref, _supernet_map(ref, list(ref._op_names)), size)
