"""Statistics helpers agree with scipy and with textbook sample sizes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from scipy import stats

from srblock.analysis.stats import (
    holm_adjust,
    paired_ttest,
    required_seeds,
    seed_effect,
    seed_noise,
    summarize,
    welch_power,
    welch_ttest,
)


def test_summarize_matches_numpy_and_t_interval():
    x = [94.1, 94.5, 94.3, 94.0]
    s = summarize(x)
    assert s.n == 4
    assert s.mean == pytest.approx(np.mean(x))
    assert s.std == pytest.approx(np.std(x, ddof=1))
    lo, hi = stats.t.interval(0.95, df=3, loc=np.mean(x), scale=stats.sem(x))
    assert (s.ci_low, s.ci_high) == pytest.approx((lo, hi))


def test_summarize_single_value_has_nan_spread():
    s = summarize([1.0])
    assert s.mean == 1.0 and math.isnan(s.std) and math.isnan(s.ci_low)


def test_welch_ttest_equals_scipy_unequal_variance():
    a, b = [90.1, 90.4, 89.8], [90.9, 91.5, 90.2, 91.0]
    w = welch_ttest(a, b)
    ref = stats.ttest_ind(b, a, equal_var=False)
    assert w.delta == pytest.approx(np.mean(b) - np.mean(a))
    assert w.t == pytest.approx(ref.statistic)
    assert w.p == pytest.approx(ref.pvalue)
    half = stats.t.ppf(0.975, w.df) * np.sqrt(np.var(a, ddof=1) / 3 + np.var(b, ddof=1) / 4)  # Welch interval
    assert (w.ci_low, w.ci_high) == pytest.approx((w.delta - half, w.delta + half))


def test_welch_ttest_too_few_values_gives_nan_p():
    assert math.isnan(welch_ttest([1.0], [2.0, 3.0]).p)


@pytest.mark.parametrize(("d", "n"), [(1.0, 17), (0.5, 64), (0.8, 26)])
def test_required_seeds_matches_textbook_two_sample_sizes(d, n):
    # two-sided alpha 0.05, power 0.8: 17 / 64 / 26 per group (Cohen 1988; G*Power)
    assert required_seeds(effect=d, std=1.0) == n


def test_required_seeds_at_thousands_of_seeds_follows_the_normal_approximation():
    """scipy's noncentral t gives NaN at large df; the power must not, and n matches 2(z_a/2 + z_b)^2 s^2 / d^2."""
    n = required_seeds(0.16, 3.7461)
    normal = 2 * (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) ** 2 * 3.7461**2 / 0.16**2
    assert abs(n - normal) < 0.01 * normal and 8_000 < n < 9_000
    assert not math.isnan(welch_power(0.16, 3.7461, 20_000))


def test_power_grows_with_seeds_and_hits_alpha_at_zero_effect():
    assert welch_power(0.0, 1.0, 10) == pytest.approx(0.05, abs=1e-6)
    assert welch_power(0.5, 1.0, 10) < welch_power(0.5, 1.0, 40)


def test_paired_ttest_equals_scipy_over_common_seeds():
    a = {0: 93.9, 1: 94.6, 2: 94.2, 3: 94.8}
    b = {0: 94.1, 1: 94.7, 2: 94.5, 4: 99.0}  # seed 3 and 4 have no partner and do not count
    r = paired_ttest(a, b)
    ref = stats.ttest_rel([94.1, 94.7, 94.5], [93.9, 94.6, 94.2])
    assert r.n == 3
    assert r.delta == pytest.approx(0.2)
    assert r.t == pytest.approx(ref.statistic) and r.p == pytest.approx(ref.pvalue)
    half = stats.t.ppf(0.975, 2) * np.std([0.2, 0.1, 0.3], ddof=1) / np.sqrt(3)  # t-interval of the differences
    assert (r.ci_low, r.ci_high) == pytest.approx((0.2 - half, 0.2 + half))


def test_paired_ttest_needs_two_pairs():
    assert math.isnan(paired_ttest({0: 1.0}, {0: 2.0}).p)
    assert paired_ttest({0: 1.0}, {1: 2.0}).n == 0


def test_sign_test_counts_wins_over_common_seeds_and_drops_ties():
    from srblock.analysis.stats import sign_test

    a = {0: 1.0, 1: 1.0, 2: 1.0, 3: 1.0, 4: 1.0, 9: 5.0}
    b = {0: 2.0, 1: 2.0, 2: 2.0, 3: 0.5, 4: 1.0, 8: 9.0}  # seed 4 ties, 8 and 9 have no partner
    r = sign_test(a, b)
    assert (r.n, r.wins) == (4, 3)
    assert r.p == pytest.approx(stats.binomtest(3, 4, 0.5).pvalue)
    assert sign_test({0: 1.0}, {1: 2.0}).n == 0 and math.isnan(sign_test({0: 1.0}, {1: 2.0}).p)


def test_seed_noise_explains_independent_flips_and_leaves_a_whole_run_shift_to_the_rest():
    rng = np.random.default_rng(0)
    rate = rng.beta(0.6, 0.3, size=5000)  # most examples easy, some hard: like a trained classifier's test set
    flips = rng.random((300, rate.size)) < rate  # 300 runs, every example flips on its own
    r = seed_noise(flips)
    assert (r.runs, r.examples) == (300, 5000)
    assert r.flip_std == pytest.approx(100 * math.sqrt((rate * (1 - rate)).sum()) / rate.size, rel=0.05)
    assert r.std == pytest.approx(r.flip_std, rel=0.15) and r.rest_std < 0.6 * r.flip_std
    assert r.flip_std == pytest.approx(math.sqrt(r.disagreement / 100 / (2 * r.examples)) * 100)

    shift = rng.normal(0, 0.03, size=(300, 1))  # each run also a few points better or worse on every example
    shifted = seed_noise(rng.random((300, rate.size)) < np.clip(rate + shift, 0, 1))
    assert shifted.rest_std > 2 * shifted.flip_std
    assert shifted.std == pytest.approx(math.hypot(shifted.flip_std, shifted.rest_std))


def test_seed_noise_with_identical_runs_has_no_spread_and_rejects_bad_input():
    same = seed_noise([[True, False, True]] * 4)
    assert same.std == same.flip_std == same.rest_std == same.disagreement == 0.0
    with pytest.raises(ValueError, match="at least 2 runs, got shape \\(1, 3\\)"):
        seed_noise([[1, 0, 1]])
    with pytest.raises(ValueError, match="0/1"):
        seed_noise([[1, 0.5], [1, 0]])


def test_seed_effect_is_the_two_way_anova_of_arms_by_seeds():
    r = seed_effect([[1.0, 2.0], [3.0, 5.0]])  # by hand: MS seed 2.25, MS residual 0.25
    assert (r.arms, r.seeds) == (2, 2)
    assert r.f == pytest.approx(9.0) and r.p == pytest.approx(stats.f.sf(9.0, 1, 1))
    assert r.share == pytest.approx(1.0 / 1.25)  # seed component (2.25 - 0.25) / 2 over itself + 0.25

    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.5, size=(4, 40))
    assert seed_effect(noise).p > 0.01 and seed_effect(noise).share < 0.2  # nothing shared by a seed
    shared = noise + rng.normal(0, 1.0, size=(1, 40))  # every arm of seed k moves together
    assert seed_effect(shared).p < 1e-6 and 0.6 < seed_effect(shared).share < 0.95  # true share 1 / 1.25
    with pytest.raises(ValueError, match=r"at least 2 of each, got shape \(1, 3\)"):
        seed_effect([[1.0, 2.0, 3.0]])


def _holm_rejects(p_values: list[float], alpha: float) -> set[int]:
    """Holm's procedure as its paper states it: walk the sorted p-values, reject while p_(k) <= alpha / (m - k)."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    rejected: set[int] = set()
    for k, i in enumerate(order):
        if p_values[i] > alpha / (len(p_values) - k):
            break
        rejected.add(i)
    return rejected


@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=12), st.sampled_from([0.01, 0.05, 0.1]))
def test_holm_adjusted_p_values_reject_what_holms_procedure_rejects(p_values, alpha):
    # a p-value on a threshold alpha / j would be decided by rounding, not by the procedure
    assume(all(abs(p - alpha / j) > 1e-12 for p in p_values for j in range(1, len(p_values) + 1)))
    adjusted = holm_adjust(p_values)
    assert {i for i, q in enumerate(adjusted) if q <= alpha} == _holm_rejects(p_values, alpha)
    assert all(p <= q <= 1.0 for p, q in zip(p_values, adjusted, strict=True))
    assert all(
        adjusted[i] <= adjusted[j]
        for i in range(len(p_values))
        for j in range(len(p_values))
        if p_values[i] <= p_values[j]
    )


def test_holm_leaves_nan_out_of_the_family():
    assert holm_adjust([0.02, float("nan"), 0.01])[::2] == pytest.approx([0.02, 0.02])
    assert math.isnan(holm_adjust([0.02, float("nan"), 0.01])[1])
    assert holm_adjust([]) == []
