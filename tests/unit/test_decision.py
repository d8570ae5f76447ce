"""Decision policy: threshold and risk bands as stored with the model."""

import pytest

from pyfuncs.decision import DEFAULT_RISK_BANDS, DecisionPolicy
from pyfuncs.errors import BlinkError
from trainer.artifacts import DEFAULT_RISK_BANDS as TRAINER_BANDS


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
])
def test_invalid_bands_are_rejected(bands):
    with pytest.raises(BlinkError, match="risk_bands"):
        DecisionPolicy.from_model(0.5, bands)


def test_trainer_and_database_defaults_agree():
    assert TRAINER_BANDS == DEFAULT_RISK_BANDS
