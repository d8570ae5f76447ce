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
