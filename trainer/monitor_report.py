"""The monitoring report: how a live model holds up, as one self-contained HTML page.

Drawn from what monitoring recorded (blink.monitoring_timeseries, monitoring_status,
monitoring_timeline; the model's monitoring_reference), never from raw data: it is as cheap
as reading a few hundred rows and runs as any role granted blink_trainer. Every plot is an
embedded PNG (the model report's helpers); a section without data says so in a sentence
instead of drawing an empty axis. ``blink monitor-report`` writes it.
"""

from __future__ import annotations

import html
import json
import math
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from trainer.errors import ConfigError
from trainer.report import _fmt, _png, _pyplot, _table

TIMELINE_LIMIT = 200
BREACH = {"color": "tab:red", "marker": "o", "linestyle": "none", "markersize": 7,
          "markerfacecolor": "none", "markeredgewidth": 1.6}

NO_INPUTS = "no inputs cohort measured yet"
NO_OUTCOMES = "no matured outcomes cohort yet"
NO_CHALLENGER = "no challenger compared with this model yet"
NO_EVENTS = "no monitoring event or deployment yet"

SELECTIVE_LABELS = (
    "Selective labels: outcomes exist only for loans the champion approved, so the AUC gain "
    "is measured on those loans alone. How a challenger ranks applicants the champion "
    "declined is never tested; the approval overlap (the share of the champion's approvals "
    "the challenger would also approve) says how much of the challenger's own book these "
    "figures speak for.")

STATUS_FIELDS = [  # (column of blink.monitoring_status, label)
    ("version", "version"), ("role", "role"), ("since", "since"), ("until", "until"),
    ("has_reference", "has a monitoring reference"),
    ("inputs_cohort", "latest inputs cohort"), ("inputs_insufficient", "too few rows"),
    ("drifting_features", "drifting features"), ("score_psi", "score PSI"),
    ("score_psi_critical", "score PSI critical value"), ("approval_rate", "approval rate"),
    ("estimated_auc", "estimated AUC (CBPE)"), ("outcomes_cohort", "latest outcomes cohort"),
    ("realised_auc", "realised AUC"), ("realised_auc_lower_bound", "realised AUC lower bound"),
    ("auc_gain_vs_champion", "AUC gain vs champion"), ("alerts_7_days", "alerts, last 7 days"),
    ("retrain_requested", "retraining requested"), ("last_run_at", "last monitoring run"),
]


# --- reading -----------------------------------------------------------------------------

def _rows(conn: Any, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    cur = conn.execute(sql, list(params))
    names = [d.name for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _model(conn: Any, model_id: int | None) -> dict[str, Any] | None:
    """The model's row (id, version, features, bands, reference); the champion without
    ``model_id``, None when there is none."""
    where = ("m.id = %s" if model_id is not None else
             "m.id = (SELECT c.model_id FROM blink.champion() c)")
    rows = _rows(conn, "SELECT m.id, m.version, m.created_at, m.feature_names, m.risk_bands, "
                       "m.decision_threshold, m.monitoring_reference "
                       f"FROM blink.blink_models m WHERE {where}",
                 [model_id] if model_id is not None else [])
    if not rows:
        if model_id is not None:
            raise ConfigError(f"no model with id {model_id}")
        return None
    model = rows[0]
    for key in ("risk_bands", "monitoring_reference"):
        if isinstance(model[key], str):
            model[key] = json.loads(model[key])
    return model


def _series(conn: Any, model_id: int) -> list[dict[str, Any]]:
    """Every figure of the model, and of challengers compared with it, oldest first."""
    return _rows(conn, 'SELECT * FROM blink.monitoring_timeseries '
                       'WHERE model_id = %s OR compared_model_id = %s '
                       'ORDER BY "time", model_id, metric, feature', [model_id, model_id])


def _pick(rows: list[dict[str, Any]], metric: str, kind: str | None = None, *,
          model_id: int | None = None, compared: bool = False) -> list[dict[str, Any]]:
    return [r for r in rows if r["metric"] == metric
            and (kind is None or r["cohort_kind"] == kind)
            and (model_id is None or r["model_id"] == model_id)
            and (r["compared_model_id"] is not None) == compared]


# --- drawing -----------------------------------------------------------------------------

def _floats(rows: list[dict[str, Any]], key: str) -> np.ndarray:
    return np.array([math.nan if r[key] is None else float(r[key]) for r in rows], dtype=float)


def _times(rows: list[dict[str, Any]]) -> list[datetime]:
    return [r["time"] for r in rows]


def _time_axis(ax: Any) -> None:
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(minticks=2, maxticks=6)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.grid(alpha=0.3)


def _breaches(ax: Any, rows: list[dict[str, Any]], values: np.ndarray,
              label: str | None = "breach") -> None:
    hit = [i for i, r in enumerate(rows) if r["status"] == "breach"]
    if hit:
        ax.plot([rows[i]["time"] for i in hit], values[hit], label=label, **BREACH)


def _band(ax: Any, rows: list[dict[str, Any]], label: str, color: str | None = None,
          lower_bound: bool = True) -> None:
    """A series with its ±1 sampling-error band, lower bound dashed, breaches circled."""
    t, v, se = _times(rows), _floats(rows, "value"), _floats(rows, "sampling_error")
    line, = ax.plot(t, v, "o-", markersize=3, label=label, color=color)
    if np.isfinite(se).any():
        ax.fill_between(t, v - se, v + se, alpha=0.2, color=line.get_color(), linewidth=0,
                        label=f"{label} ± sampling error")
    if lower_bound and np.isfinite(_floats(rows, "lower_bound")).any():
        ax.plot(t, _floats(rows, "lower_bound"), "--", color=line.get_color(), linewidth=1,
                label=f"{label}: lower bound")
    _breaches(ax, rows, v, None)


def _figure(name: str, fig: Any, caption: str | None = None) -> str:
    text = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return (f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,{_png(fig)}"/>'
            f"{text}</figure>\n")


def _empty(sentence: str) -> str:
    return f'<p class="empty">{html.escape(sentence)}</p>\n'


def _note(sentence: str) -> str:
    return f"<p>{html.escape(sentence)}</p>\n"


# --- sections ----------------------------------------------------------------------------

def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return f"{value.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value)) or "none"
    return value


def status_section(conn: Any, model: dict[str, Any] | None) -> str:
    rows = _rows(conn, "SELECT * FROM blink.monitoring_status "
                       "ORDER BY role <> 'champion', model_id")
    out = "<h2>Status</h2>\n"
    if not rows:
        return out + _empty("no live model yet: promote one (blink train --deploy); "
                            "monitoring watches the champion and its shadows")
    columns = ["", *(f"model {r['model_id']}" for r in rows)]
    table = [{"": label, **{f"model {r['model_id']}": _cell(r[key]) for r in rows}}
             for key, label in STATUS_FIELDS]
    out += ("<p>One column per live model (blink.monitoring_status): the champion, its "
            "shadows and the previous champion on probation, at their latest measured "
            "cohorts.</p>\n" + _table(table, columns))
    if model is not None and model["id"] not in {r["model_id"] for r in rows}:
        out += _note(f"Model {model['id']} is not live (neither champion, shadow nor on "
                     "probation): monitoring measures it no more; below is what it recorded.")
    return out


def drift_section(model: dict[str, Any], own: list[dict[str, Any]]) -> str:
    out = "<h2>Feature stability</h2>\n"
    psi = _pick(own, "feature_psi", "inputs")
    if not psi:
        return out + _empty(f"{NO_INPUTS}: feature PSI appears once monitoring has scored "
                            "an inputs cohort (a week of snapshots) of this model")
    by_feature: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in psi:
        by_feature[r["feature"]].append(r)
    names = [n for n in model["feature_names"] if n in by_feature]
    names += sorted(set(by_feature) - set(names))
    plt = _pyplot()
    ncols = min(3, len(names))
    nrows = -(-len(names) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 2.3 * nrows), sharex=True,
                             squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        rows = by_feature[name]
        v = _floats(rows, "value")
        ax.plot(_times(rows), v, "o-", markersize=3, label="PSI")
        ax.plot(_times(rows), _floats(rows, "critical_value"), "--", color="grey",
                linewidth=1, label="critical value")
        _breaches(ax, rows, v)
        ax.set_title(name, fontsize=9)
        ax.set_ylim(bottom=0)
        ax.tick_params(labelsize=7)
        _time_axis(ax)
    for ax in axes.flat[len(names):]:
        ax.set_visible(False)
    handles: dict[str, Any] = {}
    for ax in axes.flat[:len(names)]:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    fig.legend(handles.values(), handles.keys(), loc="upper center", ncol=len(handles),
               bbox_to_anchor=(0.5, 1.02), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    out += _figure("feature_psi", fig,
                   "Population stability index of each feature per inputs cohort (x: cohort "
                   "start) against the model's reference, with that cohort's critical value "
                   "(dashed: the PSI a stable feature exceeds with probability drift_fdr at "
                   "this cohort's size). Circled: breaches after the Benjamini-Hochberg "
                   "correction over all features.")
    last = max(r["time"] for r in psi)
    latest = {r["feature"]: r for r in psi if r["time"] == last}
    missing = {r["feature"]: r for r in _pick(own, "feature_missing_rate", "inputs")
               if r["time"] == last}
    table = []
    for name in names:
        p, m = latest.get(name, {}), missing.get(name, {})
        table.append({"feature": name, "PSI": p.get("value"),
                      "critical value": p.get("critical_value"), "PSI status": p.get("status"),
                      "missing rate": m.get("value"), "reference missing rate": m.get("reference"),
                      "missing-rate status": m.get("status")})
    out += (f"<p>The latest inputs cohort ({_cell(last)}), per feature:</p>\n"
            + _table(table, ["feature", "PSI", "critical value", "PSI status", "missing rate",
                             "reference missing rate", "missing-rate status"]))
    return out


def score_section(conn: Any, model: dict[str, Any], own: list[dict[str, Any]]) -> str:
    out = "<h2>Score distribution</h2>\n"
    plt = _pyplot()
    psi = _pick(own, "score_psi", "inputs")
    if psi:
        fig, ax = plt.subplots(figsize=(5.5, 3.2))
        v = _floats(psi, "value")
        ax.plot(_times(psi), v, "o-", markersize=3, label="score PSI")
        ax.plot(_times(psi), _floats(psi, "critical_value"), "--", color="grey", linewidth=1,
                label="critical value")
        _breaches(ax, psi, v)
        ax.set(title="Score PSI per inputs cohort", ylabel="PSI")
        ax.set_ylim(bottom=0)
        _time_axis(ax)
        ax.legend(fontsize=8)
        out += _figure("score_psi", fig,
                       "Cohort histograms are not stored: the score's stability is its PSI "
                       "against the reference deciles, with the critical value at score_alpha.")
    else:
        out += _empty(f"{NO_INPUTS}: score PSI appears with the first measured inputs cohort")
    score = (model["monitoring_reference"] or {}).get("score")
    if not score:
        return out + _empty("the model has no monitoring reference (it was not inserted by "
                            "the trainer): no reference score distribution to show")
    edges, shares = list(score["edges"]), list(score["proportions"])
    lefts = np.array([0.0, *edges])
    widths = np.maximum(np.array([*edges, 1.0]) - lefts, 1e-9)
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    ax.bar(lefts, np.array(shares) / widths, width=widths, align="edge", edgecolor="white",
           alpha=0.8, label="reference")
    threshold = score.get("decision_threshold", model["decision_threshold"])
    ax.axvline(threshold, color="tab:red", linestyle="--", linewidth=1,
               label=f"decline at ≥ {threshold:.3f}")
    right = edges[-1] + 2 * (edges[-1] - edges[-2]) if len(edges) > 1 else 1.0
    ax.set_xlim(0, min(1.0, max(right, threshold * 1.1)))
    ax.set(title="Reference score distribution", xlabel="probability of default",
           ylabel="density")
    ax.legend(fontsize=8)
    out += _figure("score_reference", fig,
                   f"The model's reference (its out-of-time window, "
                   f"{(model['monitoring_reference'] or {}).get('rows', '?')} users): "
                   f"{len(shares)} score bins, each bar's area its share of users; approval "
                   f"rate {score.get('approval_rate', math.nan):.1%}. The last bin runs to 1.")
    mix = _rows(conn, "SELECT cohort_start, detail FROM blink.monitoring_metrics "
                      "WHERE model_id = %s AND metric = 'band_mix' "
                      "ORDER BY cohort_start DESC, run_id DESC LIMIT 1", [model["id"]])
    bands, reference = score.get("bands"), score.get("band_proportions")
    latest = mix[0]["detail"].get("shares") if mix else None
    if bands and reference and latest and len(latest) == len(bands):
        fig, ax = plt.subplots(figsize=(5.5, 3.2))
        x = np.arange(len(bands))
        ax.bar(x - 0.2, reference, width=0.4, label="reference")
        ax.bar(x + 0.2, latest, width=0.4, label=f"cohort of {_cell(mix[0]['cohort_start'])}")
        ax.set_xticks(x, bands)
        ax.set(title="Risk-band mix: reference vs latest cohort", xlabel="risk band",
               ylabel="share of users")
        ax.legend(fontsize=8)
        out += _figure("band_mix", fig, "Share of users per risk band, the reference against "
                                        "the latest measured inputs cohort.")
    return out


def auc_section(own: list[dict[str, Any]]) -> str:
    out = "<h2>Estimated and realised AUC</h2>\n"
    estimated = _pick(own, "estimated_auc", "inputs")
    realised = _pick(own, "realised_auc", "outcomes")
    if not estimated and not realised:
        return out + _empty(f"{NO_INPUTS} and {NO_OUTCOMES}: no AUC to show")
    fig, ax = _pyplot().subplots(figsize=(7, 3.6))
    if estimated:
        _band(ax, estimated, "estimated AUC (CBPE)", "tab:blue")
    if realised:
        _band(ax, realised, "realised AUC", "tab:green")
    ax.set(title="ROC AUC per cohort", ylabel="ROC AUC")
    _time_axis(ax)
    ax.legend(fontsize=7, loc="lower left")
    out += _figure("auc", fig,
                   "Estimated AUC (confidence-based, from the scores alone, per inputs cohort) "
                   "and realised AUC (matured loans issued in the cohort), each ± one sampling "
                   "error, with its lower bound (dashed; below it is a breach, circled). CBPE "
                   "is blind to concept drift: only realised AUC shows it.")
    if not realised:
        out += _empty(f"{NO_OUTCOMES}: realised AUC needs loans past their due date and the "
                      "grace period, enough of them for the sampling error the policy accepts")
    if not estimated:
        out += _empty(f"{NO_INPUTS} with a reference: no estimated AUC")
    return out


def calibration_section(model: dict[str, Any], own: list[dict[str, Any]]) -> str:
    out = "<h2>Calibration</h2>\n"
    rates = _pick(own, "default_rate", "outcomes")
    if not rates:
        return out + _empty(f"{NO_OUTCOMES}: observed default rates need matured loans")
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    left.errorbar(_times(rates), _floats(rates, "value"), yerr=_floats(rates, "sampling_error"),
                  fmt="o-", markersize=3, capsize=3, label="observed (± sampling error)")
    left.plot(_times(rates), _floats(rates, "reference"), "s--", markersize=3,
              label="predicted (mean probability)")
    _breaches(left, rates, _floats(rates, "value"))
    left.set(title="Default rate per outcomes cohort", ylabel="default rate")
    left.set_ylim(bottom=0)
    _time_axis(left)
    left.legend(fontsize=7)
    last = max(r["time"] for r in rates)
    bands = [r for r in _pick(own, "band_default_rate", "outcomes") if r["time"] == last]
    order = [b["band"] for b in model["risk_bands"] or []]
    bands.sort(key=lambda r: order.index(r["feature"]) if r["feature"] in order else len(order))
    if bands:
        x = np.arange(len(bands))
        right.bar(x, _floats(bands, "value"), yerr=_floats(bands, "sampling_error"), capsize=3,
                  alpha=0.8, label="observed (± sampling error)")
        right.plot(x, _floats(bands, "reference"), "D", color="tab:orange",
                   label="predicted")
        right.set_xticks(x, [f"{r['feature']}\n({r['rows']})" for r in bands])
        right.set(title=f"Per risk band, cohort of {_cell(last)}",
                  xlabel="risk band (loans)", ylabel="default rate")
        right.legend(fontsize=7)
    else:
        right.set_visible(False)
    fig.tight_layout()
    out += _figure("calibration", fig,
                   "Observed default rate of matured loans against the rate the model "
                   "predicted for them, per outcomes cohort (circled: significantly apart), "
                   "and per risk band in the latest outcomes cohort.")
    ece = _pick(own, "calibration_error", "outcomes")
    if ece:
        e = ece[-1]
        bound = ("" if e["upper_bound"] is None else
                 f" (upper bound {_fmt(e['upper_bound'])}, {e['status']})")
        out += _note(f"Expected calibration error of the latest outcomes cohort "
                     f"({_cell(e['time'])}): {_fmt(e['value'])}{bound}.")
    return out


def approval_section(own: list[dict[str, Any]]) -> str:
    out = "<h2>Approval rate</h2>\n"
    rows = _pick(own, "approval_rate", "inputs")
    if not rows:
        return out + _empty(f"{NO_INPUTS}: the approval rate is measured per inputs cohort")
    fig, ax = _pyplot().subplots(figsize=(7, 3.4))
    v = _floats(rows, "value")
    ax.errorbar(_times(rows), v, yerr=_floats(rows, "sampling_error"), fmt="o-", markersize=3,
                capsize=3, label="approval rate (± sampling error)")
    ax.plot(_times(rows), _floats(rows, "reference"), "--", color="grey", label="reference")
    _breaches(ax, rows, v)
    ax.set(title="Approval rate per inputs cohort", ylabel="share approved")
    _time_axis(ax)
    ax.legend(fontsize=8)
    return out + _figure("approval_rate", fig,
                         "Share of the cohort's users the model approves (probability below "
                         "its threshold), against its reference; circled: significantly "
                         "different (alert_alpha).")


def challenger_section(model: dict[str, Any], rows: list[dict[str, Any]],
                       versions: dict[int, str]) -> str:
    out = "<h2>Champion vs challenger</h2>\n"
    me = model["id"]
    pairs = [r for r in rows if r["metric"] in ("auc_gain", "approval_overlap")
             and r["compared_model_id"] is not None
             and me in (r["model_id"], r["compared_model_id"])]
    gains = [r for r in pairs if r["metric"] == "auc_gain"]
    overlaps = [r for r in pairs if r["metric"] == "approval_overlap"]
    if not pairs:
        return out + _empty(f"{NO_CHALLENGER}: a shadow model (blink_shadow_add) is compared "
                            "with the champion on the same users and matured loans") \
            + _note(SELECTIVE_LABELS)

    def label(r: dict[str, Any]) -> str:
        a, b = r["model_id"], r["compared_model_id"]
        return f"{versions.get(a, a)} vs {versions.get(b, b)}"

    fig, (left, right) = _pyplot().subplots(1, 2, figsize=(10, 3.6))
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in gains:
        groups[label(r)].append(r)
    for name, series in groups.items():
        _band(left, series, name)
    if gains:
        left.axhline(0, color="black", linewidth=0.6)
        floor = gains[-1]["reference"]
        if floor is not None:
            left.axhline(floor, color="grey", linestyle=":", label=f"min_auc_gain {floor:g}")
        left.set(title="AUC gain of the challenger (matured loans)", ylabel="ΔAUC")
        _time_axis(left)
        left.legend(fontsize=6)
    else:
        left.text(0.5, 0.5, NO_OUTCOMES, ha="center", va="center", transform=left.transAxes)
        left.set_axis_off()
    groups = defaultdict(list)
    for r in overlaps:
        groups[label(r)].append(r)
    for name, series in groups.items():
        right.plot(_times(series), _floats(series, "value"), "o-", markersize=3, label=name)
    if overlaps:
        right.set(title="Approval overlap (inputs cohorts)",
                  ylabel="champion's approvals\nthe challenger approves")
        right.set_ylim(0, 1.05)
        _time_axis(right)
        right.legend(fontsize=6)
    else:
        right.set_visible(False)
    fig.tight_layout()
    out += _figure("challenger", fig,
                   "AUC gain of each challenger over the champion on the same matured loans "
                   "(paired DeLong), ± one sampling error, with its lower confidence bound "
                   "(dashed); circled: a win (lower bound above min_auc_gain, calibrated).")
    if not gains:
        out += _empty(f"{NO_OUTCOMES}: the AUC gain needs matured loans scored by both models")
    return out + _note(SELECTIVE_LABELS)


def timeline_section(conn: Any) -> str:
    out = "<h2>Timeline</h2>\n"
    total = _rows(conn, "SELECT count(*) AS n FROM blink.monitoring_timeline")[0]["n"]
    rows = _rows(conn, 'SELECT "time", severity, rule, model_id, message '
                       'FROM blink.monitoring_timeline '
                       'ORDER BY "time" DESC, run_id DESC NULLS LAST, deployment_id DESC '
                       'LIMIT %s', [TIMELINE_LIMIT])
    if not rows:
        return out + _empty(NO_EVENTS)
    shown = (f"the newest {len(rows)} of {total}" if total > len(rows) else f"all {total}")
    out += _note(f"Monitoring events and champion changes (blink.monitoring_timeline), newest "
                 f"first: {shown}.")
    body = "".join(
        f'<tr class="{html.escape(r["severity"])}">'
        + "".join(f"<td>{_fmt(_cell(r[c]))}</td>"
                  for c in ("time", "severity", "rule", "model_id", "message"))
        + "</tr>" for r in rows)
    head = "".join(f"<th>{c}</th>" for c in ("time", "severity", "rule", "model", "message"))
    return out + f'<table class="timeline"><tr>{head}</tr>{body}</table>\n'


# --- the page ----------------------------------------------------------------------------

STYLE = """body{font-family:sans-serif;max-width:75em;margin:2em auto}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.2em .6em}
figure{display:inline-block;margin:.5em;vertical-align:top}figcaption{max-width:45em;
font-size:90%;color:#444}p.empty{color:#666;font-style:italic}
tr.alert{background:#fde8e8}tr.action{background:#fff3d6}tr.deployment{background:#e6f0fb}"""


def render(conn: Any, *, model_id: int | None = None) -> str:
    """The monitoring report of model ``model_id`` (default: the champion) as HTML.

    Raises
    ------
    ConfigError
        No model has id ``model_id``.
    """
    model = _model(conn, model_id)
    now = datetime.now(UTC)
    if model is None:
        title = "blink monitoring: no champion yet"
        intro = _empty("no champion model yet: nothing is monitored. Promote one (blink train "
                       "--deploy), and monitoring (blink_monitor_run, daily) measures it.")
        body = status_section(conn, None) + timeline_section(conn)
    else:
        rows = _series(conn, model["id"])
        own = [r for r in rows if r["model_id"] == model["id"]]
        versions = {int(r["id"]): r["version"] for r in _rows(
            conn, "SELECT id, version FROM blink.blink_models WHERE id = ANY(%s)",
            [sorted({model["id"], *(r["model_id"] for r in rows),
                     *(r["compared_model_id"] for r in rows if r["compared_model_id"])})])}
        title = f"blink monitoring: model {model['version']} (id {model['id']})"
        kinds = {k: len({r["time"] for r in own if r["cohort_kind"] == k})
                 for k in ("inputs", "outcomes")}
        short = {k: sum(1 for r in own if r["cohort_kind"] == k and r["metric"] == "rows"
                        and r["status"] == "insufficient_data") for k in ("inputs", "outcomes")}
        intro = _note(
            f"Model {model['version']} (id {model['id']}, created "
            f"{_cell(model['created_at'])}): {kinds['inputs']} inputs cohorts "
            f"({short['inputs']} with too few users to measure) and {kinds['outcomes']} "
            f"outcomes cohorts ({short['outcomes']} with too few matured loans) recorded. "
            "Inputs cohorts are the users whose snapshots were taken in a week; outcomes "
            "cohorts the loans issued in it, once matured. Figures are the newest measurement "
            "of each cohort (blink.monitoring_timeseries).")
        body = (status_section(conn, model) + drift_section(model, own)
                + score_section(conn, model, own) + auc_section(own)
                + calibration_section(model, own) + approval_section(own)
                + challenger_section(model, rows, versions) + timeline_section(conn))
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{STYLE}</style></head><body>
<h1>{html.escape(title)}</h1>
<p>Generated {_cell(now)}.</p>
{intro}{body}</body></html>
"""


def write(conn: Any, path: str | Path, model_id: int | None = None) -> Path:
    """Write :func:`render`'s page to ``path``; returns the path."""
    path = Path(path)
    path.write_text(render(conn, model_id=model_id), encoding="utf-8")
    return path
