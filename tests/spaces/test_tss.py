"""Topology space: official order, encodings, isomorphism, neighbourhood, sampling, errors."""

from __future__ import annotations

import bz2
import dataclasses
import pickle
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.errors import ArchitectureError
from harness.spaces import Space, get_space, space_names, tss

indices = st.integers(0, tss.NUM_ARCHS - 1)
op_tuples = st.tuples(*[st.integers(0, tss.NUM_OPS - 1)] * tss.NUM_EDGES)
quick = settings(deadline=None, max_examples=200)

INDEX0 = (
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|"
    "+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
)


@pytest.fixture(scope="module")
def official_meta(tss_samples: Path) -> dict:
    with bz2.open(tss_samples / "meta.pickle.pbz2", "rb") as f:
        return pickle.load(f)


def test_order_matches_the_official_meta_file(official_meta: dict) -> None:
    assert official_meta["total_archs"] == tss.NUM_ARCHS
    assert list(tss.all_strings()) == official_meta["meta_archs"]
    assert tss.index_to_str(0) == INDEX0


def test_every_index_round_trips_through_string_and_ops() -> None:
    ops = tss.all_ops()
    assert ops.shape == (15625, 6) and ops.dtype == np.int8 and not ops.flags.writeable
    assert len(set(tss.all_strings())) == tss.NUM_ARCHS
    for i, s in enumerate(tss.all_strings()):
        assert tss.str_to_index(s) == i
        assert tss.ops_to_index(ops[i]) == i
        assert tss.ops_to_str(ops[i]) == s
    # the 15,625 rows are exactly the product of the ops over the edges
    codes = ops.astype(np.int64) @ (5 ** np.arange(5, -1, -1))
    assert np.array_equal(np.sort(codes), np.arange(tss.NUM_ARCHS))


def test_constants() -> None:
    assert tss.OPS == ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
    assert tss.EDGES == ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
    assert (tss.NUM_EDGES, tss.NUM_OPS, tss.NUM_ARCHS) == (6, 5, 15625)
    assert set(tss.PARAMETRIC_OPS) == {"nor_conv_1x1", "nor_conv_3x3"}


@quick
@given(indices)
def test_encodings_round_trip(i: int) -> None:
    s = tss.index_to_str(i)
    ops = tss.index_to_ops(i)
    assert tss.str_to_ops(s) == ops
    assert tss.ops_to_str(ops) == s
    assert tss.ops_to_index(list(ops)) == i
    assert tss.parse(s) == tss.parse(np.int64(i)) == i
    m = tss.to_matrix(s)
    assert m.shape == (4, 4) and m.dtype == np.int8
    assert tuple(int(m[dst, src]) for src, dst in tss.EDGES) == ops
    assert (m[np.triu_indices(4)] == -1).all()
    for (src, dst), op in zip(tss.EDGES, ops, strict=True):
        assert f"{tss.OPS[op]}~{src}" in s.split("+")[dst - 1]


@quick
@given(op_tuples)
def test_ops_round_trip(ops: tuple[int, ...]) -> None:
    i = tss.ops_to_index(ops)
    assert tss.index_to_ops(i) == ops
    assert tss.str_to_ops(tss.ops_to_str(ops)) == ops


# --- isomorphism ---------------------------------------------------------------------------


def test_canonical_is_nats_bench_unique_str_and_gives_6466_classes() -> None:
    from nats_bench.genotype_utils import topology_str2structure

    reference = [
        topology_str2structure(s).to_unique_str(consider_zero=True) for s in tss.all_strings()
    ]
    mine = [tss.canonical(i) for i in range(tss.NUM_ARCHS)]
    assert mine == reference  # same key, hence the same partition
    classes = tss.iso_classes()
    assert classes.shape == (15625,) and classes.dtype == np.int32 and not classes.flags.writeable
    assert len(set(mine)) == int(classes.max()) + 1 == 6466
    first: dict[str, int] = {}
    for key, cls in zip(mine, classes.tolist(), strict=True):
        assert first.setdefault(key, cls) == cls  # one id per key ...
    assert len(set(first.values())) == 6466  # ... and one key per id
    assert classes[0] == 0 and tss.iso_classes() is classes


@quick
@given(op_tuples, st.integers(0, 4), st.integers(0, 4))
def test_canonical_ignores_edges_out_of_a_dead_node(
    ops: tuple[int, ...], op12: int, op13: int
) -> None:
    # With 0->1 'none', node 1 is zero, so what edges 1->2 and 1->3 carry cannot matter.
    dead = (0, ops[1], ops[2], ops[3], ops[4], ops[5])
    changed = (0, ops[1], op12, ops[3], op13, ops[5])
    assert tss.canonical(tss.ops_to_index(dead)) == tss.canonical(tss.ops_to_str(changed))


@quick
@given(op_tuples)
def test_canonical_invariant_when_node1_copies_the_input(ops: tuple[int, ...]) -> None:
    # With 0->1 a skip, node 1 equals node 0, so the edges 0->k and 1->k can trade ops.
    o = (1, *ops[1:])
    swapped = (1, o[2], o[1], o[4], o[3], o[5])
    assert tss.canonical(tss.ops_to_index(o)) == tss.canonical(tss.ops_to_index(swapped))
    classes = tss.iso_classes()
    assert classes[tss.ops_to_index(o)] == classes[tss.ops_to_index(swapped)]


def test_canonical_separates_different_functions() -> None:
    conv = "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|skip_connect~1|none~2|"
    pool = "|avg_pool_3x3~0|+|none~0|none~1|+|none~0|skip_connect~1|none~2|"
    direct = "|none~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|"
    assert tss.canonical(conv) == "#+#+(0)@nor_conv_3x3"
    assert tss.canonical(pool) == "#+#+(0)@avg_pool_3x3"
    assert tss.canonical(direct) == "#+#+(0)@nor_conv_3x3"


# --- neighbourhood and randomness ----------------------------------------------------------


@quick
@given(indices)
def test_neighbours_are_the_24_single_edge_changes(i: int) -> None:
    ops = np.array(tss.index_to_ops(i))
    nbrs = tss.neighbours(i)
    assert len(nbrs) == 24 and len(set(nbrs)) == 24 and nbrs == sorted(nbrs)
    for j in nbrs:
        assert (tss.all_ops()[j] != ops).sum() == 1
        assert i in tss.neighbours(j)


@quick
@given(indices, st.integers(0, 2**32 - 1))
def test_mutate_changes_exactly_one_edge(i: int, seed: int) -> None:
    j = tss.mutate(i, np.random.default_rng(seed))
    assert (tss.all_ops()[j] != tss.all_ops()[i]).sum() == 1
    assert j == tss.mutate(tss.index_to_str(i), np.random.default_rng(seed))


def test_mutate_reaches_every_neighbour() -> None:
    rng = np.random.default_rng(0)
    hits = {tss.mutate(123, rng) for _ in range(2000)}
    assert hits == set(tss.neighbours(123))


def test_sample_uses_only_the_given_generator() -> None:
    a = tss.sample(np.random.default_rng(7), size=50)
    assert np.array_equal(a, tss.sample(np.random.default_rng(7), size=50))
    assert a.dtype == np.int64 and a.shape == (50,)
    assert not np.array_equal(a, tss.sample(np.random.default_rng(8), size=50))
    assert ((a >= 0) & (a < tss.NUM_ARCHS)).all()
    one = tss.sample(np.random.default_rng(7))
    assert isinstance(one, int) and one == tss.sample(np.random.default_rng(7))
    assert tss.sample(np.random.default_rng(7), size=(2, 3)).shape == (2, 3)


def test_randomness_leaves_the_global_generators_alone() -> None:
    # the legacy global generators are seeded here only to check that nothing draws from them
    np.random.seed(1)  # noqa: NPY002
    random.seed(1)
    expected = (np.random.random(), random.random())  # noqa: NPY002
    np.random.seed(1)  # noqa: NPY002
    random.seed(1)
    rng = np.random.default_rng(0)
    tss.sample(rng, size=10)
    tss.mutate(tss.sample(rng), rng)
    assert (np.random.random(), random.random()) == expected  # noqa: NPY002


# --- errors --------------------------------------------------------------------------------

GOOD = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            GOOD.replace("avg_pool_3x3", "avg_pool"),
            "unknown tss op 'avg_pool' (did you mean 'avg_pool_3x3'?)",
        ),
        (GOOD.replace("none~2", "conv~2"), "unknown tss op 'conv'"),
        ("nor_conv_3x3", "found 1 node group(s)"),
        (GOOD.replace("|+|", "|", 1), "found 2 node group(s)"),
        (GOOD.replace("avg_pool_3x3~1", "avg_pool_3x3~0"), "should be 'op~1'"),
        (GOOD.replace("~1|+|skip", "~1|+||skip"), "node 3 needs 3 input(s), found 4"),
        (GOOD[1:], "must start and end with '|'"),
        (GOOD + " ", "must start and end with '|'"),
        ("", "found 1 node group(s)"),
    ],
)
def test_bad_strings_say_what_is_expected(text: str, expected: str) -> None:
    with pytest.raises(ArchitectureError, match="expected") as info:
        tss.parse(text)
    assert expected in str(info.value)
    if "unknown" not in expected:
        assert tss.FORMAT in str(info.value)


@pytest.mark.parametrize("bad", [-1, 15625, np.int64(10**6), True, 3.0, None, b"x"])
def test_bad_indices(bad: object) -> None:
    with pytest.raises(ArchitectureError, match=r"tss (index|string)"):
        tss.parse(bad)  # type: ignore[arg-type]
    with pytest.raises(ArchitectureError):
        tss.index_to_str(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("ops", [(0,) * 5, (0,) * 7, (0, 0, 0, 0, 0, 5), (-1, 0, 0, 0, 0, 0)])
def test_bad_op_tuples(ops: tuple[int, ...]) -> None:
    for fn in (tss.ops_to_index, tss.ops_to_str):
        with pytest.raises(ArchitectureError, match=r"expected 6 op ids in 0\.\.4"):
            fn(ops)


def test_tables_are_built_quickly_in_a_fresh_process() -> None:
    code = (
        "import time, harness.spaces.tss as t; s = time.perf_counter(); t.all_strings(); "
        "print(time.perf_counter() - s)"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    seconds = float(run.stdout)
    assert seconds < 0.5  # about 15 ms on a laptop core; the bound only catches regressions
    assert tss.all_strings() is tss.all_strings()


# --- the generic Space description ---------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "n", "choices"), [("tss", 15625, (5,) * 6), ("sss", 32768, (8,) * 5)]
)
def test_space_descriptions(name: str, n: int, choices: tuple[int, ...]) -> None:
    space = get_space(name)
    assert isinstance(space, Space) and space.name == name
    assert space.num_archs == n and space.choices == choices and space.num_positions == len(choices)
    table = space.all_choices()
    assert table.shape == (n, len(choices))
    assert (table >= 0).all() and (table < np.array(choices)).all()
    assert len({tuple(r) for r in table.tolist()}) == n
    rng = np.random.default_rng(3)
    for i in [0, n - 1, *space.sample(rng, size=20).tolist()]:
        assert space.index_to_choices(i) == tuple(table[i])
        assert space.choices_to_index(table[i]) == i
        assert space.str_to_index(space.index_to_str(i)) == space.parse(space.index_to_str(i)) == i
        j = space.mutate(i, rng)
        assert j in space.neighbours(i) and (table[j] != table[i]).sum() == 1
        assert space.canonical(i) == space.canonical(space.index_to_str(i))
    assert space.iso_classes().shape == (n,)
    with pytest.raises(dataclasses.FrozenInstanceError):
        space.num_archs = 3  # type: ignore[misc]


def test_unknown_space_name() -> None:
    assert space_names() == ("tss", "sss")
    with pytest.raises(ArchitectureError, match=r"did you mean 'tss'.*expected one of: tss, sss"):
        get_space("tsss")
    with pytest.raises(ArchitectureError, match="unknown search space"):
        get_space("topology")
