"""The size-space section of ``bench_reference.py``: one channel-search step of the harness
beside the reference's, for TAS, FBNet-V2 (``mask_gumbel``) and TuNAS (``mask_rl``).

At the published size (the NATS-Bench sss supernet: six modules at width 64, 10 classes, batch
64, 32x32 random images, cell BNs without affine parameters or running statistics; SGD lr 0.025
Nesterov momentum 0.9 wd 5e-4, no clipping; Adam 3e-4 (0.5, 0.999), wd 1e-3, TuNAS 0) and after
the warm-up (the controller on), one step is:

* ours: the loop's learning rate into the SGD groups, then the method's ``step``
  (:class:`~methods.nats_width.WidthSearch`: a weight step under the method's sampled
  per-module weights, then its architecture step);
* reference: xautodl's ``GenericNAS301Model`` with ``set_algo`` as NATS-Bench's
  ``search-size.py`` steps it: zero_grad, forward, backward, SGD on the weights; zero_grad,
  forward on the architecture batch, the algorithm's loss (TuNAS: REINFORCE on the batch's
  top-1 against a bias-corrected moving average), backward, Adam on alpha.

Ours is timed twice: in the default memory format and channels-last (``--channels-last`` of
``harness supernet run``), which suits the CPU's convolutions. Both start from the same weights
(ours copied into the reference by name) and the same alpha.
Their random draws differ (ours from the method's generator, the reference's from torch's
global one, seeded here), so single steps sample different widths; the medians over many
alternating steps compare the two on the same distribution of samples.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any

import torch
from bench_reference import BATCH, CLASSES, Step, _batches, _count_ops, _summary, compare
from torch import nn

from harness.oneshot.setup import build_supernet
from harness.registry import get_method
from harness.spaces import get_space
from harness.supernet.cards import SupernetCard, get_card
from harness.supernet.search import Batch, SearchLedger, StepContext
from harness.supernet.sss import GENOTYPE, WIDTHS, SssSuperNet

CARD = "nats-ws-sss"
#: our method -> the reference's algorithm name
ALGORITHMS = {"tas": "tas", "fbnet_v2": "mask_gumbel", "tunas": "mask_rl"}
STEPS_PER_EPOCH = math.ceil(25_000 / BATCH)
EPOCH = 50  # a controller epoch of the 100: tau 10 -> 0.1 is halfway, warm-up over


def _our_key(key: str) -> str | None:
    """Our state-dict key of a reference one (None for its search-only entries)."""
    if key in ("_arch_parameters", "_tau", "_masks"):
        return None
    key = key.replace(".layers.", ".edges.")
    if key.startswith("_cells."):
        module, rest = key.removeprefix("_cells.").split(".", 1)
        return f"stem.{rest}" if module == "0" else f"cells.{int(module) - 1}.{rest}"
    return key


def _tau(card: SupernetCard, method: Any) -> float:
    cfg = method.config
    return cfg.tau_max - (cfg.tau_max - cfg.tau_min) * EPOCH / (card.epochs - 1)


def ours_step(card: SupernetCard, name: str, net: SssSuperNet, alpha: torch.Tensor,
              batches: tuple[Batch, Batch]) -> Step:  # fmt: skip
    """Our step of method ``name`` (the card's settings) at controller epoch :data:`EPOCH`."""
    cls = get_method(name, "supernet")
    method = cls(cls.Config(**card.method_overrides(cls.Config, name)))
    config = card.search_config()
    gen = torch.Generator().manual_seed(1)
    state = method.init_arch_state(get_space("sss"), gen)
    with torch.no_grad():
        state["alpha"].copy_(alpha)
    optimizer = torch.optim.SGD(
        net.parameters(), lr=config.lr, momentum=config.momentum,
        weight_decay=config.weight_decay, nesterov=config.nesterov,
    )  # fmt: skip
    ctx = StepContext(method, net, optimizer, state, method.init_method_state(state, net), gen,
                      config, SearchLedger(), epoch=EPOCH)  # fmt: skip
    method.on_epoch_start(ctx)
    assert float(state["warmup"]) < 0  # the controller is on

    def step() -> torch.Tensor:
        ctx.lr = config.lr_at(EPOCH, 0, STEPS_PER_EPOCH)
        for group in optimizer.param_groups:
            group["lr"] = ctx.lr
        return torch.as_tensor(method.step(ctx, *batches))

    return step


def reference_step(card: SupernetCard, name: str, net: SssSuperNet, alpha: torch.Tensor,
                   batches: tuple[Batch, Batch]) -> Step:  # fmt: skip
    """The reference's step of the same algorithm from a copy of ``net``'s weights."""
    from xautodl.models.cell_searchs.genotypes import Structure
    from xautodl.models.shape_searchs import GenericNAS301Model

    algo = ALGORITHMS[name]
    ref = GenericNAS301Model(list(WIDTHS), 5, Structure.str2structure(GENOTYPE), CLASSES,
                             card.affine, card.track_running_stats)  # fmt: skip
    ref.set_algo(algo)
    theirs, mine = ref.state_dict(), net.state_dict()
    for key in theirs:
        mapped = _our_key(key)
        if mapped is not None:
            assert theirs[key].shape == mine[mapped].shape, key
            theirs[key] = mine[mapped].clone()
    ref.load_state_dict(theirs)
    cls = get_method(name, "supernet")
    method = cls(cls.Config(**card.method_overrides(cls.Config, name)))
    ref.set_tau(_tau(card, method))
    with torch.no_grad():
        ref._arch_parameters.copy_(alpha)
    config = card.search_config()
    w_opt = torch.optim.SGD(
        ref.weights, lr=config.lr, momentum=config.momentum,
        weight_decay=config.weight_decay, nesterov=config.nesterov,
    )  # fmt: skip
    a_opt = torch.optim.Adam(ref.alphas, lr=method.config.arch_lr, betas=(0.5, 0.999),
                             weight_decay=method.config.arch_weight_decay)  # fmt: skip
    ema = [0.0, 0.0]
    (x, y), (ax, ay) = batches

    def step() -> torch.Tensor:
        for group in w_opt.param_groups:
            group["lr"] = config.lr_at(EPOCH, 0, STEPS_PER_EPOCH)
        ref.zero_grad()
        _, logits, _ = ref(x)
        loss = nn.functional.cross_entropy(logits, y)
        loss.backward()
        w_opt.step()
        ref.zero_grad()
        a_opt.zero_grad()
        _, logits, log_probs = ref(ax)
        if algo == "mask_rl":
            with torch.no_grad():
                top1 = 100.0 * float((logits.argmax(dim=1) == ay).float().mean())
                ema[0] = 0.95 * ema[0] + 0.05 * top1
                ema[1] = 0.95 * ema[1] + 0.05
            arch_loss = -(top1 - ema[0] / ema[1]) * sum(log_probs)
        else:
            arch_loss = nn.functional.cross_entropy(logits, ay)
        arch_loss.backward()
        a_opt.step()
        return loss.detach()

    return step


def _channels_last(batches: tuple[Batch, Batch]) -> tuple[Batch, Batch]:
    (x, y), (ax, ay) = batches
    layout = torch.channels_last
    return (x.contiguous(memory_format=layout), y), (ax.contiguous(memory_format=layout), ay)


def measure_sss(name: str, warmup: int, repeats: int, seed: int = 0) -> dict[str, Any]:
    """One method of the size space: both steps built, timed and op-counted."""
    card = get_card(CARD)
    gen = torch.Generator().manual_seed(seed)
    net = build_supernet(card, CLASSES, gen).train()
    assert isinstance(net, SssSuperNet)
    alpha = 1e-3 * torch.randn(5, 8, generator=gen)
    batches = _batches(gen)
    torch.manual_seed(seed)  # the reference samples from the global generator
    last = copy.deepcopy(net).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    steps = {
        "reference": reference_step(card, name, net, alpha, batches),  # before ours trains
        "ours": ours_step(card, name, net, alpha, batches),
        "ours_channels_last": ours_step(card, name, last, alpha, _channels_last(batches)),
    }
    seconds = compare(steps, warmup, repeats)
    ours, ref = _summary(seconds["ours"]), _summary(seconds["reference"])
    fast = _summary(seconds["ours_channels_last"])
    return {
        "method": name,
        "reference_algo": ALGORITHMS[name],
        "card": card.key,
        "epoch": EPOCH,
        "warmup_steps": warmup,
        "repeats": repeats,
        "ours_median_ms": ours["median_ms"],
        "reference_median_ms": ref["median_ms"],
        "ratio_ours_over_reference": ours["median_ms"] / ref["median_ms"],
        "speedup": ref["median_ms"] / ours["median_ms"],
        "cpu_ratio_ours_over_reference": ours["cpu_median_ms"] / ref["cpu_median_ms"],
        "channels_last_median_ms": fast["median_ms"],
        "channels_last_speedup": ref["median_ms"] / fast["median_ms"],
        "ours": ours,
        "ours_channels_last": fast,
        "reference": ref,
        "dispatched_ops": {n: _count_ops(s) for n, s in steps.items()},
        "settings": {k: v for k, v in dataclasses.asdict(card).items()
                     if k in ("affine", "track_running_stats", "mask_scope", "grad_clip")},
    }  # fmt: skip
