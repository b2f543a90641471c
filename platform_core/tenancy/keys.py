"""API key format and hashing. A key is ``<prefix>.<secret>``; only SHA-256 of the whole key is stored.

SHA-256 (not a slow password hash) is right here: the secret is 256 random
bits, so there is nothing to brute-force, and the hot path stays cheap.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

PREFIX_BYTES = 6
SECRET_BYTES = 32


def key_generate() -> tuple[str, str]:
    """A new ``(prefix, full_key)``."""
    prefix = secrets.token_hex(PREFIX_BYTES)
    return prefix, f"{prefix}.{secrets.token_urlsafe(SECRET_BYTES)}"


def key_hash(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def key_prefix(raw_key: str) -> str | None:
    prefix, sep, secret = raw_key.partition(".")
    if not sep or not prefix or not secret:
        return None
    return prefix


def key_matches(raw_key: str, stored_hash: str) -> bool:
    return hmac.compare_digest(key_hash(raw_key), stored_hash)
