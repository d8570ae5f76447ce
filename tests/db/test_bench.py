"""`make bench QUICK=1` runs end to end and writes its results; the figures are not judged."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from bench.report import RESULT_KEYS
from bench.throughput import BATCH_ROUNDS, EXPLAIN_ROUNDS, IDLE_TICKS
from devenv.paths import REPO_ROOT


def test_quick_bench_writes_json_with_every_section_and_a_png(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    [result] = list(tmp_path.glob("*.json"))
    [chart] = list(tmp_path.glob("*.png"))
    assert chart.stem == result.stem
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    results = json.loads(result.read_text())
    assert tuple(results) == RESULT_KEYS
    assert results["meta"]["quick"] is True
    # The code measured: the checkout's commit, marked when files differ (bench.pooled).
    assert re.fullmatch(r"[0-9a-f]{40}(\+changes)?", results["meta"]["commit"])

    latency = results["latency"]
    rounds = results["config"]["latency_rounds"]
    assert rounds >= 2 and latency["rounds"] == rounds
    assert latency["round_seconds"] == results["config"]["latency_round_seconds"]
    assert len(latency["round_orders"]) == rounds
    points = latency["points"]
    assert set(points) == {"floor", "blink_score", "blink_score_py", "microservice"}
    for name, per_clients in points.items():
        assert set(per_clients) == {"1", "4", "16"}
        for summary in per_clients.values():
            assert summary["requests"] > 0
            assert 0 < summary["p50_ms"] <= summary["p95_ms"] <= summary["p99_ms"]
            # Every round ran and kept its own summary; the point pools their requests.
            assert [r["round"] for r in summary["rounds"]] == list(range(1, rounds + 1))
            # A round may complete no request on a stalled machine: kept, named, not judged.
            empty = [r for r in summary["rounds"] if r["requests"] == 0]
            assert summary["empty_rounds"] == len(empty) < rounds
            assert all(r["p50_ms"] is None for r in empty)
            assert sum(r["requests"] for r in summary["rounds"]) == summary["requests"]
            if name == "floor":
                assert "reference" not in summary
                continue
            assert summary["reference"] in points
            assert len(summary["ratio_per_round"]) == rounds
            assert all(r is None or r > 0 for r in summary["ratio_per_round"])
            assert summary["ratio_min"] <= summary["ratio_median"] <= summary["ratio_max"]
    # One client: floor and blink_score in one pgbench run per round, the kernel beside it.
    # A stalled round may leave a side without requests: kept with no figures, not judged.
    pairs = latency["one_client_pairs"]
    assert [p["round"] for p in pairs] == list(range(1, rounds + 1))
    judged = [p for p in pairs if p["added_us"] is not None]
    assert judged, pairs
    for pair in pairs:
        assert pair["kernel_us_per_row"] == min(pair["kernel_us_per_row_passes"]) > 0, pair
        if pair in judged:
            assert pair["requests"]["floor"] > 0 and pair["requests"]["blink_score"] > 0
            # kernel_us_per_row is rounded to 1e-3 µs; the quick model's row takes ~0.5 µs
            assert pair["added_over_kernel"] == pytest.approx(
                pair["added_us"] / pair["kernel_us_per_row"], rel=1e-2)
        else:
            assert min(pair["requests"].values()) == 0, pair
    # blink and the baseline score the same model, so they must agree.
    assert results["latency"]["max_abs_diff_blink_vs_microservice"] < 1e-9
    assert results["batch"]["max_abs_diff_kernel_vs_lightgbm"] < 1e-9
    batch = results["batch"]
    assert batch["kernel_tl2cgen_rows_per_s"] > 0 and batch["kernel_quickscorer_rows_per_s"] > 0
    assert batch["kernel_rows_per_s"] == max(batch["kernel_tl2cgen_rows_per_s"],
                                             batch["kernel_quickscorer_rows_per_s"])
    assert results["batch"]["blink_score_per_row_rows_per_s"] > 0
    explanations = results["explanations"]
    assert explanations["lightgbm_pred_contrib_rows_per_s"] > 0
    assert explanations["absent"] == []
    assert explanations["blink_explain_on_demand_rows_per_s"] > 0
    # Paired rounds: on demand over parts of the users, pred_contrib over the same parts; the
    # totals are the rounds' sums, so their ratio lies within the rounds' ratios.
    rounds = explanations["blink_explain_on_demand_round_ratios_to_pred_contrib"]
    assert len(rounds) == EXPLAIN_ROUNDS and all(r > 0 for r in rounds)
    assert min(rounds) * 0.999 <= (explanations["blink_explain_on_demand_rows_per_s"]
                                   / explanations["lightgbm_pred_contrib_rows_per_s"]
                                   ) <= max(rounds) * 1.001
    assert explanations["blink_explain_stored_rows_per_s"] > 0
    # Rescoring: half of rescore_users in one run, then the workers at once, each its own
    # share, reach every user blink_explain has not already audited.
    config = results["config"]
    assert explanations["rescore_users"] == config["rescore_users"] // 2
    assert explanations["rescore_summary"]["complete"] is False  # stopped at max_users
    workers = explanations["rescore_workers_summaries"]
    assert [(s["worker"], s["workers"]) for s in workers] == [(0, 2), (1, 2)]
    assert all(s["ran"] and s["complete"] and s["scored"] > 0 for s in workers), workers
    assert explanations["rescore_workers_users"] == (config["n_users"] - explanations["rows"]
                                                     - 1 - explanations["rescore_users"])
    assert explanations["blink_rescore_pending_workers_rows_per_s"] > 0
    # Idle ticks after a complete run: each way timed in turns (idle_ticks checks each
    # run's summary: nothing scored, every user read only when the cursors were aged).
    assert explanations["rescore_idle_tick_users"] == config["n_users"]
    for key in ("rescore_idle_tick_ms_rounds", "rescore_idle_tick_every_user_ms_rounds"):
        assert len(explanations[key]) == IDLE_TICKS and all(ms > 0 for ms in explanations[key])
    assert "an idle rescoring tick (nothing pending" in done.stdout
    assert "2 workers at once" in results["targets"][6]["measured_as"]
    assert results["batch"]["blink_score_batch_rows_per_s"] > 0
    # The batch's rounds: each with its own table read, both ratios, the read one the larger.
    assert results["batch"]["table_read_rows_per_s"] > 0
    alone = results["batch"]["blink_score_batch_round_ratios_to_kernel"]
    with_read = results["batch"]["blink_score_batch_round_ratios_to_read_and_kernel"]
    one_pass = results["batch"]["blink_score_batch_round_ratios_one_pass"]
    assert len(alone) == len(with_read) == len(one_pass) == BATCH_ROUNDS
    assert all(r > 0 for r in one_pass)
    assert "one pass each" in results["targets"][5]["measured_as"]
    # The median's sampling error: with BATCH_ROUNDS (31) rounds, the 10th to the 22nd.
    batch = results["targets"][5]
    ordered = sorted(with_read)
    assert (batch["interval_low"], batch["interval_high"]) == (ordered[9], ordered[-10])
    assert batch["interval_coverage"] >= 0.95 and batch["shown"] in (True, False)
    per_call = results["batch"]["blink_score_per_row_round_ratios_one_pass"]
    assert len(per_call) == len(
        results["batch"]["blink_score_per_row_round_ratios_to_fetch_and_kernel"]) > 0
    assert "one pass each" in results["targets"][0]["measured_as"]
    assert all(r > a > 0 for a, r in zip(alone, with_read, strict=True))
    assert results["cold_start"]["first_call_ms"] > 0
    assert results["reload"]["calls_until_new_model"] == [1] * results["reload"]["repeats"]
    assert results["batch"]["plain_fetch_per_row_rows_per_s"] > 0
    memory = results["memory"]["private_mb"]
    assert set(memory) == {"fresh", "blink_score", "blink_score_batch", "blink_explain"}
    assert all(v > 0 for v in memory.values())  # read from /proc: root, or the server owner
    # Measured after the call: an explanation starts PL/Python (a batch in C need not).
    assert memory["blink_explain"] > memory["fresh"] + 1
    verdicts = results["targets"]
    assert len(verdicts) == 10
    assert all(t["pass"] in (True, False) for t in verdicts), verdicts  # every figure measured
    # The microservice targets are the median per-round ratios at 4 and 16 clients.
    for target, n in zip(verdicts[3:5], ("4", "16"), strict=True):
        point = points["microservice"][n]
        assert point["reference"] == "blink_score_py" and n in target["target"]
        assert target["value"] == pytest.approx(point["ratio_median"], abs=1e-4)
        assert (target["value_min"], target["value_max"]) == (point["ratio_min"],
                                                              point["ratio_max"])
    # The one-client target is the worst round's pair.
    assert verdicts[2]["value"] == pytest.approx(max(p["added_over_kernel"] for p in judged),
                                                 abs=1e-4)
    # The printed table carries every target's verdict.
    assert done.stdout.count("PASS") + done.stdout.count("FAIL") == 10


def _native_ab(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bench.native_ab", "--quick", *args],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=240)


def test_native_ab_times_a_variant_pair_by_pair_and_refuses_other_answers(tmp_path):
    # The module against itself: same answers, then the pairs' differences and interval.
    done = _native_ab(str(REPO_ROOT / "db" / "native" / "blink_native.c"), "--pairs", "6")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "same answers for all 2,000 users; 6 pairs of batches" in done.stdout
    assert re.search(r"median [+-]\d\.\d{3} µs a row, its 96\.9% interval [+-]\d\.\d{3} to "
                     r"[+-]\d\.\d{3}; the variant faster in \d of 6 pairs", done.stdout)
    # A variant that halves every probability: refused before anything is timed, naming the
    # first element that differs. Its module file is removed.
    source = (REPO_ROOT / "db" / "native" / "blink_native.c").read_text()
    halved = source.replace("l->p = q->out[r];", "l->p = q->out[r] / 2;")
    assert halved != source
    variant = tmp_path / "halved.c"
    variant.write_text(halved)
    done = _native_ab(str(variant), "--pairs", "2")
    assert done.returncode == 2
    assert "the variant answers differently from the module: element 1: (" in done.stderr
    assert "pairs of batches" not in done.stdout
    from devenv import native
    assert not list(native.module_dir().glob("blink_native_ab_*.so"))
    # A file gcc rejects: refused before the data is prepared.
    broken = tmp_path / "broken.c"
    broken.write_text("int broken(")
    done = _native_ab(str(broken))
    assert done.returncode == 2 and "gcc failed on broken.c" in done.stderr
    assert "starting a throwaway PostgreSQL cluster" not in done.stdout
