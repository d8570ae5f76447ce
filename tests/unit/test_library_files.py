"""Vetted libraries as files: written once after the hash check, then loaded without bytes."""

import os
import stat

import numpy as np
import pytest

from pyfuncs import library_files
from pyfuncs.errors import ArtifactIntegrityError
from pyfuncs.model import load_model
from tests.fix_models import model_row


def test_store_then_find(tmp_path, model_a):
    art = model_a.artifact
    directory = library_files.directory_in(str(tmp_path), 16384)
    assert directory == str(tmp_path / "blink_libraries" / "16384")  # one per database
    assert library_files.find(directory, art.compiled_lib_sha256, len(art.compiled_lib)) is None
    path = library_files.store(directory, art.compiled_lib, art.compiled_lib_sha256)
    assert path == os.path.join(directory, f"{art.compiled_lib_sha256}.so")
    with open(path, "rb") as handle:
        assert handle.read() == art.compiled_lib
    for level in (directory, os.path.dirname(directory)):
        assert stat.S_IMODE(os.stat(level).st_mode) == 0o700
    assert os.listdir(directory) == [os.path.basename(path)]  # no partial file left
    assert library_files.find(directory, art.compiled_lib_sha256.upper(),
                              len(art.compiled_lib)) == path
    # A file of another size (a truncated copy) is not the library.
    assert library_files.find(directory, art.compiled_lib_sha256, len(art.compiled_lib) + 1) is None


def test_tampered_bytes_are_refused_and_not_written(tmp_path, model_a):
    art = model_a.artifact
    tampered = bytearray(art.compiled_lib)
    tampered[-1] ^= 0xFF
    with pytest.raises(ArtifactIntegrityError, match="sha256 mismatch"):
        library_files.store(str(tmp_path), bytes(tampered), art.compiled_lib_sha256)
    assert os.listdir(tmp_path) == []


def test_a_hash_that_is_not_hex_never_becomes_a_path(tmp_path, model_a):
    art = model_a.artifact
    for bad in ("../../etc/passwd", "ab" * 31 + "/x", "z" * 64, ""):
        assert library_files.library_path(str(tmp_path), bad) is None
        assert library_files.find(str(tmp_path), bad, 1) is None
    with pytest.raises(ArtifactIntegrityError):  # the hash check comes first
        library_files.store(str(tmp_path), art.compiled_lib, "../x")


def test_unwritable_directory_loads_from_bytes(tmp_path, model_a):
    art = model_a.artifact
    (tmp_path / "file").write_text("")  # a directory cannot be made under a file
    directory = str(tmp_path / "file" / "libs")
    assert library_files.store(directory, art.compiled_lib, art.compiled_lib_sha256) is None
    model = load_model(model_row(art), lambda: art.model_text, print, library_dir=directory)
    assert model.compiled is not None and model.compiled.library_path.startswith("/proc/self/fd/")
    model.close()


def test_second_load_reads_the_file_not_the_bytes(tmp_path, model_a):
    art = model_a.artifact
    directory = str(tmp_path / "libs")
    x = model_a.population.features[:50]
    first = load_model(model_row(art), lambda: art.model_text, print, library_dir=directory)
    assert first.compiled is not None
    path = first.compiled.library_path
    assert path == os.path.join(directory, f"{art.compiled_lib_sha256}.so")

    def no_fetch() -> bytes:
        raise AssertionError("the library's bytes were fetched although its file exists")

    row = model_row(art)
    del row["compiled_lib"]
    second = load_model(row, lambda: art.model_text, print, library_dir=directory,
                        fetch_library=no_fetch)
    assert second.compiled is not None and second.compiled.library_path == path
    expected = model_a.predict(x)
    np.testing.assert_allclose(second.predict_batch(x), expected, rtol=0, atol=1e-6)
    first.close()
    second.close()
    assert os.path.exists(path)  # closing a model keeps the shared file for other sessions


def test_load_without_bytes_or_file_fetches_once(tmp_path, model_a):
    art = model_a.artifact
    fetched = []
    row = model_row(art)
    del row["compiled_lib"]

    def fetch() -> bytes:
        fetched.append(1)
        return art.compiled_lib

    model = load_model(row, lambda: art.model_text, print, library_dir=str(tmp_path),
                       fetch_library=fetch)
    assert fetched == [1] and model.compiled is not None
    assert model.predict_row(list(model_a.population.features[0])) == pytest.approx(
        float(model_a.predict(model_a.population.features[:1])[0]), abs=1e-6)
    model.close()


def _write(directory, name: str, age_s: float) -> str:
    path = os.path.join(directory, name)
    with open(path, "wb") as handle:
        handle.write(b"x")
    old = os.stat(path).st_mtime - age_s
    os.utime(path, (old, old))
    return name


def test_prune_deletes_old_files_of_models_not_kept_and_nothing_else(tmp_path):
    directory = str(tmp_path)
    kept, retired, young, partial = "a" * 64, "b" * 64, "c" * 64, "d" * 64
    names = {
        "kept": _write(directory, f"{kept}.so", 3600),
        "retired": _write(directory, f"{retired}.so", 3600),
        "young": _write(directory, f"{young}.so", 10),  # just written: may be loading now
        "partial": _write(directory, f"{partial}.so.123.partial", 3600),  # a crashed writer
        "upper": _write(directory, f"{'E' * 64}.so", 3600),  # never a name store() writes
        "other": _write(directory, "notes.txt", 3600),
        "short": _write(directory, "ab.so", 3600),
    }
    removed = library_files.prune(directory, {kept.upper()}, grace_seconds=600)
    assert removed == sorted([names["retired"], names["partial"]])
    left = set(os.listdir(directory))
    assert left == {names[k] for k in ("kept", "young", "upper", "other", "short")}
    assert library_files.prune(str(tmp_path / "missing"), set()) == []


def test_a_stored_library_runs_after_store_a_found_one_does_not(tmp_path, model_a):
    art = model_a.artifact
    directory = str(tmp_path / "libs")
    calls = []
    first = load_model(model_row(art), lambda: art.model_text, print, library_dir=directory,
                       after_store=lambda: calls.append("stored"))
    second = load_model(model_row(art), lambda: art.model_text, print, library_dir=directory,
                        after_store=lambda: calls.append("stored"))
    assert calls == ["stored"]  # only the load that wrote the file
    first.close()
    second.close()
