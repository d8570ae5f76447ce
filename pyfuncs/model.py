"""Model loading, in one place: a ``blink_models`` row to a scoring-ready model, cached per session.

``loaded(plpy, GD, model_id)`` is the only way pyfuncs gets a model: from the session cache
(GD), or fetched, hash-checked and loaded once. Rows are immutable, so a cached id never
needs invalidating; a new champion is a new id.
"""

from __future__ import annotations

from pyfuncs import library_files, queries
from pyfuncs._typing import Any, Callable, Sequence
from pyfuncs.decision import DecisionPolicy
from pyfuncs.errors import (
    ArtifactIntegrityError,
    NoChampionError,
    NotVettedError,
    UnknownModelError,
)
from pyfuncs.features import FeatureSpec
from pyfuncs.predictor import BoosterPredictor, CompiledPredictor

CACHE_KEY = "blink.models"
CACHE_CAPACITY = 3  # champion, a challenger and the previous champion during a switch


class BatchScores:
    """Scores of one batch, aligned with its rows."""

    __slots__ = ("probabilities", "decisions", "bands")

    def __init__(self, probabilities: Any, decisions: list[str], bands: list[str]) -> None:
        self.probabilities = probabilities  # float64 ndarray
        self.decisions = decisions
        self.bands = bands


class LoadedModel:
    """One ``blink_models`` row, loaded. ``compiled`` is None when the library cannot load.

    A plain class, not a dataclass: importing dataclasses costs ~10 ms of every new
    session's first call inside the server.
    """

    __slots__ = ("id", "version", "spec", "compiled", "fetch_model_text", "_fetch_policy",
                 "_policy", "_fetch_layout", "_layout", "_booster", "_stored", "_vector_bytes")

    def __init__(self, id: int, version: str, spec: FeatureSpec,
                 fetch_policy: Callable[[], DecisionPolicy],
                 compiled: CompiledPredictor | None, fetch_model_text: Callable[[], str],
                 fetch_layout: Callable[[], str | None] | None = None) -> None:
        self.id = id
        self.version = version
        self.spec = spec  # feature names and categories: how a document becomes a row
        self.compiled = compiled
        self.fetch_model_text = fetch_model_text
        # Fetched on first use: blink_score needs neither, and each is a query with cold
        # catalogs in a session's first call (~0.35 ms for the bands, ~0.7 ms for the layout).
        self._fetch_policy = fetch_policy
        self._policy: DecisionPolicy | None = None
        self._fetch_layout = fetch_layout
        self._layout: str | None = None
        self._booster: BoosterPredictor | None = None
        self._stored: Any = None  # how predict_stored scores, chosen on first use
        self._vector_bytes = 8 * len(spec)  # a stored vector's length for this model

    def __repr__(self) -> str:
        return f"LoadedModel(id={self.id}, version={self.version!r}, engine={self.engine})"

    @property
    def feature_names(self) -> list[str]:
        return self.spec.names

    @property
    def policy(self) -> DecisionPolicy:
        """The model's decision threshold and risk bands (decisions, not probabilities)."""
        if self._policy is None:
            self._policy = self._fetch_policy()
        return self._policy

    @property
    def layout(self) -> str | None:
        """blink.feature_layout of this model: which stored vectors its batches read."""
        if self._layout is None and self._fetch_layout is not None:
            self._layout = self._fetch_layout()
            self._fetch_layout = None
        return self._layout

    @property
    def booster(self) -> BoosterPredictor:
        """LightGBM's predictor, built from the model text on first use."""
        if self._booster is None:
            self._booster = BoosterPredictor(self.fetch_model_text())
        return self._booster

    def close(self) -> None:
        """Release the compiled library (called when the cache drops this model)."""
        if self.compiled is not None:
            self._stored = None  # first: it may hold the library's scorer (and so its module)
            self.compiled.close()
            self.compiled = None

    @property
    def engine(self) -> str:
        return "compiled" if self.compiled is not None else "lightgbm"

    def predict_row(self, values: Sequence[float]) -> float:
        if self.compiled is not None:
            probability = self.compiled.predict_row(values)
            if probability is not None:
                return probability
        return self.booster.predict_row(values)

    def contributions(self, matrix: Any) -> Any:
        """Exact TreeSHAP values (n, features + 1), base value last: the library's own
        ``blink_shap`` when it has one (checked against LightGBM when vetted), else LightGBM."""
        if self.compiled is not None and self.compiled.has_shap:
            return self.compiled.contributions(matrix)
        return self.booster.contributions(matrix)

    def predict_stored(self, vector: bytes) -> float:
        """Probability for a stored feature vector (big-endian float8s in ``feature_names``
        order, NaN missing), built for this model's layout."""
        if len(vector) != self._vector_bytes:
            raise ArtifactIntegrityError(f"a stored feature vector of {len(vector)} bytes, "
                                         f"model {self.id} reads {self._vector_bytes}")
        if self._stored is None:
            compiled = self.compiled
            if compiled is not None and compiled.stored_scorer is not None:
                self._stored = compiled.stored_scorer
            else:  # an older library, or LightGBM: the values as Python floats
                import struct

                unpack = struct.Struct(f">{len(self.spec)}d").unpack
                self._stored = lambda v: self.predict_row(unpack(v))
        return self._stored(vector)  # type: ignore[no-any-return]

    def predict_batch(self, matrix: Any) -> Any:
        """Probabilities for a float64 matrix, one native call for the whole batch.

        Rows TL2cgen would misread (see pyfuncs.predictor) are scored by LightGBM.
        """
        import numpy as np

        matrix = np.asarray(matrix, dtype=np.float64).reshape(-1, len(self.feature_names))
        if self.compiled is None:
            return self.booster.predict_matrix(matrix)
        probabilities, buggy = self.compiled.predict_batch(matrix)
        if buggy.any():
            probabilities[buggy] = self.booster.predict_matrix(matrix[buggy])
        return probabilities

    def score_batch(self, matrix: Any) -> BatchScores:
        """Probabilities, decisions and bands of a matrix (``feature_names`` order, NaN missing)."""
        probabilities = self.predict_batch(matrix)
        decisions, bands = self.policy.decide_many(probabilities)
        return BatchScores(probabilities, decisions, bands)


def load_model(row: dict[str, Any], fetch_model_text: Callable[[], str],
               warn: Callable[[str], None], *,
               fetch_layout: Callable[[], str | None] | None = None,
               fetch_policy_row: Callable[[], dict[str, Any]] | None = None,
               library_dir: str | None = None,
               fetch_library: Callable[[], bytes] | None = None,
               after_store: Callable[[], Any] | None = None) -> LoadedModel:
    """Build a LoadedModel from a ``blink_models`` row (without its model text).

    The library comes from its file in ``library_dir`` when one was written (see
    pyfuncs.library_files), else from ``fetch_library()`` (by default ``row["compiled_lib"]``),
    hash-checked (and then written there, after which ``after_store()`` runs). A library
    whose hash does not match is refused outright (never executed, never replaced by the
    fallback: the row itself is suspect). A library that merely cannot be loaded here
    (another architecture or libc) falls back to LightGBM with a warning.

    Fetched when first needed: ``fetch_layout()``, the model's feature layout, and
    ``fetch_policy_row()``, its threshold and bands (by default from ``row``).
    """
    spec = FeatureSpec.from_json(row["feature_names"], row.get("feature_categories"))
    compiled: CompiledPredictor | None
    try:
        compiled = _compiled(row, len(spec), library_dir,
                             fetch_library or (lambda: bytes(row["compiled_lib"])), after_store)
    except ArtifactIntegrityError as exc:
        raise ArtifactIntegrityError(f"model {row['id']} ({row['version']}): {exc}") from None
    except OSError as exc:
        warn(
            f"blink: model {row['id']} ({row['version']}): compiled library cannot be loaded "
            f"on this server ({exc}); scoring with LightGBM from the model text instead "
            "(slower, same predictions)"
        )
        compiled = None
    return LoadedModel(
        id=int(row["id"]),
        version=row["version"],
        spec=spec,
        fetch_policy=lambda: policy_of(fetch_policy_row() if fetch_policy_row else row),
        compiled=compiled,
        fetch_model_text=fetch_model_text,
        fetch_layout=fetch_layout,
    )


def policy_of(row: dict[str, Any]) -> DecisionPolicy:
    """A model's DecisionPolicy from a row with ``decision_threshold``, ``band_names`` and
    ``band_bounds``. The bands come as two arrays (SQL unpacks the JSON): json costs a
    session ~20 ms to import."""
    return DecisionPolicy.from_model(row["decision_threshold"], [
        {"band": name, "max_probability": bound}
        for name, bound in zip(row["band_names"], row["band_bounds"], strict=True)])


def _compiled(row: dict[str, Any], num_features: int, library_dir: str | None,
              fetch_library: Callable[[], bytes],
              after_store: Callable[[], Any] | None) -> CompiledPredictor:
    sha256 = row["compiled_lib_sha256"]
    if library_dir is not None:
        path = library_files.find(library_dir, sha256, row["compiled_lib_size"])
        if path is not None:
            return CompiledPredictor.from_file(path, num_features)
    library = fetch_library()
    if library_dir is not None:
        path = library_files.store(library_dir, library, sha256)
        if path is not None:
            predictor = CompiledPredictor.from_file(path, num_features)
            if after_store is not None:
                after_store()
            return predictor
    return CompiledPredictor(library, sha256, num_features)


class ModelCache:
    """Loaded models by id, least recently used dropped beyond ``capacity``."""

    def __init__(self, capacity: int = CACHE_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError(f"a model cache holds at least one model, not {capacity}")
        self.capacity = capacity
        self._models: dict[int, LoadedModel] = {}  # least recently used first

    def get(self, model_id: int, load: Callable[[int], LoadedModel]) -> LoadedModel:
        models = self._models
        if models and next(reversed(models)) == model_id:  # the usual case: the champion
            return models[model_id]  # already the most recent: nothing to reorder
        model = models.pop(model_id, None)
        if model is None:
            model = load(model_id)
        models[model_id] = model  # (re)inserted last: the most recently used
        while len(models) > self.capacity:
            evicted = models.pop(next(iter(models)))
            evicted.close()  # its mapping (and memory file, if any) go with it
        return model

    def __contains__(self, model_id: int) -> bool:
        return model_id in self._models


def session_cache(GD: dict) -> ModelCache:
    cache = GD.get(CACHE_KEY)
    if cache is None:
        cache = GD[CACHE_KEY] = ModelCache()
    return cache


def loaded(plpy: Any, GD: dict, model_id: int | None) -> LoadedModel:
    """Model ``model_id`` (the champion's id, usually) ready to score, from the session cache.

    ``None`` means "no champion": NoChampionError.
    """
    if model_id is None:
        raise NoChampionError()
    return session_cache(GD).get(int(model_id), lambda mid: _load(plpy, GD, mid))


def _load(plpy: Any, GD: dict, mid: int) -> LoadedModel:
    """Fetch, check and load model ``mid`` (a cache miss of ``loaded``)."""
    row = queries.one(plpy, GD, "model", mid)
    if row is None:
        raise UnknownModelError(f"no model with id {mid} in blink.blink_models")
    if not row["vetted"]:
        raise NotVettedError(f"model {mid} ({row['version']}) has not been vetted: blink "
                             "runs only libraries it built itself")

    def fetch_text() -> str:
        return queries.one(plpy, GD, "model_text", mid)["model_text"]  # type: ignore[index]

    def fetch_library() -> bytes:
        return queries.one(plpy, GD, "model_library", mid)["compiled_lib"]  # type: ignore[index]

    # The row names the library directory: no query of its own on a session's first call.
    # A new file there is this server's first load of this model: a standby's sessions
    # prune when they load a new champion (its promotion happened on the primary).
    def fetch_layout() -> str | None:
        return queries.one(plpy, GD, "model_layout", mid)["feature_layout"]  # type: ignore[index]

    def fetch_policy_row() -> dict[str, Any]:
        return queries.one(plpy, GD, "model_policy", mid)  # type: ignore[return-value]

    return load_model(row, fetch_text, plpy.warning, fetch_layout=fetch_layout,
                      fetch_policy_row=fetch_policy_row,
                      fetch_library=fetch_library,
                      library_dir=library_files.directory_in(row["data_directory"],
                                                             row["database_oid"]),
                      after_store=lambda: prune_library_files(plpy, GD))


def prune_library_files(plpy: Any, GD: dict) -> list[str]:
    """Delete this database's library files that blink would not run without another
    promotion (pyfuncs.library_files.prune); after a new file, a promotion or a rollback."""
    kept = queries.one(plpy, GD, "kept_libraries")
    assert kept is not None
    return library_files.prune(
        library_files.directory_in(kept["data_directory"], kept["database_oid"]),
        set(kept["hashes"]))


def champion(plpy: Any, GD: dict) -> LoadedModel:
    """The champion model, loaded."""
    row = queries.one(plpy, GD, "champion")
    return loaded(plpy, GD, row["model_id"] if row else None)
