"""Reading a user's CSV of features and outcomes, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from trainer.csv_import import CsvColumns, read_csv
from trainer.errors import TrainingDataError


def write(tmp_path, text):
    path = tmp_path / "data.csv"
    path.write_text(text)
    return path


def test_rows_become_a_snapshot_before_issue_and_an_outcome(tmp_path):
    path = write(tmp_path, "user_id,issued_at,label,income,debt\n"
                           "u1,2026-03-01T10:00:00+00:00,1,2500,\n"
                           "u2,2026-03-02,repaid,1800.5,0.3\n")
    snapshots, outcomes = read_csv(path, CsvColumns(), timedelta(seconds=1))
    issued = datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert snapshots[0] == ("u1", issued - timedelta(seconds=1), {"income": 2500.0})
    assert outcomes[0] == {"user_id": "u1", "issued_at": issued, "due_at": issued,
                           "outcome": "defaulted", "observed_at": issued}
    assert outcomes[1]["outcome"] == "repaid"
    assert outcomes[1]["issued_at"] == datetime(2026, 3, 2, tzinfo=UTC)  # naive means UTC
    assert snapshots[1][2] == {"income": 1800.5, "debt": 0.3}


@pytest.mark.parametrize("body, message", [
    ("u1,2026-03-01,1,12\nu2,2026-03-01,0,n/a\n", "column income mixes numbers \\(line 2: "
     "'12'\\) and text \\(line 3: 'n/a'\\); fix the column, or pass --categorical income"),
    ("u1,2026-03-01,1,true\nu2,2026-03-01,0,1\n", "column income mixes numbers \\(line 3"),
    ("u1,2026-03-01,maybe,1\n", "line 2 column label: 'maybe' is not a label"),
    ("u1,yesterday,1,1\n", "line 2 column issued_at: 'yesterday' is not an ISO 8601 time"),
    (",2026-03-01,1,1\n", "line 2: empty user_id"),
    ("u1,2026-03-01,1,inf\n", "'inf' is not a finite number"),
    ("", "no data rows"),
])
def test_bad_rows_are_refused_naming_line_and_column(tmp_path, body, message):
    path = write(tmp_path, "user_id,issued_at,label,income\n" + body)
    with pytest.raises(TrainingDataError, match=message):
        read_csv(path, CsvColumns(), timedelta(seconds=1))


def test_missing_column_is_named(tmp_path):
    path = write(tmp_path, "user,issued_at,label,income\nu1,2026-03-01,1,1\n")
    with pytest.raises(TrainingDataError, match="no column\\(s\\) user_id"):
        read_csv(path, CsvColumns(), timedelta(seconds=1))


def test_text_and_boolean_columns_become_categories(tmp_path):
    path = write(tmp_path, "user_id,issued_at,label,housing,owns_car,income,region\n"
                           "u1,2026-03-01,1,rent,true,2500,01\n"
                           "u2,2026-03-02,0,0 <= ... < 200 DM,FALSE,,02\n"
                           "u3,2026-03-03,0,,,1800,10\n")
    snapshots, _ = read_csv(path, CsvColumns(categorical=["region"]), timedelta(seconds=1))
    assert [s[2] for s in snapshots] == [
        {"housing": "rent", "owns_car": True, "income": 2500.0, "region": "01"},
        {"housing": "0 <= ... < 200 DM", "owns_car": False, "region": "02"},
        {"income": 1800.0, "region": "10"},  # empty cells are missing
    ]
    # without --categorical, region's cells are numbers (and "01" is 1.0)
    snapshots, _ = read_csv(path, CsvColumns(), timedelta(seconds=1))
    assert snapshots[0][2]["region"] == 1.0


def test_categorical_column_must_exist(tmp_path):
    path = write(tmp_path, "user_id,issued_at,label,income\nu1,2026-03-01,1,1\n")
    with pytest.raises(TrainingDataError, match="no column\\(s\\) zz"):
        read_csv(path, CsvColumns(categorical=["zz"]), timedelta(seconds=1))
