"""Mixed-radix helpers shared by the two NATS-Bench spaces.

Both spaces encode an architecture as a fixed number of digits (ops per edge for tss, width
positions per layer for sss), each taking one of ``n_choices`` values, and read the digits as
a base-``n_choices`` number with the first digit most significant (the "code").
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from harness.errors import ArchitectureError


def check_index(index: int | np.integer, space: str, num_archs: int, article: str = "a") -> int:
    """``index`` as an int after checking its type and ``0 <= index < num_archs``.

    ``space`` (with its ``article``, "a" or "an") names the space in the error message.
    """
    if isinstance(index, bool) or not isinstance(index, int | np.integer):
        raise ArchitectureError(
            f"expected {article} {space} index (int) or string, "
            f"got {type(index).__name__} {index!r}"
        )
    i = int(index)
    if not 0 <= i < num_archs:
        raise ArchitectureError(
            f"{space} index {i} out of range; expected 0 <= index < {num_archs}"
        )
    return i


def one_change_codes(digits: Sequence[int], place: Sequence[int], n_choices: int) -> list[int]:
    """Codes of every digit vector that differs from ``digits`` in exactly one digit.

    ``place[k]`` is the weight of digit ``k`` in the code; the result is unsorted and has
    ``len(digits) * (n_choices - 1)`` entries.
    """
    code = sum(d * p for d, p in zip(digits, place, strict=True))
    return [
        code + (value - digits[k]) * place[k]
        for k in range(len(digits))
        for value in range(n_choices)
        if value != digits[k]
    ]


def mutate_digits(digits: Sequence[int], n_choices: int, rng: np.random.Generator) -> list[int]:
    """Copy of ``digits`` with one uniformly chosen digit moved to a different value.

    Draws two integers from ``rng``: the digit position, then the offset in ``[1, n_choices)``.
    """
    out = list(digits)
    k = int(rng.integers(len(out)))
    out[k] = (out[k] + int(rng.integers(1, n_choices))) % n_choices
    return out


def sample_indices(
    rng: np.random.Generator, num_archs: int, size: int | tuple[int, ...] | None
) -> int | npt.NDArray[np.int64]:
    """Uniform random indices in ``[0, num_archs)``: an int if ``size`` is None, else int64."""
    if size is None:
        return int(rng.integers(num_archs))
    return rng.integers(num_archs, size=size, dtype=np.int64)
