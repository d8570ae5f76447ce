"""Training, artifacts and the report, without a database (real LightGBM and TL2cgen)."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime

import numpy as np
import pytest

from pyfuncs.features import FeatureSpec
from trainer import synthetic
from trainer.artifacts import build_artifact, sha256_hex
from trainer.config import load_config
from trainer.errors import ArtifactError, ConfigError
from trainer.pipeline import check_parity
from trainer.report import PLOTS, render
from trainer.training import monotone_vector, train_early_stopped


@pytest.fixture(scope="module")
def data():
    pop = synthetic.generate(3000, seed=21)
    X, y = pop.features, pop.defaulted
    return (X[:2000], y[:2000]), (X[2000:], y[2000:])


def train(data, **kw):
    args = dict(seed=3, max_rounds=200, early_stopping_rounds=20)
    args.update(kw)
    return train_early_stopped(data[0], data[1], FeatureSpec(synthetic.FEATURES), **args)


def test_same_data_and_seed_give_identical_model_text(data):
    a, params = train(data)
    b, _ = train(data)
    c, _ = train(data, seed=4)
    assert a.model_to_string() == b.model_to_string()
    assert a.model_to_string() != c.model_to_string()
    # Early stopping cut the model at the validated iteration, and says so.
    assert a.current_iteration() == params["num_boost_round"] < 200


def test_monotone_constraints_from_config_are_respected(data, tmp_path):
    config = tmp_path / "trainer.toml"
    config.write_text('[monotone]\nmetric_overdraft_count90 = 1\nmetric_median_paycheck = -1\n')
    cfg = load_config(config)
    booster, params = train(data, monotone=cfg.monotone)
    assert params["monotone_constraints"] == [-1, 1, 0, 0, 0, 0, 0]
    X = np.repeat(data[1][0][:50], 20, axis=0)
    X[:, 1] = np.tile(np.arange(20), 50)  # overdrafts 0..19 for 50 users
    p = booster.predict(X, num_threads=1).reshape(50, 20)
    assert (np.diff(p, axis=1) >= -1e-12).all()


def test_monotone_constraint_on_unknown_feature_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown feature\\(s\\) metric_nope"):
        monotone_vector(synthetic.FEATURES, {"metric_nope": 1})


def test_config_file_sections_and_unknown_keys(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("seed = 11\n[costs]\nmissed_default = 5\n[promotion]\nmin_auc_gain = 0.01\n")
    cfg = load_config(path, seed=None, grace_days=10)
    assert (cfg.seed, cfg.cost_missed_default, cfg.min_auc_gain, cfg.grace_days) == (
        11, 5, 0.01, 10)
    path.write_text("sede = 11\n")
    with pytest.raises(ConfigError, match="unknown config key\\(s\\): sede"):
        load_config(path)


def test_compiled_library_matches_lightgbm_and_hashes_are_stored(data):
    booster, _ = train(data, max_rounds=60)
    artifact = build_artifact(booster, "unit-parity", decision_threshold=0.2)
    X = data[1][0]
    assert np.isnan(X).any()
    assert check_parity(artifact, booster, X) <= 1e-6
    assert artifact.model_text_sha256 == sha256_hex(artifact.model_text.encode())
    assert artifact.treelite_model_sha256 == sha256_hex(artifact.treelite_model or b"")
    import treelite

    restored = treelite.Model.deserialize_bytes(artifact.treelite_model)
    assert restored.num_tree == booster.num_trees()


def test_parity_check_refuses_a_library_of_another_model(data):
    booster, _ = train(data, max_rounds=60)
    other, _ = train(data, max_rounds=60, seed=99)
    artifact = build_artifact(other, "unit-other")
    with pytest.raises(ArtifactError, match="disagrees with LightGBM"):
        check_parity(artifact, booster, data[1][0])


def test_report_holds_all_plots_as_png_and_the_comparison(data):
    y = data[1][1]
    rng = np.random.default_rng(0)
    p = np.clip(y * 0.3 + rng.random(len(y)) * 0.5, 0, 1)
    champion = rng.random(len(y))
    from trainer.metrics import band_table, evaluate

    test = {**evaluate(y, p), "expected_cost": 0.5}
    window = {"cutoff": datetime(2026, 6, 1, tzinfo=UTC).isoformat(), "grace_days": 30,
              "excluded": {"not_matured": 3}, **{k: {"from": "a", "to": "b"} for k in
                                                  ("train", "valid", "test")}}
    metrics = {"test": test, "window": window, "decision_threshold": 0.2,
               "splits": {k: {"rows": 1, "positives": 0} for k in ("train", "valid", "test")},
               "costs": {"missed_default": 10, "declined_good": 1},
               "bands": band_table(y, p, [{"band": "A", "max_probability": 1.0}])}
    html = render(version="v-unit", y=y, candidate=p, champion=champion, champion_version="old",
                  metrics=metrics, champion_metrics=evaluate(y, champion),
                  gate_reason="better: because", importance={"a": 2.0, "b": 1.0})
    images = re.findall(r'<img alt="(\w+)" src="data:image/png;base64,([^"]+)"', html)
    assert [name for name, _ in images] == list(PLOTS)
    for _, data64 in images:
        assert base64.b64decode(data64).startswith(b"\x89PNG\r\n\x1a\n")
    assert "better: because" in html and "old" in html
    assert f"{test['roc_auc']:.4f}" in html


def test_the_documented_config_example_loads(tmp_path):
    from devenv.paths import REPO_ROOT

    doc = (REPO_ROOT / "docs" / "trainer.md").read_text()
    example = re.search(r"```toml\n(.*?)```", doc, re.S).group(1)  # type: ignore[union-attr]
    (tmp_path / "trainer.toml").write_text(example)
    cfg = load_config(tmp_path / "trainer.toml")
    assert cfg.monotone["metric_overdraft_count90"] == 1 and cfg.params == {"num_leaves": 15}
    assert [b["band"] for b in cfg.risk_bands] == ["low", "high"]
    with pytest.raises(ConfigError, match="bad risk_bands"):
        load_config(None, risk_bands=[{"band": "A", "max_probability": 0.5}])
