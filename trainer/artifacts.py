"""A model's artifacts as blink stores them: model text, compiled library, hashes, versions."""

from __future__ import annotations

import json
import platform
import tempfile
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from pyfuncs.decision import DEFAULT_RISK_BANDS
from pyfuncs.integrity import sha256_hex


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
    model_text_sha256: str | None = None
    treelite_model: bytes | None = None  # treelite.Model.serialize_bytes()
    treelite_model_sha256: str | None = None
    report_html: str | None = None
    feature_categories: dict[str, list[str | bool]] | None = None  # None: all numeric
    monitoring_reference: dict[str, Any] | None = None  # trainer.monitoring.reference

    def row(self) -> dict[str, Any]:
        """Column values for INSERT, JSON columns serialised."""
        values = asdict(self)
        for column in ("risk_bands", "metrics", "params", "library_versions"):
            values[column] = json.dumps(values[column], sort_keys=True)
        for column in ("feature_categories", "monitoring_reference"):
            if values[column] is not None:
                values[column] = json.dumps(values[column])
        return values


def platform_tag() -> str:
    """machine-os-libc of this host, e.g. x86_64-linux-glibc2.36: where a library can load."""
    libc, libc_version = platform.libc_ver()
    return f"{platform.machine()}-{platform.system().lower()}-{libc}{libc_version}"


def library_versions() -> dict[str, str]:
    """Versions of the libraries that built and compiled the model."""
    names = ("lightgbm", "treelite", "tl2cgen", "numpy")
    return {name: metadata.version(name) for name in names}


def treelite_model(booster: Any) -> Any:
    """The Treelite model of a LightGBM booster."""
    import treelite

    return treelite.frontend.from_lightgbm(booster)


def compile_library(booster: Any, model: Any = None) -> bytes:
    """Compile a LightGBM booster (or its Treelite ``model``) to a shared library (gcc), the
    same build the server's vetting makes (pyfuncs.library)."""
    from pyfuncs.library import build_library

    model = model if model is not None else treelite_model(booster)
    with tempfile.TemporaryDirectory(prefix="blink-compile-") as tmp:
        libpath = Path(tmp) / "model.so"
        build_library(model, libpath, shap_dump=booster.dump_model())
        return libpath.read_bytes()


def feature_categories(booster: Any, model_text: str) -> dict[str, list[str | bool]] | None:
    """{feature: categories} of the booster's categorical features, from LightGBM's own record
    (``model_text`` is the booster's, already written out)."""
    lists = booster.pandas_categorical
    if not lists:
        return None
    names = list(booster.feature_name())
    from pyfuncs.vet_worker import categorical_indices

    indices = categorical_indices(model_text)
    if len(indices) != len(lists):
        raise ValueError(f"the model has {len(indices)} categorical features but "
                         f"{len(lists)} category lists")
    return {names[j]: list(c) for j, c in zip(indices, lists, strict=True)}


def build_artifact(
    booster: Any,
    version: str,
    *,
    decision_threshold: float = 0.5,
    risk_bands: list[dict[str, Any]] | None = None,
    metrics: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
) -> ModelArtifact:
    """Package a trained booster: model text, Treelite model, compiled library, hashes.

    Parameters
    ----------
    booster : a trained ``lightgbm.Booster``; its categorical features' categories are read
        from the booster (``pandas_categorical``, see trainer.training.record_categories).
    version : the model's unique version label.
    decision_threshold, risk_bands, metrics, params : stored with the model as given.
    """
    model = treelite_model(booster)
    library = compile_library(booster, model)
    serialized = bytes(model.serialize_bytes())
    text = booster.model_to_string()
    return ModelArtifact(
        feature_categories=feature_categories(booster, text),
        version=version,
        feature_names=list(booster.feature_name()),
        model_text=text,
        compiled_lib=library,
        compiled_lib_sha256=sha256_hex(library),
        compiled_platform=platform_tag(),
        decision_threshold=decision_threshold,
        risk_bands=risk_bands or list(DEFAULT_RISK_BANDS),
        metrics=metrics or {},
        params=params or {},
        library_versions=library_versions(),
        model_text_sha256=sha256_hex(text.encode("utf-8")),
        treelite_model=serialized,
        treelite_model_sha256=sha256_hex(serialized),
    )
