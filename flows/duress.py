"""Duress words: stored only as a salted scrypt hash; compared in constant time."""
from __future__ import annotations

import hashlib
import hmac
import os

MIN_LENGTH = 4
RESERVED = {"home"}  # "/back home" must keep its meaning


def normalise(word: str) -> str:
    """Case and surrounding spaces do not matter to someone typing under stress."""
    return " ".join(word.split()).casefold()


def check_new_word(word: str) -> str | None:
    """Why a proposed duress word cannot be used, or None if it can."""
    cleaned = normalise(word)
    if len(cleaned) < MIN_LENGTH:
        return f"use at least {MIN_LENGTH} letters, a word you would never type by accident"
    if cleaned in RESERVED:
        return f"'{cleaned}' already means something to /back: choose another word"
    return None


def hash_word(word: str, salt: bytes | None = None) -> tuple[bytes, bytes]:
    """(salt, digest) for a duress word."""
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(normalise(word).encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    return salt, digest


def matches(text: str, stored: tuple[bytes, bytes] | None) -> bool:
    """Whether `text` is the duress word behind `stored`."""
    if stored is None or not text.strip():
        return False
    salt, digest = stored
    return hmac.compare_digest(hash_word(text, salt)[1], digest)
