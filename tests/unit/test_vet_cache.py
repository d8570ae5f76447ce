"""The vetting cache: a verdict is reused only for the same text, build and checks."""

from pyfuncs import library, vet


def test_a_cached_verdict_is_reused_until_the_build_or_the_checks_change(tmp_path,
                                                                          monkeypatch):
    runs = []

    def worker(model_text, feature_names, categories, library_path, what):
        runs.append(model_text)
        with open(library_path, "wb") as handle:
            handle.write(b"library of " + model_text.encode())
        return {"ok": True}

    monkeypatch.setattr(vet, "_run_worker", worker)

    def verdict(text="tree"):
        return vet._vet_cached(text, ["x"], {}, str(tmp_path), "model 1")

    first = verdict()
    assert (first["cached"], first["library"]) == (False, b"library of tree")
    assert verdict()["cached"] is True and len(runs) == 1
    assert verdict("another tree")["cached"] is False
    monkeypatch.setattr(vet, "checks_fingerprint", lambda: "new checks")
    assert verdict()["cached"] is False
    monkeypatch.setattr(library, "build_fingerprint", lambda: "new build")
    assert verdict()["cached"] is False
    assert verdict()["cached"] is True and len(runs) == 4
