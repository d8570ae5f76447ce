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


def test_a_library_whose_one_row_scorer_differs_from_tl2cgens_code_is_refused(
        tmp_path, model_a, monkeypatch):
    # QuickScorer (one row, through the module) must give TL2cgen's double; here it is
    # nudged by one ulp on every row.
    from pyfuncs.predictor import CompiledPredictor

    real = CompiledPredictor.stored_scorer

    def nudged(self):
        scorer = real.fget(self)
        return lambda vector: float(np.nextafter(scorer(vector), 2.0))

    monkeypatch.setattr(CompiledPredictor, "stored_scorer", property(nudged))
    artifact = model_a.artifact
    with pytest.raises(vet_worker.Refused, match=r"its one-row scorer gives 0\.\d+ where "
                                                 r"TL2cgen's code gives 0\.\d+ on probe row \d+"):
        vet_worker.vet(artifact.model_text, artifact.feature_names, {},
                       str(tmp_path / "model.so"))


def test_a_library_whose_rows_differ_from_tl2cgens_code_is_refused(tmp_path, model_a,
                                                                  monkeypatch):
    # The batch entry point (QuickScorer over many rows) against TL2cgen's code, one ulp off.
    from pyfuncs.predictor import CompiledPredictor

    real = CompiledPredictor.predict_matrix_tl2cgen
    monkeypatch.setattr(CompiledPredictor, "predict_matrix_tl2cgen",
                        lambda self, matrix: np.nextafter(real(self, matrix), -1.0))
    artifact = model_a.artifact
    with pytest.raises(vet_worker.Refused, match=r"its rows give 0\.\d+ where TL2cgen's code "
                                                 r"gives 0\.\d+ on probe row \d+"):
        vet_worker.vet(artifact.model_text, artifact.feature_names, {},
                       str(tmp_path / "model.so"))
