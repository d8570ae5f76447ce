"""A loaded model: its features, decision policy and predictor, ready to score."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from pyfuncs._typing import Any
from pyfuncs.decision import DecisionPolicy
from pyfuncs.errors import ArtifactIntegrityError
from pyfuncs.predictor import BoosterPredictor, CompiledPredictor


class LoadedModel:
    """One ``blink_models`` row, loaded. ``compiled`` is None when the library cannot load.

    A plain class, not a dataclass: importing dataclasses costs ~10 ms of every new
    session's first call inside the server.
    """

    __slots__ = ("id", "version", "feature_names", "policy", "compiled", "fetch_model_text",
                 "_booster")

    def __init__(self, id: int, version: str, feature_names: list[str], policy: DecisionPolicy,
                 compiled: CompiledPredictor | None,
                 fetch_model_text: Callable[[], str]) -> None:
        self.id = id
        self.version = version
        self.feature_names = feature_names
        self.policy = policy
        self.compiled = compiled
        self.fetch_model_text = fetch_model_text
        self._booster: BoosterPredictor | None = None

    def __repr__(self) -> str:
        return f"LoadedModel(id={self.id}, version={self.version!r}, engine={self.engine})"

    @property
    def booster(self) -> BoosterPredictor:
        """LightGBM's predictor, built from the model text on first use."""
        if self._booster is None:
            self._booster = BoosterPredictor(self.fetch_model_text())
        return self._booster

    @property
    def engine(self) -> str:
        return "compiled" if self.compiled is not None else "lightgbm"

    def predict_row(self, values: Sequence[float]) -> float:
        if self.compiled is not None:
            probability = self.compiled.predict_row(values)
            if probability is not None:
                return probability
        return self.booster.predict_row(values)

    def predict_batch(self, matrix: Any) -> Any:
        """Probabilities for a float64 matrix, one native call for the whole batch.

        Rows TL2cgen would misread (see pyfuncs.predictor) are scored by LightGBM.
        """
        import numpy as np

        matrix = np.asarray(matrix, dtype=np.float64).reshape(-1, len(self.feature_names))
        if self.compiled is None:
            return self.booster.predict_matrix(matrix)
        probabilities, buggy = self.compiled.predict_batch(matrix)
        if buggy.any():
            probabilities[buggy] = self.booster.predict_matrix(matrix[buggy])
        return probabilities


def load_model(row: dict[str, Any], fetch_model_text: Callable[[], str],
               warn: Callable[[str], None]) -> LoadedModel:
    """Build a LoadedModel from a ``blink_models`` row (without its model text).

    A library whose hash does not match is refused outright (never executed, never
    replaced by the fallback: the row itself is suspect). A library that merely cannot be
    loaded here (another architecture or libc) falls back to LightGBM with a warning.
    """
    feature_names = list(row["feature_names"])
    policy = DecisionPolicy.from_model(row["decision_threshold"], json.loads(row["risk_bands"]))
    compiled: CompiledPredictor | None
    try:
        compiled = CompiledPredictor(
            bytes(row["compiled_lib"]), row["compiled_lib_sha256"], len(feature_names)
        )
    except ArtifactIntegrityError as exc:
        raise ArtifactIntegrityError(f"model {row['id']} ({row['version']}): {exc}") from None
    except OSError as exc:
        warn(
            f"blink: model {row['id']} ({row['version']}): compiled library cannot be loaded "
            f"on this server ({exc}); scoring with LightGBM from the model text instead "
            "(slower, same predictions)"
        )
        compiled = None
    return LoadedModel(
        id=int(row["id"]),
        version=row["version"],
        feature_names=feature_names,
        policy=policy,
        compiled=compiled,
        fetch_model_text=fetch_model_text,
    )
