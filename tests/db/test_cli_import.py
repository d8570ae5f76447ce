"""`blink import-csv --categorical`: columns that look numeric are stored as categories."""

from __future__ import annotations

from trainer import cli


def test_import_csv_categorical_keeps_numeric_looking_codes_as_text(db, tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("user_id,issued_at,label,metric_income,branch\n"
                    "u1,2026-01-05T10:00:00,0,2400,01\n"
                    "u2,2026-01-06T10:00:00,1,1800.5,10\n"
                    "u3,2026-01-07T10:00:00,0,,\n")
    args = ["import-csv", str(path), "--dsn", db.dsn(), "-q"]
    assert cli.main([*args, "--categorical", "branch"]) == 0
    with db.connect() as conn:
        docs = dict(conn.execute("SELECT user_id, features FROM blink.feature_store_snapshots"
                                 " ORDER BY user_id").fetchall())
    assert docs["u1"]["branch"] == "01" and docs["u2"]["branch"] == "10"
    assert docs["u1"]["metric_income"] == 2400 and docs["u2"]["metric_income"] == 1800.5
    assert docs["u3"].get("branch") is None and docs["u3"].get("metric_income") is None
    # Without the option the same column is numbers: 01 and 1 would be one branch.
    with db.connect() as conn:
        conn.execute("TRUNCATE blink.feature_store_snapshots, blink.repayment_outcomes")
    assert cli.main(args) == 0
    with db.connect() as conn:
        branch = conn.execute("SELECT features->'branch' FROM blink.feature_store_snapshots "
                              "WHERE user_id = 'u1'").fetchone()[0]
    assert branch == 1
    # Naming a column the file lacks is a bad-data error, and nothing is written.
    assert cli.main([*args, "--categorical", "nope"]) == 3
    with db.connect() as conn:
        assert conn.execute("SELECT count(*) FROM blink.feature_store_snapshots").fetchone() == (3,)


# A credit table as lenders keep it (shaped like the public German credit data: 1,000 loans,
# 13 of 20 columns text), generated so the label depends on text and numbers alike.
TEXT_COLUMNS = {
    "checking_status": ["< 0 DM", "0 <= ... < 200 DM", ">= 200 DM", "no checking account"],
    "credit_history": ["no credits", "all paid", "existing paid", "delayed", "critical"],
    "purpose": ["car (new)", "car (used)", "furniture", "radio/tv", "appliances", "repairs",
                "education", "retraining", "business", "others"],
    "savings": ["< 100 DM", "100 <= ... < 500 DM", "500 <= ... < 1000 DM", ">= 1000 DM",
                "unknown"],
    "employment_since": ["unemployed", "< 1 year", "1 <= ... < 4 years", "4 <= ... < 7 years",
                         ">= 7 years"],
    "personal_status": ["male single", "male married", "female", "male divorced"],
    "other_debtors": ["none", "co-applicant", "guarantor"],
    "property": ["real estate", "savings agreement", "car", "unknown"],
    "other_installment_plans": ["bank", "stores", "none"],
    "housing": ["rent", "own", "for free"],
    "job": ["unskilled", "skilled", "management", "unemployed"],
    "telephone": ["none", "yes"],
    "foreign_worker": ["yes", "no"],
}


def write_credit_csv(path, n=1000, seed=3):
    import csv
    from datetime import UTC, datetime, timedelta

    import numpy as np

    rng = np.random.default_rng(seed)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    with open(path, "w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["user_id", "issued_at", "label", "duration", "credit_amount", "age",
                      *TEXT_COLUMNS])
        for i in range(n):
            text = {c: str(rng.choice(v)) for c, v in TEXT_COLUMNS.items()}
            duration, amount, age = int(rng.integers(6, 60)), int(rng.integers(250, 15000)), \
                int(rng.integers(19, 75))
            logit = (-1.2 + 1.3 * (text["checking_status"] == "< 0 DM")
                     - 1.0 * (text["checking_status"] == "no checking account")
                     + 0.8 * (text["credit_history"] == "critical") + 0.03 * (duration - 24)
                     + 0.6 * (text["housing"] == "rent") - 0.02 * (age - 35))
            bad = rng.random() < 1 / (1 + np.exp(-logit))
            out.writerow([f"applicant-{i}", (start + timedelta(hours=17 * i)).isoformat(),
                          int(bad), duration, amount, age, *text.values()])


def test_a_csv_with_text_columns_imports_and_trains_in_one_command(db, tmp_path, capsys):
    path = tmp_path / "credit.csv"
    write_credit_csv(path)
    code = cli.main(["import-csv", str(path), "--dsn", db.dsn(), "--train", "-q"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "imported 1000 outcomes" in printed and "promoted" in printed
    with db.connect() as conn:
        categories, auc = conn.execute(
            "SELECT feature_categories, (metrics->>'roc_auc')::float8 FROM blink.blink_models m"
            " JOIN blink.champion() c ON c.model_id = m.id").fetchone()
        score = conn.execute("SELECT blink_score('applicant-999')").fetchone()[0]
    assert set(categories) == set(TEXT_COLUMNS)
    assert categories["housing"] == ["for free", "own", "rent"]
    assert auc > 0.6 and 0 < score < 1
