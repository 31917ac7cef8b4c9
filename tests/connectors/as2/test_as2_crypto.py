"""AS2 crypto layer: certificates, raw MIME, CMS and the wrap/unwrap of AS2 bodies.

Round trips cover every combination of sign / encrypt (each cipher) /
compress with SHA-256 and SHA-1. Interoperability is checked against an
independent implementation, the ``openssl`` command line:

(a) what ``openssl cms -sign`` / ``-encrypt`` build is accepted by `unwrap`, with
    the MIC computed here independently (hashlib over the exact signed bytes);
(b) what `wrap` builds verifies and decrypts with ``openssl cms``;
(c) RFC 3274 data built by `cms.compress` parses with ``openssl cms -cmsout``
    (Debian's OpenSSL has no zlib, so it cannot uncompress).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import os
import re
import shutil
import subprocess
import zlib
from pathlib import Path

import pytest

from connectors.as2 import certs, cms, message, mime
from connectors.as2.errors import (
    As2CryptoError,
    AuthenticationFailed,
    CertificateRejected,
    DecompressionFailed,
    DecryptionFailed,
    InsufficientSecurity,
    IntegrityCheckFailed,
    MalformedMessage,
    SignatureInvalid,
    UnexpectedProcessingError,
    UnknownSigner,
)
from flows.domain.errors import ConfigError, RelaisError
from tests.support.as2_keys import make_test_keypair

ALGORITHMS = ["aes128-cbc", "aes192-cbc", "aes256-cbc", "des-ede3-cbc", "aes128-gcm", "aes256-gcm"]
PAYLOAD = b'<?xml version="1.0"?>\n<Invoice>caf\xc3\xa9\r\n\x00\xff binary\n</Invoice>\n'
# a signed entity written by hand: "Name:value" without a space, a folded header, LF inside the body
ODD_ENTITY = (
    b"content-type:application/xml\r\n"
    b"Content-Disposition: attachment;\r\n"
    b'\tfilename="odd name.xml"\r\n'
    b"X-Folded: first\r\n"
    b"   second\r\n"
    b"\r\n"
    b"<Invoice>\n  <ID>42</ID>\n</Invoice>\n"
)


# --------------------------------------------------------------------------- fixtures


class Station:
    def __init__(self, kp: certs.KeyPair, cert: Path, key: Path) -> None:
        self.kp, self.cert, self.key = kp, cert, key


@pytest.fixture(scope="module")
def keydir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("as2keys")


def _station(keydir: Path, name: str, **kw: int) -> Station:
    kp = make_test_keypair(name, **kw)
    cert, key = keydir / f"{name}.pem", keydir / f"{name}.key"
    certs.write_pem(kp, cert, key)
    return Station(kp, cert, key)


@pytest.fixture(scope="module")
def partner(keydir: Path) -> Station:
    """The sending partner: signs its messages."""
    return _station(keydir, "partner")


@pytest.fixture(scope="module")
def relais(keydir: Path) -> Station:
    """Relais: decrypts what is encrypted for it."""
    return _station(keydir, "relais")


@pytest.fixture(scope="module")
def stranger(keydir: Path) -> Station:
    return _station(keydir, "stranger")


@pytest.fixture(scope="module")
def expired(keydir: Path) -> Station:
    return _station(keydir, "expired", days=-1)


@pytest.fixture(scope="module")
def openssl() -> str:
    path = shutil.which("openssl")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("the openssl command line is required in CI (interop tests)")
        pytest.skip("openssl command line not installed")
    return path


def run_openssl(openssl: str, *args: object, stdin: bytes | None = None) -> bytes:
    done = subprocess.run([openssl, *map(str, args)], input=stdin, capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, f"openssl {' '.join(map(str, args))}: {done.stderr.decode(errors='replace')}"
    return done.stdout


def b64_digest(data: bytes, name: str = "sha256") -> str:
    return base64.b64encode(hashlib.new(name, data).digest()).decode()


def first_part(content_type: str, body: bytes) -> bytes:
    """Part 1 of a multipart/signed body, cut out without the code under test (CRLF framing)."""
    boundary = re.search(r'boundary="?([^";]+)"?', content_type).group(1).encode()
    pieces = body.split(b"--" + boundary)
    assert pieces[1].startswith(b"\r\n") and pieces[1].endswith(b"\r\n")
    return pieces[1][2:-2]


def smime_split(output: bytes) -> tuple[str, bytes]:
    """(Content-Type, body) of an S/MIME message written by openssl (LF, or CRLF with -crlfeol)."""
    m = re.search(rb"\r?\n\r?\n", output)
    head, body = output[: m.start()], output[m.end() :]
    unfolded = re.sub(rb"\r?\n[ \t]+", b" ", head).decode()
    content_type = re.search(r"(?im)^content-type:\s*(.+?)\s*$", unfolded).group(1)
    return content_type, body


# --------------------------------------------------------------------------- certs


def test_problems_and_expiry(partner: Station, expired: Station) -> None:
    assert certs.problems(partner.kp.cert, purpose="signing") == []
    assert certs.problems(partner.kp.cert, purpose="encryption") == []
    assert any("expired" in p for p in certs.problems(expired.kp.cert, purpose="signing"))
    assert certs.expires_within(expired.kp.cert)
    assert not certs.expires_within(partner.kp.cert, 30)
    assert certs.expires_within(partner.kp.cert, 400)
    future = make_test_keypair("future", not_before_days=3)
    assert any("not valid before" in p for p in certs.problems(future.cert, purpose="signing"))


def test_key_usage_checked() -> None:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sign-only")])
    now = dt.datetime.now(dt.UTC)
    usage = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=9))
        .add_extension(usage, critical=True)
        .sign(key, hashes.SHA256())
    )
    assert certs.problems(cert, purpose="signing") == []
    assert any("keyEncipherment" in p for p in certs.problems(cert, purpose="encryption"))


def test_load_keypair(keydir: Path, partner: Station, relais: Station) -> None:
    kp = certs.load_keypair(partner.cert, partner.key)
    assert kp.cert == partner.kp.cert
    der = keydir / "partner.der"
    from cryptography.hazmat.primitives import serialization

    der.write_bytes(partner.kp.cert.public_bytes(serialization.Encoding.DER))
    assert certs.load_cert(der) == partner.kp.cert
    with pytest.raises(ConfigError, match="does not match"):
        certs.load_keypair(partner.cert, relais.key)
    with pytest.raises(ConfigError):
        certs.load_cert(partner.key)
    assert (os.stat(partner.key).st_mode & 0o777) == 0o600


# --------------------------------------------------------------------------- MIME on raw bytes


def test_parse_keeps_raw_bytes() -> None:
    e = mime.parse(ODD_ENTITY)
    assert e.raw == ODD_ENTITY == e.header_bytes + e.body
    assert e.body == b"<Invoice>\n  <ID>42</ID>\n</Invoice>\n"
    assert e.content_type == "application/xml"
    assert e.header("x-folded") == "first   second"  # unfolding removes the line break only (RFC 5322 §2.2.3)
    assert mime.filename(e) == "odd name.xml"
    lf = mime.parse(b"Content-Type: text/plain\nX: y\n\nbody\n")
    assert lf.body == b"body\n" and lf.header("X") == "y"
    bare = mime.parse(b"UNB+UNOC:3+SENDER'\n")
    assert bare.headers == [] and bare.body == b"UNB+UNOC:3+SENDER'\n"


def test_parse_content_type() -> None:
    assert mime.parse_content_type('Multipart/Signed; Boundary="a;b"; micalg=SHA-256') == (
        "multipart/signed",
        {"boundary": "a;b", "micalg": "SHA-256"},
    )
    assert mime.parse_content_type("attachment; filename*=utf-8''caf%C3%A9.xml")[1]["filename"] == "café.xml"


def test_split_multipart_exact_parts() -> None:
    part1 = b"Content-Type: text/plain\r\n\r\nline\r\n"  # ends with CRLF: kept, the next CRLF is the boundary's
    body = b"preamble\r\n--b\r\n" + part1 + b"\r\n--b\r\nContent-Type: x/y\r\n\r\nsig\r\n--b--\r\nepilogue"
    e = mime.parse(mime.make('multipart/signed; boundary="b"', body))
    assert mime.split_multipart(e) == [part1, b"Content-Type: x/y\r\n\r\nsig"]
    lf = mime.parse(b"Content-Type: multipart/signed; boundary=b\n\n--b\nA\n--bogus\n--b \nB\n--b--\n")
    assert mime.split_multipart(lf) == [b"A\n--bogus", b"B"]
    with pytest.raises(MalformedMessage):
        mime.split_multipart(mime.parse(b"Content-Type: multipart/signed\r\n\r\n--b\r\n"))


def test_make_and_canonical() -> None:
    assert mime.make("text/plain", b"x", [("A", "1")]) == b"Content-Type: text/plain\r\nA: 1\r\n\r\nx"
    with pytest.raises(ValueError):
        mime.make("text/plain", b"x", [("A", "1\r\nInjected: yes")])
    assert mime.canonical(b"a\nb\r\nc\n") == b"a\r\nb\r\nc\r\n"


# --------------------------------------------------------------------------- CMS


def test_digest_names() -> None:
    for spelling in ("sha256", "SHA-256", "sha_256", "sha-256"):
        assert cms.normalise_digest(spelling) == "sha-256"
    assert cms.normalise_digest("sha1") == "sha-1"
    assert cms.mic(b"abc", "sha256") == b64_digest(b"abc")
    with pytest.raises(ValueError):
        cms.normalise_digest("md5")
    assert cms.normalise_cipher("AES_256_CBC") == "aes256-cbc"
    assert cms.normalise_cipher("3des") == "des-ede3-cbc"
    assert cms.normalise_cipher("aes-128-gcm") == "aes128-gcm"


@pytest.mark.parametrize("digest", ["sha-256", "sha-1", "sha-512"])
def test_sign_verify(digest: str, partner: Station, stranger: Station) -> None:
    sig = cms.sign_detached(b"data", partner.kp, digest)
    assert cms.content_kind(sig) == "signed"
    got = cms.verify(b"data", sig, [stranger.kp.cert, partner.kp.cert])
    assert got.signer == partner.kp.cert and got.digest == cms.normalise_digest(digest)
    assert cms.verify_detached(b"data", sig, [partner.kp.cert]) == partner.kp.cert
    with pytest.raises(IntegrityCheckFailed):
        cms.verify_detached(b"dato", sig, [partner.kp.cert])
    with pytest.raises(UnknownSigner, match="CN=partner"):
        cms.verify_detached(b"data", sig, [stranger.kp.cert])


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_encrypt_decrypt(algorithm: str, relais: Station, stranger: Station) -> None:
    der = cms.encrypt(b"secret", relais.kp.cert, algorithm)
    assert cms.content_kind(der) == ("auth-enveloped" if "gcm" in algorithm else "enveloped")
    assert cms.decrypt(der, relais.kp) == b"secret"
    with pytest.raises(DecryptionFailed, match="not encrypted for our certificate"):
        cms.decrypt(der, stranger.kp)
    with pytest.raises(DecryptionFailed):
        cms.decrypt(der[: len(der) // 2], relais.kp)


def test_gcm_tamper_detected(relais: Station) -> None:
    der = bytearray(cms.encrypt(b"secret invoice" * 10, relais.kp.cert, "aes256-gcm"))
    i = bytes(der).find(b"secret")
    assert i < 0  # encrypted
    der[-40] ^= 0x01  # inside the ciphertext or tag
    with pytest.raises(DecryptionFailed):
        cms.decrypt(bytes(der), relais.kp)


def test_compress_roundtrip_and_bomb() -> None:
    data = b"invoice " * 10_000
    der = cms.compress(data)
    assert cms.content_kind(der) == "compressed"
    assert cms.decompress(der, len(data)) == data
    bomb = cms.compress(b"\0" * 20_000_000)
    assert len(bomb) < 100_000
    with pytest.raises(DecompressionFailed, match="exceeds"):
        cms.decompress(bomb, 1_000_000)
    with pytest.raises(DecompressionFailed):
        cms.decompress(der[:-10], 10**6)


# --------------------------------------------------------------------------- wrap / unwrap round trips


@pytest.mark.parametrize(
    "sign,algorithm,compress,digest",
    list(itertools.product([False, True], [None, *ALGORITHMS], [False, True], ["sha-256", "sha-1"])),
)
def test_roundtrip(
    sign: bool, algorithm: str | None, compress: bool, digest: str, partner: Station, relais: Station
) -> None:
    w = message.wrap(
        PAYLOAD,
        "facture 1.xml",
        content_type="application/xml",
        sign=partner.kp if sign else None,
        encrypt_for=relais.kp.cert if algorithm else None,
        compress=compress,
        digest=digest,
        algorithm=algorithm or "aes256-cbc",
    )
    disposition = dict(w.headers).get("Content-Disposition")
    u = message.unwrap(
        w.content_type,
        w.body,
        own=relais.kp,
        partner_certs=[partner.kp.cert],
        requested_digests=[digest],
        content_disposition=disposition,
        require_signature=sign,
        require_encryption=algorithm is not None,
    )
    assert u.payload == PAYLOAD
    assert u.filename == "facture 1.xml"
    assert u.content_type == "application/xml"
    assert (u.signed, u.encrypted, u.compressed) == (sign, algorithm is not None, compress)
    assert u.signer == (partner.kp.cert if sign else None)
    assert u.mic_digest == digest and w.mic_digest == digest
    assert u.mic == w.mic

    # the MIC, computed independently (RFC 4130 §7.3.1, RFC 5402 §4)
    name = digest.replace("-", "")
    if sign and algorithm is None:
        assert w.mic == b64_digest(first_part(w.content_type, w.body), name)
    elif (
        not sign and compress
    ):  # the uncompressed entity, headers and content (tests/connectors/as2/test_as2_compression.py)
        payload_entity = (
            b"Content-Type: application/xml\r\nContent-Transfer-Encoding: binary\r\n"
            b'Content-Disposition: attachment; filename="facture 1.xml"\r\n\r\n' + PAYLOAD
        )
        assert w.mic == b64_digest(payload_entity, name)
    elif not sign and algorithm is None:
        assert w.mic == b64_digest(w.body, name)  # the content, without headers


def test_mic_digest_choice(partner: Station, relais: Station) -> None:
    w = message.wrap(PAYLOAD, "a.xml", sign=partner.kp, encrypt_for=None, digest="sha-1")
    common = {"own": relais.kp, "partner_certs": [partner.kp.cert]}
    u = message.unwrap(w.content_type, w.body, requested_digests=["sha256"], **common)
    assert u.mic_digest == "sha256"  # answered in the sender's spelling
    assert u.mic == b64_digest(first_part(w.content_type, w.body), "sha256")
    assert message.unwrap(w.content_type, w.body, requested_digests=["md5", "SHA-1"], **common).mic_digest == "sha-1"
    assert message.unwrap(w.content_type, w.body, requested_digests=[], **common).mic_digest == "sha-1"
    plain = message.wrap(PAYLOAD, "a.xml", sign=None, encrypt_for=None)
    assert message.unwrap(plain.content_type, plain.body, requested_digests=[], **common).mic_digest == "sha-256"
    assert message.requested_micalgs(
        "signed-receipt-protocol=optional, pkcs7-signature; signed-receipt-micalg=optional, sha256, sha1"
    ) == ["sha256", "sha1"]


def _multipart_signed(entity: bytes, signature: bytes, eol: bytes = b"\r\n") -> tuple[str, bytes]:
    body = (
        b"--XyZ"
        + eol
        + entity
        + eol
        + b"--XyZ"
        + eol
        + b"Content-Type: application/pkcs7-signature"
        + eol
        + b"Content-Transfer-Encoding: base64"
        + eol
        + eol
        + base64.encodebytes(signature)
        + b"--XyZ--"
        + eol
    )
    return 'multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256; boundary=XyZ', body


def test_odd_headers_verify_on_raw_bytes(partner: Station, relais: Station) -> None:
    """`Name:value` and folded headers in the signed entity: signature and MIC use the bytes as sent."""
    ct, body = _multipart_signed(ODD_ENTITY, cms.sign_detached(ODD_ENTITY, partner.kp))
    u = message.unwrap(ct, body, own=relais.kp, partner_certs=[partner.kp.cert])
    assert u.signed and u.payload == b"<Invoice>\n  <ID>42</ID>\n</Invoice>\n"
    assert u.filename == "odd name.xml"
    assert u.mic == b64_digest(ODD_ENTITY)
    # and the same inside encryption, with bare-LF multipart framing
    ct2, body2 = _multipart_signed(ODD_ENTITY, cms.sign_detached(ODD_ENTITY, partner.kp), eol=b"\n")
    inner = mime.make(ct2, body2)
    u2 = message.unwrap(
        "application/pkcs7-mime; smime-type=enveloped-data",
        cms.encrypt(inner, relais.kp.cert),
        own=relais.kp,
        partner_certs=[partner.kp.cert],
    )
    assert u2.signed and u2.encrypted and u2.mic == b64_digest(ODD_ENTITY)


def test_canonical_fallback(partner: Station, relais: Station) -> None:
    """Signed in CRLF form, delivered with bare LFs: verifies, MIC over what was signed."""
    lf_entity = b"Content-Type: text/plain\n\nline 1\nline 2\n"
    signature = cms.sign_detached(mime.canonical(lf_entity), partner.kp)
    ct, body = _multipart_signed(lf_entity, signature)
    u = message.unwrap(ct, body, own=relais.kp, partner_certs=[partner.kp.cert])
    assert u.mic == b64_digest(mime.canonical(lf_entity))


# --------------------------------------------------------------------------- negative cases


def _signed(partner: Station, payload: bytes = PAYLOAD) -> message.Wrapped:
    return message.wrap(payload, "f.xml", sign=partner.kp, encrypt_for=None)


def test_tampered_content_is_integrity_failure(partner: Station, relais: Station) -> None:
    """The signature over the signed attributes still verifies, the content digest does not match:
    the signer is authenticated but the content changed in transit -> integrity-check-failed."""
    w = _signed(partner)
    tampered = w.body.replace(b"</Invoice>", b"</Invoicf>")
    with pytest.raises(IntegrityCheckFailed) as err:
        message.unwrap(w.content_type, tampered, own=relais.kp, partner_certs=[partner.kp.cert])
    assert err.value.disposition == "integrity-check-failed"


def test_tampered_signature_is_authentication_failure(partner: Station, relais: Station) -> None:
    """A changed signature value no longer verifies: nothing can be trusted -> authentication-failed."""
    sig = bytearray(cms.sign_detached(ODD_ENTITY, partner.kp))
    sig[-5] ^= 0xFF  # inside the RSA signature value, the last field of the SignerInfo
    ct, body = _multipart_signed(ODD_ENTITY, bytes(sig))
    with pytest.raises(SignatureInvalid) as err:
        message.unwrap(ct, body, own=relais.kp, partner_certs=[partner.kp.cert])
    assert err.value.disposition == "authentication-failed"


def test_unknown_signer(partner: Station, stranger: Station, relais: Station) -> None:
    w = _signed(stranger)
    with pytest.raises(UnknownSigner) as err:
        message.unwrap(w.content_type, w.body, own=relais.kp, partner_certs=[partner.kp.cert])
    assert isinstance(err.value, AuthenticationFailed) and err.value.disposition == "authentication-failed"


def test_expired_signer(expired: Station, relais: Station) -> None:
    w = _signed(expired)
    with pytest.raises(CertificateRejected, match="expired") as err:
        message.unwrap(w.content_type, w.body, own=relais.kp, partner_certs=[expired.kp.cert])
    assert err.value.disposition == "authentication-failed"


def test_encrypted_for_another_recipient(partner: Station, stranger: Station, relais: Station) -> None:
    w = message.wrap(PAYLOAD, "f.xml", sign=partner.kp, encrypt_for=stranger.kp.cert)
    with pytest.raises(DecryptionFailed) as err:
        message.unwrap(w.content_type, w.body, own=relais.kp, partner_certs=[partner.kp.cert])
    assert err.value.disposition == "decryption-failed"


def test_truncated_and_garbage(partner: Station, relais: Station) -> None:
    common = {"own": relais.kp, "partner_certs": [partner.kp.cert]}
    w = message.wrap(PAYLOAD, "f.xml", sign=partner.kp, encrypt_for=relais.kp.cert)
    for cut in (5, 50, len(w.body) // 2, len(w.body) - 1):
        with pytest.raises(DecryptionFailed):
            message.unwrap(w.content_type, w.body[:cut], **common)
    with pytest.raises(UnexpectedProcessingError) as err:
        message.unwrap("application/pkcs7-mime; smime-type=compressed-data", os.urandom(300), **common)
    assert err.value.disposition in ("unexpected-processing-error", "decompression-failed")
    sig = cms.sign_detached(ODD_ENTITY, partner.kp)
    ct, body = _multipart_signed(ODD_ENTITY, sig[: len(sig) // 2])
    with pytest.raises(AuthenticationFailed):
        message.unwrap(ct, body, **common)
    with pytest.raises(MalformedMessage):
        message.unwrap("application/xml", b"", **common)
    with pytest.raises(MalformedMessage):
        message.unwrap("multipart/signed", b"--b\r\nx\r\n--b--\r\n", **common)


def test_decompression_bomb_refused(partner: Station, relais: Station) -> None:
    w = message.wrap(b"\0" * 30_000_000, "bomb.bin", sign=partner.kp, encrypt_for=relais.kp.cert, compress=True)
    assert len(w.body) < 200_000
    with pytest.raises(DecompressionFailed) as err:
        message.unwrap(w.content_type, w.body, own=relais.kp, partner_certs=[partner.kp.cert], max_bytes=1_000_000)
    assert err.value.disposition == "decompression-failed"


def test_required_security(partner: Station, relais: Station) -> None:
    common = {"own": relais.kp, "partner_certs": [partner.kp.cert]}
    plain = message.wrap(PAYLOAD, "f.xml", sign=None, encrypt_for=None)
    with pytest.raises(InsufficientSecurity):
        message.unwrap(plain.content_type, plain.body, require_signature=True, **common)
    signed = _signed(partner)
    with pytest.raises(InsufficientSecurity) as err:
        message.unwrap(signed.content_type, signed.body, require_encryption=True, **common)
    assert err.value.disposition == "insufficient-message-security"


def test_error_hierarchy() -> None:
    for cls in (AuthenticationFailed, IntegrityCheckFailed, DecryptionFailed, UnexpectedProcessingError):
        assert issubclass(cls, As2CryptoError) and issubclass(cls, RelaisError)
    error_names = {cls.__name__ for cls in (As2CryptoError, *_subclasses(As2CryptoError))}
    assert not error_names & {*cms.__all__, *message.__all__}  # one place: connectors.as2.errors


def _subclasses(cls: type) -> list[type]:
    return [sub for direct in cls.__subclasses__() for sub in (direct, *_subclasses(direct))]


# --------------------------------------------------------------------------- interop (a): openssl -> unwrap


@pytest.fixture()
def entity_file(tmp_path: Path) -> Path:
    path = tmp_path / "entity.mime"
    path.write_bytes(ODD_ENTITY)
    return path


@pytest.mark.parametrize(
    "tool,md,extra",
    [
        ("cms", "sha256", []),
        ("cms", "sha1", []),
        ("cms", "sha256", ["-crlfeol"]),
        ("smime", "sha256", []),
        ("cms", "sha512", ["-keyopt", "rsa_padding_mode:pss"]),
    ],
)
def test_openssl_signed_accepted(
    openssl: str, entity_file: Path, partner: Station, relais: Station, tool: str, md: str, extra: list[str]
) -> None:
    out = run_openssl(
        openssl,
        tool,
        "-sign",
        "-binary",
        "-md",
        md,
        "-signer",
        partner.cert,
        "-inkey",
        partner.key,
        *extra,
        "-in",
        entity_file,
    )
    content_type, body = smime_split(out)
    assert content_type.startswith("multipart/signed")
    u = message.unwrap(content_type, body, own=relais.kp, partner_certs=[partner.kp.cert], requested_digests=[md])
    assert u.signed and u.signer == partner.kp.cert
    assert u.payload == mime.parse(ODD_ENTITY).body
    assert u.mic == b64_digest(ODD_ENTITY, md) and u.mic_digest == md


def test_openssl_opaque_signed_accepted(openssl: str, entity_file: Path, partner: Station, relais: Station) -> None:
    """application/pkcs7-mime; smime-type=signed-data (content inside the SignedData)."""
    der = run_openssl(
        openssl,
        "cms",
        "-sign",
        "-nodetach",
        "-binary",
        "-md",
        "sha256",
        "-outform",
        "DER",
        "-signer",
        partner.cert,
        "-inkey",
        partner.key,
        "-in",
        entity_file,
    )
    u = message.unwrap(
        "application/pkcs7-mime; smime-type=signed-data", der, own=relais.kp, partner_certs=[partner.kp.cert]
    )
    assert u.signed and u.payload == mime.parse(ODD_ENTITY).body and u.mic == b64_digest(ODD_ENTITY)


def test_openssl_text_signed_accepted(openssl: str, tmp_path: Path, partner: Station, relais: Station) -> None:
    """``openssl cms -sign`` without -binary signs the CRLF-canonical form of an LF file."""
    lf = tmp_path / "lf.mime"
    lf.write_bytes(b"Content-Type: text/plain\n\nline 1\nline 2\n")
    out = run_openssl(
        openssl, "cms", "-sign", "-md", "sha256", "-signer", partner.cert, "-inkey", partner.key, "-in", lf
    )
    content_type, body = smime_split(out)
    u = message.unwrap(content_type, body, own=relais.kp, partner_certs=[partner.kp.cert])
    assert u.mic == b64_digest(b"Content-Type: text/plain\r\n\r\nline 1\r\nline 2\r\n")


OPENSSL_CIPHERS = ["-aes128", "-aes192", "-aes256", "-des3", "-aes-128-gcm", "-aes-256-gcm"]
ENCRYPT_CASES = [(flag, "default") for flag in OPENSSL_CIPHERS] + [
    (flag, variant) for flag in ("-aes256", "-aes-128-gcm") for variant in ("stream", "oaep", "keyid")
]


@pytest.mark.parametrize("flag,variant", ENCRYPT_CASES)
def test_openssl_encrypted_accepted(
    openssl: str, entity_file: Path, partner: Station, relais: Station, flag: str, variant: str
) -> None:
    """openssl-built EnvelopedData / AuthEnvelopedData: every cipher; BER (-stream), OAEP, SKI recipient."""
    extra = {"default": [], "stream": ["-stream"], "keyid": ["-keyid"]}.get(variant, [])
    if variant == "oaep":
        recipient = ["-recip", relais.cert, "-keyopt", "rsa_padding_mode:oaep"]
    else:
        recipient = [relais.cert]
    der = run_openssl(
        openssl, "cms", "-encrypt", flag, "-binary", "-outform", "DER", *extra, "-in", entity_file, *recipient
    )
    smime_type = "authEnveloped-data" if "gcm" in flag else "enveloped-data"
    u = message.unwrap(
        f"application/pkcs7-mime; smime-type={smime_type}; name=smime.p7m",
        der,
        own=relais.kp,
        partner_certs=[partner.kp.cert],
    )
    assert u.encrypted and not u.signed
    assert u.payload == mime.parse(ODD_ENTITY).body
    assert u.mic == b64_digest(ODD_ENTITY)  # the decrypted entity, headers and content


@pytest.mark.parametrize("flag", ["-aes256", "-des3", "-aes-128-gcm"])
def test_openssl_signed_then_encrypted_accepted(
    openssl: str, tmp_path: Path, entity_file: Path, partner: Station, relais: Station, flag: str
) -> None:
    signed = tmp_path / "signed.eml"
    signed.write_bytes(
        run_openssl(
            openssl,
            "cms",
            "-sign",
            "-binary",
            "-md",
            "sha256",
            "-signer",
            partner.cert,
            "-inkey",
            partner.key,
            "-in",
            entity_file,
        )
    )
    der = run_openssl(openssl, "cms", "-encrypt", flag, "-binary", "-outform", "DER", "-in", signed, relais.cert)
    u = message.unwrap(
        "application/pkcs7-mime; smime-type=enveloped-data",
        der,
        own=relais.kp,
        partner_certs=[partner.kp.cert],
        require_signature=True,
        require_encryption=True,
    )
    assert u.signed and u.encrypted
    assert u.mic == b64_digest(ODD_ENTITY)  # the signed entity, not the decrypted one


def test_openssl_tampered_rejected(openssl: str, entity_file: Path, partner: Station, relais: Station) -> None:
    out = run_openssl(
        openssl,
        "cms",
        "-sign",
        "-binary",
        "-md",
        "sha256",
        "-signer",
        partner.cert,
        "-inkey",
        partner.key,
        "-in",
        entity_file,
    )
    content_type, body = smime_split(out)
    with pytest.raises(IntegrityCheckFailed):
        message.unwrap(
            content_type, body.replace(b"<ID>42</ID>", b"<ID>43</ID>"), own=relais.kp, partner_certs=[partner.kp.cert]
        )


# --------------------------------------------------------------------------- interop (b): wrap -> openssl


@pytest.mark.parametrize("digest", ["sha-256", "sha-1"])
def test_wrap_signed_verifies_with_openssl(openssl: str, tmp_path: Path, partner: Station, digest: str) -> None:
    w = message.wrap(PAYLOAD, "f.xml", content_type="application/xml", sign=partner.kp, encrypt_for=None, digest=digest)
    eml = tmp_path / "signed.eml"
    eml.write_bytes(mime.make(w.content_type, w.body))
    # OpenSSL 3's S/MIME reader in -binary mode expects LF framing unless told -crlfeol (RFC framing is CRLF)
    content = run_openssl(openssl, "cms", "-verify", "-binary", "-crlfeol", "-noverify", "-in", eml)
    assert content == first_part(w.content_type, w.body)
    assert mime.parse(content).body == PAYLOAD
    run_openssl(openssl, "cms", "-verify", "-binary", "-crlfeol", "-CAfile", partner.cert, "-in", eml)
    # the detached DER signature itself, with the part cut out independently
    part, sig = tmp_path / "part", tmp_path / "sig.der"
    part.write_bytes(first_part(w.content_type, w.body))
    sig_b64 = w.body.split(b"\r\n\r\n")[-1].split(b"\r\n--")[0]
    sig.write_bytes(base64.b64decode(sig_b64))
    run_openssl(openssl, "cms", "-verify", "-binary", "-inform", "DER", "-in", sig, "-content", part, "-noverify")


def test_wrap_signed_text_verifies_with_openssl_smime(openssl: str, tmp_path: Path, partner: Station) -> None:
    crlf_payload = b"<Invoice>\r\n  <ID>1</ID>\r\n</Invoice>\r\n"
    w = message.wrap(crlf_payload, "f.xml", content_type="application/xml", sign=partner.kp, encrypt_for=None)
    eml = tmp_path / "signed.eml"
    eml.write_bytes(mime.make(w.content_type, w.body))
    out = run_openssl(openssl, "smime", "-verify", "-noverify", "-in", eml)
    assert mime.parse(out).body == crlf_payload


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_wrap_encrypted_decrypts_with_openssl(
    openssl: str, tmp_path: Path, partner: Station, relais: Station, algorithm: str
) -> None:
    w = message.wrap(
        PAYLOAD,
        "f.xml",
        content_type="application/xml",
        sign=partner.kp,
        encrypt_for=relais.kp.cert,
        algorithm=algorithm,
    )
    der = tmp_path / "body.der"
    der.write_bytes(w.body)
    inner = run_openssl(
        openssl, "cms", "-decrypt", "-binary", "-inform", "DER", "-in", der, "-recip", relais.cert, "-inkey", relais.key
    )
    signed = tmp_path / "signed.eml"
    signed.write_bytes(inner)
    content = run_openssl(openssl, "cms", "-verify", "-binary", "-crlfeol", "-noverify", "-in", signed)
    assert mime.parse(content).body == PAYLOAD
    assert w.mic == b64_digest(content)  # the MIC Relais expects back: over the signed entity


def test_wrap_encrypted_unsigned_mic_matches_openssl(openssl: str, tmp_path: Path, relais: Station) -> None:
    w = message.wrap(PAYLOAD, "f.xml", sign=None, encrypt_for=relais.kp.cert, digest="sha-1")
    der = tmp_path / "body.der"
    der.write_bytes(w.body)
    inner = run_openssl(
        openssl, "cms", "-decrypt", "-binary", "-inform", "DER", "-in", der, "-recip", relais.cert, "-inkey", relais.key
    )
    assert w.mic == b64_digest(inner, "sha1")  # over the decrypted entity, headers and content
    assert mime.parse(inner).body == PAYLOAD


# --------------------------------------------------------------------------- interop (c): compressed data


def test_compressed_parses_with_openssl(openssl: str, tmp_path: Path) -> None:
    data = b"<Invoice/>\n" * 500
    der = tmp_path / "c.der"
    der.write_bytes(cms.compress(data))
    printed = run_openssl(openssl, "cms", "-cmsout", "-inform", "DER", "-print", "-in", der).decode()
    assert "id-smime-ct-compressedData" in printed
    assert "zlib compression" in printed and "pkcs7-data" in printed
    # the eContent is an RFC 1950 zlib stream of the data
    hexdump = "".join(re.findall(r"^\s+[0-9a-f]{4} - ((?:[0-9a-f]{2}[ -]){1,16})", printed, re.MULTILINE))
    econtent = bytes.fromhex(hexdump.replace("-", " "))
    assert zlib.decompress(econtent) == data


# --------------------------------------------------------------------------- EC signers, MDN-style use


def _ec_keypair() -> certs.KeyPair:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ec-partner")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=9))
        .sign(key, hashes.SHA256())
    )
    return certs.KeyPair(cert, key)


@pytest.mark.parametrize("digest", ["sha-256", "sha-1"])
def test_ec_signer(digest: str, relais: Station) -> None:
    kp = _ec_keypair()
    w = message.wrap(PAYLOAD, "f.xml", sign=kp, encrypt_for=relais.kp.cert, digest=digest)
    u = message.unwrap(w.content_type, w.body, own=relais.kp, partner_certs=[kp.cert], requested_digests=[digest])
    assert u.signed and u.signer == kp.cert and u.mic == w.mic and u.signature_digest == digest


def test_signed_multipart_for_mdns(partner: Station, relais: Station) -> None:
    report = mime.make(
        'multipart/report; report-type=disposition-notification; boundary="r"',
        b"--r\r\nContent-Type: text/plain\r\n\r\nok\r\n--r\r\nContent-Type: message/disposition-notification\r\n\r\n"
        b"Disposition: automatic-action/MDN-sent-automatically; processed\r\n--r--\r\n",
    )
    content_type, body = message.signed_multipart(report, relais.kp, "sha1")
    assert "micalg=sha-1" in content_type
    assert first_part(content_type, body) == report
    u = message.unwrap(content_type, body, own=partner.kp, partner_certs=[relais.kp.cert], requested_digests=[])
    assert u.signed and u.content_type == "multipart/report"
    assert ("Content-Type", 'multipart/report; report-type=disposition-notification; boundary="r"') in u.payload_headers
    assert u.mic == b64_digest(report, "sha1") and u.mic_digest == "sha-1"
