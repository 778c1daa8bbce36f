"""``harness bench``: import, info, list, query and best, and one-line errors on bad input."""

from __future__ import annotations

import bz2
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from harness.bench.official import import_official
from harness.bench.store import Store
from harness.cli import main
from harness.spaces import get_space

HELD = (0, 11, 284)
RUN_MISSING = importlib.util.find_spec("harness.cli.run") is None
# Stands in for the `run` command group while its module does not exist yet.
_STUB = "import sys, types; m = types.ModuleType('harness.cli.run'); m.register = lambda g: None; "
_STUB += "sys.modules['harness.cli.run'] = m"


@dataclass
class Result:
    code: int
    out: str
    err: str

    def one_line_error(self) -> str:
        """The single stderr line of a failed command (asserting there is exactly one)."""
        assert self.code != 0, self.out
        assert "Traceback" not in self.err
        lines = self.err.strip().splitlines()
        assert len(lines) == 1, self.err
        return lines[0]


Cli = Callable[..., Result]


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    if RUN_MISSING:
        stub = types.ModuleType("harness.cli.run")
        stub.register = lambda groups: None  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "harness.cli.run", stub)

    def run(*argv: str) -> Result:
        try:
            code = main([str(a) for a in argv])
        except SystemExit as stop:  # argparse
            code = int(stop.code or 0)
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return run


@pytest.fixture
def imported(cli: Cli, tss_samples: Path) -> Store:
    result = cli("bench", "import", tss_samples, "--jobs", "1")
    assert result.code == 0, result.err
    assert result.out.startswith("imported tss-official: tss, 3 architectures, 8 blocks in ")
    return Store(Path(os.environ["HARNESS_HOME"]) / "stores" / "tss-official")


@pytest.fixture(scope="module")
def sample_store(tss_samples: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The samples imported once per module, copied into each test's home where needed."""
    return import_official(
        tss_samples, tmp_path_factory.mktemp("cli") / "s", n_jobs=1, progress=False
    )


def test_import_list_info(cli: Cli, imported: Store) -> None:
    listing = cli("bench", "list")
    assert listing.code == 0
    assert listing.out.splitlines()[1].split() == ["tss-official", "tss", "official", "3", "8"]
    info = cli("bench", "info", "tss-official")
    assert info.code == 0
    lines = info.out.splitlines()
    assert "space              tss" in lines
    blocks = [line.split() for line in lines if line.startswith(("12 ", "200 "))]
    assert len(blocks) == 8
    assert blocks[-1] == [
        "200",
        "ImageNet16-120",
        "777,888,999",
        "200",
        "200",
        "train,x-valid,x-test,ori-test",
        "3",
        "computed",
    ]
    as_json = json.loads(cli("bench", "info", str(imported.path), "--json").out)
    assert as_json["space"] == "tss" and len(as_json["blocks"]) == 8


def test_query(cli: Cli, imported: Store) -> None:
    args = ("--dataset", "cifar10", "--split", "ori-test", "--hp", "200", "--seed", "mean")
    result = cli("bench", "query", "tss-official", "11", *args, "--json")
    assert result.code == 0, result.err
    record = json.loads(result.out)
    assert record["value"] == imported.metric(11, "cifar10", "ori-test", 200, "accuracy", "mean")
    assert (record["epoch"], record["hp"], record["arch"]) == (
        199,
        "200",
        get_space("tss").index_to_str(11),
    )
    by_string = cli("bench", "query", "tss-official", record["arch"], *args)
    assert by_string.code == 0 and by_string.out.startswith("11\t")
    assert by_string.out.rstrip().endswith(f"accuracy {record['value']:.4f}")
    valid = json.loads(
        cli(
            "bench",
            "query",
            "tss-official",
            "0",
            "--task",
            "cifar10",
            "--role",
            "valid",
            "--hp",
            "200",
            "--seed",
            "888",
            "--epoch",
            "10",
            "--json",
        ).out
    )
    assert (valid["dataset"], valid["split"], valid["epoch"]) == ("cifar10-valid", "x-valid", 10)
    assert valid["value"] == imported.metric(
        0, "cifar10-valid", "x-valid", 200, "accuracy", 888, 10
    )


def test_best(cli: Cli, imported: Store) -> None:
    result = cli(
        "bench",
        "best",
        "tss-official",
        "--task",
        "cifar100",
        "--role",
        "test",
        "--hp",
        "200",
        "--seed",
        "all",
    )
    assert result.code == 0, result.err
    index, arch, value = result.out.strip().split("\t")
    expected = imported.best("cifar100", "x-test", 200, "all")
    assert int(index) == expected[0] and int(index) in HELD
    assert arch == get_space("tss").index_to_str(expected[0])
    assert float(value) == pytest.approx(expected[1], abs=1e-4)


def test_import_tidy_table_and_official_word(cli: Cli, tmp_path: Path, tss_samples: Path) -> None:
    table = tmp_path / "mini.csv"
    row = {
        "space": "tss",
        "index": 3,
        "arch": get_space("tss").index_to_str(3),
        "dataset": "cifar10",
        "hp": 200,
        "seed": "",
        "epoch": 199,
        "split": "ori-test",
        "metric": "accuracy",
        "value": 91.5,
        "source": "hand",
    }
    pd.DataFrame([row]).to_csv(table, index=False)
    result = cli("bench", "import", table, "--synthetic")
    assert result.code == 0, result.err
    assert result.out.startswith("imported tss-mini: tss, 1 architectures, 1 blocks")
    info = cli("bench", "info", "tss-mini").out.splitlines()
    assert "value_sources      hand (1)" in info and "synthetic          True" in info
    best = cli(
        "bench",
        "best",
        "tss-mini",
        "--dataset",
        "cifar10",
        "--split",
        "ori-test",
        "--hp",
        "200",
        "--seed",
        "mean",
    )
    assert best.out.split("\t")[0] == "3" and best.out.strip().endswith("91.5000")
    # `official-tss` is the archive under $TORCH_HOME
    error = cli("bench", "import", "official-tss").one_line_error()
    assert "no official tss archive under" in error
    torch_home = Path(os.environ["TORCH_HOME"])
    torch_home.mkdir()
    (torch_home / tss_samples.name).symlink_to(tss_samples, target_is_directory=True)
    result = cli("bench", "import", "official-tss", "--jobs", "1", "--name", "from-torch-home")
    assert result.code == 0 and result.out.startswith(
        "imported from-torch-home: tss, 3 architectures"
    )


def test_list_without_stores(cli: Cli) -> None:
    result = cli("bench", "list")
    assert result.code == 0 and result.out.startswith("no stores under ")


QUERY = ("bench", "query", "tss-official", "11")
SELECT = ("--split", "ori-test", "--hp", "200", "--seed", "mean")
BAD_INPUT: list[tuple[tuple[str, ...], str]] = [
    (
        ("bench", "info", "tss-oficial"),
        "unknown store 'tss-oficial' (did you mean 'tss-official'?)",
    ),
    (
        (*QUERY, "--dataset", "cifar-10", *SELECT),
        "unknown dataset 'cifar-10' (did you mean 'cifar10'?)",
    ),
    (
        (*QUERY, "--dataset", "cifar10", "--split", "ori-test", "--hp", "200", "--seed", "bogus"),
        "seed must be 'mean', 'all' or an integer, got 'bogus'",
    ),
    ((*QUERY, "--dataset", "cifar10", "--split", "ori-test", "--seed", "mean"), "required: --hp"),
    ((*QUERY, "--dataset", "cifar10", "--task", "cifar10", *SELECT), "not both"),
    ((*QUERY, "--dataset", "cifar10", *SELECT[:4], "--seed", "123"), "seed 123 not held"),
    (("bench", "query", "tss-official", "12", "--dataset", "cifar10", *SELECT), "holds 3 of 15625"),
    (("bench", "import", "missing.csv"), "missing.csv does not exist"),
    (("bench", "import", "oficial-tss"), "did you mean 'official-tss'"),
    (("bench", "import", "{samples}"), "already exists"),
    (("bench",), "choose a command"),
]


@pytest.mark.parametrize(
    ("argv", "message"), BAD_INPUT, ids=[" ".join(a[:4]) + m[:12] for a, m in BAD_INPUT]
)
def test_bad_input_is_one_line(
    cli: Cli, sample_store: Path, tss_samples: Path, argv: tuple[str, ...], message: str
) -> None:
    shutil.copytree(sample_store, Path(os.environ["HARNESS_HOME"]) / "stores" / "tss-official")
    argv = tuple(a.replace("{samples}", str(tss_samples)) for a in argv)
    assert message in cli(*argv).one_line_error()


def test_malformed_archives_leave_no_store(cli: Cli, tmp_path: Path) -> None:
    broken = tmp_path / "NATS-tss-v1_0-3ffb9-simple"
    broken.mkdir()
    (broken / "meta.pickle.pbz2").write_bytes(b"not bzip2")
    assert "cannot read meta.pickle.pbz2" in cli("bench", "import", broken).one_line_error()
    single = tmp_path / "NATS-tss-v1_0-3ffb9.pickle.pbz2"
    single.write_bytes(bz2.compress(b"not a pickle"))
    assert (
        "cannot read NATS-tss-v1_0-3ffb9.pickle.pbz2"
        in cli("bench", "import", single).one_line_error()
    )
    table = tmp_path / "bad.csv"
    table.write_text("space,index\ntss,0\n")
    assert "missing column(s) arch" in cli("bench", "import", table).one_line_error()
    assert cli("bench", "list").out.startswith("no stores under ")


def test_python_dash_m_harness(tmp_path: Path) -> None:
    env = {**os.environ, "HARNESS_HOME": str(tmp_path)}
    entry = (
        ["-m", "harness"]
        if not RUN_MISSING
        else ["-c", _STUB + "; import runpy; runpy.run_module('harness', run_name='__main__')"]
    )
    ok = subprocess.run(
        [sys.executable, *entry, "bench", "list"], env=env, capture_output=True, text=True
    )
    assert ok.returncode == 0 and ok.stdout.startswith("no stores under "), ok.stderr
    bad = subprocess.run(
        [sys.executable, *entry, "bench", "info", "nope"], env=env, capture_output=True, text=True
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "error: unknown store 'nope'; expected one of: <none imported yet>"
    ]


# --------------------------------------------------------------------------- names and messages
README = Path(__file__).resolve().parents[2] / "README.md"


def test_import_jobs_zero_means_all_cpus(cli: Cli, tss_samples: Path) -> None:
    result = cli("bench", "import", tss_samples, "--jobs", "0")  # was joblib's ValueError
    assert result.code == 0, result.err
    assert result.out.startswith("imported tss-official: tss, 3 architectures")


def test_the_public_table_imports_as_the_store_the_readme_queries(
    cli: Cli, tss_public_table: Path
) -> None:
    result = cli("bench", "import", tss_public_table)  # no --name
    assert result.code == 0, result.err
    assert result.out.startswith("imported tss-public: tss, 15625 architectures")
    text = README.read_text()
    line = next(x for x in text.splitlines() if "bench import" in x and tss_public_table.name in x)
    assert line.rstrip().endswith("# -> tss-public")
    assert "harness bench info tss-public" in text and 'open_store("tss-public")' in text
    mean_only = ("--dataset", "cifar10", "--split", "ori-test", "--hp", "200")
    for command in (("query", "tss-public", "9930"), ("best", "tss-public")):
        error = cli("bench", *command, *mean_only, "--seed", "all").one_line_error()
        assert "holds only seed means for cifar10 @ hp 200 (no per-seed values)" in error
        assert "use seed 'mean'" in error and "[]" not in error
    assert cli("bench", "query", "tss-public", "9930", *mean_only, "--seed", "mean").code == 0


def test_default_table_names() -> None:
    from harness.cli.bench import _table_stem

    assert _table_stem("nats_tss_public", "tss") == "public"
    assert _table_stem("my-results", "tss") == "my-results"
    assert _table_stem("tss", "tss") == "tss"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ((*QUERY[:3], "-1", "--dataset", "cifar10", *SELECT), "tss index -1 out of range"),
        ((*QUERY[:3], "15625", "--dataset", "cifar10", *SELECT), "index 15625 out of range"),
        ((*QUERY, "--dataset", "CIFAR10", *SELECT), "(did you mean 'cifar10'?)"),
        (("bench", "info", "./no/such/store"), "store path ./no/such/store does not exist"),
        (("bench", "info", "TSS-OFFICIAL"), "(did you mean 'tss-official'?)"),
    ],
)
def test_messages_say_what_is_wrong(
    cli: Cli, sample_store: Path, argv: tuple[str, ...], message: str
) -> None:
    shutil.copytree(sample_store, Path(os.environ["HARNESS_HOME"]) / "stores" / "tss-official")
    assert message in cli(*argv).one_line_error()
