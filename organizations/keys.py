"""API-key material: generation, hashing and masking. Pure functions, no I/O."""

from __future__ import annotations

import hashlib
import re
import secrets

KEY_PREFIX = "sk-or-v1-"
KEY_PATTERN = re.compile(r"^sk-or-v1-[0-9a-f]{64}$")


def key_generate() -> str:
    return KEY_PREFIX + secrets.token_hex(32)


def key_hash(key: str) -> str:
    """The public identifier of a key: lowercase hex SHA-256 of the full key string."""
    return hashlib.sha256(key.encode()).hexdigest()


def key_label(key: str) -> str:
    secret = key[len(KEY_PREFIX) :]
    return f"{KEY_PREFIX}{secret[:3]}...{secret[-4:]}"


def key_looks_valid(key: str) -> bool:
    return bool(KEY_PATTERN.match(key))
