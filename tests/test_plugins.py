"""Methods of one's own: --plugin modules and files, entry points, $HARNESS_PLUGINS, workers.

The README's local search is the plug-in under test: it is cut out of the README, written to a
temporary directory and run in fresh processes (so that this test process keeps the built-in
registry), through ``harness run`` with two loky workers and with a local Dask cluster.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from harness import registry, runner
from harness.bench.store import Store
from harness.cli import main
from harness.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
MARK = "<!-- plugin example: tests/test_plugins.py runs this block as local_search.py -->"


def readme_plugin() -> str:
    """The code block of the README that follows :data:`MARK`."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert MARK in text, "the README lost its plug-in example"
    match = re.search(r"```python\n(.*?)```", text[text.index(MARK) :], re.S)
    assert match is not None
    return match.group(1)


@pytest.fixture
def plugin(tmp_path: Path) -> Path:
    path = tmp_path / "plugins" / "local_search.py"
    path.parent.mkdir()
    path.write_text(readme_plugin(), encoding="utf-8")
    return path


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != registry.PLUGINS_ENV}
    return {**env, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **extra}


def _python(code: str, cwd: Path = ROOT, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=_env(**env), capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip


def _harness(*argv: object, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *map(str, argv)], cwd=cwd, env=_env(),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def _sweep(store: Store, out: Path, plugin: Path, *extra: object) -> list[object]:
    return [
        "run", "--plugin", plugin, "--methods", "rs,local_search", "--tasks", "cifar10",
        "--seeds", "0-3", "--protocol", "nats-tss", "--budget", "3000", "--store", store.path,
        "--out", out, "--no-progress", "--chunk-size", "1", *extra,
    ]  # fmt: skip


# --------------------------------------------------------------------------- the README plug-in
def test_the_readme_example_is_short_and_passes_check_method(plugin: Path) -> None:
    code = [line for line in readme_plugin().splitlines() if line.strip()]
    assert len(code) <= 26, f"the README promises a 25-line local search; it has {len(code)}"
    done = _python(
        "from harness.registry import load_plugins, get_method\n"
        "from harness.checks import check_method\n"
        f"load_plugins([{str(plugin)!r}])\n"
        "check_method(get_method('local_search'))\n"
        "print('passed')\n"
    )
    assert done.returncode == 0 and "passed" in done.stdout, done.stderr[-3000:]


def test_harness_run_with_a_plugin_file_on_two_loky_workers(
    tiny_store: Store, plugin: Path, tmp_path: Path
) -> None:
    done = _harness(*_sweep(tiny_store, tmp_path / "loky", plugin, "--jobs", "2"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "8 runs planned: 0 already finished, 8 run now" in done.stdout
    runs = pd.read_parquet(tmp_path / "loky" / "runs.parquet")
    assert set(runs["method"]) == {"random_search", "local_search"}
    assert (runs["status"] == "ok").all() and runs["test_acc"].notna().all()
    manifest = (tmp_path / "loky" / "manifest.json").read_text()
    assert str(plugin) in manifest  # the sweep records its plug-ins
    serial = _harness(*_sweep(tiny_store, tmp_path / "serial", plugin))
    assert serial.returncode == 0, serial.stderr[-3000:]
    again = pd.read_parquet(tmp_path / "serial" / "runs.parquet")
    columns = ["run_key", "arch_index", "test_acc", "queries"]
    assert runs[columns].equals(again[columns])  # workers ran the same method


def test_harness_run_with_a_plugin_on_a_dask_cluster(
    tiny_store: Store, plugin: Path, tmp_path: Path
) -> None:
    pytest.importorskip("distributed")
    # a module name this time: the workers import it from PYTHONPATH (the plug-in directory)
    sweep = _sweep(tiny_store, tmp_path / "dask", plugin, "--backend", "dask", "--jobs", "1")
    sweep[sweep.index(plugin)] = "local_search"
    done = subprocess.run(
        [sys.executable, "-m", "harness", *map(str, sweep)], cwd=ROOT, capture_output=True,
        env=_env(PYTHONPATH=f"{ROOT}{os.pathsep}{plugin.parent}"), text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    runs = pd.read_parquet(tmp_path / "dask" / "runs.parquet")
    assert (runs["status"] == "ok").all() and set(runs["method"]) >= {"local_search"}


# --------------------------------------------------------------------------- failing loudly
def test_an_unknown_method_is_refused_before_the_sweep(
    tiny_store: Store, plugin: Path, tmp_path: Path
) -> None:
    argv = _sweep(tiny_store, tmp_path / "x", plugin)
    argv[argv.index("rs,local_search")] = "local_serch"
    done = _harness(*argv)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "unknown method 'local_serch' (did you mean 'local_search'?)" in done.stderr
    assert "--plugin MODULE" in done.stderr and str(plugin) in done.stderr
    assert not (tmp_path / "x").exists()


def test_a_worker_without_the_plugin_stops_the_sweep_naming_the_plugins(
    tiny_store: Store, plugin: Path, tmp_path: Path
) -> None:
    # The parent knows the method; the loky workers are given no plug-in (as a runner that
    # forgot to carry them would): the sweep must stop with a clear error, not fail rows.
    code = f"""
from harness import runner, results
from harness.bench.store import open_store
from harness.errors import ConfigError
from harness.registry import load_plugins
load_plugins([{str(plugin)!r}])
store = open_store({str(tiny_store.path)!r})
grid = runner.load_grid(methods="local_search", tasks="cifar10", seeds="0-3",
                        protocols="nats-tss", budget=3000.0)
specs = runner.plan_runs(grid, store)
target = results.ResultsDir({str(tmp_path / "w")!r})
target.prepare()
try:
    runner._execute(specs, target, str(store.path), 2, "loky", None, 1, False, plugins=())
except ConfigError as err:
    print("ERROR", err)
print("written", len(target.run_files()))
"""
    done = _python(code)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ERROR method 'local_search' is not registered in this worker" in done.stdout
    assert "plug-ins it was given: none" in done.stdout and "--plugin MODULE" in done.stdout
    assert "written 0" in done.stdout  # no silently failed rows


def test_run_chunk_refuses_a_method_it_cannot_resolve(tiny_store: Store) -> None:
    grid = runner.load_grid(
        methods="rs", tasks="cifar10", seeds="0", protocols="nats-tss", budget=3000.0
    )
    spec = runner.plan_runs(grid, tiny_store)[0]
    ghost = type(spec)(**{**vars(spec), "method": "ghost_search"})
    with pytest.raises(ConfigError, match=r"'ghost_search' is not registered in this worker"):
        runner.run_chunk([ghost], str(tiny_store.path), plugins=())


@pytest.mark.parametrize(
    ("source", "given", "match"),
    [
        (None, "missing.py", r"plug-in file .*missing\.py does not exist"),
        (None, "no_such_module_xyz", r"cannot import plug-in module 'no_such_module_xyz'"),
        (None, "not a module", r"neither a module name"),
        ("x = 1\n", "quiet.py", r"registered no method: decorate its method class"),
        ("import math\nmath.sqrt(-1)\n", "broken.py", r"broken\.py:2: ValueError: math domain"),
    ],
)
def test_plugins_that_cannot_load_fail_loudly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str | None, given: str, match: str
) -> None:
    monkeypatch.chdir(tmp_path)
    if source is not None:
        (tmp_path / given).write_text(source)
    with pytest.raises(ConfigError, match=match):
        registry.load_plugins([given])


def test_a_module_name_beside_a_file_in_the_working_directory_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine_xyz.py").write_text("x = 1\n")
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    with pytest.raises(ConfigError, match=r"mine_xyz\.py is in the current directory: pass"):
        registry.load_plugins(["mine_xyz"])


def test_supernet_run_takes_plugins_and_fails_on_a_missing_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["supernet", "run", "--methods", "darts_v1", "--card", "tiny-cpu", "--seeds", "0",
            "--out", str(tmp_path / "ws"), "--plugin", str(tmp_path / "nope.py")]  # fmt: skip
    assert main(argv) == 2
    assert "plug-in file" in capsys.readouterr().err and not (tmp_path / "ws").exists()


# --------------------------------------------------------------------------- other ways in
def test_exported_plugins_reach_child_processes(plugin: Path) -> None:
    # what `harness supernet run --plugin` does for the loky / Dask workers it starts
    code = f"""
import subprocess, sys
from harness.cli.common import use_plugins
assert use_plugins([{str(plugin)!r}], export=True) == ({str(plugin)!r},)
child = "from harness.registry import method_names; print('local_search' in method_names())"
print(subprocess.run([sys.executable, "-c", child], capture_output=True, text=True).stdout)
"""
    done = _python(code)
    assert done.returncode == 0 and done.stdout.strip() == "True", done.stderr[-3000:]


def test_entry_points_and_the_environment_variable_register_methods(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "ep_plugin-0.1.dist-info").mkdir(parents=True)
    (site / "ep_plugin-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: ep-plugin\nVersion: 0.1\n"
    )
    (site / "ep_plugin-0.1.dist-info" / "entry_points.txt").write_text(
        f"[{registry.ENTRY_POINT_GROUP}]\nep_search = ep_methods\n"
    )
    (site / "ep_methods.py").write_text(readme_plugin().replace('"local_search"', '"ep_search"'))
    env_file = tmp_path / "env_methods.py"
    env_file.write_text(readme_plugin().replace('"local_search"', '"env_search"'))
    code = (
        "from harness.registry import method_names, make_method\n"
        "names = method_names('blackbox')\n"
        "assert 'ep_search' in names and 'env_search' in names, names\n"
        "print(type(make_method('ep_search')).__module__)\n"
    )
    done = _python(
        code, PYTHONPATH=f"{ROOT}{os.pathsep}{site}", **{registry.PLUGINS_ENV: str(env_file)}
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "ep_methods"


def test_a_broken_entry_point_names_itself(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "bad-0.1.dist-info").mkdir(parents=True)
    (site / "bad-0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: bad\n")
    (site / "bad-0.1.dist-info" / "entry_points.txt").write_text(
        f"[{registry.ENTRY_POINT_GROUP}]\nbroken = no_such_pkg_xyz.methods\n"
    )
    done = _python(
        "from harness.registry import method_names\nmethod_names()\n",
        PYTHONPATH=f"{ROOT}{os.pathsep}{site}",
    )
    assert done.returncode != 0
    assert f"entry point broken = no_such_pkg_xyz.methods (group {registry.ENTRY_POINT_GROUP})" in (
        done.stderr
    )


# --------------------------------------------------------------------------- check_method
def _method_in(module_name: str, source: str) -> type:
    namespace: dict[str, object] = {"__name__": module_name}
    exec(compile(source, f"{module_name}.py", "exec"), namespace)
    cls = namespace["LocalSearch"]
    assert isinstance(cls, type)
    return cls


def test_check_method_explains_the_one_module_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    from harness.checks import check_method

    source = readme_plugin().replace("@register_method\n", "")
    source = "from harness.bench.store import open_store\n" + source
    module = types.ModuleType("table_reading_plugin")
    cls = _method_in(module.__name__, source)
    vars(module).update(open_store=vars(sys.modules["harness.bench.store"])["open_store"])
    monkeypatch.setitem(sys.modules, module.__name__, module)
    with pytest.raises(AssertionError, match=r"references 'open_store' from harness\.bench"):
        check_method(cls)
    with pytest.raises(AssertionError, match="Keep a method in a module of its own"):
        check_method(cls)
    monkeypatch.delitem(sys.modules, module.__name__)
    with pytest.raises(AssertionError, match=r"is not imported .*load_plugins"):
        check_method(cls)
