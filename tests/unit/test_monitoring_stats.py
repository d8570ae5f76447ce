"""The maths of model monitoring, against scikit-learn, scipy, brute force and simulation."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats as sps
from sklearn.metrics import roc_auc_score

from pyfuncs.monitoring import stats as ms
from trainer import metrics as tm


def _logistic(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@pytest.fixture
def scored():
    """2000 rows: labels drawn from a calibrated p, scores with ties (rounded to 0.01)."""
    rng = np.random.default_rng(7)
    p = np.round(_logistic(rng.normal(-1.5, 1.0, 2000)), 2)
    y = (rng.random(2000) < p).astype(int)
    return y, p


# -- Binning and PSI ---------------------------------------------------------------------


def test_quantile_edges_are_inner_deduplicated_and_skip_nan():
    values = np.r_[np.arange(1.0, 101.0), [np.nan] * 50]
    edges = ms.quantile_edges(values, 4)
    assert edges == pytest.approx([25.75, 50.5, 75.25])
    # A flag yields two edges (0 and the interpolated 90th percentile), not nine.
    assert ms.quantile_edges(np.array([0.0] * 90 + [1.0] * 10), 10) == pytest.approx([0.0, 0.1])
    counts = ms.quantile_edges(np.random.default_rng(0).poisson(1.0, 1000).astype(float), 10)
    assert counts == sorted(set(counts)) and len(counts) < 9
    assert ms.quantile_edges(np.array([]), 10) == []
    assert ms.quantile_edges(np.array([np.nan, np.nan]), 10) == []
    assert all(type(e) is float for e in edges)


def test_bin_counts_upper_edge_inclusive_and_nan_ignored():
    edges = [1.0, 2.0]
    values = np.array([0.5, 1.0, 1.0001, 2.0, 2.5, np.nan, -np.inf, np.inf])
    # (-inf, 1], (1, 2], (2, inf): NaN counted nowhere.
    assert ms.bin_counts(values, edges).tolist() == [3, 2, 2]
    assert ms.bin_counts(values, []).tolist() == [7]


def test_psi_identical_is_zero_and_matches_hand_value():
    e = [0.1, 0.2, 0.3, 0.4]
    assert ms.psi(e, [100, 200, 300, 400], 10_000) == 0.0
    a = np.array([0.2, 0.2, 0.3, 0.3])
    expected = float(np.sum((a - e) * np.log(a / e)))
    assert ms.psi(e, a * 1000, 10_000) == pytest.approx(expected, rel=1e-12)


def test_psi_floors_empty_bins_at_half_a_row():
    # The cohort's empty bin: 0.5 of 100 rows, then renormalised.
    value = ms.psi([0.5, 0.5], [100, 0], 1000)
    a = np.array([100, 0.5]) / 100.5
    e = np.array([0.5, 0.5])
    assert math.isfinite(value)
    assert value == pytest.approx(float(np.sum((a - e) * np.log(a / e))), rel=1e-12)
    # The reference's empty bin, floored at 0.5 of its own 1000 rows.
    e2 = np.array([1.0, 0.0005]) / 1.0005
    a2 = np.array([0.5, 0.5])
    assert ms.psi([1.0, 0.0], [50, 50], 1000) == pytest.approx(
        float(np.sum((a2 - e2) * np.log(a2 / e2))), rel=1e-12)


@pytest.mark.parametrize("args", [([0.5, 0.5], [1, 2, 3], 100), ([0.5, 0.5], [0, 0], 100),
                                  ([0.5, 0.5], [1, 1], 0)])
def test_psi_rejects_bad_input(args):
    with pytest.raises(ValueError):
        ms.psi(*args)


def test_psi_test_false_positive_rate_under_no_drift():
    rng = np.random.default_rng(2024)
    m, n, trials, alpha = 5000, 1000, 2000, 0.05
    flagged = by_critical = 0
    for _ in range(trials):
        reference = rng.lognormal(0.0, 1.0, m)
        edges = ms.quantile_edges(reference, 10)
        proportions = ms.bin_counts(reference, edges) / m
        result = ms.psi_test(proportions, m, ms.bin_counts(rng.lognormal(0.0, 1.0, n), edges),
                             alpha)
        assert result.bins == 10 and result.rows == n
        flagged += result.p_value < alpha
        by_critical += result.psi > result.critical_value
    assert 0.02 <= flagged / trials <= 0.09
    # The p-value and the critical value are the same test.
    assert abs(flagged - by_critical) <= 2


def test_psi_test_detects_a_shift_and_matches_chi2():
    rng = np.random.default_rng(3)
    reference = rng.normal(0, 1, 5000)
    edges = ms.quantile_edges(reference, 10)
    proportions = ms.bin_counts(reference, edges) / 5000
    result = ms.psi_test(proportions, 5000, ms.bin_counts(rng.normal(0.3, 1, 1000), edges), 0.01)
    assert result.p_value < 1e-6 and result.psi > result.critical_value
    scale = 1 / 1000 + 1 / 5000
    assert result.critical_value == pytest.approx(sps.chi2.ppf(0.99, 9) * scale, rel=1e-10)
    assert result.p_value == pytest.approx(sps.chi2.sf(result.psi / scale, 9), rel=1e-8)


def test_psi_test_single_bin_and_errors():
    assert ms.psi_test([1.0], 100, [40], 0.05) == ms.PsiTest(
        psi=0.0, critical_value=0.0, p_value=1.0, rows=40, reference_rows=100, bins=1)
    with pytest.raises(ValueError, match="sum to 0"):
        ms.psi_test([0.5, 0.5], 100, [0, 0], 0.05)
    with pytest.raises(ValueError, match="bins"):
        ms.psi_test([0.5, 0.5], 100, [1, 2, 3], 0.05)


# -- Rates and multiple testing ----------------------------------------------------------


def test_proportion_test_matches_hand_values_and_chi2_contingency():
    result = ms.proportion_test(0.10, 1000, 130, 1000)
    assert result.observed == pytest.approx(0.13) and result.difference == pytest.approx(0.03)
    # Unpooled: sqrt(.1*.9/1000 + .13*.87/1000).
    assert result.standard_error == pytest.approx(math.sqrt(0.09e-3 + 0.1131e-3), rel=1e-12)
    # Pooled rate 0.115: z = 0.03 / sqrt(.115 * .885 * .002) = 2.1027.
    z = 0.03 / math.sqrt(0.115 * 0.885 * 0.002)
    assert result.p_value == pytest.approx(2 * sps.norm.sf(z), rel=1e-9)
    # The pooled z-test is the uncorrected chi-square test of the 2x2 table.
    table = [[130, 870], [100, 900]]
    assert result.p_value == pytest.approx(
        sps.chi2_contingency(table, correction=False)[1], rel=1e-9)
    assert result.p_value == pytest.approx(0.03549, abs=1e-5)


def test_proportion_test_no_evidence_when_pooled_rate_is_degenerate():
    assert ms.proportion_test(0.0, 500, 0, 100).p_value == 1.0
    assert ms.proportion_test(1.0, 500, 100, 100).p_value == 1.0
    same = ms.proportion_test(0.2, 1000, 200, 1000)
    assert same.difference == 0 and same.p_value == pytest.approx(1.0)
    with pytest.raises(ValueError):
        ms.proportion_test(0.2, 1000, 11, 10)


def test_benjamini_hochberg_paper_example():
    # Benjamini & Hochberg (1995), section 4: 15 p-values, q = 0.05 rejects the four smallest.
    p = [0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459, 0.3240,
         0.4262, 0.5719, 0.6528, 0.7590, 1.000]
    assert ms.benjamini_hochberg(p, 0.05).tolist() == [True] * 4 + [False] * 11


def test_benjamini_hochberg_steps_up_and_ignores_nan():
    # Sorted: .001 <= .0125, .028 > .025, but .03 <= .0375: step-up rejects all three.
    assert ms.benjamini_hochberg([0.03, 0.001, 0.9, 0.028], 0.05).tolist() == [
        True, True, False, True]
    # NaN is untested: never rejected and not counted in m (m = 4 as above).
    assert ms.benjamini_hochberg([0.03, np.nan, 0.001, 0.9, 0.028, np.nan], 0.05).tolist() == [
        True, False, True, False, True, False]
    assert ms.benjamini_hochberg([0.03, None, 0.001, 0.9, 0.028], 0.05).tolist() == [
        True, False, True, False, True]
    assert ms.benjamini_hochberg([], 0.05).tolist() == []
    assert ms.benjamini_hochberg([np.nan], 0.05).tolist() == [False]
    with pytest.raises(ValueError):
        ms.benjamini_hochberg([1.5], 0.05)


def _bh_adjusted(p: np.ndarray, q: float) -> np.ndarray:
    """statsmodels' fdr_bh: adjusted p = running minimum from the top of p * m / rank."""
    order = np.argsort(p)
    m = p.size
    adjusted = np.minimum.accumulate((p[order] * m / np.arange(1, m + 1))[::-1])[::-1]
    reject = np.empty(m, dtype=bool)
    reject[order] = np.minimum(adjusted, 1) <= q
    return reject


def test_benjamini_hochberg_matches_adjusted_p_values():
    rng = np.random.default_rng(11)
    for _ in range(200):
        size = int(rng.integers(1, 40))
        # A mixture of nulls and signals, so the cut falls anywhere.
        p = np.where(rng.random(size) < 0.3, rng.random(size) * 0.01, rng.random(size))
        q = float(rng.choice([0.01, 0.05, 0.1, 0.2]))
        assert ms.benjamini_hochberg(p, q).tolist() == _bh_adjusted(p, q).tolist()


# -- Discrimination ----------------------------------------------------------------------


def test_midranks_are_scipy_rankdata():
    x = np.random.default_rng(5).integers(0, 20, 500).astype(float)
    assert np.array_equal(ms._midranks(x), sps.rankdata(x))


def test_roc_auc_matches_sklearn_with_ties():
    rng = np.random.default_rng(12)
    for size, levels in ((50, 5), (1000, 30), (5000, 1000)):
        y = (rng.random(size) < 0.3).astype(int)
        p = rng.integers(0, levels, size) / levels + 0.05 * y * rng.random(size)
        p = np.round(p, 2)
        assert abs(ms.roc_auc(y, p) - roc_auc_score(y, p)) < 1e-12
    with pytest.raises(ValueError, match="one class"):
        ms.roc_auc(np.zeros(10, dtype=int), np.arange(10.0))
    with pytest.raises(ValueError):
        ms.roc_auc(np.array([0, 1, 2]), np.arange(3.0))


def _brute_components(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong's structural components by comparing every positive with every negative."""
    x, z = p[y == 1], p[y == 0]
    psi = (x[:, None] > z[None, :]) + 0.5 * (x[:, None] == z[None, :])
    return psi.mean(axis=1), psi.mean(axis=0)


def test_delong_matches_the_quadratic_definition(scored):
    y, p = scored
    y, p = y[:400], np.round(p[:400], 1)  # coarse ties
    v10, v01 = _brute_components(y, p)
    expected_se = math.sqrt(np.var(v10, ddof=1) / v10.size + np.var(v01, ddof=1) / v01.size)
    result = ms.auc_delong(y, p)
    assert result.auc == pytest.approx(v10.mean(), abs=1e-12)
    assert result.standard_error == pytest.approx(expected_se, rel=1e-10)
    assert (result.positives, result.negatives) == (float(y.sum()), float((1 - y).sum()))


def test_delong_standard_error_agrees_with_the_bootstrap(scored):
    y, p = scored
    result = ms.auc_delong(y, p)
    rng = np.random.default_rng(99)
    boot = []
    for _ in range(1000):
        i = rng.integers(0, y.size, y.size)
        boot.append(ms.roc_auc(y[i], p[i]))
    assert result.standard_error == pytest.approx(float(np.std(boot, ddof=1)), rel=0.2)


def test_paired_delong_identical_scores_and_a_better_score(scored):
    y, p = scored
    same = ms.paired_auc_difference(y, p, p)
    assert same.difference == 0 and same.standard_error == 0 and same.p_value == 1.0
    rng = np.random.default_rng(4)
    noisy = p + rng.normal(0, 0.15, p.size)  # the champion, a worse score of the same rows
    better = ms.paired_auc_difference(y, noisy, p)
    assert better.auc_a == pytest.approx(ms.roc_auc(y, noisy), abs=1e-12)
    assert better.auc_b == pytest.approx(ms.roc_auc(y, p), abs=1e-12)
    assert better.difference > 0.02 and better.p_value < 1e-4
    assert better.difference - 1.96 * better.standard_error > 0
    assert better.rows == y.size
    # Swapping the two flips the sign and keeps the error.
    worse = ms.paired_auc_difference(y, p, noisy)
    assert worse.difference == pytest.approx(-better.difference)
    assert worse.standard_error == pytest.approx(better.standard_error)


def test_paired_delong_standard_error_agrees_with_the_bootstrap(scored):
    y, p = scored
    rng = np.random.default_rng(8)
    other = p + rng.normal(0, 0.1, p.size)
    result = ms.paired_auc_difference(y, other, p)
    boot = []
    for _ in range(1000):
        i = rng.integers(0, y.size, y.size)
        boot.append(ms.roc_auc(y[i], p[i]) - ms.roc_auc(y[i], other[i]))
    assert result.standard_error == pytest.approx(float(np.std(boot, ddof=1)), rel=0.2)
    # Paired beats unpaired: the shared rows cancel much of the error.
    unpaired = math.hypot(ms.auc_delong(y, p).standard_error,
                          ms.auc_delong(y, other).standard_error)
    assert result.standard_error < unpaired


def test_hanley_mcneil_hand_value_and_small_counts():
    # A = .8, 50 and 50: Q1 = 2/3, Q2 = 32/45, var = (.16 + 49(Q1-.64) + 49(Q2-.64)) / 2500.
    assert ms.hanley_mcneil_se(0.8, 50, 50) == pytest.approx(0.0445022, abs=1e-7)
    assert ms.hanley_mcneil_se(0.8, 50.5, 49.5) > 0
    assert math.isnan(ms.hanley_mcneil_se(0.8, 0.5, 100))
    assert math.isnan(ms.hanley_mcneil_se(0.8, 100, 0))


def _brute_cbpe(p: np.ndarray) -> float:
    weight = np.outer(p, 1 - p)
    np.fill_diagonal(weight, 0.0)
    wins = (p[:, None] > p[None, :]) + 0.5 * (p[:, None] == p[None, :])
    return float((weight * wins).sum() / weight.sum())


def test_cbpe_matches_brute_force_with_ties():
    rng = np.random.default_rng(21)
    for decimals in (1, 2, 6):
        p = np.round(_logistic(rng.normal(-1.0, 1.2, 300)), decimals)
        assert abs(ms.cbpe_auc(p).auc - _brute_cbpe(p)) < 1e-12
    # Every row tied: the only pairs are half-wins.
    assert ms.cbpe_auc(np.full(50, 0.3)).auc == pytest.approx(0.5, abs=1e-12)


def test_cbpe_estimates_the_realised_auc_of_calibrated_labels():
    rng = np.random.default_rng(31)
    p = np.round(_logistic(rng.normal(-1.5, 1.0, 200_000)), 3)
    y = (rng.random(p.size) < p).astype(int)
    estimate = ms.cbpe_auc(p)
    assert abs(estimate.auc - ms.roc_auc(y, p)) < 0.005
    assert estimate.positives == pytest.approx(p.sum()) and estimate.negatives == pytest.approx(
        (1 - p).sum())
    assert estimate.standard_error == ms.hanley_mcneil_se(estimate.auc, estimate.positives,
                                                          estimate.negatives)


def test_cbpe_rejects_what_has_no_pairs():
    with pytest.raises(ValueError):
        ms.cbpe_auc(np.zeros(10))
    with pytest.raises(ValueError):
        ms.cbpe_auc(np.array([0.2, np.nan]))
    with pytest.raises(ValueError):
        ms.cbpe_auc(np.array([]))


# -- Calibration and bands ---------------------------------------------------------------


@pytest.mark.parametrize("rows,bins", [(2000, 10), (7, 10), (103, 7), (1, 10)])
def test_calibration_is_trainer_metrics_ece(scored, rows, bins):
    y, p = scored
    y, p = y[:rows], p[:rows]
    result = ms.calibration(y, p, bins)
    table = tm.calibration_table(y, p, bins)
    assert result.ece == pytest.approx(tm.expected_calibration_error(table), rel=1e-12, abs=0)
    n = sum(b["rows"] for b in table)
    expected_se = math.sqrt(sum((b["rows"] / n) ** 2 * b["mean_predicted"]
                                * (1 - b["mean_predicted"]) / b["rows"] for b in table))
    assert result.standard_error == pytest.approx(expected_se, rel=1e-12)
    assert result.observed_rate == pytest.approx(y.mean())
    assert result.predicted_rate == pytest.approx(p.mean())
    assert result.rate_standard_error == pytest.approx(
        math.sqrt(p.mean() * (1 - p.mean()) / rows))
    assert result.rows == rows


def test_calibration_standard_error_is_the_spread_of_calibrated_labels(scored):
    _, p = scored
    rng = np.random.default_rng(41)
    result = ms.calibration(np.zeros(p.size, dtype=int), p)
    order = np.argsort(p, kind="stable")
    chunks = np.array_split(order, 10)
    signed, overall = [], []
    for _ in range(2000):
        y = (rng.random(p.size) < p).astype(int)
        signed.append(sum(len(c) / p.size * (y[c].mean() - p[c].mean()) for c in chunks))
        overall.append(y.mean())
    # An upper bound (within-bin spread of p only lowers the variance), and a tight one.
    assert 0.85 * result.standard_error <= np.std(signed) <= 1.05 * result.standard_error
    assert 0.85 * result.rate_standard_error <= np.std(overall) \
        <= 1.05 * result.rate_standard_error


def test_band_rates_follow_trainer_band_table(scored):
    y, p = scored
    bands = [{"band": "A", "max_probability": 0.05}, {"band": "B", "max_probability": 0.1},
             {"band": "C", "max_probability": 0.2}, {"band": "X", "max_probability": 0.21},
             {"band": "D", "max_probability": 0.5}]  # rows above 0.5 are in no band
    p = p.copy()
    p[p == 0.21] = 0.22  # leave band X empty
    bounds, names = [b["max_probability"] for b in bands], [b["band"] for b in bands]
    ours = ms.band_rates(y, p, bounds, names)
    theirs = tm.band_table(y, p, bands)
    assert [r["band"] for r in ours] == names
    assert [r["rows"] for r in ours] == [r["rows"] for r in theirs]
    assert [r["observed_rate"] for r in ours] == pytest.approx(
        [r["observed_rate"] for r in theirs])
    empty = ours[3]
    assert empty == {"band": "X", "rows": 0, "observed_rate": None, "predicted_rate": None,
                     "standard_error": None}
    first = ours[0]
    inside = p <= 0.05
    assert first["predicted_rate"] == pytest.approx(p[inside].mean())
    assert first["standard_error"] == pytest.approx(
        math.sqrt(p[inside].mean() * (1 - p[inside].mean()) / inside.sum()))
    assert ms.band_shares(p, bounds).tolist() == [r["rows"] for r in ours]
    assert ms.band_shares(p, bounds).sum() == int((p <= 0.5).sum())
    json.dumps(ours)


def test_band_shares_bound_is_inclusive():
    p = np.array([0.0, 0.05, 0.0500001, 0.1, 1.0, np.nan])
    assert ms.band_shares(p, [0.05, 0.1, 1.0]).tolist() == [2, 2, 1]
    with pytest.raises(ValueError):
        ms.band_shares(p, [0.1, 0.05])


# -- Minimum cohort sizes ----------------------------------------------------------------


@pytest.mark.parametrize("reference_rows,bins,alpha,detectable", [
    (5000, 10, 0.05, 0.1), (5000, 10, 0.01, 0.02), (100_000, 5, 0.05, 0.001),
    (2000, 20, 0.001, 0.05)])
def test_min_rows_for_psi_is_the_boundary(reference_rows, bins, alpha, detectable):
    n = ms.min_rows_for_psi(reference_rows, bins, alpha, detectable)
    assert 1 <= n < ms.NEVER

    def critical(rows: int) -> float:
        counts = np.full(bins, rows / bins)
        return ms.psi_test(np.full(bins, 1 / bins), reference_rows, counts, alpha).critical_value

    assert critical(n) <= detectable
    assert n == 1 or critical(n - 1) > detectable


def test_min_rows_for_psi_is_monotonic_and_knows_the_impossible():
    base = ms.min_rows_for_psi(5000, 10, 0.05, 0.05)
    assert ms.min_rows_for_psi(5000, 10, 0.05, 0.025) > base  # a smaller drift
    assert ms.min_rows_for_psi(5000, 10, 0.01, 0.05) > base  # a stricter test
    assert ms.min_rows_for_psi(50_000, 10, 0.05, 0.05) < base  # a larger reference
    # chi2.ppf(.95, 9) / 500 = 0.034: no cohort makes the critical value 0.03.
    assert ms.min_rows_for_psi(500, 10, 0.05, 0.03) == ms.NEVER
    assert ms.min_rows_for_psi(500, 1, 0.05, 0.03) == 1


@pytest.mark.parametrize("auc,rate,target", [(0.75, 0.1, 0.02), (0.8, 0.02, 0.01),
                                             (0.6, 0.5, 0.005), (0.9, 0.3, 0.05)])
def test_min_rows_for_auc_is_the_boundary(auc, rate, target):
    n = ms.min_rows_for_auc(auc, rate, target)
    assert n < ms.NEVER
    assert ms.hanley_mcneil_se(auc, n * rate, n * (1 - rate)) <= target
    previous = ms.hanley_mcneil_se(auc, (n - 1) * rate, (n - 1) * (1 - rate))
    assert math.isnan(previous) or previous > target


def test_min_rows_for_auc_is_monotonic_and_knows_the_unreachable():
    base = ms.min_rows_for_auc(0.75, 0.1, 0.02)
    assert ms.min_rows_for_auc(0.75, 0.1, 0.01) > base
    assert ms.min_rows_for_auc(0.75, 0.02, 0.02) > base  # fewer defaults
    assert ms.min_rows_for_auc(0.75, 0.1, 1e-5) == ms.NEVER


# -- Results -----------------------------------------------------------------------------


def test_results_are_plain_json(scored):
    y, p = scored
    results = [ms.psi_test([0.5, 0.5], 100, np.array([30, 20]), 0.05),
               ms.proportion_test(0.1, 100, 5, 50), ms.auc_delong(y, p),
               ms.paired_auc_difference(y, p, p), ms.cbpe_auc(p), ms.calibration(y, p)]
    for result in results:
        d = result.to_dict()
        assert all(type(v) in (int, float) for v in d.values()), d
        assert json.loads(json.dumps(d, allow_nan=False)) == d
    with pytest.raises(AttributeError):
        results[0].psi = 1.0  # type: ignore[misc]
    # NaN (an undefined standard error) becomes null.
    lonely = ms.auc_delong(np.array([1, 0, 0]), np.array([0.9, 0.1, 0.2]))
    assert lonely.to_dict()["standard_error"] is None
