"""Bring your own data: a CSV of features and outcomes into blink's tables.

One CSV row is one advance: a user id, the time it was issued, its label, and the feature
values the lender knew at that time. Each row becomes a feature snapshot taken just before
the advance (issued_at - ``snapshot_lead``) and an outcome row, so the trainer's
point-in-time join pairs them exactly.

Each feature column's type comes from the whole file: numbers (every non-empty cell is a
number), booleans (every cell true/false) or text (categories). A column mixing numbers with
text is refused, naming a line of each, unless it is listed as categorical (then every value
is text). An empty cell is a missing value.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from trainer.errors import TrainingDataError

LABELS = {"1": "defaulted", "true": "defaulted", "yes": "defaulted", "defaulted": "defaulted",
          "delinquent": "delinquent", "0": "repaid", "false": "repaid", "no": "repaid",
          "repaid": "repaid"}


@dataclass
class CsvColumns:
    """Which CSV columns hold what; every other column is a feature unless ``features``."""

    user: str = "user_id"
    time: str = "issued_at"
    label: str = "label"
    due: str | None = None  # default: the issue time
    observed: str | None = None  # default: the due time
    features: list[str] | None = None
    categorical: list[str] | None = None  # columns read as text even when they look numeric


def parse_time(text: str, where: str) -> datetime:
    """ISO 8601 date or timestamp; without a time zone it is UTC."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise TrainingDataError(f"{where}: {text!r} is not an ISO 8601 time") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def parse_number(text: str, where: str) -> float | None:
    """A finite number, or None for an empty cell (a missing value)."""
    if text.strip() == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise TrainingDataError(f"{where}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise TrainingDataError(f"{where}: {text!r} is not a finite number")
    return value


BOOLEANS = {"true": True, "false": False}


def column_kind(name: str, cells: list[str], path: str | Path, first_line: int = 2) -> str:
    """"number", "boolean" or "text": the type every non-empty cell of the column shares.

    Raises TrainingDataError for a column mixing numbers with text or booleans, naming a
    line of each (the usual cause is a placeholder such as "n/a" in a numeric column).
    """
    seen: dict[str, int] = {}  # kind -> first line
    for line, cell in enumerate(cells, start=first_line):
        text = cell.strip()
        if text == "":
            continue
        if text.lower() in BOOLEANS:
            kind = "boolean"
        else:
            try:
                float(text)
                kind = "number"
            except ValueError:
                kind = "text"
        seen.setdefault(kind, line)
    if "number" in seen and len(seen) > 1:
        other = min((k for k in seen if k != "number"), key=seen.__getitem__)
        raise TrainingDataError(
            f"{path} column {name} mixes numbers (line {seen['number']}: "
            f"{cells[seen['number'] - first_line].strip()!r}) and {other} (line {seen[other]}: "
            f"{cells[seen[other] - first_line].strip()!r}); fix the column, or pass "
            f"--categorical {name} to read every value as a category")
    if seen.keys() == {"boolean"}:
        return "boolean"
    return "number" if "number" in seen else "text"


def read_csv(path: str | Path, columns: CsvColumns, snapshot_lead: timedelta
             ) -> tuple[list[tuple[str, datetime, dict[str, Any]]], list[dict[str, Any]]]:
    """Parse and check the whole file; returns (snapshots, outcomes) ready to write.

    Raises
    ------
    TrainingDataError
        A missing column, an empty user id, a bad time or label, a column mixing numbers
        and text, or a non-finite number, naming the line and column.
    """
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        required = [c for c in (columns.user, columns.time, columns.label, columns.due,
                                columns.observed) if c is not None]
        missing = [c for c in required + (columns.features or []) + (columns.categorical or [])
                   if c not in header]
        if missing:
            raise TrainingDataError(f"{path}: no column(s) {', '.join(missing)} "
                                    f"(the header has {', '.join(header)})")
        features = columns.features or [c for c in header if c not in required]
        if not features:
            raise TrainingDataError(f"{path}: no feature columns")
        records = list(reader)
    forced = set(columns.categorical or [])
    kinds = {name: "text" if name in forced else
             column_kind(name, [r[name] or "" for r in records], path) for name in features}
    snapshots, outcomes = [], []
    for line, record in enumerate(records, start=2):
        where = f"{path} line {line}"
        user = (record[columns.user] or "").strip()
        if not user:
            raise TrainingDataError(f"{where}: empty {columns.user}")
        issued = parse_time(record[columns.time] or "", f"{where} column {columns.time}")
        label = (record[columns.label] or "").strip().lower()
        if label not in LABELS:
            raise TrainingDataError(
                f"{where} column {columns.label}: {record[columns.label]!r} is not a label "
                "(use 1/0, true/false, yes/no or repaid/defaulted/delinquent)")
        due = (parse_time(record[columns.due] or "", f"{where} column {columns.due}")
               if columns.due else issued)
        observed = (parse_time(record[columns.observed] or "",
                               f"{where} column {columns.observed}")
                    if columns.observed else due)
        doc: dict[str, Any] = {}
        for name in features:
            cell = (record[name] or "").strip()
            if cell == "":
                continue  # missing
            if kinds[name] == "number":
                doc[name] = parse_number(cell, f"{where} column {name}")
            elif kinds[name] == "boolean":
                doc[name] = BOOLEANS[cell.lower()]
            else:
                doc[name] = cell
        snapshots.append((user, issued - snapshot_lead, doc))
        outcomes.append({"user_id": user, "issued_at": issued, "due_at": due,
                         "outcome": LABELS[label], "observed_at": observed})
    if not outcomes:
        raise TrainingDataError(f"{path}: no data rows")
    return snapshots, outcomes


def import_csv(conn: Any, path: str | Path, columns: CsvColumns,
               snapshot_lead: timedelta = timedelta(seconds=1)) -> tuple[int, int]:
    """Check the whole CSV, then write it in one transaction; returns (snapshots, outcomes)."""
    from trainer.ingest import write_outcomes, write_snapshots

    snapshots, outcomes = read_csv(path, columns, snapshot_lead)
    with conn.transaction():
        return write_snapshots(conn, snapshots), write_outcomes(conn, outcomes)
