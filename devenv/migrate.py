"""Run blink's alembic migrations from Python (the demo, the tests, `make schema`).

The DSN and options go through alembic's config (``config.attributes``), never through
environment variables, so concurrent callers cannot see each other's.
"""

from __future__ import annotations

from devenv.paths import REPO_ROOT


def _config(dsn: str, options: dict[str, str]):  # -> alembic.config.Config
    from alembic.config import Config

    config = Config(str(REPO_ROOT / "alembic.ini"))
    config.attributes["dsn"] = dsn
    config.attributes.update(options)
    return config


def upgrade(dsn: str, revision: str = "head", **options: str) -> None:
    from alembic import command

    command.upgrade(_config(dsn, options), revision)


def downgrade(dsn: str, revision: str, **options: str) -> None:
    """Downgrade; pass ``drop_data="yes"`` to let it delete rows (as ``-x drop_data=yes``)."""
    from alembic import command

    command.downgrade(_config(dsn, options), revision)


def head() -> str:
    """The newest revision."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config("", {})).get_current_head()  # type: ignore[return-value]


def revisions() -> list[str]:
    """Every revision, oldest first."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_config("", {}))
    return [r.revision for r in reversed(list(script.walk_revisions()))]
