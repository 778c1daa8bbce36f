"""Helpers of ``benchmarks/gpu_lease.sh``: what travels, what comes back, what was measured.

The device tool sends the working tree (tracked and untracked-not-ignored files) and the
ignored paths named in ``carry``, at most 64 MiB in all, and returns at most 8 files from
``$OUT`` (16 MiB each, 64 MiB together, at most 2 folders down, names of letters, digits and
``._-``). This module sizes the tree (``travel``), lists the measuring stages whose numbers
are not on file for a device yet (``missing``), packs a lease's outputs into one tarball plus the
checkpoints of the unfinished cells that fit the next call's carry (``pack``, which also
appends the lease to ``gpu_leases.json`` and prints the summary table), checks a returned
folder against the limits (``check-out``), unpacks it into the checkout (``collect``), and
verifies that a killed cell resumed (``check-resume``, for the dry run).

    python benchmarks/gpu_lease.py travel --write-plan
    python benchmarks/gpu_lease.py collect /path/to/files_at
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MiB = 2**20
#: What may travel to the device; what may come back: files, bytes each, bytes in all, depth.
TRAVEL_LIMIT = 64 * MiB
RETURN_FILES, RETURN_FILE, RETURN_TOTAL, RETURN_DEPTH = 8, 16 * MiB, 64 * MiB, 2
#: Room kept free in the next call's 64 MiB for files that grow between calls.
MARGIN = 2 * MiB
NAME = re.compile(r"^[A-Za-z0-9._-]+$")
CARRY = (".lease/data", ".lease/work")
PLAN = Path(".lease/data/plan.json")
TARBALL, SUMMARY = "lease-results.tar.gz", "lease-summary.json"
#: The benchmark files a lease writes (only those it changed are packed).
BENCH_FILES = ("supernet_throughput.json", "darts_search.json", "search_concurrency.json",
               "gpu_leases.json")  # fmt: skip
RUN_CALL: dict[str, Any] = {
    "command": "bash benchmarks/gpu_lease.sh device --budget 540",
    "carry": list(CARRY),
    "timeout_s": 590,
}


def run_call() -> str:
    """The device tool call that runs the next lease, as the session writes it."""
    carry = ", ".join(f'"{c}"' for c in RUN_CALL["carry"])
    return (f'run(command="{RUN_CALL["command"]}", carry=[{carry}], '
            f'timeout_s={RUN_CALL["timeout_s"]})')  # fmt: skip


#: The per-op graphed epoch recorded before the fused cells (README, darts_search.json).
BEFORE = {"device_name": "NVIDIA H100 80GB HBM3", "method": "darts_v1", "cuda_graph": True,
          "bf16": False}  # fmt: skip


def _mib(n: float) -> str:
    return f"{n / MiB:.1f} MiB"


def _sha(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []


def _bytes(paths: Iterable[Path]) -> int:
    return sum(p.stat().st_size for p in paths if p.is_file())


def _read_json(path: Path, default: Any) -> Any:
    return json.loads(path.read_text()) if path.is_file() else default


def device_name(device: str) -> str:
    """The name the benchmark scripts record for ``device``."""
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name()
    return platform.processor() or platform.machine()


# --------------------------------------------------------------------------- travel
def tree_bytes(root: Path) -> int | None:
    """Bytes of the tracked and untracked-not-ignored files (what travels without carry);
    None where git cannot list them (the device machine may have no .git)."""
    try:
        listing = subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=root,
            capture_output=True, check=True, timeout=60,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return _bytes(root / name for name in listing.decode().split("\0") if name)


def travel(root: Path, write_plan: bool) -> int:
    """Print what the next device call sends; 1 when it is over the limit."""
    tree = tree_bytes(root)
    if tree is None:
        print("error: git cannot list the working tree here", file=sys.stderr)
        return 1
    carried = {c: _bytes(_files(root / c)) for c in CARRY}
    checkpoints = _bytes(p for p in _files(root / CARRY[1]) if p.suffix == ".pt")
    total = tree + sum(carried.values())
    print(f"travels: tree {_mib(tree)}, " + ", ".join(f"{c} {_mib(b)}" for c, b in
          carried.items()) + f" ({_mib(checkpoints)} of checkpoints): {_mib(total)} "
          f"of {_mib(TRAVEL_LIMIT)}")  # fmt: skip
    if write_plan:
        plan = {"fixed_bytes": total - checkpoints, "prepared": time.strftime("%Y-%m-%d %H:%M"),
                "bench_sha256": {n: _sha(root / "results" / "benchmarks" / n)
                                 for n in BENCH_FILES}}  # fmt: skip
        (root / PLAN).write_text(json.dumps(plan, indent=1) + "\n")
    if total > TRAVEL_LIMIT - MARGIN:
        print(f"error: {_mib(total)} would travel, over {_mib(TRAVEL_LIMIT - MARGIN)}: delete "
              f"the least advanced checkpoints under {CARRY[1]}/", file=sys.stderr)  # fmt: skip
        return 1
    return 0


# --------------------------------------------------------------------------- missing
def missing(bench: Path, device: str, name: str, jobs: list[int]) -> dict[str, str]:
    """Measuring stages whose numbers for device ``name`` are not on file yet -> what each
    still has to run ("" for all of it; the K values missing, for ``concurrency``)."""

    def runs(file: str) -> list[dict]:
        return [r for r in _read_json(bench / file, {"runs": []})["runs"]
                if r.get("device_name") == name]  # fmt: skip

    graphed = device.startswith("cuda")
    searched = {r["method"] for r in runs("darts_search.json") if r["cuda_graph"] == graphed}
    eager = {r.get("cells") for r in runs("supernet_throughput.json")}
    concurrency = runs("search_concurrency.json")
    out = {}
    if not {"fused", "per-op"} <= eager:
        out["fused-eager"] = ""
    for method in ("darts_v1", "gaea"):
        if method not in searched:
            out[f"fused-graphed-{method}"] = ""
    if not any(r["cells"] == "per-op" and r["jobs"] == 1 for r in concurrency):
        out["fused-per-op-ab"] = ""
    have = {r["jobs"] for r in concurrency if r["cells"] == "fused"}
    if lacking := [k for k in jobs if k not in have]:
        out["concurrency"] = ",".join(map(str, lacking))
    return out


# --------------------------------------------------------------------------- cells
def _checkpoint_extra(path: Path) -> dict[str, Any]:
    import torch

    return dict(torch.load(path, weights_only=False, map_location="cpu")["extra"])


def cell_progress(folder: Path) -> dict[str, Any]:
    """Where an unfinished cell stands, from its checkpoints (an unreadable one: unknown)."""
    search = sorted(folder.glob("*.search.pt"))
    select = sorted(folder.glob("*.select.pt"))
    out: dict[str, Any] = {"run_key": folder.name, "files": [p.name for p in search + select]}
    try:
        out.update(_progress(search, select))
    except Exception as err:  # the pack must not fail: it is all that comes back
        out["error"] = f"{type(err).__name__}: {err}"
    return out


def _progress(search: list[Path], select: list[Path]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if search:
        extra = _checkpoint_extra(search[0])
        out.update(method=extra["method"], epoch=extra["epoch"] + 1,
                   epochs=extra["search_config"]["epochs"],
                   device_s=extra["ledger"]["device_seconds"])  # fmt: skip
    if select:
        extra = _checkpoint_extra(select[0])
        out.update(decided=extra["record"]["position"] + 1, positions=len(extra["order"]))
    return out


#: A study sweep: card, results directory, planned cells (None: unknown).
Study = tuple[str, Path, int | None]


def planned_cells(card: str, methods: str, seeds: str) -> int | None:
    """Cells of one study sweep (methods x search tasks x seeds); None if it cannot say."""
    from harness.errors import HarnessError
    from harness.oneshot.grid import load_supernet_grid

    try:
        grid = load_supernet_grid(methods, card, seeds, None, "magnitude", "jpeg")
    except HarnessError:
        return None
    return len(grid.methods) * len(grid.tasks) * len(grid.seeds)


def study_state(studies: list[Study], work: Path) -> tuple[list[dict], list[dict]]:
    """Per study sweep: planned, finished and failed cells; and every unfinished cell that has
    checkpoints, most advanced first (selection decisions, then search epochs)."""
    from harness.oneshot.resultsdir import SupernetResultsDir

    finished: set[str] = set()
    rows = []
    for card, folder, planned in studies:
        statuses = SupernetResultsDir(folder).run_statuses() if folder.is_dir() else {}
        finished |= {k for k, ok in statuses.items() if ok}
        rows.append({"card": card, "dir": str(folder), "planned": planned,
                     "finished": sum(statuses.values()),
                     "failed": sum(not ok for ok in statuses.values())})  # fmt: skip
    cells = [cell_progress(f) for f in sorted(work.glob("*")) if f.is_dir()
             and f.name not in finished and any(f.glob("*.pt"))]  # fmt: skip
    cells.sort(key=lambda c: (c.get("decided", 0), c.get("epoch", 0)), reverse=True)
    return rows, cells


def choose_checkpoints(cells: list[dict], work: Path, room: int) -> tuple[list[Path], list[Path]]:
    """Checkpoints to return, most advanced cell first, each cell's search before its
    selection (a selection checkpoint resumes nothing without its search); and the rest."""
    chosen: list[Path] = []
    dropped: list[Path] = []
    used = 0
    for cell in cells:
        files = [work / cell["run_key"] / f for f in cell["files"]]
        for path in sorted(files, key=lambda p: p.name.endswith(".select.pt")):
            size = path.stat().st_size
            search_kept = path.name.endswith(".search.pt") or any(
                c.parent == path.parent for c in chosen
            )
            fits = used + size <= room and size <= RETURN_FILE and len(chosen) < RETURN_FILES - 2
            if fits and search_kept:
                chosen.append(path)
                used += size
            else:
                dropped.append(path)
    return chosen, dropped


# --------------------------------------------------------------------------- pack
def _stages(tsv: Path) -> list[dict]:
    rows = []
    for line in tsv.read_text().splitlines() if tsv.is_file() else []:
        name, rc, seconds, cap, note = (line.split("\t") + [""] * 5)[:5]
        rows.append({"name": name, "rc": rc, "seconds": int(seconds), "cap": int(cap),
                     "note": note})  # fmt: skip
    return rows


def _tests(xml: Path) -> str | None:
    if not xml.is_file():
        return None
    top = ET.parse(xml).getroot()
    suite = top.find("testsuite") if top.tag == "testsuites" else top
    assert suite is not None
    n = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    passed = n["tests"] - n["failures"] - n["errors"] - n["skipped"]
    return f"{passed} passed, {n['skipped']} skipped, {n['failures'] + n['errors']} failed"


def _tar(root: Path, out: Path, members: list[Path]) -> Path:
    path = out / TARBALL
    with tarfile.open(path, "w:gz") as tar:
        for member in members:
            tar.add(member, arcname=str(member.relative_to(root)))
    return path


def _members(root: Path, args: argparse.Namespace, studies: list[Study]) -> list[Path]:
    started = args.started
    bench = [args.bench_dir / n for n in BENCH_FILES if (args.bench_dir / n).is_file()
             and (args.bench_dir / n).stat().st_mtime >= started]  # fmt: skip
    logs = [p for p in _files(args.work_dir) if p.suffix == ".log"]
    study = [p for _, folder, _ in studies for p in _files(folder)]
    return [root / p if not p.is_absolute() else p
            for p in [*bench, *study, *logs, *_files(args.logs_dir)]]  # fmt: skip


def _room(root: Path, tarball: int) -> int:
    """Checkpoint bytes the next call can carry and this one return."""
    plan = _read_json(root / PLAN, {})
    fixed = plan.get("fixed_bytes") or tree_bytes(root) or 0
    if not fixed:
        fixed = _bytes(_files(root / CARRY[0])) + 8 * MiB  # no plan, no git: a guess
    return max(0, min(TRAVEL_LIMIT - fixed - tarball - MARGIN, RETURN_TOTAL - tarball))


def pack(args: argparse.Namespace) -> int:
    root, out = ROOT, args.out
    out.mkdir(parents=True, exist_ok=True)
    studies = [
        (c, Path(d), planned_cells(c, m, s))
        for c, d, m, s in (entry.split(":") for entry in args.study)
    ]
    rows, cells = study_state(studies, args.work_dir)
    summary: dict[str, Any] = {
        "format": 1, "when": time.strftime("%Y-%m-%dT%H:%M:%S"), "device": args.device,
        "device_name": device_name(args.device), "budget_s": args.budget,
        "used_s": int(time.time() - args.started), "stages": _stages(args.logs_dir /
        "stages.tsv"), "tests": _tests(args.logs_dir / "tests.xml"),
        "bench_dir": str(args.bench_dir), "work_dir": str(args.work_dir), "study": rows,
        "in_flight": cells,
    }  # fmt: skip
    ledger_path = args.bench_dir / "gpu_leases.json"
    ledger = _read_json(ledger_path, {"leases": []})
    (args.logs_dir / SUMMARY).write_text(json.dumps(summary, indent=1) + "\n")
    tarball = _tar(root, out, _members(root, args, studies)).stat().st_size
    chosen, dropped = choose_checkpoints(cells, args.work_dir, _room(root, tarball + 64 * 1024))
    summary["returned"] = [{"file": str(p.relative_to(args.work_dir)), "bytes": p.stat().st_size}
                           for p in chosen]  # fmt: skip
    summary["dropped"] = [str(p.relative_to(args.work_dir)) for p in dropped]
    ledger["leases"].append({k: v for k, v in summary.items() if k != "in_flight"})
    args.bench_dir.mkdir(parents=True, exist_ok=True)
    ledger_path.write_text(json.dumps(ledger, indent=1) + "\n")
    (args.logs_dir / SUMMARY).write_text(json.dumps(summary, indent=1) + "\n")
    _tar(root, out, _members(root, args, studies))
    for path in chosen:
        target = out / path.parent.name / path.name
        target.parent.mkdir(exist_ok=True)
        shutil.copy2(path, target)
    shutil.copy2(args.logs_dir / SUMMARY, out / SUMMARY)
    print_summary(summary, args.bench_dir)
    problems = check_out(out)
    for problem in problems:
        print(f"error: {problem}")
    return 1 if problems else 0


# --------------------------------------------------------------------------- summary
def _latest(runs: list[dict], **match: Any) -> dict | None:
    hits = [r for r in runs if all(r.get(k) == v for k, v in match.items())]
    return hits[-1] if hits else None


def _fused_lines(bench: Path, name: str) -> list[str]:
    searches = _read_json(bench / "darts_search.json", {"runs": []})["runs"]
    before = _latest(searches, **BEFORE, epochs_run=3)
    lines = []
    for method in ("darts_v1", "gaea"):
        run = _latest(searches, device_name=name, method=method)
        if run is not None:
            ref = ""
            if before is not None and method == "darts_v1":
                ref = f" (per-op, {before['device_name']}: {before['later_epoch_mean_s']:.1f} s)"
            lines.append(f"  fused {method}, graphed={run['cuda_graph']}: "
                         f"{run['later_epoch_mean_s']:.2f} s per {run['steps_per_epoch']}-step "
                         f"epoch{ref}; projected search {run['search_s']:.0f} s")  # fmt: skip
    steps = _read_json(bench / "supernet_throughput.json", {"runs": []})["runs"]
    for cells in ("per-op", "fused"):
        run = _latest(steps, device_name=name, cells=cells, bf16=False, compile=None)
        if run is not None:
            lines.append(f"  eager {cells}: weight step {run['weight_step_s'] * 1e3:.1f} ms, "
                         f"arch step {run['arch_step_s'] * 1e3:.1f} ms")  # fmt: skip
    return lines


def _concurrency_lines(bench: Path, name: str) -> list[str]:
    data = _read_json(bench / "search_concurrency.json", {"runs": []})
    lines = []
    for run in (r for r in data["runs"] if r["device_name"] == name):
        gain = ""
        if run.get("speedup_vs_k1") is not None:
            gain = f", x{run['speedup_vs_k1']:.2f} over K=1 (efficiency {run['efficiency']:.2f})"
        lines.append(f"  K={run['jobs']} {run['cells']}: {run['aggregate_steps_per_s']:.1f} "
                     f"steps/s together, {run['per_search_epoch_s_at_391_steps']:.1f} s per "
                     f"391-step epoch each{gain}")  # fmt: skip
    if data.get("note"):
        lines.append(f"  note: {data['note']}")
    return lines


def print_summary(summary: dict, bench: Path) -> None:
    name = summary["device_name"]
    print(f"\n== lease summary: {name}, {summary['used_s']} s of a {summary['budget_s']} s "
          f"budget ==")  # fmt: skip
    print(f"{'stage':<22}{'rc':>8}{'seconds':>9}{'cap':>6}  note")
    for s in summary["stages"]:
        print(f"{s['name']:<22}{s['rc']:>8}{s['seconds']:>9}{s['cap']:>6}  {s['note']}")
    if summary["tests"]:
        print(f"tests: {summary['tests']}")
    for title, lines in (("fused cells", _fused_lines(bench, name)),
                         ("concurrency", _concurrency_lines(bench, name))):  # fmt: skip
        if lines:
            print(f"{title}:")
            print("\n".join(lines))
    print("study:")
    for row in summary["study"]:
        print(
            f"  {row['card']}: {row['finished']}/{row['planned']} cells finished"
            f"{', ' + str(row['failed']) + ' failed' if row['failed'] else ''} ({row['dir']})"
        )
    for cell in summary["in_flight"]:
        where = f"epoch {cell.get('epoch')}/{cell.get('epochs')}"
        if "decided" in cell:
            where += f", selection {cell['decided']}/{cell['positions']} decided"
        print(f"  in flight: {cell['run_key']} {cell.get('method')}: {where}")
    back = summary["returned"]
    print(
        f"returned: {TARBALL}, {SUMMARY} and {len(back)} checkpoints "
        f"({_mib(sum(c['bytes'] for c in back))})"
        + (f"; left behind: {', '.join(summary['dropped'])}" if summary["dropped"] else "")
    )
    print(f"next: bash benchmarks/gpu_lease.sh collect <files_at>, then {run_call()}")


# --------------------------------------------------------------------------- out / collect
def check_out(out: Path) -> list[str]:
    """What in ``out`` breaks the device tool's limits on returned files (empty: nothing)."""
    files = _files(out)
    problems = []
    if len(files) > RETURN_FILES:
        problems.append(f"{len(files)} files in {out}, at most {RETURN_FILES} come back")
    if _bytes(files) > RETURN_TOTAL:
        problems.append(f"{_mib(_bytes(files))} in {out}, at most {_mib(RETURN_TOTAL)}")
    for path in files:
        rel = path.relative_to(out)
        if len(rel.parts) - 1 > RETURN_DEPTH:
            problems.append(f"{rel}: more than {RETURN_DEPTH} folders down")
        if not all(NAME.match(part) for part in rel.parts):
            problems.append(f"{rel}: a name with characters other than letters, digits, ._-")
        if path.stat().st_size > RETURN_FILE:
            problems.append(f"{rel}: {_mib(path.stat().st_size)}, over {_mib(RETURN_FILE)}")
    return problems


def _safe_members(tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
    members = tar.getmembers()
    for m in members:
        if m.name.startswith("/") or ".." in Path(m.name).parts or not (m.isfile() or m.isdir()):
            raise ValueError(f"unsafe member {m.name!r} in the lease tarball")
    return members


def collect(returned: Path, root: Path) -> int:
    """Unpack a device call's files into the checkout: results, logs, and the checkpoints,
    which replace every checkpoint of the work directory (the device's set is current)."""
    summary_file = returned / SUMMARY
    if not summary_file.is_file() or not (returned / TARBALL).is_file():
        print(f"error: {returned} holds no {SUMMARY} / {TARBALL}: the call packed nothing; "
              "the carried checkpoints stay as they were", file=sys.stderr)  # fmt: skip
        return 1
    summary = json.loads(summary_file.read_text())
    plan = _read_json(root / PLAN, {})
    kept = root / ".lease" / "collected"
    with tarfile.open(returned / TARBALL) as tar:
        for member in _safe_members(tar):
            target = root / member.name
            sent = plan.get("bench_sha256", {}).get(target.name)
            changed_here = (target.parent == root / "results" / "benchmarks" and
                            target.name in BENCH_FILES and _sha(target) != sent)  # fmt: skip
            if changed_here and member.isfile():
                kept.mkdir(parents=True, exist_ok=True)
                tar.extract(member, kept, filter="data")
                print(f"warning: {member.name} changed here since prepare: the device's copy "
                      f"is in {kept / member.name}, merge it by hand")  # fmt: skip
            else:
                tar.extract(member, root, filter="data")
    work = root / summary["work_dir"]
    files = [entry["file"] for entry in summary["returned"]]
    lost = [f for f in files if not (returned / f).is_file()]
    if not lost:  # the device's set is complete and current: older checkpoints here go
        for old in (p for p in _files(work) if p.suffix == ".pt"):
            old.unlink()
    for file in (f for f in files if f not in lost):
        (work / file).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(returned / file, work / file)
    for file in lost:
        print(f"warning: {file} did not come back; the older copy here (if any) stays")
    print(f"collected {len(files) - len(lost)} checkpoints into {work} and {TARBALL} into {root}")
    return 0


#: The first line of each run of a cell in its progress log.
CELL_START = re.compile(r"^cell [0-9a-f]{16}: ")


def resumed_runs(log: Path) -> list[str]:
    """The lines that show a later run of a cell picking up from its checkpoints: a search
    that resumed (or did not start at epoch 1), or a perturbation selection that resumed."""
    runs: list[list[str]] = []
    for line in log.read_text().splitlines():
        text = line.split(" ", 2)[-1]  # after the date and time
        if CELL_START.match(text) or not runs:
            runs.append([])
        runs[-1].append(text)
    found = []
    for later in runs[1:]:
        marks = [t for t in later if t.startswith(("resuming ", "epoch "))]
        if marks and not marks[0].startswith("epoch 1/"):
            found.append(marks[0])
        elif not marks and any(t.startswith("search done") for t in later):
            found.append("search complete on file: " + later[-1])
    return found


def check_resume(work: Path) -> int:
    """0 when some cell under ``work`` resumed from its checkpoints (:func:`resumed_runs`)."""
    found = [f"{log.parent.name}: {line}" for log in sorted(work.glob("*/*.progress.log"))
             for line in resumed_runs(log)]  # fmt: skip
    for line in found:
        print(f"resumed: {line}")
    if not found:
        print(f"error: no cell under {work} resumed from a checkpoint", file=sys.stderr)
    return 0 if found else 1


# --------------------------------------------------------------------------- command line
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("travel", help="size what the next device call sends")
    p.add_argument("--write-plan", action="store_true", help=f"write {PLAN}")
    p = commands.add_parser("missing", help="list the measuring stages not on file yet")
    p.add_argument("--bench-dir", type=Path, required=True)
    p.add_argument("--device", default="cuda")
    p.add_argument("--jobs", default="1,3,9")
    p = commands.add_parser("pack", help="pack a lease's outputs into OUT and print a summary")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--bench-dir", type=Path, required=True)
    p.add_argument("--work-dir", type=Path, required=True)
    p.add_argument("--logs-dir", type=Path, required=True)
    p.add_argument("--study", action="append", default=[], help="CARD:DIR:METHODS:SEEDS")
    p.add_argument("--device", default="cuda")
    p.add_argument("--budget", type=int, required=True)
    p.add_argument("--started", type=float, required=True, help="epoch seconds of the start")
    p = commands.add_parser("check-out", help="check a returned folder against the limits")
    p.add_argument("out", type=Path)
    p = commands.add_parser("collect", help="unpack a device call's files into the checkout")
    p.add_argument("returned", type=Path)
    p = commands.add_parser("check-resume", help="did a killed cell resume (dry run)")
    p.add_argument("work_dir", type=Path)
    args = parser.parse_args()
    os.chdir(ROOT)
    if args.command == "travel":
        return travel(ROOT, args.write_plan)
    if args.command == "missing":
        jobs = [int(j) for j in args.jobs.split(",")]
        name = device_name(args.device)
        todo = missing(args.bench_dir, args.device, name, jobs)
        print(f"on file for {name}: every stage but {sorted(todo) or 'none'}", file=sys.stderr)
        for stage, what in todo.items():
            print(f"{stage} {what}".strip())
        return 0
    if args.command == "pack":
        return pack(args)
    if args.command == "check-out":
        problems = check_out(args.out)
        files = _files(args.out)
        print(
            f"{args.out}: {len(files)} files, {_mib(_bytes(files))}: "
            + ", ".join(f"{p.relative_to(args.out)} {_mib(p.stat().st_size)}" for p in files)
        )
        for problem in problems:
            print(f"error: {problem}")
        return 1 if problems else 0
    if args.command == "collect":
        return collect(args.returned.resolve(), ROOT)
    return check_resume(args.work_dir)


if __name__ == "__main__":
    sys.exit(main())
