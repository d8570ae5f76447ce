"""From a probability of default to a decision and a risk band, by the model's own settings."""

from __future__ import annotations

from collections.abc import Sequence

from pyfuncs._typing import Any
from pyfuncs.errors import BlinkError

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
    def from_model(cls, threshold: float, bands: Sequence[dict[str, Any]]) -> DecisionPolicy:
        parsed = tuple((float(b["max_probability"]), str(b["band"])) for b in bands)
        bounds = [bound for bound, _ in parsed]
        if not parsed or bounds != sorted(bounds) or bounds[-1] < 1.0:
            raise BlinkError(
                "risk_bands must be a non-empty list of {band, max_probability} in ascending "
                f"order ending at 1.0, got {list(bands)!r}"
            )
        return cls(float(threshold), parsed)

    def decide(self, probability: float) -> tuple[str, str]:
        """Return (decision, risk band) for one probability of default."""
        decision = "declined" if probability >= self.threshold else "approved"
        for bound, band in self.bands:
            if probability <= bound:
                return decision, band
        return decision, self.bands[-1][1]
