"""`python -m pyfuncs.vet_worker`: vet one model in a process of its own.

pyfuncs.vet runs this as a child of the database backend, so nothing a model row holds can
crash or take over the backend: a parser abort, a compiler failure or a hang ends here. It
reads ``{"model_text", "feature_names", "feature_categories", "library_path"}`` (JSON) on
stdin and

1. parses the model text with LightGBM and checks it is a binary classifier over exactly the
   row's feature names, in order, whose categorical features and categories are exactly the
   row's ``feature_categories`` (LightGBM's own record: ``pandas_categorical``), and that
   it has no linear trees (Treelite would compile only their constant leaves);
2. converts it with Treelite and compiles it with TL2cgen and gcc into ``library_path``
   (pyfuncs.library: blink's entry points, NaN for missing);
3. scores seeded probe rows (values drawn around the model's own split thresholds, every
   category code, and missing values) with the library and with LightGBM, and measures the
   largest difference; the library's rows and its one-row module (QuickScorer) must give
   the double of TL2cgen's code alone on every row, and its TreeSHAP must match
   ``pred_contrib`` within 1e-9.

It prints one JSON line: ``{"ok": true, "parity_max_abs_diff", "library_versions"}`` or
``{"ok": false, "error"}`` (exit status 2).
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

PROBE_ROWS = 512
PARITY_TOLERANCE = 1e-6
SHAP_TOLERANCE = 1e-9  # reason codes are exact SHAP values
LINEAR_TREE = re.compile(r"^is_linear=1$", re.MULTILINE)  # as LightGBM writes a linear tree


class Refused(Exception):
    """The model cannot be used; the message says why."""


def splits(dump: dict, num_features: int) -> tuple[list[list[float]], set[int]]:
    """One walk over the model's trees (``booster.dump_model()``): each feature's numeric
    split thresholds, and the features split on as categories."""
    thresholds: list[list[float]] = [[] for _ in range(num_features)]
    categorical: set[int] = set()

    def walk(node: dict) -> None:
        if "split_feature" in node:
            if node.get("decision_type") == "==":
                categorical.add(node["split_feature"])
            elif isinstance(value := node.get("threshold"), int | float):
                thresholds[node["split_feature"]].append(float(value))
            walk(node["left_child"])
            walk(node["right_child"])

    for tree in dump["tree_info"]:
        walk(tree["tree_structure"])
    return thresholds, categorical


def probe_matrix(thresholds: list[list[float]],
                 category_counts: dict[int, int] | None = None) -> Any:
    """Rows that exercise the trees: each feature's split thresholds +- a little, and NaN.

    A categorical feature (``category_counts``: index -> number of categories) gets the
    codes blink can send it: 0 .. count - 1 (an unseen category is sent as missing).
    """
    import numpy as np

    rng = np.random.default_rng(20261122)
    matrix = rng.normal(0, 1000, size=(PROBE_ROWS, len(thresholds)))
    for j, values in enumerate(thresholds):
        if values:
            picks = rng.choice(values, size=PROBE_ROWS)
            matrix[:, j] = picks + rng.choice([-1e-3, 0.0, 1e-3], size=PROBE_ROWS)
    for j, count in (category_counts or {}).items():
        matrix[:, j] = rng.integers(0, count, size=PROBE_ROWS)
    matrix[rng.random(matrix.shape) < 0.1] = np.nan
    return matrix


def categorical_indices(model_text: str) -> list[int]:
    """Indices of the features LightGBM was told are categorical (the text's parameters)."""
    for line in model_text.splitlines():
        if line.startswith("[categorical_feature:"):
            listed = line.split(":", 1)[1].strip(" ]")
            return sorted(int(j) for j in listed.split(",") if j.strip())
    return []


def check_categories(booster: Any, model_text: str, split_on: set[int], names: list[str],
                     categories: dict[str, list]) -> dict[int, int]:
    """The row's categories against the model text's; returns index -> number of categories.

    ``split_on``: the features the trees split on as categories (:func:`splits`).
    """
    unknown = sorted(set(categories) - set(names))
    if unknown:
        raise Refused(f"feature_categories names unknown feature(s) {unknown}")
    declared = [j for j, n in enumerate(names) if n in categories]
    in_parameters = categorical_indices(model_text)
    if in_parameters != declared:
        raise Refused(f"the model text's categorical features "
                      f"{[names[j] for j in in_parameters if j < len(names)]}"
                      f" are not the row's feature_categories {sorted(categories)}")
    in_text = list(booster.pandas_categorical or [])
    expected = [categories[names[j]] for j in declared]
    if in_text != expected:
        raise Refused("the row's feature_categories are not the categories in the model "
                      "text's pandas_categorical (same features, same categories, same order)")
    undeclared = sorted(names[j] for j in split_on - set(declared))
    if undeclared:
        raise Refused(f"the model splits on {undeclared} as categorical, but feature_categories "
                      "does not list their categories")
    return {j: len(categories[names[j]]) for j in declared}


def vet(model_text: str, feature_names: list[str], categories: dict[str, list],
        library_path: str) -> dict[str, Any]:
    import lightgbm
    import numpy as np
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
    dump = booster.dump_model()  # once: 400 trees make this the worker's slowest read
    thresholds, split_on = splits(dump, len(names))
    category_counts = check_categories(booster, model_text, split_on, names, categories)
    objective = str(dump.get("objective", ""))
    if not objective.startswith(("binary", "cross_entropy")):
        raise Refused(f"the model is not a binary classifier (objective {objective!r})")
    if LINEAR_TREE.search(model_text):
        raise Refused("the model has linear trees (LightGBM's linear_tree): Treelite compiles "
                      "only their constant leaves, so blink cannot score it exactly; train "
                      "without linear_tree")
    from pyfuncs.library import build_library

    build_library(treelite.frontend.from_lightgbm(booster), library_path, shap_dump=dump)
    with open(library_path, "rb") as handle:
        library = handle.read()
    from pyfuncs.integrity import sha256_hex

    compiled = CompiledPredictor(library, sha256_hex(library), len(names))
    probe = probe_matrix(thresholds, category_counts)
    got, buggy = compiled.predict_matrix(probe)
    expected = np.asarray(booster.predict(probe, num_threads=1), dtype=np.float64)
    if not np.all((expected >= 0) & (expected <= 1)):
        raise Refused("the model does not output probabilities")
    ok = ~buggy
    diff = float(np.abs(got[ok] - expected[ok]).max()) if ok.any() else 0.0
    if not diff <= PARITY_TOLERANCE:
        raise Refused(f"the compiled library disagrees with LightGBM by {diff:.3g} "
                      f"(> {PARITY_TOLERANCE}) on probe rows")
    # Every row runs QuickScorer's tables when the model has them (pyfuncs.quickscorer),
    # else TL2cgen's code: either way the same double as TL2cgen's code alone, or the
    # library is refused. Equal doubles also hold it to the parity checked above.
    tree_code = compiled.predict_matrix_tl2cgen(probe[ok])
    if tree_code is None:
        raise Refused("the compiled library lacks TL2cgen's reference entry point")
    _same_doubles(got[ok], tree_code, "its rows give", "TL2cgen's code gives")
    # The server's single scores call the library's module, not the batch entry point.
    scorer = compiled.stored_scorer
    if scorer is None:
        raise Refused("the compiled library lacks blink's scoring module (blink_model)")
    one = np.array([scorer(r.astype(">f8").tobytes()) for r in probe[ok]])
    _same_doubles(one, tree_code, "its one-row scorer gives", "TL2cgen's code gives")
    # The reasons too: the library's TreeSHAP, exact against LightGBM's own.
    shap_diff = float(np.abs(compiled.contributions(probe)
                             - booster.predict(probe, pred_contrib=True, num_threads=1)).max())
    if not shap_diff <= SHAP_TOLERANCE:
        raise Refused(f"the compiled TreeSHAP disagrees with LightGBM's pred_contrib by "
                      f"{shap_diff:.3g} (> {SHAP_TOLERANCE}) on probe rows")
    from importlib import metadata

    versions = {n: metadata.version(n) for n in ("lightgbm", "treelite", "tl2cgen", "numpy")}
    return {"ok": True, "parity_max_abs_diff": diff, "library_versions": versions}


def _same_doubles(got: Any, reference: Any, what: str, reference_what: str) -> None:
    """Refuse the library unless ``got`` equals ``reference`` bit for bit on every row."""
    import numpy as np

    if not np.array_equal(got, reference):
        worst = int(np.argmax(np.abs(got - reference)))
        raise Refused(f"the compiled library: {what} {float(got[worst])!r} where "
                      f"{reference_what} {float(reference[worst])!r} on probe row {worst}")


def main() -> int:
    request = json.load(sys.stdin)
    try:
        result = vet(request["model_text"], request["feature_names"],
                     request.get("feature_categories") or {}, request["library_path"])
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
