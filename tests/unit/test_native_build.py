"""devenv/native.py: blink_native is built once per source, and a missing toolchain is named."""

from __future__ import annotations

import subprocess

import pytest

from devenv import native


def test_the_module_is_built_once_per_source_and_exports_only_its_entry(tmp_path):
    built = native.build(tmp_path)
    first = built.stat().st_mtime_ns
    assert native.build(tmp_path) == built and built.stat().st_mtime_ns == first
    symbols = subprocess.run(["nm", "-D", "--defined-only", str(built)], capture_output=True,
                             text=True, check=True).stdout.split()
    assert {"Pg_magic_func", "pg_finfo_blink_score_native_v2", "blink_score_native_v2",
            "pg_finfo_blink_score_batch_v1", "blink_score_batch_v1",
            "pg_finfo_blink_score_batch_v2", "blink_score_batch_v2"} <= set(symbols)
    assert not {"open_champion_library", "loaded_handle", "score_in_c"} & set(symbols)  # static
    (tmp_path / f"{native.MODULE}.sha256").write_text("another source\n")
    native.build(tmp_path)
    assert built.stat().st_mtime_ns != first
    assert sorted(p.name for p in tmp_path.iterdir()) == [  # no partial build left behind
        f"{native.MODULE}.sha256", f"{native.MODULE}.so"]


def test_missing_server_headers_name_the_debian_package(tmp_path, monkeypatch):
    monkeypatch.setattr(native, "_pg_config", lambda option: str(tmp_path / "no-headers"))
    with pytest.raises(native.NativeBuildError, match="postgresql-server-dev-15"):
        native.build(tmp_path / "out")
    assert not (tmp_path / "out").exists()
