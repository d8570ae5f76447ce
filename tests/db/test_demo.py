"""`make demo` runs the real loop: history, trainer, promotion, scoring, rescoring (small)."""

from __future__ import annotations

import functools

from devenv import demo
from devenv.cluster import with_database
from trainer import cli

SMALL = demo.DemoSize(users=500, weeks=14, max_rounds=80, show=3)


def test_demo_runs_the_whole_loop_and_a_second_run_reuses_it(db, tmp_path):
    dsn = functools.partial(with_database, db.cluster_url, db.name)
    summary = demo.run_demo(dsn, SMALL, tmp_path)
    assert summary.loaded is not None and summary.loaded[1] > 500  # advances with outcomes
    assert summary.trained_now and summary.decision == "promoted"
    assert 0.55 < summary.out_of_time_auc < 1 and summary.test_rows > 100
    assert (tmp_path / summary.version / "report.html").exists()
    assert len(summary.users) == 3
    for user in summary.users:
        assert 0 < user["probability"] < 1 and user["decision"] in ("approved", "declined")
        code, text, feature, _ = user["reason"]
        assert code and text and feature
    assert summary.rescore["scored"] > 450 and summary.rescore["quarantined"] == 0
    text = demo.render(summary)
    assert "out-of-time ROC AUC" in text and "make train ARGS=--deploy" in text
    with db.connect() as conn:
        # the synthetic data has categorical features, and the model uses them
        categories = conn.execute("SELECT feature_categories FROM blink.blink_models WHERE "
                                  "id = %s", [summary.model_id]).fetchone()[0]
        assert {"housing", "employment_type", "direct_deposit"} <= set(categories)
        assert conn.execute("SELECT count(*) FROM blink.reason_codes WHERE category IS NOT "
                            "NULL").fetchone()[0] >= 3

    again = demo.run_demo(dsn, SMALL, tmp_path)
    assert again.loaded is None and not again.trained_now and again.model_id == summary.model_id

    # what the README suggests next works right after: retrain against the same data
    code = cli.main(["train", "--deploy", "--dsn", dsn(), "--output-dir", str(tmp_path),
                     "--max-rounds", "80", "--quiet"])
    assert code == 0
