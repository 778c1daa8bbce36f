"""Statistics on small matrices whose expected values are worked out by hand below."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from harness import stats
from harness.errors import ConfigError


def test_higher_is_better_declared_once_and_unknown_metric_suggests() -> None:
    assert stats.higher_is_better("test_acc") is True
    assert stats.higher_is_better("regret") is False
    assert stats.higher_is_better("rank") is False
    with pytest.raises(ConfigError, match="did you mean 'test_acc'"):
        stats.higher_is_better("test_ac")


def test_mean_std_by_hand() -> None:
    x = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 9.0]])
    mean, std = stats.mean_std(x)
    # column 0: mean 3, deviations -2, 0, 2 -> var = 8 / (3 - 1) = 4 -> std 2
    # column 1: mean 5, deviations -3, -1, 4 -> var = 26 / 2 = 13 -> std sqrt(13)
    np.testing.assert_allclose(mean, [3.0, 5.0])
    np.testing.assert_allclose(std, [2.0, math.sqrt(13.0)])
    mean1, std1 = stats.mean_std(x, axis=1)
    np.testing.assert_allclose(mean1, [1.5, 3.5, 7.0])
    # rows: [1, 2] and [3, 4] -> var 0.5 each; [5, 9] -> deviations -2, 2 -> var 8
    np.testing.assert_allclose(std1, [math.sqrt(0.5), math.sqrt(0.5), math.sqrt(8.0)])
    # one seed: the sample std is undefined, reported as NaN (never 0)
    _, std_single = stats.mean_std(np.array([[1.0, 2.0]]))
    assert np.isnan(std_single).all()


def test_iqm_of_one_to_eight() -> None:
    # 8 values, 25% trimmed each side drops {1, 2} and {7, 8}: mean(3, 4, 5, 6) = 4.5
    assert stats.iqm(np.arange(1, 9)) == pytest.approx(4.5)
    # over all entries of a matrix, regardless of its shape
    assert stats.iqm(np.arange(1, 9).reshape(2, 4)) == pytest.approx(4.5)
    # an outlier does not move it: mean(3, 4, 5, 6) still
    assert stats.iqm([1, 2, 3, 4, 5, 6, 7, 1000]) == pytest.approx(4.5)
    with pytest.raises(ConfigError):
        stats.iqm([])


def test_rank_data_ties_averaged() -> None:
    # higher better: the two 3s share ranks 1 and 2 -> 1.5; the 1 is third
    np.testing.assert_allclose(stats.rank_data([3, 1, 3]), [1.5, 3.0, 1.5])
    # lower better: 1 is first; the 3s share ranks 2 and 3 -> 2.5
    np.testing.assert_allclose(stats.rank_data([3, 1, 3], higher_is_better=False), [2.5, 1, 2.5])
    np.testing.assert_allclose(stats.rank_data([[1, 2], [2, 1]], axis=1), [[2, 1], [1, 2]])


def test_holm_by_hand() -> None:
    # sorted 0.01, 0.03, 0.04 scaled by 3, 2, 1: 0.03, 0.06, 0.04 -> running max 0.03, 0.06,
    # 0.06; put back in input order [0.01, 0.04, 0.03]:
    np.testing.assert_allclose(stats.holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])
    # 0.5 * 2 = 1.0, then max(1.0, 0.6) = 1.0: monotone and capped at one
    np.testing.assert_allclose(stats.holm([0.5, 0.6]), [1.0, 1.0])
    # 0.4 * 2 = 0.8, then max(0.8, 0.9 * 1) = 0.9
    np.testing.assert_allclose(stats.holm([0.9, 0.4]), [0.9, 0.8])
    # NaN stays NaN and does not count: m = 2 -> 0.01 * 2 = 0.02, max(0.02, 0.02 * 1) = 0.02
    out = stats.holm([np.nan, 0.02, 0.01])
    assert np.isnan(out[0])
    np.testing.assert_allclose(out[1:], [0.02, 0.02])


def test_probability_of_improvement_by_hand() -> None:
    # x = [1, 2, 3] vs y = [2, 2]: 1 loses twice; 2 ties twice (2 * 0.5 = 1); 3 wins twice
    # (2): (0 + 1 + 2) / (3 * 2) = 0.5
    assert stats.probability_of_improvement([1, 2, 3], [2, 2]) == pytest.approx(0.5)
    # task 0: x = [3, 4], y = [1, 2, 3]: 3 -> 2 wins + 1 tie = 2.5; 4 -> 3 wins; 5.5 / 6
    # task 1: x = [0, 0], y = [1, 1, 1]: no wins -> 0; average over tasks = 5.5 / 12
    x = np.array([[3.0, 0.0], [4.0, 0.0]])
    y = np.array([[1.0, 1.0], [2.0, 1.0], [3.0, 1.0]])
    assert stats.probability_of_improvement(x, y) == pytest.approx(5.5 / 12)
    # lower is better: task 0 only the tie counts (0.5 / 6); task 1 all six pairs (6 / 6)
    assert stats.probability_of_improvement(x, y, higher_is_better=False) == pytest.approx(
        (0.5 / 6 + 1.0) / 2
    )
    # per task this is Mann-Whitney U of x over n * m
    u = sps.mannwhitneyu(x[:, 0], y[:, 0]).statistic
    assert stats.probability_of_improvement(x[:, :1], y[:, :1]) == pytest.approx(u / 6)
    with pytest.raises(ConfigError, match="tasks"):
        stats.probability_of_improvement(x, y[:, :1])


def test_probability_of_improvement_ci_contains_point_and_is_seeded() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.normal(1.0, 1.0, (6, 3)), rng.normal(0.0, 1.0, (5, 3))
    a = stats.probability_of_improvement_ci(x, y, n_boot=300, rng=7)
    b = stats.probability_of_improvement_ci(x, y, n_boot=300, rng=7)
    assert (a.low, a.high) == (b.low, b.high)
    assert 0.0 <= a.low <= a.point <= a.high <= 1.0
    assert a.point > 0.5


def test_stratified_bootstrap_deterministic_and_covers_point() -> None:
    x = np.random.default_rng(0).normal(size=(10, 3))
    ci1 = stats.stratified_bootstrap_ci(x, stats.iqm, n_boot=500, rng=42)
    ci2 = stats.stratified_bootstrap_ci(x, stats.iqm, n_boot=500, rng=np.random.default_rng(42))
    ci3 = stats.stratified_bootstrap_ci(x, stats.iqm, n_boot=500, rng=43)
    assert isinstance(ci1, stats.BootstrapCI)
    assert isinstance(ci2, stats.BootstrapCI)
    assert isinstance(ci3, stats.BootstrapCI)
    assert (ci1.low, ci1.high) == (ci2.low, ci2.high)
    assert (ci1.low, ci1.high) != (ci3.low, ci3.high)
    assert ci1.low <= ci1.point <= ci1.high
    assert ci1.point == pytest.approx(stats.iqm(x))


def test_bootstrap_two_runs_spans_both_values() -> None:
    # runs [0, 1]: resampled means are 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4, so a 95%
    # percentile interval over 2000 draws is [0, 1]
    ci = stats.stratified_bootstrap_ci(np.array([0.0, 1.0]), np.mean, n_boot=2000, rng=0)
    assert isinstance(ci, stats.BootstrapCI)
    assert (ci.low, ci.point, ci.high) == (0.0, 0.5, 1.0)
    # constant scores: the interval collapses on the point
    const = stats.stratified_bootstrap_ci(np.full((4, 2), 3.0), np.mean, n_boot=50, rng=0)
    assert isinstance(const, stats.BootstrapCI)
    assert const.low == const.high == 3.0


def test_bootstrap_is_stratified_per_task() -> None:
    # rows [0, 0] and [1, 1]: resampling whole rows would keep both column means equal and the
    # difference at 0; resampling runs independently per task lets them differ.
    x = np.array([[0.0, 0.0], [1.0, 1.0]])

    def col_diff(a: np.ndarray) -> float:
        return float(a[:, 0].mean() - a[:, 1].mean())

    ci = stats.stratified_bootstrap_ci(x, col_diff, n_boot=1000, rng=1)
    assert isinstance(ci, stats.BootstrapCI)
    assert ci.low < 0.0 < ci.high


def test_bootstrap_dict_and_vector_statistic() -> None:
    scores = {"a": np.ones((3, 2)), "b": np.arange(6.0).reshape(3, 2)}
    out = stats.stratified_bootstrap_ci(scores, lambda a: a.mean(axis=0), n_boot=100, rng=0)
    assert isinstance(out, dict)
    assert set(out) == {"a", "b"}
    np.testing.assert_allclose(out["a"].point, [1.0, 1.0])
    np.testing.assert_allclose(out["b"].point, [2.0, 3.0])
    assert np.all(np.asarray(out["b"].low) <= np.asarray(out["b"].high))
    with pytest.raises(ConfigError, match="confidence"):
        stats.stratified_bootstrap_ci(scores, np.mean, n_boot=10, confidence=95, rng=0)
    with pytest.raises(ConfigError, match="shape"):
        stats.stratified_bootstrap_ci(np.ones((2, 2, 2)), np.mean, n_boot=10, rng=0)


def test_mann_whitney_exact_by_hand() -> None:
    # complete separation of 3 vs 3: U = 0; exact two-sided p = 2 / C(6, 3) = 2 / 20 = 0.1
    res = stats.mann_whitney([1, 2, 3], [4, 5, 6])
    assert res.statistic == 0.0
    assert res.p_value == pytest.approx(0.1)
    assert stats.mann_whitney([1, 1, 1], [1, 1, 1]).p_value == pytest.approx(1.0)


def test_wilcoxon_holm_against_control_by_hand() -> None:
    control = np.zeros(6)
    # a - control = 1..6, all positive: W- = 0, exact two-sided p = 2 / 2^6 = 0.03125
    a = np.arange(1.0, 7.0)
    # b - control = 1, -2, 3, 4, 5, 6: W- = 2; subsets of {1..6} with sum <= 2 are {}, {1},
    # {2} -> p = 2 * 3 / 64 = 0.09375
    b = np.array([1.0, -2.0, 3.0, 4.0, 5.0, 6.0])
    res = stats.wilcoxon_holm({"control": control, "a": a, "b": b}, control="control")
    by = {r.a: r for r in res}
    assert set(by) == {"a", "b"}
    assert by["a"].p_value == pytest.approx(0.03125)
    assert by["b"].p_value == pytest.approx(0.09375)
    assert by["b"].statistic == 2.0
    # Holm, m = 2: 0.03125 * 2 = 0.0625; max(0.0625, 0.09375 * 1) = 0.09375
    assert by["a"].p_adjusted == pytest.approx(0.0625)
    assert by["b"].p_adjusted == pytest.approx(0.09375)
    assert not by["a"].reject  # significant alone, not after correction
    assert by["a"].median_difference == pytest.approx(3.5)
    all_pairs = stats.wilcoxon_holm({"control": control, "a": a, "b": b})
    assert len(all_pairs) == 3
    with pytest.raises(ConfigError, match="did you mean 'control'"):
        stats.wilcoxon_holm({"control": control, "a": a}, control="contrl")


def test_wilcoxon_identical_samples_is_p_one() -> None:
    assert stats.wilcoxon([1, 2, 3], [1, 2, 3]).p_value == 1.0


def test_friedman_nemenyi_toy_by_hand() -> None:
    # blocks x methods (A, B, C), higher is better
    m = np.array([[0.90, 0.80, 0.70], [0.85, 0.90, 0.60], [0.95, 0.70, 0.80]])
    # ranks per block: (1, 2, 3), (2, 1, 3), (1, 3, 2) -> averages 4/3, 2, 8/3
    res = stats.friedman_nemenyi(m, higher_is_better=True)
    np.testing.assert_allclose(res.avg_ranks, [4 / 3, 2.0, 8 / 3])
    # chi2 = 12 N / (k (k+1)) * sum (Rbar - 2)^2 = 12 * 3 / 12 * (4/9 + 0 + 4/9) = 8/3
    assert res.statistic == pytest.approx(8 / 3)
    # chi-square with 2 dof: p = exp(-chi2 / 2) = exp(-4/3)
    assert res.p_value == pytest.approx(math.exp(-4 / 3))
    # Demsar (2006) table: q_0.05 for k = 3 is 2.343; CD = 2.343 * sqrt(3 * 4 / (6 * 3))
    assert res.q_alpha == pytest.approx(2.3437, abs=1e-4)
    assert res.critical_difference == pytest.approx(res.q_alpha * math.sqrt(2 / 3))
    assert res.critical_difference == pytest.approx(1.9136, abs=1e-4)
    assert (res.n_blocks, res.n_methods) == (3, 3)
    # lower is better reverses the ranks
    low = stats.friedman_nemenyi(m, higher_is_better=False)
    np.testing.assert_allclose(low.avg_ranks, [8 / 3, 2.0, 4 / 3])


def test_friedman_matches_scipy_with_ties() -> None:
    m = np.random.default_rng(5).integers(0, 4, size=(12, 4)).astype(float)
    res = stats.friedman_nemenyi(m, higher_is_better=True)
    ref = sps.friedmanchisquare(*m.T)
    assert res.statistic == pytest.approx(ref.statistic)
    assert res.p_value == pytest.approx(ref.pvalue)
    # Demsar (2006) table: q_0.05 for k = 10 is 3.164
    assert stats.nemenyi_q(10) == pytest.approx(3.164, abs=1e-3)
    with pytest.raises(ConfigError, match="complete"):
        stats.friedman_nemenyi(np.array([[1.0, np.nan]]), higher_is_better=True)


def test_average_rank_over_time_by_hand() -> None:
    # method 0: seed 0 -> [1, 3], seed 1 -> [1, 2]; method 1: seed 0 -> [2, 2], seed 1 -> [1, 1]
    curves = np.array([[[1, 3], [1, 2]], [[2, 2], [1, 1]]], dtype=float)
    # step 0: seed 0 ranks (2, 1), seed 1 tie (1.5, 1.5) -> means 1.75, 1.25
    # step 1: seed 0 ranks (1, 2), seed 1 ranks (1, 2) -> means 1, 2
    out = stats.average_rank_over_time(curves, higher_is_better=True)
    np.testing.assert_allclose(out, [[1.75, 1.0], [1.25, 2.0]])
    low = stats.average_rank_over_time(curves, higher_is_better=False)
    np.testing.assert_allclose(low, 3.0 - out)  # k + 1 - rank for two methods
    with pytest.raises(ConfigError, match="n_methods"):
        stats.average_rank_over_time(np.ones((2, 3)), higher_is_better=True)


def test_tests_say_their_direction_and_take_one_sided_alternatives() -> None:
    # a - b = 1..6 all positive: W+ = 21, W- = 0; one-sided exact p = 1 / 2^6
    a, b = np.arange(1.0, 7.0), np.zeros(6)
    assert stats.wilcoxon(a, b).direction == 1 and stats.wilcoxon(b, a).direction == -1
    assert stats.wilcoxon(a, b, alternative="greater").p_value == pytest.approx(1 / 64)
    assert stats.wilcoxon(a, b, alternative="less").p_value == pytest.approx(1.0)
    assert stats.wilcoxon(a, a).direction == 0
    # 3 vs 3 complete separation: U of x = 0 < 9 / 2 -> x tends to fall below y
    low = stats.mann_whitney([1, 2, 3], [4, 5, 6])
    assert low.direction == -1
    assert stats.mann_whitney([1, 2, 3], [4, 5, 6], alternative="less").p_value == pytest.approx(
        0.05
    )
    with pytest.raises(ConfigError, match="alternative"):
        stats.wilcoxon(a, b, alternative="bigger")  # type: ignore[arg-type]


def test_min_attainable_p_by_hand_and_against_scipy() -> None:
    # exact signed-rank test of n pairs: the most extreme of 2^n sign patterns
    assert stats.min_p_wilcoxon(5) == pytest.approx(2 / 32)  # 0.0625: n <= 5 never reaches 0.05
    assert stats.min_p_wilcoxon(6) == pytest.approx(2 / 64)
    assert stats.min_p_wilcoxon(6, "greater") == pytest.approx(1 / 64)
    assert stats.min_p_wilcoxon(0) == 1.0 and stats.min_p_wilcoxon(1) == 1.0
    for n in range(1, 12):  # all differences positive and distinct: scipy's exact p is the minimum
        d = np.arange(1.0, n + 1)
        for alt in ("two-sided", "greater"):
            p = sps.wilcoxon(d, np.zeros(n), alternative=alt, method="exact").pvalue
            assert stats.min_p_wilcoxon(n, alt) == pytest.approx(p)
    # complete separation of n vs m: 2 / C(n + m, n) two-sided
    assert stats.min_p_mann_whitney(3, 3) == pytest.approx(0.1)
    assert stats.min_p_mann_whitney(3, 3, "less") == pytest.approx(0.05)
    assert stats.min_p_mann_whitney(4, 2) == pytest.approx(2 / 15)
    # Holm over k tests: the smallest adjusted p is k times the smallest raw one
    assert stats.min_p_holm(2 / 64, 3) == pytest.approx(0.09375)  # 6 seeds, 3 methods: none
    assert stats.min_p_holm(0.5, 3) == 1.0
    with pytest.raises(ConfigError):
        stats.min_p_holm(0.1, 0)


def test_t_interval_by_hand() -> None:
    # 1..4: mean 2.5, sd sqrt(5 / 3), se = sd / 2; t_{0.975, 3} = 3.1824
    low, high = stats.t_interval([1.0, 2.0, 3.0, 4.0])
    half = 3.182446 * math.sqrt(5 / 3) / 2
    assert (low, high) == (pytest.approx(2.5 - half, abs=1e-5), pytest.approx(2.5 + half, abs=1e-5))
    assert all(math.isnan(v) for v in stats.t_interval([1.0]))


def test_paired_t_sample_size_matches_published_tables() -> None:
    # one-sided paired t at 0.05, power 0.8 (G*Power / Cohen): d = 0.2 -> 156, 0.5 -> 27,
    # 0.8 -> 12, 1.0 -> 8
    for d, n in ((0.2, 156), (0.5, 27), (0.8, 12), (1.0, 8), (-0.5, 27)):
        assert stats.paired_t_sample_size(d) == n
    # the returned n is the first with enough power: n - 1 has less
    n = stats.paired_t_sample_size(0.5)
    assert n is not None

    def power(k: int) -> float:
        return float(sps.nct.sf(sps.t.ppf(0.95, k - 1), k - 1, 0.5 * math.sqrt(k)))

    assert power(n) >= 0.8 > power(n - 1)
    assert stats.paired_t_sample_size(0.0) is None
    assert stats.paired_t_sample_size(float("nan")) is None
    assert stats.paired_t_sample_size(1e-4, max_n=1000) is None


def test_probability_of_improvement_by_ranks_equals_all_pairs() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 5, (40, 3)).astype(float), rng.integers(0, 5, (30, 3)).astype(float)
    diff = x[:, None, :] - y[None, :, :]
    brute = ((diff > 0) + 0.5 * (diff == 0)).mean(axis=(0, 1)).mean()  # ties count one half
    assert stats.probability_of_improvement(x, y) == pytest.approx(brute)
