"""Vetted model libraries as files in the data directory: written once, loaded by every session.

A session's first score used to fetch the library's bytes (2 MB for 400 trees, with the
TreeSHAP tables: ~9 ms through TOAST), hash them (~2 ms, plus ~5 ms to import hashlib) and
write them to a private memory file, so each backend also held its own copy of the code.
Now the first session on a server that loads a library checks its bytes against the
sha256 stored beside them and writes ``<data directory>/blink_libraries/<database
oid>/<sha256>.so``;
every later session dlopens that file: no bytes fetched, no hash, and the code pages are
shared between backends by the page cache.

Only the server's OS user can write the data directory, and that user can already change
the server itself, so a file there is trusted as the server's own binaries are. A file is
complete or absent: it is written under a temporary name, flushed to disk, then renamed.
Files are never reused across a changed hash (the name is the hash) and can be deleted at
any time (a backend that has one loaded keeps its mapping); the next session that needs one
writes it again. So after each new file, ``prune`` deletes the files of models blink would
not run without another promotion. Each database has its own directory: which models it
keeps is its own business, and a cluster may hold several blink databases.
"""

from __future__ import annotations

import os

from pyfuncs.integrity import verify_artifact

DIRECTORY = "blink_libraries"  # under the data directory
# prune leaves younger files alone: another session may have just written one to load it.
PRUNE_GRACE_SECONDS = 600.0


def directory_in(data_directory: str, database_oid: int) -> str:
    """The library directory of one database (its oid is the same on every standby)."""
    return os.path.join(data_directory, DIRECTORY, str(int(database_oid)))


def library_path(directory: str, sha256: str) -> str | None:
    """The file name for a library hash; None for anything but 64 hex digits (never a path)."""
    digest = sha256.lower()
    if len(digest) != 64 or digest.strip("0123456789abcdef"):
        return None
    return os.path.join(directory, f"{digest}.so")


def find(directory: str, sha256: str, size: int) -> str | None:
    """The library file for ``sha256``, or None when there is none of the expected size."""
    path = library_path(directory, sha256)
    if path is None:
        return None
    try:
        return path if os.stat(path).st_size == size else None
    except OSError:
        return None


def store(directory: str, library: bytes, sha256: str) -> str | None:
    """Check ``library`` against ``sha256`` and write it as the file for that hash.

    Returns the file's path, or None when the directory cannot be written (a read-only data
    directory, say): the caller then loads the bytes without a file. A hash mismatch raises
    ArtifactIntegrityError and writes nothing.
    """
    verify_artifact(library, sha256, "compiled library")
    path = library_path(directory, sha256)
    if path is None:
        return None
    partial = f"{path}.{os.getpid()}.partial"
    try:
        for level in (os.path.dirname(directory), directory):  # makedirs' mode: leaf only
            os.makedirs(level, mode=0o700, exist_ok=True)
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with open(fd, "wb", closefd=False) as handle:
                handle.write(library)
            os.fsync(fd)  # the bytes reach the disk before the name does
        finally:
            os.close(fd)
        os.replace(partial, path)
    except OSError:
        try:
            os.unlink(partial)
        except OSError:
            pass
        return None
    return path


def prune(directory: str, keep: set[str], *, grace_seconds: float = PRUNE_GRACE_SECONDS,
          now: float | None = None) -> list[str]:
    """Delete the library files whose hash is not in ``keep`` (and leftover partial files),
    unless written within ``grace_seconds``; returns the names deleted.

    Only names this module writes are touched; errors (a file already gone, a read-only
    directory) leave the file for a later run.
    """
    import time

    keep = {digest.lower() for digest in keep}
    cutoff = (time.time() if now is None else now) - grace_seconds
    removed: list[str] = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    for entry in entries:
        digest, _, rest = entry.name.partition(".")
        ours = (digest == digest.lower() and library_path(directory, digest) is not None
                and (rest == "so" or (rest.startswith("so.") and rest.endswith(".partial"))))
        if not ours or (rest == "so" and digest in keep):
            continue
        try:
            if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                os.unlink(entry.path)
                removed.append(entry.name)
        except OSError:
            continue
    return sorted(removed)
