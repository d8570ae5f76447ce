"""Summaries of latency samples and ratios between figures of the same run."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt


class Samples(NamedTuple):
    """One timed run of a load driver: a latency per request (ms) and the timed seconds;
    for one side of an alternating run, also the turn each request ran in (bench.pgbench)."""

    latencies_ms: list[float]
    seconds: float
    turns: list[int] | None = None


def summarize(latencies_ms: Sequence[float] | npt.NDArray[np.float64],
              elapsed_s: float) -> dict[str, Any]:
    """p50/p95/p99/mean (ms), sample count and throughput of one latency run.

    Parameters
    ----------
    latencies_ms
        One latency per completed request, in milliseconds.
    elapsed_s
        Wall-clock seconds the timed requests took (for requests per second).
    """
    samples = np.asarray(latencies_ms, dtype=np.float64)
    if samples.size == 0:
        raise ValueError("no latency samples: the run completed no request")
    p50, p95, p99 = np.percentile(samples, [50, 95, 99])
    return {
        "p50_ms": round(float(p50), 4),
        "p95_ms": round(float(p95), 4),
        "p99_ms": round(float(p99), 4),
        "mean_ms": round(float(samples.mean()), 4),
        "requests": int(samples.size),
        "requests_per_s": round(samples.size / elapsed_s, 1) if elapsed_s > 0 else None,
    }


# The summary of a round that completed no request: no percentiles, nothing to compare.
EMPTY_ROUND: dict[str, Any] = {"p50_ms": None, "p95_ms": None, "p99_ms": None, "mean_ms": None,
                               "requests": 0, "requests_per_s": None}


def median_interval(values: Sequence[float], confidence: float = 0.95
                    ) -> tuple[float, float, float] | None:
    """The sampling error of the median of ``values``: (low, high, coverage).

    A distribution-free interval from order statistics: with ``n`` values, the k-th smallest
    and the k-th largest hold the population's median between them with probability
    1 - 2 P(Binomial(n, 1/2) < k), whatever the values' distribution (the sign test's
    interval). k is the largest rank whose coverage is still at least ``confidence``; with
    too few values for that, the smallest and the largest, with the coverage they reach
    (5 values: 93.75%). None for fewer than two values. The rounds of a bench figure are
    noisy in ways no normal law describes (two vCPU modes), hence no mean and standard error.
    """
    from scipy.stats import binom

    n = len(values)
    if n < 2:
        return None
    ordered = sorted(values)
    tail = (1.0 - confidence) / 2.0
    k = 1
    while k < n // 2 and binom.cdf(k, n, 0.5) <= tail:  # P(fewer than k + 1 below)
        k += 1
    coverage = 1.0 - 2.0 * float(binom.cdf(k - 1, n, 0.5))
    return ordered[k - 1], ordered[n - k], round(coverage, 4)


def ratio(value: float | None, reference: float | None) -> float | None:
    """``value / reference``, or None when either is missing or the reference is zero."""
    if value is None or reference is None or reference == 0 or math.isnan(reference):
        return None
    return round(value / reference, 4)


def rows_per_s(rows: int, seconds: float) -> float:
    return round(rows / seconds, 1) if seconds > 0 else math.inf


def pool_rounds(rounds: Sequence[Samples]) -> dict[str, Any]:
    """One latency point measured in rounds: every round's summary and the pooled figures.

    Parameters
    ----------
    rounds
        Each round's samples, in the order the rounds ran.

    The point's ``p50_ms`` ... ``requests_per_s`` pool every round's raw samples (all
    requests over all timed seconds); ``rounds`` keeps each round's own summary, for the
    per-round ratios and to show the spread.
    """
    if not rounds:
        raise ValueError("no rounds: the point was never measured")
    measured = [(r.latencies_ms, r.seconds) for r in rounds if len(r.latencies_ms)]
    if not measured:
        raise ValueError(f"no latency samples: none of the point's {len(rounds)} rounds "
                         "completed a request")
    # A round that completed no request (a stalled machine) is kept as such and left out
    # of the pooled figures and of its ratios, instead of discarding the whole run.
    per_round = [summarize(r.latencies_ms, r.seconds) if len(r.latencies_ms)
                 else dict(EMPTY_ROUND) for r in rounds]
    pooled = summarize(np.concatenate([np.asarray(lat, dtype=np.float64)
                                       for lat, _ in measured]),
                       sum(seconds for _, seconds in measured))
    pooled["p50_ms_round_median"] = round(float(np.median(
        [s["p50_ms"] for s in per_round if s["requests"]])), 4)
    pooled["empty_rounds"] = len(rounds) - len(measured)
    pooled["rounds"] = per_round
    return pooled


def round_ratios(point: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    """p50 ratio of ``point`` to ``reference`` round by round, and its median and spread.

    Round i of both was measured back to back in the same round, so each ratio compares the
    two under the same machine conditions; the median of the per-round ratios is the figure,
    min and max show how much the machine moved it.
    """
    if len(point["rounds"]) != len(reference["rounds"]):
        raise ValueError("a ratio needs the same rounds on both sides")
    per_round = [ratio(mine["p50_ms"], ref["p50_ms"])
                 for mine, ref in zip(point["rounds"], reference["rounds"], strict=True)]
    known = [r for r in per_round if r is not None]
    return {
        "ratio_per_round": per_round,
        "ratio_median": round(float(np.median(known)), 4) if known else None,
        "ratio_min": min(known) if known else None,
        "ratio_max": max(known) if known else None,
    }
