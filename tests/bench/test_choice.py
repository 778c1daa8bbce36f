"""The default store is chosen by coverage: the 3-architecture sample store is never a default.

The samples are the genuine official files (indices 0, 11 and 284), imported as
``tss-official`` exactly as the README's import example does.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from harness import runner
from harness.bench.choice import choose_store, coverage_text
from harness.bench.official import import_official
from harness.bench.store import Store, open_store
from harness.cli import main
from harness.errors import ConfigError


@pytest.fixture(scope="module")
def samples_store(tss_samples: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return import_official(
        tss_samples, tmp_path_factory.mktemp("choice") / "s", n_jobs=1, progress=False
    )


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    (tmp_path / "home" / "stores").mkdir(parents=True)
    return tmp_path / "home" / "stores"


def _install(store: Path, stores: Path, name: str, **manifest: object) -> Path:
    dest = stores / name
    shutil.copytree(store, dest)
    if manifest:
        data = json.loads((dest / "manifest.json").read_text())
        (dest / "manifest.json").write_text(json.dumps({**data, **manifest}))
    return dest


def test_a_partial_store_is_passed_over_for_one_that_covers_the_space(
    home: Path, samples_store: Path, tiny_store: Store
) -> None:
    _install(samples_store, home, "tss-official")
    _install(tiny_store.path, home, "tss-public")
    choice = choose_store("tss")
    assert choice.name == "tss-public" and runner.default_store("tss") == "tss-public"
    assert "covering all 15,625 architectures" in choice.reason
    assert "passed over: tss-official holds 3 of 15,625 architectures" in choice.reason


def test_only_a_partial_store_is_refused_with_what_it_holds(
    home: Path, samples_store: Path
) -> None:
    _install(samples_store, home, "tss-official")
    with pytest.raises(ConfigError, match="tss-official holds 3 of 15,625 architectures") as err:
        runner.default_store("tss")
    assert "--store" in str(err.value)
    with pytest.raises(ConfigError, match="no store for sss imported"):  # the sweep's contract
        runner.default_store("sss")


def test_official_archives_first_and_synthetic_only_when_allowed(
    home: Path, tiny_store: Store
) -> None:
    _install(tiny_store.path, home, "tss-synthetic", synthetic=True)
    with pytest.raises(ConfigError, match="tss-synthetic is synthetic"):
        choose_store("tss")
    assert choose_store("tss", allow_synthetic=True).name == "tss-synthetic"
    _install(tiny_store.path, home, "tss-public")
    _install(tiny_store.path, home, "my-table")
    assert choose_store("tss", allow_synthetic=True).name == "tss-public"
    _install(tiny_store.path, home, "zz-archive", source="official")
    choice = choose_store("tss")
    assert choice.name == "zz-archive" and choice.reason.startswith("an official archive")
    assert "preferred over my-table, tss-public" in choice.reason


def test_coverage_text(samples_store: Path, tiny_store: Store) -> None:
    assert coverage_text(open_store(samples_store)) == "3 of 15,625 architectures"
    assert coverage_text(tiny_store) == "all 15,625 architectures"


# --------------------------------------------------------------------------- the commands
def _run_argv(out: Path, *extra: str) -> list[str]:
    return ["run", "--methods", "rs", "--tasks", "cifar10", "--seeds", "0-1", "--protocol",
            "nats-tss", "--budget", "3000", "--out", str(out), "--no-progress", *extra]  # fmt: skip


def test_run_without_store_says_which_and_why_and_succeeds(
    home: Path, samples_store: Path, tiny_store: Store, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    _install(samples_store, home, "tss-official")
    _install(tiny_store.path, home, "tss-public")
    assert main(_run_argv(tmp_path / "res")) == 0  # every run used to fail on tss-official
    out = capsys.readouterr().out
    assert out.startswith("store: tss-public (a tidy table covering all 15,625 architectures")
    assert "0 failed" in out
    runs = pd.read_parquet(tmp_path / "res" / "runs.parquet")
    assert runs["status"].eq("ok").all()


def test_run_on_a_partial_store_is_refused_before_the_sweep(
    home: Path, samples_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _install(samples_store, home, "tss-official")
    for extra in ([], ["--store", "tss-official"]):
        assert main(_run_argv(tmp_path / "res", *extra)) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "tss-official holds 3 of 15,625 architectures" in err
        assert "--store" in err and "WARNING" not in err
    assert not (tmp_path / "res").exists()


def test_main_prefers_the_public_table_over_the_sample_store(
    home: Path, samples_store: Path, tiny_store: Store, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from harness import mainjob

    _install(samples_store, home, "tss-official")
    shared = tmp_path / "shared"
    (shared / "nats-tss-public").mkdir(parents=True)
    table = shared / "nats-tss-public" / "table.parquet"
    shutil.copy(tiny_store.path.parent / f"{tiny_store.path.name}.parquet", table)
    monkeypatch.setenv("HARNESS_SHARED_DATA", str(shared))
    monkeypatch.setattr(mainjob, "PUBLIC_TABLE", ("nats-tss-public", table.name))
    choice = mainjob.select_data(progress=False)
    assert (choice.origin, choice.store.path.name) == ("public", "tss-public")
    again = mainjob.select_data(progress=False)
    assert (again.origin, again.store.path.name) == ("imported", "tss-public")
    assert "passed over: tss-official holds 3 of 15,625" in again.reason


def test_bench_info_shows_coverage(
    home: Path, samples_store: Path, tiny_store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    _install(samples_store, home, "tss-official")
    assert main(["bench", "info", "tss-official"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "coverage           3 of 15,625 architectures (partial: never chosen as a default " \
        "store)" in lines  # fmt: skip
    assert main(["bench", "info", "tss-official", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["archs_present"], info["covers_space"]) == (3, False)
    assert main(["bench", "info", str(tiny_store.path)]) == 0
    assert "coverage           all 15,625 architectures" in capsys.readouterr().out.splitlines()
