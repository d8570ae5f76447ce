"""blink: credit-risk models for PostgreSQL, from the command line.

Train LightGBM models on the database's own history, compare them with the champion and
promote them (train, the default command); load data (import-csv, synth); see what a model
does (report) and how it holds up in production (monitor-report). `python -m trainer` is
the same command.

exit codes: 0 done (promoted or kept); 1 unexpected error (a bug); 2 bad options, config or
arguments; 3 bad training data; 4 database error (or no champion); 5 artifact error;
6 promotion refused by blink_promote() (the model is written, the refusal recorded).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from trainer.errors import (
    ConfigError,
    DatabaseError,
    PromotionError,
    TrainerError,
    TrainingDataError,
)

log = logging.getLogger("trainer")
PROG = "blink"


def _time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _columns(text: str) -> list[str]:
    names = [c.strip() for c in text.split(",") if c.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"{text!r} names no column")
    return names


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dsn", default=None,
                        help="PostgreSQL connection string (default: $DATABASE_URL)")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings only, no progress")


def _progress(args: argparse.Namespace) -> bool:
    """Progress bars on stderr, only when it is a terminal and not --quiet."""
    return not args.quiet and sys.stderr.isatty()


def connect(dsn: str | None) -> Any:
    import psycopg

    dsn = dsn or os.environ.get("DATABASE_URL")
    if not dsn:
        raise ConfigError("no database: pass --dsn or set DATABASE_URL")
    try:
        return psycopg.connect(dsn, autocommit=True, application_name="blink-trainer")
    except psycopg.Error as exc:
        raise DatabaseError(f"cannot connect: {str(exc).strip()}") from None


# --- train ---------------------------------------------------------------------------------

def _train_arguments(train: argparse.ArgumentParser) -> None:
    mode = train.add_mutually_exclusive_group()
    mode.add_argument("--deploy", action="store_true",
                      help="promote the candidate if it beats the champion")
    mode.add_argument("--force", action="store_true", help="promote the candidate regardless")
    mode.add_argument("--dry-run", action="store_true",
                      help="train and compare, write nothing (no files, no rows)")
    train.add_argument("--config", type=Path, help="TOML config (see docs/trainer.md)")
    train.add_argument("--cutoff", type=_time, help="training cut-off (default: now)")
    train.add_argument("--grace-days", type=float, help="days after due before an outcome counts")
    train.add_argument("--seed", type=int, help="random seed (default 7)")
    train.add_argument("--max-rounds", type=int, help="boosting rounds before early stopping")
    train.add_argument("--min-auc-gain", type=float, help="ROC AUC gain needed to promote")
    train.add_argument("--output-dir", type=Path, default=Path("models"),
                       help="artifacts go to OUTPUT_DIR/<version>/ (default ./models)")
    train.add_argument("--version", help="model version label (default: time + model hash)")
    train.add_argument("--data-from", action="append", default=[], metavar="SHARD_URL",
                       help="read training data from this shard (repeat for every shard of a "
                            "sharded install); the model is written to --dsn, the model home")
    train.add_argument("--if-requested", action="store_true",
                       help="train only if monitoring asked for it (a pending retrain request);"
                            " for cron: blink train --deploy --if-requested")


def cmd_train(args: argparse.Namespace) -> int:
    from trainer.config import load_config
    from trainer.pipeline import RunOptions, run
    from trainer.promotion import PromotionFailed

    config = load_config(args.config, grace_days=args.grace_days, seed=args.seed,
                         max_rounds=args.max_rounds, min_auc_gain=args.min_auc_gain)
    options = RunOptions(cutoff=args.cutoff, deploy=args.deploy, force=args.force,
                         dry_run=args.dry_run, output_dir=args.output_dir, version=args.version,
                         progress=_progress(args), data_from=tuple(args.data_from))
    with connect(args.dsn) as conn:
        requests = pending_requests(conn) if args.if_requested else []
        if args.if_requested and not requests:
            print("no retrain request pending: nothing to do")
            return 0
        if requests:
            print(f"retrain requested by monitoring: {requests[0][1]}"
                  + (f" (and {len(requests) - 1} more)" if len(requests) > 1 else ""))
        try:
            result = run(conn, config, options)
        except PromotionFailed as exc:
            close_requests(conn, requests, f"promotion failed: {exc}", None)
            raise PromotionError(f"{exc} (recorded as review {exc.review_id})") from None
        except Exception as exc:
            close_requests(conn, requests, f"training failed: {exc}", None)
            raise
        decision = ("dry run" if result.decision is None else
                    f"{result.decision.decision}: {result.decision.reason}")
        close_requests(conn, requests, decision, result.model_id)
    test = result.metrics["test"]
    window = result.metrics["window"]["test"]
    champion = (f"champion {result.champion_id}: {result.champion_metrics['roc_auc']:.4f}"
                if result.champion_metrics else "no champion")
    print(f"candidate {result.version}: out-of-time ROC AUC {test['roc_auc']:.4f} "
          f"({champion}) on advances issued {window['from']} .. {window['to']} "
          f"({test['rows']} rows, {test['positives']} bad)")
    if result.decision is None:
        print(f"dry run, nothing written; gate: {result.gate.reason}")
    else:
        print(f"model {result.model_id} written; {result.decision.decision}: "
              f"{result.decision.reason}")
        print(f"report: {result.files['report']}")
    return 0


def pending_requests(conn: Any) -> list[tuple[int, str]]:
    """Monitoring's retrain requests no trainer has handled, oldest first: (id, reason)."""
    rows = conn.execute("SELECT id, reason FROM blink.pending_retrain_requests ORDER BY id")
    return [(int(r[0]), r[1]) for r in rows.fetchall()]


def close_requests(conn: Any, requests: list[tuple[int, str]], outcome: str,
                   model_id: int | None) -> None:
    """Record how the run answered each request (a failed run answers too, so monitoring
    may ask again instead of waiting on a request that would fail every day)."""
    for request_id, _ in requests:
        conn.execute("SELECT blink_retrain_request_done(%s, %s, %s)",
                     [request_id, outcome[:2000], model_id])



# --- import-csv ----------------------------------------------------------------------------

def _import_arguments(imp: argparse.ArgumentParser) -> None:
    imp.add_argument("csv", type=Path, help="the CSV file, one row per advance, with a header")
    imp.add_argument("--user-col", default="user_id", help="user id column (default user_id)")
    imp.add_argument("--time-col", default="issued_at",
                     help="when the advance was issued (default issued_at)")
    imp.add_argument("--label-col", default="label",
                     help="1/0, true/false, yes/no or repaid/defaulted/delinquent "
                          "(default label)")
    imp.add_argument("--due-col", help="due time (default: the issue time)")
    imp.add_argument("--observed-col", help="when the outcome was known (default: due time)")
    imp.add_argument("--features", type=_columns, metavar="COLS",
                     help="comma-separated feature columns (default: all others)")
    imp.add_argument("--categorical", type=_columns, metavar="COLS",
                     help="comma-separated feature columns to read as text (categories), even "
                          "where they look like numbers (a branch code, a postcode)")
    imp.add_argument("--snapshot-lead-seconds", type=float, default=1.0,
                     help="the snapshot is taken this long before the issue time (default 1)")
    imp.add_argument("--train", action="store_true",
                     help="then train and promote if better, exactly as `blink train --deploy` "
                          "(from a CSV to a champion in one command)")
    imp.add_argument("--grace-days", type=float,
                     help="with --train: days after due before an outcome counts (default 30)")


def cmd_import(args: argparse.Namespace) -> int:
    from trainer.csv_import import CsvColumns, import_csv

    columns = CsvColumns(user=args.user_col, time=args.time_col, label=args.label_col,
                         due=args.due_col, observed=args.observed_col,
                         features=args.features or None,
                         categorical=args.categorical or None)
    with connect(args.dsn) as conn:
        snapshots, outcomes = import_csv(conn, args.csv, columns,
                                         timedelta(seconds=args.snapshot_lead_seconds))
    print(f"imported {outcomes} outcomes and {snapshots} snapshots from {args.csv}")
    if not args.train:
        return 0
    train = ["train", "--deploy"] + (["--dsn", args.dsn] if args.dsn else [])
    train += (["--grace-days", str(args.grace_days)] if args.grace_days is not None else [])
    return cmd_train(build_parser().parse_args(train + (["--quiet"] if args.quiet else [])))


# --- synth ---------------------------------------------------------------------------------

def _synth_arguments(syn: argparse.ArgumentParser) -> None:
    syn.add_argument("--users", type=int, default=1000, help="how many users (default 1000)")
    syn.add_argument("--weeks", type=int, default=20, help="weeks of history (default 20)")
    syn.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    syn.add_argument("--start", type=_time, help="first week (default: WEEKS weeks ago)")
    syn.add_argument("--drift-at", type=_time, help="inject drift from this time on")
    syn.add_argument("--prefix", default="user-", help="user id prefix (default user-)")


def cmd_synth(args: argparse.Namespace) -> int:
    from trainer import synthetic
    from trainer.ingest import load_history

    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = args.start or today - timedelta(weeks=args.weeks)
    history = synthetic.generate_history(args.users, start=start, weeks=args.weeks,
                                         seed=args.seed, drift_at=args.drift_at,
                                         prefix=args.prefix)
    with connect(args.dsn) as conn:
        snapshots, outcomes = load_history(conn, history)
    print(f"loaded {snapshots} snapshots and {outcomes} outcomes "
          f"({history.default_rate:.1%} bad) from {start.date()} for {args.weeks} weeks")
    return 0


# --- report --------------------------------------------------------------------------------

def _report_arguments(rep: argparse.ArgumentParser) -> None:
    rep.add_argument("model", nargs="?", metavar="MODEL",
                     help="a model version, or a model id (default: the current champion)")
    rep.add_argument("-o", "--output", type=Path, metavar="FILE",
                     help="where to write it; - for stdout (default: report-<version>.html, "
                          "or explain-<user>-<version>.png with --user)")
    rep.add_argument("--user", metavar="USER_ID",
                     help="instead of the report: a SHAP waterfall (PNG) of why the model "
                          "scores this user's latest snapshot as it does")


def find_model(conn: Any, model: str | None) -> tuple[int, str]:
    """The (id, version) MODEL names: a version, else an id; without MODEL, the champion.

    Raises
    ------
    ConfigError
        No model has that version or id.
    DatabaseError
        No MODEL and no champion yet.
    """
    if model is None:
        row = conn.execute("SELECT m.id, m.version FROM blink.champion() c "
                           "JOIN blink.blink_models m ON m.id = c.model_id").fetchone()
        if row is None:
            raise DatabaseError("no champion model: pass MODEL (a version or id), or promote "
                                "one (blink train --deploy)")
        return int(row[0]), row[1]
    row = conn.execute("SELECT id, version FROM blink.blink_models WHERE version = %s",
                       [model]).fetchone()
    if row is None and model.isdigit() and int(model) < 2**63:
        row = conn.execute("SELECT id, version FROM blink.blink_models WHERE id = %s",
                           [int(model)]).fetchone()
    if row is None:
        raise ConfigError(f"no model with version or id {model!r}")
    return int(row[0]), row[1]


def _safe(text: str) -> str:
    """``text`` usable in a file name (user ids and versions are free text)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text).strip(".") or "_"


def _write(output: Path, data: bytes) -> str:
    if str(output) == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return "-"
    try:
        output.write_bytes(data)
    except OSError as exc:
        raise ConfigError(f"cannot write {output}: {exc.strerror or exc}") from None
    return str(output)


def explain_png(conn: Any, model_id: int, version: str, user_id: str, *,
                progress: bool = False) -> tuple[bytes, dict[str, Any]]:
    """The SHAP waterfall of ``user_id``'s latest snapshot under model ``model_id``.

    Returns the PNG and what it shows (snapshot id and time, probability).

    Raises
    ------
    ConfigError
        The user has no snapshot.
    TrainingDataError
        The snapshot holds a value the model cannot read (the error names the feature).
    """
    import lightgbm
    from tqdm import tqdm

    from pyfuncs.errors import FeatureError
    from pyfuncs.features import FeatureSpec
    from trainer.report import waterfall_png

    with tqdm(total=3, desc="report", unit=" steps", disable=not progress) as steps:
        model_text, names, categories = conn.execute(
            "SELECT model_text, feature_names, feature_categories FROM blink.blink_models "
            "WHERE id = %s", [model_id]).fetchone()
        snapshot = conn.execute(
            "SELECT id, snapshot_at, features FROM blink.latest_snapshot(%s)",
            [user_id]).fetchone()
        if snapshot is None:
            raise ConfigError(f"no feature snapshot for user {user_id!r} (an unknown user, or "
                              "none stored yet in blink.feature_store_snapshots)")
        snapshot_id, snapshot_at, doc = snapshot
        doc = doc or {}
        steps.update()

        spec = FeatureSpec(list(names), categories or None)
        try:
            row = spec.vector(doc, allow_unknown=True,
                              where=f"in snapshot {snapshot_id} of user {user_id!r}")
        except FeatureError as exc:
            raise TrainingDataError(f"cannot explain: {exc}") from None
        shown = []
        for j, (name, value) in enumerate(zip(spec.names, row, strict=True)):
            display, given = spec.display_value(j, value), doc.get(name)
            if display is None and given is not None:
                # A category the model never saw is a missing value to it; show what was given.
                text = given if isinstance(given, str) else json.dumps(given)
                display = f"{text} (unseen)"
            shown.append(display)
        booster = lightgbm.Booster(model_str=model_text)
        steps.update()

        title = (f"user {user_id}, snapshot {snapshot_id} "
                 f"({snapshot_at:%Y-%m-%d %H:%M %Z}), model {version}")
        png = waterfall_png(booster, row, shown, spec.names, title=title)
        steps.update()
    probability = float(booster.predict([row])[0])
    return png, {"snapshot_id": snapshot_id, "snapshot_at": snapshot_at,
                 "probability": probability}


def cmd_report(args: argparse.Namespace) -> int:
    with connect(args.dsn) as conn:
        model_id, version = find_model(conn, args.model)
        if args.user is None:
            html, = conn.execute("SELECT report_html FROM blink.blink_models WHERE id = %s",
                                 [model_id]).fetchone()
            if not html:
                raise ConfigError(f"model {model_id} ({version}) has no stored report "
                                  "(it was not inserted by the trainer)")
            path = _write(args.output or Path(f"report-{_safe(version)}.html"), html.encode())
            if path != "-":
                print(path)
            return 0
        png, facts = explain_png(conn, model_id, version, args.user, progress=_progress(args))
    output = args.output or Path(f"explain-{_safe(args.user)}-{_safe(version)}.png")
    path = _write(output, png)
    log.info("user %s, snapshot %s (%s): probability of default %.4f under model %d (%s)",
             args.user, facts["snapshot_id"], facts["snapshot_at"].isoformat(),
             facts["probability"], model_id, version)
    if path != "-":
        print(path)
    return 0


# --- monitor-report ------------------------------------------------------------------------

def _monitor_report_arguments(mon: argparse.ArgumentParser) -> None:
    mon.add_argument("--model", metavar="ID",
                     help="a model id or version (default: the current champion)")
    mon.add_argument("-o", "--output", type=Path, default=Path("monitoring-report.html"),
                     metavar="FILE",
                     help="where to write it; - for stdout (default: monitoring-report.html)")


def cmd_monitor_report(args: argparse.Namespace) -> int:
    from trainer.monitor_report import render

    with connect(args.dsn) as conn:
        model_id = None if args.model is None else find_model(conn, args.model)[0]
        page = render(conn, model_id=model_id)
    path = _write(args.output, page.encode())
    if path != "-":
        print(path)
    return 0


# --- the command table ---------------------------------------------------------------------

@dataclass(frozen=True)
class Command:
    """One subcommand: its help line, description and examples, options and handler."""

    summary: str
    description: str
    examples: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


# --- shards ---------------------------------------------------------------------------------

def _shards_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["setup", "status", "move"],
                        help="setup: write the router, subscribe the shards; status: each "
                             "shard's state; move: point a partition at another shard")
    parser.add_argument("--router", required=True, metavar="URL", help="the router database")
    parser.add_argument("--home", metavar="URL",
                        help="setup: the model home (a blink database, wal_level = logical)")
    parser.add_argument("--shard", action="append", default=[], metavar="NAME=URL",
                        help="setup: a shard (a blink database); repeat for each")
    parser.add_argument("--partition", type=int, help="move: the partition (0..15)")
    parser.add_argument("--to", metavar="NAME", help="move: the shard that now holds it")


def cmd_shards(args: argparse.Namespace) -> int:
    from trainer import sharding

    if args.action == "setup":
        if not args.home or not args.shard:
            raise ConfigError("blink shards setup needs --home and at least one --shard")
        mapping = sharding.setup(args.router, args.home,
                                 [sharding.parse_shard(s) for s in args.shard])
        for name in dict.fromkeys(mapping.values()):
            parts = [str(p) for p, s in mapping.items() if s == name]
            print(f"shard {name}: partitions {', '.join(parts)}")
        print("router ready; every shard has the model home's champion")
    elif args.action == "move":
        if args.partition is None or not args.to:
            raise ConfigError("blink shards move needs --partition and --to")
        sharding.move_partition(args.router, args.partition, args.to)
        print(f"partition {args.partition} now routes to shard {args.to}")
    else:
        for row in sharding.status(args.router):
            state = ("unreachable: " + (row["error"] or "").splitlines()[0]
                     if not row["reachable"] else
                     f"champion {row['champion_model_id']}"
                     + (f" (home: {row['home_champion_model_id']}, LAGGING)"
                        if row["lagging"] else "")
                     + f", subscription {'running' if row['subscription_running'] else 'DOWN'}")
            print(f"{row['shard']}: partitions {row['partitions']}: {state}")
    return 0


# Later: "monitor" (drift of the champion's inputs and scores) and "bench"; one entry each.
COMMANDS: dict[str, Command] = {
    "train": Command(
        "train a candidate, compare it with the champion, write it (the default command)",
        "Train a LightGBM candidate on matured repayment outcomes (point-in-time join, "
        "temporal split),\ncompare it with the champion on the same out-of-time window, "
        "write it with its artifacts\nand report to blink.blink_models, and promote it if "
        "asked and it passes the gate.",
        """  blink train                       # train, compare, write; keep the champion
  blink train --deploy              # ... and promote it if it beats the champion
  blink --deploy -q                 # train is the default command; -q: warnings only
  blink train --dry-run --cutoff 2026-11-01
  blink train --deploy --if-requested    # from cron: only when monitoring asked for it
  blink train --config trainer.toml --output-dir /srv/blink/models""",
        _train_arguments, cmd_train),
    "import-csv": Command(
        "load a CSV of features and outcomes (bring your own data)",
        "Load a CSV, one row per advance (user, issue time, label, feature values known "
        "then),\ninto blink.feature_store_snapshots and blink.repayment_outcomes, in one "
        "transaction.\nRun it as the tables' owner (the trainer role may only read them).",
        """  blink import-csv history.csv
  blink import-csv history.csv --user-col customer --time-col applied_at \\
      --label-col bad --due-col due --categorical branch,employment_type
  blink import-csv german.csv --train      # then train and promote, in one command""",
        _import_arguments, cmd_import),
    "synth": Command(
        "load a generated history (users, snapshots, outcomes)",
        "Generate a synthetic lending history (weekly snapshots, advances, outcomes; "
        "optional drift)\nand load it into the database: data to try blink on.",
        """  blink synth --users 1000 --weeks 20
  blink synth --users 5000 --weeks 30 --drift-at 2026-10-01 --seed 3""",
        _synth_arguments, cmd_synth),
    "report": Command(
        "write a model's HTML report, or one user's SHAP explanation (PNG)",
        "Without --user: write the HTML report stored with the model (metrics, plots, SHAP "
        "summary)\nand print its path. With --user: draw why the model scores that user's "
        "latest snapshot\nas it does (a SHAP waterfall, exact TreeSHAP) as a PNG.",
        """  blink report                          # the champion's report: report-<version>.html
  blink report 20261121T091535Z-3d4022aa -o week47.html
  blink report 3 --user user-42         # explain-user-42-<version>.png
  blink report --user user-42 -o - > why.png""",
        _report_arguments, cmd_report),
    "monitor-report": Command(
        "write the monitoring report of the champion (or a model) as HTML",
        "Draw what monitoring recorded for a model (drift, estimated and realised AUC, "
        "calibration,\napproval rate, challengers, events) into one HTML page and print "
        "its path. Reads only\nwhat monitoring recorded: any role granted blink_trainer "
        "can run it.",
        """  blink monitor-report                  # the champion: monitoring-report.html
  blink monitor-report --model 3 -o model-3-monitoring.html""",
        _monitor_report_arguments, cmd_monitor_report),
    "shards": Command(
        "set up or inspect a sharded install (router, model home, shards)",
        "Sharding by user (docs/scale-out.md): `setup` installs the PL/Proxy API and the "
        "partition\nmap on the router, publishes the model tables at the model home and "
        "subscribes each\nshard to them (safe to run again; new shards get only unmapped "
        "partitions). URLs must\nbe valid from every server, without passwords (~/.pgpass).",
        """  blink shards setup --router postgresql://router/blink --home postgresql://home/blink \\
      --shard s1=postgresql://db1/blink --shard s2=postgresql://db2/blink
  blink shards status --router postgresql://router/blink
  blink shards move --router postgresql://router/blink --partition 7 --to s3""",
        _shards_arguments, cmd_shards),
}
DEFAULT_COMMAND = "train"


def build_parser() -> argparse.ArgumentParser:
    examples = "\n".join(f"  blink {name} --help" for name in COMMANDS)
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"""examples:
  blink synth --users 1000 --weeks 20   # load a generated history into $DATABASE_URL
  blink --deploy                        # train (the default command) and promote if better
  blink report --user user-42           # why the champion scores user-42 as it does

each command's options and examples:
{examples}""")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND",
                                title="commands (default: train)")
    for name, command in COMMANDS.items():
        child = sub.add_parser(name, help=command.summary, description=command.description,
                               epilog="examples:\n" + command.examples,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
        _common(child)
        command.arguments(child)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0] not in COMMANDS and argv[0] not in ("-h", "--help"):
        if argv and not argv[0].startswith("-"):
            parser.error(f"unknown command {argv[0]!r} (choose from {', '.join(COMMANDS)})")
        argv.insert(0, DEFAULT_COMMAND)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s trainer %(levelname)s %(message)s", stream=sys.stderr)
    try:
        import psycopg
    except ImportError:  # a server-only install: pip install blink, without the extra
        log.error("the blink command needs the trainer extra: pip install 'blink[trainer]'")
        return 1
    try:
        return COMMANDS[args.command].run(args)
    except TrainerError as exc:
        log.error("%s", exc)
        return exc.exit_code
    except psycopg.Error as exc:
        log.error("database error: %s", str(exc).strip())
        return DatabaseError.exit_code


if __name__ == "__main__":
    sys.exit(main())
