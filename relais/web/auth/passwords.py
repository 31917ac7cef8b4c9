"""Password hashes for local web users: argon2id (argon2-cffi's defaults, RFC 9106's second choice).

>>> h = hash_password("correct horse")
>>> h.startswith("$argon2id$"), verify_password(h, "correct horse"), verify_password(h, "wrong")
(True, True, False)
>>> verify_password(None, "anything")
False
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
#: Verified against when the user does not exist, so that both cases take the same time.
_DUMMY = _hasher.hash("relais: no such user")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False
