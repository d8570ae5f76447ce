"""Summaries of latency samples and ratios between figures of the same run."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def summarize(latencies_ms: Sequence[float], elapsed_s: float) -> dict[str, Any]:
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


def ratio(value: float | None, reference: float | None) -> float | None:
    """``value / reference``, or None when either is missing or the reference is zero."""
    if value is None or reference is None or reference == 0 or math.isnan(reference):
        return None
    return round(value / reference, 4)


def rows_per_s(rows: int, seconds: float) -> float:
    return round(rows / seconds, 1) if seconds > 0 else math.inf
