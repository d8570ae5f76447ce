"""Artifact hashes: the sha256 stored beside every artifact, and the check before use."""

from __future__ import annotations

from pyfuncs.errors import ArtifactIntegrityError


def sha256_hex(data: bytes) -> str:
    """Hex sha256 of ``data``, as stored next to each artifact."""
    import hashlib  # here: it loads OpenSSL, ~5 ms a session that never hashes need not pay

    return hashlib.sha256(data).hexdigest()


def verify_artifact(data: bytes, expected_sha256: str | None, what: str) -> None:
    """Refuse an artifact whose bytes do not hash to the stored sha256."""
    actual = sha256_hex(data)
    if expected_sha256 is None or actual != expected_sha256.lower():
        raise ArtifactIntegrityError(
            f"{what}: sha256 mismatch (stored {expected_sha256}, computed {actual}); "
            "the artifact was not loaded"
        )
