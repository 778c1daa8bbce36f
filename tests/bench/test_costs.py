"""Named cost metrics: latency tables attached to a store, constraints, constrained optima,
Pareto fronts, and ``harness bench import-latency`` / ``harness bench best --max``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.bench import costs
from harness.bench.latency import LATENCY_FILE, import_latency, latency_table
from harness.bench.store import Store, open_store
from harness.bench.tidy import import_table
from harness.cli import main
from harness.errors import BenchmarkQueryError, ConfigError
from harness.spaces import tss

ROOT = Path(__file__).resolve().parents[2]


def latency_csv(path: Path, pixel3: np.ndarray | None = None, **columns: object) -> Path:
    """A latency table over tss: ``pixel3`` = 1 + index mod 10 ms unless given."""
    n = tss.NUM_ARCHS
    values = 1.0 + np.arange(n) % 10 if pixel3 is None else pixel3
    frame = pd.DataFrame({"index": np.arange(n), "arch_str": tss.all_strings(), "pixel3": values})
    for name, value in columns.items():
        frame[name] = value
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def store(tiny_store: Store, tmp_path: Path) -> Store:
    """A copy of the session's tiny tss store (tests attach latency tables to it)."""
    return open_store(shutil.copytree(tiny_store.path, tmp_path / "tiny"))


@pytest.fixture(scope="module")
def help_table(tss_public_table: Path) -> Path:
    """The HELP latency table of the shared data (beside the public tss table)."""
    path = tss_public_table.parent / "help_latency_ms.csv.gz"
    assert path.is_file(), f"shared data file missing: {path}"
    return path


@pytest.fixture(scope="module")
def public(
    tmp_path_factory: pytest.TempPathFactory, tss_public_table: Path, help_table: Path
) -> Store:
    """The public tss table with the HELP latency table attached."""
    dest = tmp_path_factory.mktemp("public") / "tss-public"
    made = open_store(import_table(tss_public_table, dest, progress=False))
    import_latency(made, help_table)
    return made


# --------------------------------------------------------------------------- names and limits
@pytest.mark.parametrize(
    ("text", "metric", "limit"),
    [
        ("latency:pixel3=5ms", "latency:pixel3", 5.0),
        ("latency:pixel3=5", "latency:pixel3", 5.0),
        ("latency:titan_rtx_32=0.004s", "latency:titan_rtx_32", 4.0),
        ("latency:fpga = 1500us", "latency:fpga", 1.5),
        ("latency=20ms", "latency", 20.0),
        ("params=1.0", "params", 1.0),
        ("params=0.5M", "params", 0.5),
        ("params=1.2MB", "params", 1.2),
        ("flops=100M", "flops", 100.0),
    ],
)
def test_parse_constraint(text: str, metric: str, limit: float) -> None:
    parsed = costs.parse_constraint(text)
    assert (parsed.metric, parsed.limit) == (metric, pytest.approx(limit))


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("latency:pixel3", "expected METRIC=LIMIT"),
        ("latency:pixel3=fast", "expected METRIC=LIMIT"),
        ("latency:pixel3=5kg", r"unknown unit of latency:pixel3 'kg'.*ms, s, us"),
        ("params=1ms", "unknown unit of params"),
        ("latncy:pixel3=5", r"unknown cost metric 'latncy:pixel3'"),
        ("parms=1", r"did you mean 'params'"),
        ("params=0", "must be a number > 0"),
        ("params:x=1", "unknown cost metric"),
    ],
)
def test_parse_constraint_rejects(text: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        costs.parse_constraint(text)


def test_describe() -> None:
    limits = {"latency:pixel3": 5.0, "params": 1.0}
    assert costs.describe(limits) == "latency:pixel3 <= 5 ms, params <= 1 M"
    assert costs.describe({}) == "no constraint"


# --------------------------------------------------------------------------- latency tables
def test_import_latency_attaches_a_side_file(store: Store, tmp_path: Path) -> None:
    checksum, manifest = store.checksum, (store.path / "manifest.json").read_bytes()
    table = import_latency(store, latency_csv(tmp_path / "lat.csv", gold=2.5))
    assert table.devices == ("pixel3", "gold") and (store.path / LATENCY_FILE).is_file()
    assert (store.path / "manifest.json").read_bytes() == manifest  # the store is untouched
    assert open_store(store.path).checksum == checksum
    again = open_store(store.path)  # read back from the file
    values = again.cost_metric_all("latency:pixel3", "cifar10")
    assert values.shape == (tss.NUM_ARCHS,) and values[0] == 1.0 and values[13] == 4.0
    assert not values.flags.writeable
    assert costs.cost_values(again, "latency:gold", "cifar100")[7] == 2.5
    with pytest.raises(ConfigError, match="already has a latency table; pass --overwrite"):
        import_latency(store, tmp_path / "lat.csv")
    twice = import_latency(store, latency_csv(tmp_path / "b.csv"), overwrite=True)
    assert twice.devices == ("pixel3",)
    assert not list(store.path.glob(".*.tmp"))


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda f: f.drop(columns="arch_str"), r"lacks column\(s\) \['arch_str'\]"),
        (lambda f: f.iloc[:-1], "must list the 15,625 architectures"),
        (lambda f: f.iloc[::-1], "once each in index order"),
        (lambda f: f.assign(arch_str=f["arch_str"].shift(1, fill_value="x")), "another arch"),
        (lambda f: f.assign(pixel3=-1.0), "column pixel3 holds values that are not latencies"),
        (lambda f: f.assign(pixel3="slow"), "column pixel3 holds values that are not latencies"),
        (lambda f: f.assign(pixel3=np.inf), "column pixel3 holds values that are not latencies"),
        (lambda f: f.drop(columns="pixel3"), r"bad device column name\(s\) \['\(none\)'\]"),
        (lambda f: f.assign(**{"a b": 1.0}), r"bad device column name\(s\) \['a b'\]"),
    ],
)
def test_import_latency_checks_the_table(
    store: Store, tmp_path: Path, change: object, match: str
) -> None:
    frame = pd.read_csv(latency_csv(tmp_path / "lat.csv"))
    change(frame).to_csv(tmp_path / "bad.csv", index=False)  # type: ignore[operator]
    with pytest.raises(ConfigError, match=match):
        import_latency(store, tmp_path / "bad.csv")
    assert not (store.path / LATENCY_FILE).exists()


def test_missing_costs_say_what_to_do(store: Store, tmp_path: Path) -> None:
    with pytest.raises(BenchmarkQueryError, match=r"has no latency table.*import-latency"):
        store.cost_metric_all("latency:pixel3", "cifar10")
    with pytest.raises(BenchmarkQueryError, match="holds no params for cifar10"):
        store.cost_metric_all("params", "cifar10")
    with pytest.raises(BenchmarkQueryError, match=r"holds no flops for cifar10 .*official"):
        store.cost_metric_all("flops", "cifar10")
    import_latency(store, latency_csv(tmp_path / "lat.csv"))
    with pytest.raises(BenchmarkQueryError, match=r"'pixle3' \(did you mean 'pixel3'\?\)"):
        store.cost_metric_all("latency:pixle3", "cifar10")


# --------------------------------------------------------------------------- optima and fronts
def test_constrained_best_on_a_tiny_store(store: Store, tmp_path: Path) -> None:
    import_latency(store, latency_csv(tmp_path / "lat.csv"))
    test = store.metric_all("cifar10", "ori-test", 200, "accuracy", "mean").astype(np.float64)
    feasible = np.arange(tss.NUM_ARCHS) % 10 <= 2  # latency 1..3 ms
    best = costs.constrained_best(store, "cifar10", "ori-test", 200, "mean", {"latency:pixel3": 3})
    assert best.n_feasible == int(feasible.sum()) and best.n_archs == tss.NUM_ARCHS
    assert best.index == int(np.argmax(np.where(feasible, test, -np.inf)))
    assert best.value == pytest.approx(test[best.index]) and feasible[best.index]
    assert best.best_index == int(np.argmax(test)) and best.best_value >= best.value
    mask = costs.feasible_mask(store, {"latency:pixel3": 3.0}, "cifar10")
    assert np.array_equal(mask, feasible)
    with pytest.raises(BenchmarkQueryError, match=r"no architecture meets latency:pixel3 <= 0\.5"):
        costs.constrained_best(store, "cifar10", "ori-test", 200, "mean", {"latency:pixel3": 0.5})


def test_pareto_front_by_hand() -> None:
    values = [90.0, 91.0, 85.0, np.nan, 91.0, 95.0, 80.0]
    cost = [2.0, 3.0, 1.0, 0.5, 3.0, 9.0, np.nan]
    assert costs.pareto_front(values, cost).tolist() == [2, 0, 1, 5]
    with pytest.raises(ConfigError, match="one shape"):
        costs.pareto_front([1.0], [1.0, 2.0])


def test_pareto_data(store: Store, tmp_path: Path) -> None:
    import_latency(store, latency_csv(tmp_path / "lat.csv"))
    data = costs.pareto_data(store, "cifar10", "200", "latency:pixel3", limit=5.0)
    assert data.unit == "ms" and data.limit == 5.0 and data.accuracy.shape == data.cost.shape
    front = data.front
    assert np.all(np.diff(data.cost[front]) > 0) and np.all(np.diff(data.accuracy[front]) > 0)
    assert data.accuracy[front[-1]] == np.nanmax(data.accuracy)


# --------------------------------------------------------------------------- the public data
def test_the_trial_numbers_on_the_public_table(public: Store) -> None:
    pixel3 = {"latency:pixel3": 5.0}
    best = costs.constrained_best(public, "cifar10", "ori-test", 200, "mean", pixel3)
    assert best.n_feasible == 3087 and best.index == 6434
    assert round(best.value, 2) == 91.08 and round(best.best_value, 2) == 94.37
    both = costs.constrained_best(
        public, "cifar10", "ori-test", 200, "mean", {**pixel3, "params": 1.0}
    )
    assert (both.index, both.n_feasible) == (6434, 3087)  # every such cell is under 1 M
    assert len(latency_table(public).devices) == 27  # type: ignore[union-attr]
    own = public.cost_metric_all("latency", "cifar10")  # the benchmark's own, s -> ms
    assert np.isfinite(own).all() and 1.0 < np.nanmedian(own) < 100.0
    with pytest.raises(BenchmarkQueryError, match="holds no flops"):
        public.cost_metric_all("flops", "cifar10")


def test_bench_import_latency_and_best_with_limits(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tss_public_table: Path,
    help_table: Path,
) -> None:
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    assert main(["bench", "import", str(tss_public_table)]) == 0
    assert main(["bench", "import-latency", "tss-public", str(help_table)]) == 0
    assert "27 devices" in capsys.readouterr().out
    query = ["bench", "best", "tss-public", "--dataset", "cifar10", "--split", "ori-test",
             "--hp", "200", "--seed", "mean"]  # fmt: skip
    assert main([*query, "--max", "latency:pixel3=5ms", "--max", "params=1.0"]) == 0
    first, second = capsys.readouterr().out.strip().splitlines()
    assert first.startswith("6434\t") and first.endswith("\t91.0800")
    assert second == (
        "feasible: 3,087 of 15,625 architectures (latency:pixel3 <= 5 ms, params <= 1 M); "
        "unconstrained best: 6111 94.3733"
    )
    assert main([*query, "--max", "latency:pixel3=5ms", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["feasible"] == 3087 and record["constraint"] == {"latency:pixel3": 5.0}
    assert main(query) == 0 and capsys.readouterr().out.startswith("6111\t")  # unchanged
    assert main([*query, "--max", "latency:pixle3=5ms"]) == 2
    assert "did you mean 'pixel3'" in capsys.readouterr().err
    assert main([*query, "--max", "flops=50"]) == 2
    assert "holds no flops" in capsys.readouterr().err
    assert main(["bench", "info", "tss-public"]) == 0
    assert "latency (ms)       1080ti_1, " in capsys.readouterr().out


def test_the_cost_side_never_imports_torch(public: Store) -> None:
    code = (
        "import sys\n"
        "from harness.bench import costs\n"
        "from harness.bench.store import open_store\n"
        f"store = open_store({str(public.path)!r})\n"
        "costs.constrained_best(store, 'cifar10', 'ori-test', 200, 'mean', {'latency:pixel3': 5})\n"
        "costs.pareto_data(store, 'cifar10', 200, 'latency:pixel3')\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
