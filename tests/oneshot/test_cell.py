"""Supernet protocol cards and one experiment cell end to end on the tiny CPU card."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.bench.names import TASKS
from harness.errors import ConfigError
from harness.oneshot.cell import run_cell
from harness.oneshot.setup import Runtime, TruthSet, build_supernet
from harness.spaces import tss as space
from harness.supernet.cards import SUPERNET_CARDS, SupernetCard, get_card
from harness.supernet.channels import prefix_masks, resize_table
from harness.supernet.quality import GroundTruth
from harness.supernet.sss import SssSuperNet
from methods.darts import DartsConfig
from methods.dnal import DnalConfig
from methods.gaea import GaeaConfig
from methods.tunas import TunasConfig

BLACKBOX_COLUMNS = (
    "run_key", "method", "config", "space", "dataset", "eval_dataset", "protocol", "seed",
    "arch_index", "arch", "valid_acc", "test_acc", "regret", "rank", "percentile",
    "sim_seconds", "queries", "distinct_archs", "wall_seconds", "device_seconds", "status",
    "synthetic", "data_checksum",
)  # fmt: skip
EXTRA_COLUMNS = ("selection", "epochs", "forward_passes", "backward_passes", "kendall_tau",
                 "spearman_rho")  # fmt: skip


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _truths(tasks: tuple[str, ...] = ("cifar10",)) -> TruthSet:
    rng = np.random.default_rng(11)
    return TruthSet.from_truths(
        {t: GroundTruth.from_arrays(t, rng.uniform(10, 94, space.NUM_ARCHS)) for t in tasks}
    )


# --------------------------------------------------------------------------- cards
@pytest.mark.parametrize("name", list(SUPERNET_CARDS))
def test_cards_round_trip_through_json(name: str) -> None:
    card = get_card(name)
    assert SupernetCard.from_dict(json.loads(json.dumps(card.to_dict()))) == card
    assert get_card(card.key) is card


def test_cards_hold_the_published_settings() -> None:
    nb201, nats, pt = get_card("nb201-darts"), get_card("nats-ws"), get_card("darts-pt")
    cfg = nb201.search_config()
    assert (cfg.epochs, cfg.lr, cfg.lr_min, cfg.momentum, cfg.weight_decay, cfg.grad_clip) == (
        50,
        0.025,
        0.001,
        0.9,
        5e-4,
        5.0,
    )
    assert nb201.batch_size == 64 and nb201.eval_tasks("cifar10") == TASKS
    assert nb201.supernet_kwargs(10) == dict(
        num_classes=10, C=16, N=5, affine=False, track_running_stats=True
    )
    assert nats.search_config().grad_clip is None and nats.search_config().epochs == 100
    assert not nats.track_running_stats and nats.eval_tasks("cifar100") == ("cifar100",)
    assert pt.search_config().weight_decay == 3e-4 and pt.search_config().epochs == 100
    tune = pt.perturbation_config(steps_per_epoch=391)
    assert tune.fine_tune_steps == 5 * 391 and tune.fine_tune_lr == 0.0025
    # DARTS-PT: 25 tuning epochs, projections at epochs 0, 5, 10, 15, 20 and 24
    assert tune.last_tune_steps == 4 * 391
    assert tune.valid_batches is None and tune.criterion == "acc"
    assert nb201.method_overrides(DartsConfig) == dict(
        arch_lr=3e-4, arch_beta1=0.5, arch_beta2=0.999, arch_weight_decay=1e-3,
        weights_first=True,
    )  # fmt: skip
    assert pt.method_overrides(DartsConfig)["weights_first"] is False
    assert pt.perturbation_config(10).tune_arch and pt.perturbation_config(10).fine_tune_steps == 50
    assert nb201.method_overrides(GaeaConfig) == {}
    tiny = get_card("tiny-cpu")
    assert (tiny.C, tiny.N, tiny.image_size, tiny.data) == (4, 1, 8, "synthetic")


def test_published_cards_follow_their_code() -> None:
    """Version 4: the cosine per epoch, NB201's DARTS-V2 alpha step first, NATS's head BN
    with the cell flags and top-K per candidate in eval mode, DARTS-PT's fresh batches; and
    the GDAS, DrNAS and GAEA cards. DARTS-PT (version 5) and DrNAS search on the two halves of
    the training set, the other published cards on AutoDL's search split."""
    nb201, nats, pt = get_card("nb201-darts"), get_card("nats-ws"), get_card("darts-pt")
    assert all(c.search_config().lr_per_epoch for c in (nb201, nats, pt))
    assert (nb201.version, nats.version, pt.version) == (4, 4, 5)
    assert pt.search_split == get_card("drnas-nb201").search_split == "train_halves"
    assert nb201.search_split == nats.search_split == "benchmark"
    assert nb201.method_overrides(DartsConfig, "darts_v2")["weights_first"] is False
    assert nb201.method_overrides(DartsConfig, "darts_v1")["weights_first"] is True
    assert nats.supernet_kwargs(10)["head_like_cells"] is True
    assert "head_like_cells" not in nb201.supernet_kwargs(10)
    topk = nats.topk_config()
    assert topk.per_candidate and not topk.train_mode and topk.valid_batches == 1
    assert (
        pt.perturbation_config(10).fresh_batches and not nb201.perturbation_config(10).fresh_batches
    )
    assert get_card("nb201-gdas").epochs == 250
    drnas = get_card("drnas-nb201")
    assert (drnas.epochs, drnas.weight_decay, drnas.nesterov, drnas.grad_clip) == (
        100, 3e-4, False, 5.0
    )  # fmt: skip
    assert drnas.step_order == "arch_first" and drnas.track_running_stats
    gaea = get_card("gaea-nb201")
    cfg = gaea.search_config()
    assert (gaea.C, cfg.epochs, cfg.schedule_epochs, cfg.weight_decay, cfg.nesterov) == (
        24, 25, 50, 3e-4, False
    )  # fmt: skip
    assert gaea.train_on == "all" and "all 50,000" in gaea.data_split("cifar10")["weights"]
    # the cards that are not published settings keep their run keys (knobs at defaults)
    assert "lr_schedule" not in get_card("cpu-cifar10").to_dict()


def test_cosine_once_per_epoch() -> None:
    from harness.supernet.method import SearchConfig

    per_step = SearchConfig(epochs=10, lr=0.1, lr_min=0.0)
    per_epoch = SearchConfig(epochs=10, lr=0.1, lr_min=0.0, lr_per_epoch=True)
    assert per_epoch.lr_at(3, 0, 100) == per_epoch.lr_at(3, 99, 100) == per_step.lr_at(3, 0, 100)
    assert per_step.lr_at(3, 99, 100) < per_step.lr_at(3, 0, 100)
    assert per_epoch.lr_at(3, 0, 100) == pytest.approx(0.05 * (1 + math.cos(math.pi * 0.3)))


def test_bilevel_methods_are_refused_where_every_training_image_trains() -> None:
    card = dataclasses.replace(get_card("tiny-cpu"), train_on="all")
    with pytest.raises(ConfigError, match="only single-level methods"):
        run_cell("darts_v1", card, "cifar10", 0, _truths())


def test_card_errors() -> None:
    with pytest.raises(ConfigError, match="did you mean 'nats-ws'"):
        get_card("nats_ws")
    with pytest.raises(ConfigError, match="version 5"):
        get_card("darts-pt@4")
    with pytest.raises(ConfigError, match="search task"):
        get_card("nb201-darts").eval_tasks("cifar100")
    with pytest.raises(ConfigError, match="JPEG copy holds CIFAR-10 only"):
        get_card("nats-ws").data_split("cifar100")
    with pytest.raises(ConfigError, match="data source"):
        dataclasses.replace(get_card("tiny-cpu"), data="imagenet")
    with pytest.raises(ConfigError, match="unknown supernet card field"):
        SupernetCard.from_dict({**get_card("tiny-cpu").to_dict(), "lr_max": 1.0})


# --------------------------------------------------------------------------- cell
def test_build_supernet_is_seeded_and_leaves_global_rng_alone() -> None:
    card = get_card("tiny-cpu")
    state = torch.get_rng_state()
    a = build_supernet(card, 4, torch.Generator().manual_seed(1))
    b = build_supernet(card, 4, torch.Generator().manual_seed(1))
    c = build_supernet(card, 4, torch.Generator().manual_seed(2))
    assert torch.equal(state, torch.get_rng_state())
    pa, pb, pc = (torch.cat([p.flatten() for p in n.parameters()]) for n in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc) and torch.isfinite(pa).all()


def test_size_space_supernet_built_on_meta_keeps_its_constant_buffers() -> None:
    """``to_empty`` leaves buffers uninitialised: the masks and channel maps are refilled."""
    net = build_supernet(get_card("tiny-cpu-sss"), 4, torch.Generator().manual_seed(1))
    assert isinstance(net, SssSuperNet)
    assert torch.equal(net.prefix_masks, prefix_masks()) and torch.equal(
        net.resize_maps, resize_table().to(net.resize_maps.dtype)
    )


def test_size_space_cards() -> None:
    nats, cpu = get_card("nats-ws-sss"), get_card("cpu-cifar10-sss")
    assert nats.space == "sss" and nats.supernet_kwargs(10) == dict(
        num_classes=10, mask_scope="module", affine=False, track_running_stats=False
    )
    cfg = nats.search_config()
    assert (cfg.epochs, cfg.lr, cfg.lr_min, cfg.grad_clip, cfg.nesterov) == (
        100, 0.025, 0.001, None, True
    )  # fmt: skip
    assert nats.report_hp == "90" and nats.search_tasks == TASKS
    assert nats.method_overrides(TunasConfig, "tunas")["arch_weight_decay"] == 0.0
    assert nats.method_overrides(TunasConfig, "tas")["arch_weight_decay"] == 1e-3
    assert cpu.method_overrides(DnalConfig, "dnal") == {"arch_epochs": 3}
    assert "space" not in get_card("nats-ws").to_dict()  # later knobs at defaults stay out
    with pytest.raises(ConfigError, match="card space"):
        dataclasses.replace(nats, space="ofa")


def _stable(rows: list[dict]) -> list[dict]:
    timing = {"wall_seconds", "device_seconds", "selection_seconds"}
    return [{k: v for k, v in r.items() if k not in timing} for r in rows]


def test_cell_end_to_end_on_the_tiny_card(tmp_path: Path) -> None:
    truth = _truths()
    runtime = Runtime(workdir=str(tmp_path))
    result = run_cell("darts_v1", "tiny-cpu", "cifar10", 0, truth, runtime=runtime)
    assert [r["selection"] for r in result.rows] == ["magnitude", "perturbation"]
    for row in result.rows:
        assert set(BLACKBOX_COLUMNS + EXTRA_COLUMNS) <= set(row)
        assert row["protocol"] == "tiny-cpu@4" and row["space"] == "tss" and row["synthetic"]
        assert row["sim_seconds"] is None and row["queries"] is None
        assert row["epochs"] == 2 and row["forward_passes"] >= 6 and row["status"] == "ok"
        assert row["data_checksum"] == truth.checksum
        assert -1 <= row["kendall_tau"] <= 1 and -1 <= row["spearman_rho"] <= 1
        gt = truth.get("cifar10")
        assert row["test_acc"] == gt.test[row["arch_index"]]
        assert row["regret"] == pytest.approx(gt.best - row["test_acc"])
        assert json.loads(row["config"])["order"] == 1
        assert json.loads(row["card"])["C"] == 4 and json.loads(row["search_config"])["epochs"] == 2
    magnitude, perturbation = result.rows
    assert magnitude["arch_index"] == result.search.arch_index  # type: ignore[union-attr]
    assert magnitude["selection_forward_passes"] == magnitude["selection_backward_passes"] == 0
    # tiny-cpu: 30 candidates x 2 valid batches, then 4 tuning phases of 3 DARTS steps (2
    # passes each); the phase before the last edge is one epoch shorter, so empty
    assert perturbation["selection_forward_passes"] == 60 + 24
    assert perturbation["selection_backward_passes"] == 24
    assert [t["epoch"] for t in result.trajectory] == [0, 1]
    assert result.trajectory[-1]["argmax_index"] == magnitude["arch_index"]
    key = magnitude["run_key"]
    assert (tmp_path / f"{key}.supernet.pt").is_file() and (tmp_path / f"{key}.search.pt").is_file()
    assert (tmp_path / f"{key}.select.pt").is_file()  # the perturbation selection's checkpoint
    log = (tmp_path / f"{key}.progress.log").read_text().splitlines()
    stages = [line.split(" ", 2)[2].split(":")[0].split(" ")[0] for line in log]
    assert stages == ["cell", "epoch", "epoch", "search", "rank", "selection",
                      *["edge"] * 6, "selection", "cell"]  # fmt: skip
    assert "epoch 2/2: loss" in log[2] and log[-1].endswith(" s") and "cell done" in log[-1]
    saved = torch.load(tmp_path / f"{key}.supernet.pt", weights_only=False)
    assert np.allclose(saved["arch_weights"], result.search.arch_weights)  # type: ignore[union-attr]

    again = run_cell("darts_v1", "tiny-cpu", "cifar10", 0, truth)
    assert _stable(again.rows) == _stable(result.rows)
    other = run_cell("darts_v1", "tiny-cpu", "cifar10", 1, truth)
    assert other.rows[0]["run_key"] != key
    assert not np.allclose(other.search.arch_weights, result.search.arch_weights)  # type: ignore[union-attr]


def test_cell_transfer_rows_topk_and_a_given_rank_sample() -> None:
    card = dataclasses.replace(get_card("tiny-cpu"), transfer=True)
    truth = _truths(TASKS)
    sample = np.arange(0, space.NUM_ARCHS, 1500)
    result = run_cell("gaea", card, "cifar10", 3, truth, selections=("topk", "magnitude"),
                      rank_sample=sample, overrides={"eg_lr": 0.5})  # fmt: skip
    assert len(result.rows) == 2 * len(TASKS)
    assert {r["eval_dataset"] for r in result.rows} == set(TASKS)
    assert {r["selection"] for r in result.rows} == {"topk", "magnitude"}
    assert json.loads(result.rows[0]["config"])["eg_lr"] == 0.5
    assert len(result.trajectory) == 2 * len(TASKS)
    by_task = {r["eval_dataset"]: r for r in result.rows if r["selection"] == "topk"}
    assert len({r["arch_index"] for r in by_task.values()}) == 1  # one architecture, 3 reports


def test_cell_validates_its_inputs() -> None:
    truth = _truths()
    with pytest.raises(ConfigError, match="selection rule"):
        run_cell("darts_v1", "tiny-cpu", "cifar10", 0, truth, selections=("argmax",))
    with pytest.raises(ConfigError, match="not supernet"):
        run_cell("rea", "tiny-cpu", "cifar10", 0, truth)
    with pytest.raises(ConfigError, match="hyperparameter of darts_v2"):
        run_cell("darts_v2", "tiny-cpu", "cifar10", 0, truth, overrides={"eg_lr": 1.0})
    with pytest.raises(ConfigError, match=r"Runtime\.images"):
        run_cell("darts_v1", "darts-pt", "cifar10", 0, truth)


class _Killed(Exception):
    """Plays a kill: raised from the progress log at a chosen line."""


@pytest.mark.parametrize("kill_at", ["epoch 1/2", "layer 3/5"])
def test_a_killed_size_space_cell_resumes_to_the_same_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kill_at: str
) -> None:
    """A TuNAS cell on tiny-cpu-sss killed after its first epoch, or after its third layer
    decision, run again with the same work directory, gives the rows of an uninterrupted cell
    (timings aside)."""
    truth = TruthSet.without_truth("sss", ["cifar10"], "90", "no sss store in this test")
    selections = ("magnitude", "perturbation", "topk")
    whole = run_cell("tunas", "tiny-cpu-sss", "cifar10", 3, truth, selections=selections,
                     runtime=Runtime(workdir=str(tmp_path / "whole")))  # fmt: skip
    from harness.oneshot import setup

    real = setup.ProgressLog.__call__

    def killing(self: setup.ProgressLog, line: str) -> None:
        real(self, line)
        if line.startswith(kill_at):
            raise _Killed(line)

    monkeypatch.setattr(setup.ProgressLog, "__call__", killing)
    part = Runtime(workdir=str(tmp_path / "part"))
    with pytest.raises(_Killed):
        run_cell("tunas", "tiny-cpu-sss", "cifar10", 3, truth, selections=selections,
                 runtime=part)  # fmt: skip
    monkeypatch.setattr(setup.ProgressLog, "__call__", real)
    resumed = run_cell("tunas", "tiny-cpu-sss", "cifar10", 3, truth, selections=selections,
                       runtime=part)  # fmt: skip
    assert _stable(resumed.rows) == _stable(whole.rows)
    assert [r["truth_note"] for r in resumed.rows] == ["no sss store in this test"] * 3
    log = next((tmp_path / "part").glob("*.progress.log")).read_text()
    if kill_at.startswith("epoch"):
        assert "resuming search from " in log and "epochs 1-1 done, next epoch 2" in log
    else:
        assert "resuming search from " in log and "epochs 1-2 done, next epoch 3" in log
        # the third decision was logged, not yet tuned and saved: it is made again
        assert "2/5 layers decided and tuned, next decision 3" in log


def test_methods_of_one_seed_share_data_order_and_initial_weights() -> None:
    """Paired supernet runs: the data and init streams depend on (space, task, card, seed)
    only; the method's and the selection rules' streams on the whole cell."""
    from harness.oneshot.cell import _streams

    shared = ["shared", "tss", "cifar10", "tiny-cpu@4"]
    a = _streams(["darts_v1", "{}", "tss", "cifar10", "tiny-cpu@4", 0], shared, 0)
    b = _streams(["gaea", "{}", "tss", "cifar10", "tiny-cpu@4", 0], shared, 0)
    for name in ("data", "init"):
        assert a[name].random() == b[name].random()
    for name in ("method", "perturbation", "topk"):
        assert a[name].random() != b[name].random()
    other_seed = _streams(["gaea", "{}", "tss", "cifar10", "tiny-cpu@4", 1], shared, 1)
    assert other_seed["init"].random() != _streams(["x"], shared, 0)["init"].random()
