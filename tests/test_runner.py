"""The runner: grids, seeds, run keys, RNG streams, validation, resume, backends, SIGKILL."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness import runner
from harness.bench.store import Store, open_store
from harness.errors import ConfigError
from harness.results import RUN_COLUMNS, ResultsDir, RunRecord

ROOT = Path(__file__).resolve().parents[1]
#: Budget small enough for fast tests (about 20 queries of the tiny table, tests/conftest.py).
BUDGET = 3000.0
#: Budget of the SIGKILL test: long enough runs (about 300 queries) to kill a sweep mid-way.
KILL_BUDGET = 150000.0


@pytest.fixture(scope="module")
def tiny(tiny_store: Store) -> Store:
    """The session's tiny tss store (tests/conftest.py)."""
    return tiny_store


def grid(**flags: object) -> runner.Grid:
    base: dict[str, object] = {
        "methods": "rs,rea",
        "tasks": "cifar10,cifar100",
        "seeds": "0-2",
        "protocols": "nats-tss",
        "budget": BUDGET,
    }
    base.update(flags)
    return runner.load_grid(**base)  # type: ignore[arg-type]


def records(out: Path) -> dict[str, dict[str, object]]:
    """Run key -> parsed record without wall times (the only field allowed to differ)."""
    found = {}
    for key, path in ResultsDir(out).run_files().items():
        record = RunRecord.from_json(path.read_text())
        obj = json.loads(record.to_json())
        for row in obj["rows"]:
            row.pop("wall_seconds")
        found[key] = obj
    return found


# --------------------------------------------------------------------------- seeds and grids
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0-4", (0, 1, 2, 3, 4)),
        ("7", (7,)),
        ("0,3,7-9", (0, 3, 7, 8, 9)),
        ([2, 1], (2, 1)),
        (5, (5,)),
    ],
)
def test_parse_seeds(text: object, expected: tuple[int, ...]) -> None:
    assert runner.parse_seeds(text) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["0-", "5-2", "a", "", "-1", "1,1", "0-3,2", "1.5", True, [-1]])
def test_parse_seeds_rejects(text: object) -> None:
    with pytest.raises(ConfigError, match="seed"):
        runner.parse_seeds(text)  # type: ignore[arg-type]


def test_grid_from_toml_with_overrides(tmp_path: Path) -> None:
    config = tmp_path / "grid.toml"
    config.write_text(
        'methods = ["rs", "reinforce", {name = "rea", population_size = 20}]\n'
        'tasks = "cifar10"\nseeds = "0-3"\nprotocol = "nats-tss"\nbudget = {cifar10 = 5000}\n'
        "[config.reinforce]\nlearning_rate = 0.05\n"
    )
    g = runner.load_grid(config, seeds="1-2")  # flags win over the file
    assert [m.name for m in g.methods] == ["random_search", "reinforce", "rea"]
    assert json.loads(g.methods[1].overrides) == {"learning_rate": 0.05}
    assert json.loads(g.methods[2].instance_config())["population_size"] == 20
    assert (g.spaces, g.tasks, g.seeds, g.budgets) == (
        ("tss",),
        ("cifar10",),
        (1, 2),
        (("cifar10", 5000.0),),
    )


def test_grid_defaults_to_protocol_tasks_and_space() -> None:
    g = runner.load_grid(methods="rea", seeds="0", protocols="nats-tss-transfer")
    assert (g.spaces, g.tasks) == (("tss",), ("cifar10",))


# --------------------------------------------------------------------------- keys and streams
def test_run_keys_and_streams(tiny: Store) -> None:
    specs = runner.plan_runs(grid(), tiny)
    assert len(specs) == 2 * 2 * 3 and len({s.key for s in specs}) == len(specs)
    spec = specs[0]
    assert len(spec.key) == 16 and int(spec.key, 16) >= 0
    for change in (
        {"seed": 9},
        {"task": "cifar100"},
        {"data_checksum": "other"},
        {"config": '{"x": 1}'},
        {"protocol": "nats-tss@2"},
        {"method": "x"},
    ):
        assert runner.RunSpec(**{**spec.__dict__, **change}).key != spec.key
    assert runner.RunSpec(**spec.__dict__).key == spec.key  # stable
    assert spec.entropy[0] == spec.seed and len(spec.entropy) == 5
    m1, o1 = spec.streams()
    m2, o2 = spec.streams()
    draws = m1.random(4)
    assert np.array_equal(draws, m2.random(4)) and np.array_equal(o1.random(4), o2.random(4))
    assert not np.array_equal(draws, o1.random(4))  # method and oracle streams differ
    other = next(s for s in specs if s.seed == spec.seed and s.method != spec.method)
    assert other.entropy[1:] != spec.entropy[1:]


# --------------------------------------------------------------------------- bad input
BAD_INPUTS = [
    ({"methods": "rs,rae"}, "did you mean 'rea'"),
    ({"tasks": "cifar-10"}, "did you mean 'cifar10'"),
    ({"protocols": "nats-ts"}, "did you mean 'nats-tss'"),
    ({"seeds": "0-"}, "malformed seed range"),
    ({"seeds": "5-2"}, "empty seed range"),
    ({"seeds": "a"}, "malformed seed range"),
    ({"budget": 0.0}, "budget"),
    ({"budget": -5.0}, "budget"),
    ({"spaces": "sss"}, "holds tss"),
    ({"tasks": "ImageNet16-120", "protocols": "nats-tss-transfer"}, "search task"),
]


@pytest.mark.parametrize(("flags", "message"), BAD_INPUTS)
def test_bad_input_writes_nothing(
    tiny: Store, tmp_path: Path, flags: dict[str, object], message: str
) -> None:
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match=message):
        runner.run_sweep(grid(**flags), out, store=tiny, progress=False)
    assert not out.exists()


@pytest.mark.parametrize(
    ("methods", "message"),
    [
        ("rs,darts_v1", "darts_v1 is a supernet method: run it with `harness supernet run`"),
        ("gaea,rea,gdas", "gaea, gdas are supernet methods: run them with `harness supernet run`"),
    ],
)
def test_supernet_methods_are_refused_before_writing(
    tiny: Store, tmp_path: Path, methods: str, message: str
) -> None:
    out = tmp_path / "out"
    with pytest.raises(ConfigError) as err:
        runner.run_sweep(grid(methods=methods), out, store=tiny, progress=False)
    assert str(err.value) == message
    config = tmp_path / "grid.toml"
    config.write_text('seeds = "0"\nprotocol = "nats-tss"\nmethods = [{name = "darts_v1"}]\n')
    with pytest.raises(ConfigError, match="darts_v1 is a supernet method"):
        runner.load_grid(config)
    hand_made = runner.Grid((runner.MethodSpec("darts_v2"),), ("tss",), ("cifar10",), (0,),
                            ("nats-tss",))  # fmt: skip
    with pytest.raises(ConfigError, match="darts_v2 is a supernet method"):
        runner.run_sweep(hand_made, out, store=tiny, progress=False)
    assert not out.exists()


def test_invalid_hyperparameters_write_nothing(tiny: Store, tmp_path: Path) -> None:
    config = tmp_path / "grid.toml"
    for body, message in [
        ('methods = [{name = "rea", population_size = 0}]', "population_size"),
        ('methods = ["rea"]\n[config.rea]\npopulaton_size = 5', "did you mean 'population_size'"),
    ]:
        config.write_text('seeds = "0-1"\nprotocol = "nats-tss"\n' + body + "\n")
        with pytest.raises(ConfigError, match=message):
            runner.run_sweep(runner.load_grid(config), tmp_path / "out", store=tiny, progress=False)
    assert not (tmp_path / "out").exists()


def test_results_of_other_data_are_refused(tiny: Store, tmp_path: Path) -> None:
    out = tmp_path / "out"
    runner.run_sweep(
        grid(seeds="0", methods="rs", tasks="cifar10"), out, store=tiny, progress=False
    )
    before = sorted(p.name for p in out.rglob("*"))
    other_path = tmp_path / "other"
    shutil.copytree(tiny.path, other_path)  # same values, other provenance
    manifest = json.loads((other_path / "manifest.json").read_text())
    manifest["sources_sha256"] = "0" * 64
    (other_path / "manifest.json").write_text(json.dumps(manifest))
    other = open_store(other_path)
    assert other.checksum != tiny.checksum
    with pytest.raises(ConfigError, match="other data"):
        runner.run_sweep(grid(seeds="0-1", methods="rs"), out, store=other, progress=False)
    assert sorted(p.name for p in out.rglob("*")) == before


# --------------------------------------------------------------------------- sweeps
def test_sweep_tables_resume_and_extend(tiny: Store, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = runner.run_sweep(grid(), out, store=tiny, progress=False)
    assert (first.planned, first.ran, first.skipped, first.failed) == (12, 12, 0, 0)
    runs = pd.read_parquet(out / "runs.parquet")
    traj = pd.read_parquet(out / "trajectories.parquet")
    assert list(runs.columns) == list(RUN_COLUMNS) and len(runs) == 12
    assert (runs["status"] == "ok").all() and runs["test_acc"].notna().all()
    assert (runs["regret"] >= 0).all() and ((runs["rank"] == 1) == (runs["regret"] == 0)).all()
    assert runs["sim_seconds"].ge(BUDGET).all() and runs["budget"].eq(BUDGET).all()
    assert runs["protocol"].eq(f"nats-tss@1[budget *={BUDGET:g}s]").all()
    last = traj.sort_values("step").groupby("run_key").tail(1).set_index("run_key")
    chosen = runs.set_index("run_key")
    assert np.allclose(last["incumbent_test"], chosen.loc[last.index, "test_acc"])
    best = traj["regret"] + traj["incumbent_test"]  # the eval task's best test accuracy
    assert (traj["regret"] >= 0).all() and best.groupby(traj["eval_dataset"]).nunique().max() == 1
    assert (traj.groupby("run_key")["sim_seconds"].is_monotonic_increasing).all()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["data"]["checksum"] == tiny.checksum and manifest["n_runs"] == 12
    assert "nats-tss@1[budget *=3000s]" in manifest["protocols"]
    before = records(out)
    again = runner.run_sweep(grid(), out, store=tiny, progress=False)
    assert (again.ran, again.skipped) == (0, 12) and records(out) == before
    more = runner.run_sweep(grid(seeds="0-3"), out, store=tiny, progress=False)
    assert (more.ran, more.skipped) == (4, 12)
    assert len(pd.read_parquet(out / "runs.parquet")) == 16
    assert len(json.loads((out / "manifest.json").read_text())["sweeps"]) == 3


def test_transfer_rows_per_eval_task(tiny: Store, tmp_path: Path) -> None:
    g = grid(protocols="nats-tss-transfer", tasks=None, seeds="0-1", methods="rea")
    runner.run_sweep(g, tmp_path, store=tiny, progress=False)
    runs = pd.read_parquet(tmp_path / "runs.parquet")
    assert len(runs) == 6 and runs["run_key"].nunique() == 2
    assert set(runs["eval_dataset"]) == {"cifar10", "cifar100", "ImageNet16-120"}
    assert set(runs["dataset"]) == {"cifar10"}
    assert runs.groupby("run_key")["arch_index"].nunique().eq(1).all()


def test_parallel_loky_equals_serial(tiny: Store, tmp_path: Path) -> None:
    runner.run_sweep(grid(), tmp_path / "serial", store=tiny, progress=False)
    runner.run_sweep(grid(), tmp_path / "loky", store=tiny, jobs=2, chunk_size=2, progress=False)
    assert records(tmp_path / "loky") == records(tmp_path / "serial")


@pytest.mark.parametrize("processes", [False, True])
def test_dask_backend_equals_loky(tiny: Store, tmp_path: Path, processes: bool) -> None:
    distributed = pytest.importorskip("distributed")
    g = grid(methods="rea", seeds="0-1")
    runner.run_sweep(g, tmp_path / "loky", store=tiny, progress=False)
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=processes, dashboard_address=None
    ) as cluster:
        summary = runner.run_sweep(
            g,
            tmp_path / "dask",
            store=tiny,
            backend="dask",
            scheduler=cluster.scheduler_address,
            progress=False,
        )
    assert summary.ran == 4
    assert records(tmp_path / "dask") == records(tmp_path / "loky")


def test_unknown_backend(tiny: Store, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="did you mean 'dask'"):
        runner.run_sweep(grid(), tmp_path / "x", store=tiny, backend="dusk", progress=False)
    assert not (tmp_path / "x").exists()


# --------------------------------------------------------------------------- SIGKILL and resume
def _cli(store: Store, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "harness",
        "run",
        "--methods",
        "rs,rea",
        "--tasks",
        "cifar10",
        "--seeds",
        "0-39",
        "--protocol",
        "nats-tss",
        "--budget",
        str(KILL_BUDGET),
        "--store",
        str(store.path),
        "--out",
        str(out),
        "--jobs",
        "1",
        "--chunk-size",
        "1",
        "--no-progress",
    ]


def test_sigkill_then_restart_loses_nothing(tiny: Store, tmp_path: Path) -> None:
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(_cli(tiny, out), cwd=ROOT, env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while len(ResultsDir(out).run_files()) < 8 and proc.poll() is None:
        assert time.monotonic() < deadline, "the sweep did not start"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(ResultsDir(out).run_files())
    assert proc.returncode == -signal.SIGKILL and 0 < done_before < 80, proc.stderr.read()  # type: ignore[union-attr]
    (out / "runs" / ".deadbeef.json.tmp").write_text('{"format": 1, "run_ke')  # a torn write
    restart = subprocess.run(_cli(tiny, out), cwd=ROOT, env=env, capture_output=True, text=True)
    assert restart.returncode == 0, restart.stderr
    assert f"{done_before} already finished" in restart.stdout
    same = grid(methods="rs,rea", tasks="cifar10", seeds="0-39", budget=KILL_BUDGET)
    assert set(ResultsDir(out).run_files()) == {s.key for s in runner.plan_runs(same, tiny)}
    assert not list((out / "runs").glob(".*"))
    clean = tmp_path / "clean"
    runner.run_sweep(same, clean, store=tiny, progress=False)
    assert records(out) == records(clean)
    runs = pd.read_parquet(out / "runs.parquet")
    assert len(runs) == 80 and runs["run_key"].is_unique


def test_pruned_results_still_resume(tiny: Store, tmp_path: Path) -> None:
    g = grid(methods="rea", tasks="cifar10")
    first = runner.run_sweep(g, tmp_path, store=tiny, progress=False, prune=True)
    assert first.ran == 3 and not ResultsDir(tmp_path).run_files()
    before = pd.read_parquet(tmp_path / "runs.parquet")
    again = runner.run_sweep(
        grid(methods="rea", tasks="cifar10", seeds="0-4"), tmp_path, store=tiny, progress=False
    )
    assert (again.skipped, again.ran) == (3, 2)
    after = pd.read_parquet(tmp_path / "runs.parquet")
    pd.testing.assert_frame_equal(after[after["seed"] < 3].reset_index(drop=True), before)
