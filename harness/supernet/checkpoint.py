"""Checkpoints of a supernet search (per epoch) and of a perturbation selection (per edge
decision), sufficient for a bit-identical resume.

A checkpoint holds the supernet and weight-optimiser state, the method's architecture and
method state (tensors, optimisers, nested dicts of tensors), the torch generator states of the
method and of each loader, the numpy generator state, and whatever ``extra`` record the loop
adds (epoch, ledger, history, configs). Files are written atomically (temporary file, rename).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypedDict, Unpack

import numpy as np
import torch
from torch import nn

logger = logging.getLogger(__name__)


def state_out(state: dict[str, Any]) -> dict[str, Any]:
    """A saveable copy: tensors cloned, objects with ``state_dict`` replaced by it."""
    out: dict[str, Any] = {}
    for key, value in state.items():
        if isinstance(value, torch.Tensor):
            out[key] = value.detach().clone()
        elif hasattr(value, "state_dict"):
            out[key] = value.state_dict()
        elif isinstance(value, dict):
            out[key] = state_out(value)
        else:
            out[key] = value
    return out


def state_in(state: dict[str, Any], saved: dict[str, Any]) -> None:
    """Restore ``state`` in place from :func:`state_out`'s output (tensors copied into)."""
    for key, value in state.items():
        if isinstance(value, torch.Tensor):
            with torch.no_grad():
                value.copy_(saved[key])
        elif hasattr(value, "load_state_dict"):
            value.load_state_dict(saved[key])
        elif isinstance(value, dict):
            state_in(value, saved[key])
        else:
            state[key] = saved[key]


class CheckpointPieces(TypedDict):
    """The live objects a checkpoint saves and restores (keyword arguments of both functions)."""

    supernet: nn.Module
    optimizer: torch.optim.Optimizer | None
    arch_state: dict[str, torch.Tensor]
    method_state: dict[str, Any]
    generator: torch.Generator | None
    loader_generators: Sequence[torch.Generator | None]
    rng: np.random.Generator


def save_checkpoint(
    path: Path, *, extra: dict[str, Any], **pieces: Unpack[CheckpointPieces]
) -> None:
    """Write everything a resume needs to ``path`` (atomically: a kill leaves the old file)."""
    optimizer, generator = pieces["optimizer"], pieces["generator"]
    payload = {
        "supernet": pieces["supernet"].state_dict(),
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "arch_state": state_out(pieces["arch_state"]),
        "method_state": state_out(pieces["method_state"]),
        "generator": None if generator is None else generator.get_state(),
        "loaders": [g.get_state() if g is not None else None for g in pieces["loader_generators"]],
        "numpy_rng": pieces["rng"].bit_generator.state,
        "extra": extra,
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_checkpoint(
    path: Path,
    *,
    check: Callable[[dict[str, Any]], None] | None = None,
    **pieces: Unpack[CheckpointPieces],
) -> dict[str, Any]:
    """Restore all of the above in place from ``path``; returns the ``extra`` record.

    ``check``: called with the ``extra`` record before anything is restored (it raises when
    the checkpoint belongs to another run).
    """
    saved = torch.load(path, weights_only=False, map_location="cpu")
    extra = dict(saved["extra"])
    if check is not None:
        check(extra)
    pieces["supernet"].load_state_dict(saved["supernet"])
    optimizer, generator = pieces["optimizer"], pieces["generator"]
    if optimizer is not None and saved["optimizer"] is not None:
        optimizer.load_state_dict(saved["optimizer"])
    state_in(pieces["arch_state"], saved["arch_state"])
    state_in(pieces["method_state"], saved["method_state"])
    if generator is not None and saved["generator"] is not None:
        generator.set_state(saved["generator"])
    for gen, state in zip(pieces["loader_generators"], saved["loaders"], strict=True):
        if gen is not None and state is not None:
            gen.set_state(state)
    pieces["rng"].bit_generator.state = saved["numpy_rng"]
    logger.info("restored checkpoint %s", path)
    return extra
