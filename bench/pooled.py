"""`python -m bench.pooled RESULTS.json ...`: the round-based targets over several runs' rounds.

One run's median can pass its goal while its interval still holds the goal (the batch's,
docs/benchmarks.md "Every median comes with its sampling error"). Runs of the same code on
the same machine repeat the same rounds, so their rounds pooled give the median a narrower
interval: this judges every target measured in rounds (bench.targets) on all the given
runs' rounds together. Pool only runs of the same code and configuration; the
configurations are checked, the code is the caller's to vouch for (``meta.commit`` where
the runs recorded it).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

from bench import report, targets

# The per-round lists of one run that targets.judge reads, by section.
ROUND_LISTS = {
    "batch": ("blink_score_per_row_round_ratios_to_fetch_and_kernel",
              "blink_score_per_row_round_ratios_one_pass",
              "blink_score_batch_round_ratios_to_read_and_kernel",
              "blink_score_batch_round_ratios_to_kernel",
              "blink_score_batch_round_ratios_one_pass"),
    "explanations": ("blink_explain_on_demand_round_ratios_to_pred_contrib",),
}
# What must be equal for two runs' rounds to be the same measurement.
SAME_CONFIG = ("quick", "n_users", "trees", "leaves", "seed", "concurrency", "batch_users",
               "explain_users", "latency_rounds", "latency_seconds", "pair_round_seconds")


def pool(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One results dict holding every run's rounds, in the runs' order (the first run's
    single figures: pooled() drops the targets judged on them)."""
    if not runs:
        raise ValueError("no runs to pool")
    first = runs[0]["config"]
    for run in runs[1:]:
        differ = [key for key in SAME_CONFIG if run["config"].get(key) != first.get(key)]
        if differ:
            raise ValueError(f"run {run['meta']['timestamp']} differs from "
                             f"{runs[0]['meta']['timestamp']} in {', '.join(differ)}: "
                             "its rounds are another measurement")
    merged = copy.deepcopy(runs[0])
    for section, keys in ROUND_LISTS.items():
        for key in keys:
            merged[section][key] = [v for run in runs for v in run[section].get(key) or []]
    for name, by_clients in merged["latency"]["points"].items():
        for n, point in by_clients.items():
            point["rounds"] = [r for run in runs
                               for r in run["latency"]["points"][name][n].get("rounds", [])]
    merged["latency"]["one_client_pairs"] = [
        pair for run in runs for pair in run["latency"].get("one_client_pairs", [])]
    return merged


def pooled(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The targets measured in rounds, judged on the pooled rounds of ``runs``."""
    stamps = ", ".join(run["meta"]["timestamp"] for run in runs)
    out = []
    for target in targets.judge(pool(runs)):
        if target.get("taken_as") is None:
            continue  # a single figure per run (rescoring, cold start, memory): not pooled
        # The first run's per-row figures in measured_as would read as the pool's: only
        # how the value was taken stays ("median of 93 rounds", "worst of 15 rounds").
        out.append({**target,
                    "measured_as": f"{target['taken_as']} of {len(runs)} runs pooled: {stamps}"})
    return out


def same_code(results_dir: Path) -> list[dict[str, Any]]:
    """The newest run in ``results_dir`` and every earlier run of its commit, oldest first.

    A run records its commit (``meta.commit``) since session 21, with ``+changes`` when the
    checkout had uncommitted changes: such a run, or one without the record, pools only when
    named on the command line.
    """
    # <timestamp>.json, in time order; not make bench-scaleout's scaleout-<timestamp>.json
    files = sorted(results_dir.glob("[0-9]*T*Z.json"))
    if not files:
        raise ValueError(f"no results in {results_dir}: run make bench first")
    runs = [_load(path) for path in files]
    newest = runs[-1]["meta"]
    commit = newest.get("commit")
    if not commit or commit.endswith("+changes"):
        raise ValueError(f"the newest run ({files[-1].name}) recorded "
                         + (f"commit {commit}" if commit else "no commit")
                         + ": name the runs to pool")
    return [run for run in runs if run["meta"].get("commit") == commit
            and run["meta"].get("quick") == newest.get("quick")]


def _load(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pooled", description=__doc__)
    parser.add_argument("results", nargs="*", type=Path,
                        help="bench/results/<timestamp>.json files; none: the newest run "
                             "and every earlier run of the same commit")
    parser.add_argument("--dir", type=Path, default=Path(__file__).resolve().parent / "results",
                        help="where to look for runs when none is named")
    args = parser.parse_args(argv)
    try:
        runs = [_load(path) for path in args.results] if args.results else same_code(args.dir)
        judged = pooled(runs)
    except (OSError, ValueError, KeyError) as exc:
        print(f"bench.pooled: {exc}", file=sys.stderr)
        return 2
    print(report.targets_table(judged, f"Targets over the rounds of {len(runs)} runs pooled"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
