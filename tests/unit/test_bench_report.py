"""The benchmark's arithmetic: percentiles, pgbench log parsing, target verdicts."""

from __future__ import annotations

import pytest

from bench import pgbench
from bench.report import batch_figure, table, targets
from bench.stats import ratio, summarize


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


def test_pgbench_logs_drop_each_clients_warmup(tmp_path):
    (tmp_path / "tx.123").write_text("0 0 90000 0 1 2\n0 1 40 0 1 2\n1 0 80000 0 1 2\n")
    (tmp_path / "tx.123.1").write_text("2 0 70000 0 1 2\n2 1 60 0 1 2\n2 2 80 0 1 2\n")
    assert sorted(pgbench.parse_logs(tmp_path, warmup=1)) == [0.04, 0.06, 0.08]


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
    good = _results(0.14, 0.1, 5.0, 0.2, 30.0, {"blink_score_per_row_rows_per_s": 600.0})
    assert [t["pass"] for t in targets(good)] == [True, True, True, True]
    bad = _results(0.16, 0.1, 1.0, 0.2, 80.0, {"blink_score_per_row_rows_per_s": 400.0})
    verdicts = targets(bad)
    assert [t["pass"] for t in verdicts] == [False, False, False, False]
    assert verdicts[0]["value"] == pytest.approx(1.6)
    bad["targets"] = verdicts
    assert table(bad).count("FAIL") == 4


def test_batch_target_prefers_the_batch_function_over_per_row_scoring():
    batch = {"blink_score_per_row_rows_per_s": 1.0, "blink_score_batch_rows_per_s": 5.0}
    assert batch_figure(batch) == ("blink_score_batch_rows_per_s", 5.0)
    assert batch_figure({"blink_score_per_row_rows_per_s": 1.0, "blink_score_batch_rows_per_s":
                         None}) == ("blink_score_per_row_rows_per_s", 1.0)
    assert batch_figure({}) == ("none", None)
