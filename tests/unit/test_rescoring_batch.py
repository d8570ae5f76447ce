"""The vectorised batch path: one native call per batch, same results as LightGBM and decide()."""

import struct

import numpy as np
import pytest

from pyfuncs import predictor, queries, rescore, snapshots
from pyfuncs.errors import BlinkError
from pyfuncs.features import FeatureSpec
from pyfuncs.model import load_model
from pyfuncs.predictor import CompiledPredictor
from tests.fix_models import model_row


def bug_value() -> float:
    """A finite double whose low 4 bytes are 0xFFFFFFFF (TL2cgen reads it as missing)."""
    return struct.unpack("<d", struct.pack("<Q", 0x40A3880000000000 | 0xFFFFFFFF))[0]


@pytest.fixture(scope="module")
def loaded(model_a):
    warnings: list[str] = []
    model = load_model(model_row(model_a.artifact), lambda: model_a.artifact.model_text,
                       warnings.append)
    assert warnings == [] and model.compiled is not None
    return model


def test_batch_predictions_match_lightgbm_with_missing_values(loaded, model_a):
    matrix = model_a.population.features
    assert np.isnan(matrix).any()
    got = loaded.predict_batch(matrix)
    assert np.abs(got - model_a.predict(matrix)).max() <= 1e-6
    # the raw batch call itself (no LightGBM rows) is exact too, and one call per batch
    raw, buggy = loaded.compiled.predict_batch(matrix)
    assert not buggy.any()
    assert np.abs(raw - model_a.predict(matrix)).max() <= 1e-12


def test_values_tl2cgen_would_misread_are_scored_exactly_in_a_batch(loaded, model_a):
    matrix = model_a.population.features[:50].copy()
    changed = False
    for column in range(matrix.shape[1]):
        probe = matrix.copy()
        probe[7, column] = bug_value()
        as_missing = probe.copy()
        as_missing[7, column] = np.nan
        if abs(model_a.predict(probe[7:8])[0] - model_a.predict(as_missing[7:8])[0]) > 1e-6:
            matrix = probe
            changed = True
            break
    assert changed, "no feature where the value differs from missing: the test would not bite"
    _, buggy = loaded.compiled.predict_batch(matrix)
    assert not buggy.any()  # blink's libraries read every finite double (pyfuncs.library)
    assert np.abs(loaded.predict_batch(matrix) - model_a.predict(matrix)).max() <= 1e-12
    small = matrix[5:9]  # below SMALL_BATCH: the per-row ctypes loop, same results
    assert len(small) <= predictor.SMALL_BATCH
    assert np.abs(loaded.predict_batch(small) - model_a.predict(small)).max() <= 1e-12


def test_batch_of_nothing_and_a_private_library(loaded, model_a):
    assert loaded.predict_batch(np.zeros((0, 7))).shape == (0,)
    art = model_a.artifact
    again = CompiledPredictor(art.compiled_lib, art.compiled_lib_sha256, 7)
    # each load gets its own library object (never a previously loaded model by name)
    assert again.library_path != loaded.compiled.library_path


def test_feature_names_are_quoted_safely_in_the_batch_sql():
    sql = queries.snapshots_by_id_sql(FeatureSpec(["it's", "back\\slash"]), safe=True)
    assert "E'it\\'s'" in sql and "E'back\\\\slash'" in sql
    # and so are categories, inside the jsonb of a categorical feature's codes
    sql = queries.snapshots_by_id_sql(FeatureSpec(["h"], {"h": ["o'k", "a\\b"]}), safe=False)
    assert "o\\'k" in sql and "a\\\\\\\\b" in sql


def test_score_matrix_aligns_scores_decisions_and_bands(loaded, model_a):
    matrix = model_a.population.features[:300]
    scores = loaded.score_batch(matrix)
    expected = model_a.predict(matrix)
    assert np.abs(scores.probabilities - expected).max() <= 1e-9
    assert scores.decisions == [loaded.policy.decide(p)[0] for p in scores.probabilities]
    assert scores.bands == [loaded.policy.decide(p)[1] for p in scores.probabilities]


def test_unpack_rows_reads_ids_epochs_and_values_with_nan_for_missing():
    import struct

    def row(sid, epoch, values):
        return struct.pack(">q", sid) + struct.pack(">d", epoch) + struct.pack(
            f">{len(values)}d", *values)

    data = row(7, 1.5e9, [1.0, float("nan")]) + row(-1, float("nan"), [float("nan")] * 2)
    ids, epochs, m = snapshots.unpack_rows(data, 2, with_epoch=True)
    assert ids.tolist() == [7, -1] and epochs[0] == 1.5e9
    assert m.shape == (2, 2) and m[0, 0] == 1.0 and np.isnan(m[0, 1]) and np.isnan(m[1]).all()
    m[0, 0] = 2.0  # writable: flagged rows are converted in place
    ids, epochs, m = snapshots.unpack_rows(None, 3, with_epoch=False)
    assert m.shape == (0, 3) and epochs is None
    with pytest.raises(ValueError, match="packed rows of 24 bytes"):
        snapshots.unpack_rows(b"\x00" * 30, 2, with_epoch=False)


@pytest.mark.parametrize("args, message", [
    ((0, 10, 100), "max_users"), ((10, 0, 100), "max_seconds"), ((10, -1.5, 100), "max_seconds"),
    ((10, 10, 0), "batch_size"), ((10, 10, rescore.MAX_BATCH + 1), "batch_size"),
    ((10, 10, 100, 0, 0), "workers must be between 1 and 64, got 0"),
    ((10, 10, 100, 0, rescore.MAX_WORKERS + 1), "workers must be between 1 and 64"),
    ((10, 10, 100, 2, 2), r"worker must be between 0 and workers - 1 \(1\), got 2"),
    ((10, 10, 100, -1, 2), "worker must be between 0"), ((10, 10, 100, None, 2), "worker"),
])
def test_run_limits_are_checked(args, message):
    with pytest.raises(BlinkError, match=message):
        rescore.Limits.checked(*args)
    assert rescore.Limits.checked(1, 0.5, 1) == rescore.Limits(1, 0.5, 1, 0, 1)
    assert rescore.Limits.checked(1, 0.5, 1, 3, 4) == rescore.Limits(1, 0.5, 1, 3, 4)
