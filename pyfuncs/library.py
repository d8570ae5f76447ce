"""Building a model's shared library: TL2cgen's C code, patched, plus blink's entry points.

One build for the server's vetting (pyfuncs.vet_worker) and the trainer's artifact. Two
changes to what ``tl2cgen.export_lib`` would build:

* every ``data[k].missing != -1`` test becomes ``!isnan(data[k].fvalue)``: a row is plain
  doubles with NaN for missing, so no caller marks missing values one by one, and a finite
  double whose low 4 bytes are 0xFFFFFFFF is no longer misread as missing (TL2cgen 1.0);
* ``native/blink_entry.c`` adds ``blink_predict_be`` (one row of big-endian doubles, as
  PostgreSQL's float8send writes them) and ``blink_predict_rows`` (native doubles): one
  call per row or per batch, no DMatrix;
* given LightGBM's dump of the model, ``native/treeshap.c`` and the model's tree tables
  (pyfuncs.shap_codegen) add ``blink_shap``: exact TreeSHAP, LightGBM's ``pred_contrib``.

Only the generated code's shape is relied on, never the model text: the text went through
LightGBM's parser and Treelite before any C exists.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from pyfuncs._typing import Any

ENTRY_SOURCE = Path(__file__).with_name("native") / "blink_entry.c"
_MISSING_TEST = re.compile(r"data\[(\d+)\]\.missing != -1")


class LibraryBuildError(RuntimeError):
    """TL2cgen's code is not in the shape this module patches (a changed TL2cgen)."""


def patch_missing_tests(source: str) -> str:
    """``source`` with TL2cgen's missing-value tests made NaN tests; refuses other uses."""
    patched = _MISSING_TEST.sub(r"!isnan(data[\1].fvalue)", source)
    if ".missing" in patched or ".qvalue" in patched:
        raise LibraryBuildError("TL2cgen's generated code reads Entry fields blink does not "
                                "patch (.missing or .qvalue): this TL2cgen is not supported")
    return patched


def build_library(model: Any, libpath: str | os.PathLike[str],
                  shap_dump: dict[str, Any] | None = None) -> None:
    """Compile the Treelite ``model`` into the shared library ``libpath`` (gcc); with
    ``shap_dump`` (``booster.dump_model()`` of the same model), with ``blink_shap`` too."""
    import tl2cgen

    threads = max(1, os.cpu_count() or 1)
    with tempfile.TemporaryDirectory(prefix="blink-build-") as tmp:
        src = Path(tmp)
        tl2cgen.generate_c_code(model, src, params={"parallel_comp": threads})
        recipe = json.loads((src / "recipe.json").read_text())
        for entry in recipe["sources"]:
            path = src / f"{entry['name']}.c"
            path.write_text(patch_missing_tests(path.read_text()))
        entry_code = ENTRY_SOURCE.read_text()
        (src / "blink_entry.c").write_text(entry_code)
        recipe["sources"].append({"name": "blink_entry", "length": entry_code.count("\n")})
        if shap_dump is not None:
            from pyfuncs.shap_codegen import native_sources, shap_sources

            sources = {**native_sources(),
                       **shap_sources(shap_dump, int(shap_dump["max_feature_idx"]) + 1)}
            for name, text in sources.items():
                (src / name).write_text(text)
                if name.endswith(".c"):
                    recipe["sources"].append({"name": name[:-2], "length": text.count("\n")})
        (src / "recipe.json").write_text(json.dumps(recipe))
        built = tl2cgen.create_shared("gcc", src, nthread=threads, verbose=False,
                                      long_build_time_warning=False)
        shutil.copyfile(built, libpath)
