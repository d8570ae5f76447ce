"""Errors the trainer reports, each with the exit code a scheduler can act on."""

from __future__ import annotations


class TrainerError(Exception):
    """Base class: the run stopped with a clear message and wrote nothing it should not have."""

    exit_code = 1


class ConfigError(TrainerError):
    """Bad command-line options or config file."""

    exit_code = 2


class TrainingDataError(TrainerError):
    """The data cannot make a sound model: too little, one class, non-numeric values..."""

    exit_code = 3


class DatabaseError(TrainerError):
    """The database could not be reached or refused a statement (permissions, schema)."""

    exit_code = 4


class ArtifactError(TrainerError):
    """Compiling or checking the artifacts failed (compiled library disagrees with LightGBM)."""

    exit_code = 5


class PromotionError(TrainerError):
    """The model was written but blink_promote() refused it; the refusal is recorded."""

    exit_code = 6
