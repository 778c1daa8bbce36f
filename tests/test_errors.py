"""One-line error messages: did-you-mean ignores case, and the packaging metadata is current."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from harness.bench import names
from harness.errors import ConfigError, did_you_mean, unknown
from harness.grid import MethodSpec

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("name", "choices", "suggestion"),
    [
        ("CIFAR10", names.DATASETS, "cifar10"),
        ("imagenet16-120", names.DATASETS, "ImageNet16-120"),
        ("REA", ("random_search", "rea", "reinforce"), "rea"),
        ("cifar1000", names.TASKS, "cifar100"),
    ],
)
def test_did_you_mean_ignores_case(name: str, choices: tuple[str, ...], suggestion: str) -> None:
    assert did_you_mean(name, choices) == f" (did you mean {suggestion!r}?)"


def test_no_suggestion_for_nothing_close() -> None:
    assert did_you_mean("zzzz", ("cifar10", "rea")) == ""
    assert unknown("method", "x", ["a"]) == "unknown method 'x'; expected one of: a"


def test_a_wrongly_cased_method_or_dataset_gets_a_suggestion() -> None:
    with pytest.raises(ConfigError, match=r"unknown method 'REA' \(did you mean 'rea'\?\)"):
        MethodSpec.make("REA")
    with pytest.raises(Exception, match=r"unknown dataset 'CIFAR10' \(did you mean 'cifar10'\?\)"):
        names.check_dataset("CIFAR10")


def test_license_is_an_spdx_string() -> None:
    """setuptools >= 77 deprecates ``project.license`` as a table (removal 2027-02-18)."""
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["license"] == "MIT"
    assert "setuptools>=77" in meta["build-system"]["requires"]
