"""Display names defined once, and what captions say about fidelity and parallelism."""

from __future__ import annotations

from harness.registry import method_names
from harness.report.context import fidelity_phrase, parallelism_phrase
from harness.report.names import (
    METHOD_NAMES,
    display_dataset,
    display_label,
    display_metric,
    split_label,
)


def test_every_registered_method_has_a_display_name() -> None:
    assert set(method_names()) <= set(METHOD_NAMES)
    expected = {"random_search": "random search", "rea": "REA", "reinforce": "REINFORCE",
                "alpha_nas": "alpha-NAS"}  # fmt: skip
    assert {k: display_label(k) for k in expected} == expected
    assert display_label("alpha_nas", latex=True) == r"$\alpha$-NAS"
    assert [display_dataset(d) for d in ("cifar10", "cifar100", "ImageNet16-120")] == [
        "CIFAR-10", "CIFAR-100", "ImageNet16-120",
    ]  # fmt: skip
    assert display_metric("test_acc") == "test accuracy (%)"


def test_labels_with_configs_and_selection_rules_keep_them() -> None:
    assert display_label("rea(population_size=20)") == "REA (population_size=20)"
    assert display_label("rea#2") == "REA #2"
    assert display_label("my_method") == "my_method"
    assert display_label("my_method", latex=True) == r"my\_method"
    assert display_label("rea(tournament_size=5)", latex=True) == r"REA (tournament\_size=5)"
    assert display_label("darts_v1+perturbation") == "DARTS-PT"
    assert display_label("fixed_alpha+perturbation", latex=True) == r"DARTS-PT (fix $\alpha$)"
    assert display_label("gaea+perturbation") == "GAEA + PT"
    assert display_label("darts_v1+magnitude") == "DARTS-V1 + magnitude"
    assert display_label("dnal(lambda_a=0.1)+topk") == "DNAL (lambda_a=0.1) + top-K"
    assert split_label("rea(lr=1e+20)") == ("rea", "(lr=1e+20)", "")  # '+' of a value, no rule


def test_fidelity_from_the_card_or_the_manifest() -> None:
    text = fidelity_phrase("nats-tss@1")
    assert text is not None
    assert "hp-12 validation accuracy of one training seed drawn per query" in text
    assert "reported: hp-200 test accuracy averaged over training seeds" in text
    transfer = fidelity_phrase("nats-tss-transfer@1")
    assert (
        transfer is not None and "searched on CIFAR-10, reported on CIFAR-10, CIFAR-100" in transfer
    )
    recorded = {"protocols": {"cpu-x@2": {"epochs": 5, "report_hp": "200"}}}
    assert fidelity_phrase("cpu-x@2", recorded) == (
        "supernet trained 5 epochs; reported: hp-200 test accuracy of the selected architecture"
    )
    assert fidelity_phrase("hp12") is None


def test_parallelism_from_the_manifest_or_said_unknown() -> None:
    manifest = {"machine": {"cpu_count": 2}, "sweeps": [{"jobs": 2, "backend": "loky"}]}
    assert parallelism_phrase(manifest) == "2 runs at a time (loky) on 2 CPU cores"
    cells = {"machine": {"cpu_count": 16}, "sweeps": [{"jobs": 1, "device": "cuda"}]}
    assert parallelism_phrase(cells) == "1 cell at a time on cuda"
    assert "not recorded" in parallelism_phrase(None)
