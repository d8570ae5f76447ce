"""bench.kernel_cache runs end to end on a small model; it judges no speed."""

from __future__ import annotations

import re

from bench import kernel_cache
from pyfuncs.library import TREE_CFLAGS


def test_kernel_cache_compares_both_builds_and_both_match_lightgbm(capsys):
    kernel_cache.main(["--trees", "20", "--leaves", "7", "--rounds", "2", "--calls", "5"])
    out = capsys.readouterr().out
    rows = {m.group(1): float(m.group(2)) for m in re.finditer(
        r"^\s*(-O3|" + re.escape(" ".join(TREE_CFLAGS)) + r")\s.*\s(\S+)$", out, re.M)}
    assert set(rows) == {"-O3", " ".join(TREE_CFLAGS)}
    assert all(diff <= 1e-12 for diff in rows.values())  # both builds score like LightGBM
    assert re.search(r"^ratio hot \d+\.\d+x, warm \d+\.\d+x, cold \d+\.\d+x", out, re.M)
    assert re.search(r"^one-row scorer \(QuickScorer, same library\): warm \d+\.\d+, cold "
                     r"\d+\.\d+ µs per row; \d+\.\d+x", out, re.M)
