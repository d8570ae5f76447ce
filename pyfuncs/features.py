"""Turning a feature document (a JSON object) into the model's ordered feature vector.

``json`` is imported where a document is parsed, not here: it pulls in ``re`` and ``enum``
(about 20 ms of a new session's first call), and scoring from stored vectors parses none.
"""

from __future__ import annotations

import math

from pyfuncs._typing import Any, Mapping, Sequence
from pyfuncs.errors import FeatureError

MISSING = math.nan


def parse_document(text: str) -> dict[str, Any]:
    """Parse a JSON object; jsonb from the server is always valid JSON, so only check the type.

    Numbers become floats (a 5,000-digit integer becomes inf, an error only if the model
    uses that feature). A document nested too deeply for Python's parser is read one
    top-level entry at a time instead, so a deep value under a key the model does not use
    cannot fail a score.
    """
    import json

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
    import json

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


class FeatureSpec:
    """A model's inputs: its feature names in order and, per categorical feature, its categories.

    A categorical value's code is its position in the feature's category list, as LightGBM
    stores it (``pandas_categorical`` in the model text) and as the model was trained. This
    class is the only place a feature document becomes a model row, for scoring and training.
    """

    __slots__ = ("names", "categories", "_codes", "_kinds")

    def __init__(self, names: Sequence[str],
                 categories: Mapping[str, Sequence[str | bool]] | None = None) -> None:
        self.names = list(names)
        self.categories = {n: list(c) for n, c in (categories or {}).items()}
        unknown = sorted(set(self.categories) - set(self.names))
        if unknown:
            raise FeatureError(f"categories given for unknown feature(s) {', '.join(unknown)}")
        self._codes: list[dict[Any, int] | None] = []
        for name in self.names:
            cats = self.categories.get(name)
            if cats is None:
                self._codes.append(None)
                continue
            if not cats or not all(isinstance(c, str | bool) for c in cats):
                raise FeatureError(f'categories of feature "{name}" must be a non-empty list of '
                                   f"strings or booleans, got {_preview(cats)}")
            # Keyed by (type, value): the string "true" and the boolean true are different.
            codes = {(type(c), c): i for i, c in enumerate(cats)}
            if len(codes) != len(cats):
                raise FeatureError(f'categories of feature "{name}" must be distinct')
            self._codes.append(codes)  # type: ignore[arg-type]

    @classmethod
    def from_json(cls, names: Sequence[str], categories: str | Mapping | None) -> FeatureSpec:
        """From a model row: ``feature_names`` and ``feature_categories`` (JSON text or dict)."""
        if not isinstance(categories, str):
            return cls(names, categories)
        import json

        return cls(names, json.loads(categories))

    def __len__(self) -> int:
        return len(self.names)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, FeatureSpec) and self.names == other.names
                and self.categories == other.categories)

    def __repr__(self) -> str:
        return f"FeatureSpec({self.names!r}, categories={self.categories!r})"

    def is_categorical(self, j: int) -> bool:
        return self._codes[j] is not None

    def vector(self, doc: Mapping[str, Any], *, allow_unknown: bool, where: str) -> list[float]:
        """Order ``doc``'s values as ``names``; absent features are missing (NaN).

        ``allow_unknown`` is true for stored snapshots (a feature store may carry more
        features than one model uses) and false for ad-hoc documents, where an unknown name
        is most likely a typo that would silently score as missing.
        """
        if not allow_unknown:
            known = set(self.names)
            unknown = sorted(k for k in doc if k not in known)
            if unknown:
                raise FeatureError(
                    f'unknown feature "{unknown[0]}" {where}'
                    + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""),
                    hint="The champion model uses: " + ", ".join(self.names),
                )
        vector = []
        if not self.categories:  # all numeric: the per-call hot path, kept minimal
            for name in self.names:
                value = doc.get(name)
                if type(value) is float and value - value == 0.0:
                    vector.append(value)
                else:
                    vector.append(feature_value(name, value, where))
            return vector
        for name, codes in zip(self.names, self._codes, strict=True):
            value = doc.get(name)
            # Fast path for the common case, a finite float (x - x is NaN for NaN and infinities).
            if codes is None:
                if type(value) is float and value - value == 0.0:
                    vector.append(value)
                else:
                    vector.append(feature_value(name, value, where))
            elif value is None:
                vector.append(MISSING)
            elif isinstance(value, str | bool):
                code = codes.get((type(value), value))
                vector.append(MISSING if code is None else float(code))
            else:
                raise FeatureError(
                    f'feature "{name}" {where} is categorical: it must be a string, a boolean '
                    f"or null, got {_json_type(value)} {_preview(value)}")
        return vector

    def display_value(self, j: int, value: float) -> Any:
        """Feature ``j``'s model input as the user gave it: the category, a number or None."""
        if value != value:
            return None
        categories = self.categories.get(self.names[j])
        return value if categories is None else categories[int(value)]

    def category_keys(self, j: int) -> dict[str, int]:
        """Feature ``j``'s codes keyed by type initial + text ("s" + string, "b" + true/false).

        The form the batch SQL looks codes up in (pyfuncs.queries), one jsonb object per
        feature: ``left(jsonb_typeof(v), 1) || (doc ->> name)``.
        """
        codes = self._codes[j] or {}
        return {("b" + ("true" if v else "false")) if t is bool else "s" + v: code
                for (t, v), code in codes.items()}


def _preview(value: Any) -> str:
    """The start of a value as JSON, for messages (never fails, never long)."""
    if value is _DEEP:
        return "[...]"
    import json

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
