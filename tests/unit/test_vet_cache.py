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


def test_the_cache_keeps_the_recently_used_entries_and_deletes_the_rest(tmp_path):
    import os

    day = 86400.0
    now = 1_000 * day

    def entry(key, age_days, *names):
        for name in names:
            path = tmp_path / f"{key * 64}{name}"
            path.write_bytes(b"x")
            os.utime(path, (now - age_days * day, now - age_days * day))

    entry("a", 0, ".so", ".json")  # new
    entry("b", 1, ".so", ".json")
    entry("c", 2, ".so", ".json")  # beyond the 2 most recently used
    entry("d", 100, ".so", ".json")  # unused for longer than 90 days
    entry("e", 0, ".so")  # a vetting in progress: its verdict is written last
    entry("f", 3, ".so", ".so.partial")  # a vetting that stopped
    entry("g", 0, ".json.partial")
    (tmp_path / "README").write_text("not the cache's")

    deleted = vet.prune_cache(str(tmp_path), max_entries=2, max_age_days=90, now=now)

    assert deleted == ["c" * 64, "d" * 64]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["README", "a" * 64 + ".so", "a" * 64 + ".json", "b" * 64 + ".so", "b" * 64 + ".json",
         "e" * 64 + ".so", "g" * 64 + ".json.partial"])


def test_a_cache_hit_counts_as_a_use(tmp_path, monkeypatch):
    import os
    import time

    monkeypatch.setattr(vet, "_run_worker", lambda text, *rest: (
        open(rest[2], "wb").write(text.encode()), {"ok": True})[1])
    monkeypatch.setattr(vet, "CACHE_MAX_ENTRIES", 2)

    def verdict(text):
        return vet._vet_cached(text, ["x"], {}, str(tmp_path), "model 1")

    def age(paths, seconds):  # explicit times: a coarse file clock can tie two writes
        for path in paths:
            os.utime(path, (time.time() - seconds, time.time() - seconds))

    verdict("old")
    old_files = set(tmp_path.iterdir())
    verdict("newer")
    age(old_files, 3600)  # "old" was vetted an hour ago, "newer" half an hour ago...
    age(set(tmp_path.iterdir()) - old_files, 1800)
    assert verdict("old")["cached"] is True  # ...but "old" is used now,
    verdict("newest")  # so the third entry pushes "newer" out
    assert verdict("old")["cached"] is True
    assert verdict("newer")["cached"] is False
