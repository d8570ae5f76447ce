"""Vetted model libraries as files in the data directory: written once, loaded by every session.

A session's first score used to fetch the library's bytes (2 MB for 400 trees, with the
TreeSHAP tables: ~9 ms through TOAST), hash them (~2 ms, plus ~5 ms to import hashlib) and
write them to a private memory file, so each backend also held its own copy of the code.
Now the first session on a server that loads a library checks its bytes against the
sha256 stored beside them and writes ``<data directory>/blink_libraries/<sha256>.so``;
every later session dlopens that file: no bytes fetched, no hash, and the code pages are
shared between backends by the page cache.

Only the server's OS user can write the data directory, and that user can already change
the server itself, so a file there is trusted as the server's own binaries are. A file is
complete or absent: it is written under a temporary name, flushed to disk, then renamed.
Files are never reused across a changed hash (the name is the hash) and can be deleted at
any time; the next session that needs one writes it again.
"""

from __future__ import annotations

import os

from pyfuncs.integrity import verify_artifact

DIRECTORY = "blink_libraries"  # under the data directory


def directory_in(data_directory: str) -> str:
    return os.path.join(data_directory, DIRECTORY)


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
        os.makedirs(directory, mode=0o700, exist_ok=True)
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
