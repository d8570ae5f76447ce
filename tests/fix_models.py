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
