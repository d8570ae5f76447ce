"""The model report: one self-contained HTML page with embedded PNG plots, like a model card."""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from pyfuncs.features import FeatureSpec

PLOTS = ("roc", "pr", "calibration", "importance")
SHAP_PLOTS = ("shap_summary", "shap_waterfall")  # only when render() is given the booster
SHAP_MAX_ROWS = 2000  # the summary's sample of out-of-time rows (fixed seed)
SHAP_SEED = 7
DPI = 80  # small figures: the whole report stays a few hundred KB


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no display: the trainer runs from cron
    import matplotlib.pyplot as plt

    return plt


def _png_bytes(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    _pyplot().close(fig)
    return buffer.getvalue()


def _png(fig: Any) -> str:
    return base64.b64encode(_png_bytes(fig)).decode("ascii")


def plots(y: np.ndarray, candidate: np.ndarray, champion: np.ndarray | None,
          importance: dict[str, float]) -> dict[str, str]:
    """Base64 PNGs of ROC, precision-recall, calibration and gain importance."""
    plt = _pyplot()
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


def shap_contributions(booster: Any, X: np.ndarray) -> np.ndarray:
    """Exact TreeSHAP values from LightGBM (``pred_contrib``), in log-odds.

    One row per row of ``X``: a column per feature, then the expected value (base value).
    """
    from pyfuncs.reasons import shap_values

    X = np.asarray(X, dtype=np.float64)
    return np.asarray(shap_values(booster, X.reshape(-1, X.shape[-1])))


def _features_frame(X: np.ndarray, spec: FeatureSpec) -> Any:
    """``X`` as a DataFrame whose categorical features hold their categories (pandas
    categoricals), so shap draws them grey rather than coloured by a meaningless code."""
    import pandas as pd

    columns: dict[str, Any] = {}
    for j, name in enumerate(spec.names):
        categories = spec.categories.get(name)
        if categories is None:
            columns[name] = X[:, j]
        else:
            codes = np.where(np.isnan(X[:, j]), -1, X[:, j]).astype(np.int64)
            columns[name] = pd.Categorical.from_codes(codes, categories=list(categories))
    return pd.DataFrame(columns)


def summary_png(booster: Any, X: np.ndarray, spec: FeatureSpec | Sequence[str], *,
                max_rows: int = SHAP_MAX_ROWS, seed: int = SHAP_SEED) -> tuple[bytes, int]:
    """A SHAP beeswarm (shap.plots.beeswarm) of what drives the model on ``X``.

    At most ``max_rows`` rows, sampled without replacement with ``seed``; the beeswarm's
    own jitter is seeded too, so the same data gives the same picture. ``spec`` (or plain
    feature names: all numeric) says which features are categorical. Returns the PNG and
    the number of rows drawn.
    """
    from pyfuncs.features import FeatureSpec

    plt = _pyplot()
    import shap

    spec = spec if isinstance(spec, FeatureSpec) else FeatureSpec(spec)
    X = np.asarray(X, dtype=np.float64)
    if len(X) > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(len(X), max_rows, replace=False))
        X = X[rows]
    contrib = shap_contributions(booster, X)
    explanation = shap.Explanation(values=contrib[:, :-1], base_values=contrib[:, -1],
                                   data=_features_frame(X, spec), feature_names=spec.names)
    shown = min(len(spec.names), 15)
    state = np.random.get_state()  # shap.plots.beeswarm jitters with numpy's global RNG
    np.random.seed(seed)
    try:
        plt.figure()
        shap.plots.beeswarm(explanation, max_display=shown, show=False,
                            plot_size=(6.5, 0.35 * shown + 1.5))
    finally:
        np.random.set_state(state)
    fig = plt.gcf()
    fig.suptitle("What drives the model: SHAP values (log-odds of default)", fontsize=11)
    return _png_bytes(fig), len(X)


def _shown(value: Any) -> Any:
    """A feature value as the waterfall prints it next to the feature's name."""
    if value is None or isinstance(value, float) and math.isnan(value):
        return "missing"
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, int | float) else str(value)


def waterfall_png(booster: Any, row_values: Sequence[float], display_values: Sequence[Any],
                  names: Sequence[str], *, title: str | None = None) -> bytes:
    """A SHAP waterfall (shap.plots.waterfall) of one applicant's score, as a PNG.

    ``row_values`` is the model's input row (categorical features as codes), in ``names``
    order; ``display_values`` the same values as the applicant gave them (category strings,
    None for missing), printed next to each feature. The bars are exact TreeSHAP values in
    log-odds; the title gives the probability they add up to. Shared by the model report
    and ``blink report --user``.
    """
    plt = _pyplot()
    import shap

    row = np.asarray(row_values, dtype=np.float64).reshape(1, -1)
    if row.shape[1] != len(names) or len(display_values) != len(names):
        raise ValueError(f"{len(names)} features, but a row of {row.shape[1]} values and "
                         f"{len(display_values)} display values")
    contrib = shap_contributions(booster, row)[0]
    data = np.empty(len(names), dtype=object)
    data[:] = [_shown(v) for v in display_values]
    explanation = shap.Explanation(values=contrib[:-1], base_values=float(contrib[-1]),
                                   data=data, feature_names=list(names))
    probability = 1.0 / (1.0 + math.exp(-float(contrib.sum())))
    plt.figure()
    shap.plots.waterfall(explanation, max_display=12, show=False)
    fig = plt.gcf()
    heading = f"P(default) = {probability:.4f}; bars: SHAP values in log-odds"
    # Above the f(x) label that the waterfall puts over its top bar.
    fig.axes[0].set_title(heading if title is None else f"{title}\n{heading}", fontsize=11,
                          pad=28)
    return _png_bytes(fig)


def shap_section(booster: Any, X: np.ndarray, candidate: np.ndarray,
                 spec: FeatureSpec | None = None, users: Sequence[str] | None = None) -> str:
    """The report's SHAP section: the beeswarm of out-of-time rows and the riskiest one's
    waterfall (the row of ``X`` with the highest predicted probability ``candidate``).

    Without ``spec``, the booster's own feature names, all numeric.
    """
    from pyfuncs.features import FeatureSpec

    X = np.asarray(X, dtype=np.float64)
    spec = spec if spec is not None else FeatureSpec(booster.feature_name())
    names = spec.names
    if X.ndim != 2 or X.shape[1] != len(names) or len(X) != len(candidate) or not len(X):
        raise ValueError(f"X must be the {len(candidate)} out-of-time rows of {len(names)} "
                         f"features, got shape {X.shape}")
    summary, drawn = summary_png(booster, X, spec)
    riskiest = int(np.argmax(candidate))
    who = f"user {users[riskiest]}" if users is not None else f"out-of-time row {riskiest + 1}"
    shown = [spec.display_value(j, float(v)) for j, v in enumerate(X[riskiest])]
    waterfall = waterfall_png(booster, X[riskiest], shown, names,
                              title=f"{who} (the highest score out of time)")
    sample = (f"all {drawn} out-of-time rows" if drawn == len(X) else
              f"{drawn} of the {len(X)} out-of-time rows, sampled with seed {SHAP_SEED}")
    images = {"shap_summary": base64.b64encode(summary).decode("ascii"),
              "shap_waterfall": base64.b64encode(waterfall).decode("ascii")}
    captions = {
        "shap_summary": (
            f"SHAP summary of {sample}: one dot per row and feature; its position is how far "
            "the feature moved that row's log-odds of default (right: riskier), its colour the "
            "feature's value (blue low, red high; categorical features grey, categories have "
            "no order). Features are ordered by mean |SHAP value|."),
        "shap_waterfall": (
            f"Why {who} scores highest of the out-of-time window (P(default) "
            f"{float(candidate[riskiest]):.4f}): from the model's expected log-odds at the "
            "bottom, each bar is one feature's push, with the applicant's value on the left."),
    }
    figures = "".join(
        f'<figure><img alt="{name}" src="data:image/png;base64,{images[name]}"/>'
        f"<figcaption>{html.escape(captions[name])}</figcaption></figure>"
        for name in SHAP_PLOTS)
    return ("<h2>What drives the model (SHAP, out of time)</h2>\n"
            "<p>Exact TreeSHAP values from LightGBM (<code>pred_contrib</code>), as "
            "<code>blink_explain</code> computes them, drawn with the shap package.</p>\n"
            f"{figures}\n")


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
           gate_reason: str, importance: dict[str, float], booster: Any = None,
           X: np.ndarray | None = None, spec: FeatureSpec | None = None,
           users: Sequence[str] | None = None) -> str:
    """The report of one trained model as an HTML page (no external files).

    With ``booster`` (the candidate) and ``X`` (the out-of-time feature matrix, the rows of
    ``y`` and ``candidate``, in ``spec.names`` order) it has a SHAP section: a beeswarm
    summary and the waterfall of the riskiest row (``spec`` gives the values as the
    applicant gave them, ``users`` the rows' user ids for the caption). Without ``booster``
    the section is left out.
    """
    images = plots(y, candidate, champion, importance)
    explained = ""
    if booster is not None:
        if X is None:
            raise ValueError("render(booster=...) needs X, the out-of-time feature matrix")
        explained = shap_section(booster, X, candidate, spec, users)
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
{explained}<h2>Calibration table (out of time)</h2>
{_table(metrics["test"]["calibration"],
        ["rows", "min_predicted", "max_predicted", "mean_predicted", "observed_rate"])}
<h2>Feature importance (gain)</h2>
{_table([{"feature": k, "gain": v} for k, v in
         sorted(importance.items(), key=lambda kv: -kv[1])], ["feature", "gain"])}
</body></html>
"""
