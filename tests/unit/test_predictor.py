"""The compiled predictor against LightGBM's own predictions, and its safety checks."""

import os
import struct

import numpy as np
import pytest

from pyfuncs import predictor
from pyfuncs.errors import ArtifactIntegrityError
from pyfuncs.features import FeatureSpec
from pyfuncs.integrity import sha256_hex
from pyfuncs.model import ModelCache, load_model
from pyfuncs.predictor import CompiledPredictor
from tests.fix_models import aarch64_copy, model_row


def bug_value() -> float:
    """A finite double whose low 4 bytes are 0xFFFFFFFF (TL2cgen reads it as missing)."""
    return struct.unpack("<d", struct.pack("<Q", 0x40A3880000000000 | 0xFFFFFFFF))[0]


@pytest.fixture(scope="module")
def compiled(model_a):
    a = model_a.artifact
    return CompiledPredictor(a.compiled_lib, a.compiled_lib_sha256, len(a.feature_names))


def test_single_rows_match_lightgbm(compiled, model_a):
    matrix = model_a.population.features[:500]
    expected = model_a.predict(matrix)
    got = np.array([compiled.predict_row(list(row)) for row in matrix])
    assert np.isnan(matrix).any()
    assert np.abs(got - expected).max() <= 1e-12


def test_matrix_matches_lightgbm(compiled, model_a):
    matrix = model_a.population.features
    got, buggy = compiled.predict_matrix(matrix)
    assert not buggy.any()
    assert np.abs(got - model_a.predict(matrix)).max() <= 1e-12


def _bug_row(model_a):
    """A row holding bug_value() in a feature where reading it as missing changes the score."""
    value = bug_value()
    assert np.isfinite(value)
    for column in range(len(model_a.artifact.feature_names)):
        row = model_a.population.features[:1].copy()
        row[0, column] = value
        missing = row.copy()
        missing[0, column] = np.nan
        if abs(model_a.predict(missing)[0] - model_a.predict(row)[0]) > 1e-9:
            return row
    pytest.fail("no feature where missing and the value score differently")


def legacy_library(model_a, tmp_path) -> bytes:
    """The library as tl2cgen.export_lib builds it: no blink entry points (pre-0009 vetting)."""
    import tl2cgen
    import treelite

    path = tmp_path / "legacy.so"
    tl2cgen.export_lib(treelite.frontend.from_lightgbm(model_a.booster), toolchain="gcc",
                       libpath=str(path), verbose=False)
    return path.read_bytes()


def test_blink_libraries_read_values_tl2cgen_would_misread_as_missing(model_a):
    row = _bug_row(model_a)
    expected = model_a.predict(row)[0]
    model = load_model(model_row(model_a.artifact), lambda: model_a.artifact.model_text,
                       print)
    assert model.compiled.stored_scorer is not None
    assert model.compiled.predict_row(list(row[0])) == pytest.approx(expected, abs=1e-12)
    assert model.compiled.stored_scorer(row[0].astype(">f8").tobytes()) == pytest.approx(
        expected, abs=1e-12)
    batch = np.vstack([model_a.population.features[:300], row])
    assert np.abs(model.predict_batch(batch) - model_a.predict(batch)).max() <= 1e-12


def test_stored_vectors_score_like_lightgbm(compiled, model_a):
    matrix = model_a.population.features[:400]
    expected = model_a.predict(matrix)
    one = np.array([compiled.stored_scorer(r.astype(">f8").tobytes()) for r in matrix])
    assert np.abs(one - expected).max() <= 1e-12


def test_older_libraries_score_misread_values_with_lightgbm(model_a, tmp_path):
    lib = legacy_library(model_a, tmp_path)
    row = _bug_row(model_a)
    expected = model_a.predict(row)[0]
    warnings = []
    model = load_model(model_row(model_a.artifact, compiled_lib=lib,
                                 compiled_lib_sha256=sha256_hex(lib)),
                       lambda: model_a.artifact.model_text, warnings.append)
    assert model.compiled.stored_scorer is None
    assert model.compiled.predict_row(list(row[0])) is None
    assert model.predict_row(list(row[0])) == pytest.approx(expected, abs=1e-12)
    for size in (3, 300):  # the per-row loop for tiny batches, TL2cgen's runtime beyond
        batch = np.vstack([model_a.population.features[:size], row])
        assert np.abs(model.predict_batch(batch) - model_a.predict(batch)).max() <= 1e-12
    assert warnings == []


def test_hash_mismatch_is_refused_before_loading(model_a, monkeypatch):
    loaded = []
    monkeypatch.setattr(predictor, "_write_library", lambda data: loaded.append(data))
    lib = bytearray(model_a.artifact.compiled_lib)
    lib[len(lib) // 2] ^= 0xFF
    tampered = bytes(lib)
    with pytest.raises(ArtifactIntegrityError, match="sha256 mismatch"):
        CompiledPredictor(tampered, model_a.artifact.compiled_lib_sha256, 7)
    with pytest.raises(ArtifactIntegrityError):
        load_model(model_row(model_a.artifact, compiled_lib=tampered), lambda: "", print)
    assert loaded == []


def test_feature_count_must_match_the_library(model_a):
    a = model_a.artifact
    with pytest.raises(ArtifactIntegrityError, match="expects 7 features"):
        CompiledPredictor(a.compiled_lib, a.compiled_lib_sha256, 8)


def test_unloadable_library_falls_back_to_lightgbm_with_a_warning(model_a, tmp_path,
                                                                   monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # where a disk copy would be left behind
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", None)
    foreign = aarch64_copy(model_a.artifact.compiled_lib)
    warnings = []
    row = model_row(model_a.artifact, compiled_lib=foreign,
                    compiled_lib_sha256=sha256_hex(foreign))
    model = load_model(row, lambda: model_a.artifact.model_text, warnings.append)
    assert model.engine == "lightgbm"
    assert len(warnings) == 1 and "cannot be loaded" in warnings[0]
    matrix = model_a.population.features[:200]
    got = [model.predict_row(list(r)) for r in matrix]
    assert np.abs(np.array(got) - model_a.predict(matrix)).max() <= 1e-12
    assert list(tmp_path.iterdir()) == []




class _Model:
    def __init__(self, model_id, closed):
        self.model_id, self.closed = model_id, closed

    def close(self):
        self.closed.append(self.model_id)


def test_cache_reuses_evicts_oldest_and_closes_what_it_evicts():
    loads, closed = [], []

    def load(model_id):
        loads.append(model_id)
        return _Model(model_id, closed)

    cache = ModelCache(capacity=2)
    first = cache.get(1, load)
    assert cache.get(1, load) is first
    cache.get(2, load)
    cache.get(1, load)  # 1 is now the most recent
    cache.get(3, load)  # evicts 2
    assert 2 not in cache and 1 in cache and 3 in cache
    assert loads == [1, 2, 3] and closed == [2]
    cache.get(1, load)  # the most recent is never the one evicted
    cache.get(4, load)  # evicts 3
    assert cache.get(4, load).model_id == 4 and cache.get(1, load).model_id == 1
    assert loads == [1, 2, 3, 4] and closed == [2, 3]


def test_cache_holds_at_least_one_model():
    with pytest.raises(ValueError, match="at least one model"):
        ModelCache(capacity=0)


def _model_mappings() -> set[str]:
    with open("/proc/self/maps") as maps:
        return {line.split()[4] for line in maps if "blink-model" in line}  # inodes


def test_closing_a_model_unloads_its_library_and_memory_file(model_a):
    before = set(os.listdir("/proc/self/fd"))
    mapped = _model_mappings()
    artifact = model_a.artifact
    for _ in range(20):
        compiled = CompiledPredictor(artifact.compiled_lib, artifact.compiled_lib_sha256,
                                     len(artifact.feature_names))
        compiled.predict_batch(model_a.population.features[:50])  # TL2cgen's runtime too
        path = compiled.library_path
        compiled.close()
        compiled.close()  # twice is harmless
    assert set(os.listdir("/proc/self/fd")) <= before
    assert _model_mappings() <= mapped, path


def test_categorical_model_agrees_with_lightgbm_on_compiled_and_fallback_paths(model_cat):
    """Both engines, per row and per batch, against LightGBM encoding the raw values itself."""
    import json

    a = model_cat.artifact
    expected = model_cat.lightgbm_predict(model_cat.documents)
    foreign = aarch64_copy(a.compiled_lib)
    warnings: list[str] = []
    for lib in (a.compiled_lib, foreign):
        row = model_row(a, compiled_lib=lib, compiled_lib_sha256=sha256_hex(lib),
                        feature_categories=json.dumps(a.feature_categories))
        model = load_model(row, lambda: a.model_text, warnings.append)
        matrix = np.array([model.spec.vector(d, allow_unknown=False, where="")
                           for d in model_cat.documents])
        rows = np.array([model.predict_row(list(r)) for r in matrix])
        assert np.abs(rows - expected).max() <= 1e-12, model.engine
        assert np.abs(model.predict_batch(matrix) - expected).max() <= 1e-12, model.engine
    assert model.engine == "lightgbm" and len(warnings) == 1


def test_model_libraries_explain_exactly_like_lightgbm(compiled, model_a, model_cat):
    matrix = model_a.population.features[:300]
    assert compiled.has_shap
    expected = model_a.booster.predict(matrix, pred_contrib=True, num_threads=1)
    assert np.abs(compiled.contributions(matrix) - expected).max() <= 1e-9
    a = model_cat.artifact
    cat = CompiledPredictor(a.compiled_lib, a.compiled_lib_sha256, len(a.feature_names))
    frame_codes = np.array([FeatureSpec(a.feature_names, a.feature_categories).vector(
        d, allow_unknown=True, where="") for d in model_cat.documents[:300]])
    expected = model_cat.booster.predict(frame_codes, pred_contrib=True, num_threads=1)
    assert np.abs(cat.contributions(frame_codes) - expected).max() <= 1e-9


def test_the_library_is_a_module_that_refuses_rows_of_another_length(compiled, model_a):
    row = model_a.population.features[0]
    n = 8 * len(row)
    with pytest.raises(ValueError, match=f"{n - 8} bytes, the library reads {n}"):
        compiled.stored_scorer(row.astype(">f8").tobytes()[:-8])
    with pytest.raises(ValueError, match=f"{n + 1} bytes, the library reads {n}"):
        compiled.stored_scorer(row.astype(">f8").tobytes() + b"x")
    with pytest.raises(TypeError):
        compiled.stored_scorer("not bytes")
    with pytest.raises(ValueError, match="3 feature values, the library reads"):
        compiled.predict_row([1.0, 2.0, 3.0])
    with pytest.raises(TypeError):
        compiled.predict_row([1.0] * (len(row) - 1) + ["x"])


def test_a_library_still_referred_to_stays_loaded_after_close(model_a):
    """Code that may still run is never unmapped; its memory file stays open meanwhile."""
    a = model_a.artifact
    compiled = CompiledPredictor(a.compiled_lib, a.compiled_lib_sha256, len(a.feature_names))
    row = model_a.population.features[0]
    scorer = compiled.stored_scorer
    compiled.close()
    assert scorer(row.astype(">f8").tobytes()) == pytest.approx(model_a.predict(row[None])[0],
                                                                abs=1e-12)
    assert os.path.exists(compiled.library_path)  # the /proc/self/fd name is not reused


def test_single_scores_never_import_ctypes(model_a, tmp_path):
    """A session's first score pays no ctypes import (~8 ms in the server); batches do."""
    import subprocess
    import sys

    (tmp_path / "lib.so").write_bytes(model_a.artifact.compiled_lib)
    row = model_a.population.features[0]
    script = f"""
import sys
from pyfuncs.predictor import CompiledPredictor
compiled = CompiledPredictor.from_file({str(tmp_path / "lib.so")!r}, {len(row)})
print(compiled.stored_scorer(bytes.fromhex({row.astype(">f8").tobytes().hex()!r})))
print(compiled.predict_row({[float(v) for v in row]!r}))
print("ctypes" in sys.modules, "_ctypes" in sys.modules)
compiled.predict_matrix([{[float(v) for v in row]!r}])
print("ctypes" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", script.replace("nan", "float('nan')")],
                         capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(predictor.__file__))).stdout.split("\n")
    expected = model_a.predict(row[None])[0]
    assert float(out[0]) == pytest.approx(expected, abs=1e-12)
    assert float(out[1]) == pytest.approx(expected, abs=1e-12)
    assert out[2:4] == ["False False", "True"]


def test_a_score_fetches_neither_the_decision_policy_nor_the_layout(model_a):
    # blink_score returns a probability: a session's first one must not pay for the bands
    # or the feature layout (a query each); decisions and batches fetch them once.
    fetched = []
    row = model_row(model_a.artifact)

    def policy_row():
        fetched.append("policy")
        return row

    def layout():
        fetched.append("layout")
        return "the layout"

    model = load_model({k: v for k, v in row.items() if not k.startswith("band")},
                       lambda: model_a.artifact.model_text, print,
                       fetch_layout=layout, fetch_policy_row=policy_row)
    expected = model_a.predict(model_a.population.features[:1])[0]
    vector = model_a.population.features[0].astype(">f8").tobytes()
    assert model.predict_stored(vector) == pytest.approx(expected, abs=1e-12)
    assert fetched == []
    decision, band = model.policy.decide(0.99)
    assert (decision, band) == ("declined", model_a.artifact.risk_bands[-1]["band"])
    assert model.layout == model.layout == "the layout"
    assert model.policy is model.policy
    assert fetched == ["policy", "layout"]
