"""Statistics for seed-repeated experiments: mean ± std, confidence intervals, Welch's t-test and power.

The paper reports mean ± std over 4-5 seeds and runs no significance test (PAPER.md §4); these helpers answer
"is the difference real?" and "how many seeds would it take to see it?" for any two sets of per-seed numbers.

>>> s = summarize([94.1, 94.5, 94.3])
>>> round(s.mean, 2), round(s.std, 2), s.n
(94.3, 0.2, 3)
>>> required_seeds(effect=1.0, std=1.0)  # Cohen's d = 1, alpha 0.05 two-sided, power 0.8
17
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .._extras import requires_extra

with requires_extra("analysis", "the statistics of srblock.analysis.stats (t-tests, confidence intervals)"):
    from scipy import stats as _st

__all__ = [
    "SCREEN_SEEDS",
    "PairedResult",
    "SeedEffect",
    "SeedNoise",
    "SignResult",
    "Summary",
    "TrendResult",
    "WelchResult",
    "arm_marks",
    "format_interval",
    "format_number",
    "format_p",
    "format_paired",
    "format_sign",
    "holm_adjust",
    "paired_trend",
    "paired_ttest",
    "required_seeds",
    "seed_effect",
    "seed_noise",
    "sign_test",
    "summarize",
    "welch_power",
    "welch_ttest",
]


#: A comparison over this many paired seeds or fewer is a screen: its row keeps Δ and the intervals (wide, and honest
#: about it) but no p-values or seed counts, which a reader would take as evidence that three runs cannot give. One
#: rule for the sweep tables, the cross-dataset report and the robustness table.
SCREEN_SEEDS = 3


@dataclass(frozen=True)
class Summary:
    """Mean, sample std (ddof=1), standard error and a t-based confidence interval of the mean."""

    n: int
    mean: float
    std: float
    sem: float
    ci_low: float
    ci_high: float
    confidence: float = 0.95


@dataclass(frozen=True)
class WelchResult:
    """Two-sided Welch t-test of ``mean(b) - mean(a)`` (``delta``): statistic, degrees of freedom, p and the 95 % CI
    of ``delta`` (``ci_low``, ``ci_high``)."""

    delta: float
    t: float
    df: float
    p: float
    ci_low: float = float("nan")
    ci_high: float = float("nan")


def summarize(values: Sequence[float], confidence: float = 0.95) -> Summary:
    """Summary of per-seed values; std, sem and the interval are NaN for fewer than two values."""
    x = np.asarray(list(values), dtype=float)
    n = int(x.size)
    if n == 0:
        nan = float("nan")
        return Summary(0, nan, nan, nan, nan, nan, confidence)
    mean = float(x.mean())
    if n < 2:
        nan = float("nan")
        return Summary(n, mean, nan, nan, nan, nan, confidence)
    std = float(x.std(ddof=1))
    sem = std / math.sqrt(n)
    half = float(_st.t.ppf(0.5 + confidence / 2, df=n - 1)) * sem
    return Summary(n, mean, std, sem, mean - half, mean + half, confidence)


def _welch_df(var_a: float, n_a: int, var_b: float, n_b: int) -> float:
    """Welch-Satterthwaite degrees of freedom."""
    qa, qb = var_a / n_a, var_b / n_b
    denom = qa**2 / (n_a - 1) + qb**2 / (n_b - 1)
    return (qa + qb) ** 2 / denom if denom > 0 else float(n_a + n_b - 2)


def welch_ttest(a: Sequence[float], b: Sequence[float]) -> WelchResult:
    """Welch's unequal-variance t-test of b against a via ``scipy.stats.ttest_ind(b, a, equal_var=False)``.

    ``delta`` is ``mean(b) - mean(a)`` (positive: b is better on a higher-is-better metric). With fewer than two
    values on either side, or zero variance on both, t and p are NaN.
    """
    xa = np.asarray(list(a), dtype=float)
    xb = np.asarray(list(b), dtype=float)
    nan = float("nan")
    if xa.size == 0 or xb.size == 0:
        return WelchResult(nan, nan, nan, nan)
    delta = float(xb.mean() - xa.mean())
    if xa.size < 2 or xb.size < 2:
        return WelchResult(delta, nan, nan, nan)
    va, vb = float(xa.var(ddof=1)), float(xb.var(ddof=1))
    if va == 0 and vb == 0:
        return WelchResult(delta, nan, nan, nan)
    res = _st.ttest_ind(xb, xa, equal_var=False)
    ci = res.confidence_interval(0.95)
    df = _welch_df(va, xa.size, vb, xb.size)
    return WelchResult(delta, float(res.statistic), df, float(res.pvalue), float(ci.low), float(ci.high))


@dataclass(frozen=True)
class PairedResult:
    """Two-sided paired t-test over the keys (seeds) both sides share: mean and std of ``b[k] - a[k]``, t, p and the
    95 % t-interval of the mean difference (``ci_low``, ``ci_high``)."""

    n: int
    delta: float
    std: float
    t: float
    p: float
    ci_low: float = float("nan")
    ci_high: float = float("nan")


def paired_ttest(a: Mapping[object, float], b: Mapping[object, float]) -> PairedResult:
    """Paired t-test of b against a over their common keys, via ``scipy.stats.ttest_rel(b, a)``.

    In a sweep, seed k of two arms shares the train/val split, the data order, the augmentation and the initial
    weights of every layer the arms have in common, so the per-seed difference removes that share of the noise.
    With fewer than two common keys, or identical differences, t and p are NaN.

    >>> r = paired_ttest({0: 90.0, 1: 92.0, 2: 91.0}, {0: 90.5, 1: 92.4, 2: 91.6})
    >>> round(r.delta, 2), r.n, r.p < 0.05
    (0.5, 3, True)
    """
    keys = sorted(set(a) & set(b), key=str)
    diffs = np.asarray([b[k] - a[k] for k in keys], dtype=float)
    nan = float("nan")
    if diffs.size == 0:
        return PairedResult(0, nan, nan, nan, nan)
    n, delta = int(diffs.size), float(diffs.mean())
    sd = float(diffs.std(ddof=1)) if n > 1 else nan
    if n < 2 or sd == 0:
        return PairedResult(n, delta, sd, nan, nan)
    res = _st.ttest_rel([b[k] for k in keys], [a[k] for k in keys])
    ci = res.confidence_interval(0.95)
    return PairedResult(n, delta, sd, float(res.statistic), float(res.pvalue), float(ci.low), float(ci.high))


@dataclass(frozen=True)
class SignResult:
    """Two-sided exact sign test over the common keys: ``wins`` of ``n`` non-tied pairs have ``b > a``."""

    n: int
    wins: int
    p: float


def sign_test(a: Mapping[object, float], b: Mapping[object, float]) -> SignResult:
    """Exact two-sided sign test of b against a over their common keys (ties dropped), ``scipy.stats.binomtest``.

    It assumes nothing about the spread of the differences, so it checks a paired t-test whose p rests on a
    small sample standard deviation: 4 wins of 4 can never give p below 0.125.

    >>> r = sign_test({0: 1.0, 1: 2.0, 2: 3.0, 3: 4.0}, {0: 0.9, 1: 1.9, 2: 2.9, 3: 3.9})
    >>> r.wins, r.n, r.p
    (0, 4, 0.125)
    """
    diffs = [b[k] - a[k] for k in set(a) & set(b) if b[k] != a[k]]
    wins = sum(d > 0 for d in diffs)
    p = float(_st.binomtest(wins, len(diffs), 0.5).pvalue) if diffs else float("nan")
    return SignResult(len(diffs), wins, p)


@dataclass(frozen=True)
class TrendResult:
    """How a metric moves along an ordered factor (placement depth, log2 of the memory count), seed by seed.

    ``n`` seeds ran every level. Per seed, the least-squares slope of the metric on the levels' ``x``; over the
    seeds, the mean slope (``slope``, per unit of x), its std, 95 % t-interval and two-sided one-sample t-test
    against 0 (``p``), and the sign test of the slopes (``sign``: wins = seeds whose slope is positive). ``friedman_p``
    asks the wider question whether the levels differ at all, in any pattern (Friedman's test over the seeds as
    blocks; NaN with fewer than 3 levels or 2 seeds)."""

    n: int
    slope: float
    std: float
    ci_low: float
    ci_high: float
    p: float
    sign: SignResult
    friedman_p: float


def paired_trend(levels: Mapping[float, Mapping[object, float]]) -> TrendResult:
    """The per-seed linear trend of a metric over ordered levels, ``{x: {seed: value}}``, tested across seeds.

    Seed k of every level shares the split, data order and initial weights of the common layers, so each seed gives
    one slope and seed-to-seed noise common to its runs drops out, as in a paired test; a level's missing seed
    drops that seed. With fewer than two levels this is a ``ValueError``.

    >>> depth = {1: {0: 90.0, 1: 91.0, 2: 90.4}, 2: {0: 90.5, 1: 91.4, 2: 91.0}, 3: {0: 91.1, 1: 91.9, 2: 91.4}}
    >>> r = paired_trend(depth)
    >>> r.n, round(r.slope, 2), r.p < 0.05, r.sign.wins
    (3, 0.5, True, 3)
    """
    if len(levels) < 2:
        raise ValueError(f"a trend needs at least 2 levels, got {len(levels)}: {sorted(levels)}")
    order = sorted(levels)
    xs = np.asarray(order, dtype=float)
    seeds = sorted(set.intersection(*(set(levels[x]) for x in order)), key=str)
    y = np.asarray([[levels[x][seed] for x in order] for seed in seeds], dtype=float).reshape(len(seeds), len(xs))
    dx = xs - xs.mean()
    # rounded to 9 decimals: a seed whose levels are equal has slope 0, not the 1e-17 left by subtracting its mean
    slopes = np.round((y - y.mean(axis=1, keepdims=True)) @ dx / float(dx @ dx), 9)
    nan = float("nan")
    summary = summarize(slopes.tolist())
    p = nan
    if summary.n >= 2 and summary.std > 0:
        p = float(_st.ttest_1samp(slopes, 0.0).pvalue)
    sign = sign_test(dict.fromkeys(seeds, 0.0), dict(zip(seeds, slopes.tolist(), strict=True)))
    friedman = nan
    if len(xs) >= 3 and len(seeds) >= 2 and np.ptp(y, axis=1).any():
        friedman = float(_st.friedmanchisquare(*y.T).pvalue)
    return TrendResult(len(seeds), summary.mean, summary.std, summary.ci_low, summary.ci_high, p, sign, friedman)


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of a family of p-values (NaN stays NaN and is not counted in the family).

    The k-th smallest of m p-values becomes ``max_{j<=k} min(1, (m - j + 1) p_(j))``: comparing a p-value adjusted so
    with α keeps the chance of any false positive in the family at most α, whatever the tests' dependence (a sweep's
    arms share their baseline). Written here because scipy adjusts only for the false discovery rate
    (``scipy.stats.false_discovery_control``) and statsmodels, which has it, is not a dependency.

    >>> holm_adjust([0.01, 0.04, 0.03, 0.005])
    [0.03, 0.06, 0.06, 0.02]
    """
    finite = sorted((p, i) for i, p in enumerate(p_values) if not math.isnan(p))
    adjusted = [float("nan")] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(finite):
        running = max(running, min(1.0, (len(finite) - rank) * p))
        adjusted[i] = running
    return adjusted


def welch_power(
    effect: float,
    std_a: float,
    n_a: int,
    std_b: float | None = None,
    n_b: int | None = None,
    alpha: float = 0.05,
) -> float:
    """Power of the two-sided Welch t-test to detect a true mean difference ``effect`` (noncentral t).

    ``std_b``/``n_b`` default to ``std_a``/``n_a`` (equal arms).

    >>> round(welch_power(1.0, 1.0, 17), 2)
    0.81
    """
    std_b = std_a if std_b is None else std_b
    n_b = n_a if n_b is None else n_b
    if n_a < 2 or n_b < 2:
        raise ValueError(f"power needs at least 2 values per arm, got n_a={n_a}, n_b={n_b}")
    if not (std_a > 0 and std_b > 0):
        raise ValueError(f"power needs positive standard deviations, got std_a={std_a}, std_b={std_b}")
    va, vb = std_a**2, std_b**2
    se = math.sqrt(va / n_a + vb / n_b)
    df = _welch_df(va, n_a, vb, n_b)
    ncp = abs(effect) / se
    crit = float(_st.t.ppf(1 - alpha / 2, df))
    power = float(_st.nct.sf(crit, df, ncp) + _st.nct.cdf(-crit, df, ncp))
    if math.isnan(power):
        # scipy's noncentral t returns NaN for large df (thousands of seeds), where it equals the normal law anyway.
        power = float(_st.norm.sf(crit - ncp) + _st.norm.cdf(-crit - ncp))
    return power


def required_seeds(
    effect: float,
    std: float,
    alpha: float = 0.05,
    power: float = 0.8,
    std_b: float | None = None,
    max_n: int = 1_000_000,
) -> int:
    """Smallest number of seeds per arm for which the two-sided Welch test reaches ``power`` at ``alpha``.

    ``effect`` is the true difference of means to detect, ``std`` the per-seed standard deviation (of arm a;
    ``std_b`` for arm b, default the same). Returns ``max_n + 1`` when even ``max_n`` seeds are not enough.

    >>> required_seeds(effect=0.5, std=1.0)
    64
    """
    if effect == 0:
        return max_n + 1
    if not 0 < power < 1 or not 0 < alpha < 1:
        raise ValueError(f"alpha and power must lie in (0, 1), got alpha={alpha}, power={power}")

    def ok(n: int) -> bool:
        return welch_power(effect, std, n, std_b, n, alpha) >= power

    if not ok(max_n):
        return max_n + 1
    lo, hi = 2, 2
    while not ok(hi):  # exponential search, then bisection: power is monotone in n
        lo, hi = hi + 1, hi * 2
    hi = min(hi, max_n)
    while lo < hi:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


@dataclass(frozen=True)
class SeedNoise:
    """How much of the seed-to-seed spread of a test accuracy the finite test set explains (percentage points).

    ``std`` is the sample std of the runs' accuracies; ``flip_std`` the std they would have if each test example were
    right or wrong independently of the others, with its own rate over the runs (Jordan 2023, arXiv 2304.01910,
    finds it explains most of the spread on CIFAR-10); ``rest_std`` = √max(0, std² − flip_std²), the spread shared
    across examples (a whole run better or worse); ``disagreement`` the mean % of test examples that two runs score
    differently (one right, one wrong).
    """

    runs: int
    examples: int
    mean: float
    std: float
    flip_std: float
    rest_std: float
    disagreement: float


def seed_noise(correct: np.ndarray | Sequence[Sequence[bool]]) -> SeedNoise:
    """:class:`SeedNoise` of a ``runs x examples`` matrix of per-example correctness (runs of one arm, same test set).

    Example i is right in a fraction p_i of the k runs; v_i = p_i (1 − p_i) k / (k − 1) is the unbiased variance of
    its correctness, so the accuracy's variance under independent examples is Σ v_i / n², and the mean pairwise
    disagreement is 2 Σ v_i / n. No examples of a run may be missing: every row scores the same test set.

    >>> r = seed_noise([[1, 1, 0, 0], [1, 0, 1, 0], [1, 1, 1, 0]])
    >>> r.runs, r.examples, round(r.mean, 1), round(r.disagreement, 1), round(r.flip_std, 1)
    (3, 4, 58.3, 33.3, 20.4)
    """
    c = np.asarray(correct, dtype=float)
    if c.ndim != 2 or c.shape[0] < 2 or c.shape[1] == 0:
        raise ValueError(f"seed_noise needs a runs x examples matrix with at least 2 runs, got shape {c.shape}")
    if not np.isin(c, (0.0, 1.0)).all():
        raise ValueError("seed_noise needs 0/1 (or bool) correctness per example, got other values")
    k, n = c.shape
    rate = c.mean(axis=0)
    var_i = rate * (1 - rate) * k / (k - 1)
    acc = 100.0 * c.mean(axis=1)
    std = float(acc.std(ddof=1))
    flip = 100.0 * math.sqrt(var_i.sum()) / n
    return SeedNoise(
        runs=k,
        examples=n,
        mean=float(acc.mean()),
        std=std,
        flip_std=flip,
        rest_std=math.sqrt(max(0.0, std**2 - flip**2)),
        disagreement=float(100.0 * 2 * var_i.sum() / n),
    )


@dataclass(frozen=True)
class SeedEffect:
    """Two-way ANOVA (arms × seeds, one run per cell) of a metric: does seed k make every arm better or worse?

    ``share`` is the seed's variance component over the total (seed + residual; 0 when the seed mean square is below
    the residual's); ``f`` and ``p`` test it. A paired comparison across arms gains power only from this share.
    """

    arms: int
    seeds: int
    f: float
    p: float
    share: float


def seed_effect(values: Sequence[Sequence[float]]) -> SeedEffect:
    """:class:`SeedEffect` of an ``arms x seeds`` table (every arm ran every seed), e.g. test accuracies of a sweep.

    >>> r = seed_effect([[75.0, 76.0, 77.0], [75.2, 76.1, 77.3], [74.9, 76.2, 76.8]])  # seed 2 helps every arm
    >>> r.arms, r.seeds, r.share > 0.9, r.p < 0.001
    (3, 3, True, True)
    """
    m = np.asarray(values, dtype=float)
    if m.ndim != 2 or min(m.shape) < 2:
        raise ValueError(f"seed_effect needs an arms x seeds table with at least 2 of each, got shape {m.shape}")
    k, n = m.shape
    seed_dev = m.mean(axis=0) - m.mean()
    resid = m - m.mean(axis=1, keepdims=True) - m.mean(axis=0, keepdims=True) + m.mean()
    ms_seed = k * float(np.sum(seed_dev**2)) / (n - 1)
    ms_resid = float(np.sum(resid**2)) / ((n - 1) * (k - 1))
    if ms_resid == 0:
        nan = float("nan")
        return SeedEffect(k, n, nan, nan, 1.0 if ms_seed > 0 else nan)
    f = ms_seed / ms_resid
    component = max(0.0, (ms_seed - ms_resid) / k)
    return SeedEffect(k, n, f, float(_st.f.sf(f, n - 1, (n - 1) * (k - 1))), component / (component + ms_resid))


# The cells of every table that reports these tests (sweep tables, the cross-dataset report, robustness.md): one
# spelling of a missing value ("–"), of a p-value (3 significant digits) and of an interval (signed).


def arm_marks(n: int, planned: int, *, baseline: bool) -> tuple[bool, bool, str]:
    """How a table marks an arm of ``n`` runs whose sweep plans ``planned`` seeds for it (0: unknown): whether it is a
    screen (not the baseline, :data:`SCREEN_SEEDS` runs or fewer: no p-values), whether it is partial (past a screen,
    short of its seeds: interim), and the marks after its name, ``" (baseline, partial)"`` and the like."""
    screen = not baseline and 0 < n <= SCREEN_SEEDS
    partial = not screen and 0 < n < planned
    marks = [m for m, on in (("baseline", baseline), ("screen", screen), ("partial", partial)) if on]
    return screen, partial, f" ({', '.join(marks)})" if marks else ""


def format_number(x: float | None, digits: int = 2) -> str:
    """``x`` with ``digits`` decimals; "–" for None or NaN."""
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def format_p(p: float) -> str:
    """A p-value with 3 significant digits; "–" for NaN (too few values to test)."""
    return "–" if math.isnan(p) else f"{p:.3g}"


def format_interval(low: float, high: float, digits: int = 2) -> str:
    """A signed interval ``[low, high]``; "–" when it could not be computed (NaN)."""
    return "–" if math.isnan(low) else f"[{low:+.{digits}f}, {high:+.{digits}f}]"


def format_paired(result: PairedResult) -> str:
    """The paired t-test's p and its number of pairs, ``p (n)``; "–" below two pairs."""
    return "–" if result.n < 2 else f"{format_p(result.p)} ({result.n})"


def format_sign(result: SignResult) -> str:
    """The sign test's p, wins and non-tied pairs, ``p (wins/n)``; "–" without a non-tied pair."""
    return "–" if result.n == 0 else f"{format_p(result.p)} ({result.wins}/{result.n})"
