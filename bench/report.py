"""The printed table, the results JSON and the PNG chart of one run (targets: bench.targets)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.stats import ratio
from bench.targets import TO_GOAL_MAX

# target -> the reference its p50 ratio is taken to (same driver, same clients)
REFERENCES = {"blink_score": "floor", "blink_score_py": "microservice",
              "microservice": "blink_score_py"}

RESULT_KEYS = ("meta", "config", "setup", "latency", "batch", "explanations", "cold_start",
               "reload", "memory", "targets")


def point_ratio(points: dict[str, Any], target: str, reference: str,
                clients: str) -> tuple[float | None, float | None, float | None]:
    """``target`` p50 / ``reference`` p50 at ``clients``: (median, min, max) over the rounds.

    The median of the per-round ratios when the run measured in rounds (both sides of each
    ratio from the same round); for a results file from before rounds, the one ratio of
    the two p50s, as its own min and max.
    """
    point = points.get(target, {}).get(str(clients))
    ref = points.get(reference, {}).get(str(clients))
    if point is None or ref is None:
        return None, None, None
    if point.get("reference") == reference and "ratio_median" in point:
        return point["ratio_median"], point["ratio_min"], point["ratio_max"]
    single = ratio(point["p50_ms"], ref["p50_ms"])
    return single, single, single


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
    latency = results["latency"]
    points = latency["points"]
    rounds = latency.get("rounds")
    if rounds:
        lines.append(f"Latency (ms) over loopback, {rounds} rounds of {latency['round_seconds']} s "
                     "per point, targets interleaved in each round")
        lines.append("  p50/p95/p99 pool all rounds' requests; ratio = median over the rounds of "
                     "p50 / reference p50 in the same round [min-max]")
    else:
        lines.append("Latency (ms) over loopback; ratio = p50 / reference p50 at the same clients")
    lines.append(f"  {'target':<16}{'clients':>8}{'p50':>10}{'p95':>10}{'p99':>10}"
                 f"{'req/s':>10}  {'ratio':>8}  {'[min-max]':<17} reference")
    for name, per_clients in points.items():
        ref = REFERENCES.get(name)
        for n, s in per_clients.items():
            if ref and ref in points:
                mid, low, high = point_ratio(points, name, ref, n)
                spread = f"[{_fmt(low)}-{_fmt(high)}]" if rounds else ""
                note = f"{_fmt(mid) + 'x':>8}  {spread:<17} {ref}"
            else:
                note = f"{'':>8}  {'':<17} reference"
            if s.get("empty_rounds"):
                note += f"  ({s['empty_rounds']} round(s) completed no request)"
            lines.append(f"  {name:<16}{n:>8}{_fmt(s['p50_ms']):>10}{_fmt(s['p95_ms']):>10}"
                         f"{_fmt(s['p99_ms']):>10}{_fmt(s['requests_per_s'], 0):>10}  {note}")
    pairs = latency.get("one_client_pairs") or []
    if pairs:
        lines.append("  one client, floor and blink_score in turns in one pgbench run, per round: "
                     "added µs [95% interval] (kernel µs per row)")
        lines.append("    " + ", ".join(
            f"{_fmt(p['added_us'], 1)} {_interval(p.get('added_us_95'))}"
            f"({_fmt(p['kernel_us_per_row'], 1)})" for p in pairs))
    lines.append("")
    b = results["batch"]
    lines.append(f"Batch: {b['rows']:,} users, rows/s; ratio to the raw kernel (the faster of "
                 "QuickScorer and TL2cgen's code, 1 thread)")
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
    if "rescore_idle_tick_ms" in e:
        lines.append(
            f"  an idle rescoring tick (nothing pending, {e['rescore_idle_tick_users']:,} users):"
            f" {_fmt(e['rescore_idle_tick_ms'])} ms from the snapshots written since the last"
            f" run, {_fmt(e['rescore_idle_tick_every_user_ms'])} ms reading every user ("
            f"{_fmt(ratio(e['rescore_idle_tick_every_user_ms'], e['rescore_idle_tick_ms']), 1)}x)")
    elif "rescore_idle_tick" in e:
        lines.append(f"  an idle rescoring tick: {e['rescore_idle_tick']}")
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
    memory = results.get("memory") or {}
    if memory.get("private_mb"):
        lines.append("Backend private memory (MB, fresh session each, beside a companion "
                     "session on the same path): " + ", ".join(
            f"{k} {_fmt(v, 1)}" for k, v in memory["private_mb"].items())
            + (f"  ({memory['unreadable']})" if memory.get("unreadable") else ""))
        if memory.get("alone_mb"):
            lines.append("  the same, each backend alone (its libraries' pages counted as its "
                         "own): " + ", ".join(f"{k} {_fmt(v, 1)}"
                                              for k, v in memory["alone_mb"].items()))
    lines.append("")
    lines.append(targets_table(results["targets"], "Targets (reported, never enforced; each "
                                                   "against its reference in this run)"))
    return "\n".join(lines)


def targets_table(judged: list[dict[str, Any]], title: str) -> str:
    """The verdict lines of bench.targets.judge: each target, its value, goal and spread,
    how it was measured and, for a median, its interval."""
    lines = [title]
    for t in judged:
        verdict = {True: "PASS", False: "FAIL", None: "n/a"}[t["pass"]]
        spread = (f" [{_fmt(t['value_min'])}-{_fmt(t['value_max'])}]"
                  if t.get("value_min") is not None else "")
        lines.append(f"  {verdict:<5} {t['target']:<66} {_fmt(t['value']):>9} {t['goal']:<7}"
                     f"{spread}")
        lines.append(f"        {t['measured_as']}")
        if t.get("interval_low") is not None:
            lines.append(f"        {_interval_words(t)}")
    return "\n".join(lines)


def _interval_words(target: dict[str, Any]) -> str:
    """The median's sampling error, and whether it leaves the verdict in doubt."""
    words = (f"median's {target['interval_coverage']:.1%} interval "
             f"{_fmt(target['interval_low'])}-{_fmt(target['interval_high'])}")
    if target["shown"]:
        return f"{words}: the rounds show the verdict"
    return f"{words}: holds the goal, so the rounds do not show the verdict"


def write_json(results: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(results, indent=2, sort_keys=False, default=str) + "\n")


def write_chart(results: dict[str, Any], path: Path) -> None:
    """Four panels: latency percentiles by clients, batch rows/s, cold start and reload, and
    below them every target's distance to its goal."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(17, 10), layout="constrained")
    # two subfigures, so the targets' long labels do not squeeze the panels above them
    subfigures: Any = fig.subfigures(2, 1, height_ratios=[1, 0.8])
    top, bottom = subfigures
    axes = top.subplots(1, 3)
    ax = axes[0]
    for name, per_clients in results["latency"]["points"].items():
        xs = [int(n) for n in per_clients]
        line, = ax.plot(xs, [s["p50_ms"] for s in per_clients.values()], marker="o",
                        label=f"{name} p50")
        ax.fill_between(xs, [s["p50_ms"] for s in per_clients.values()],
                        [s["p99_ms"] for s in per_clients.values()], alpha=0.15)
        for x, s in zip(xs, per_clients.values(), strict=True):  # each round's own p50
            rounds = [r for r in s.get("rounds", []) if r["p50_ms"] is not None]
            ax.scatter([x] * len(rounds), [r["p50_ms"] for r in rounds], s=9, marker="_",
                       color=line.get_color(), alpha=0.8)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks([int(n) for n in results["config"]["concurrency"]])
    ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.set_xlabel("concurrent clients")
    ax.set_ylabel("latency, ms (line p50, dash per round's p50, band to p99)")
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
    parts = cs.get("breakdown_medians", {})
    names = ["PL/Python start", "import pyfuncs", "load model + score", "warm call",
             "model reload"]
    values = [parts.get("plpython_start_ms", 0.0), parts.get("import_pyfuncs_ms", 0.0),
              parts.get("load_model_and_score_ms", 0.0), cs["warm_call_ms"], rl["reload_ms"]]
    ax.bar(names, values, color=["tab:gray", "tab:orange", "tab:orange", "tab:green",
                                 "tab:red"])
    if parts.get("plpython_start_ms"):
        ax.axhline(parts["plpython_start_ms"] / 2, color="grey", linestyle="--", linewidth=1,
                   label="target: import + load together under half the PL/Python start")
    ax.tick_params(axis="x", labelsize=8, rotation=15)
    ax.set_ylabel("ms")
    ax.set_title("First call of a session, split; model reload")
    ax.legend(fontsize=8)
    _targets_panel(bottom.subplots(), results.get("targets") or [])
    fig.suptitle(f"blink benchmark {results['meta']['timestamp']} — {results['meta']['machine']}",
                 fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _targets_panel(ax: Any, judged: list[dict[str, Any]]) -> None:
    """Each target's value as a factor past its goal (bench.targets.to_goal, log scale: right
    of 1 passes), with its median's interval; a hollow marker when the interval holds the
    goal (the rounds do not show the verdict)."""
    plotted = [t for t in judged if t.get("to_goal") is not None]
    for y, t in enumerate(reversed(plotted)):
        color = "tab:green" if t["pass"] else "tab:red"
        bounds = t.get("to_goal_interval")
        if bounds:
            ax.plot(bounds, [y, y], color=color, linewidth=2, alpha=0.6)
        ax.plot([t["to_goal"]], [y], "o", markersize=8, color=color,
                markerfacecolor=color if t.get("shown", True) else "white")
        ax.annotate(f"{t['value']:.3g} ({t['goal']})", (t["to_goal"], y),
                    textcoords="offset points", xytext=(8, 4), fontsize=8)
    ax.axvline(1.0, color="grey", linestyle="--", linewidth=1)
    ax.set_yticks(range(len(plotted)), [t["target"] for t in reversed(plotted)], fontsize=8)
    ax.set_xscale("log")
    ax.set_xlim(1 / TO_GOAL_MAX / 1.2, TO_GOAL_MAX * 1.5)
    ticks = [0.1, 0.2, 0.5, 1, 2, 5, 10]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.set_xlabel("value past its goal, × (log): right of the dashed line passes; line = "
                  "the median's interval, hollow = the interval holds the goal")
    ax.set_title("Targets (issue 12), each against its reference in this run")


def _interval(bounds: list[float] | None) -> str:
    return "" if not bounds else f"[{_fmt(bounds[0], 1)} to {_fmt(bounds[1], 1)}] "
