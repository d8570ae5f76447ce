"""Errors blink raises, each with its SQLSTATE and hint, and the one way they reach SQL."""

from __future__ import annotations

from pyfuncs._typing import Any, Callable


class BlinkError(Exception):
    """Base class: a problem the caller can fix, reported as an SQL error."""

    sqlstate = "P0001"
    hint: str | None = None

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint


class NoChampionError(BlinkError):
    sqlstate = "55000"  # object_not_in_prerequisite_state
    hint = (
        "Insert a model into blink.blink_models (python -m trainer, or INSERT as blink_trainer) "
        "and promote it with SELECT blink_promote(<model id>);"
    )

    def __init__(self) -> None:
        super().__init__("no champion model: no model has been promoted yet")


class FeatureError(BlinkError):
    sqlstate = "22023"  # invalid_parameter_value


class InvalidArgumentError(BlinkError):
    sqlstate = "22023"  # invalid_parameter_value


class UnknownModelError(BlinkError):
    sqlstate = "P0002"  # no_data_found


class DeploymentError(BlinkError):
    sqlstate = "55000"


class NotVettedError(BlinkError):
    sqlstate = "55000"  # object_not_in_prerequisite_state
    hint = ("blink_promote and blink_shadow_add vet a model (as does alembic upgrade head for "
            "the live ones); promote it or add it as a shadow first.")


class ArtifactIntegrityError(BlinkError):
    sqlstate = "XX001"  # data_corrupted
    hint = "The stored artifact was altered after it was written; re-insert the model."


_SQL_ERROR: dict[int, type] = {}  # per plpy module: the exception class blink raises


def sql_error(plpy: Any, exc: BlinkError) -> BaseException:
    """The PL/Python exception that reports ``exc`` as ``ERROR:  blink: <message>``.

    PL/Python prefixes an uncaught exception's message with its class's module and name
    (``plpy.Error: ...``), but only the name for a class of module builtins: so the class
    is a plpy.Error named ``blink`` there. PL/Python reads its SQLSTATE and hint from the
    ``sqlstate`` and ``hint`` attributes (a hint only when there is one: never "None").
    """
    cls = _SQL_ERROR.get(id(plpy))
    if cls is None:
        cls = _SQL_ERROR[id(plpy)] = type("blink", (plpy.Error,), {"__module__": "builtins"})
    error = cls(str(exc))
    error.sqlstate = exc.sqlstate
    if exc.hint:
        error.hint = exc.hint
    return error


def sql_function(entry: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate an entry point ``f(plpy, GD, ...)``: a BlinkError becomes an SQL error.

    The error keeps blink's message, SQLSTATE and hint (see ``sql_error``). Every other
    exception propagates as PL/Python reports it.
    """

    def call(plpy: Any, GD: dict, *args: Any) -> Any:
        try:
            return entry(plpy, GD, *args)
        except BlinkError as exc:
            raise sql_error(plpy, exc) from None

    call.__name__ = entry.__name__
    call.__doc__ = entry.__doc__
    call.__wrapped__ = entry  # type: ignore[attr-defined]
    return call
