"""`python -m bench [--quick] [--out DIR]`: run every measurement, print a table, save files."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import config as bench_config
from bench import latency, lifecycle, memory, report, targets, throughput
from bench.environment import prepare
from bench.kernel import Kernel

DEFAULT_OUT = Path(__file__).resolve().parent / "results"


def machine() -> str:
    """CPU model, cores, memory and OS: where the figures came from."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{kib / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        memory = "?"
    return f"{cpu}, {os.cpu_count()} cores, {memory} RAM, {platform.system()} {platform.release()}"


def commit() -> str | None:
    """The checkout's commit, with "+changes" when tracked files differ from it: which runs
    measured the same code (bench.pooled pools them). None outside a git checkout."""
    root = Path(__file__).resolve().parent.parent
    try:
        head, changes = (subprocess.run(["git", *argv], cwd=root, capture_output=True,
                                        text=True, check=True).stdout.strip()
                         for argv in (["rev-parse", "HEAD"],
                                      ["status", "--porcelain", "--untracked-files=no"]))
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+changes" if changes else "")


def versions(env: Any) -> dict[str, str]:
    with env.connect() as conn:
        server = conn.execute("SHOW server_version").fetchone()[0]
    return {"postgresql": server, "python": platform.python_version(),
            **env.artifact.library_versions}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes, one second per latency point (a smoke run)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="directory for <timestamp>.json and <timestamp>.png")
    args = parser.parse_args(argv)
    cfg = bench_config.quick() if args.quick else bench_config.full()
    started = time.perf_counter()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f}s] {message}", file=sys.stderr, flush=True)

    env = prepare(cfg, log)
    try:
        results: dict[str, Any] = {
            "meta": {
                "timestamp": stamp,
                "quick": cfg.quick,
                "command": "make bench" + (" QUICK=1" if cfg.quick else ""),
                "commit": commit(),
                "machine": machine(),
                "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
                "versions": versions(env),
            },
            "config": cfg.as_dict(),
            "setup": {**env.timings, "features": len(env.artifact.feature_names),
                      "model_id": env.model_id},
        }
        # The raw kernel over the batch's users: the reference of the one-client pairs and
        # of the batch, built once.
        kernel = Kernel(env, min(cfg.batch_users, env.n_users))
        results["latency"] = latency.measure(env, cfg, kernel, log)
        log("cold start")
        results["cold_start"] = lifecycle.cold_start(env, cfg.cold_start_repeats)
        log("model reload")
        results["reload"] = lifecycle.reload(env, cfg.reload_repeats)
        log("backend memory")
        results["memory"] = memory.backends(env, min(1000, env.n_users))
        log(f"batch throughput over {cfg.batch_users:,} users")
        results["batch"] = throughput.batch(env, kernel)
        log(f"explanations over {cfg.explain_users:,} users, then rescoring up to "
            f"{cfg.rescore_users:,} (one backend, then {cfg.rescore_workers} workers)")
        results["explanations"] = throughput.explanations(
            env, min(cfg.explain_users, env.n_users), cfg.rescore_users, cfg.rescore_seconds,
            cfg.rescore_workers)
    finally:
        env.close()
    results["targets"] = targets.judge(results)
    results["meta"]["elapsed_s"] = round(time.perf_counter() - started, 1)
    results["meta"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results = {key: results[key] for key in report.RESULT_KEYS}
    args.out.mkdir(parents=True, exist_ok=True)
    json_path, png_path = args.out / f"{stamp}.json", args.out / f"{stamp}.png"
    report.write_json(results, json_path)
    report.write_chart(results, png_path)
    print(report.table(results))
    print(f"\nwrote {json_path} and {png_path} in {results['meta']['elapsed_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
