"""The maths of model monitoring: drift tests, AUC with its sampling error, calibration.

Everything here runs inside PostgreSQL's PL/Python, whose environment has numpy and scipy
but not scikit-learn or pandas. scipy is imported inside the few functions that need it
(``scipy.special`` only): importing it costs a fifth of a second, and ``scipy.stats`` a
whole second, which a session that never tests for drift should not pay. Mid-ranks are
computed with numpy for the same reason. Results are small frozen dataclasses of plain
Python numbers whose ``to_dict()`` is ready for JSON.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pyfuncs._typing import Any

# What "impossible" returns from the minimum-cohort-size functions: larger than any cohort.
NEVER = 2**31 - 1
# The binary search for min_rows_for_auc stops here.
MAX_SEARCH_ROWS = 10**7

# Counts, proportions and p-values: a list, or the array bin_counts / band_shares return.
Floats = Sequence[float] | np.ndarray


class _Result:
    """``to_dict()`` for the result dataclasses."""

    def to_dict(self) -> dict[str, float | int | None]:
        """The fields as a dict; NaN and infinities become None (JSON and jsonb reject them)."""
        return {name: (None if isinstance(value, float) and not math.isfinite(value) else value)
                for name, value in vars(self).items()}


@dataclass(frozen=True)
class PsiTest(_Result):
    """Population stability index of a cohort against the reference, and its chi-square test."""

    psi: float
    critical_value: float
    p_value: float
    rows: int
    reference_rows: int
    bins: int


@dataclass(frozen=True)
class ProportionTest(_Result):
    """Two-proportion z-test of a cohort's rate against the reference rate."""

    reference: float
    observed: float
    difference: float
    standard_error: float
    p_value: float
    rows: int


@dataclass(frozen=True)
class AucEstimate(_Result):
    """A ROC AUC (realised or estimated) with its standard error."""

    auc: float
    standard_error: float
    positives: float
    negatives: float


@dataclass(frozen=True)
class PairedAuc(_Result):
    """DeLong's paired comparison of two scores' AUCs on the same rows (``auc_b - auc_a``)."""

    auc_a: float
    auc_b: float
    difference: float
    standard_error: float
    p_value: float
    rows: int


@dataclass(frozen=True)
class Calibration(_Result):
    """Expected calibration error and the overall observed vs predicted default rate."""

    ece: float
    standard_error: float
    observed_rate: float
    predicted_rate: float
    rate_standard_error: float
    rows: int


# -- Drift: binning and the population stability index -------------------------------------


def quantile_edges(values: np.ndarray, bins: int = 10) -> list[float]:
    """Inner bin edges at the reference's quantiles.

    Parameters
    ----------
    values : np.ndarray
        The reference sample of one feature; NaN (missing) is ignored.
    bins : int
        The number of equal-count bins wanted.

    Returns
    -------
    list[float]
        The quantiles at ``1/bins .. (bins-1)/bins``, deduplicated and ascending: at most
        ``bins - 1`` edges, fewer for a discrete feature (a count, a flag). Empty when there
        is no non-NaN value.
    """
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    v = np.asarray(values, dtype=float).ravel()
    v = v[~np.isnan(v)]
    if v.size == 0 or bins == 1:
        return []
    edges = np.unique(np.quantile(v, np.arange(1, bins) / bins, method="linear"))
    return [float(e) for e in edges]


def bin_counts(values: np.ndarray, edges: list[float]) -> np.ndarray:
    """Counts of the non-NaN values in the ``len(edges) + 1`` bins the edges delimit.

    Parameters
    ----------
    values : np.ndarray
        The values to bin; NaN is ignored (missing rates are tested separately).
    edges : list[float]
        Ascending inner edges, as from :func:`quantile_edges`.

    Returns
    -------
    np.ndarray
        Integer counts; bin ``i`` holds ``edges[i-1] < v <= edges[i]`` (the first bin is
        open below, the last open above).
    """
    v = np.asarray(values, dtype=float).ravel()
    v = v[~np.isnan(v)]
    index = np.searchsorted(np.asarray(edges, dtype=float), v, side="left")
    return np.bincount(index, minlength=len(edges) + 1)


def _proportions(reference_proportions: Floats, counts: Floats
                 ) -> tuple[np.ndarray, np.ndarray, float]:
    """Validated reference proportions, cohort counts and the cohort's row count."""
    e = np.asarray(reference_proportions, dtype=float).ravel()
    c = np.asarray(counts, dtype=float).ravel()
    if e.shape != c.shape:
        raise ValueError(f"reference_proportions has {e.size} bins but counts has {c.size}")
    if e.size == 0:
        raise ValueError("no bins")
    if np.any(~np.isfinite(e)) or np.any(e < 0) or e.sum() <= 0:
        raise ValueError("reference_proportions must be finite, non-negative and not all zero")
    if np.any(~np.isfinite(c)) or np.any(c < 0):
        raise ValueError("counts must be finite and non-negative")
    total = float(c.sum())
    if total <= 0:
        raise ValueError("counts sum to 0: the cohort has no rows to compare")
    return e, c, total


def _floored(proportions: np.ndarray, rows: float) -> np.ndarray:
    """Proportions floored at half a row of their own sample, then renormalised."""
    floored = np.maximum(proportions / proportions.sum(), 0.5 / rows)
    return floored / floored.sum()


def psi(reference_proportions: Floats, counts: Floats, reference_rows: int) -> float:
    """Population stability index of a cohort's bin counts against the reference.

    ``PSI = sum((a - e) * ln(a / e))`` with ``e`` the reference proportions and ``a`` the
    cohort's (``counts / sum(counts)``). A bin empty on either side would make it infinite,
    so each proportion is floored at ``0.5 / rows`` of its own sample (half a row: the
    usual continuity correction) and the proportions are renormalised to sum to 1; this is
    why the reference's row count is needed. Identical proportions give exactly 0.

    Parameters
    ----------
    reference_proportions : Sequence[float]
        The reference's share of rows per bin (renormalised if it does not sum to 1).
    counts : Sequence[float]
        The cohort's rows per bin, the same bins.
    reference_rows : int
        Rows in the reference sample the proportions came from.

    Returns
    -------
    float
        The PSI, non-negative.

    Raises
    ------
    ValueError
        If the lengths differ, counts sum to 0, or reference_rows is below 1.
    """
    if reference_rows < 1:
        raise ValueError(f"reference_rows must be at least 1, got {reference_rows}")
    e, c, total = _proportions(reference_proportions, counts)
    e = _floored(e, reference_rows)
    a = _floored(c, total)
    return float(np.sum((a - e) * np.log(a / e)))


def psi_test(reference_proportions: Floats, reference_rows: int, counts: Floats,
             alpha: float) -> PsiTest:
    """PSI of a cohort and whether it exceeds what sampling alone would produce.

    With no drift, ``PSI / (1/N + 1/M)`` is approximately chi-square with ``B - 1`` degrees
    of freedom (``N`` cohort rows, ``M`` reference rows, ``B`` bins): to second order the
    PSI is the chi-square statistic of two samples from the same distribution. This replaces
    the fixed 0.1 / 0.25 rules of thumb, which flag every small cohort and miss drift in
    large ones.

    Parameters
    ----------
    reference_proportions : Sequence[float]
        The reference's share of rows per bin.
    reference_rows : int
        Rows in the reference sample (``M``).
    counts : Sequence[float]
        The cohort's rows per bin (``N = sum(counts)``).
    alpha : float
        Significance level, in (0, 1).

    Returns
    -------
    PsiTest
        ``p_value = chi2.sf(psi / (1/N + 1/M), B - 1)`` and the critical PSI
        ``chi2.ppf(1 - alpha, B - 1) * (1/N + 1/M)``. With one bin there is nothing to
        compare: psi 0, p_value 1, critical_value 0.

    Raises
    ------
    ValueError
        If the lengths differ, counts sum to 0, reference_rows < 1 or alpha is not in (0, 1).
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if reference_rows < 1:
        raise ValueError(f"reference_rows must be at least 1, got {reference_rows}")
    _, c, total = _proportions(reference_proportions, counts)
    bins = int(c.size)
    rows = int(round(total))
    if bins == 1:
        return PsiTest(psi=0.0, critical_value=0.0, p_value=1.0, rows=rows,
                       reference_rows=int(reference_rows), bins=1)
    from scipy import special

    value = psi(reference_proportions, counts, reference_rows)
    scale = 1.0 / total + 1.0 / reference_rows
    return PsiTest(
        psi=value,
        critical_value=_psi_critical(_chi2_quantile(bins - 1, alpha), scale),
        p_value=float(special.chdtrc(bins - 1, value / scale)),
        rows=rows, reference_rows=int(reference_rows), bins=bins)


def _chi2_quantile(df: int, alpha: float) -> float:
    """``chi2.ppf(1 - alpha, df)``, computed from the upper tail (exact for small alpha)."""
    from scipy import special

    return float(special.chdtri(df, alpha))


def _psi_critical(quantile: float, scale: float) -> float:
    """The critical PSI; one function so psi_test and min_rows_for_psi agree exactly."""
    return quantile * scale


# -- Rates -----------------------------------------------------------------------------------


def _two_sided_normal(z: float) -> float:
    """Two-sided normal p-value of ``z`` (``2 * norm.sf(|z|)``)."""
    return math.erfc(abs(z) / math.sqrt(2.0))


def proportion_test(reference_rate: float, reference_rows: int, successes: int,
                    rows: int) -> ProportionTest:
    """Two-sided two-proportion z-test of a cohort's rate against the reference's.

    Used for jumps in a feature's missing rate and for the approval rate.

    Parameters
    ----------
    reference_rate : float
        The rate in the reference sample, in [0, 1].
    reference_rows : int
        Rows in the reference sample.
    successes : int
        Rows of the cohort with the property (missing, approved, ...).
    rows : int
        Rows in the cohort.

    Returns
    -------
    ProportionTest
        ``difference = observed - reference``. The test uses the pooled standard error
        (the null hypothesis is one common rate); ``standard_error`` is the unpooled one,
        ``sqrt(p1(1-p1)/n1 + p2(1-p2)/n2)``, the sampling error of the reported difference.
        A pooled rate of 0 or 1 (nothing or everything on both sides) gives p_value 1.
    """
    if reference_rows < 1 or rows < 1:
        raise ValueError(f"need at least one row on each side, got reference_rows="
                         f"{reference_rows}, rows={rows}")
    if not 0 <= reference_rate <= 1:
        raise ValueError(f"reference_rate must be in [0, 1], got {reference_rate}")
    if not 0 <= successes <= rows:
        raise ValueError(f"successes must be in [0, rows], got {successes} of {rows}")
    observed = successes / rows
    difference = observed - reference_rate
    standard_error = math.sqrt(reference_rate * (1 - reference_rate) / reference_rows
                               + observed * (1 - observed) / rows)
    pooled = (reference_rate * reference_rows + successes) / (reference_rows + rows)
    pooled_se = math.sqrt(pooled * (1 - pooled) * (1 / reference_rows + 1 / rows))
    p_value = 1.0 if pooled_se == 0 else _two_sided_normal(difference / pooled_se)
    return ProportionTest(reference=float(reference_rate), observed=float(observed),
                          difference=float(difference), standard_error=float(standard_error),
                          p_value=float(p_value), rows=int(rows))


def benjamini_hochberg(p_values: Sequence[float | None] | np.ndarray, q: float) -> np.ndarray:
    """Which hypotheses the Benjamini-Hochberg step-up procedure rejects at FDR ``q``.

    With the ``m`` p-values sorted ascending, every hypothesis up to the largest rank ``k``
    with ``p_(k) <= k * q / m`` is rejected (even those above their own line).

    Parameters
    ----------
    p_values : Sequence[float | None]
        One p-value per hypothesis; NaN or None means "not tested" (e.g. too few rows): it
        is never rejected and is not counted in ``m``.
    q : float
        The false discovery rate, in (0, 1].

    Returns
    -------
    np.ndarray
        Boolean, the same length as ``p_values``; True where rejected. Empty for no input.
    """
    if not 0 < q <= 1:
        raise ValueError(f"q must be in (0, 1], got {q}")
    p = np.asarray(p_values, dtype=float).ravel()  # None becomes NaN
    reject = np.zeros(p.size, dtype=bool)
    tested = np.flatnonzero(~np.isnan(p))
    if np.any((p[tested] < 0) | (p[tested] > 1)):
        raise ValueError("p-values must be in [0, 1] (or NaN for untested)")
    m = tested.size
    if m == 0:
        return reject
    order = tested[np.argsort(p[tested], kind="stable")]
    below = np.flatnonzero(p[order] <= q * np.arange(1, m + 1) / m)
    if below.size:
        reject[order[:below[-1] + 1]] = True
    return reject


# -- Discrimination: ROC AUC and its sampling error ------------------------------------------


def _midranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks with ties given their mean rank (``scipy.stats.rankdata``, average)."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    starts_group = np.concatenate(([True], xs[1:] != xs[:-1]))
    starts = np.flatnonzero(starts_group)
    ends = np.append(starts[1:], x.size)
    ranks = np.empty(x.size, dtype=float)
    ranks[order] = ((starts + 1 + ends) / 2.0)[np.cumsum(starts_group) - 1]
    return ranks


def _labels(y: np.ndarray, n: int) -> np.ndarray:
    """``y`` as a boolean "defaulted" mask, checked to be 0/1 of length ``n``."""
    labels = np.asarray(y).ravel()
    if labels.size != n:
        raise ValueError(f"y has {labels.size} rows but the scores have {n}")
    positive = labels == 1
    if not np.all(positive | (labels == 0)):
        raise ValueError("y must contain only 0 and 1")
    if positive.all() or not positive.any():
        raise ValueError("y has only one class: the AUC is undefined")
    return positive


def _scores(p: np.ndarray) -> np.ndarray:
    scores = np.asarray(p, dtype=float).ravel()
    if np.any(np.isnan(scores)):
        raise ValueError("scores contain NaN")
    return scores


def _delong_components(positive: np.ndarray, scores: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
    """DeLong's structural components by mid-ranks, O(n log n) (Sun & Xu 2014).

    ``v10[i]`` is the share of negatives positive ``i`` outranks (ties count half) and
    ``v01[j]`` the share of positives that outrank negative ``j``; both average to the AUC.
    """
    m, n = int(positive.sum()), int((~positive).sum())
    overall = _midranks(scores)
    x, ysc = scores[positive], scores[~positive]
    v10 = (overall[positive] - _midranks(x)) / n
    v01 = 1.0 - (overall[~positive] - _midranks(ysc)) / m
    return v10, v01


def roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    """ROC AUC by the Mann-Whitney rank formula, ties counting half.

    Parameters
    ----------
    y : np.ndarray
        Labels, 1 for default and 0 otherwise.
    p : np.ndarray
        Scores (higher means riskier); need not be probabilities. NaN is rejected.

    Returns
    -------
    float
        ``(sum of positives' mid-ranks - m(m+1)/2) / (m n)``; equals scikit-learn's
        ``roc_auc_score``.

    Raises
    ------
    ValueError
        If y has only one class, is not 0/1, or the lengths differ.
    """
    scores = _scores(p)
    positive = _labels(y, scores.size)
    m, n = int(positive.sum()), int((~positive).sum())
    rank_sum = float(_midranks(scores)[positive].sum())
    return (rank_sum - m * (m + 1) / 2.0) / (m * n)


def _variance(a: np.ndarray) -> float:
    """Sample variance (ddof 1); NaN for fewer than two values."""
    return float(np.var(a, ddof=1)) if a.size > 1 else math.nan


def _sqrt(variance: float) -> float:
    """Square root of a variance that rounding may have pushed just below 0; NaN stays NaN."""
    return math.nan if math.isnan(variance) else math.sqrt(max(variance, 0.0))


def auc_delong(y: np.ndarray, p: np.ndarray) -> AucEstimate:
    """ROC AUC with DeLong's (1988) standard error.

    Parameters
    ----------
    y : np.ndarray
        Labels, 1 for default and 0 otherwise.
    p : np.ndarray
        Scores (higher means riskier).

    Returns
    -------
    AucEstimate
        The AUC, ``sqrt(var(v10)/m + var(v01)/n)`` as its standard error (NaN with fewer
        than two rows of either class) and the class counts.
    """
    scores = _scores(p)
    positive = _labels(y, scores.size)
    v10, v01 = _delong_components(positive, scores)
    variance = _variance(v10) / v10.size + _variance(v01) / v01.size
    return AucEstimate(auc=float(v10.mean()), standard_error=_sqrt(variance),
                       positives=float(v10.size), negatives=float(v01.size))


def paired_auc_difference(y: np.ndarray, p_a: np.ndarray, p_b: np.ndarray) -> PairedAuc:
    """DeLong's paired test of ``AUC(p_b) - AUC(p_a)`` on the same rows.

    Parameters
    ----------
    y : np.ndarray
        Labels, 1 for default and 0 otherwise.
    p_a, p_b : np.ndarray
        Two scores of the same rows (e.g. the champion's and a challenger's).

    Returns
    -------
    PairedAuc
        The difference, its standard error from the covariance of the two AUCs, and the
        two-sided normal p-value (1 when the difference and its error are both 0, as for
        identical scores). ``difference - z * standard_error`` is a lower confidence bound.
    """
    a, b = _scores(p_a), _scores(p_b)
    if a.size != b.size:
        raise ValueError(f"p_a has {a.size} rows but p_b has {b.size}")
    positive = _labels(y, a.size)
    v10_a, v01_a = _delong_components(positive, a)
    v10_b, v01_b = _delong_components(positive, b)
    # var(AUC_b - AUC_a) = var_a + var_b - 2 cov_ab, which is the variance of the per-row
    # differences of the components, class by class.
    standard_error = _sqrt(_variance(v10_b - v10_a) / v10_a.size
                           + _variance(v01_b - v01_a) / v01_a.size)
    auc_a, auc_b = float(v10_a.mean()), float(v10_b.mean())
    difference = auc_b - auc_a
    if math.isnan(standard_error):
        p_value = math.nan
    elif standard_error == 0:
        p_value = 1.0 if difference == 0 else 0.0
    else:
        p_value = _two_sided_normal(difference / standard_error)
    return PairedAuc(auc_a=auc_a, auc_b=auc_b, difference=difference,
                     standard_error=standard_error, p_value=p_value, rows=int(a.size))


def hanley_mcneil_se(auc: float, positives: float, negatives: float) -> float:
    """Hanley & McNeil's (1982) standard error of an AUC from the class sizes alone.

    Parameters
    ----------
    auc : float
        The AUC.
    positives, negatives : float
        Rows of each class; may be expected (non-integer) counts.

    Returns
    -------
    float
        The standard error; NaN if either count is below 1.
    """
    if not positives >= 1 or not negatives >= 1:
        return math.nan
    q1 = auc / (2 - auc)
    q2 = 2 * auc * auc / (1 + auc)
    variance = (auc * (1 - auc) + (positives - 1) * (q1 - auc * auc)
                + (negatives - 1) * (q2 - auc * auc)) / (positives * negatives)
    return math.sqrt(max(variance, 0.0))


def cbpe_auc(p: np.ndarray) -> AucEstimate:
    """The ROC AUC a cohort is expected to show, estimated without labels (CBPE).

    Confidence-based performance estimation (as in NannyML): if the model is calibrated,
    row ``i`` defaults with probability ``p_i``, so it counts as a positive with weight
    ``p_i`` and as a negative with weight ``1 - p_i``. The estimate is

        sum_{i != j} p_i (1 - p_j) ([p_i > p_j] + [p_i = p_j] / 2) / sum_{i != j} p_i (1 - p_j)

    the ratio of the expected numerator and denominator of the realised AUC. A row is
    never paired with itself (its label cannot be both), which is why ``i = j`` is left
    out. Computed in O(n log n): sort, sum each tie group, and take the cumulative negative
    weight below each group.

    Parameters
    ----------
    p : np.ndarray
        Predicted probabilities of default, in [0, 1].

    Returns
    -------
    AucEstimate
        The estimate, ``positives = sum(p)``, ``negatives = sum(1 - p)`` and as standard
        error ``hanley_mcneil_se(auc, positives, negatives)``: the sampling error of the
        AUC a labelled cohort of this size would show around the estimate.

    Raises
    ------
    ValueError
        If p is empty, has NaN or values outside [0, 1], or has no expected pair of a
        positive and a negative (e.g. every p is 0).
    """
    probability = np.sort(np.asarray(p, dtype=float).ravel())
    if probability.size == 0:
        raise ValueError("no rows")
    if np.any(np.isnan(probability)) or probability[0] < 0 or probability[-1] > 1:
        raise ValueError("p must be probabilities in [0, 1] without NaN")
    good = 1.0 - probability
    self_pairs = probability * good
    starts = np.flatnonzero(np.concatenate(([True], probability[1:] != probability[:-1])))
    group_bad = np.add.reduceat(probability, starts)
    group_good = np.add.reduceat(good, starts)
    group_self = np.add.reduceat(self_pairs, starts)
    good_below = np.cumsum(group_good) - group_good
    # Pairs inside a tie group count half, minus each row paired with itself.
    numerator = float(np.sum(group_bad * good_below)
                      + 0.5 * np.sum(group_bad * group_good - group_self))
    positives, negatives = float(probability.sum()), float(good.sum())
    denominator = positives * negatives - float(self_pairs.sum())
    if not denominator > 0:
        raise ValueError("no expected positive-negative pair: the AUC is undefined")
    estimate = numerator / denominator
    return AucEstimate(auc=estimate, standard_error=hanley_mcneil_se(estimate, positives,
                                                                     negatives),
                       positives=positives, negatives=negatives)


# -- Calibration and risk bands --------------------------------------------------------------


def calibration(y: np.ndarray, p: np.ndarray, bins: int = 10) -> Calibration:
    """Expected calibration error over equal-count bins of p, with its sampling error.

    The bins and the ECE are those of ``trainer.metrics`` (``calibration_table`` and
    ``expected_calibration_error``): the stable argsort of p split into ``bins`` chunks,
    ECE the row-weighted mean ``|observed rate - mean predicted|``.

    Parameters
    ----------
    y : np.ndarray
        Labels, 1 for default and 0 otherwise.
    p : np.ndarray
        Predicted probabilities of default.
    bins : int
        The number of equal-count bins (fewer when there are fewer rows).

    Returns
    -------
    Calibration
        ``standard_error = sqrt(sum_b (n_b/N)^2 r_b (1 - r_b) / n_b)`` with ``r_b`` the bin's
        mean predicted probability: how much the bins' observed rates would vary if the model
        were calibrated. ``observed_rate`` and ``predicted_rate`` are the overall mean label
        and mean p, and ``rate_standard_error`` the binomial standard error of the observed
        rate at the predicted rate, ``sqrt(pred (1 - pred) / N)``.

    Raises
    ------
    ValueError
        If there are no rows, the lengths differ or bins < 1.
    """
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    labels = np.asarray(y, dtype=float).ravel()
    probability = np.asarray(p, dtype=float).ravel()
    if labels.size != probability.size:
        raise ValueError(f"y has {labels.size} rows but p has {probability.size}")
    rows = int(labels.size)
    if rows == 0:
        raise ValueError("no rows")
    order = np.argsort(probability, kind="stable")
    weighted_gap = 0.0
    variance = 0.0
    for chunk in np.array_split(order, min(bins, rows)):
        if len(chunk) == 0:
            continue
        predicted = float(probability[chunk].mean())
        # Same arithmetic, in the same order, as trainer.metrics.expected_calibration_error.
        weighted_gap += int(len(chunk)) * abs(float(labels[chunk].mean()) - predicted)
        variance += len(chunk) * predicted * (1 - predicted)
    predicted_rate = float(probability.mean())
    return Calibration(
        ece=float(weighted_gap / rows),
        standard_error=math.sqrt(max(variance, 0.0)) / rows,
        observed_rate=float(labels.mean()),
        predicted_rate=predicted_rate,
        rate_standard_error=math.sqrt(max(predicted_rate * (1 - predicted_rate), 0.0) / rows),
        rows=rows)


def _band_index(p: np.ndarray, upper_bounds: Sequence[float]) -> np.ndarray:
    """Each row's band: the first with ``p <= upper``; ``len(upper_bounds)`` for none."""
    bounds = np.asarray(upper_bounds, dtype=float).ravel()
    if bounds.size == 0:
        raise ValueError("no bands")
    if np.any(np.diff(bounds) <= 0):
        raise ValueError("band upper bounds must be strictly ascending")
    probability = np.asarray(p, dtype=float).ravel()
    index = np.searchsorted(bounds, probability, side="left")
    # NaN sorts after everything: it belongs to no band.
    index[np.isnan(probability)] = bounds.size
    return index


def band_rates(y: np.ndarray, p: np.ndarray, upper_bounds: Sequence[float],
               names: Sequence[str]) -> list[dict[str, Any]]:
    """Observed and predicted default rate per risk band.

    Parameters
    ----------
    y : np.ndarray
        Labels, 1 for default and 0 otherwise.
    p : np.ndarray
        Predicted probabilities of default.
    upper_bounds : Sequence[float]
        The bands' upper bounds, ascending. A row belongs to the first band with
        ``p <= upper`` (lower bound exclusive), as in ``trainer.metrics.band_table``;
        rows above the last bound belong to none.
    names : Sequence[str]
        The bands' names, one per bound.

    Returns
    -------
    list[dict]
        Per band: ``band``, ``rows``, ``observed_rate``, ``predicted_rate`` (mean p) and
        ``standard_error`` (``sqrt(pred (1 - pred) / rows)``, what the observed rate would
        vary by if the band were calibrated); the rates and error are None for an empty band.
    """
    if len(names) != len(upper_bounds):
        raise ValueError(f"{len(names)} band names for {len(upper_bounds)} upper bounds")
    labels = np.asarray(y, dtype=float).ravel()
    probability = np.asarray(p, dtype=float).ravel()
    if labels.size != probability.size:
        raise ValueError(f"y has {labels.size} rows but p has {probability.size}")
    index = _band_index(probability, upper_bounds)
    out: list[dict[str, Any]] = []
    for i, name in enumerate(names):
        inside = index == i
        rows = int(inside.sum())
        if rows == 0:
            out.append({"band": name, "rows": 0, "observed_rate": None, "predicted_rate": None,
                        "standard_error": None})
            continue
        predicted = float(probability[inside].mean())
        out.append({"band": name, "rows": rows,
                    "observed_rate": float(labels[inside].mean()),
                    "predicted_rate": predicted,
                    "standard_error": math.sqrt(max(predicted * (1 - predicted), 0.0) / rows)})
    return out


def band_shares(p: np.ndarray, upper_bounds: Sequence[float]) -> np.ndarray:
    """Rows per risk band (the band rule of :func:`band_rates`), for the band-mix PSI test.

    Parameters
    ----------
    p : np.ndarray
        Predicted probabilities of default.
    upper_bounds : Sequence[float]
        The bands' upper bounds, ascending.

    Returns
    -------
    np.ndarray
        Integer counts, one per band; rows above the last bound (or NaN) are not counted.
    """
    index = _band_index(p, upper_bounds)
    size = len(upper_bounds)
    return np.bincount(index[index < size], minlength=size)


# -- From sampling error to the minimum cohort size ------------------------------------------


def min_rows_for_psi(reference_rows: int, bins: int, alpha: float,
                     detectable_psi: float) -> int:
    """The smallest cohort for which :func:`psi_test` flags a PSI of ``detectable_psi``.

    Parameters
    ----------
    reference_rows : int
        Rows in the reference sample (``M``).
    bins : int
        Number of bins (``B``).
    alpha : float
        Significance level of the test.
    detectable_psi : float
        The PSI that should be flagged.

    Returns
    -------
    int
        The smallest ``N`` with ``chi2.ppf(1 - alpha, B - 1) * (1/N + 1/M) <= detectable_psi``;
        1 for a single bin (nothing to test); ``NEVER`` (2**31 - 1) when even an infinite
        cohort would not do, i.e. the reference alone is too small.
    """
    if reference_rows < 1:
        raise ValueError(f"reference_rows must be at least 1, got {reference_rows}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if not detectable_psi > 0:
        raise ValueError(f"detectable_psi must be positive, got {detectable_psi}")
    if bins <= 1:
        return 1
    quantile = _chi2_quantile(bins - 1, alpha)

    def detects(n: int) -> bool:
        return _psi_critical(quantile, 1.0 / n + 1.0 / reference_rows) <= detectable_psi

    slack = detectable_psi / quantile - 1.0 / reference_rows
    if slack <= 0:
        return NEVER
    guess = 1.0 / slack
    if guess >= NEVER:
        return NEVER
    n = max(1, math.ceil(guess))
    # The closed form can be off by one in floating point: settle on the exact boundary.
    while n < NEVER and not detects(n):
        n += 1
    while n > 1 and detects(n - 1):
        n -= 1
    return n if detects(n) else NEVER


def min_rows_for_auc(auc: float, positive_rate: float, max_standard_error: float) -> int:
    """The smallest cohort whose AUC has a Hanley-McNeil standard error of at most the target.

    Parameters
    ----------
    auc : float
        The AUC expected (e.g. the reference's).
    positive_rate : float
        The expected default rate, in (0, 1).
    max_standard_error : float
        The largest acceptable standard error.

    Returns
    -------
    int
        The smallest ``N`` with ``hanley_mcneil_se(auc, N * rate, N * (1 - rate))`` at most
        ``max_standard_error`` (found by binary search: the error falls as N grows);
        ``NEVER`` (2**31 - 1) if not reached by 10**7 rows.
    """
    if not 0 < positive_rate < 1:
        raise ValueError(f"positive_rate must be in (0, 1), got {positive_rate}")
    if not 0 <= auc <= 1:
        raise ValueError(f"auc must be in [0, 1], got {auc}")
    if not max_standard_error > 0:
        raise ValueError(f"max_standard_error must be positive, got {max_standard_error}")

    def enough(n: int) -> bool:
        # NaN (fewer than one expected row of a class) compares False: not enough.
        return hanley_mcneil_se(auc, n * positive_rate, n * (1 - positive_rate)) \
            <= max_standard_error

    if not enough(MAX_SEARCH_ROWS):
        return NEVER
    low, high = 1, MAX_SEARCH_ROWS  # enough(high) holds; find the first n that holds
    while low < high:
        middle = (low + high) // 2
        if enough(middle):
            high = middle
        else:
            low = middle + 1
    return low
