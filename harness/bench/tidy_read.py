"""Reading and validating tidy long tables (one row per measurement).

A tidy table has the columns ``space, index, arch, dataset, hp, seed, epoch, split, metric,
value, source`` and is a CSV, gzip-compressed CSV or parquet file. An empty ``seed`` is the
mean over the seeds the source had; an empty ``epoch`` / ``split`` marks a run-level metric.
:func:`store_target` is the one mapping from a tidy metric to the store's arrays.

Every row is checked here: the architecture string must be the official string of its index,
names must be known (with a did-you-mean), and no measurement may appear twice. Errors name
the file and the first offending row, counted from 1 with the header excluded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.bench import names
from harness.errors import ArchiveError, HarnessError, unknown
from harness.spaces import get_space, space_names

logger = logging.getLogger(__name__)

COLUMNS: tuple[str, ...] = tuple(
    "space index arch dataset hp seed epoch split metric value source".split()
)
SUFFIXES: tuple[str, ...] = (".csv", ".csv.gz", ".parquet")
_TEXT: tuple[str, ...] = ("space", "arch", "dataset", "hp", "split", "metric", "source")
_KEY: list[str] = ["index", "dataset", "hp", "seed", "epoch", "split", "metric"]

#: Tidy metric -> (array inside the block, kind); ``{split}`` is the row's split.
#: kinds: ``curve`` (a value at the row's epoch), ``time`` (seconds over the whole schedule,
#: stored per epoch), ``cost`` (one value per architecture).
_METRICS: dict[str, tuple[str, str]] = {
    "accuracy": ("{split}/accuracy", "curve"),
    "loss": ("{split}/loss", "curve"),
    "train_time_s": ("train/epoch_time", "time"),
    "eval_time_s": ("{split}/epoch_time", "time"),
    "params_mb": ("params", "cost"),
    "flops_m": ("flops", "cost"),
    "latency_s": ("latency", "cost"),
}
METRICS: tuple[str, ...] = tuple(_METRICS)


def store_target(metric: str, split: str) -> tuple[str, str]:
    """Map a tidy ``(metric, split)`` to ``(array name inside its block, kind)``.

    ``split`` is ``""`` for run-level metrics. ``train_time_s`` and ``eval_time_s`` are seconds
    over the whole schedule (all epochs); the store keeps seconds per epoch, so the importer
    divides them by the schedule length. ``kind`` is ``curve``, ``time`` or ``cost``.

    >>> store_target("accuracy", "x-valid")
    ('x-valid/accuracy', 'curve')
    >>> store_target("train_time_s", "")
    ('train/epoch_time', 'time')
    """
    if metric not in _METRICS:
        raise ArchiveError(unknown("metric", metric, METRICS))
    template, kind = _METRICS[metric]
    needs_split = "{split}" in template
    if not needs_split:
        if split:
            raise ArchiveError(
                f"metric {metric!r} is run-level: its split must be empty, got {split!r}"
            )
        return template, kind
    if not split:
        raise ArchiveError(f"metric {metric!r} needs a split (one of: {', '.join(names.SPLITS)})")
    if split not in names.SPLITS:
        raise ArchiveError(unknown("split", split, names.SPLITS))
    if metric == "eval_time_s" and split == "train":
        raise ArchiveError("eval_time_s is for eval sets; training time is train_time_s")
    return template.format(split=split), kind


# --------------------------------------------------------------------------- reading
def table_suffix(path: Path) -> str | None:
    """The tidy-table suffix of ``path`` (``.csv``, ``.csv.gz``, ``.parquet``), or None."""
    name = Path(path).name.lower()
    return next((s for s in sorted(SUFFIXES, key=len, reverse=True) if name.endswith(s)), None)


def read_table(path: Path) -> pd.DataFrame:
    """Read a tidy table as a DataFrame (text columns as str, numbers parsed later)."""
    path = Path(path)
    if not path.is_file():
        raise ArchiveError(f"{path} does not exist or is not a file")
    suffix = table_suffix(path)
    if suffix is None:
        raise ArchiveError(f"{path.name}: not a tidy table; expected one of: {', '.join(SUFFIXES)}")
    try:
        if suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(
            path, dtype={c: "category" for c in _TEXT}, keep_default_na=False, na_values=[""]
        )
    except Exception as err:  # each reader raises its own zoo of errors on garbage
        raise ArchiveError(f"cannot read {path.name}: {type(err).__name__}: {err}") from None


def text_column(frame: pd.DataFrame, column: str) -> np.ndarray:
    """A text column as an object array of str; missing is ``""``."""
    codes, uniques = pd.factorize(frame[column])  # fast on arrow strings; -1 = missing
    return np.array([*(str(u) for u in uniques), ""], dtype=object)[codes]


def _mapped(values: np.ndarray, mapping: dict[Any, Any]) -> np.ndarray:
    """``mapping[v]`` for every entry of ``values``, computed once per distinct value."""
    codes, uniques = pd.factorize(values)
    return np.array([mapping[u] for u in uniques], dtype=object)[codes]


def factorize_pairs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, list[tuple[Any, Any]]]:
    """Codes of the distinct ``(a, b)`` pairs and the pairs themselves."""
    a_codes, a_uniques = pd.factorize(a)
    b_codes, b_uniques = pd.factorize(b)
    codes, combined = pd.factorize(a_codes.astype(np.int64) * len(b_uniques) + b_codes)
    pairs = [(a_uniques[c // len(b_uniques)], b_uniques[c % len(b_uniques)]) for c in combined]
    return np.asarray(codes), pairs


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


@dataclass
class TidyRows:
    """The validated table as arrays, one entry per row."""

    space: str
    index: np.ndarray  # (n,) int64
    dataset: np.ndarray  # (n,) object
    hp: np.ndarray  # (n,) object, official hp key
    seed: np.ndarray  # (n,) float64, NaN = the source's seed mean
    epoch: np.ndarray  # (n,) float64, NaN for run-level metrics
    value: np.ndarray  # (n,) float64
    target: np.ndarray  # (n,) int, position in ``targets``
    targets: list[tuple[str, str, str]]  # (array, kind, split)


class _Checker:
    """Validates one table; every error names the file and the first offending row."""

    def __init__(self, frame: pd.DataFrame, name: str) -> None:
        self.frame = frame
        self.name = name

    def fail(self, pos: int, problem: str) -> ArchiveError:
        row = self.frame.iloc[pos]
        where = f"index {row['index']}, {row['dataset']} hp {row['hp']}, {row['metric']}"
        return ArchiveError(f"{self.name} row {pos + 1} ({where}): {problem}")

    def numeric(self, column: str, *, integral: bool) -> np.ndarray:
        col = self.frame[column]
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            values = col.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            text = col.astype(object).where(col.notna(), "").astype(str).str.strip()
            parsed = pd.to_numeric(text.mask(text == ""), errors="coerce")
            bad = (parsed.isna() & (text != "")).to_numpy()
            if bad.any():
                pos = _first(bad)
                raise self.fail(pos, f"{column} {text.iloc[pos]!r} is not a number")
            values = parsed.to_numpy(dtype=np.float64, na_value=np.nan)
        if integral:
            bad = np.isinf(values) | (np.isfinite(values) & (values != np.round(values)))
            if bad.any():
                raise self.fail(_first(bad), f"{column} {values[_first(bad)]} is not an integer")
        return values

    def by_unique(self, values: np.ndarray, check: Any) -> None:
        """Run ``check(value)`` once per distinct value; errors name the first row holding it."""
        for value in pd.unique(values):
            try:
                check(value)
            except HarnessError as err:
                raise self.fail(_first(values == value), str(err)) from None


def validate(frame: pd.DataFrame, name: str) -> TidyRows:
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ArchiveError(
            f"{name}: missing column(s) {', '.join(missing)}; "
            f"found: {', '.join(map(str, frame.columns))}"
        )
    if len(frame) == 0:
        raise ArchiveError(f"{name}: the table has no rows")
    frame = frame.reset_index(drop=True)
    check = _Checker(frame, name)
    text = {c: text_column(frame, c) for c in _TEXT}
    space = _check_space(check, text["space"])
    index = _check_index(check, space)
    official = np.array(
        [get_space(space).index_to_str(i) for i in range(get_space(space).num_archs)], dtype=object
    )
    wrong = text["arch"] != official[index]
    if wrong.any():
        pos = _first(wrong)
        raise check.fail(
            pos,
            f"arch {text['arch'][pos]!r} is not the official string of index {index[pos]} "
            f"({official[index[pos]]!r})",
        )
    check.by_unique(text["dataset"], names.check_dataset)
    hp = _check_hp(check, space, text["hp"])
    pairs, target = _check_targets(check, text["metric"], text["split"], text["dataset"])
    kinds = np.array([t[1] for t in pairs], dtype=object)[target]
    seed, epoch, value = _check_numbers(check, kinds, hp)
    rows = TidyRows(space, index, text["dataset"], hp, seed, epoch, value, target, pairs)
    _check_duplicates(check, rows, text["metric"], text["split"])
    return rows


def _check_space(check: _Checker, spaces: np.ndarray) -> str:
    found = [str(s) for s in pd.unique(spaces)]
    if len(found) > 1:
        pos = _first(spaces != spaces[0])
        raise check.fail(
            pos,
            f"space {spaces[pos]!r} differs from the first row's {spaces[0]!r}; "
            "one space per table",
        )
    if found[0] not in space_names():
        raise check.fail(0, unknown("space", found[0], space_names()))
    return found[0]


def _check_index(check: _Checker, space: str) -> np.ndarray:
    values = check.numeric("index", integral=True)
    n_archs = get_space(space).num_archs
    bad = ~((values >= 0) & (values < n_archs))  # NaN too
    if bad.any():
        raise check.fail(
            _first(bad),
            f"index {values[_first(bad)]} is outside the {space} space (0..{n_archs - 1})",
        )
    return values.astype(np.int64)


def _hp_key(space: str, hp: str) -> str:
    try:
        return names.hp_key(space, hp)
    except HarnessError:
        try:
            number = float(hp)
        except ValueError:
            number = float("nan")
        if number.is_integer():
            return names.hp_key(space, int(number))
        raise


def _check_hp(check: _Checker, space: str, hps: np.ndarray) -> np.ndarray:
    keys: dict[str, str] = {}

    def one(hp: str) -> None:
        keys[hp] = _hp_key(space, hp)

    check.by_unique(hps, one)
    return _mapped(hps, keys)


def _check_targets(
    check: _Checker, metrics: np.ndarray, splits: np.ndarray, datasets: np.ndarray
) -> tuple[list[tuple[str, str, str]], np.ndarray]:
    """Map every row to its target array; returns the distinct targets and a code per row."""
    codes, pairs = factorize_pairs(metrics, splits)
    targets: list[tuple[str, str, str]] = []
    for code, (metric, split) in enumerate(pairs):
        try:
            array, kind = store_target(metric, split)
        except HarnessError as err:
            raise check.fail(_first(codes == code), str(err)) from None
        targets.append((array, kind, split))
    pair_codes, dataset_splits = factorize_pairs(datasets, splits)
    for code, (dataset, split) in enumerate(dataset_splits):
        allowed = ("train", *names.EVAL_SETS[dataset])
        if split and split not in allowed:
            raise check.fail(
                _first(pair_codes == code), unknown(f"split for {dataset}", split, allowed)
            )
    return targets, codes


def _check_numbers(
    check: _Checker, kinds: np.ndarray, hp: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    seed = check.numeric("seed", integral=True)
    epoch = check.numeric("epoch", integral=True)
    value = check.numeric("value", integral=False)
    if not np.isfinite(value).all():
        raise check.fail(_first(~np.isfinite(value)), "value is empty or not finite")
    curve = kinds == "curve"
    if (curve & np.isnan(epoch)).any():
        raise check.fail(_first(curve & np.isnan(epoch)), "a per-epoch metric needs an epoch")
    if (~curve & ~np.isnan(epoch)).any():
        raise check.fail(
            _first(~curve & ~np.isnan(epoch)), "a run-level metric must have an empty epoch"
        )
    schedule = _mapped(hp, {h: float(h) for h in pd.unique(hp)}).astype(np.float64)
    outside = curve & ((epoch < 0) | (epoch >= schedule))
    if outside.any():
        pos = _first(outside)
        raise check.fail(
            pos,
            f"epoch {int(epoch[pos])} is outside the hp-{hp[pos]} schedule "
            f"(0..{int(schedule[pos]) - 1})",
        )
    per_seed_cost = (kinds == "cost") & ~np.isnan(seed)
    if per_seed_cost.any():
        raise check.fail(
            _first(per_seed_cost), "cost metrics are per architecture: seed must be empty"
        )
    return seed, epoch, value


def _check_duplicates(
    check: _Checker, rows: TidyRows, metrics: np.ndarray, splits: np.ndarray
) -> None:
    columns = (rows.index, rows.dataset, rows.hp, rows.seed, rows.epoch, splits, metrics)
    key = pd.DataFrame(dict(zip(_KEY, columns, strict=True)))
    later = key.duplicated(subset=_KEY, keep="first").to_numpy()
    if later.any():
        pos = _first(later)
        group = key.groupby(_KEY, dropna=False, sort=False).ngroup().to_numpy()
        earlier = _first(group == group[pos])
        raise check.fail(pos, f"duplicate of row {earlier + 1} (same {', '.join(_KEY)})")
