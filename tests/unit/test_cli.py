"""The `blink` command line without a database: help, examples, dispatch, the entry point."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from devenv.paths import REPO_ROOT
from trainer import cli


@pytest.mark.parametrize("command", [None, *cli.COMMANDS])
def test_help_of_every_command_says_what_it_does_with_an_example(command, capsys):
    argv = ["--help"] if command is None else [command, "--help"]
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: blink" + ("" if command is None else f" {command}"))
    assert "examples:\n  blink " in out
    if command is None:
        for name in cli.COMMANDS:
            assert f"blink {name} --help" in out
    else:
        assert cli.COMMANDS[command].description.split()[0] in out
        # Every example of the command is a command line its own parser accepts.
        for line in cli.COMMANDS[command].examples.replace("\\\n", " ").splitlines():
            words = line.split("#")[0].split(">")[0].split()
            assert words[0] == "blink"
            parsed = cli.build_parser().parse_args(
                words[1:] if words[1] in cli.COMMANDS else [cli.DEFAULT_COMMAND, *words[1:]])
            assert parsed.command == command


def test_unknown_command_is_a_usage_error_naming_the_commands(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["monitor"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "unknown command 'monitor'" in err
    assert "train, import-csv, synth, report" in err


def test_no_command_means_train_and_bad_options_are_usage_errors(capsys):
    args = cli.build_parser().parse_args(["train", "--deploy"])
    assert args.command == "train" and args.deploy
    # Options first: the default command (train) gets them, and rejects what it lacks.
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--deploy", "--force"])
    assert exit_.value.code == 2
    assert "blink train: error: argument --force: not allowed with argument --deploy" in (
        capsys.readouterr().err)


def test_without_a_database_the_command_exits_2_before_any_work(monkeypatch, tmp_path, caplog):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert cli.main(["report", "-q"]) == 2
    assert cli.main(["--dry-run", "-q", "--output-dir", str(tmp_path)]) == 2
    assert caplog.messages == ["no database: pass --dsn or set DATABASE_URL"] * 2
    assert not list(tmp_path.iterdir())


def test_import_csv_column_lists_are_split_and_trimmed():
    args = cli.build_parser().parse_args(
        ["import-csv", "h.csv", "--categorical", "branch, employment_type", "--features",
         "a,b,branch"])
    assert args.categorical == ["branch", "employment_type"]
    assert args.features == ["a", "b", "branch"]
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["import-csv", "h.csv", "--categorical", " , "])


def test_python_dash_m_trainer_is_the_same_command():
    proc = subprocess.run([sys.executable, "-m", "trainer", "--help"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: blink ")
    proc = subprocess.run([sys.executable, "-m", "trainer", "report", "--help"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "blink report --user user-42" in proc.stdout


def test_blink_console_script_points_at_the_cli():
    scripts = metadata.entry_points(group="console_scripts")
    (entry,) = [e for e in scripts if e.name == "blink"]
    assert entry.value == "trainer.cli:main"
    assert entry.load() is cli.main
    # The venv's own script (pip install -e .[dev] puts it next to python) runs.
    script = Path(sys.executable).parent / "blink"
    assert script.exists(), f"{script}: reinstall the venv (make venv)"
    proc = subprocess.run([str(script), "synth", "--help"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0 and "blink synth --users" in proc.stdout
