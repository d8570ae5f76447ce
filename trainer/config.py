"""Trainer settings: defaults, overridden by a TOML config file, overridden by options."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from pyfuncs.decision import DEFAULT_RISK_BANDS
from trainer.errors import ConfigError


@dataclass
class TrainerConfig:
    """Everything a training run can be told. See docs/trainer.md for the config file."""

    features: list[str] | None = None  # None: every feature seen in the training snapshots
    # Features that must be categorical; text and boolean values make a feature categorical
    # anyway, this only makes sure (a number in one is then an error).
    categorical: list[str] | None = None
    monotone: dict[str, int] = field(default_factory=dict)  # feature -> -1, 0 or 1
    params: dict[str, Any] = field(default_factory=dict)  # LightGBM parameters over defaults
    seed: int = 7
    max_rounds: int = 1000
    early_stopping_rounds: int = 50
    grace_days: float = 30.0  # an outcome matures grace_days after its due date
    valid_fraction: float = 0.2
    test_fraction: float = 0.2
    min_rows: int = 200
    min_positives: int = 10  # per split: below this, AUC and early stopping are noise
    cost_missed_default: float = 10.0
    cost_declined_good: float = 1.0
    min_auc_gain: float = 0.005
    calibration_tolerance: float = 0.01  # allowed rise of the expected calibration error
    risk_bands: list[dict[str, Any]] = field(default_factory=lambda: list(DEFAULT_RISK_BANDS))

    def validate(self) -> TrainerConfig:
        if not (0 < self.valid_fraction < 1 and 0 < self.test_fraction < 1
                and self.valid_fraction + self.test_fraction < 1):
            raise ConfigError("valid_fraction and test_fraction must be in (0, 1) and sum below 1")
        bad = {k: v for k, v in self.monotone.items() if v not in (-1, 0, 1)}
        if bad:
            raise ConfigError(f"monotone constraints must be -1, 0 or 1, got {bad}")
        if self.cost_missed_default <= 0 or self.cost_declined_good <= 0:
            raise ConfigError("costs must be positive")
        if self.min_rows < 1 or self.min_positives < 1 or self.max_rounds < 1:
            raise ConfigError("min_rows, min_positives and max_rounds must be at least 1")
        if self.features is not None and len(set(self.features)) != len(self.features):
            raise ConfigError("features must be distinct")
        from pyfuncs.decision import DecisionPolicy
        from pyfuncs.errors import BlinkError

        try:  # the same check blink applies when it stores and loads the model
            DecisionPolicy.from_model(0.5, self.risk_bands)
        except BlinkError as exc:
            raise ConfigError(f"bad risk_bands: {exc}") from None
        return self

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


_SECTIONS = {"costs": {"missed_default": "cost_missed_default",
                       "declined_good": "cost_declined_good"},
             "promotion": {"min_auc_gain": "min_auc_gain",
                           "calibration_tolerance": "calibration_tolerance"}}


def load_config(path: str | Path | None, **overrides: Any) -> TrainerConfig:
    """Read a TOML config file (optional), then apply non-None ``overrides``.

    The file's top-level keys are TrainerConfig fields; ``[monotone]`` and ``[params]`` are
    tables; ``[costs]`` holds missed_default / declined_good and ``[promotion]`` holds
    min_auc_gain / calibration_tolerance.
    """
    values: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from None
        for section, keys in _SECTIONS.items():
            table = raw.pop(section, {})
            for key, value in table.items():
                if key not in keys:
                    raise ConfigError(f"unknown key [{section}] {key} in {path}")
                values[keys[key]] = value
        values.update(raw)
    values.update({k: v for k, v in overrides.items() if v is not None})
    known = {f.name for f in fields(TrainerConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown config key(s): {', '.join(unknown)}")
    try:
        return TrainerConfig(**values).validate()
    except TypeError as exc:
        raise ConfigError(f"bad config: {exc}") from None
