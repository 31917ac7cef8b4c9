"""Digest and content-encryption algorithm names for CMS (split out of `connectors.as2.cms`).

`normalise_digest` / `normalise_cipher` accept the spellings AS2 partners
use; `mic` is the base64 digest an MDN reports. The OID tables here are
shared by `cms_signed` and `cms_enveloped`.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from typing import Any, Literal

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import algorithms
from pyasn1_modules import rfc5084

from connectors.as2.errors import UnsupportedAlgorithm

ContentKind = Literal["enveloped", "auth-enveloped", "signed", "compressed", "data"]

# --------------------------------------------------------------------------- digests

DIGESTS: dict[str, Callable[..., Any]] = {
    "sha-1": hashlib.sha1,
    "sha1": hashlib.sha1,
    "sha-224": hashlib.sha224,
    "sha224": hashlib.sha224,
    "sha-256": hashlib.sha256,
    "sha256": hashlib.sha256,
    "sha-384": hashlib.sha384,
    "sha384": hashlib.sha384,
    "sha-512": hashlib.sha512,
    "sha512": hashlib.sha512,
}

# normalised name -> (OID, cryptography hash class)
_DIGEST_INFO: dict[str, tuple[str, type[hashes.HashAlgorithm]]] = {
    "sha-1": ("1.3.14.3.2.26", hashes.SHA1),
    "sha-224": ("2.16.840.1.101.3.4.2.4", hashes.SHA224),
    "sha-256": ("2.16.840.1.101.3.4.2.1", hashes.SHA256),
    "sha-384": ("2.16.840.1.101.3.4.2.2", hashes.SHA384),
    "sha-512": ("2.16.840.1.101.3.4.2.3", hashes.SHA512),
}
_DIGEST_BY_OID = {oid: name for name, (oid, _cls) in _DIGEST_INFO.items()}

# signature algorithm OIDs -> (key type, digest name or None = the SignerInfo's digestAlgorithm)
_SIG_ALGS: dict[str, tuple[str, str | None]] = {
    "1.2.840.113549.1.1.1": ("rsa", None),  # rsaEncryption
    "1.2.840.113549.1.1.5": ("rsa", "sha-1"),
    "1.2.840.113549.1.1.14": ("rsa", "sha-224"),
    "1.2.840.113549.1.1.11": ("rsa", "sha-256"),
    "1.2.840.113549.1.1.12": ("rsa", "sha-384"),
    "1.2.840.113549.1.1.13": ("rsa", "sha-512"),
    "1.2.840.113549.1.1.10": ("rsa-pss", None),
    "1.2.840.10045.2.1": ("ecdsa", None),  # id-ecPublicKey
    "1.2.840.10045.4.1": ("ecdsa", "sha-1"),
    "1.2.840.10045.4.3.1": ("ecdsa", "sha-224"),
    "1.2.840.10045.4.3.2": ("ecdsa", "sha-256"),
    "1.2.840.10045.4.3.3": ("ecdsa", "sha-384"),
    "1.2.840.10045.4.3.4": ("ecdsa", "sha-512"),
}
_RSA_ENCRYPTION = "1.2.840.113549.1.1.1"
_RSAES_OAEP = "1.2.840.113549.1.1.7"
_ECDSA_WITH = {
    "sha-1": "1.2.840.10045.4.1",
    "sha-224": "1.2.840.10045.4.3.1",
    "sha-256": "1.2.840.10045.4.3.2",
    "sha-384": "1.2.840.10045.4.3.3",
    "sha-512": "1.2.840.10045.4.3.4",
}
_MGF1 = "1.2.840.113549.1.1.8"


def normalise_digest(name: str) -> str:
    """``"sha256"``, ``"SHA-256"``, ``"sha_256"`` -> ``"sha-256"``; `UnsupportedAlgorithm` otherwise."""
    key = name.strip().lower().replace("_", "-")
    if key in DIGESTS:
        return key if "-" in key else "sha-" + key[3:]
    raise UnsupportedAlgorithm(f"unsupported digest algorithm {name!r}")


def _hash_cls(digest: str) -> type[hashes.HashAlgorithm]:
    return _DIGEST_INFO[normalise_digest(digest)][1]


def mic(data: bytes, digest: str) -> str:
    """Base64 digest of `data` (the caller appends ``", <digest>"`` in the MDN)."""
    return base64.b64encode(DIGESTS[normalise_digest(digest)](data).digest()).decode("ascii")


# --------------------------------------------------------------------------- ciphers

# normalised name -> (OID, key length, kind)
CIPHERS: dict[str, tuple[str, int, str]] = {
    "aes128-cbc": ("2.16.840.1.101.3.4.1.2", 16, "cbc"),
    "aes192-cbc": ("2.16.840.1.101.3.4.1.22", 24, "cbc"),
    "aes256-cbc": ("2.16.840.1.101.3.4.1.42", 32, "cbc"),
    "des-ede3-cbc": ("1.2.840.113549.3.7", 24, "cbc"),
    "aes128-gcm": (str(rfc5084.id_aes128_GCM), 16, "gcm"),
    "aes192-gcm": (str(rfc5084.id_aes192_GCM), 24, "gcm"),
    "aes256-gcm": (str(rfc5084.id_aes256_GCM), 32, "gcm"),
}
_CIPHER_BY_OID = {oid: name for name, (oid, _n, _k) in CIPHERS.items()}
_CIPHER_ALIASES = {
    "3des": "des-ede3-cbc",
    "des3": "des-ede3-cbc",
    "tripledes": "des-ede3-cbc",
    "tripledes-cbc": "des-ede3-cbc",
    "des-ede3": "des-ede3-cbc",
    "tripledes-192-cbc": "des-ede3-cbc",
}


def normalise_cipher(name: str) -> str:
    """``"AES_256_CBC"``, ``"aes-256-cbc"``, ``"aes256"`` -> ``"aes256-cbc"``; ``"3des"`` -> ``"des-ede3-cbc"``."""
    key = name.strip().lower().replace("_", "-")
    key = _CIPHER_ALIASES.get(key, key)
    if key.startswith("aes-"):
        key = "aes" + key[4:]
    key = key.replace("aes128", "aes128-").replace("aes192", "aes192-").replace("aes256", "aes256-")
    key = key.replace("--", "-").rstrip("-")
    if key in ("aes128", "aes192", "aes256"):
        key += "-cbc"
    if key in CIPHERS:
        return key
    raise UnsupportedAlgorithm(f"unsupported content encryption algorithm {name!r}")


def _block_cipher(name: str, key: bytes) -> algorithms.AES | TripleDES:
    return TripleDES(key) if name == "des-ede3-cbc" else algorithms.AES(key)
