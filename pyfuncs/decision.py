"""From a probability of default to a decision and a risk band, by the model's own settings.

``DEFAULT_RISK_BANDS`` is the one copy of blink's default bands: the trainer's config starts
from it, and a model row inserted without bands gets it (stored in the row, so the bands of
a model never change after insert).
"""

from __future__ import annotations

import math

from pyfuncs._typing import Any
from pyfuncs.errors import InvalidArgumentError

DEFAULT_RISK_BANDS: list[dict[str, Any]] = [
    {"band": "A", "max_probability": 0.05},
    {"band": "B", "max_probability": 0.10},
    {"band": "C", "max_probability": 0.20},
    {"band": "D", "max_probability": 0.35},
    {"band": "E", "max_probability": 1.0},
]


class DecisionPolicy:
    """Decline at or above ``threshold``; bands are upper bounds in ascending order."""

    __slots__ = ("threshold", "bands")

    def __init__(self, threshold: float, bands: tuple[tuple[float, str], ...]) -> None:
        self.threshold = threshold
        self.bands = bands

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, DecisionPolicy)
                and (self.threshold, self.bands) == (other.threshold, other.bands))

    def __hash__(self) -> int:
        return hash((self.threshold, self.bands))

    def __repr__(self) -> str:
        return f"DecisionPolicy(threshold={self.threshold}, bands={self.bands})"

    @classmethod
    def from_model(cls, threshold: Any, bands: Any) -> DecisionPolicy:
        """Check and build a model's policy; an InvalidArgumentError says what is wrong.

        ``threshold`` must be a number strictly between 0 and 1; ``bands`` a non-empty list of
        ``{"band": name, "max_probability": number}`` with distinct names and finite,
        strictly ascending bounds in (0, 1], the last one 1.0.
        """
        if not is_finite_number(threshold) or not 0.0 < float(threshold) < 1.0:
            raise InvalidArgumentError(
                f"decision_threshold must be a number strictly between 0 and 1, got {threshold!r}")
        usage = ('risk_bands must be a non-empty list of {"band": name, "max_probability": '
                 "number} with strictly ascending bounds ending at 1.0")
        if not isinstance(bands, list) or not bands:
            raise InvalidArgumentError(f"{usage}, got {bands!r}")
        parsed = []
        for band in bands:
            if (not isinstance(band, dict) or set(band) != {"band", "max_probability"}
                    or not isinstance(band["band"], str) or not band["band"]
                    or not is_finite_number(band["max_probability"])):
                raise InvalidArgumentError(f"{usage}; bad entry {band!r}")
            parsed.append((float(band["max_probability"]), band["band"]))
        bounds = [bound for bound, _ in parsed]
        names = [name for _, name in parsed]
        if (any(not 0.0 < b <= 1.0 for b in bounds) or bounds[-1] != 1.0
                or any(a >= b for a, b in zip(bounds, bounds[1:], strict=False))
                or len(set(names)) != len(names)):
            raise InvalidArgumentError(f"{usage} and distinct names, got {bands!r}")
        return cls(float(threshold), tuple(parsed))

    def decide(self, probability: float) -> tuple[str, str]:
        """Return (decision, risk band) for one probability of default."""
        decision = "declined" if probability >= self.threshold else "approved"
        for bound, band in self.bands:
            if probability <= bound:
                return decision, band
        return decision, self.bands[-1][1]

    def decide_many(self, probabilities: Any) -> tuple[list[str], list[str]]:
        """Decisions and risk bands for many probabilities; the same rules as ``decide``."""
        import numpy as np

        p = np.asarray(probabilities, dtype=np.float64)
        decisions = np.where(p >= self.threshold, "declined", "approved")
        bounds = np.array([bound for bound, _ in self.bands])
        names = np.array([band for _, band in self.bands], dtype=object)
        # First band whose upper bound is >= p (p <= bound), the last band beyond every bound.
        index = np.minimum(np.searchsorted(bounds, p, side="left"), len(bounds) - 1)
        return decisions.tolist(), names[index].tolist()


def is_finite_number(value: Any) -> bool:
    """A finite int or float, not a bool (JSON true/false are not numbers)."""
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(float(value)))
