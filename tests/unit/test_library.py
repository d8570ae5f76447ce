"""Building a model library: what its build depends on and what it needs."""

import sysconfig

import pytest

from pyfuncs import library


def test_the_vetting_cache_key_follows_blinks_own_build_sources(tmp_path, monkeypatch):
    before = library.build_fingerprint()
    assert before == library.build_fingerprint()  # stable between calls
    changed = tmp_path / "blink_entry.c"
    changed.write_text(library.ENTRY_SOURCE.read_text() + "\n/* another build */\n")
    monkeypatch.setattr(library, "ENTRY_SOURCE", changed)
    assert library.build_fingerprint() != before


def test_missing_python_headers_are_named(tmp_path, monkeypatch):
    assert library.python_cflags() == [f"-I{sysconfig.get_paths()['include']}"]
    monkeypatch.setattr(sysconfig, "get_paths", lambda: {"include": str(tmp_path)})
    with pytest.raises(library.LibraryBuildError, match="Python.h is missing.*python3-dev"):
        library.python_cflags()
