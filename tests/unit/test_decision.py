"""Decision policy: threshold and risk bands as stored with the model."""

import numpy as np
import pytest

from pyfuncs.decision import DEFAULT_RISK_BANDS, DecisionPolicy
from pyfuncs.errors import BlinkError
from trainer.artifacts import ModelArtifact
from trainer.config import TrainerConfig


def test_threshold_is_inclusive_for_decline():
    policy = DecisionPolicy.from_model(0.2, DEFAULT_RISK_BANDS)
    assert policy.decide(0.19999)[0] == "approved"
    assert policy.decide(0.2)[0] == "declined"


def test_bands_are_upper_bounds():
    policy = DecisionPolicy.from_model(0.5, DEFAULT_RISK_BANDS)
    assert [policy.decide(p)[1] for p in (0.0, 0.05, 0.051, 0.2, 0.34, 0.9, 1.0)] == [
        "A", "A", "B", "C", "D", "E", "E"]


@pytest.mark.parametrize("bands", [
    [], [{"band": "A", "max_probability": 0.5}],
    [{"band": "A", "max_probability": 0.5}, {"band": "B", "max_probability": 0.2},
     {"band": "C", "max_probability": 1.0}],
    [{"band": "A", "max_probability": "NaN"}, {"band": "B", "max_probability": 1.0}],
    [{"band": "A", "max_probability": 0.5}, {"band": "A", "max_probability": 1.0}],
    [{"band": "A", "max_probability": 0.5}, {"band": "B", "max_probability": 1.5}],
    [{"band": "A", "max_probability": True}, {"band": "B", "max_probability": 1.0}],
    "A",
])
def test_invalid_bands_are_rejected(bands):
    with pytest.raises(BlinkError, match="risk_bands"):
        DecisionPolicy.from_model(0.5, bands)


@pytest.mark.parametrize("threshold", [0, 1, -0.1, float("nan"), "0.5", None, True])
def test_invalid_thresholds_are_rejected(threshold):
    with pytest.raises(BlinkError, match="decision_threshold"):
        DecisionPolicy.from_model(threshold, DEFAULT_RISK_BANDS)


def test_decide_many_matches_decide_row_by_row():
    policy = DecisionPolicy.from_model(0.2, [
        {"band": "A", "max_probability": 0.05}, {"band": "B", "max_probability": 0.1},
        {"band": "C", "max_probability": 1.0}])
    p = np.array([0.0, 0.05, 0.050001, 0.1, 0.19999, 0.2, 0.7, 1.0])
    decisions, bands = policy.decide_many(p)
    assert list(zip(decisions, bands, strict=True)) == [policy.decide(float(x)) for x in p]
    assert bands[:3] == ["A", "A", "B"] and decisions[4:6] == ["approved", "declined"]


def test_the_trainer_starts_from_the_one_default():
    # One copy: the trainer's config and artifacts take pyfuncs' list (not equal copies).
    assert TrainerConfig().risk_bands == DEFAULT_RISK_BANDS
    assert ModelArtifact("v", ["a"], "", b"", "0" * 64, "p", 0.5).risk_bands == DEFAULT_RISK_BANDS
