"""Checking a model row before blink relies on it.

On insert (the ``blink_models`` trigger): every artifact matches its sha256, feature names
are distinct, the threshold and risk bands are sound (``pyfuncs.decision``, the same check
that runs when the model is loaded), and a row without bands gets the default ones, stored
in the row.
"""

from __future__ import annotations

import json

from pyfuncs._typing import Any
from pyfuncs.decision import DEFAULT_RISK_BANDS, DecisionPolicy
from pyfuncs.errors import ArtifactIntegrityError, InvalidArgumentError
from pyfuncs.integrity import sha256_hex


def _check_hash(data: bytes, stored: str | None, column: str) -> None:
    computed = sha256_hex(data)
    if stored is None or stored.lower() != computed:
        raise ArtifactIntegrityError(
            f"{column}_sha256 {stored} does not match the sha256 of {column} ({computed})",
            hint=f"Store the sha256 (hex) of the exact {column} bytes you insert.")


def check_new_model(row: dict[str, Any]) -> bool:
    """Check a ``blink_models`` row about to be inserted; fill its defaults.

    Returns whether ``row`` was changed. Raises ArtifactIntegrityError (a hash does not
    match) or InvalidArgumentError (a field is unusable), naming the field.
    """
    _check_hash(bytes(row["compiled_lib"]), row["compiled_lib_sha256"], "compiled_lib")
    if row.get("model_text_sha256") is not None:
        _check_hash(row["model_text"].encode("utf-8"), row["model_text_sha256"], "model_text")
    if row.get("treelite_model") is not None:
        _check_hash(bytes(row["treelite_model"]), row.get("treelite_model_sha256"),
                    "treelite_model")
    names = list(row["feature_names"] or [])
    if not names or any(not isinstance(n, str) or not n for n in names):
        raise InvalidArgumentError(f"feature_names must be non-empty names, got {names!r}")
    if len(set(names)) != len(names):
        raise InvalidArgumentError(f"feature_names must be distinct, got {names!r}")
    changed = row["risk_bands"] is None
    if changed:
        row["risk_bands"] = json.dumps(DEFAULT_RISK_BANDS)
    DecisionPolicy.from_model(row["decision_threshold"], json.loads(row["risk_bands"]))
    return changed
