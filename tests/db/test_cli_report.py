"""`blink report` against a real server, as the blink_trainer role: the stored HTML report, a
user's SHAP waterfall from their latest snapshot (with a categorical feature), and the errors."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pyfuncs.features import FeatureSpec
from tests.fix_db import APP_USER, TRAINER_USER, insert_snapshots, install
from trainer import cli, synthetic
from trainer.artifacts import build_artifact
from trainer.training import fit_booster

PNG = b"\x89PNG\r\n\x1a\n"
EMPLOYMENT = ["salaried", "self-employed", "student"]
REPORT = "<!DOCTYPE html><html><body>the report of cli-cat</body></html>"


@pytest.fixture(scope="module")
def categorical_model():
    """A real model over the synthetic features and a categorical one, with a report."""
    pop = synthetic.generate(800, seed=31)
    rng = np.random.default_rng(31)
    codes = rng.integers(0, 3, len(pop.user_ids)).astype(float)
    codes[::17] = np.nan  # some users without the feature
    p = np.clip(pop.default_probability + 0.25 * (codes == 2), 0, 1)
    y = (rng.random(len(p)) < p).astype(int)
    spec = FeatureSpec([*synthetic.FEATURES, "employment"], {"employment": EMPLOYMENT})
    booster = fit_booster(np.column_stack([pop.features, codes]), y, spec, num_boost_round=40,
                          seed=3)
    artifact = build_artifact(booster, "cli-cat", decision_threshold=0.2)
    artifact.report_html = REPORT
    docs = pop.documents()
    for doc, code in zip(docs, codes, strict=True):
        if code == code:
            doc["employment"] = EMPLOYMENT[int(code)]
    docs[1]["employment"] = "retired"  # a category the model never saw: missing to it
    return pop.user_ids, docs, artifact


@pytest.fixture
def champion_db(db, categorical_model):
    users, docs, artifact = categorical_model
    with db.connect() as conn:
        insert_snapshots(conn, users, docs)
        install(conn, artifact)
    return db


def test_report_writes_the_champions_stored_report(champion_db, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    dsn = champion_db.dsn(TRAINER_USER)
    assert cli.main(["report", "--dsn", dsn, "-q"]) == 0
    assert capsys.readouterr().out == "report-cli-cat.html\n"
    assert (tmp_path / "report-cli-cat.html").read_text() == REPORT
    with champion_db.connect() as conn:
        model_id = conn.execute("SELECT model_id FROM blink.champion()").fetchone()[0]
    # By id or by version, to a file of one's choice.
    for model in (str(model_id), "cli-cat"):
        out = tmp_path / f"by-{model}.html"
        assert cli.main(["report", model, "-o", str(out), "--dsn", dsn, "-q"]) == 0
        assert out.read_text() == REPORT


def test_report_user_draws_the_waterfall_of_what_the_server_scores(champion_db, tmp_path):
    dsn = champion_db.dsn(TRAINER_USER)
    out = tmp_path / "why.png"
    assert cli.main(["report", "cli-cat", "--user", "user-2", "-o", str(out), "--dsn", dsn,
                     "-q"]) == 0
    assert out.read_bytes().startswith(PNG)
    # The row the picture explains is the one blink_score scores: same probability, for a
    # user with a category, one with an unseen category and one without the feature.
    with champion_db.connect(TRAINER_USER) as trainer, champion_db.connect(APP_USER) as app:
        model_id = trainer.execute("SELECT model_id FROM blink.champion()").fetchone()[0]
        for user in ("user-2", "user-1", "user-0"):
            png, shown = cli.explain_png(trainer, model_id, "cli-cat", user)
            score = app.execute("SELECT blink_score(%s)", [user]).fetchone()[0]
            assert png.startswith(PNG)
            assert shown["probability"] == pytest.approx(score, abs=1e-9), user


def test_blink_console_script_report_user_default_file_name(champion_db, tmp_path):
    script = shutil.which("blink", path=str(Path(sys.executable).parent))
    assert script, "no blink script next to the venv's python: make venv"
    proc = subprocess.run([script, "report", "--user", "user-5", "--dsn",
                           champion_db.dsn(TRAINER_USER)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout == "explain-user-5-cli-cat.png\n"
    assert (tmp_path / "explain-user-5-cli-cat.png").read_bytes().startswith(PNG)
    assert "probability of default" in proc.stderr  # the log says what the picture shows


def test_report_errors_name_what_is_missing(db, model_a, tmp_path, caplog):
    dsn = db.dsn(TRAINER_USER)
    out = ["-o", str(tmp_path / "out"), "--dsn", dsn, "-q"]
    assert cli.main(["report", *out]) == 4  # no champion yet
    assert "no champion model: pass MODEL" in caplog.messages[-1]
    with db.connect() as conn:
        model_id = install(conn, model_a.artifact, promote=False)  # inserted without a report
        insert_snapshots(conn, ["bad"], [{"metric_median_paycheck": "lots"}])
    assert cli.main(["report", "test-a", *out]) == 2
    assert caplog.messages[-1] == f"model {model_id} (test-a) has no stored report " \
                                  "(it was not inserted by the trainer)"
    for model in ("nope", str(model_id + 1000)):
        assert cli.main(["report", model, *out]) == 2
        assert caplog.messages[-1] == f"no model with version or id {model!r}"
    assert cli.main(["report", str(model_id), "--user", "ghost", *out]) == 2
    assert caplog.messages[-1].startswith("no feature snapshot for user 'ghost'")
    assert cli.main(["report", str(model_id), "--user", "bad", *out]) == 3
    assert 'feature "metric_median_paycheck"' in caplog.messages[-1]
    assert not (tmp_path / "out").exists()
