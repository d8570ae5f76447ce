"""Model fixtures: small real LightGBM models on synthetic borrowers, compiled by TL2cgen."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from trainer import synthetic
from trainer.artifacts import ModelArtifact, build_artifact
from trainer.training import fit_booster


@dataclass
class TrainedModel:
    booster: object
    artifact: ModelArtifact
    population: synthetic.Population

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        return self.booster.predict(matrix, num_threads=1)  # type: ignore[attr-defined]


def trained(version: str, n_users: int, rounds: int, seed: int) -> TrainedModel:
    population = synthetic.generate(n_users, seed=seed)
    booster = fit_booster(population.features, population.defaulted, synthetic.FEATURES,
                          num_boost_round=rounds, seed=seed)
    artifact = build_artifact(booster, version, decision_threshold=0.2)
    return TrainedModel(booster, artifact, population)


def model_row(artifact: ModelArtifact, **overrides) -> dict:
    """The row pyfuncs.model.load_model reads, as the server's "model" query returns it
    (with the library's bytes, as a session that has no library file yet fetches them)."""
    row = {
        "id": 1, "version": artifact.version, "feature_names": artifact.feature_names,
        "compiled_lib": artifact.compiled_lib, "compiled_lib_sha256": artifact.compiled_lib_sha256,
        "compiled_lib_size": len(artifact.compiled_lib),
        "decision_threshold": artifact.decision_threshold,
        "band_names": [band["band"] for band in artifact.risk_bands],
        "band_bounds": [band["max_probability"] for band in artifact.risk_bands],
    }
    row.update(overrides)
    return row


def aarch64_copy(library: bytes) -> bytes:
    """The same ELF library relabelled for AArch64: what a foreign-architecture build looks like."""
    data = bytearray(library)
    assert data[:4] == b"\x7fELF"
    data[18:20] = (183).to_bytes(2, "little")  # e_machine = EM_AARCH64
    return bytes(data)


@pytest.fixture(scope="session")
def model_a() -> TrainedModel:
    """A small real model: LightGBM trained on synthetic borrowers, compiled by TL2cgen."""
    return trained("test-a", 1200, 60, seed=11)


@pytest.fixture(scope="session")
def model_b() -> TrainedModel:
    """A second, different model (other data and size) for promotion tests."""
    return trained("test-b", 1500, 90, seed=12)


# --- a model with categorical features ---------------------------------------------------------

REGIONS = [f"region-{i:03d}" for i in range(300)]  # high cardinality
HOUSING = ["free", "mortgage", "own", "rent"]
CAT_NAMES = ["income", "debt", "region", "housing", "direct_deposit"]


@dataclass
class CategoricalModel:
    """A model trained on documents with text and boolean features, and documents to score.

    ``documents`` hold what scoring must handle: known categories, unseen ones ("castle",
    a region never seen, the string "true" for a boolean), missing keys and nulls.
    """

    booster: object
    artifact: ModelArtifact
    user_ids: list[str]
    documents: list[dict]

    def lightgbm_predict(self, documents: list[dict], **kwargs) -> np.ndarray:
        """LightGBM's own prediction from the raw values: a DataFrame with category columns,
        which LightGBM maps to codes itself with the model text's pandas_categorical."""
        import pandas as pd

        frame = pd.DataFrame({name: [d.get(name) for d in documents] for name in CAT_NAMES})
        for name in ("region", "housing", "direct_deposit"):
            frame[name] = frame[name].astype("object").astype("category")
        for name in ("income", "debt"):
            frame[name] = frame[name].astype("float64")
        return self.booster.predict(frame, num_threads=1, **kwargs)  # type: ignore[attr-defined]


def categorical_documents(n: int, rng: np.random.Generator, unseen: bool) -> tuple[list[dict],
                                                                                  np.ndarray]:
    """Documents with numbers, a 300-category region, housing and a boolean; and labels."""
    income = rng.lognormal(np.log(2500), 0.4, n)
    debt = rng.gamma(2.0, 0.2, n)
    region = rng.integers(0, len(REGIONS), n)
    housing = rng.integers(0, len(HOUSING), n)
    deposit = rng.random(n) < 0.6
    logit = (-1.5 - 0.8 * np.log(income / 2500) + 1.2 * debt + 0.9 * (housing == 3)
             - 0.6 * (housing == 2) + 0.7 * (region % 7 == 0) - 0.8 * deposit)
    labels = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    docs = []
    for i in range(n):
        doc: dict = {"income": round(float(income[i]), 2), "debt": round(float(debt[i]), 4),
                     "region": REGIONS[region[i]], "housing": HOUSING[housing[i]],
                     "direct_deposit": bool(deposit[i])}
        for name in CAT_NAMES:
            draw = rng.random()
            if draw < 0.04:
                del doc[name]  # absent
            elif draw < 0.06:
                doc[name] = None  # null
        if unseen and rng.random() < 0.08:
            doc["housing"] = "castle"
        if unseen and rng.random() < 0.05:
            doc["region"] = "region-999"
        if unseen and rng.random() < 0.03:
            doc["direct_deposit"] = "true"  # a string, not the boolean the model knows
        docs.append(doc)
    return docs, labels


@pytest.fixture(scope="session")
def model_cat() -> CategoricalModel:
    """A real model with categorical features, trained through blink's own encoding."""
    from pyfuncs.features import FeatureSpec

    rng = np.random.default_rng(31)
    train_docs, labels = categorical_documents(3000, rng, unseen=False)
    spec = FeatureSpec(CAT_NAMES, {"region": REGIONS, "housing": HOUSING,
                                   "direct_deposit": [False, True]})
    matrix = np.array([spec.vector(d, allow_unknown=False, where="") for d in train_docs])
    booster = fit_booster(matrix, labels, spec, num_boost_round=80, seed=31,
                          params={"min_data_in_leaf": 20, "min_data_per_group": 10,
                                  "cat_smooth": 5})
    artifact = build_artifact(booster, "test-cat", decision_threshold=0.3)
    docs, _ = categorical_documents(1200, rng, unseen=True)
    return CategoricalModel(booster, artifact, [f"cat-{i}" for i in range(len(docs))], docs)
