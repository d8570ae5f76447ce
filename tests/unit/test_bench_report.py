"""The benchmark's arithmetic: percentiles, pgbench log parsing, rounds and their ratios,
target verdicts."""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import replace

import numpy as np
import pytest

from bench import clients, pgbench, pooled, targets
from bench.config import full, quick
from bench.latency import TARGETS, combine, round_order, summarize_pair
from bench.report import table
from bench.stats import Samples, median_interval, pool_rounds, ratio, round_ratios, summarize


def test_summarize_percentiles_and_throughput():
    summary = summarize([float(x) for x in range(1, 101)], elapsed_s=2.0)
    assert summary["p50_ms"] == pytest.approx(50.5)
    assert summary["p99_ms"] == pytest.approx(99.01)
    assert summary["requests"] == 100
    assert summary["requests_per_s"] == 50.0


def _below(n, k):
    """P(Binomial(n, 1/2) < k): the chance that fewer than k of n values fall below the
    median, written out from the law itself."""
    return sum(math.comb(n, i) for i in range(k)) / 2 ** n


def test_a_median_comes_with_its_distribution_free_interval():
    # 15 values: the 4th smallest to the 4th largest hold the median with 1 - 2 P(B < 4);
    # the 5th to the 11th would cover less than 95%.
    values = [float(v) for v in range(15, 0, -1)]
    assert median_interval(values) == (4.0, 12.0, round(1 - 2 * _below(15, 4), 4))
    assert 1 - 2 * _below(15, 4) >= 0.95 > 1 - 2 * _below(15, 5)
    # Too few values for 95%: the extremes, with the coverage they reach.
    assert median_interval([3.0, 1.0, 2.0, 5.0, 4.0]) == (1.0, 5.0, 0.9375)
    assert median_interval([2.0, 1.0], confidence=0.5) == (1.0, 2.0, 0.5)
    assert median_interval([1.0]) is None and median_interval([]) is None


def test_a_median_interval_covers_as_often_as_it_says():
    # Draws from a two-mode law like the machine's two vCPU modes: the interval of 15
    # rounds holds the true median at least as often as its stated coverage (less 3 sampling
    # errors of 2,000 trials).
    rng = np.random.default_rng(7)
    fast = rng.normal(0.95, 0.05, (2000, 15))
    slow = rng.normal(0.65, 0.05, (2000, 15))
    draws = np.where(rng.random((2000, 15)) < 0.4, fast, slow)
    truth = np.median(np.where(rng.random(400_000) < 0.4, rng.normal(0.95, 0.05, 400_000),
                               rng.normal(0.65, 0.05, 400_000)))
    held = [low <= truth <= high for low, high, _ in map(median_interval, draws.tolist())]
    coverage = median_interval(draws[0].tolist())[2]
    assert np.mean(held) >= coverage - 3 * math.sqrt(coverage * (1 - coverage) / 2000)


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
    samples = pgbench.warm_samples(pgbench.parse_logs(tmp_path), warmup=1)
    assert sorted(samples.latencies_ms) == [0.05, 0.06, 0.08]
    assert samples.seconds == pytest.approx(1.0)  # from 100.150 to the last end, 101.150


def test_pgbench_logs_without_warmup_time_from_the_first_start(tmp_path):
    (tmp_path / "tx.1").write_text("0 0 1000 0 5 1000\n0 1 1000 0 5 501000\n")
    samples = pgbench.warm_samples(pgbench.parse_logs(tmp_path), warmup=0)
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


def test_a_round_without_requests_is_kept_but_left_out_of_the_figures_and_ratios():
    point = pool_rounds([Samples([1.0, 2.0, 3.0], 1.0), Samples([], 1.5),
                         Samples([10.0] * 5, 2.0)])
    assert point["requests"] == 8
    assert point["requests_per_s"] == pytest.approx(8 / 3, abs=0.1)  # measured rounds only
    assert point["empty_rounds"] == 1
    assert [r["requests"] for r in point["rounds"]] == [3, 0, 5]
    assert point["rounds"][1]["p50_ms"] is None
    assert point["p50_ms_round_median"] == pytest.approx(6.0)
    reference = pool_rounds([Samples([1.0], 1.0)] * 3)
    ratios = round_ratios(point, reference)
    assert ratios["ratio_per_round"] == [2.0, None, 10.0]
    assert ratios["ratio_median"] == pytest.approx(6.0)
    with pytest.raises(ValueError, match="none of the point's 2 rounds"):
        pool_rounds([Samples([], 1.0), Samples([], 1.0)])


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
    assert points["microservice"]["1"]["driver"] == "python-processes"
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


class _Marked:
    """A session that leaves a file named after the process it runs in."""

    def __init__(self, where, fail=False) -> None:
        (where / str(os.getpid())).touch()
        self.fail = fail

    def call(self, user_id: str) -> str:
        if self.fail:
            raise ValueError(f"no score for {user_id}")
        time.sleep(0.001)
        return user_id

    def close(self) -> None:
        pass


class _Finalized:
    """An object of the parent whose finalizer leaves a mark: no client may run it."""

    def __init__(self, mark) -> None:
        self.mark = mark

    def __del__(self) -> None:
        self.mark.touch()


def test_python_clients_can_be_processes_of_their_own(tmp_path):
    sessions, mark = tmp_path / "sessions", tmp_path / "finalized"
    sessions.mkdir()
    parents_object = _Finalized(mark)  # like the bench's own open connections
    samples = clients.run(lambda: _Marked(sessions), clients=3, seconds=0.3, max_requests=40,
                          warmup=1, user_ids=["u1", "u2"], seed=1, processes=True)
    # Every client ran in a process of its own; the request budget holds across them.
    assert len({p.name for p in sessions.iterdir()} - {str(os.getpid())}) == 3
    assert 0 < len(samples.latencies_ms) <= 40 and samples.seconds > 0
    assert not mark.exists() and parents_object.mark == mark
    with pytest.raises(RuntimeError, match=r"3 client error\(s\); first: ValueError\('no score"):
        clients.run(lambda: _Marked(sessions, fail=True), clients=3, seconds=0.2,
                    max_requests=10, warmup=1, user_ids=["u1"], seed=1, processes=True)


def test_latency_rounds_must_be_whole_seconds_for_pgbench():
    assert full().latency_round_seconds * full().latency_rounds == full().latency_seconds
    assert quick().latency_rounds >= 2
    assert quick().as_dict()["latency_round_seconds"] == quick().latency_round_seconds
    with pytest.raises(ValueError, match="whole number"):
        replace(full(), latency_seconds=8.0, latency_rounds=5)
    with pytest.raises(ValueError, match="whole number"):
        replace(full(), latency_rounds=0)
    with pytest.raises(ValueError, match="batch_users must be at least n_users"):
        replace(full(), batch_users=full().n_users - 1)


def _results(blink_us=30.0, fetch_us=10.0, kernel_us=10.0, read_us=2.5, batch_rows_per_s=80_000.0,
             cold=(20.0, 4.0, 5.0), memory_mb=6.0):
    """A run's figures at 1, 4 and 16 clients, two rounds per point."""
    def rows_per_s(us):
        return 1e6 / us

    samples = {}
    for name, p50s in {"floor": [0.10, 0.12], "blink_score": [0.115, 0.14],
                       "blink_score_py": [0.2, 0.2], "microservice": [2.6, 2.2]}.items():
        requests = 40 if name == "floor" else 30
        samples[name] = {n: [Samples([p * (1 if n == 1 else n / 4)] * requests, 1.0)
                             for p in p50s] for n in (1, 4, 16)}
    return {
        "meta": {"timestamp": "t", "quick": True, "machine": "m"},
        "config": {"trees": 1, "leaves": 2, "n_users": 3, "concurrency": [1, 4, 16]},
        "setup": {"features": 7},
        "latency": {"rounds": 2, "round_seconds": 1, "points": combine(samples),
                    "one_client_pairs": [
                        summarize_pair(0, Samples([0.10] * 40, 1.0), Samples([0.115] * 30, 1.0),
                                       [kernel_us]),
                        summarize_pair(1, Samples([0.12] * 40, 1.0), Samples([0.14] * 30, 1.0),
                                       [kernel_us])]},
        "batch": {"rows": 10, "kernel_rows_per_s": rows_per_s(kernel_us),
                  "plain_fetch_per_row_rows_per_s": rows_per_s(fetch_us),
                  "table_read_rows_per_s": rows_per_s(read_us),
                  "blink_score_per_row_rows_per_s": rows_per_s(blink_us),
                  "blink_score_batch_rows_per_s": batch_rows_per_s, "ratios_to_kernel": {}},
        "explanations": {"rows": 5, "lightgbm_pred_contrib_rows_per_s": 10.0,
                         "blink_rescore_pending_rows_per_s": 16.0,
                         "blink_explain_on_demand_rows_per_s": 9.4, "absent": [],
                         "blink_explain_on_demand_round_ratios_to_pred_contrib": [1.0, 0.9,
                                                                                  0.95],
                         "ratios_to_pred_contrib": {}},
        "cold_start": {"first_call_ms": sum(cold), "warm_call_ms": 1.0, "connect_ms": 1.0,
                       "breakdown_medians": {"plpython_start_ms": cold[0],
                                             "import_pyfuncs_ms": cold[1],
                                             "load_model_and_score_ms": cold[2]}},
        "reload": {"reload_ms": 2.0, "warm_call_ms": 1.0, "calls_until_new_model": [1]},
        "memory": {"private_mb": {"fresh": 2.0, "blink_score": memory_mb,
                                  "blink_score_batch": 30.0, "blink_explain": 40.0}},
    }


def _verdicts(results):
    return {t["target"].split(" /")[0].split(" (")[0]: t for t in targets.judge(results)}


def test_every_target_is_judged_against_its_reference_in_the_same_run():
    verdicts = targets.judge(_results())
    assert len(verdicts) == 10 and all(t["pass"] is True for t in verdicts), verdicts
    per_call = verdicts[0]
    assert per_call["value"] == pytest.approx(30 / (10 + 10))  # 1.5 would still pass
    # Added latency at one client: (0.14 - 0.12) ms = 20 µs in the worst round, 2 kernel rows.
    added = verdicts[2]
    assert added["value"] == pytest.approx(2.0) and added["value_min"] == pytest.approx(1.5)
    assert "worst of 2 rounds" in added["measured_as"]
    # Under load: 30 requests vs 40 per round at 16 clients.
    assert verdicts[1]["value"] == pytest.approx(0.75)
    # Microservice vs blink_score at 4 and 16 clients: median of per-round ratios (13, 11).
    assert [v["value"] for v in verdicts[3:5]] == [pytest.approx(12.0)] * 2
    assert verdicts[3]["value_min"] == pytest.approx(11.0)
    # Explain on demand: the median of its paired rounds, not the totals' ratio (0.94).
    assert verdicts[7]["value"] == pytest.approx(0.95)
    assert (verdicts[7]["value_min"], verdicts[7]["value_max"]) == (0.9, 1.0)
    assert "median of 3 rounds" in verdicts[7]["measured_as"]
    # The batch: 12.5 µs a row against a 2.5 µs table read + a 10 µs kernel; the kernel alone
    # is printed beside the verdict.
    assert verdicts[5]["value"] == pytest.approx(1.0)
    assert "against the kernel alone 0.8x" in verdicts[5]["measured_as"]
    assert verdicts[8]["value"] == pytest.approx(9 / 20)  # cold start share
    assert verdicts[9]["value"] == 6.0
    results = _results()
    results["targets"] = verdicts
    assert table(results).count("PASS") == 10
    assert ("per round: added µs [95% interval] (kernel µs per row)\n    15.0 (10.0), 20.0 (10.0)"
            in table(results))


def test_targets_fail_past_their_goals_and_say_n_a_without_a_figure():
    bad = targets.judge(_results(blink_us=31.0, batch_rows_per_s=50_000.0, cold=(20.0, 6.0, 5.0),
                                 memory_mb=12.0))
    assert [t["pass"] for t in bad] == [False, True, True, True, True, False, True, True,
                                        False, False]
    missing = _results()
    del missing["memory"]
    del missing["batch"]["plain_fetch_per_row_rows_per_s"]
    missing["explanations"].pop("blink_rescore_pending_rows_per_s")
    verdicts = targets.judge(missing)
    assert [verdicts[i]["pass"] for i in (0, 6, 9)] == [None, None, None]
    missing["targets"] = verdicts
    assert table(missing).count("n/a") >= 3
    # No latency rounds at all: no verdict, and the line says why.
    bare = _results()
    bare["latency"]["points"], bare["latency"]["one_client_pairs"] = {}, []
    judged = targets.judge(bare)
    assert [judged[i]["pass"] for i in (1, 2, 3, 4)] == [None] * 4
    assert all("no rounds" in judged[i]["measured_as"] for i in (1, 2, 3, 4))


def test_a_round_without_requests_is_named_and_not_judged():
    results = _results()
    results["latency"]["one_client_pairs"].append(summarize_pair(
        2, Samples([0.1] * 30, 1.0), Samples([], 1.0), [10.0]))
    stalled = results["latency"]["one_client_pairs"][2]
    assert stalled["requests"] == {"floor": 30, "blink_score": 0}
    assert stalled["added_us"] is None and stalled["added_over_kernel"] is None
    added = targets.judge(results)[2]
    assert added["value"] == pytest.approx(2.0)  # the worst of the two rounds judged
    assert "worst of 2 rounds" in added["measured_as"]
    assert "1 round(s) completed no request" in added["measured_as"]
    results["targets"] = targets.judge(results)
    assert "1 round(s) completed no request" in table(results)


def test_a_pair_is_judged_on_its_own_p50s_and_its_own_kernel():
    # The kernel's reference is its faster pass: a stalled pass (20 µs) does not flatter blink.
    pair = summarize_pair(4, Samples([0.050, 0.060, 0.070], 1.0),
                          Samples([0.070, 0.075, 0.200], 1.0), [20.0, 8.0])
    assert pair["round"] == 5 and pair["requests"] == {"floor": 3, "blink_score": 3}
    assert pair["kernel_us_per_row"] == 8.0 and pair["kernel_us_per_row_passes"] == [20.0, 8.0]
    assert pair["floor_p50_ms"] == pytest.approx(0.060)
    assert pair["blink_score_p50_ms"] == pytest.approx(0.075)
    assert pair["added_us"] == pytest.approx(15.0)
    assert pair["added_over_kernel"] == pytest.approx(15.0 / 8.0)


def test_a_pair_compares_each_turn_with_its_neighbour_when_the_vcpu_mode_changes():
    # Half the turns in the slow mode (~130 µs), half in the fast one (~33 µs), blink_score
    # 2 µs above the floor in every turn. One more fast turn of the floor puts its pooled
    # p50 in the fast mode while blink_score's falls between the modes.
    rng = np.random.default_rng(1)
    floor_ms, score_ms, floor_turns, score_turns = [], [], [], []
    for pair in range(40):
        base = 130.0 if pair % 2 else 33.0
        floor_ms += list((base + rng.integers(-5, 6, 100)) / 1000)
        score_ms += list((base + 2 + rng.integers(-5, 6, 100)) / 1000)
        floor_turns += [2 * pair] * 100
        score_turns += [2 * pair + 1] * 100
    floor_ms += [0.033] * 100  # a last floor turn, fast, with no blink_score turn after it
    floor_turns += [80] * 100
    floor = Samples(floor_ms, 1.0, floor_turns)
    score = Samples(score_ms, 1.0, score_turns)
    pair = summarize_pair(0, floor, score, [1.0])
    assert pair["added_us"] == pytest.approx(2.0, abs=0.5)
    low, high = pair["added_us_95"]
    assert low <= pair["added_us"] <= high and high - low < 3
    assert abs(pair["p50_difference_us"] - 2.0) > 10  # the pooled p50s mislead here
    # Without turns (samples of one block), the pair is the plain p50 difference, no interval.
    plain = summarize_pair(0, Samples(floor_ms, 1.0), Samples(score_ms, 1.0), [1.0])
    assert plain["added_us"] == plain["p50_difference_us"] and plain["added_us_95"] is None


def test_an_alternating_run_reads_each_side_from_the_same_window(tmp_path):
    # The counter is 1 in transaction 0: floor for 1, blink_score for 2-3, floor for 4-5.
    script = pgbench.alternating_script("floor", "blink_score", 2, "user-")
    assert "\\set n :n + 1" in script and "\\if (:n / 2) % 2 = 0" in script
    assert script.index("ORDER BY snapshot_at") < script.index("\\else") < script.index(
        "blink_score('user-'")
    assert [pgbench.block_of(tx, 2) for tx in range(6)] == [0, 1, 1, 0, 0, 1]
    (tmp_path / "tx.7").write_text(
        "0 0 5000 0 10 5000\n"   # warm-up, left out
        "0 1 90 0 10 5090\n"     # counter 2: blink_score
        "0 2 95 0 10 5190\n"     # counter 3: blink_score
        "0 3 40 0 10 5230\n"     # counter 4: floor
        "0 4 50 0 11 5280\n"     # counter 5: floor
    )
    rows = pgbench.parse_logs(tmp_path)
    floor = pgbench.warm_samples(rows, 1, lambda tx: pgbench.block_of(tx, 2) == 0,
                                 lambda tx: pgbench.turn_of(tx, 2))
    score = pgbench.warm_samples(rows, 1, lambda tx: pgbench.block_of(tx, 2) == 1,
                                 lambda tx: pgbench.turn_of(tx, 2))
    assert floor.latencies_ms == [0.04, 0.05] and score.latencies_ms == [0.09, 0.095]
    assert floor.turns == [2, 2] and score.turns == [1, 1]
    assert floor.seconds == score.seconds == pytest.approx(1.00028)


def test_the_per_call_and_batch_targets_use_the_raw_kernel():
    # kernel_rows_per_s is the faster of the library's two ways to run the trees
    # (bench.throughput.references); neither target reads either way on its own.
    results = _results()
    slow, fast = dict(results["batch"]), dict(results["batch"])
    slow["kernel_tl2cgen_rows_per_s"] = slow["kernel_quickscorer_rows_per_s"] = 1e6 / 5
    fast["kernel_rows_per_s"] = 1e6 / 5  # 5 µs where _results has 10
    judged = [targets.judge({**results, "batch": b}) for b in (slow, fast)]
    assert judged[0][0]["value"] == pytest.approx(30 / (10 + 10))
    assert judged[1][0]["value"] == pytest.approx(30 / (10 + 5))


def test_the_per_call_target_is_the_median_of_its_rounds_when_the_run_has_them():
    # Each round has its own fetch, blink_score and kernel (bench.throughput); a run
    # without rounds is judged on the three medians (30 / (10 + 10) in _results).
    results = _results()
    assert _verdicts(results)["blink_score per row"]["value"] == pytest.approx(1.5)
    results["batch"]["blink_score_per_row_round_ratios_to_fetch_and_kernel"] = [1.2, 1.6, 1.4]
    per_call = _verdicts(results)["blink_score per row"]
    assert (per_call["value"], per_call["value_min"], per_call["value_max"]) == (1.4, 1.2, 1.6)
    assert per_call["pass"] and "median of 3 rounds" in per_call["measured_as"]


def test_the_batch_and_one_client_targets_also_show_tl2cgens_kernel_beside_the_verdict():
    # The verdicts are against the faster kernel; TL2cgen's code alone is information only.
    results = _results()
    results["batch"]["kernel_tl2cgen_rows_per_s"] = results["batch"]["kernel_rows_per_s"] / 4
    judged = {t["target"]: t for t in targets.judge(results)}
    batch = judged["blink_score_batch rows/s / (table read + raw kernel) rows/s"]
    one = judged["(blink_score p50 - fetch p50) / kernel per row, 1 client"]
    assert batch["value"] == pytest.approx(1.0)  # 12.5 µs a row: read 2.5 + kernel 10
    assert "a row: table read 2.50 µs, kernel 10.00 µs (one thread), batch 12.50 µs" in (
        batch["measured_as"])
    assert batch["measured_as"].endswith(
        f"against the kernel alone 0.8x; against TL2cgen's code alone {4 * 0.8:.3g}x")
    assert "against TL2cgen's code alone" in one["measured_as"]
    del results["batch"]["kernel_tl2cgen_rows_per_s"]
    judged = {t["target"]: t for t in targets.judge(results)}
    assert "TL2cgen" not in judged[
        "blink_score_batch rows/s / (table read + raw kernel) rows/s"]["measured_as"]


def test_the_batch_is_judged_by_its_rounds_against_the_table_read_and_the_kernel():
    results = _results()
    results["batch"]["blink_score_batch_round_ratios_to_read_and_kernel"] = [0.65, 0.75, 0.8]
    results["batch"]["blink_score_batch_round_ratios_to_kernel"] = [0.5, 0.6, 0.64]
    batch = targets.judge(results)[5]
    assert (batch["value"], batch["value_min"], batch["value_max"]) == (0.75, 0.65, 0.8)
    assert batch["pass"] is True
    assert "median of 3 rounds" in batch["measured_as"]
    assert "against the kernel alone 0.6x" in batch["measured_as"]
    assert "one pass each" not in batch["measured_as"]  # a results file from before
    # Since session 19 each side is the faster of two passes; one pass is information only.
    results["batch"]["blink_score_batch_round_ratios_one_pass"] = [0.4, 0.62, 0.9]
    batch = targets.judge(results)[5]
    assert (batch["value"], batch["pass"]) == (0.75, True)
    assert "one pass each 0.62x" in batch["measured_as"]
    results["batch"]["blink_score_batch_round_ratios_to_read_and_kernel"] = [0.6, 0.65, 0.8]
    assert targets.judge(results)[5]["pass"] is False
    # Without the table read there is no reference: n/a, not a verdict against the kernel.
    del results["batch"]["blink_score_batch_round_ratios_to_read_and_kernel"]
    del results["batch"]["table_read_rows_per_s"]
    assert targets.judge(results)[5]["pass"] is None


def test_a_median_verdict_says_whether_its_rounds_show_it():
    # 15 rounds: the verdict is the median's; "shown" whether its interval (the 4th to the
    # 12th) keeps clear of the goal.
    results = _results()
    clear = [0.72, 0.74, 0.75, 0.76, 0.78, 0.8, 0.81, 0.82, 0.84, 0.9, 0.95, 1.0, 1.02, 0.6,
             0.55]
    results["batch"]["blink_score_batch_round_ratios_to_read_and_kernel"] = clear
    batch = targets.judge(results)[5]
    assert batch["pass"] and batch["shown"] is True
    assert (batch["interval_low"], batch["interval_high"]) == (0.74, 0.9)
    results["targets"] = targets.judge(results)
    assert "median's 96.5% interval 0.740-0.900: the rounds show the verdict" in table(results)
    # A median just past the goal, its interval across it: a pass the rounds do not show.
    near = [0.6, 0.62, 0.65, 0.68, 0.69, 0.7, 0.71, 0.8, 0.81, 0.82, 0.84, 0.9, 0.95, 1.0, 0.55]
    results["batch"]["blink_score_batch_round_ratios_to_read_and_kernel"] = near
    batch = targets.judge(results)[5]
    assert batch["value"] == 0.71 and batch["pass"] and batch["shown"] is False
    assert batch["interval_low"] == 0.65 < 0.7
    results["targets"] = targets.judge(results)
    assert "holds the goal, so the rounds do not show the verdict" in table(results)
    # A failure is shown too when the whole interval misses the goal (a ceiling here).
    results["batch"]["blink_score_per_row_round_ratios_to_fetch_and_kernel"] = [1.6, 1.7, 1.8,
                                                                                1.9, 2.0]
    per_call = targets.judge(results)[0]
    assert per_call["pass"] is False and per_call["shown"] is True
    # The worst-round target has no interval: every round must pass.
    assert "interval_low" not in targets.judge(results)[2]


def test_every_target_says_how_far_past_its_goal_it_lies_on_one_scale():
    assert targets.to_goal(0.77, ">=", 0.7) == pytest.approx(1.1)  # a floor: value / goal
    assert targets.to_goal(0.35, ">=", 0.7) == pytest.approx(0.5)  # below 1: failing
    assert targets.to_goal(1.2, "<=", 1.5) == pytest.approx(1.25)  # a ceiling: goal / value
    assert targets.to_goal(3.0, "<=", 1.5) == pytest.approx(0.5)
    # a hair short of the goal stays short of 1, as its verdict fails, either way round
    assert targets.to_goal(11.9999, ">=", 12.0) < 1 < targets.to_goal(12.0001, ">=", 12.0)
    assert targets.to_goal(1.5001, "<=", 1.5) < 1 <= targets.to_goal(1.5, "<=", 1.5)
    assert targets.to_goal(0.0, "<=", 2.0) == targets.TO_GOAL_MAX  # no time added at all
    assert targets.to_goal(500.0, ">=", 12.0) == targets.TO_GOAL_MAX
    assert targets.to_goal(0.0, ">=", 0.7) == 1 / targets.TO_GOAL_MAX
    assert targets.to_goal(None, ">=", 0.7) is None
    results = _results()
    results["batch"]["blink_score_batch_round_ratios_to_read_and_kernel"] = [
        0.6, 0.62, 0.65, 0.68, 0.69, 0.7, 0.71, 0.8, 0.81, 0.82, 0.84, 0.9, 0.95, 1.0, 0.55]
    for entry in targets.judge(results):
        if entry["value"] is None:
            assert entry["to_goal"] is None
            continue
        # past 1 exactly when the target passes, whichever way its goal points
        assert (entry["to_goal"] >= 1) == entry["pass"], entry
        if "interval_low" in entry:
            low, high = entry["to_goal_interval"]
            assert low <= entry["to_goal"] <= high
            assert entry["shown"] == ((low >= 1) == (high >= 1))


def test_the_chart_draws_the_targets_beside_the_figures(tmp_path):
    from bench.report import write_chart

    results = _results()
    results["targets"] = targets.judge(results)
    path = tmp_path / "run.png"
    write_chart(results, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _run(stamp, batch_rounds, **config):
    results = _results()
    results["meta"]["timestamp"] = stamp
    results["config"].update(config)
    results["batch"]["blink_score_batch_round_ratios_to_read_and_kernel"] = batch_rounds
    return results


def test_runs_pool_their_rounds_into_one_median_and_a_narrower_interval():
    # Three runs of 7 rounds each: each run's interval (lowest to highest) holds the goal;
    # their 21 rounds together put the median's interval above it.
    runs = [_run("a", [0.62, 0.71, 0.72, 0.73, 0.74, 0.75, 0.8]),
            _run("b", [0.66, 0.72, 0.73, 0.735, 0.75, 0.76, 0.81]),
            _run("c", [0.6, 0.715, 0.725, 0.74, 0.745, 0.77, 0.9])]
    alone = [targets.judge(run)[5] for run in runs]
    assert all(t["pass"] and not t["shown"] for t in alone)
    # How each value was taken is its own field (pooling reads it, not measured_as).
    assert all(t["taken_as"] == "median of 7 rounds" for t in alone)
    judged = {t["target"]: t for t in pooled.pooled(runs)}
    batch = judged["blink_score_batch rows/s / (table read + raw kernel) rows/s"]
    every = sorted(v for run in runs
                   for v in run["batch"]["blink_score_batch_round_ratios_to_read_and_kernel"])
    assert batch["value"] == every[10] and batch["interval_low"] == every[5] > 0.7
    assert batch["shown"]
    assert batch["taken_as"] == "median of 21 rounds"
    assert batch["measured_as"] == "median of 21 rounds of 3 runs pooled: a, b, c"
    # The latency points pool their rounds too (2 per run in _results), the one-client
    # target its pairs; a run's single figures (rescoring, cold start, memory) are left out.
    assert "median of 6 per-round ratios" in judged[
        "microservice p50 / blink_score p50, 16 clients"]["measured_as"]
    assert "worst of 6 rounds" in judged[
        "(blink_score p50 - fetch p50) / kernel per row, 1 client"]["measured_as"]
    assert not any("cold start" in name or "memory" in name for name in judged)
    assert "Targets over the rounds of 3 runs pooled" in pooled.report.targets_table(
        list(judged.values()), "Targets over the rounds of 3 runs pooled")


def test_runs_of_another_configuration_do_not_pool(tmp_path, capsys):
    with pytest.raises(ValueError, match="run b differs from a in trees"):
        pooled.pool([_run("a", [0.7, 0.8]), _run("b", [0.7, 0.8], trees=400)])
    files = []
    for stamp, trees in (("a", 1), ("b", 400)):
        files.append(tmp_path / f"{stamp}.json")
        files[-1].write_text(json.dumps(_run(stamp, [0.7, 0.8], trees=trees), default=str))
    assert pooled.main([str(f) for f in files]) == 2
    assert "its rounds are another measurement" in capsys.readouterr().err
    assert pooled.main([str(files[0]), str(files[0])]) == 0
    assert "median of 4 rounds of 2 runs pooled" in capsys.readouterr().out


def test_without_names_the_newest_run_pools_with_the_earlier_runs_of_its_commit(tmp_path):
    for stamp, commit in (("20261101T000000Z", "abc"), ("20261102T000000Z", "def"),
                          ("20261103T000000Z", "abc"), ("20261104T000000Z", "abc")):
        run = _run(stamp, [0.7, 0.8])
        run["meta"]["commit"] = commit
        (tmp_path / f"{stamp}.json").write_text(json.dumps(run, default=str))
    (tmp_path / "scaleout-20261106T000000Z.json").write_text("{}")  # another bench's results
    assert [r["meta"]["timestamp"] for r in pooled.same_code(tmp_path)] == [
        "20261101T000000Z", "20261103T000000Z", "20261104T000000Z"]
    # A run of a checkout with changes (or from before runs recorded their commit) says so.
    run["meta"]["commit"] = "abc+changes"
    (tmp_path / "20261105T000000Z.json").write_text(json.dumps(run, default=str))
    with pytest.raises(ValueError, match="recorded commit abc\\+changes: name the runs"):
        pooled.same_code(tmp_path)
    with pytest.raises(ValueError, match="no results in"):
        pooled.same_code(tmp_path / "nothing")
