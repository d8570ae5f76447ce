"""Turning a feature document (a JSON object) into the model's ordered feature vector."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence

from pyfuncs._typing import Any
from pyfuncs.errors import FeatureError

MISSING = math.nan


def parse_document(text: str) -> dict[str, Any]:
    """Parse a JSON object; jsonb from the server is always valid JSON, so only check the type.

    Numbers become floats (a 5,000-digit integer becomes inf, an error only if the model
    uses that feature). A document nested too deeply for Python's parser is read one
    top-level entry at a time instead, so a deep value under a key the model does not use
    cannot fail a score.
    """
    try:
        doc = json.loads(text, parse_int=float)
    except RecursionError:
        doc = _top_level(text)
    if not isinstance(doc, dict):
        raise FeatureError(f"a feature document must be a JSON object, got {type(doc).__name__}")
    return doc


_DEEP = object()  # stands for a nested value too deep to parse (never a valid feature value)


def _top_level(text: str) -> Any:
    """The top-level entries of a JSON object; nested objects and arrays become ``_DEEP``.

    Iterative (no recursion): containers are skipped by counting brackets outside strings.
    """
    decoder = json.JSONDecoder(parse_int=float)
    whitespace = " \t\n\r"
    i, n = 0, len(text)

    def skip(i: int) -> int:
        while i < n and text[i] in whitespace:
            i += 1
        return i

    i = skip(i)
    if i >= n or text[i] != "{":
        return None
    out: dict[str, Any] = {}
    i = skip(i + 1)
    while i < n and text[i] != "}":
        key, i = json.decoder.scanstring(text, i + 1)  # type: ignore[attr-defined]
        i = skip(skip(i) + 1)  # the colon
        if text[i] in "[{":
            depth, in_string = 0, False
            while True:
                ch = text[i]
                if in_string:
                    if ch == "\\":
                        i += 1
                    elif ch == '"':
                        in_string = False
                elif ch == '"':
                    in_string = True
                elif ch in "[{":
                    depth += 1
                elif ch in "]}":
                    depth -= 1
                    if depth == 0:
                        break
                i += 1
            out[key] = _DEEP
            i += 1
        else:
            out[key], i = decoder.raw_decode(text, i)
        i = skip(i)
        if i < n and text[i] == ",":
            i = skip(i + 1)
    return out


def feature_value(name: str, value: Any, where: str) -> float:
    """One feature's value as a float; None means missing. Anything else non-finite is an error."""
    if value is None:
        return MISSING
    # bool is an int subclass in Python; true/false are not numbers to a credit model.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FeatureError(
            f'feature "{name}" {where} must be a number or null, '
            f"got {_json_type(value)} {_preview(value)}"
        )
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise FeatureError(f'feature "{name}" {where} must be finite, got {value!r}')
    return number


def to_vector(
    doc: Mapping[str, Any],
    feature_names: Sequence[str],
    *,
    allow_unknown: bool,
    where: str,
) -> list[float]:
    """Order ``doc``'s values as ``feature_names``; absent features are missing (NaN).

    ``allow_unknown`` is true for stored snapshots (a feature store may carry more features
    than one model uses) and false for ad-hoc documents, where an unknown name is most
    likely a typo that would silently score as missing.
    """
    if not allow_unknown:
        known = set(feature_names)
        unknown = sorted(k for k in doc if k not in known)
        if unknown:
            raise FeatureError(
                f'unknown feature "{unknown[0]}" {where}'
                + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""),
                hint="The champion model uses: " + ", ".join(feature_names),
            )
    vector = []
    for name in feature_names:
        value = doc.get(name)
        # Fast path for the common case, a finite float (x - x is NaN for NaN and infinities).
        if type(value) is float and value - value == 0.0:
            vector.append(value)
        else:
            vector.append(feature_value(name, value, where))
    return vector


def _preview(value: Any) -> str:
    """The start of a value as JSON, for messages (never fails, never long)."""
    if value is _DEEP:
        return "[...]"
    try:
        return json.dumps(value)[:60]
    except (ValueError, RecursionError):
        return "..."


def _json_type(value: Any) -> str:
    if value is _DEEP:
        return "deeply nested value"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__
