"""A model's artifacts as blink stores them: model text, compiled library, hashes, versions."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

DEFAULT_RISK_BANDS = [
    {"band": "A", "max_probability": 0.05},
    {"band": "B", "max_probability": 0.10},
    {"band": "C", "max_probability": 0.20},
    {"band": "D", "max_probability": 0.35},
    {"band": "E", "max_probability": 1.0},
]


@dataclass
class ModelArtifact:
    """Everything one ``blink.blink_models`` row holds."""

    version: str
    feature_names: list[str]
    model_text: str
    compiled_lib: bytes
    compiled_lib_sha256: str
    compiled_platform: str
    decision_threshold: float
    risk_bands: list[dict[str, Any]] = field(default_factory=lambda: list(DEFAULT_RISK_BANDS))
    metrics: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    library_versions: dict[str, str] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        """Column values for INSERT, JSON columns serialised."""
        values = asdict(self)
        for column in ("risk_bands", "metrics", "params", "library_versions"):
            values[column] = json.dumps(values[column], sort_keys=True)
        return values


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def platform_tag() -> str:
    """machine-os-libc of this host, e.g. x86_64-linux-glibc2.36: where a library can load."""
    libc, libc_version = platform.libc_ver()
    return f"{platform.machine()}-{platform.system().lower()}-{libc}{libc_version}"


def library_versions() -> dict[str, str]:
    names = ("lightgbm", "treelite", "tl2cgen", "numpy")
    return {name: metadata.version(name) for name in names}


def compile_library(booster: Any) -> bytes:
    """Compile a LightGBM booster to a shared library with Treelite + TL2cgen (gcc)."""
    import tl2cgen
    import treelite

    model = treelite.frontend.from_lightgbm(booster)
    with tempfile.TemporaryDirectory(prefix="blink-compile-") as tmp:
        libpath = Path(tmp) / "model.so"
        tl2cgen.export_lib(
            model,
            toolchain="gcc",
            libpath=str(libpath),
            params={"parallel_comp": max(1, os.cpu_count() or 1)},
            nthread=max(1, os.cpu_count() or 1),
            verbose=False,
        )
        return libpath.read_bytes()


def build_artifact(
    booster: Any,
    version: str,
    *,
    decision_threshold: float = 0.5,
    risk_bands: list[dict[str, Any]] | None = None,
    metrics: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
) -> ModelArtifact:
    """Package a trained booster: model text, compiled library and their provenance."""
    library = compile_library(booster)
    return ModelArtifact(
        version=version,
        feature_names=list(booster.feature_name()),
        model_text=booster.model_to_string(),
        compiled_lib=library,
        compiled_lib_sha256=sha256_hex(library),
        compiled_platform=platform_tag(),
        decision_threshold=decision_threshold,
        risk_bands=risk_bands or list(DEFAULT_RISK_BANDS),
        metrics=metrics or {},
        params=params or {},
        library_versions=library_versions(),
    )
