"""Feature documents to vectors: ordering, missing values, and errors that name the feature."""

import json
import math

import pytest

from pyfuncs.errors import FeatureError
from pyfuncs.features import FeatureSpec, parse_document

NAMES = ["a", "b", "c"]


def to_vector(doc, names, **kwargs):
    return FeatureSpec(names).vector(doc, **kwargs)


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


# --- categorical features --------------------------------------------------------------------

CATS = FeatureSpec(["n", "housing", "flag"],
                   {"housing": ["free", "own", "rent"], "flag": [False, True]})


def test_categories_become_their_position_in_the_list():
    vector = CATS.vector({"n": 2, "housing": "rent", "flag": True}, allow_unknown=False, where="")
    assert vector == [2.0, 2.0, 1.0]
    vector = CATS.vector({"housing": "free", "flag": False}, allow_unknown=False, where="")
    assert vector[1:] == [0.0, 0.0]


@pytest.mark.parametrize("doc", [
    {"housing": "castle"},  # unseen: LightGBM reads it as missing
    {"housing": None},
    {},
    {"flag": "true"},  # the string "true" is not the boolean true
    {"housing": True},  # nor is a boolean one of the strings
])
def test_unseen_categories_and_null_are_missing(doc):
    vector = CATS.vector(doc, allow_unknown=False, where="")
    assert math.isnan(vector[1]) and math.isnan(vector[2])


@pytest.mark.parametrize("value, words", [
    (1, "got float"), (0, "got float"), ([1], "got array"), ({"x": 1}, "got object"),
])
def test_a_number_for_a_categorical_feature_is_an_error(value, words):
    with pytest.raises(FeatureError) as info:
        CATS.vector(parse_document(f'{{"flag": {json.dumps(value)}}}'), allow_unknown=False,
                    where="in doc")
    assert 'feature "flag" in doc is categorical' in str(info.value) and words in str(info.value)
    assert info.value.sqlstate == "22023"


def test_a_string_for_a_numeric_feature_is_an_error():
    with pytest.raises(FeatureError, match='feature "n" in doc must be a number'):
        CATS.vector({"n": "rent"}, allow_unknown=False, where="in doc")


def test_display_value_gives_back_what_the_user_wrote():
    vector = CATS.vector({"n": 2.5, "housing": "own", "flag": True}, allow_unknown=False, where="")
    assert [CATS.display_value(j, v) for j, v in enumerate(vector)] == [2.5, "own", True]
    assert CATS.display_value(1, math.nan) is None


def test_category_keys_tell_strings_from_booleans():
    assert CATS.category_keys(1) == {"sfree": 0, "sown": 1, "srent": 2}
    assert CATS.category_keys(2) == {"bfalse": 0, "btrue": 1}
    assert CATS.category_keys(0) == {}


@pytest.mark.parametrize("categories, words", [
    ({"zz": ["a"]}, "unknown feature"),
    ({"a": []}, "non-empty list"),
    ({"a": ["x", 1]}, "strings or booleans"),
    ({"a": ["x", "x"]}, "distinct"),
])
def test_bad_category_lists_are_refused(categories, words):
    with pytest.raises(FeatureError, match=words):
        FeatureSpec(NAMES, categories)
