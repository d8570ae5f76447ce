"""The benchmark's arithmetic: percentiles, pgbench log parsing, rounds and their ratios,
target verdicts."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from bench import clients, pgbench
from bench.config import full, quick
from bench.latency import TARGETS, combine, round_order
from bench.report import batch_figure, table, targets
from bench.stats import Samples, pool_rounds, ratio, round_ratios, summarize


def test_summarize_percentiles_and_throughput():
    summary = summarize([float(x) for x in range(1, 101)], elapsed_s=2.0)
    assert summary["p50_ms"] == pytest.approx(50.5)
    assert summary["p99_ms"] == pytest.approx(99.01)
    assert summary["requests"] == 100
    assert summary["requests_per_s"] == 50.0


def test_summarize_refuses_an_empty_run():
    with pytest.raises(ValueError, match="no latency samples"):
        summarize([], elapsed_s=1.0)


def test_ratio_of_missing_or_zero_reference_is_none():
    assert ratio(3.0, 2.0) == 1.5
    assert ratio(None, 2.0) is None
    assert ratio(1.0, 0.0) is None


def test_pgbench_logs_count_only_once_every_client_is_warm(tmp_path):
    # client transaction_no time_us script_no epoch epoch_us (the transaction's end)
    (tmp_path / "tx.123").write_text(
        "0 0 90000 0 100 90000\n"   # client 0 warm-up ends at 100.090
        "0 1 40 0 100 90040\n"      # started 100.090000: before client 1 is warm, left out
        "0 2 50 0 100 200050\n"     # started 100.200000: counted
        "1 0 80000 0 100 150000\n"  # client 1 warm-up ends at 100.150: everyone warm
    )
    (tmp_path / "tx.123.1").write_text("1 1 60 0 100 150060\n1 2 80 0 101 150000\n")
    samples = pgbench.read_logs(tmp_path, warmup=1)
    assert sorted(samples.latencies_ms) == [0.05, 0.06, 0.08]
    assert samples.seconds == pytest.approx(1.0)  # from 100.150 to the last end, 101.150


def test_pgbench_logs_without_warmup_time_from_the_first_start(tmp_path):
    (tmp_path / "tx.1").write_text("0 0 1000 0 5 1000\n0 1 1000 0 5 501000\n")
    samples = pgbench.read_logs(tmp_path, warmup=0)
    assert samples.latencies_ms == [1.0, 1.0]
    assert samples.seconds == pytest.approx(0.501)


def test_rounds_pool_samples_and_keep_each_rounds_summary():
    point = pool_rounds([Samples([1.0, 2.0, 3.0], 1.0), Samples([10.0] * 5, 2.0)])
    assert point["requests"] == 8
    assert point["requests_per_s"] == pytest.approx(8 / 3, abs=0.1)
    assert point["p50_ms"] == pytest.approx(10.0)  # pooled: 5 of the 8 samples are 10
    assert [r["p50_ms"] for r in point["rounds"]] == [2.0, 10.0]
    assert point["p50_ms_round_median"] == pytest.approx(6.0)
    with pytest.raises(ValueError, match="no rounds"):
        pool_rounds([])


def test_ratios_are_taken_round_by_round_and_reported_as_median_and_spread():
    def point(*p50s):
        return {"rounds": [{"p50_ms": p} for p in p50s]}

    # The machine slowed down in round 2 for both sides: the ratio barely moves.
    got = round_ratios(point(2.0, 6.0, 3.0), point(1.0, 4.0, 1.0))
    assert got["ratio_per_round"] == [2.0, 1.5, 3.0]
    assert (got["ratio_median"], got["ratio_min"], got["ratio_max"]) == (2.0, 1.5, 3.0)
    with pytest.raises(ValueError, match="same rounds"):
        round_ratios(point(1.0), point(1.0, 2.0))


def test_rounds_alternate_direction_and_keep_each_ratios_sides_adjacent():
    first, second = round_order(0), round_order(1)
    assert set(first) == set(TARGETS) and second == first[::-1] and round_order(2) == first
    for order in (first, second):
        for target, reference in (("blink_score", "floor"), ("microservice", "blink_score_py")):
            assert abs(order.index(target) - order.index(reference)) == 1


def test_combine_builds_points_with_rounds_and_per_round_ratios():
    samples = {name: {1: [Samples([p50], 1.0), Samples([2 * p50], 1.0)]}
               for name, p50 in (("floor", 1.0), ("blink_score", 3.0),
                                 ("blink_score_py", 2.0), ("microservice", 20.0))}
    points = combine(samples, {name: {1: [0.0, 9.5]} for name in samples})
    blink = points["blink_score"]["1"]
    assert blink["reference"] == "floor" and blink["ratio_per_round"] == [3.0, 3.0]
    assert blink["driver"] == "pgbench" and blink["clients"] == 1
    assert [r["round"] for r in blink["rounds"]] == [1, 2]
    assert [r["started_at_s"] for r in blink["rounds"]] == [0.0, 9.5]
    assert points["microservice"]["1"]["ratio_median"] == 10.0
    assert points["microservice"]["1"]["driver"] == "python-threads"
    assert "reference" not in points["floor"]["1"]


def test_python_client_starts_the_clock_once_every_thread_is_warm():
    events: list[tuple[str, float]] = []

    class Slow:
        """A session whose first (warm-up) call is slow, like loading the model."""

        def __init__(self) -> None:
            self.calls = 0

        def call(self, user_id: str) -> float:
            self.calls += 1
            if self.calls == 1:
                time.sleep(0.2)
            events.append(("warm" if self.calls == 1 else "timed", time.perf_counter()))
            return 0.5

        def close(self) -> None:
            pass

    samples = clients.run(Slow, clients=3, seconds=0.1, max_requests=50, warmup=1,
                          user_ids=["u1", "u2"], seed=1)
    assert 0 < len(samples.latencies_ms) <= 50
    last_warm = max(t for kind, t in events if kind == "warm")
    assert all(t > last_warm for kind, t in events if kind == "timed")
    assert samples.seconds > 0


def test_latency_rounds_must_be_whole_seconds_for_pgbench():
    assert full().latency_round_seconds * full().latency_rounds == full().latency_seconds
    assert quick().latency_rounds >= 2
    assert quick().as_dict()["latency_round_seconds"] == quick().latency_round_seconds
    with pytest.raises(ValueError, match="whole number"):
        replace(full(), latency_seconds=8.0, latency_rounds=5)
    with pytest.raises(ValueError, match="whole number"):
        replace(full(), latency_rounds=0)


def _results(blink_p50, floor_p50, micro_p50, py_p50, cold_ms, batch):
    def point(p50):
        return {"1": {"p50_ms": p50, "p95_ms": p50, "p99_ms": p50, "requests_per_s": 1.0}}

    return {
        "meta": {"timestamp": "t", "quick": True, "machine": "m"},
        "config": {"trees": 1, "leaves": 2, "n_users": 3, "concurrency": [1]},
        "setup": {"features": 7},
        "latency": {"points": {"floor": point(floor_p50), "blink_score": point(blink_p50),
                               "blink_score_py": point(py_p50),
                               "microservice": point(micro_p50)}},
        "batch": {"rows": 10, "kernel_tl2cgen_rows_per_s": 1000.0, **batch,
                  "ratios_to_kernel": {}},
        "explanations": {"rows": 5, "lightgbm_pred_contrib_rows_per_s": 10.0,
                         "absent": ["blink_explain(text)"], "ratios_to_pred_contrib": {}},
        "cold_start": {"first_call_ms": cold_ms, "warm_call_ms": 1.0, "connect_ms": 1.0,
                       "breakdown_medians": {}},
        "reload": {"reload_ms": 2.0, "warm_call_ms": 1.0, "calls_until_new_model": [1]},
    }


def test_targets_pass_and_fail_on_the_runs_own_references():
    # A results file from before rounds (one run per point): the ratio of the two p50s.
    good = _results(0.14, 0.1, 5.0, 0.2, 30.0, {"blink_score_per_row_rows_per_s": 600.0})
    assert [t["pass"] for t in targets(good)] == [True, True, True, True]
    bad = _results(0.16, 0.1, 1.0, 0.2, 80.0, {"blink_score_per_row_rows_per_s": 400.0})
    verdicts = targets(bad)
    assert [t["pass"] for t in verdicts] == [False, False, False, False]
    assert verdicts[0]["value"] == pytest.approx(1.6)
    bad["targets"] = verdicts
    assert table(bad).count("FAIL") == 4


def _with_rounds(results, p50s_by_target):
    """``results`` as a run in rounds: each target's point at 1 client has these round p50s."""
    samples = {name: {1: [Samples([p50] * 3, 1.0) for p50 in p50s]}
               for name, p50s in p50s_by_target.items()}
    results["latency"].update(rounds=len(next(iter(p50s_by_target.values()))), round_seconds=1,
                              points=combine(samples))
    return results


def test_latency_targets_use_the_median_of_per_round_ratios():
    base = _results(1.0, 1.0, 1.0, 1.0, 30.0, {"blink_score_per_row_rows_per_s": 600.0})
    # Round 3 was slow for both sides, round 2 for blink_score alone. The pooled p50s (0.12
    # and 0.6) would say 5x; round by round blink_score is 1.3x the floor twice out of three.
    results = _with_rounds(base, {"floor": [0.1, 0.12, 0.5], "blink_score": [0.13, 0.6, 0.65],
                                  "blink_score_py": [0.2, 0.2, 0.2],
                                  "microservice": [2.4, 1.8, 2.2]})
    verdicts = targets(results)
    assert results["latency"]["points"]["blink_score"]["1"]["p50_ms"] == pytest.approx(0.6)
    assert verdicts[0]["value"] == pytest.approx(1.3)
    assert (verdicts[0]["value_min"], verdicts[0]["value_max"]) == (1.3, 5.0)
    assert verdicts[0]["pass"] is True
    assert verdicts[1]["value"] == pytest.approx(11.0) and verdicts[1]["pass"] is True
    assert (verdicts[1]["value_min"], verdicts[1]["value_max"]) == (9.0, 12.0)
    assert "median of 3 per-round ratios" in verdicts[0]["measured_as"]
    assert "value_min" not in verdicts[3]  # the cold start is no ratio
    results["targets"] = verdicts
    printed = table(results)
    assert "3 rounds of 1 s" in printed
    assert "1.300x  [1.300-5.000]" in printed
    assert "11.000x  [9.000-12.000]" in printed


def test_batch_target_prefers_the_batch_function_over_per_row_scoring():
    batch = {"blink_score_per_row_rows_per_s": 1.0, "blink_score_batch_rows_per_s": 5.0}
    assert batch_figure(batch) == ("blink_score_batch_rows_per_s", 5.0)
    assert batch_figure({"blink_score_per_row_rows_per_s": 1.0, "blink_score_batch_rows_per_s":
                         None}) == ("blink_score_per_row_rows_per_s", 1.0)
    assert batch_figure({}) == ("none", None)
