"""`python -m pyfuncs.vet_worker`: vet one model in a process of its own.

pyfuncs.vet runs this as a child of the database backend, so nothing a model row holds can
crash or take over the backend: a parser abort, a compiler failure or a hang ends here. It
reads ``{"model_text", "feature_names", "library_path"}`` (JSON) on stdin and

1. parses the model text with LightGBM and checks it is a binary classifier over exactly the
   row's feature names, in order;
2. converts it with Treelite and compiles it with TL2cgen and gcc into ``library_path``;
3. scores seeded probe rows (values drawn around the model's own split thresholds, and
   missing values) with the library and with LightGBM, and measures the largest difference.

It prints one JSON line: ``{"ok": true, "parity_max_abs_diff", "library_versions"}`` or
``{"ok": false, "error"}`` (exit status 2).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

PROBE_ROWS = 512
PARITY_TOLERANCE = 1e-6


class Refused(Exception):
    """The model cannot be used; the message says why."""


def probe_matrix(booster: Any, num_features: int) -> Any:
    """Rows that exercise the trees: each feature's split thresholds +- a little, and NaN."""
    import numpy as np

    rng = np.random.default_rng(20261122)
    thresholds: list[list[float]] = [[] for _ in range(num_features)]

    def walk(node: dict) -> None:
        if "split_feature" in node:
            value = node.get("threshold")
            if isinstance(value, int | float):
                thresholds[node["split_feature"]].append(float(value))
            walk(node["left_child"])
            walk(node["right_child"])

    for tree in booster.dump_model()["tree_info"]:
        walk(tree["tree_structure"])
    matrix = rng.normal(0, 1000, size=(PROBE_ROWS, num_features))
    for j, values in enumerate(thresholds):
        if values:
            picks = rng.choice(values, size=PROBE_ROWS)
            matrix[:, j] = picks + rng.choice([-1e-3, 0.0, 1e-3], size=PROBE_ROWS)
    matrix[rng.random(matrix.shape) < 0.1] = np.nan
    return matrix


def vet(model_text: str, feature_names: list[str], library_path: str) -> dict[str, Any]:
    import lightgbm
    import numpy as np
    import tl2cgen
    import treelite

    from pyfuncs.predictor import CompiledPredictor

    try:
        booster = lightgbm.Booster(model_str=model_text)
    except lightgbm.basic.LightGBMError as exc:
        raise Refused(f"LightGBM cannot parse the model text: {exc}") from None
    names = list(booster.feature_name())
    if names != list(feature_names):
        raise Refused(f"the model text's features {names} are not the row's feature_names "
                      f"{list(feature_names)} (same names, same order)")
    objective = str(booster.dump_model().get("objective", ""))
    if not objective.startswith(("binary", "cross_entropy")):
        raise Refused(f"the model is not a binary classifier (objective {objective!r})")
    model = treelite.frontend.from_lightgbm(booster)
    tl2cgen.export_lib(model, toolchain="gcc", libpath=library_path,
                       params={"parallel_comp": max(1, os.cpu_count() or 1)},
                       nthread=max(1, os.cpu_count() or 1), verbose=False)
    with open(library_path, "rb") as handle:
        library = handle.read()
    from pyfuncs.integrity import sha256_hex

    compiled = CompiledPredictor(library, sha256_hex(library), len(names))
    probe = probe_matrix(booster, len(names))
    got, buggy = compiled.predict_matrix(probe)
    expected = np.asarray(booster.predict(probe, num_threads=1), dtype=np.float64)
    if not np.all((expected >= 0) & (expected <= 1)):
        raise Refused("the model does not output probabilities")
    ok = ~buggy
    diff = float(np.abs(got[ok] - expected[ok]).max()) if ok.any() else 0.0
    if not diff <= PARITY_TOLERANCE:
        raise Refused(f"the compiled library disagrees with LightGBM by {diff:.3g} "
                      f"(> {PARITY_TOLERANCE}) on probe rows")
    from importlib import metadata

    versions = {n: metadata.version(n) for n in ("lightgbm", "treelite", "tl2cgen", "numpy")}
    return {"ok": True, "parity_max_abs_diff": diff, "library_versions": versions}


def main() -> int:
    request = json.load(sys.stdin)
    try:
        result = vet(request["model_text"], request["feature_names"], request["library_path"])
    except Refused as exc:
        print(json.dumps({"ok": False, "error": str(exc)}))
        return 2
    except Exception as exc:  # any failure of the toolchain on this text refuses the model
        print(json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"}))
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
