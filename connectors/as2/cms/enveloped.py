"""CMS EnvelopedData / AuthEnvelopedData for AS2: encrypt and decrypt (split out of `connectors.as2.cms`).

RSA key transport (PKCS#1 v1.5 out; v1.5 and OAEP in), AES-CBC, 3DES-CBC
and AES-GCM (RFC 5083 / 5084) content encryption.
"""

from __future__ import annotations

import os
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives import padding as sympadding
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.serialization import pkcs7
from pyasn1.codec.der import encoder as der_encoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import univ
from pyasn1_modules import rfc4055, rfc5083, rfc5084, rfc5280, rfc5652

from connectors.as2.certs import KeyPair
from connectors.as2.cms.algorithms import (
    _CIPHER_BY_OID,
    _DIGEST_BY_OID,
    _RSA_ENCRYPTION,
    _RSAES_OAEP,
    CIPHERS,
    _block_cipher,
    _hash_cls,
    normalise_cipher,
)
from connectors.as2.cms.asn1 import _alg, _content_info, _decode, _issuer_and_serial, _matches, _open_content_info
from connectors.as2.errors import As2CryptoError, DecryptionFailed, MalformedMessage, UnsupportedAlgorithm

# --------------------------------------------------------------------------- encryption


def encrypt(data: bytes, recipient: x509.Certificate, algorithm: str = "aes256-cbc") -> bytes:
    """DER ContentInfo: EnvelopedData (CBC ciphers) or AuthEnvelopedData (GCM) for `recipient`.

    One KeyTransRecipientInfo (issuer + serial number, RSA PKCS#1 v1.5 key
    transport). `algorithm`: aes128-cbc, aes192-cbc, aes256-cbc,
    des-ede3-cbc (3DES), aes128-gcm, aes192-gcm, aes256-gcm (see
    `normalise_cipher` for the accepted spellings). The data is encrypted as is.
    """
    name = normalise_cipher(algorithm)
    public = recipient.public_key()
    if not isinstance(public, rsa.RSAPublicKey):
        raise UnsupportedAlgorithm("encryption needs a recipient certificate with an RSA key")
    if name in ("aes128-cbc", "aes256-cbc"):
        return (
            pkcs7.PKCS7EnvelopeBuilder()
            .set_data(data)
            .add_recipient(recipient)
            .set_content_encryption_algorithm(algorithms.AES128 if name == "aes128-cbc" else algorithms.AES256)
            .encrypt(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
        )
    oid, key_len, kind = CIPHERS[name]
    cek = os.urandom(key_len)
    ri = rfc5652.RecipientInfo()
    ktri = ri["ktri"]
    ktri["version"] = 0
    ktri["rid"]["issuerAndSerialNumber"] = _issuer_and_serial(recipient)
    ktri["keyEncryptionAlgorithm"] = _alg(_RSA_ENCRYPTION, univ.Null(""))
    ktri["encryptedKey"] = public.encrypt(cek, padding.PKCS1v15())

    eci = rfc5652.EncryptedContentInfo()
    eci["contentType"] = rfc5652.id_data
    tagged_content = eci.componentType["encryptedContent"].asn1Object
    if kind == "cbc":
        cipher = _block_cipher(name, cek)
        iv = os.urandom(cipher.block_size // 8)
        padder = sympadding.PKCS7(cipher.block_size).padder()
        enc = Cipher(cipher, modes.CBC(iv)).encryptor()
        ciphertext = enc.update(padder.update(data) + padder.finalize()) + enc.finalize()
        eci["contentEncryptionAlgorithm"] = _alg(oid, univ.OctetString(iv))
        eci["encryptedContent"] = tagged_content.clone(ciphertext)
        env = rfc5652.EnvelopedData()
        env["version"] = 0
        env["recipientInfos"].append(ri)
        env["encryptedContentInfo"] = eci
        return _content_info(rfc5652.id_envelopedData, env)

    nonce = os.urandom(12)
    params = rfc5084.GCMParameters()
    params["aes-nonce"] = nonce
    params["aes-ICVlen"] = 16
    enc = Cipher(algorithms.AES(cek), modes.GCM(nonce)).encryptor()
    ciphertext = enc.update(data) + enc.finalize()
    eci["contentEncryptionAlgorithm"] = _alg(oid, params)
    eci["encryptedContent"] = tagged_content.clone(ciphertext)
    auth = rfc5083.AuthEnvelopedData()
    auth["version"] = 0
    auth["recipientInfos"].append(ri)
    auth["authEncryptedContentInfo"] = eci
    auth["mac"] = enc.tag
    return _content_info(rfc5083.id_ct_authEnvelopedData, auth)


def decrypt(der: bytes, kp: KeyPair) -> bytes:
    """The content of an EnvelopedData / AuthEnvelopedData addressed to `kp`.

    Raises `DecryptionFailed` when the data is not (auth-)enveloped data, is
    malformed or truncated, has no KeyTransRecipientInfo for `kp.cert`, or
    does not decrypt (wrong key, bad padding, GCM tag mismatch).
    """
    try:
        return _decrypt(der, kp)
    except (UnsupportedAlgorithm, MalformedMessage) as e:
        raise DecryptionFailed(f"could not decrypt: {e}") from e
    except As2CryptoError:
        raise
    except (PyAsn1Error, ValueError, TypeError, LookupError, InvalidTag) as e:
        raise DecryptionFailed(f"could not decrypt: {type(e).__name__}: {e}") from e


def _decrypt(der: bytes, kp: KeyPair) -> bytes:
    content_type, content = _open_content_info(der)
    if content_type == str(rfc5652.id_envelopedData):
        env = _decode(content, rfc5652.EnvelopedData())
        eci = env["encryptedContentInfo"]
        mac = None
    elif content_type == str(rfc5083.id_ct_authEnvelopedData):
        env = _decode(content, rfc5083.AuthEnvelopedData())
        eci = env["authEncryptedContentInfo"]
        mac = bytes(env["mac"])
    else:
        raise DecryptionFailed(f"not enveloped data but {content_type}")
    del content  # the decoded structure holds the ciphertext; do not keep it twice

    ktri = None
    for ri in env["recipientInfos"]:
        if ri.getName() == "ktri" and _matches(ri["ktri"]["rid"], kp.cert):
            ktri = ri["ktri"]
            break
    if ktri is None:
        raise DecryptionFailed(
            f"message is not encrypted for our certificate {kp.cert.subject.rfc4514_string()} "
            f"(serial {kp.cert.serial_number:x})"
        )
    if not isinstance(kp.key, rsa.RSAPrivateKey):
        raise DecryptionFailed("our key is not an RSA key: cannot unwrap the content key")
    cek = _unwrap_key(ktri, kp.key)

    alg = eci["contentEncryptionAlgorithm"]
    oid = str(alg["algorithm"])
    if oid not in _CIPHER_BY_OID:
        raise DecryptionFailed(f"unsupported content encryption algorithm {oid}")
    name = _CIPHER_BY_OID[oid]
    _oid, key_len, kind = CIPHERS[name]
    if len(cek) != key_len:
        raise DecryptionFailed("could not decrypt the content")
    if not eci["encryptedContent"].isValue:
        raise DecryptionFailed("enveloped data without encrypted content (detached)")
    ciphertext = bytes(eci["encryptedContent"])

    if kind == "cbc":
        if mac is not None:
            raise DecryptionFailed("AuthEnvelopedData with a non-authenticated cipher")
        iv = bytes(_decode(bytes(alg["parameters"]), univ.OctetString()))
        cipher = _block_cipher(name, cek)
        if len(iv) != cipher.block_size // 8 or not ciphertext or len(ciphertext) % len(iv):
            raise DecryptionFailed("could not decrypt the content")
        dec = Cipher(cipher, modes.CBC(iv)).decryptor()
        del eci, env
        padded = dec.update(ciphertext)
        del ciphertext
        padded += dec.finalize()
        return _unpad(padded, len(iv))

    if mac is None:
        raise DecryptionFailed("GCM content outside AuthEnvelopedData")
    params = _decode(bytes(alg["parameters"]), rfc5084.GCMParameters())
    nonce = bytes(params["aes-nonce"])
    icv_len = int(params["aes-ICVlen"]) if params["aes-ICVlen"].isValue else 12
    if len(mac) != icv_len:
        raise DecryptionFailed("GCM tag length differs from aes-ICVlen")
    aad = b""
    if env["authAttrs"].isValue and len(env["authAttrs"]):
        plain = rfc5652.SignedAttributes()  # an untagged SET OF Attribute (RFC 5083 §2.1: SET OF tag)
        plain.extend(list(env["authAttrs"]))
        aad = der_encoder.encode(plain)
    try:
        dec = Cipher(algorithms.AES(cek), modes.GCM(nonce, mac, min_tag_length=max(4, icv_len))).decryptor()
        dec.authenticate_additional_data(aad)
        return dec.update(ciphertext) + dec.finalize()
    except InvalidTag:
        raise DecryptionFailed("GCM authentication tag mismatch: content tampered or wrong key") from None


def _unpad(padded: bytes, block: int) -> bytes:
    """Remove PKCS#7 padding (RFC 5652 §6.3), checking the whole last block without an early exit."""
    n = padded[-1] if padded else 0
    bad = int(n == 0 or n > block)
    for i in range(1, block + 1):
        bad |= int(i <= n and padded[-i] != n)
    if bad:
        raise DecryptionFailed("could not decrypt the content")
    return padded[:-n]


def _unwrap_key(ktri: Any, key: rsa.RSAPrivateKey) -> bytes:
    alg = ktri["keyEncryptionAlgorithm"]
    oid = str(alg["algorithm"])
    encrypted_key = bytes(ktri["encryptedKey"])
    if oid == _RSA_ENCRYPTION:
        scheme: Any = padding.PKCS1v15()
    elif oid == _RSAES_OAEP:
        params = rfc4055.RSAES_OAEP_params()
        if alg["parameters"].isValue:
            params = _decode(bytes(alg["parameters"]), rfc4055.RSAES_OAEP_params())
        oaep_hash: type[hashes.HashAlgorithm] = hashes.SHA1
        if params["hashFunc"].isValue:
            oaep_hash = _hash_cls(_DIGEST_BY_OID.get(str(params["hashFunc"]["algorithm"]), "?"))
        mgf_hash: type[hashes.HashAlgorithm] = hashes.SHA1
        if params["maskGenFunc"].isValue:
            inner = _decode(bytes(params["maskGenFunc"]["parameters"]), rfc5280.AlgorithmIdentifier())
            mgf_hash = _hash_cls(_DIGEST_BY_OID.get(str(inner["algorithm"]), "?"))
        scheme = padding.OAEP(mgf=padding.MGF1(mgf_hash()), algorithm=oaep_hash(), label=None)
    else:
        raise DecryptionFailed(f"unsupported key transport algorithm {oid}")
    try:
        return key.decrypt(encrypted_key, scheme)
    except ValueError:
        # one message for every failure: no padding oracle
        raise DecryptionFailed("could not decrypt the content") from None
