"""`python -m trainer`: train, compare with the champion, write and (optionally) promote.

Subcommands: ``train`` (the default), ``import-csv`` (bring your own data) and ``synth``
(load a generated history). Exit codes: 0 promoted or kept; 1 unexpected error; 2 bad
options or config; 3 bad training data; 4 database error; 5 artifact error; 6 promotion
refused by blink_promote() (the model is written, the refusal recorded).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from trainer.errors import ConfigError, DatabaseError, PromotionError, TrainerError

log = logging.getLogger("trainer")
COMMANDS = ("train", "import-csv", "synth")


def _time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dsn", default=None,
                        help="PostgreSQL connection string (default: $DATABASE_URL)")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings only, no progress")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m trainer", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")

    train = sub.add_parser("train", help="train a candidate (default command)")
    _common(train)
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

    imp = sub.add_parser("import-csv", help="load a CSV of features and outcomes")
    _common(imp)
    imp.add_argument("csv", type=Path)
    imp.add_argument("--user-col", default="user_id")
    imp.add_argument("--time-col", default="issued_at", help="when the advance was issued")
    imp.add_argument("--label-col", default="label",
                     help="1/0, true/false, yes/no or repaid/defaulted/delinquent")
    imp.add_argument("--due-col", help="due time (default: the issue time)")
    imp.add_argument("--observed-col", help="when the outcome was known (default: due time)")
    imp.add_argument("--features", help="comma-separated feature columns (default: all others)")
    imp.add_argument("--snapshot-lead-seconds", type=float, default=1.0,
                     help="the snapshot is taken this long before the issue time")

    syn = sub.add_parser("synth", help="load a generated history (users, snapshots, outcomes)")
    _common(syn)
    syn.add_argument("--users", type=int, default=1000)
    syn.add_argument("--weeks", type=int, default=20)
    syn.add_argument("--seed", type=int, default=7)
    syn.add_argument("--start", type=_time, help="first week (default: WEEKS weeks ago)")
    syn.add_argument("--drift-at", type=_time, help="inject drift from this time on")
    syn.add_argument("--prefix", default="user-", help="user id prefix")
    return parser


def connect(dsn: str | None) -> Any:
    import psycopg

    dsn = dsn or os.environ.get("DATABASE_URL")
    if not dsn:
        raise ConfigError("no database: pass --dsn or set DATABASE_URL")
    try:
        return psycopg.connect(dsn, autocommit=True, application_name="blink-trainer")
    except psycopg.Error as exc:
        raise DatabaseError(f"cannot connect: {str(exc).strip()}") from None


def cmd_train(args: argparse.Namespace) -> int:
    from trainer.config import load_config
    from trainer.pipeline import RunOptions, run
    from trainer.promotion import PromotionFailed

    config = load_config(args.config, grace_days=args.grace_days, seed=args.seed,
                         max_rounds=args.max_rounds, min_auc_gain=args.min_auc_gain)
    options = RunOptions(cutoff=args.cutoff, deploy=args.deploy, force=args.force,
                         dry_run=args.dry_run, output_dir=args.output_dir, version=args.version,
                         progress=not args.quiet and sys.stderr.isatty())
    with connect(args.dsn) as conn:
        try:
            result = run(conn, config, options)
        except PromotionFailed as exc:
            raise PromotionError(f"{exc} (recorded as review {exc.review_id})") from None
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


def cmd_import(args: argparse.Namespace) -> int:
    from trainer.csv_import import CsvColumns, import_csv

    columns = CsvColumns(user=args.user_col, time=args.time_col, label=args.label_col,
                         due=args.due_col, observed=args.observed_col,
                         features=args.features.split(",") if args.features else None)
    with connect(args.dsn) as conn:
        snapshots, outcomes = import_csv(conn, args.csv, columns,
                                         timedelta(seconds=args.snapshot_lead_seconds))
    print(f"imported {outcomes} outcomes and {snapshots} snapshots from {args.csv}")
    return 0


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


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS and argv[0] not in ("-h", "--help"):
        argv.insert(0, "train")
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s trainer %(levelname)s %(message)s", stream=sys.stderr)
    import psycopg

    handlers = {"train": cmd_train, "import-csv": cmd_import, "synth": cmd_synth}
    try:
        return handlers[args.command](args)
    except TrainerError as exc:
        log.error("%s", exc)
        return exc.exit_code
    except psycopg.Error as exc:
        log.error("database error: %s", str(exc).strip())
        return DatabaseError.exit_code


if __name__ == "__main__":
    sys.exit(main())
