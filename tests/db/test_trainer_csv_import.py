"""Bring your own data: a CSV imported with `python -m trainer import-csv` comes back as the
trainer's training set, row for row."""

from __future__ import annotations

import csv
import math
from datetime import timedelta

import numpy as np

from tests.fix_db import TRAINER_USER
from tests.fix_trainer import CUTOFF, START, counts
from trainer import __main__ as cli
from trainer import synthetic
from trainer.config import TrainerConfig
from trainer.pipeline import load_dataset


def write_csv(path, n=400, seed=8):
    pop = synthetic.generate(n, seed=seed)
    rows = []
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["customer", "applied_at", "bad", *synthetic.FEATURES])
        for i, (user, values, bad) in enumerate(zip(pop.user_ids, pop.features, pop.defaulted,
                                                   strict=True)):
            at = START + timedelta(hours=7 * i)
            writer.writerow([user, at.isoformat(), int(bad),
                             *["" if math.isnan(v) else repr(float(v)) for v in values]])
            rows.append((user, at, values, int(bad)))
    return rows


def test_csv_import_round_trip(db, tmp_path):
    path = tmp_path / "history.csv"
    rows = write_csv(path)
    code = cli.main(["import-csv", str(path), "--dsn", db.dsn(), "--user-col", "customer",
                     "--time-col", "applied_at", "--label-col", "bad", "--quiet"])
    assert code == 0
    config = TrainerConfig(grace_days=0, min_positives=5)
    with db.connect(TRAINER_USER) as trainer:
        ds = load_dataset(trainer, config, CUTOFF)
    assert ds.excluded == {"not_matured": 0, "no_prior_snapshot": 0}
    assert ds.feature_names == sorted(synthetic.FEATURES)
    got = {(r.user_id, r.issued_at): (ds.X[i], ds.y[i]) for i, r in enumerate(ds.rows)}
    assert len(got) == len(rows)
    order = [synthetic.FEATURES.index(n) for n in ds.feature_names]
    for user, at, values, bad in rows:
        x, y = got[(user, at)]
        np.testing.assert_array_equal(x, values[order])  # NaN where the cell was empty
        assert y == bad
    assert np.isnan(ds.X).any()


def test_bad_csv_writes_nothing(db, tmp_path, caplog):
    path = tmp_path / "history.csv"
    write_csv(path, n=50)
    lines = path.read_text().splitlines()
    lines[40] = lines[40].rsplit(",", 1)[0] + ",n/a"
    path.write_text("\n".join(lines) + "\n")
    with db.connect() as conn:
        start = counts(conn)
    code = cli.main(["import-csv", str(path), "--dsn", db.dsn(), "--user-col", "customer",
                     "--time-col", "applied_at", "--label-col", "bad", "--quiet"])
    assert code == 3
    assert ("column metric_volatility90 mixes numbers (line 2: " in caplog.text
            and "and text (line 41: 'n/a')" in caplog.text)
    with db.connect() as conn:
        assert counts(conn) == start
