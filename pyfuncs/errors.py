"""Errors blink raises, each with the SQLSTATE and hint it is reported with."""

from __future__ import annotations


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
        super().__init__("blink has no champion model: no model has been promoted yet")


class FeatureError(BlinkError):
    sqlstate = "22023"  # invalid_parameter_value


class UnknownModelError(BlinkError):
    sqlstate = "P0002"  # no_data_found


class DeploymentError(BlinkError):
    sqlstate = "55000"


class ArtifactIntegrityError(BlinkError):
    sqlstate = "XX001"  # data_corrupted
    hint = "The stored artifact was altered after it was written; re-insert the model."
