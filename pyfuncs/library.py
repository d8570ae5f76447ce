"""Building a model's shared library: TL2cgen's C code, patched, plus blink's entry points.

One build for the server's vetting (pyfuncs.vet_worker) and the trainer's artifact. What
differs from what ``tl2cgen.export_lib`` would build:

* every ``data[k].missing != -1`` test becomes ``!isnan(data[k].fvalue)``: a row is plain
  doubles with NaN for missing, so no caller marks missing values one by one, and a finite
  double whose low 4 bytes are 0xFFFFFFFF is no longer misread as missing (TL2cgen 1.0);
* ``native/blink_entry.c`` adds ``blink_predict_be`` (one row of big-endian doubles, as
  PostgreSQL's float8send writes them) and ``blink_predict_rows`` (native doubles): one
  call per row or per batch, no DMatrix; and makes the library the Python module
  ``blink_model`` too (its one-row scorers, called without ctypes);
* every row, one or a batch, is scored with QuickScorer over tables of the same model
  (``native/quickscorer.c`` and pyfuncs.quickscorer): the same double as TL2cgen's code, at
  far less cost when a statement's one prediction finds it out of cache and 3-5x as fast
  hot; ``blink_predict_rows_tl2cgen`` runs TL2cgen's code alone, the reference vetting
  holds QuickScorer to;
* given LightGBM's dump of the model, ``native/treeshap.c`` and the model's tree tables
  (pyfuncs.shap_codegen) add ``blink_shap``: exact TreeSHAP, LightGBM's ``pred_contrib``;
* TL2cgen's tree code is compiled for size (``TREE_CFLAGS``), blink's own for speed.

Only the generated code's shape is relied on, never the model text: the text went through
LightGBM's parser and Treelite before any C exists.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

from pyfuncs._typing import Any

ENTRY_SOURCE = Path(__file__).with_name("native") / "blink_entry.c"
QUICKSCORER_SOURCE = ENTRY_SOURCE.with_name("quickscorer.c")
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
                  shap_dump: dict[str, Any] | None = None, *,
                  tree_cflags: list[str] | None = None) -> None:
    """Compile the Treelite ``model`` into the shared library ``libpath`` (gcc); with
    ``shap_dump`` (``booster.dump_model()`` of the same model), with ``blink_shap`` too.
    ``tree_cflags`` replaces ``TREE_CFLAGS`` (bench.kernel_cache compares the two)."""
    import tl2cgen

    threads = max(1, os.cpu_count() or 1)
    with tempfile.TemporaryDirectory(prefix="blink-build-") as tmp:
        src = Path(tmp)
        tl2cgen.generate_c_code(model, src, params={"parallel_comp": threads})
        recipe = json.loads((src / "recipe.json").read_text())
        trees = [entry["name"] for entry in recipe["sources"]]
        for name in trees:
            path = src / f"{name}.c"
            path.write_text(patch_missing_tests(path.read_text()))
        from pyfuncs.quickscorer import tables_source

        own = {"blink_entry.c": ENTRY_SOURCE.read_text(),
               "quickscorer.c": QUICKSCORER_SOURCE.read_text(), **tables_source(model)}
        if shap_dump is not None:
            from pyfuncs.shap_codegen import native_sources, shap_sources

            own.update(native_sources())
            own.update(shap_sources(shap_dump, int(shap_dump["max_feature_idx"]) + 1))
        for name, text in own.items():
            (src / name).write_text(text)
        objects = {name: tree_cflags or TREE_CFLAGS for name in trees}
        objects.update({name[:-2]: OWN_CFLAGS for name in own if name.endswith(".c")})
        objects["blink_entry"] = OWN_CFLAGS + python_cflags()  # also a Python module
        compile_sources(src, objects, Path(libpath), threads)


# TL2cgen's code is a branch per tree node, ~0.5 MB for 400 trees x 31 leaves: when a call
# finds it out of the CPU's caches (a statement's first prediction), fetching those
# instructions costs more than running them. -Os makes it smaller and measured as fast hot
# and up to 2x faster cold (docs/benchmarks.md, "Compiled for size"). blink's own
# loops (entry points, TreeSHAP) keep -O3: TreeSHAP ran ~20% slower at -Os.
TREE_CFLAGS = ["-Os"]
OWN_CFLAGS = ["-O3"]


def build_fingerprint() -> str:
    """sha256 of the sources that shape a library beside the model (this module, blink's C
    and the TreeSHAP generator): vetting caches per build, so a changed build vets again."""
    import hashlib

    digest = hashlib.sha256()
    here = Path(__file__).parent
    for path in (Path(__file__), ENTRY_SOURCE, QUICKSCORER_SOURCE, here / "shap_codegen.py",
                 here / "quickscorer.py", *sorted((here / "native").glob("treeshap.[ch]"))):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def python_cflags() -> list[str]:
    """Flags to compile against this Python's C headers (the entry points are also a Python
    module, on the stable ABI, so any Python 3.9+ loads it; no libpython is linked)."""
    import sysconfig

    include = sysconfig.get_paths()["include"]
    if not os.path.exists(os.path.join(include, "Python.h")):
        raise LibraryBuildError(f"Python's C headers are not installed ({include}/Python.h is "
                                "missing): install python3-dev (Debian) for this Python")
    return [f"-I{include}"]


def compile_sources(src: Path, objects: dict[str, list[str]], libpath: Path,
                    threads: int) -> None:
    """gcc each ``name.c`` in ``src`` with its flags (in parallel), link them into ``libpath``."""
    import subprocess
    from concurrent.futures import ThreadPoolExecutor

    def run(argv: list[str]) -> None:
        done = subprocess.run(argv, cwd=src, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise LibraryBuildError(f"{' '.join(argv[:3])} failed: {done.stderr[-2000:]}")

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(run, [["gcc", "-c", *flags, "-fPIC", "-std=c99", "-o", f"{name}.o",
                             f"{name}.c"] for name, flags in objects.items()]))
    run(["gcc", "-shared", "-o", str(libpath.resolve()), *(f"{n}.o" for n in objects), "-lm"])
