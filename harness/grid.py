"""What to run: grids of (methods x spaces x tasks x seeds x protocols) from flags or TOML.

A :class:`Grid` (plus per-method hyperparameter overrides and optional budget overrides) comes
from flags or a small TOML file (:func:`load_grid`); :func:`parse_seeds` reads seed ranges.
Only black-box methods belong in a grid: a supernet method name is refused with a message that
points to ``harness supernet run`` (:func:`require_blackbox`). :mod:`harness.runner` expands a
grid into run cells (:class:`RunSpec`, defined here so that the record builders,
:mod:`harness.records`, need not import the runner).

Grid TOML::

    methods = ["random_search", "rea", {name = "rea", population_size = 20}]
    tasks = ["cifar10", "cifar100"]        # default: the protocol's tasks
    seeds = "0-499"                        # "N", "A-B" (inclusive), lists: "0-9,20"
    protocol = "nats-tss"                  # or protocols = [...]
    spaces = ["tss"]                       # default: the protocols' spaces
    store = "tss-public"                   # optional
    budget = 10000                         # optional: seconds for every task, or a table
    [config.reinforce]                     # overrides for plain-named entries of a method
    learning_rate = 0.02
"""

from __future__ import annotations

import ast
import hashlib
import json
import logging
import math
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.bench import names
from harness.errors import ConfigError, unknown
from harness.protocol import get_protocol, protocol_names
from harness.registry import make_method, method_kind, method_names
from harness.spaces import space_names

__all__ = [
    "METHOD_ALIASES",
    "Grid",
    "MethodSpec",
    "RunSpec",
    "canonical_json",
    "load_grid",
    "parse_seeds",
    "require_blackbox",
    "seed_text",
]

logger = logging.getLogger(__name__)

#: Short names accepted for registered methods.
METHOD_ALIASES: Mapping[str, str] = {
    "rs": "random_search", "random": "random_search", "alpha-nas": "alpha_nas",
    "alphanas": "alpha_nas", "regularized_evolution": "rea",
}  # fmt: skip
_TOML_KEYS = ("methods", "spaces", "space", "tasks", "seeds", "protocol", "protocols", "store",
              "budget", "config")  # fmt: skip
_SEED_PART = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


# --------------------------------------------------------------------------- grid
def parse_seeds(spec: str | int | Sequence[int]) -> tuple[int, ...]:
    """Seeds from ``"0-499"`` (inclusive), ``"0,3,7-9"``, an int or a list of ints."""
    if isinstance(spec, bool):
        raise ConfigError(f"seeds must be a range like '0-499' or a list of ints, got {spec!r}")
    if isinstance(spec, int):
        parts: list[int] = [spec]
    elif isinstance(spec, str):
        parts = []
        for part in spec.split(","):
            match = _SEED_PART.match(part)
            if match is None:
                raise ConfigError(
                    f"malformed seed range {part.strip()!r} in {spec!r}: expected 'N', "
                    "'A-B' (inclusive, A <= B) or a comma-separated list, e.g. '0-499' or '0,7-9'"
                )
            lo = int(match[1])
            hi = lo if match[2] is None else int(match[2])
            if hi < lo:
                raise ConfigError(f"empty seed range {part.strip()!r}: {lo} > {hi}")
            parts.extend(range(lo, hi + 1))
    else:
        parts = list(spec)
    bad = [s for s in parts if isinstance(s, bool) or not isinstance(s, int) or s < 0]
    if bad or not parts:
        raise ConfigError(f"seeds must be a non-empty list of ints >= 0, got {spec!r}")
    dup = sorted({s for s in parts if parts.count(s) > 1}) if len(set(parts)) < len(parts) else []
    if dup:
        raise ConfigError(f"seeds listed twice: {dup[:10]}")
    return tuple(parts)


def canonical_json(obj: Any) -> str:
    """Compact JSON with sorted keys: equal values give equal text (run keys hash it)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


_canonical = canonical_json


def require_blackbox(method_names_: Iterable[str]) -> None:
    """Raise one :class:`ConfigError` naming every supernet method among ``method_names_``
    (registered names; a black-box grid cannot run them). Unknown names pass through."""
    supernet = []
    for name in dict.fromkeys(method_names_):
        try:
            kind = method_kind(name)
        except ConfigError:
            continue  # reported by the caller with its own suggestions
        if kind == "supernet":
            supernet.append(name)
    if len(supernet) == 1:
        raise ConfigError(f"{supernet[0]} is a supernet method: run it with `harness supernet run`")
    if supernet:
        raise ConfigError(
            f"{', '.join(supernet)} are supernet methods: run them with `harness supernet run`"
        )


@dataclass(frozen=True)
class MethodSpec:
    """A registered method name (aliases resolved) and its hyperparameter overrides (JSON)."""

    name: str
    overrides: str = "{}"

    @staticmethod
    def make(name: str, overrides: Mapping[str, Any] | None = None) -> MethodSpec:
        canonical = METHOD_ALIASES.get(str(name), str(name))
        try:
            method_kind(canonical)
        except ConfigError:
            known = [*method_names(), *METHOD_ALIASES]
            raise ConfigError(unknown("method", name, known)) from None
        require_blackbox([canonical])
        return MethodSpec(canonical, _canonical(dict(overrides or {})))

    def instance_config(self) -> str:
        """The full config (defaults + overrides) as canonical JSON; validates overrides."""
        method = make_method(self.name, **json.loads(self.overrides))
        return _canonical(asdict(method.config))


@dataclass(frozen=True)
class Grid:
    """What to run; ``budgets`` maps task (or ``"*"``) to simulated seconds (overrides)."""

    methods: tuple[MethodSpec, ...]
    spaces: tuple[str, ...]
    tasks: tuple[str, ...]
    seeds: tuple[int, ...]
    protocols: tuple[str, ...]
    budgets: tuple[tuple[str, float], ...] = ()
    store: str | None = None

    def describe(self) -> dict[str, Any]:
        """A JSON-serialisable description (for the manifest)."""
        methods = [{"name": m.name, "overrides": json.loads(m.overrides)} for m in self.methods]
        return {
            "methods": methods, "spaces": list(self.spaces), "tasks": list(self.tasks),
            "seeds": seed_text(self.seeds), "protocols": list(self.protocols),
            "budgets": dict(self.budgets), "store": self.store,
        }  # fmt: skip


@dataclass(frozen=True)
class RunSpec:
    """One cell of the grid: everything a worker needs to run and record one search."""

    method: str
    overrides: str
    config: str
    space: str
    task: str
    protocol: str
    protocol_name: str
    seed: int
    budget: float
    eval_tasks: tuple[str, ...]
    data_checksum: str
    synthetic: bool

    @property
    def key(self) -> str:
        """First 16 hex digits of the SHA-256 of the cell's identity and the data checksum."""
        ident = [self.method, self.config, self.space, self.task, self.protocol, self.seed,
                 self.data_checksum]  # fmt: skip
        return hashlib.sha256(canonical_json(ident).encode()).hexdigest()[:16]

    @property
    def entropy(self) -> list[int]:
        """``[seed, h0, h1, h2, h3]``: the grid seed and a 128-bit hash of the cell."""
        cell = canonical_json([self.method, self.config, self.space, self.task, self.protocol])
        digest = hashlib.sha256(cell.encode()).digest()
        return [self.seed, *(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4))]

    @property
    def oracle_key(self) -> list[int]:
        """``[seed, h0, h1, h2, h3]`` over (space, task, protocol) only: the key of the
        oracle's noise (:class:`harness.oracle.SharedNoise`), shared by every method and
        config of one seed, so that their runs pair."""
        cell = canonical_json(["oracle", self.space, self.task, self.protocol])
        digest = hashlib.sha256(cell.encode()).digest()
        return [self.seed, *(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4))]

    def streams(self) -> tuple[np.random.Generator, np.random.Generator]:
        """(method, oracle) generators spawned from this run's SeedSequence (the runner gives
        the oracle :attr:`oracle_key`'s shared noise instead of the second)."""
        method_ss, oracle_ss = np.random.SeedSequence(self.entropy).spawn(2)
        return np.random.default_rng(method_ss), np.random.default_rng(oracle_ss)


def seed_text(seeds: Sequence[int]) -> str:
    """Seeds as a short string: ``"0-9"`` for a run of consecutive seeds, else ``"0,3,7"``."""
    if list(seeds) == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(map(str, seeds))


def _literal(text: str, entry: str) -> Any:
    """A hyperparameter value written in a method list: a Python or JSON literal, or else the
    text itself (a bare string)."""
    lowered = {"true": True, "false": False, "null": None, "none": None}
    if text.lower() in lowered:
        return lowered[text.lower()]
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        if not text or any(c in text for c in "()[]{}=,"):
            raise ConfigError(f"cannot read the value {text!r} in {entry!r}") from None
        return text


def split_methods(text: str) -> list[str | dict[str, Any]]:
    """A comma-separated method list, each entry a name or ``name(key=value, ...)`` (the form
    the reports label configs with): ``"rea(population_size=20),rs"`` ->
    ``[{"name": "rea", "population_size": 20}, "rs"]``."""
    entries, depth, current = [], 0, ""
    for char in text + ",":
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            raise ConfigError(f"unbalanced ')' in the method list {text!r}")
        if char == "," and depth == 0:
            if current.strip():
                entries.append(current.strip())
            current = ""
        else:
            current += char
    if depth:
        raise ConfigError(f"unbalanced '(' in the method list {text!r}")
    out: list[str | dict[str, Any]] = []
    for entry in entries:
        name, paren, rest = entry.partition("(")
        if not paren:
            out.append(entry)
            continue
        if not rest.endswith(")") or not name.strip():
            raise ConfigError(f"expected name(key=value, ...), got {entry!r}")
        values: dict[str, Any] = {"name": name.strip()}
        for item in filter(None, (p.strip() for p in rest[:-1].split(","))):
            key, eq, value = item.partition("=")
            if not eq or not key.strip().isidentifier():
                raise ConfigError(f"expected key=value in {entry!r}, got {item!r}")
            values[key.strip()] = _literal(value.strip(), entry)
        out.append(values)
    return out


def _listify(value: Any, what: str) -> list[Any]:
    if isinstance(value, str) and what == "methods":
        return split_methods(value)
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, list | tuple):
        return list(value)
    raise ConfigError(f"{what} must be a string or a list, got {value!r}")


def _method_specs(entries: Iterable[Any], config: Mapping[str, Any]) -> tuple[MethodSpec, ...]:
    entries = list(entries)
    given = [e.get("name") if isinstance(e, Mapping) else e for e in entries]
    require_blackbox(METHOD_ALIASES.get(str(n), str(n)) for n in given if n is not None)
    specs = []
    for entry in entries:
        if isinstance(entry, Mapping):
            if "name" not in entry:
                raise ConfigError(f"a method table needs a 'name', got {dict(entry)}")
            rest = {k: v for k, v in entry.items() if k != "name"}
            specs.append(MethodSpec.make(entry["name"], rest))
        else:
            name = METHOD_ALIASES.get(str(entry), str(entry))
            specs.append(MethodSpec.make(name, config.get(name, config.get(str(entry)))))
    if not specs:
        raise ConfigError(
            "no methods given; black-box methods: " + ", ".join(method_names("blackbox"))
        )
    return tuple(specs)


def _budgets(value: Any) -> tuple[tuple[str, float], ...]:
    items = value.items() if isinstance(value, Mapping) else [("*", value)]
    out = []
    for task, seconds in items:
        if task != "*" and task not in names.TASKS:
            _bad_task(task)
        ok = isinstance(seconds, int | float) and not isinstance(seconds, bool)
        if not (ok and math.isfinite(seconds) and seconds > 0):
            raise ConfigError(
                f"budget for {task} must be a finite number of seconds > 0, got {seconds!r}"
            )
        out.append((str(task), float(seconds)))
    return tuple(sorted(out))


def _bad_task(task: str) -> None:
    raise ConfigError(unknown("task", task, names.TASKS))


def load_grid(config: str | Path | None = None, **flags: Any) -> Grid:
    """A grid from an optional TOML file, with non-None ``flags`` taking precedence.

    Flags: ``methods``, ``spaces``, ``tasks``, ``seeds``, ``protocols``, ``store``, ``budget``
    (strings are comma-separated lists). Spaces and tasks default to the protocols' own.
    """
    data: dict[str, Any] = {}
    if config is not None:
        try:
            data = tomllib.loads(Path(config).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as err:
            raise ConfigError(f"cannot read grid file {config}: {err}") from None
        for key in data:
            if key not in _TOML_KEYS:
                raise ConfigError(unknown("grid file key", key, _TOML_KEYS))
        data["spaces"] = data.pop("space", data.get("spaces"))
        data["protocols"] = data.pop("protocol", data.get("protocols"))
    data.update({k: v for k, v in flags.items() if v is not None})
    if data.get("protocols") is None:
        raise ConfigError("no protocol given; known: " + ", ".join(protocol_names()))
    cards = [get_protocol(p) for p in _listify(data["protocols"], "protocols")]
    if data.get("methods") is None or data.get("seeds") is None:
        raise ConfigError("a grid needs methods and seeds (e.g. --methods rs,rea --seeds 0-9)")
    overrides = data.get("config") or {}
    spaces = _listify(data.get("spaces") or sorted({c.space for c in cards}), "spaces")
    tasks = _listify(
        data.get("tasks") or list(dict.fromkeys(t for c in cards for t in c.tasks)), "tasks"
    )
    for space in spaces:
        if space not in space_names():
            raise ConfigError(unknown("space", space, space_names()))
    for task in tasks:
        if task not in names.TASKS:
            _bad_task(task)
    return Grid(
        methods=_method_specs(_listify(data["methods"], "methods"), overrides),
        spaces=tuple(spaces), tasks=tuple(tasks), seeds=parse_seeds(data["seeds"]),
        protocols=tuple(c.name for c in cards),
        budgets=_budgets(data["budget"]) if data.get("budget") is not None else (),
        store=data.get("store"),
    )  # fmt: skip
