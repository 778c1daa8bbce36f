"""What a caption says about how results were made: the protocol's fidelity and the
parallelism wall-clock times ran under.

Both come from the sweep's manifest when the caller has it (the card recorded there is the one
that ran); without one the fidelity comes from the registered card of that version, and the
parallelism is said to be unrecorded rather than guessed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from harness.report.names import display_dataset

logger = logging.getLogger(__name__)

_SEED_POLICY = {
    "random": "of one training seed drawn per query",
    "mean": "averaged over training seeds",
}


def _registered_card(protocol: str) -> dict[str, Any] | None:
    from harness.errors import HarnessError
    from harness.protocol import get_protocol

    try:
        return get_protocol(protocol).to_dict()
    except HarnessError:
        pass
    try:  # a supernet card; imports torch, so only when the black-box cards do not know it
        from harness.supernet.cards import get_card

        card = get_card(protocol)
    except (HarnessError, ImportError):
        return None
    return {"epochs": card.epochs, "report_hp": card.report_hp, "search_tasks": card.search_tasks}


def _tasks(tasks: Sequence[str]) -> str:
    return ", ".join(display_dataset(t) for t in tasks)


def fidelity_phrase(protocol: str, manifest: Mapping[str, Any] | None = None) -> str | None:
    """How ``protocol`` searched and what it reports, e.g. "search fitness: hp-12 validation
    accuracy (one training seed drawn per query); reported: hp-200 test accuracy (the mean over
    seeds)"; None when no card of that name and version is known."""
    cards = (manifest or {}).get("protocols") or {}
    card = cards.get(protocol) or _registered_card(protocol)
    if not card:
        return None
    report = f"reported: hp-{card['report_hp']} test accuracy"
    if "fitness_hp" in card:  # a black-box protocol card
        seed = _SEED_POLICY.get(str(card.get("fitness_seed")), str(card.get("fitness_seed")))
        role = "validation" if card.get("fitness_role") == "valid" else card.get("fitness_role")
        text = f"search fitness: hp-{card['fitness_hp']} {role} accuracy {seed}; {report}"
        text += f" {_SEED_POLICY.get(str(card.get('report_seed')), 'averaged over seeds')}"
        if card.get("transfer_tasks"):
            text += (
                f"; searched on {_tasks(card['tasks'])}, reported on "
                f"{_tasks(card['transfer_tasks'])}"
            )
        return text
    return f"supernet trained {card['epochs']} epochs; {report} of the selected architecture"


def _sweep_phrase(sweep: Mapping[str, Any], cpus: Any) -> str:
    jobs = sweep.get("jobs")
    where = f"on {cpus} CPU cores" if cpus else "on an unrecorded machine"
    if sweep.get("device") and sweep.get("device") != "cpu":
        where = f"on {sweep['device']}"
    backend = f" ({sweep['backend']})" if sweep.get("backend") else ""
    unit = "cell" if "device" in sweep else "run"
    return f"{jobs} {unit}{'s' if jobs != 1 else ''} at a time{backend} {where}"


def parallelism_phrase(manifest: Mapping[str, Any] | None) -> str:
    """What the wall-clock seconds of a results directory ran under, from its manifest's
    sweeps (e.g. "2 runs at a time (loky) on 2 CPU cores"); says so when it is unknown."""
    sweeps = [s for s in (manifest or {}).get("sweeps", []) if s.get("jobs") is not None]
    if not sweeps:
        return "the parallelism it ran under is not recorded in these rows"
    cpus = ((manifest or {}).get("machine") or {}).get("cpu_count")
    phrases = list(dict.fromkeys(_sweep_phrase(s, cpus) for s in sweeps))
    return "; ".join(phrases)


def data_caveats(manifest: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The data caveats the sweeps of a manifest recorded (e.g. a table that holds only seed
    means, so a query answers the mean), each once, in order."""
    notes = [str(n) for s in (manifest or {}).get("sweeps", []) for n in s.get("notes", [])]
    return tuple(dict.fromkeys(notes))
