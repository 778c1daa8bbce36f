"""Plot-data builders on hand-made tables; every plot function renders to PNG."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from harness.errors import ConfigError
from harness.report import plots, write_report
from harness.report.style import known_methods, label_styles, method_style

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _traj(run_key: str, method: str, points: list[tuple[float, float]]) -> list[dict]:
    return [
        {
            "run_key": run_key,
            "method": method,
            "space": "tss",
            "dataset": "cifar10",
            "eval_dataset": "cifar10",
            "protocol": "hp12",
            "seed": 0,
            "step": step,
            "sim_seconds": t,
            "incumbent_index": step,
            "incumbent_valid": 90.0,
            "incumbent_test": 90.0,
            "regret": r,
        }
        for step, (t, r) in enumerate(points)
    ]


def make_trajectories() -> pd.DataFrame:
    rows = (
        _traj("a1", "a", [(1.0, 5.0), (10.0, 2.0), (100.0, 0.5)])
        + _traj("a2", "a", [(2.0, 4.0), (20.0, 1.0)])
        + _traj("b1", "b", [(1.0, 6.0), (50.0, 3.0)])
        + _traj("b2", "b", [(1.0, 6.0), (50.0, 3.0)])
    )
    return pd.DataFrame(rows)


def _run(method: str, dataset: str, seed: int, acc: float, rank: int, status: str = "ok") -> dict:
    return {
        "run_key": f"{method}-{dataset}-{seed}",
        "method": method,
        "config": "{}",
        "space": "tss",
        "dataset": dataset,
        "eval_dataset": dataset,
        "protocol": "hp12",
        "seed": seed,
        "arch_index": rank,
        "arch": "|none~0|",
        "valid_acc": acc,
        "test_acc": acc,
        "regret": 95.0 - acc,
        "rank": rank,
        "percentile": 100.0 - rank / 10.0,
        "sim_seconds": 100.0,
        "queries": 10,
        "distinct_archs": 10,
        "wall_seconds": 1.0,
        "status": status,
        "synthetic": False,
    }


def make_runs() -> pd.DataFrame:
    """cifar10: 7 complete blocks (rea best, control and gdas tied, darts_v1 worst)."""
    rows = []
    for seed in range(7):
        rows.append(_run("random_search", "cifar10", seed, 80.0 + seed, 50))
        rows.append(_run("gdas", "cifar10", seed, 80.0 + seed, 60))
        rows.append(_run("rea", "cifar10", seed, 82.0 + seed, 3 + seed))
        rows.append(_run("darts_v1", "cifar10", seed, 70.0, 900))
    for seed in range(3):  # incomplete blocks: only two methods
        rows.append(_run("random_search", "cifar100", seed, 60.0, 40))
        rows.append(_run("rea", "cifar100", seed, 61.0 + seed, 2))
    rows.append(_run("rea", "cifar100", 3, 0.0, 1, status="failed"))
    return pd.DataFrame(rows)


def _figure(ax: Axes) -> Figure:
    fig = ax.get_figure(root=True)
    assert isinstance(fig, Figure)
    return fig


def _render(ax: Axes, path: Path) -> None:
    _figure(ax).savefig(path, format="png")
    assert path.read_bytes()[:8] == PNG_MAGIC


def test_regret_curve_data_step_median_by_hand() -> None:
    grid = [1.0, 2.0, 10.0, 20.0, 100.0]
    data = plots.regret_curve_data(make_trajectories(), "cifar10", grid, n_boot=200, rng=0)
    np.testing.assert_array_equal(data.grid, grid)
    assert data.methods == ("a", "b") and data.n_runs == {"a": 2, "b": 2}
    # a1 steps: 5, 5, 2, 2, 0.5; a2 has no incumbent at t = 1, then 4, 4, 1, 1
    # median over both runs where both exist: -, 4.5, 3, 1.5, 0.75
    np.testing.assert_allclose(data.center["a"], [np.nan, 4.5, 3.0, 1.5, 0.75])
    np.testing.assert_allclose(data.center["b"], [6.0, 6.0, 6.0, 6.0, 3.0])
    np.testing.assert_allclose(data.low["b"], data.center["b"])  # identical runs: no spread
    for m in data.methods:
        finite = np.isfinite(data.center[m])
        assert np.all(data.low[m][finite] <= data.center[m][finite])
        assert np.all(data.center[m][finite] <= data.high[m][finite])
        assert np.all(np.diff(data.center[m][finite]) <= 0)  # these incumbents only improve
    mean = plots.regret_curve_data(
        make_trajectories(), "cifar10", grid, n_boot=10, rng=0, statistic="mean"
    )
    np.testing.assert_allclose(mean.center["a"][1:], [4.5, 3.0, 1.5, 0.75])


def test_regret_curve_log_grid_and_seeding() -> None:
    data = plots.regret_curve_data(make_trajectories(), "cifar10", 9, n_boot=100, rng=3)
    assert data.grid.shape == (9,) and data.center["a"].shape == (9,)
    # log-spaced from the first positive time (1 s) to the last (100 s)
    assert data.grid[0] == pytest.approx(1.0) and data.grid[-1] == pytest.approx(100.0)
    np.testing.assert_allclose(data.grid[1:] / data.grid[:-1], 10 ** (2 / 8))
    again = plots.regret_curve_data(make_trajectories(), "cifar10", 9, n_boot=100, rng=3)
    np.testing.assert_array_equal(data.low["a"], again.low["a"])
    with pytest.raises(ConfigError, match="did you mean 'cifar10'"):
        plots.regret_curve_data(make_trajectories(), "cifar1", 9, n_boot=10, rng=0)
    with pytest.raises(ConfigError, match="statistic"):
        plots.regret_curve_data(make_trajectories(), "cifar10", 9, n_boot=10, rng=0, statistic="x")


def test_cd_diagram_data_by_hand() -> None:
    data = plots.cd_diagram_data(make_runs())
    # cifar100 blocks lack gdas and darts_v1 and are dropped: 7 blocks from cifar10
    assert data.n_blocks == 7
    # every block ranks rea 1, random_search and gdas tie at 2.5, darts_v1 4
    assert data.methods == ("rea", "gdas", "random_search", "darts_v1")
    np.testing.assert_allclose(data.avg_ranks, [1.0, 2.5, 2.5, 4.0])
    # q_0.05(k=4) = 2.569 (Demsar 2006); CD = 2.569 * sqrt(4 * 5 / (6 * 7)) = 1.773
    assert data.cd == pytest.approx(2.569 * math.sqrt(20 / 42), abs=1e-3)
    # from rea (1): ranks < 2.77 -> {rea, gdas, random_search}; from gdas (2.5): < 4.27 ->
    # {gdas, random_search, darts_v1}; rea vs darts_v1 (3 > CD) are significantly different
    assert data.cliques == (("rea", "gdas", "random_search"), ("gdas", "random_search", "darts_v1"))
    assert np.all(np.diff(data.avg_ranks) >= 0)
    only = plots.cd_diagram_data(make_runs(), "cifar100")
    assert only.methods == ("rea", "random_search") and only.n_blocks == 3
    with pytest.raises(ConfigError, match="did you mean"):
        plots.cd_diagram_data(make_runs(), "cifar1000")


def test_distribution_data_excludes_failed_runs() -> None:
    data = plots.score_distribution_data(make_runs(), "cifar100")
    assert data.methods == ("random_search", "rea")
    np.testing.assert_array_equal(data.values["rea"], [61.0, 62.0, 63.0])
    assert not data.log_scale
    ranks = plots.rank_distribution_data(make_runs())
    assert ranks.log_scale and ranks.title == "all datasets"
    assert ranks.values["darts_v1"].tolist() == [900.0] * 7
    assert not plots.rank_distribution_data(make_runs(), column="percentile").log_scale
    with pytest.raises(ConfigError, match="column"):
        plots.rank_distribution_data(make_runs(), column="regret")


def test_plot_functions_return_axes_and_render(tmp_path: Path) -> None:
    regret = plots.regret_curve_data(make_trajectories(), "cifar10", 20, n_boot=50, rng=0)
    ax = plots.plot_regret_curves(regret)
    assert isinstance(ax, Axes)
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    _render(ax, tmp_path / "regret.png")
    plt.close(_figure(ax))

    fig = Figure()
    cd_ax = plots.plot_cd_diagram(plots.cd_diagram_data(make_runs()), fig.add_subplot())
    texts = " ".join(t.get_text() for t in cd_ax.texts)
    assert "REA (1.00)" in texts and "DARTS-V1 (4.00)" in texts and "CD = 1.77" in texts
    _render(cd_ax, tmp_path / "cd.png")

    fig = Figure()
    dist = plots.plot_test_distribution(
        plots.score_distribution_data(make_runs(), "cifar10"), fig.add_subplot()
    )
    assert [t.get_text() for t in dist.get_xticklabels()] == [
        "DARTS-V1",
        "GDAS",
        "random search",
        "REA",
    ]
    assert dist.get_ylabel() == "test accuracy (%)"
    _render(dist, tmp_path / "dist.png")

    rank_ax = plots.plot_rank_distribution(plots.rank_distribution_data(make_runs()))
    assert rank_ax.get_yscale() == "log"
    _render(rank_ax, tmp_path / "rank.png")
    plt.close(_figure(rank_ax))


def test_style_is_stable_and_distinct() -> None:
    styles = [method_style(m) for m in known_methods()]
    assert len({s["color"] for s in styles}) == len(styles)
    assert method_style("rea") == method_style("rea#2")
    assert method_style("my_new_method") == method_style("my_new_method")
    assert set(method_style("my_new_method")) == {"color", "marker", "linestyle"}


def test_write_report_files(tmp_path: Path) -> None:
    runs = make_runs()
    traj = make_trajectories()
    traj["run_key"] = traj["run_key"].map(
        {"a1": "rea-cifar10-0", "a2": "rea-cifar10-1", "b1": "gdas-cifar10-0", "b2": "x"}
    )
    paths = write_report(runs, traj, tmp_path / "out", rng=0, n_boot=50)
    names = sorted(p.name for p in paths)
    assert names == sorted(
        [
            "leaderboard.md",
            "leaderboard.tex",
            "leaderboard_wide.tex",
            "regret_cifar10.png",
            "cd_diagram_cifar10.png",  # one per dataset: no pooling unless asked
            "cd_diagram_cifar100.png",
            "test_accuracy.png",
            "chosen_rank.png",
        ]
    )
    for p in paths:
        assert p.exists() and p.stat().st_size > 0
        if p.suffix == ".png":
            assert p.read_bytes()[:8] == PNG_MAGIC
    assert sorted(q.name for q in (tmp_path / "out").iterdir()) == names  # no temp files left
    assert "| REA |" in (tmp_path / "out" / "leaderboard.md").read_text(encoding="utf-8")
    pooled = write_report(runs, traj, tmp_path / "pool", rng=0, n_boot=20, pool_cd=True)
    assert "cd_diagram_pooled.png" in {p.name for p in pooled}


def test_write_report_synthetic_and_several_settings(tmp_path: Path) -> None:
    runs = make_runs()
    runs.loc[0, "synthetic"] = True
    both = pd.concat([runs, runs.assign(space="sss", synthetic=False)], ignore_index=True)
    paths = write_report(both, make_trajectories().iloc[:0], tmp_path, rng=1, n_boot=20)
    names = {p.name for p in paths}
    assert {"cd_diagram_cifar10_tss_hp12.png", "chosen_rank_sss_hp12.png"} <= names
    md = (tmp_path / "leaderboard.md").read_text(encoding="utf-8")
    assert "## tss / hp12" in md and "## sss / hp12" in md
    assert md.count("SYNTHETIC DATA") >= 1
    assert "SYNTHETIC DATA" in (tmp_path / "leaderboard.tex").read_text(encoding="utf-8")


def _zero_trajectories() -> pd.DataFrame:
    """Method a reaches zero regret at t = 10 in both runs; its band's low end reaches zero."""
    rows = (
        _traj("a1", "a", [(1.0, 2.0), (10.0, 0.0)])
        + _traj("a2", "a", [(1.0, 3.0), (10.0, 0.0)])
        + _traj("b1", "b", [(1.0, 4.0), (10.0, 0.5)])
        + _traj("b2", "b", [(1.0, 4.0), (5.0, 0.0)])
    )
    return pd.DataFrame(rows)


def test_regret_curve_reaching_zero_stays_drawn_without_wedges(tmp_path: Path) -> None:
    data = plots.regret_curve_data(_zero_trajectories(), "cifar10", [1.0, 5.0, 10.0, 100.0],
                                   n_boot=50, rng=0)  # fmt: skip
    np.testing.assert_allclose(data.center["a"], [2.5, 2.5, 0.0, 0.0])
    assert plots.symlog_threshold(data) == 0.1  # smallest positive value drawn: 0.25
    fig = Figure()
    ax = plots.plot_regret_curves(data, fig.add_subplot())
    assert ax.get_yscale() == "symlog" and ax.get_ylim()[0] < 0.0  # zero lies inside the axes
    _render(ax, tmp_path / "zero.png")
    for line in ax.get_lines():
        if line.get_label().startswith("_"):
            continue
        xy = ax.transData.transform(np.column_stack(line.get_data()))
        assert np.isfinite(xy).all()  # every point drawn, zeros included (log masks them)
    for band in ax.collections:
        for path in band.get_paths():
            assert np.isfinite(ax.transData.transform(path.vertices)).all()  # no wedge
    assert "percentage points" in ax.get_ylabel() and "pointwise" in ax.get_title()
    assert ax.get_title().startswith("CIFAR-10")
    assert plots.symlog_threshold(plots.regret_curve_data(make_trajectories(), "cifar10", 5,
                                                          n_boot=10, rng=0)) is None  # fmt: skip


def test_points_do_not_hide_boxes() -> None:
    fig = Figure()
    ax = plots.plot_test_distribution(plots.score_distribution_data(make_runs(), "cifar10"),
                                      fig.add_subplot())  # fmt: skip
    boxes = [p for p in ax.patches]
    assert len(boxes) == 4
    for i, (box, dots) in enumerate(zip(boxes, ax.collections, strict=True)):
        box_x = box.get_path().transformed(box.get_patch_transform()).vertices[:, 0]
        dot_x = np.asarray(dots.get_offsets())[:, 0]
        assert box_x.max() < dot_x.min(), f"method {i}: dots overlap its box"


def test_trajectories_get_their_config_from_the_runs() -> None:
    runs = make_runs()
    runs = runs[runs["eval_dataset"] == "cifar10"].copy()
    small = '{"population_size": 20}'
    runs.loc[(runs["method"] == "rea") & (runs["seed"] == 1), "config"] = small
    traj = make_trajectories()  # no config column
    traj["run_key"] = traj["run_key"].map(
        {"a1": "rea-cifar10-0", "a2": "rea-cifar10-1", "b1": "gdas-cifar10-0", "b2": "x"}
    )
    traj.loc[traj["run_key"].str.startswith("rea"), "method"] = "rea"
    labelled = plots.trajectory_labels(traj, runs)
    # run "x" is not in the runs table: it keeps its method
    assert set(labelled["method"]) == {"rea", "rea(population_size=20)", "gdas", "b"}
    data = plots.regret_curve_data(labelled, "cifar10", 5, n_boot=10, rng=0)
    assert data.methods == ("b", "gdas", "rea", "rea(population_size=20)")
    styles = label_styles(data.methods)
    assert styles["rea"]["color"] == styles["rea(population_size=20)"]["color"]
    assert (styles["rea"]["linestyle"], styles["rea"]["marker"]) != (
        styles["rea(population_size=20)"]["linestyle"], styles["rea(population_size=20)"]["marker"],
    )  # fmt: skip
    ax = plots.plot_regret_curves(data, Figure().add_subplot())
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["b (n=1)", "GDAS (n=1)", "REA (n=1)", "REA (population_size=20) (n=1)"]


def test_label_styles_tell_configs_and_rules_apart() -> None:
    labels = ["rea", "rea(population_size=20)", "rea(population_size=50)",
              "darts_v1+magnitude", "darts_v1+perturbation"]  # fmt: skip
    styles = label_styles(labels)
    keys = {(s["color"], str(s["linestyle"]), s["marker"]) for s in styles.values()}
    assert len(keys) == len(labels)
    assert styles["rea"] == method_style("rea")  # the default config keeps the method's style
    assert styles["darts_v1+magnitude"]["marker"] == "o"
    assert styles["darts_v1+perturbation"]["marker"] == "^"


def test_figures_follow_the_leaderboard_dataset_order(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import harness.report as report

    runs = make_runs()
    runs = pd.concat([runs, runs[runs["eval_dataset"] == "cifar100"].assign(
        eval_dataset="ImageNet16-120", dataset="ImageNet16-120")], ignore_index=True)  # fmt: skip
    runs["run_key"] = runs["run_key"] + "-" + runs["eval_dataset"]
    saved: dict[str, Figure] = {}

    def keep(fig: Figure, path: Path, synthetic: bool) -> Path:
        saved[path.name] = fig
        return path

    monkeypatch.setattr(report, "_save_figure", keep)
    write_report(runs, make_trajectories().iloc[:0], tmp_path, rng=0, n_boot=10)
    for name in ("test_accuracy.png", "chosen_rank.png"):
        titles = [ax.get_title().split("\n")[0] for ax in saved[name].axes]
        assert titles == ["CIFAR-10", "CIFAR-100", "ImageNet16-120"]
    cds = [n for n in saved if n.startswith("cd_diagram")]
    assert cds == [
        "cd_diagram_cifar10.png",
        "cd_diagram_cifar100.png",
        "cd_diagram_ImageNet16-120.png",
    ]


def test_cd_diagram_title_states_per_dataset_or_pooled_blocks() -> None:
    per = plots.cd_diagram_data(make_runs(), "cifar10")
    assert per.blocks == "7 blocks (seeds; the rows do not record shared streams per seed)"
    pooled = plots.cd_diagram_data(make_runs().assign(paired_streams=True))
    assert pooled.eval_dataset is None and "pooled over 1 dataset" in pooled.blocks
    ax = plots.plot_cd_diagram(per, Figure().add_subplot())
    assert ax.get_title().startswith("CIFAR-10, test accuracy (%)")
    ax = plots.plot_cd_diagram(pooled, Figure().add_subplot())
    assert ax.get_title().startswith("all datasets pooled")
