"""Done-when of the trainer: `python -m trainer --deploy` promotes a better model, and an
already-open application session scores with it from its very next statement."""

from __future__ import annotations

import subprocess
import sys

import lightgbm
import pytest

from devenv.paths import REPO_ROOT
from tests.fix_db import APP_USER, TRAINER_USER, install
from tests.fix_trainer import (
    CUTOFF,
    WEAK_FEATURE,
    latest_vector,
    load,
    small_history,
    weak_champion_artifact,
)


def test_trainer_deploy_promotes_and_open_session_scores_with_new_model(db, tmp_path):
    history = small_history()
    weak_booster, weak = weak_champion_artifact()
    with db.connect() as conn:
        load(conn, history)
        weak_id = install(conn, weak)
    user = "user-17"
    app = db.connect(APP_USER)  # opened before the trainer runs, kept open throughout
    try:
        before = app.execute("SELECT blink_score(%s)", [user]).fetchone()[0]
        assert before == pytest.approx(
            weak_booster.predict(latest_vector(history, user, [WEAK_FEATURE]))[0], abs=1e-9)

        proc = subprocess.run(
            [sys.executable, "-m", "trainer", "--deploy", "--dsn", db.dsn(TRAINER_USER),
             "--cutoff", CUTOFF.isoformat(), "--output-dir", str(tmp_path), "--max-rounds",
             "150"],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "out-of-time ROC AUC" in proc.stdout
        assert "promoted: better" in proc.stdout, proc.stdout
        assert "test period: issued" in proc.stderr  # the log names the windows used

        # The very next statement of the open session uses the new champion.
        after = app.execute("SELECT blink_score(%s)", [user]).fetchone()[0]
        new_id, = app.execute("SELECT model_id FROM blink_champion()").fetchone()
    finally:
        app.close()
    assert new_id != weak_id
    with db.connect() as conn:
        text, names, categories, auc = conn.execute(
            "SELECT model_text, feature_names, feature_categories, (metrics->>'roc_auc')::float8 "
            "FROM blink.blink_models WHERE id = %s", [new_id]).fetchone()
    assert {"housing", "employment_type", "direct_deposit"} <= set(categories)
    expected = lightgbm.Booster(model_str=text).predict(
        latest_vector(history, user, names, categories))[0]
    assert after == pytest.approx(expected, abs=1e-9)
    assert after != pytest.approx(before, abs=1e-6)
    assert f"{auc:.4f}" in proc.stdout
