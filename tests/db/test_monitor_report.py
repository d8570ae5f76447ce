"""The monitoring report (`blink monitor-report`) and the Grafana dashboard, against a real
server: monitoring's rows are inserted as the owner (a run needs the whole pipeline), then
the report is drawn and every dashboard query executed as the trainer's role."""

from __future__ import annotations

import base64
import html
import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import numpy as np
import pytest
from psycopg.types.json import Jsonb

from devenv.paths import REPO_ROOT
from pyfuncs.decision import DecisionPolicy
from pyfuncs.features import FeatureSpec
from pyfuncs.monitoring.reference import build_reference
from tests.fix_db import TRAINER_USER, install
from trainer import cli, monitor_report, synthetic
from trainer.errors import ConfigError

PNG = b"\x89PNG\r\n\x1a\n"
DASHBOARD = REPO_ROOT / "dashboards" / "grafana-blink-monitoring.json"
SECTIONS = ["Status", "Feature stability", "Score distribution", "Estimated and realised AUC",
            "Calibration", "Approval rate", "Champion vs challenger", "Timeline"]
FIGURES = ["feature_psi", "score_psi", "score_reference", "band_mix", "auc", "calibration",
           "approval_rate", "challenger"]
DRIFTING = "metric_debt_load30"
ALERT = f"feature drift: {DRIFTING} & the score moved (PSI 0.4100 > critical 0.0800)"
WEEK = timedelta(days=7)
BANDS = ["A", "B", "C", "D", "E"]


@pytest.fixture(scope="module")
def monitored_artifacts(model_a):
    """model_a with a real monitoring reference (built from its own population), as a
    champion and as a challenger."""
    spec = FeatureSpec(list(synthetic.FEATURES))
    X = model_a.population.features
    p = model_a.predict(X)
    bands = DecisionPolicy.from_model(0.2, model_a.artifact.risk_bands).bands
    reference = build_reference(spec, X, p, decision_threshold=0.2, bands=bands,
                                window={"from": "2026-01-01", "to": "2026-02-01"},
                                outcomes=(model_a.population.defaulted.astype(float), p))
    champion = replace(model_a.artifact, version="mon-champion", monitoring_reference=reference)
    challenger = replace(champion, version="mon-challenger")
    return champion, challenger


class Recorder:
    """Inserts monitoring's rows as blink_monitor_run would (the owner may INSERT)."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.run_id = conn.execute(
            "INSERT INTO blink.monitoring_runs (started_at, as_of, mode, status, summary) "
            "VALUES (now(), now(), 'alert', 'done', '{}') RETURNING id").fetchone()[0]
        self.rows: list[dict[str, Any]] = []

    def metric(self, model_id: int, kind: str, start: datetime, metric: str, value: float | None,
               rows: int = 800, status: str = "ok", **columns: Any) -> None:
        row = {"run_id": self.run_id, "model_id": model_id, "cohort_kind": kind,
               "cohort_start": start, "cohort_end": start + WEEK, "metric": metric,
               "value": value, "rows": rows, "status": status, "feature": None,
               "compared_model_id": None, "reference": None, "sampling_error": None,
               "lower_bound": None, "upper_bound": None, "critical_value": None,
               "p_value": None, "detail": Jsonb({})}
        row.update(columns)
        self.rows.append(row)

    def event(self, model_id: int | None, severity: str, rule: str, message: str) -> None:
        self.conn.execute(
            "INSERT INTO blink.monitoring_events (run_id, model_id, severity, rule, message) "
            "VALUES (%s, %s, %s, %s, %s)", [self.run_id, model_id, severity, rule, message])

    def flush(self) -> None:
        columns = list(self.rows[0])
        with self.conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO blink.monitoring_metrics ({', '.join(columns)}) "
                f"VALUES ({', '.join(f'%({c})s' for c in columns)})", self.rows)
        self.rows = []


def record_history(conn: Any, champion: int, challenger: int) -> list[datetime]:
    """Six weekly inputs cohorts and three matured outcomes cohorts of the champion (drift
    in the last inputs cohort), a challenger compared with it, and an alert."""
    rec = Recorder(conn)
    first = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - 8 * WEEK
    weeks = [first + k * WEEK for k in range(6)]
    for k, start in enumerate(weeks):
        drift = k == len(weeks) - 1
        rec.metric(champion, "inputs", start, "rows", 800.0, lower_bound=300.0)
        for j, name in enumerate(synthetic.FEATURES):
            breach = drift and name == DRIFTING
            rec.metric(champion, "inputs", start, "feature_psi",
                       0.41 if breach else 0.01 + 0.002 * j + 0.001 * k, feature=name,
                       critical_value=0.08, status="breach" if breach else "ok")
            rec.metric(champion, "inputs", start, "feature_missing_rate", 0.05, feature=name,
                       reference=0.05, sampling_error=0.01)
        rec.metric(champion, "inputs", start, "score_psi", 0.12 if drift else 0.02,
                   critical_value=0.06, status="breach" if drift else "ok")
        rec.metric(champion, "inputs", start, "approval_rate", 0.71 - 0.01 * k, reference=0.72,
                   sampling_error=0.015)
        rec.metric(champion, "inputs", start, "band_mix", 0.01, critical_value=0.05,
                   detail=Jsonb({"bands": BANDS, "shares": [0.3, 0.25, 0.2, 0.15, 0.1]}))
        rec.metric(champion, "inputs", start, "estimated_auc", 0.74 - 0.002 * k, reference=0.75,
                   sampling_error=0.01, lower_bound=0.72)
        rec.metric(challenger, "inputs", start, "approval_overlap", 0.93, rows=560,
                   compared_model_id=champion)
    for k, start in enumerate(weeks[:3]):
        rec.metric(champion, "outcomes", start, "loans", 600.0, lower_bound=400.0)
        rec.metric(champion, "outcomes", start, "realised_auc", 0.73 + 0.01 * k, rows=600,
                   reference=0.75, sampling_error=0.02, lower_bound=0.69)
        rec.metric(champion, "outcomes", start, "calibration_error", 0.012, rows=600,
                   upper_bound=0.04)
        rec.metric(champion, "outcomes", start, "default_rate", 0.11, rows=600, reference=0.1,
                   sampling_error=0.012)
        for b, band in enumerate(BANDS):
            rec.metric(champion, "outcomes", start, "band_default_rate", 0.03 + 0.08 * b,
                       rows=120, feature=band, reference=0.03 + 0.07 * b, sampling_error=0.02)
        rec.metric(challenger, "outcomes", start, "auc_gain", 0.01, rows=600,
                   compared_model_id=champion, reference=0.005, sampling_error=0.004,
                   lower_bound=0.0034)
    rec.metric(champion, "outcomes", weeks[3], "rows", 90.0, rows=90, lower_bound=400.0,
               status="insufficient_data")
    rec.flush()
    rec.event(champion, "alert", "feature_drift", ALERT)
    rec.event(None, "info", "run", "monitoring run: nothing to do")
    return weeks


@pytest.fixture
def monitored_db(db, monitored_artifacts):
    champion_artifact, challenger_artifact = monitored_artifacts
    with db.connect() as conn:
        champion = install(conn, champion_artifact)
        challenger = install(conn, challenger_artifact, promote=False)
        conn.execute("SELECT blink_shadow_add(%s, 'challenger under test')", [challenger])
        weeks = record_history(conn, champion, challenger)
    db.champion, db.challenger, db.weeks = champion, challenger, weeks
    return db


class Balanced(HTMLParser):
    """Every opened element is closed, in order (void elements aside)."""

    VOID = {"meta", "img", "br", "hr", "input", "link"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:  # <img .../> reports an end too
            return
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)


def check_html(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>")
    parser = Balanced()
    parser.feed(page)
    parser.close()
    assert parser.errors == [] and parser.stack == [], (parser.errors, parser.stack)


def images(page: str) -> dict[str, bytes]:
    found = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,([^"]+)"/>', page)
    return {name: base64.b64decode(data) for name, data in found}


# --- the report ----------------------------------------------------------------------------

def test_report_draws_every_section_from_the_recorded_figures(monitored_db):
    with monitored_db.connect(TRAINER_USER) as conn:  # what blink_trainer may read suffices
        page = monitor_report.render(conn)
    check_html(page)
    assert "blink monitoring: model mon-champion" in page
    for section in SECTIONS:
        assert f"<h2>{section}</h2>" in page, section
    drawn = images(page)
    assert sorted(drawn) == sorted(FIGURES)
    assert page.count("<img ") == len(FIGURES)
    for name, png in drawn.items():
        assert png.startswith(PNG) and len(png) > 2000, name
    for name in synthetic.FEATURES:
        assert f"<td>{name}</td>" in page, name
    # The latest inputs cohort's table holds the recorded figures, and the status its breach.
    assert f"<td>{DRIFTING}</td><td>0.4100</td><td>0.0800</td><td>breach</td>" in page
    assert re.search(r"<td>drifting features</td><td>" + DRIFTING + "</td>", page)
    assert "6 inputs cohorts (0 with too few users to measure) and 4 outcomes cohorts " \
           "(1 with too few matured loans)" in page
    assert "<td>mon-challenger</td>" in page and "<td>shadow</td>" in page
    # Events newest first, escaped; the promotion of the champion is on the timeline too.
    assert html.escape(ALERT) in page and ALERT not in page
    timeline = page[page.index("<h2>Timeline</h2>"):]
    assert timeline.index("monitoring run: nothing to do") < timeline.index(
        html.escape(ALERT)) < timeline.index("<td>deployment</td>")
    assert "all 3" in timeline
    assert "Selective labels: outcomes exist only for loans the champion approved" in page
    for sentence in (monitor_report.NO_INPUTS, monitor_report.NO_OUTCOMES,
                     monitor_report.NO_CHALLENGER, monitor_report.NO_EVENTS):
        assert sentence not in page


def test_report_of_the_challenger_shows_its_own_comparison(monitored_db):
    with monitored_db.connect() as conn:
        page = monitor_report.render(conn, model_id=monitored_db.challenger)
    check_html(page)
    assert "blink monitoring: model mon-challenger" in page
    assert "challenger" in images(page)  # its AUC gain over the champion
    assert monitor_report.NO_INPUTS in page  # it has no inputs figures of its own
    with monitored_db.connect() as conn, pytest.raises(ConfigError, match="no model with id"):
        monitor_report.render(conn, model_id=monitored_db.challenger + 1000)


def test_report_without_monitoring_data_says_what_is_missing(db, monitored_artifacts, model_a):
    with db.connect() as conn:
        page = monitor_report.render(conn)  # no champion at all
        check_html(page)
        assert "no champion model yet" in page and "no live model yet" in page
        assert monitor_report.NO_EVENTS in page and "<img" not in page

        install(conn, monitored_artifacts[0])
        page = monitor_report.render(conn)
    check_html(page)
    for section in SECTIONS:
        assert f"<h2>{section}</h2>" in page, section
    for sentence in (monitor_report.NO_INPUTS, monitor_report.NO_OUTCOMES,
                     monitor_report.NO_CHALLENGER):
        assert sentence in page, sentence
    assert "no matured outcomes cohort yet" in page
    # Only the reference (frozen with the model) can be drawn; the deployment is an event.
    assert sorted(images(page)) == ["score_reference"]
    assert "<td>deployment</td>" in page and "<td>champion</td>" in page

    with db.connect() as conn:
        bare = install(conn, replace(model_a.artifact, version="no-reference"), promote=False)
        page = monitor_report.render(conn, model_id=bare)
    check_html(page)
    assert "the model has no monitoring reference" in page and "<img" not in page
    assert f"Model {bare} is not live" in page


def test_write_and_the_cli_write_the_page(monitored_db, tmp_path, monkeypatch, capsys):
    with monitored_db.connect() as conn:
        path = monitor_report.write(conn, tmp_path / "w.html")
    assert path == tmp_path / "w.html" and "<h2>Timeline</h2>" in path.read_text()

    monkeypatch.chdir(tmp_path)
    dsn = monitored_db.dsn(TRAINER_USER)
    assert cli.main(["monitor-report", "--dsn", dsn, "-q"]) == 0
    assert capsys.readouterr().out == "monitoring-report.html\n"
    page = (tmp_path / "monitoring-report.html").read_text()
    assert "model mon-champion" in page and len(images(page)) == len(FIGURES)
    for model in ("mon-challenger", str(monitored_db.challenger)):
        out = tmp_path / f"{model}.html"
        assert cli.main(["monitor-report", "--model", model, "-o", str(out), "--dsn", dsn,
                         "-q"]) == 0
        assert capsys.readouterr().out == f"{out}\n"
        assert "model mon-challenger" in out.read_text()
    assert cli.main(["monitor-report", "--model", "nope", "--dsn", dsn, "-q"]) == 2


# --- the Grafana dashboard -----------------------------------------------------------------

def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def queries(board: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(where, format, rawSql) of every panel target, annotation and variable."""
    out = [(f"panel {p['title']!r} {t['refId']}", t["format"], t["rawSql"])
           for p in board["panels"] for t in p["targets"]]
    out += [(f"annotation {a['name']!r}", a["target"]["format"], a["target"]["rawSql"])
            for a in board["annotations"]["list"] if "target" in a and "rawSql" in a["target"]]
    out += [(f"variable {v['name']}", "table", v["query"])
            for v in board["templating"]["list"] if v["type"] == "query"]
    return out


def substitute(sql: str, model_id: int) -> str:
    """Grafana's macros and variables as Grafana would expand them."""
    sql = re.sub(r"\$__timeFilter\(([^)]*)\)",
                 r"\1 BETWEEN now() - interval '1 year' AND now()", sql)
    sql = sql.replace("${model}", str(model_id)).replace("$model", str(model_id))
    assert "$" not in sql, sql
    return sql


def test_dashboard_structure():
    board = dashboard()
    assert board["schemaVersion"] >= 36 and board["uid"] and board["title"]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["DS"]["type"] == "datasource"
    assert variables["DS"]["query"] == "grafana-postgresql-datasource"
    model = variables["model"]
    assert model["type"] == "query" and not model.get("multi") and not model.get("includeAll")
    assert model["datasource"] == {"type": "grafana-postgresql-datasource", "uid": "${DS}"}
    assert "FROM blink.monitoring_status" in model["query"]

    panels = board["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    sql_of = {p["title"]: " ".join(t["rawSql"] for t in p["targets"]) for p in panels}
    for p in panels:
        assert p["type"] in ("timeseries", "table") and p["targets"], p["title"]
        assert set(p["gridPos"]) == {"h", "w", "x", "y"}
        assert p["gridPos"]["x"] + p["gridPos"]["w"] <= 24
        for t in [p, *p["targets"]]:
            assert t["datasource"] == {"type": "grafana-postgresql-datasource", "uid": "${DS}"}
        for t in p["targets"]:
            assert t["rawQuery"] is True and t["editorMode"] == "code"
            assert t["format"] == ("time_series" if p["type"] == "timeseries" else "table")
            if p["type"] == "timeseries":
                assert '$__timeFilter(t."time")' in t["rawSql"], p["title"]
                assert "FROM blink.monitoring_timeseries" in t["rawSql"]
                assert re.search(r"model_id = \$model\b", t["rawSql"]), p["title"]
    wanted = {"feature_psi": "timeseries", "score_psi": "timeseries",
              "estimated_auc": "timeseries", "realised_auc": "timeseries",
              "approval_rate": "timeseries", "default_rate": "timeseries",
              "blink.monitoring_status": "table", "blink.monitoring_timeline": "table"}
    for needle, kind in wanted.items():
        assert any(needle in sql and p["type"] == kind
                   for p in panels for sql in [sql_of[p["title"]]]), needle
    annotations = [a for a in board["annotations"]["list"] if "target" in a]
    assert {a["name"] for a in annotations} == {"Deployments", "Monitoring alerts and actions"}
    for a in annotations:
        assert a["datasource"]["uid"] == "${DS}" and a["enable"]
        assert "FROM blink.monitoring_timeline" in a["target"]["rawSql"]
        assert '$__timeFilter("time")' in a["target"]["rawSql"]


def test_every_dashboard_query_runs_read_only_as_the_trainer_role(monitored_db):
    board = dashboard()
    champion = monitored_db.champion
    results: dict[str, tuple[list[str], list[tuple]]] = {}
    for user in ("postgres", TRAINER_USER):
        with monitored_db.connect(user, autocommit=False) as conn:
            conn.read_only = True  # Grafana's user needs no write
            for where, fmt, sql in queries(board):
                cur = conn.execute(substitute(sql, champion))
                names = [d.name for d in cur.description]
                rows = cur.fetchall()
                results[where] = (names, rows)
                if fmt == "time_series":
                    assert names[0] == "time", where
                    assert all(isinstance(r[0], datetime) for r in rows), where
                    assert rows == sorted(rows, key=lambda r: r[0]), where
                assert rows, f"{where} returned nothing on a monitored database"
            conn.rollback()

    names, rows = results["variable model"]
    assert names[:2] == ["__value", "__text"]
    assert [r[0] for r in rows] == [champion, monitored_db.challenger]
    assert rows[0][1] == f"mon-champion (champion, id {champion})"

    psi = next(v for k, v in results.items() if k.startswith("panel 'Feature PSI") and
               k.endswith(" A"))
    assert psi[0] == ["time", "metric", "value"]  # Grafana names each series by `metric`
    assert {r[1] for r in psi[1]} == set(synthetic.FEATURES)
    assert len(psi[1]) == len(synthetic.FEATURES) * len(monitored_db.weeks)
    assert max(r[2] for r in psi[1]) == pytest.approx(0.41)

    auc = next(v for k, v in results.items() if k.startswith("panel 'Estimated vs realised"))
    realised = [r[auc[0].index("realised AUC")] for r in auc[1]]
    estimated = [r[auc[0].index("estimated AUC (CBPE)")] for r in auc[1]]
    assert len(auc[1]) == len(monitored_db.weeks)  # one row per cohort
    assert np.isfinite(np.array(estimated, dtype=float)).all()
    assert sum(r is not None for r in realised) == 3

    gains = next(v for k, v in results.items() if k.startswith("panel 'Challengers") and
                 k.endswith(" A"))
    assert {r[1] for r in gains[1]} == {f"model {monitored_db.challenger} (mon-challenger)"}

    for name in ("annotation 'Deployments'", "annotation 'Monitoring alerts and actions'"):
        assert results[name][0][:2] == ["time", "text"]
    assert any(ALERT in r[1] for r in results["annotation 'Monitoring alerts and actions'"][1])
    deployments = results["annotation 'Deployments'"][1]
    assert [r[1] for r in deployments] == ["deployment promote: test"]


def test_dashboard_queries_run_on_a_database_without_monitoring_data(db, monitored_artifacts):
    with db.connect() as conn:
        champion = install(conn, monitored_artifacts[0])
    with db.connect(TRAINER_USER, autocommit=False) as conn:
        conn.read_only = True
        for where, _, sql in queries(dashboard()):
            rows = conn.execute(substitute(sql, champion)).fetchall()
            if where == "variable model":
                assert [r[0] for r in rows] == [champion]
        conn.rollback()
