"""Targets, the printed table, the results JSON and the PNG chart of one run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.stats import ratio

RESULT_KEYS = ("meta", "config", "setup", "latency", "batch", "explanations", "cold_start",
               "reload", "targets")


def _p50(results: dict[str, Any], target: str, clients: int) -> float | None:
    point = results["latency"]["points"].get(target, {}).get(str(clients))
    return None if point is None else point["p50_ms"]


def batch_figure(batch: dict[str, Any]) -> tuple[str, float | None]:
    """The in-database batch scoring figure the target is judged on: the batch function when
    it exists, else blink_score per row. (Rescoring also explains each row, so it is
    compared with pred_contrib, not with the kernel.)"""
    for key in ("blink_score_batch_rows_per_s", "blink_score_per_row_rows_per_s"):
        if batch.get(key) is not None:
            return key, batch[key]
    return "none", None


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's four targets, judged on this run's own references (pass/fail, no raise)."""
    c = min(int(k) for k in results["latency"]["points"]["floor"])
    vs_floor = ratio(_p50(results, "blink_score", c), _p50(results, "floor", c))
    speedup = ratio(_p50(results, "microservice", c), _p50(results, "blink_score_py", c))
    batch_key, batch_value = batch_figure(results["batch"])
    vs_kernel = ratio(batch_value, results["batch"]["kernel_tl2cgen_rows_per_s"])
    cold = results["cold_start"]["first_call_ms"]
    rows = [
        ("blink_score p50 / plain fetch p50", f"{c} client, pgbench", vs_floor, "<=", 1.5),
        ("microservice p50 / blink_score p50", f"{c} client, same Python client", speedup,
         ">=", 10.0),
        (f"{batch_key.removesuffix('_rows_per_s')} rows/s / raw kernel rows/s",
         "same users, kernel one thread", vs_kernel, ">=", 0.5),
        ("cold start: first blink_score of a session (ms)", "median of new sessions", cold,
         "<=", 50.0),
    ]
    out = []
    for name, how, value, op, limit in rows:
        passed = None if value is None else (value <= limit if op == "<=" else value >= limit)
        out.append({"target": name, "measured_as": how, "value": value,
                    "goal": f"{op} {limit:g}", "pass": passed})
    return out


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}f}"
    return str(value)


def table(results: dict[str, Any]) -> str:
    """A plain-text table of every figure with its ratio to its reference."""
    lines: list[str] = []
    meta = results["meta"]
    lines.append(f"blink benchmark  {meta['timestamp']}  ({'quick' if meta['quick'] else 'full'})")
    lines.append(f"machine: {meta['machine']}")
    lines.append(f"load average (1, 5, 15 min) at start {meta.get('load_average_at_start')}, "
                 f"at end {meta.get('load_average_at_end')}: other work on the machine adds noise")
    cfg = results["config"]
    lines.append(f"model: {cfg['trees']} trees x {cfg['leaves']} leaves, "
                 f"{results['setup']['features']} features; {cfg['n_users']:,} users")
    lines.append("")
    lines.append("Latency (ms) over loopback; ratio = p50 / reference p50 at the same clients")
    lines.append(f"  {'target':<16}{'clients':>8}{'p50':>10}{'p95':>10}{'p99':>10}"
                 f"{'req/s':>10}  ratio (reference)")
    points = results["latency"]["points"]
    refs = {"blink_score": "floor", "blink_score_py": "microservice",
            "microservice": "blink_score_py"}
    for name, per_clients in points.items():
        for n, s in per_clients.items():
            ref = refs.get(name)
            r = ratio(s["p50_ms"], points[ref][n]["p50_ms"]) if ref else None
            note = f"{_fmt(r)}x ({ref})" if ref else "reference"
            lines.append(f"  {name:<16}{n:>8}{_fmt(s['p50_ms']):>10}{_fmt(s['p95_ms']):>10}"
                         f"{_fmt(s['p99_ms']):>10}{_fmt(s['requests_per_s'], 0):>10}  {note}")
    lines.append("")
    b = results["batch"]
    lines.append(f"Batch: {b['rows']:,} users, rows/s; ratio to the raw kernel (TL2cgen, 1 thread)")
    for key, value in b.items():
        if key.endswith("_rows_per_s"):
            r = b["ratios_to_kernel"].get(key)
            lines.append(f"  {key.removesuffix('_rows_per_s'):<40}{_fmt(value, 0):>14}  "
                         f"{'reference' if r is None else _fmt(r, 4) + 'x'}")
    e = results["explanations"]
    rescored = e.get("rescore_users")
    lines.append(f"Explanations: {e['rows']:,} users (rescoring: {_fmt(rescored)} users), rows/s;"
                 " ratio to LightGBM pred_contrib, 1 thread")
    for key, value in e.items():
        if key.endswith("_rows_per_s"):
            r = e["ratios_to_pred_contrib"].get(key)
            lines.append(f"  {key.removesuffix('_rows_per_s'):<40}{_fmt(value, 0):>14}  "
                         f"{'reference' if r is None else _fmt(r, 4) + 'x'}")
    for name in e.get("absent", []):
        lines.append(f"  {name}: not in this checkout, not measured")
    lines.append("")
    cs, rl = results["cold_start"], results["reload"]
    lines.append(f"Cold start: first blink_score {_fmt(cs['first_call_ms'])} ms "
                 f"({_fmt(ratio(cs['first_call_ms'], cs['warm_call_ms']), 1)}x a warm call of "
                 f"{_fmt(cs['warm_call_ms'])} ms); connect {_fmt(cs['connect_ms'])} ms")
    lines.append("  split (medians of superuser sessions): " + ", ".join(
        f"{k.removesuffix('_ms')} {_fmt(v)} ms" for k, v in cs["breakdown_medians"].items()))
    reload_ratio = _fmt(ratio(rl["reload_ms"], rl["warm_call_ms"]), 1)
    lines.append(f"Model reload: promotion commit -> open session scores with it in "
                 f"{_fmt(rl['reload_ms'])} ms ({reload_ratio}x a warm call of "
                 f"{_fmt(rl['warm_call_ms'])} ms); "
                 f"calls needed {rl['calls_until_new_model']}")
    lines.append("")
    lines.append("Targets (reported, never enforced)")
    for t in results["targets"]:
        verdict = {True: "PASS", False: "FAIL", None: "n/a"}[t["pass"]]
        lines.append(f"  {verdict:<5} {t['target']:<52} {_fmt(t['value']):>9} {t['goal']:<7} "
                     f"({t['measured_as']})")
    return "\n".join(lines)


def write_json(results: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(results, indent=2, sort_keys=False, default=str) + "\n")


def write_chart(results: dict[str, Any], path: Path) -> None:
    """Three panels: latency percentiles by clients, batch rows/s, cold start and reload."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(17, 5.2))
    ax = axes[0]
    for name, per_clients in results["latency"]["points"].items():
        xs = [int(n) for n in per_clients]
        ax.plot(xs, [s["p50_ms"] for s in per_clients.values()], marker="o", label=f"{name} p50")
        ax.fill_between(xs, [s["p50_ms"] for s in per_clients.values()],
                        [s["p99_ms"] for s in per_clients.values()], alpha=0.15)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks([int(n) for n in results["config"]["concurrency"]])
    ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.set_xlabel("concurrent clients")
    ax.set_ylabel("latency, ms (line p50, band to p99)")
    ax.set_title("Single-user latency over loopback")
    ax.legend(fontsize=8)

    ax = axes[1]
    bars = {k.removesuffix("_rows_per_s"): v for k, v in results["batch"].items()
            if k.endswith("_rows_per_s") and v is not None}
    e = results["explanations"]
    bars.update({k.removesuffix("_rows_per_s"): v for k, v in e.items()
                 if k.endswith("_rows_per_s") and v is not None})
    colors = ["tab:blue" if name.startswith("blink_") else "tab:gray" for name in bars]
    ax.barh(list(bars), list(bars.values()), color=colors)
    ax.set_xscale("log")
    ax.set_xlabel("rows/s (log); grey = references, blue = blink")
    ax.set_title("Batch scoring and explanations, rows/s")
    ax.tick_params(axis="y", labelsize=8)

    ax = axes[2]
    cs, rl = results["cold_start"], results["reload"]
    names = ["warm call", "cold start", "model reload"]
    values = [cs["warm_call_ms"], cs["first_call_ms"], rl["reload_ms"]]
    ax.bar(names, values, color=["tab:green", "tab:orange", "tab:red"])
    ax.axhline(50, color="grey", linestyle="--", linewidth=1, label="cold start target 50 ms")
    ax.set_ylabel("ms")
    ax.set_title("Session cold start and model reload")
    ax.legend(fontsize=8)
    fig.suptitle(f"blink benchmark {results['meta']['timestamp']} — {results['meta']['machine']}",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
