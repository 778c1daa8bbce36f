"""Supernet sweeps: grids, effective cards, run keys, resume with new rules, binding, reports."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness import runner
from harness.bench.store import Store, open_store
from harness.errors import ConfigError
from harness.oneshot import sweep
from harness.oneshot.cell import SELECTIONS
from harness.report.supernet import (
    collapse_curve_data,
    rank_correlation_data,
    selection_markdown,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _grid(**changes: object) -> sweep.SupernetGrid:
    args: dict[str, object] = {
        "methods": "darts_v1", "card": "tiny-cpu", "seeds": "0", "tasks": "cifar10",
        "selections": "magnitude", "data": "synthetic",
    }  # fmt: skip
    args.update(changes)
    return sweep.load_supernet_grid(**args)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- grid and cards
def test_effective_cards_are_labelled_by_what_changed() -> None:
    card, label = sweep.effective_card(_grid())
    assert label == "tiny-cpu@4" and card.data == "synthetic"
    card, label = sweep.effective_card(_grid(card="nb201-darts", max_steps=3))
    assert label == "nb201-darts@4[synthetic images, max-steps 3]"
    assert (card.data, card.weight_images, card.max_steps_per_epoch) == ("synthetic", 256, 3)
    card, label = sweep.effective_card(_grid(data="jpeg"))
    assert label == "tiny-cpu@4[CIFAR-10 JPEG]" and card.data == "cifar10-jpeg"
    grid = _grid(methods=["gaea", {"name": "gaea", "eg_lr": 0.5}], seeds="0-2")
    assert [json.loads(o) for _, o in grid.methods] == [{}, {"eg_lr": 0.5}]
    assert grid.seeds == (0, 1, 2) and grid.describe()["methods"][1]["overrides"] == {"eg_lr": 0.5}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"methods": "random_search"}, "random_search is a black-box method"),
        ({"methods": "darts_v3"}, "did you mean"),
        ({"methods": ""}, "no methods given; supernet methods: darts_v1"),
        ({"methods": "gaea,gaea"}, "listed twice"),
        ({"card": "nats_ws"}, "did you mean 'nats-ws'"),
        ({"selections": ""}, "selection rule"),
        ({"data": "jpg"}, "did you mean 'jpeg'"),
        ({"max_steps": 0}, "max_steps"),
    ],
)
def test_grid_errors(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _grid(**changes)


def test_cell_keys_cover_card_data_and_images(tiny_store: Store) -> None:
    card, label = sweep.effective_card(_grid())
    truth = sweep.TruthSet.from_store(tiny_store, ["cifar10"], card.report_hp)
    cells = sweep.plan_cells(_grid(seeds="0-1"), card, label, truth, "synthetic")
    assert len(cells) == 2 and len(cells[0].key) == 16 and cells[0].key != cells[1].key
    cell = cells[0]
    for change in (
        {"card": dataclasses.replace(card, max_steps_per_epoch=1)},
        {"data_checksum": "other"},
        {"images": "cifar10-jpeg:0"},
        {"config": "{}"},
        {"task": "cifar100"},
    ):
        assert dataclasses.replace(cell, **change).key != cell.key
    assert dataclasses.replace(cell, selections=("topk",)).key == cell.key
    assert json.loads(cell.config)["order"] == 1 and json.loads(cell.config)["arch_lr"] == 3e-4
    with pytest.raises(ConfigError, match="hyperparameter of darts_v1"):
        sweep.plan_cells(_grid(methods=[{"name": "darts_v1", "eg_lr": 1}]), card, label, truth, "s")


RESULTS = Path(__file__).resolve().parents[2] / "results"


def test_committed_topology_cells_keep_their_run_keys() -> None:
    """Cards made before the size space keep their run keys (the card dict, the space in the
    key): re-planning the committed cpu-cifar10 sweep gives the keys of its rows."""
    runs = pd.read_parquet(RESULTS / "cpu-cifar10" / "runs.parquet")
    manifest = json.loads((RESULTS / "cpu-cifar10" / "manifest.json").read_text())
    grid = sweep.load_supernet_grid(
        "darts_v1,fixed_alpha,gaea", "cpu-cifar10", "0-2", "cifar10", "magnitude,perturbation"
    )
    card, label = sweep.effective_card(grid)
    assert label == manifest["sweeps"][0]["protocol"] == "cpu-cifar10@2"
    truth = sweep.TruthSet({}, manifest["data"]["checksum"], False)
    cells = sweep.plan_cells(grid, card, label, truth, manifest["data"]["images"])
    assert sorted(c.key for c in cells) == sorted(runs["run_key"].unique())


# --------------------------------------------------------------------------- sweeps
def test_sweep_resume_adds_missing_rules_and_refuses_other_data(
    tiny_store: Store, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    first = sweep.run_supernet_sweep(_grid(), out, store=tiny_store, progress=False)
    assert (first.planned, first.ran, first.skipped, first.failed) == (1, 1, 0, 0)
    again = sweep.run_supernet_sweep(_grid(), out, store=tiny_store, progress=False)
    assert (again.ran, again.skipped) == (0, 1)
    more = sweep.run_supernet_sweep(_grid(selections="magnitude,topk"), out, store=tiny_store,
                                    progress=False)  # fmt: skip
    assert more.ran == 1
    runs = pd.read_parquet(out / "runs.parquet")
    assert sorted(runs["selection"]) == ["magnitude", "topk"] and runs["run_key"].nunique() == 1
    assert list(runs.columns) == list(sweep.SUPERNET_RUN_COLUMNS)
    assert runs["budget"].isna().all() and runs["sim_seconds"].isna().all()
    traj = pd.read_parquet(out / sweep.TRAJECTORIES_FILE)
    assert list(traj.columns) == list(sweep.TRAJECTORY_COLUMNS) and len(traj) == 2
    assert traj["argmax_test_acc"].notna().all()
    assert (out / "supernets" / runs["run_key"].iloc[0]).is_dir()  # the cell's checkpoints
    scratch = tmp_path / "scratch"
    elsewhere = sweep.run_supernet_sweep(
        _grid(), tmp_path / "out2", store=tiny_store, progress=False, workdir=scratch
    )
    assert elsewhere.ran == 1 and not (tmp_path / "out2" / "supernets").exists()
    assert len(list((scratch / runs["run_key"].iloc[0]).glob("*.search.pt"))) == 1

    other_path = tmp_path / "other"
    shutil.copytree(tiny_store.path, other_path)
    manifest = json.loads((other_path / "manifest.json").read_text())
    manifest["sources_sha256"] = "0" * 64
    (other_path / "manifest.json").write_text(json.dumps(manifest))
    before = sorted(p.name for p in out.rglob("*"))
    with pytest.raises(ConfigError, match="other data"):
        sweep.run_supernet_sweep(_grid(), out, store=open_store(other_path), progress=False)
    assert sorted(p.name for p in out.rglob("*")) == before


def test_size_space_sweep_scores_against_a_store_and_says_when_it_has_none(
    tiny_sss_store: Store, tiny_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An sss sweep under tiny-cpu-sss: with a (synthetic) sss store every row carries true
    accuracy, regret at no more FLOPs and the costs; with no sss store imported the cells
    still run and their rows say why the accuracies are missing."""
    grid = _grid(methods="tas,dnal,darts_v1", card="tiny-cpu-sss", selections="magnitude,topk")
    summary = sweep.run_supernet_sweep(grid, tmp_path / "sss", store=tiny_sss_store,
                                       progress=False)  # fmt: skip
    assert (summary.ran, summary.failed) == (3, 0)
    runs = pd.read_parquet(tmp_path / "sss" / "runs.parquet")
    assert set(runs["space"]) == {"sss"} and runs["status"].eq("ok").all()
    assert runs["synthetic"].all()  # a synthetic store and synthetic images
    assert runs["test_acc"].notna().all() and runs["truth_note"].isna().all()
    assert (runs["regret_at_flops"] <= runs["regret"] + 1e-9).all()
    assert (runs["regret_at_flops"] >= 0).all() and runs["params_mb"].gt(0).all()
    assert runs["supernet_acc"].between(0, 100).all() and runs["kendall_tau"].notna().any()
    assert all(len(a.split(":")) == 5 for a in runs["arch"])
    with pytest.raises(ConfigError, match="searches the tss space only"):
        sweep.run_supernet_sweep(_grid(methods="gdas", card="tiny-cpu-sss"), tmp_path / "x",
                                 store=tiny_sss_store, progress=False)  # fmt: skip
    with pytest.raises(ConfigError, match="holds the tss space"):
        sweep.run_supernet_sweep(_grid(methods="tas", card="tiny-cpu-sss"), tmp_path / "y",
                                 progress=False, store=tiny_store)  # fmt: skip

    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))  # no store imported
    none = sweep.run_supernet_sweep(_grid(methods="tas", card="tiny-cpu-sss"),
                                    tmp_path / "none", progress=False)  # fmt: skip
    assert (none.ran, none.failed) == (1, 0)
    rows = pd.read_parquet(tmp_path / "none" / "runs.parquet")
    assert rows["test_acc"].isna().all() and rows["regret"].isna().all()
    assert rows["kendall_tau"].isna().all() and rows["flop_m"].gt(0).all()
    assert rows["truth_note"].str.contains("no ground truth").all()
    manifest = json.loads((tmp_path / "none" / "manifest.json").read_text())
    assert manifest["data"]["store"] is None and "no store for sss" in manifest["data"]["missing"]


def test_black_box_directories_and_missing_images_are_refused(
    tiny_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blackbox = tmp_path / "bb"
    grid = runner.load_grid(methods="rs", seeds="0", tasks="cifar10", protocols="nats-tss",
                            budget=2000.0)  # fmt: skip
    runner.run_sweep(grid, blackbox, store=tiny_store, progress=False)
    with pytest.raises(ConfigError, match="results of `harness run`"):
        sweep.run_supernet_sweep(_grid(), blackbox, store=tiny_store, progress=False)
    monkeypatch.setenv("HARNESS_SHARED_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match="CIFAR-10 JPEG archive not found"):
        sweep.run_supernet_sweep(_grid(data="jpeg"), tmp_path / "o", store=tiny_store)
    assert not (tmp_path / "o").exists()


def test_a_failing_cell_gives_failed_rows(
    tiny_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("out of memory")

    real = sweep.run_cell
    monkeypatch.setattr(sweep, "run_cell", broken)
    grid = _grid(selections="magnitude,perturbation")
    summary = sweep.run_supernet_sweep(grid, tmp_path, store=tiny_store, progress=False)
    assert summary.failed == 1
    runs = pd.read_parquet(tmp_path / "runs.parquet")
    assert list(runs["status"]) == ["failed", "failed"] and runs["test_acc"].isna().all()
    assert runs["error"].str.contains("out of memory").all()
    # a failed cell is not finished: the next sweep retries it and says so
    again = sweep.run_supernet_sweep(grid, tmp_path, store=tiny_store, progress=False)
    assert (again.skipped, again.ran, again.retried, again.failed) == (0, 1, 1, 1)
    monkeypatch.setattr(sweep, "run_cell", real)
    fixed = sweep.run_supernet_sweep(grid, tmp_path, store=tiny_store, progress=False)
    assert (fixed.ran, fixed.retried, fixed.failed) == (1, 1, 0)
    assert pd.read_parquet(tmp_path / "runs.parquet")["status"].eq("ok").all()
    # a rerun for one more rule that fails keeps the good rows and adds a failed one
    monkeypatch.setattr(sweep, "run_cell", broken)
    more = sweep.run_supernet_sweep(_grid(selections="magnitude,perturbation,topk"), tmp_path,
                                    store=tiny_store, progress=False)  # fmt: skip
    assert (more.ran, more.retried, more.failed) == (1, 0, 1)
    runs = pd.read_parquet(tmp_path / "runs.parquet").set_index("selection")
    assert runs.loc["magnitude", "status"] == runs.loc["perturbation", "status"] == "ok"
    assert runs.loc["topk", "status"] == "failed" and runs["test_acc"].notna().sum() == 2
    traj = pd.read_parquet(tmp_path / sweep.TRAJECTORIES_FILE)
    assert len(traj) == 2  # the good run's trajectory stays


def test_rerun_with_the_union_of_rules_keeps_every_choice(
    tiny_store: Store, tmp_path: Path
) -> None:
    """Asking later for top-K as well reruns the finished cell with all rules: its search and
    perturbation selection resume from their checkpoints to the same architectures, and top-K
    draws from its own stream (it once shared perturbation's and changed its edge order)."""
    first = sweep.run_supernet_sweep(_grid(selections="magnitude,perturbation"), tmp_path / "a",
                                     store=tiny_store, progress=False)  # fmt: skip
    assert (first.ran, first.failed) == (1, 0)
    before = pd.read_parquet(tmp_path / "a" / "runs.parquet").set_index("selection")
    union = sweep.run_supernet_sweep(_grid(selections="topk,magnitude,perturbation"),
                                     tmp_path / "a", store=tiny_store, progress=False)  # fmt: skip
    assert (union.ran, union.failed) == (1, 0)
    after = pd.read_parquet(tmp_path / "a" / "runs.parquet").set_index("selection")
    assert after["status"].eq("ok").all() and sorted(after.index) == sorted(SELECTIONS)
    for rule in ("magnitude", "perturbation"):
        assert after.loc[rule, "arch_index"] == before.loc[rule, "arch_index"], rule
    fresh = sweep.run_supernet_sweep(_grid(selections="topk,perturbation"), tmp_path / "b",
                                     store=tiny_store, progress=False)  # fmt: skip
    assert fresh.failed == 0
    alone = pd.read_parquet(tmp_path / "b" / "runs.parquet").set_index("selection")
    assert alone.loc["perturbation", "arch_index"] == before.loc["perturbation", "arch_index"]
    assert alone.loc["topk", "arch_index"] == after.loc["topk", "arch_index"]


# --------------------------------------------------------------------------- report data
def _traj() -> pd.DataFrame:
    rows = []
    for key, method, accs in [("a", "darts_v1", [80.0, 70.0]), ("b", "darts_v1", [84.0, 60.0]),
                              ("c", "gaea", [90.0, 91.0])]:  # fmt: skip
        for epoch, acc in enumerate(accs):
            rows.append({
                "run_key": key, "method": method, "protocol": "p@1", "eval_dataset": "cifar10",
                "epoch": epoch, "argmax_test_acc": acc,
            })  # fmt: skip
    return pd.DataFrame(rows)


def test_collapse_curve_data_by_hand() -> None:
    data = collapse_curve_data(_traj(), "cifar10")
    assert data.methods == ("darts_v1", "gaea") and data.n_runs == {"darts_v1": 2, "gaea": 1}
    assert np.allclose(data.mean["darts_v1"], [82.0, 65.0])
    assert np.allclose(data.low["darts_v1"], [80.0, 60.0])
    assert np.allclose(data.high["darts_v1"], [84.0, 70.0])
    assert np.allclose(data.epochs["gaea"], [0, 1])
    with pytest.raises(ConfigError, match="did you mean 'cifar10'"):
        collapse_curve_data(_traj(), "cifar-10")


def test_rank_correlation_is_one_value_per_run_and_selection_md() -> None:
    runs = pd.DataFrame({
        "run_key": ["a", "a", "b", "b"], "method": ["gaea"] * 4,
        "selection": ["magnitude", "perturbation"] * 2, "protocol": ["p@1"] * 4,
        "seed": [0, 0, 1, 1], "status": ["ok"] * 4, "kendall_tau": [0.5, 0.5, 0.1, 0.1],
        "dataset": ["cifar10"] * 4, "eval_dataset": ["cifar10"] * 4,
        "test_acc": [80.0, 82.0, 81.0, 85.0], "synthetic": [False] * 4,
    })  # fmt: skip
    data = rank_correlation_data(runs)
    assert data.methods == ("gaea",) and sorted(data.values["gaea"]) == [0.1, 0.5]
    text = selection_markdown(runs)
    assert "| gaea | p@1 | cifar10 | cifar10 | 2 | 83.50 | 80.50 | +3.00 | 1.00 |" in text
    assert "SYNTHETIC" not in text and "## Cost" not in text  # no cost columns in this table
    costs = {
        "device_seconds": [10.0, 10.0, 14.0, 14.0],
        "forward_passes": [100] * 4,
        "backward_passes": [90] * 4,
        "selection_seconds": [0.0, 3.0, 0.0, 5.0],
        "selection_forward_passes": [0, 40, 0, 60],
        "selection_backward_passes": [0, 8] * 2,
    }
    text = selection_markdown(runs.assign(**costs))  # fmt: skip
    assert "| gaea | p@1 | magnitude | 2 | 12.0 | 100 | 90 | 0.0 | 0 | 0 |" in text
    assert "| gaea | p@1 | perturbation | 2 | 12.0 | 100 | 90 | 4.0 | 50 | 8 |" in text
