"""One training run: read, split, train, compare with the champion, write, promote."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from pyfuncs.integrity import sha256_hex
from trainer import metrics as m
from trainer import registry
from trainer.artifacts import ModelArtifact, build_artifact
from trainer.config import TrainerConfig
from trainer.dataset import (
    Dataset,
    build_dataset,
    feature_matrix,
    fetch_rows,
    fetch_rows_from_shards,
)
from trainer.errors import ArtifactError, TrainingDataError
from trainer.promotion import Decision, GateResult, apply_decision, gate
from trainer.report import render
from trainer.training import train_early_stopped

log = logging.getLogger("trainer")
PARITY_TOLERANCE = 1e-6


@dataclass
class RunOptions:
    """What to do with the candidate, and where to put its files."""

    cutoff: datetime | None = None  # None: now
    deploy: bool = False
    force: bool = False
    dry_run: bool = False
    output_dir: Path = Path("models")
    version: str | None = None
    progress: bool = False
    data_from: tuple[str, ...] = ()  # shards to read training data from (default: conn)


@dataclass
class RunResult:
    """What a run produced (the model id and decision are None for a dry run)."""

    version: str
    metrics: dict[str, Any]
    champion_metrics: dict[str, Any] | None
    champion_id: int | None
    gate: GateResult
    artifact: ModelArtifact
    model_id: int | None = None
    decision: Decision | None = None
    files: dict[str, Path] = field(default_factory=dict)


def load_dataset(conn: Any, config: TrainerConfig, cutoff: datetime,
                 progress: bool = False, data_from: tuple[str, ...] = ()) -> Dataset:
    """The run's training set from the database, or from every shard of a sharded install
    (point-in-time join, then pure checks)."""
    rows = (fetch_rows_from_shards(list(data_from), cutoff, progress=progress) if data_from
            else fetch_rows(conn, cutoff, progress=progress))
    return build_dataset(
        rows, cutoff, grace=timedelta(days=config.grace_days), features=config.features,
        valid_fraction=config.valid_fraction, test_fraction=config.test_fraction,
        min_rows=config.min_rows, min_positives=config.min_positives,
        categorical=config.categorical)


def candidate_metrics(ds: Dataset, booster: Any, config: TrainerConfig
                      ) -> tuple[dict[str, Any], np.ndarray]:
    """Everything stored in the model's metrics column; also the out-of-time predictions."""
    X_valid, y_valid = ds.part("valid")
    X_test, y_test = ds.part("test")
    p_valid = booster.predict(X_valid, num_threads=1)
    p_test = booster.predict(X_test, num_threads=1)
    threshold = m.cost_optimal_threshold(y_valid, p_valid, config.cost_missed_default,
                                         config.cost_declined_good)
    test = m.evaluate(y_test, p_test)
    test["expected_cost"] = m.expected_cost(y_test, p_test, threshold,
                                            config.cost_missed_default, config.cost_declined_good)
    valid = m.evaluate(y_valid, p_valid)
    gains = booster.feature_importance(importance_type="gain")
    importance = {n: float(g) for n, g in zip(ds.feature_names, gains, strict=True)}
    result = {
        # Headline numbers are out of time (the test period).
        **{k: test[k] for k in ("roc_auc", "pr_auc", "ks", "brier", "log_loss", "ece")},
        "test": test,
        "valid": {k: v for k, v in valid.items() if k != "calibration"},
        "splits": ds.counts(),
        "window": ds.window(),
        "importance_gain": importance,
        "decision_threshold": threshold,
        "costs": {"missed_default": config.cost_missed_default,
                  "declined_good": config.cost_declined_good},
        "bands": m.band_table(y_test, p_test, config.risk_bands),
        "best_iteration": int(booster.current_iteration()),
    }
    return result, p_test


def champion_predictions(ds: Dataset, champion: dict[str, Any]) -> np.ndarray:
    """The champion's probabilities on the same out-of-time rows, from its model text."""
    import lightgbm

    booster = lightgbm.Booster(model_str=champion["model_text"])
    X = feature_matrix(ds.documents("test"), champion["spec"])
    return np.asarray(booster.predict(X, num_threads=1))


def check_parity(artifact: ModelArtifact, booster: Any, X: np.ndarray) -> float:
    """Max |compiled - LightGBM| on ``X``, through blink's own loader; fails above 1e-6."""
    from pyfuncs.predictor import CompiledPredictor

    compiled = CompiledPredictor(artifact.compiled_lib, artifact.compiled_lib_sha256, X.shape[1])
    got, buggy = compiled.predict_matrix(X)
    expected = booster.predict(X, num_threads=1)
    diff = float(np.abs(got[~buggy] - expected[~buggy]).max()) if (~buggy).any() else 0.0
    if not diff <= PARITY_TOLERANCE:
        raise ArtifactError(
            f"the compiled library disagrees with LightGBM by {diff:.3g} (> {PARITY_TOLERANCE})"
            f" on the out-of-time rows; nothing written")
    return diff


def write_files(artifact: ModelArtifact, directory: Path) -> dict[str, Path]:
    """Model text, Treelite model, compiled library, report and metrics, in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        "model_text": directory / "model.txt",
        "treelite_model": directory / "model.treelite",
        "compiled_lib": directory / "model.so",
        "report": directory / "report.html",
        "metrics": directory / "metrics.json",
    }
    files["model_text"].write_text(artifact.model_text)
    files["treelite_model"].write_bytes(artifact.treelite_model or b"")
    files["compiled_lib"].write_bytes(artifact.compiled_lib)
    files["report"].write_text(artifact.report_html or "")
    files["metrics"].write_text(json.dumps(artifact.metrics, indent=2, sort_keys=True))
    return files


def monitoring_reference(conn: Any, ds: Dataset, booster: Any, metrics: dict[str, Any],
                         config: TrainerConfig, p_test: np.ndarray) -> dict[str, Any]:
    """What monitoring will compare this model with: its out-of-time window (step 5b)."""
    from trainer import monitoring

    window = ds.split.windows["test"]
    documents = monitoring.window_documents(conn, datetime.fromisoformat(window["from"]),
                                            datetime.fromisoformat(window["to"]))
    source = "latest snapshot per user in the out-of-time window"
    if not documents:  # no snapshot history (e.g. one snapshot per loan): the test loans
        documents = [r.features or {} for r in ds.documents("test")]
        source = "the out-of-time loans' snapshots"
    log.info("monitoring reference: %d users (%s)", len(documents), source)
    return monitoring.reference(
        booster, ds.spec, documents, decision_threshold=metrics["decision_threshold"],
        risk_bands=config.risk_bands, window={**window, "source": source},
        y_test=ds.part("test")[1], p_test=p_test)


def run(conn: Any, config: TrainerConfig, options: RunOptions) -> RunResult:
    """Train a candidate and decide about it; see docs/trainer.md for each step."""
    from tqdm import tqdm

    cutoff = options.cutoff or datetime.now(UTC)
    steps = tqdm(total=6, desc="trainer", unit=" steps", disable=not options.progress)

    ds = load_dataset(conn, config, cutoff, progress=options.progress,
                      data_from=options.data_from)
    steps.update()
    for part, counts in ds.counts().items():
        w = ds.split.windows[part]
        log.info("%s period: issued %s .. %s, %d rows, %d bad", part, w["from"], w["to"],
                 counts["rows"], counts["positives"])

    booster, params = train_early_stopped(
        ds.part("train"), ds.part("valid"), ds.spec, seed=config.seed,
        max_rounds=config.max_rounds, early_stopping_rounds=config.early_stopping_rounds,
        monotone=config.monotone, params=config.params, progress=options.progress)
    log.info("trained %d rounds (early-stopped on the validation period)",
             booster.current_iteration())
    steps.update()

    metrics, p_test = candidate_metrics(ds, booster, config)
    champion = registry.champion_model(conn)
    champion_metrics, p_champion = None, None
    if champion is not None:
        p_champion = champion_predictions(ds, champion)
        champion_metrics = m.evaluate(ds.part("test")[1], p_champion)
    result = gate(metrics, champion_metrics, min_auc_gain=config.min_auc_gain,
                  calibration_tolerance=config.calibration_tolerance)
    metrics["champion"] = None if champion is None else {
        "id": champion["id"], "version": champion["version"],
        **{k: v for k, v in (champion_metrics or {}).items() if k != "calibration"}}
    metrics["gate"] = {"passed": result.passed, "reason": result.reason}
    steps.update()

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    version = options.version or f"{stamp}-{sha256_hex(booster.model_to_string().encode())[:8]}"
    if not options.dry_run:
        version = registry.free_version(conn, version) if options.version is None else version
        if options.version is not None and registry.model_id_by_version(conn, version):
            raise TrainingDataError(f"a model with version {version!r} already exists")
    log.info("compiling %s with TL2cgen", version)
    artifact = build_artifact(booster, version, decision_threshold=metrics["decision_threshold"],
                              risk_bands=config.risk_bands, metrics=metrics,
                              params={**params, "config": config.to_dict()})
    metrics["parity_max_abs_diff"] = check_parity(artifact, booster, ds.part("test")[0])
    artifact.metrics = metrics
    artifact.monitoring_reference = monitoring_reference(conn, ds, booster, metrics, config,
                                                         p_test)
    steps.update()

    artifact.report_html = render(
        version=version, y=ds.part("test")[1], candidate=p_test, champion=p_champion,
        champion_version=None if champion is None else champion["version"], metrics=metrics,
        champion_metrics=champion_metrics, gate_reason=result.reason,
        importance=metrics["importance_gain"], booster=booster, X=ds.part("test")[0],
        spec=ds.spec, users=[r.user_id for r in ds.documents("test")])
    steps.update()
    out = RunResult(version, metrics, champion_metrics, None if champion is None else
                    champion["id"], result, artifact)
    if options.dry_run:
        log.info("dry run: nothing written; the gate says: %s", result.reason)
        steps.close()
        return out

    out.files = write_files(artifact, options.output_dir / version)
    with conn.transaction():  # the whole model row, artifacts and report, or nothing
        out.model_id = registry.insert_model(conn, artifact)
    log.info("wrote model %d (%s); report %s", out.model_id, version, out.files["report"])
    out.decision = apply_decision(
        conn, candidate_id=out.model_id, champion_id=out.champion_id, result=result,
        deploy=options.deploy, force=options.force, window=ds.split.windows["test"],
        candidate=metrics["test"], champion=champion_metrics)
    log.info("decision: %s (%s)", out.decision.decision, out.decision.reason)
    steps.update()
    steps.close()
    return out
