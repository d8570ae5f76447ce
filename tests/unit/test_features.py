"""Feature documents to vectors: ordering, missing values, and errors that name the feature."""

import math

import pytest

from pyfuncs.errors import FeatureError
from pyfuncs.features import parse_document, to_vector

NAMES = ["a", "b", "c"]


def test_orders_by_model_features_and_marks_absent_and_null_missing():
    vector = to_vector({"c": 3, "a": 1.5, "b": None}, NAMES, allow_unknown=False, where="here")
    assert vector[0] == 1.5 and math.isnan(vector[1]) and vector[2] == 3.0
    vector = to_vector({}, NAMES, allow_unknown=False, where="here")
    assert all(math.isnan(v) for v in vector)


@pytest.mark.parametrize("value, words", [
    ("12", "got string"), (True, "got boolean"), ([1], "got array"), ({"x": 1}, "got object"),
    (math.inf, "must be finite"), (-math.inf, "must be finite"), (math.nan, "must be finite"),
    (10**400, "must be finite"),
])
def test_bad_values_name_the_feature(value, words):
    with pytest.raises(FeatureError) as info:
        to_vector({"b": value}, NAMES, allow_unknown=False, where="in doc")
    assert 'feature "b" in doc' in str(info.value)
    assert words in str(info.value)


def test_unknown_names_are_errors_only_when_not_allowed():
    with pytest.raises(FeatureError, match='unknown feature "zz"') as info:
        to_vector({"a": 1, "zz": 2}, NAMES, allow_unknown=False, where="in doc")
    assert "a, b, c" in info.value.hint
    assert to_vector({"a": 1, "zz": 2}, NAMES, allow_unknown=True, where="x")[0] == 1.0


def test_parse_document_requires_an_object():
    assert parse_document('{"a": 1}') == {"a": 1}
    with pytest.raises(FeatureError, match="JSON object"):
        parse_document("[1]")
