"""The vetting worker's refusals that need no database."""

import numpy as np
import pytest

from pyfuncs import vet_worker


def test_a_model_with_linear_trees_is_refused_by_name_before_anything_is_compiled(tmp_path):
    import lightgbm

    rng = np.random.default_rng(7)
    features = rng.normal(size=(500, 3))
    labels = (features[:, 0] + rng.normal(size=500) > 0).astype(int)
    names = ["a", "b", "c"]
    booster = lightgbm.train(
        {"objective": "binary", "num_leaves": 4, "linear_tree": True, "verbose": -1},
        lightgbm.Dataset(features, labels, feature_name=names), num_boost_round=2)
    library = tmp_path / "model.so"

    with pytest.raises(vet_worker.Refused, match="linear trees"):
        vet_worker.vet(booster.model_to_string(), names, {}, str(library))
    assert not library.exists()
