"""The model report: one self-contained HTML page with embedded PNG plots, like a model card."""

from __future__ import annotations

import base64
import html
import io
import json
from typing import Any

import numpy as np

PLOTS = ("roc", "pr", "calibration", "importance")


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def plots(y: np.ndarray, candidate: np.ndarray, champion: np.ndarray | None,
          importance: dict[str, float]) -> dict[str, str]:
    """Base64 PNGs of ROC, precision-recall, calibration and gain importance."""
    import matplotlib

    matplotlib.use("Agg")  # no display: the trainer runs from cron
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve, roc_curve

    series = [("candidate", candidate)] + ([("champion", champion)] if champion is not None
                                           else [])
    out = {}
    fig, ax = plt.subplots(figsize=(4.5, 4))
    for name, p in series:
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, label=name)
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (out of time)")
    ax.legend()
    out["roc"] = _png(fig)

    fig, ax = plt.subplots(figsize=(4.5, 4))
    for name, p in series:
        precision, recall, _ = precision_recall_curve(y, p)
        ax.plot(recall, precision, label=name)
    ax.axhline(y.mean(), linestyle=":", color="grey")
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall (out of time)")
    ax.legend()
    out["pr"] = _png(fig)

    from trainer.metrics import calibration_table

    fig, ax = plt.subplots(figsize=(4.5, 4))
    for name, p in series:
        table = calibration_table(y, p)
        ax.plot([b["mean_predicted"] for b in table], [b["observed_rate"] for b in table],
                "o-", label=name)
    top = float(max(candidate.max(), y.mean() * 2, 0.05))
    ax.plot([0, top], [0, top], ":", color="grey")
    ax.set(xlabel="mean predicted", ylabel="observed default rate", title="Calibration")
    ax.legend()
    out["calibration"] = _png(fig)

    names = sorted(importance, key=importance.get)  # type: ignore[arg-type]
    fig, ax = plt.subplots(figsize=(5, 0.4 * len(names) + 1))
    ax.barh(names, [importance[n] for n in names])
    ax.set(xlabel="total gain", title="Feature importance")
    out["importance"] = _png(fig)
    return out


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_fmt(r.get(c))}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return html.escape("" if value is None else str(value))


COMPARED = ("roc_auc", "pr_auc", "ks", "brier", "log_loss", "ece", "rows", "positives")


def render(*, version: str, y: np.ndarray, candidate: np.ndarray, champion: np.ndarray | None,
           champion_version: str | None, metrics: dict[str, Any], champion_metrics: dict | None,
           gate_reason: str, importance: dict[str, float]) -> str:
    """The report of one trained model as an HTML page (no external files)."""
    images = plots(y, candidate, champion, importance)
    comparison = [{"metric": m, "candidate": metrics["test"][m],
                   "champion": None if champion_metrics is None else champion_metrics[m]}
                  for m in COMPARED]
    splits = [{"period": name, **metrics["window"][name], **metrics["splits"][name]}
              for name in ("train", "valid", "test")]
    figures = "".join(
        f'<figure><img alt="{name}" src="data:image/png;base64,{images[name]}"/></figure>'
        for name in PLOTS)
    champion_label = html.escape(champion_version or "none")
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>blink model {html.escape(version)}</title>
<style>body{{font-family:sans-serif;max-width:70em;margin:2em auto}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:.2em .6em}}
figure{{display:inline-block;margin:.5em}}</style></head><body>
<h1>blink model {html.escape(version)}</h1>
<p>LightGBM binary classifier of "ever fell into default or delinquency", trained on the
oldest period, early-stopped on the next, measured on the newest (out of time).
Cut-off {_fmt(metrics["window"]["cutoff"])}, grace {_fmt(metrics["window"]["grace_days"])}
days.</p>
<h2>Candidate vs champion ({champion_label}) on the out-of-time window</h2>
{_table(comparison, ["metric", "candidate", "champion"])}
<p><b>Promotion gate:</b> {html.escape(gate_reason)}</p>
<h2>Periods</h2>
{_table(splits, ["period", "from", "to", "rows", "positives"])}
<p>Excluded: {html.escape(json.dumps(metrics["window"]["excluded"]))}</p>
<h2>Decision policy</h2>
<p>Decline at probability &ge; {metrics["decision_threshold"]:.4f}, the threshold with the
least expected cost on the validation period (missed default costs
{metrics["costs"]["missed_default"]}, a wrongly declined good user
{metrics["costs"]["declined_good"]}); expected cost per applicant out of time:
{metrics["test"]["expected_cost"]:.4f}.</p>
{_table(metrics["bands"], ["band", "max_probability", "rows", "observed_rate"])}
<h2>Plots</h2>
{figures}
<h2>Calibration table (out of time)</h2>
{_table(metrics["test"]["calibration"],
        ["rows", "min_predicted", "max_predicted", "mean_predicted", "observed_rate"])}
<h2>Feature importance (gain)</h2>
{_table([{"feature": k, "gain": v} for k, v in
         sorted(importance.items(), key=lambda kv: -kv[1])], ["feature", "gain"])}
</body></html>
"""
