"""Measure a command's wall time and the peak resident memory of its whole process tree."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    task_dir = Path(f"/proc/{pid}/task")
    try:
        for task in task_dir.iterdir():
            text = (task / "children").read_text().split()
            kids.extend(int(k) for k in text)
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return kids


def _rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def tree_rss(pid: int) -> int:
    """Sum of resident memory of ``pid`` and all its descendants, in bytes."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        total += _rss_bytes(current)
        stack.extend(_children(current))
    return total


def run_measured(
    args: list[str], *, interval: float = 0.05, env: dict[str, str] | None = None
) -> dict[str, float | str]:
    """Run ``args``; return wall seconds, peak tree RSS (bytes) and the command's stdout."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    peak = 0
    done = threading.Event()

    def poll() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_rss(proc.pid))
            time.sleep(interval)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    out, err = proc.communicate()
    done.set()
    thread.join()
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.stderr.write(err)
        raise RuntimeError(f"{args[:3]} failed with exit code {proc.returncode}")
    return {"wall_s": wall, "peak_rss_bytes": float(peak), "stdout": out}
