"""Synthetic archives: genuine structure and sizes, nats_bench parity, determinism, atomicity."""

from __future__ import annotations

import bz2
import importlib.util
import pickle
import pickletools
import shutil
from pathlib import Path
from typing import Any

import nats_bench
import numpy as np
import pytest

from harness.bench import synthetic
from harness.bench.synthetic import arch_record, corrupt_file, write_synthetic_archive
from harness.errors import ConfigError
from harness.paths import OFFICIAL_ARCHIVE_NAMES
from harness.spaces import sss, tss

SAMPLE_INDICES = (0, 11, 284)
TSS_INDICES = [0, 11, 284, 9930, 15624]
SSS_INDICES = [0, 11, 32767]
ENTROPY = 20240601


def _load(path: Path) -> Any:
    return pickle.loads(bz2.decompress(path.read_bytes()))


def _signature(obj: Any) -> Any:
    """Keys (in order) and value types of a nested archive object; leaves become type names."""
    if isinstance(obj, dict):
        return (type(obj).__name__, [(k, _signature(v)) for k, v in obj.items()])
    if isinstance(obj, list):
        return ("list", [_signature(v) for v in obj])
    return type(obj).__name__


def _drop_seed(record: Any, hp: str, seed: int) -> None:
    state = record[hp]
    state["all_results"] = {k: v for k, v in state["all_results"].items() if k[1] != seed}
    state["dataset_seed"] = {
        d: [s for s in v if s != seed] for d, v in state["dataset_seed"].items()
    }


@pytest.fixture(scope="module")
def tss_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tss")
    return write_synthetic_archive(out, "tss", np.random.default_rng(7), indices=TSS_INDICES)


@pytest.fixture(scope="module")
def sss_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sss")
    return write_synthetic_archive(out, "sss", np.random.default_rng(7), indices=SSS_INDICES)


@pytest.mark.parametrize("space", ["tss", "sss"])
def test_costs_equal_genuine(space: str, tss_samples: Path, sss_samples: Path) -> None:
    folder = tss_samples if space == "tss" else sss_samples
    checked = 0
    for index in SAMPLE_INDICES:
        for state in _load(folder / f"{index:06d}.pickle.pbz2").values():
            for (dataset, _), run in state["all_results"].items():
                classes = run["arch_config"]["class_num"]
                assert synthetic.network_costs(space, index, classes) == (
                    run["params"],
                    run["flop"],
                )
                assert dataset in synthetic.DATASETS
                checked += 1
    assert checked >= 30


@pytest.mark.parametrize("space", ["tss", "sss"])
@pytest.mark.parametrize("index", SAMPLE_INDICES)
def test_record_structure_equals_genuine(
    space: str, index: int, tss_samples: Path, sss_samples: Path
) -> None:
    folder = tss_samples if space == "tss" else sss_samples
    genuine = _load(folder / f"{index:06d}.pickle.pbz2")
    mine = arch_record(space, index, ENTROPY)
    if space == "tss" and 999 not in mine["200"]["dataset_seed"]["cifar10"]:
        _drop_seed(genuine, "200", 999)  # the samples all have seed 999; half the space lacks it
    assert _signature(mine) == _signature(genuine)
    for hp, state in mine.items():
        for key, run in state["all_results"].items():
            ref = genuine[hp]["all_results"][key]
            assert run["seed"] == ref["seed"] and run["eval_names"] == ref["eval_names"]
            assert run["arch_config"] == ref["arch_config"]
            assert run["params"] == ref["params"] and run["flop"] == ref["flop"]


def test_encoded_sizes_match_genuine(tss_samples: Path, sss_samples: Path) -> None:
    for space, folder in (("tss", tss_samples), ("sss", sss_samples)):
        files = [folder / f"{i:06d}.pickle.pbz2" for i in SAMPLE_INDICES]
        genuine = np.mean([f.stat().st_size for f in files])
        raw = np.mean([len(bz2.decompress(f.read_bytes())) for f in files])
        mine = arch_record(space, 11, ENTROPY)
        if space == "tss" and 999 not in mine["200"]["dataset_seed"]["cifar10"]:
            mine = arch_record(space, 11, ENTROPY + 1)
        assert 999 in mine[synthetic.HPS[space][1]]["dataset_seed"]["cifar10"]
        assert abs(len(pickle.dumps(mine, protocol=4)) / raw - 1) < 0.03
        assert abs(len(synthetic.encode(mine)) / genuine - 1) < 0.08


def test_pickles_name_numpy_core_like_genuine() -> None:
    record = arch_record("tss", 5, ENTROPY)
    raw = bz2.decompress(synthetic.encode(record))
    assert b"numpy.core.multiarray" in raw and b"numpy._core" not in raw
    assert sum(1 for _ in pickletools.genops(raw)) > 10_000  # frames stay consistent
    assert pickle.loads(raw) == record


def test_metrics_plausible() -> None:
    best = tss.str_to_index(
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    )
    empty = tss.str_to_index("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    finals = {}
    for index in (best, empty):
        run = arch_record("tss", index, ENTROPY)["200"]["all_results"][("cifar10", 777)]
        accs = [run["eval_acc1es"][f"ori-test@{e}"] for e in range(200)]
        assert all(0 <= a <= 100 for a in accs) and all(v > 0 for v in run["eval_losses"].values())
        assert len(set(run["train_times"].values())) == 1
        finals[index] = accs[-1]
    assert finals[best] > 92 and abs(finals[empty] - 10) < 2
    run = arch_record("tss", best, ENTROPY)["12"]["all_results"][("cifar100", 111)]
    for e in range(12):  # the whole test set is the union of its two halves
        halves = run["eval_acc1es"][f"x-valid@{e}"] + run["eval_acc1es"][f"x-test@{e}"]
        assert abs(halves / 2 - run["eval_acc1es"][f"ori-test@{e}"]) < 1e-6
    assert run["train_acc1es"][11] > run["train_acc1es"][0]
    assert run["train_losses"][11] < run["train_losses"][0]
    assert all(run["train_acc5es"][e] >= run["train_acc1es"][e] for e in range(12))


def test_seed_999_missing_for_about_half() -> None:
    has = [
        999 in arch_record("tss", i, ENTROPY)["200"]["dataset_seed"]["cifar10"] for i in range(40)
    ]
    assert 8 <= sum(has) <= 32


def test_meta_byte_identical_to_genuine(
    tss_dir: Path, sss_dir: Path, tss_samples: Path, sss_samples: Path
) -> None:
    for mine, genuine in ((tss_dir, tss_samples), (sss_dir, sss_samples)):
        meta = "meta.pickle.pbz2"
        assert (mine / meta).read_bytes() == (genuine / meta).read_bytes()


def test_dir_layout_answers_nats_bench(tss_dir: Path) -> None:
    names = sorted(p.name for p in tss_dir.iterdir())
    assert names == sorted(["meta.pickle.pbz2"] + [f"{i:06d}.pickle.pbz2" for i in TSS_INDICES])
    api = nats_bench.create(str(tss_dir), "tss", fast_mode=True, verbose=False)
    assert len(api) == tss.NUM_ARCHS and api.meta_archs == list(tss.all_strings())
    for index in TSS_INDICES:
        record = _load(tss_dir / f"{index:06d}.pickle.pbz2")
        for hp, state in record.items():
            for (dataset, seed), run in state["all_results"].items():
                info = api.get_more_info(index, dataset, hp=hp, is_random=seed)
                last = run["epochs"] - 1
                assert info["train-accuracy"] == run["train_acc1es"][last]
                test_set = {"cifar10-valid": "ori-test", "cifar10": "ori-test"}.get(
                    dataset, "x-test"
                )
                assert info["test-accuracy"] == run["eval_acc1es"][f"{test_set}@{last}"]
            cost = api.get_cost_info(index, "cifar100", hp=hp)
            assert (cost["params"], cost["flops"]) == synthetic.network_costs("tss", index, 100)
        acc, latency, time_cost, _ = api.simulate_train_eval(index, "cifar10", hp="200")
        assert 0 < acc < 100 and latency > 0 and time_cost > 0


def test_sss_dir_layout_answers_nats_bench(sss_dir: Path) -> None:
    api = nats_bench.create(str(sss_dir), "sss", fast_mode=True, verbose=False)
    assert api.meta_archs == list(sss.all_strings())
    for index in SSS_INDICES:
        for hp in ("01", "12", "90"):
            for seed in api.query_meta_info_by_index(index, hp).get_dataset_seeds("cifar100"):
                info = api.get_more_info(index, "cifar100", hp=hp, is_random=seed)
                assert 0 < info["valid-accuracy"] < 100 and info["train-all-time"] > 0
    assert (
        api.get_cost_info(32767, "cifar10", hp="90")["params"]
        > api.get_cost_info(0, "cifar10", hp="90")["params"]
    )


@pytest.mark.parametrize(("space", "indices"), [("tss", [3, 11, 40]), ("sss", [5, 6])])
def test_file_layout_answers_nats_bench(tmp_path: Path, space: str, indices: list[int]) -> None:
    path = write_synthetic_archive(tmp_path, space, np.random.default_rng(3), indices, "file")
    assert path.name == OFFICIAL_ARCHIVE_NAMES[space][1]
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    again = write_synthetic_archive(
        tmp_path / "jobs", space, np.random.default_rng(3), indices, "file", n_jobs=2
    )
    assert again.read_bytes() == path.read_bytes()
    shutil.rmtree(tmp_path / "jobs")
    api = nats_bench.create(str(path), space, fast_mode=False, verbose=False)
    assert api.evaluated_indexes == set(indices) and len(api) == synthetic._NUM_ARCHS[space]
    hp = synthetic.HPS[space][-1]
    for index in indices:
        info = api.get_more_info(index, "ImageNet16-120", hp=hp, is_random=777)
        assert 0 < info["test-accuracy"] < 100


def test_same_seed_identical_across_jobs_and_subsets(tmp_path: Path) -> None:
    one = write_synthetic_archive(tmp_path / "a", "tss", np.random.default_rng(11), [3, 7, 9])
    two = write_synthetic_archive(
        tmp_path / "b", "tss", np.random.default_rng(11), [9, 7, 3, 20], n_jobs=2
    )
    three = write_synthetic_archive(tmp_path / "c", "tss", np.random.default_rng(12), [3])
    for name in ("meta.pickle.pbz2", "000003.pickle.pbz2", "000007.pickle.pbz2"):
        assert (one / name).read_bytes() == (two / name).read_bytes()
    assert (one / "000003.pickle.pbz2").read_bytes() != (three / "000003.pickle.pbz2").read_bytes()


def test_unpadded_names(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    path = write_synthetic_archive(tmp_path, "sss", rng, [4, 123], unpadded_names=True)
    assert sorted(p.name for p in path.iterdir()) == [
        "123.pickle.pbz2",
        "4.pickle.pbz2",
        "meta.pickle.pbz2",
    ]
    assert _load(path / "123.pickle.pbz2")["90"]["arch_index"] == 123


@pytest.mark.parametrize("layout", ["dir", "file"])
def test_failure_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, layout: str
) -> None:
    real = synthetic.arch_record

    def flaky(space: str, index: int, entropy: int) -> Any:
        if index == 2:
            raise RuntimeError("disk full")
        return real(space, index, entropy)

    monkeypatch.setattr(synthetic, "arch_record", flaky)
    with pytest.raises(RuntimeError, match="disk full"):
        write_synthetic_archive(tmp_path, "tss", np.random.default_rng(0), [0, 1, 2, 3], layout)
    assert list(tmp_path.iterdir()) == []
    fresh = tmp_path / "new" / "deeper"
    with pytest.raises(RuntimeError):
        write_synthetic_archive(fresh, "tss", np.random.default_rng(0), [2], layout)
    assert not (tmp_path / "new").exists()


def test_bad_arguments_raise_before_writing(tmp_path: Path, tss_dir: Path) -> None:
    rng = np.random.default_rng(0)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"space": "tsss"}, "did you mean 'tss'"),
        ({"layout": "zip"}, "expected one of: dir, file"),
        ({"indices": [15625]}, "0..15624"),
        ({"indices": [1, 1]}, "distinct"),
        ({"indices": range(1001), "layout": "file"}, "at most 1000"),
    ]
    for kwargs, message in cases:
        args: dict[str, Any] = {"out": tmp_path / "x", "space": "tss", "rng": rng, **kwargs}
        with pytest.raises(ConfigError, match=message):
            write_synthetic_archive(**args)
    with pytest.raises(ConfigError, match="already exists"):
        write_synthetic_archive(tss_dir.parent, "tss", rng, [0])
    assert not (tmp_path / "x").exists()


def test_corrupt_file_modes(tmp_path: Path) -> None:
    path = write_synthetic_archive(tmp_path, "tss", np.random.default_rng(1), [0, 1, 2])
    files = {m: path / f"00000{i}.pickle.pbz2" for i, m in enumerate(synthetic.CORRUPTIONS)}
    for mode, file in files.items():
        corrupt_file(file, mode)
    with pytest.raises((EOFError, ValueError)):
        _load(files["truncate"])
    with pytest.raises(OSError):
        _load(files["garbage"])
    assert isinstance(_load(files["wrong_type"]), list)
    api = nats_bench.create(str(path), "tss", fast_mode=True, verbose=False)
    for index in range(3):
        with pytest.raises((EOFError, OSError, AssertionError, ValueError)):
            api.get_cost_info(index, "cifar10", hp="12")
    with pytest.raises(ConfigError, match="truncate"):
        corrupt_file(files["truncate"], "shred")


def test_api_reference_smoke(tss_dir: Path) -> None:
    spec = importlib.util.spec_from_file_location(
        "api_reference", Path(__file__).parents[2] / "benchmarks" / "api_reference.py"
    )
    assert spec is not None and spec.loader is not None
    ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)
    walk = ref.traverse_final_metrics(tss_dir, "tss", time_limit_s=60.0)
    assert walk["n_indices"] == len(TSS_INDICES) and walk["extrapolated"] is False
    assert walk["n_values"] > 100 and walk["full_traversal_s"] > 0
    lat = ref.query_latencies(tss_dir, "tss", np.random.default_rng(0), repeats=20)
    assert all(
        lat[k] > 0 for k in ("get_more_info_us", "simulate_train_eval_us", "get_cost_info_us")
    )
    floor = ref.bz2_floor(tss_dir, n_files=4, n_jobs=2)
    assert floor["n_files"] == 4 and floor["decompress_1proc_s"] > 0 and floor["raw_mb"] > 0
    assert ref.peak_rss()["self_peak_rss_mb"] > 0
