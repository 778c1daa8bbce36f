"""A killed import leaves nothing for long: the next import removes its temporary directory,
and never one of an import that is still running."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from harness.bench.format import remove_stale_temporaries, writer_alive
from harness.bench.store import Store
from harness.bench.tidy import import_table

_KILLED_IMPORT = """
import os, signal, sys
from pathlib import Path
from harness.bench.format import BlockSpec, StoreWriter
block = BlockSpec("12", "cifar10", (777,), 12, (11,), ("ori-test",))
with StoreWriter(Path(sys.argv[1]), "tss", 15625, [block]) as writer:
    (writer.tmp / "data.bin").write_bytes(b"x" * 1000)  # an import in full swing
    os.kill(os.getpid(), signal.SIGKILL)
"""


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_the_next_import_removes_what_a_killed_one_left(tiny_store: Store, tmp_path: Path) -> None:
    stores = tmp_path / "stores"
    killed = subprocess.run([sys.executable, "-c", _KILLED_IMPORT, str(stores / "tss-x")])
    assert killed.returncode == -signal.SIGKILL
    left = [p.name for p in stores.iterdir()]
    assert len(left) == 1 and left[0].startswith(".tss-x.tmp-")  # no store, one temporary
    table = tiny_store.path.parent / f"{tiny_store.path.name}.parquet"
    import_table(table, stores / "tss-y", progress=False)
    assert sorted(p.name for p in stores.iterdir()) == ["tss-y"]


def test_only_temporaries_of_finished_processes_here_are_removed(tmp_path: Path) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        time.sleep(0.2)
        now, host, dead = time.time_ns(), socket.gethostname(), _dead_pid()
        names = {
            f".a.tmp-{dead}-{now}-{host}": False,  # its import was killed: removed
            f".b.tmp-{dead}-{now}": False,  # older name without the host: removed
            f".c.old-{dead}-{now}-{host}": False,  # the old store of a killed replacement
            f".d.tmp-{sleeper.pid}-{now}-{host}": True,  # a live import: kept
            f".e.tmp-{os.getpid()}-{now}-{host}": True,  # this process's own: kept
            f".f.tmp-{dead}-{now}-another-host": True,  # another host's: cannot tell, kept
            f".g.tmp-{sleeper.pid}-{now - 10**12}-{host}": False,  # pid reused since: removed
            "tss-public": True,  # a store
            ".h.tmp": True,  # not ours
        }
        for name in names:
            (tmp_path / name).mkdir()
        removed = remove_stale_temporaries(tmp_path)
        assert sorted(p.name for p in removed) == sorted(n for n, keep in names.items() if not keep)
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            n for n, k in names.items() if k
        )
        assert writer_alive(sleeper.pid, now) and not writer_alive(dead, now)
    finally:
        sleeper.kill()
        sleeper.wait()
