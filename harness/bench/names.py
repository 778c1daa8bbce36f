"""Benchmark vocabulary: the one place where user-facing names meet the official NATS keys.

The official archives key results by a *dataset* (which training run: ``cifar10-valid`` trains
on 25k CIFAR-10 images, ``cifar10`` on all 50k) and an *eval set* (``x-valid``, ``x-test``,
``ori-test``) or ``train``. Protocols speak of a task (``cifar10``, ``cifar100``,
``ImageNet16-120``) and a role (``train``, ``valid``, ``test``). :func:`resolve` is the only
mapping between the two; a table-driven test pins every entry.
"""

from __future__ import annotations

from harness.errors import BenchmarkQueryError, unknown

DATASETS: tuple[str, ...] = ("cifar10-valid", "cifar10", "cifar100", "ImageNet16-120")
TASKS: tuple[str, ...] = ("cifar10", "cifar100", "ImageNet16-120")
SPLITS: tuple[str, ...] = ("train", "x-valid", "x-test", "ori-test")
ROLES: tuple[str, ...] = ("train", "valid", "test")
#: Curve metrics stored per epoch.
CURVE_METRICS: tuple[str, ...] = ("accuracy", "loss")
#: Eval sets each official dataset holds, besides ``train``.
EVAL_SETS: dict[str, tuple[str, ...]] = {
    "cifar10-valid": ("x-valid", "ori-test"),
    "cifar10": ("ori-test",),
    "cifar100": ("x-valid", "x-test", "ori-test"),
    "ImageNet16-120": ("x-valid", "x-test", "ori-test"),
}
#: Training schedules (hp = number of epochs) per space, as the official keys.
HPS: dict[str, tuple[str, ...]] = {"tss": ("12", "200"), "sss": ("01", "12", "90")}
NUM_CLASSES: dict[str, int] = {
    "cifar10-valid": 10,
    "cifar10": 10,
    "cifar100": 100,
    "ImageNet16-120": 120,
}

_ROLE_MAP: dict[tuple[str, str], tuple[str, str]] = {
    # CIFAR-10: search-side numbers come from the run trained on the 25k half
    # ("cifar10-valid"); test numbers from the run trained on all 50k ("cifar10").
    ("cifar10", "train"): ("cifar10-valid", "train"),
    ("cifar10", "valid"): ("cifar10-valid", "x-valid"),
    ("cifar10", "test"): ("cifar10", "ori-test"),
    # CIFAR-100 / ImageNet16-120: one run; valid and test are the two halves of the test set.
    ("cifar100", "train"): ("cifar100", "train"),
    ("cifar100", "valid"): ("cifar100", "x-valid"),
    ("cifar100", "test"): ("cifar100", "x-test"),
    ("ImageNet16-120", "train"): ("ImageNet16-120", "train"),
    ("ImageNet16-120", "valid"): ("ImageNet16-120", "x-valid"),
    ("ImageNet16-120", "test"): ("ImageNet16-120", "x-test"),
}


def resolve(task: str, role: str) -> tuple[str, str]:
    """Map a task and a role to the official ``(dataset, split)`` that holds it.

    CIFAR-10's ``train`` role is the training split of ``cifar10-valid``, the run trained on
    the 25k half, whose validation numbers the search side reads; the official API's own remap
    (``dataset="cifar10"`` for a training metric) reads the run trained on all 50k instead. We
    keep the search side on one run: its training and validation metrics belong together.

    >>> resolve("cifar10", "valid")
    ('cifar10-valid', 'x-valid')
    """
    check_task(task)
    if role not in ROLES:
        raise BenchmarkQueryError(unknown("role", role, ROLES))
    return _ROLE_MAP[(task, role)]


def check_task(task: str) -> str:
    if task not in TASKS:
        hint = " ('cifar10-valid' is a training run, not a task)" if task == "cifar10-valid" else ""
        raise BenchmarkQueryError(unknown("task", task, TASKS) + hint)
    return task


def check_dataset(dataset: str) -> str:
    if dataset not in DATASETS:
        raise BenchmarkQueryError(unknown("dataset", dataset, DATASETS))
    return dataset


def hp_key(space: str, hp: int | str) -> str:
    """Normalise a schedule length (``200``, ``"200"``, ``1``, ``"01"``) to the official key."""
    if space not in HPS:
        raise BenchmarkQueryError(unknown("space", space, HPS))
    try:
        epochs = int(hp)
        # int() truncates 12.5 to 12 and maps True to 1: neither names a schedule
        if isinstance(hp, bool) or (not isinstance(hp, str) and epochs != hp):
            raise ValueError(hp)
    except (TypeError, ValueError, OverflowError):
        raise BenchmarkQueryError(unknown(f"hp for {space}", hp, HPS[space])) from None
    key = f"{epochs:02d}"
    if key not in HPS[space]:
        raise BenchmarkQueryError(unknown(f"hp for {space}", hp, HPS[space]))
    return key
