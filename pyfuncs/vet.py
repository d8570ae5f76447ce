"""Checking a model row before blink relies on it. A row the trainer writes is data only.

* On insert (the ``blink_models`` trigger): every artifact matches its sha256, feature names
  are distinct, the threshold and risk bands are sound (``pyfuncs.decision``, the same check
  that runs when the model is loaded), the monitoring reference has the shape monitoring
  reads, and a row without bands gets the default ones, stored in the row. Cheap checks
  only: JSON is read, nothing is executed.
* Before a model is used (``blink_promote``, ``blink_shadow_add``, upgrades): ``vet_model``
  parses and compiles the model text in a separate process (pyfuncs.vet_worker) and stores
  the library the server built. The trainer's own compiled library is never loaded.
"""

from __future__ import annotations

import json
import os

from pyfuncs._typing import Any
from pyfuncs.decision import DEFAULT_RISK_BANDS, DecisionPolicy
from pyfuncs.errors import ArtifactIntegrityError, InvalidArgumentError
from pyfuncs.integrity import sha256_hex


def _check_hash(data: bytes, stored: str | None, column: str) -> None:
    computed = sha256_hex(data)
    if stored is None or stored.lower() != computed:
        raise ArtifactIntegrityError(
            f"{column}_sha256 {stored} does not match the sha256 of {column} ({computed})",
            hint=f"Store the sha256 (hex) of the exact {column} bytes you insert.")


def check_new_model(row: dict[str, Any]) -> bool:
    """Check a ``blink_models`` row about to be inserted; fill its defaults.

    Returns whether ``row`` was changed. Raises ArtifactIntegrityError (a hash does not
    match) or InvalidArgumentError (a field is unusable), naming the field.
    """
    _check_hash(bytes(row["compiled_lib"]), row["compiled_lib_sha256"], "compiled_lib")
    if row.get("model_text_sha256") is not None:
        _check_hash(row["model_text"].encode("utf-8"), row["model_text_sha256"], "model_text")
    if row.get("treelite_model") is not None:
        _check_hash(bytes(row["treelite_model"]), row.get("treelite_model_sha256"),
                    "treelite_model")
    names = list(row["feature_names"] or [])
    if not names or any(not isinstance(n, str) or not n for n in names):
        raise InvalidArgumentError(f"feature_names must be non-empty names, got {names!r}")
    if len(set(names)) != len(names):
        raise InvalidArgumentError(f"feature_names must be distinct, got {names!r}")
    from pyfuncs.errors import FeatureError
    from pyfuncs.features import FeatureSpec

    try:
        spec = FeatureSpec.from_json(names, row.get("feature_categories"))
    except FeatureError as exc:
        raise InvalidArgumentError(f"feature_categories: {exc}") from None
    changed = row["risk_bands"] is None
    if changed:
        row["risk_bands"] = json.dumps(DEFAULT_RISK_BANDS)
    rule = DecisionPolicy.from_model(row["decision_threshold"], json.loads(row["risk_bands"]))
    if row.get("monitoring_reference") is not None:
        from pyfuncs.monitoring.reference import check_reference

        check_reference(json.loads(row["monitoring_reference"]), spec, len(rule.bands))
    return changed


# --- vetting: the server builds and checks the library it will execute --------------------

VET_TIMEOUT_SECONDS = 600
CACHE_DIR = "blink_vetted"  # under the data directory: only the server's OS user writes it
# The cache only spares a compile (the verdict and library also live in blink.vetted_models),
# so it is bounded: after each new entry, entries unused for CACHE_MAX_AGE_DAYS, and all but
# the CACHE_MAX_ENTRIES most recently used, are deleted.
CACHE_MAX_ENTRIES = 32
CACHE_MAX_AGE_DAYS = 90


def vet_model(plpy: Any, GD: dict, model_id: int) -> dict[str, Any]:
    """Vet ``model_id`` once: build its library from the model text in a separate process.

    The child (pyfuncs.vet_worker) parses the text with LightGBM, compiles it with
    Treelite/TL2cgen and gcc, and checks the library against LightGBM. Its result goes to
    blink.vetted_models, the only place blink loads libraries from. A crash, a refusal or a
    timeout of the child refuses the model with an error naming why; the backend is never
    at risk. Results are cached per model text and toolchain, so vetting the same model in
    another database of the cluster does not compile again.
    """
    from pyfuncs import queries
    from pyfuncs.errors import UnknownModelError

    if queries.one(plpy, GD, "vetted", model_id) is not None:
        return {"model_id": model_id, "vetted": "already"}
    row = queries.one(plpy, GD, "model_to_vet", model_id)
    if row is None:
        raise UnknownModelError(f"no model with id {model_id} in blink.blink_models")
    data_dir = queries.one(plpy, GD, "data_directory")["path"]  # type: ignore[index]
    names = list(row["feature_names"])
    categories = json.loads(row["feature_categories"] or "{}")
    result = _vet_cached(row["model_text"], names, categories, os.path.join(data_dir, CACHE_DIR),
                         f"model {model_id} ({row['version']})")
    queries.run(plpy, GD, "insert_vetted", model_id, result["library"],
                sha256_hex(result["library"]), _platform_tag(),
                sha256_hex(row["model_text"].encode("utf-8")),
                result["parity_max_abs_diff"], json.dumps(result["library_versions"]))
    return {"model_id": model_id, "vetted": "now", "cached": result["cached"]}


def checks_fingerprint() -> str:
    """sha256 of pyfuncs/vet_worker.py: what a cached verdict was checked with."""
    with open(os.path.join(os.path.dirname(__file__), "vet_worker.py"), "rb") as handle:
        return sha256_hex(handle.read())


def _platform_tag() -> str:
    import platform

    libc, version = platform.libc_ver()
    return f"{platform.machine()}-{platform.system().lower()}-{libc}{version}"


def _vet_cached(model_text: str, feature_names: list[str], categories: dict[str, list],
                cache_dir: str, what: str) -> dict[str, Any]:
    """The worker's verdict for this text, from the cache or from a fresh child process."""
    import sys
    from importlib import metadata

    from pyfuncs.library import build_fingerprint

    # Same text, same toolchain, same verdict: a new LightGBM or TL2cgen, a change to
    # blink's own part of the library, or to the worker's checks vets again.
    toolchain = [metadata.version(n) for n in ("lightgbm", "treelite", "tl2cgen", "numpy")]
    toolchain += [build_fingerprint(), checks_fingerprint()]
    key = sha256_hex(json.dumps([model_text, feature_names, categories, _platform_tag(),
                                 sys.version, toolchain], sort_keys=True).encode("utf-8"))
    library_file = os.path.join(cache_dir, f"{key}.so")
    verdict_file = os.path.join(cache_dir, f"{key}.json")
    if os.path.exists(verdict_file) and os.path.exists(library_file):
        with open(verdict_file) as handle:
            verdict = json.load(handle)
        with open(library_file, "rb") as handle:
            library = handle.read()
        _touch(verdict_file)  # recently used: prune_cache keeps it
        return {**verdict, "library": library, "cached": True}
    os.makedirs(cache_dir, mode=0o700, exist_ok=True)
    import tempfile

    with tempfile.TemporaryDirectory(prefix="blink-vet-") as work:
        library_path = os.path.join(work, "model.so")
        verdict = _run_worker(model_text, feature_names, categories, library_path, what)
        with open(library_path, "rb") as handle:
            library = handle.read()
    # Library first, verdict last: a verdict file means both are complete.
    for path, data in ((library_file, library), (verdict_file, json.dumps(verdict).encode())):
        partial = path + ".partial"
        with open(partial, "wb") as handle:
            handle.write(data)
        os.replace(partial, path)
    prune_cache(cache_dir)
    return {**verdict, "library": library, "cached": False}


def _touch(path: str) -> None:
    try:
        os.utime(path)
    except OSError:
        pass  # a read-only cache still serves; the entry just looks older to prune_cache


def prune_cache(cache_dir: str, *, max_entries: int | None = None,
                max_age_days: float | None = None, now: float | None = None) -> list[str]:
    """Delete the vetting cache's entries unused for ``max_age_days`` and all but the
    ``max_entries`` most recently used (by default CACHE_MAX_AGE_DAYS, CACHE_MAX_ENTRIES);
    an entry's verdict file is touched on every use. Returns the keys deleted. Leftover
    ``.partial`` files older than a day go too.

    Only names ``_vet_cached`` writes are touched (``<sha256>.so``, ``<sha256>.json``); a
    file that cannot be deleted stays for a later run.
    """
    import re
    import time

    now = time.time() if now is None else now
    max_entries = CACHE_MAX_ENTRIES if max_entries is None else max_entries
    max_age_days = CACHE_MAX_AGE_DAYS if max_age_days is None else max_age_days
    day = 86400.0
    unfinished = now - day  # older than this, a file without its verdict is a stopped vetting
    named = re.compile(r"([0-9a-f]{64})\.(so|json)(\.partial)?")
    used: dict[str, float] = {}  # key -> when its verdict was last written or read
    libraries: dict[str, tuple[str, float]] = {}
    stale: list[str] = []
    try:
        entries = list(os.scandir(cache_dir))
    except OSError:
        return []
    for entry in entries:
        match = named.fullmatch(entry.name)
        if match is None:
            continue
        try:
            mtime = entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        if match.group(3):
            if mtime < unfinished:
                stale.append(entry.path)
        elif match.group(2) == "json":
            used[match.group(1)] = mtime
        else:
            libraries[match.group(1)] = (entry.path, mtime)
    # A library without a verdict: a vetting in progress (the verdict is written last), or
    # one that stopped; the latter goes after a day.
    stale += [path for key, (path, mtime) in libraries.items()
              if key not in used and mtime < unfinished]
    newest_first = sorted(used, key=lambda key: used[key], reverse=True)
    cutoff = now - max_age_days * day
    doomed = [key for rank, key in enumerate(newest_first)
              if rank >= max_entries or used[key] < cutoff]
    for key in doomed:  # the verdict first: without it, the entry is a miss at once
        stale += [os.path.join(cache_dir, f"{key}.json"), os.path.join(cache_dir, f"{key}.so")]
    for path in stale:
        try:
            os.unlink(path)
        except OSError:
            continue
    return sorted(doomed)


def _run_worker(model_text: str, feature_names: list[str], categories: dict[str, list],
                library_path: str, what: str) -> dict[str, Any]:
    import subprocess
    import sys

    request = json.dumps({"model_text": model_text, "feature_names": feature_names,
                          "feature_categories": categories, "library_path": library_path})
    try:
        done = subprocess.run([sys.executable, "-m", "pyfuncs.vet_worker"], input=request,
                              capture_output=True, text=True, timeout=VET_TIMEOUT_SECONDS,
                              env=dict(os.environ), cwd="/")
    except subprocess.TimeoutExpired:
        raise VettingError(f"{what}: vetting took longer than {VET_TIMEOUT_SECONDS} s; "
                           "the model is refused") from None
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    verdict = json.loads(lines[-1]) if lines else None
    if done.returncode < 0:
        raise VettingError(
            f"{what}: the model text crashed the vetting process (signal {-done.returncode}); "
            "the model is refused and no backend was affected")
    if verdict is None or not verdict.get("ok"):
        reason = verdict["error"] if verdict else (done.stderr.strip()[-500:] or "no output")
        raise VettingError(f"{what} is refused: {reason}")
    return verdict


class VettingError(ArtifactIntegrityError):
    """A model failed vetting: it is never executed."""

    hint = ("Train and insert the model again with the trainer (python -m trainer); the row "
            "as stored cannot be used.")
