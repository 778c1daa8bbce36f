"""The main job: the best data wins on every run, and a finished results directory is reused
visibly, without touching a file."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from harness import mainjob
from harness.bench.store import Store
from harness.cli import main


def _install(store: Store, home: Path, name: str, synthetic: bool = False) -> Path:
    dest = home / "stores" / name
    shutil.copytree(store.path, dest)
    manifest = json.loads((dest / "manifest.json").read_text())
    (dest / "manifest.json").write_text(json.dumps({**manifest, "synthetic": synthetic}))
    return dest


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """(home, shared): an empty ``$HARNESS_HOME`` and an empty shared data directory."""
    home, shared = tmp_path / "home", tmp_path / "shared"
    (shared / "nats-tss-public").mkdir(parents=True)
    monkeypatch.setenv("HARNESS_HOME", str(home))
    monkeypatch.setenv("HARNESS_SHARED_DATA", str(shared))
    return home, shared


def _no_generation(progress: bool) -> Store:
    raise AssertionError("the synthetic benchmark must not be generated again")


def test_synthetic_data_does_not_stick(
    env: tuple[Path, Path], tiny_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, shared = env
    _install(tiny_store, home, "tss-synthetic", synthetic=True)
    monkeypatch.setattr(mainjob, "_synthetic_store", _no_generation)
    choice = mainjob.select_data(progress=False)  # no real data: the synthetic store, reused
    assert (choice.origin, choice.store.path.name) == ("synthetic", "tss-synthetic")
    assert "no real benchmark data covers the tss space" in choice.reason
    assert "reusing tss-synthetic" in choice.reason
    # the public table appears in the shared directory: it wins from now on
    table = shared / "nats-tss-public" / "table.parquet"
    shutil.copy(tiny_store.path.parent / f"{tiny_store.path.name}.parquet", table)
    monkeypatch.setattr(mainjob, "PUBLIC_TABLE", ("nats-tss-public", table.name))
    choice = mainjob.select_data(progress=False)
    assert (choice.origin, choice.store.path.name, choice.store.synthetic) == (
        "public", "tss-public", False,
    )  # fmt: skip
    # an official archive is imported: it wins over both
    _install(tiny_store, home, "tss-official")
    json_path = home / "stores" / "tss-official" / "manifest.json"
    json_path.write_text(json.dumps({**json.loads(json_path.read_text()), "source": "official"}))
    choice = mainjob.select_data(progress=False)
    assert (choice.origin, choice.store.path.name) == ("imported", "tss-official")


def test_main_says_synthetic_only_when_it_is(
    env: tuple[Path, Path], tiny_store: Store, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    home, _ = env
    _install(tiny_store, home, "tss-synthetic", synthetic=True)
    _install(tiny_store, home, "tss-public")
    monkeypatch.setattr(mainjob, "_synthetic_store", _no_generation)
    argv = ["main", "--seeds", "0", "--out", str(tmp_path / "m"), "--jobs", "1", "--no-progress",
            "--no-report"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("data: tss-public (imported: a tidy table covering all 15,625")
    assert "SYNTHETIC" not in out and "no real benchmark data" not in out
    shutil.rmtree(home / "stores" / "tss-public")
    assert main([*argv[:4], str(tmp_path / "s"), *argv[5:]]) == 0
    out = capsys.readouterr().out
    assert "NOTE: these results are SYNTHETIC: no real benchmark data covers the tss space" in out


def _digests(folder: Path) -> dict[str, tuple[str, int]]:
    return {
        str(p.relative_to(folder)): (
            hashlib.sha256(p.read_bytes()).hexdigest(),
            p.stat().st_mtime_ns,
        )
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_a_finished_directory_is_reused_visibly_and_left_untouched(
    tiny_store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """As on a fresh clone, whose committed results/tss-public holds every run: the job says
    so first and how to recompute, and no tracked file changes (the manifest's commit stays
    the one that computed the runs)."""
    out = tmp_path / "results" / "tss-tiny"
    argv = ["main", "--seeds", "0-1", "--store", str(tiny_store.path), "--out", str(out),
            "--jobs", "1", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == f"computing 24 runs into {out}"
    manifest = json.loads((out / "manifest.json").read_text())
    sweep = manifest["sweeps"][-1]
    assert sweep["ran"] == 24 and sweep["git"] == manifest["git"]
    before = _digests(out)
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith(f"reusing the 24 finished runs in {out} (made ")
    assert "nothing is recomputed; to recompute them, run `harness main --out NEW_DIR`" in lines[1]
    assert any(line.startswith("report unchanged: ") for line in lines)
    assert _digests(out) == before  # not one byte, not one timestamp
    # half of the runs there: reused, the rest computed, and said so
    more = [*argv[:2], "0-3", *argv[3:]]
    assert main(more) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith(f"reusing 24 of 48 runs finished in {out} (made ")
    assert "computing the other 24" in lines[1]
    assert json.loads((out / "manifest.json").read_text())["sweeps"][-1]["ran"] == 24


def test_plan_main_computes_nothing(tiny_store: Store, tmp_path: Path) -> None:
    plan = mainjob.plan_main(seeds="0", store=tiny_store.path, out=tmp_path / "r")
    assert (plan.planned, plan.finished, plan.data.origin) == (12, 0, "given")
    assert not (tmp_path / "r").exists()


def test_a_foreign_tss_synthetic_store_is_never_replaced(
    env: tuple[Path, Path], tss_samples: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.bench.official import import_official
    from harness.errors import ConfigError

    home, _ = env
    import_official(tss_samples, home / "stores" / "tss-synthetic", n_jobs=1, progress=False)
    monkeypatch.setattr(mainjob, "_synthetic_store", _no_generation)
    with pytest.raises(ConfigError, match="tss-synthetic holds 3 of 15,625 architectures") as err:
        mainjob.select_data(progress=False)
    assert "is not the synthetic benchmark this job generates" in str(err.value)
