"""AS2 compression (RFC 5402) and the MIC: checked against messages built and opened by the ``openssl`` CLI.

RFC 5402 §4 says which bytes the Received-Content-MIC covers:

- §4.1 signed message: "the same data that was signed in the original
  message" -- the compressed-data entity when the sender compressed before
  signing, the uncompressed payload entity when it signed before compressing;
- §4.2 encrypted, unsigned and §4.3 unencrypted, unsigned: "the uncompressed
  data content including all MIME header fields and any applied
  Content-Transfer-Encoding".

Every expected MIC here is hashlib over bytes that Relais's code never
touched: the entity written by hand (receiving side), or what ``openssl``
gets back out of Relais's body (sending side).

``openssl cms -compress`` / ``-uncompress`` need an OpenSSL built with zlib;
Debian's is not ("unsupported compression algorithm"). Then the CompressedData
is built by ``openssl asn1parse -genconf`` around a stream from Python's
`zlib` (and parsed back by ``openssl cms -cmsout``), and opened by
``openssl asn1parse`` (the eContent octets) plus `zlib.decompress`. Where
``openssl cms -compress`` works, it is used instead.
"""

from __future__ import annotations

import base64
import itertools
import re
import shutil
import subprocess
import uuid
import zlib
from pathlib import Path

import pytest

from connectors.as2 import message, mime
from tests.connectors.as2.test_as2_crypto import (
    ODD_ENTITY,
    PAYLOAD,
    Station,
    _station,
    b64_digest,
    first_part,
    run_openssl,
    smime_split,
)

# --------------------------------------------------------------------------- openssl helpers (no Relais code)

_NO_ZLIB = b"unsupported compression algorithm"


def _tmp(folder: Path, suffix: str) -> Path:
    return folder / f"{uuid.uuid4().hex}{suffix}"


def openssl_compress(openssl: str, folder: Path, data: bytes) -> bytes:
    """DER ContentInfo(CompressedData) of `data`, RFC 3274, built without Relais's code."""
    src = _tmp(folder, ".in")
    src.write_bytes(data)
    done = subprocess.run(
        [openssl, "cms", "-compress", "-binary", "-outform", "DER", "-in", str(src)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    if done.returncode == 0:
        return done.stdout
    assert _NO_ZLIB in done.stderr, done.stderr.decode(errors="replace")
    # this OpenSSL has no zlib: the zlib stream from Python, the CMS structure from openssl's ASN.1 generator
    conf, out = _tmp(folder, ".cnf"), _tmp(folder, ".p7z")
    conf.write_text(
        "asn1 = SEQUENCE:content_info\n"
        "[content_info]\n"
        "type = OID:1.2.840.113549.1.9.16.1.9\n"  # id-ct-compressedData
        "content = EXPLICIT:0,SEQUENCE:compressed_data\n"
        "[compressed_data]\n"
        "version = INTEGER:0\n"
        "algorithm = SEQUENCE:zlib\n"
        "encap = SEQUENCE:encap\n"
        "[zlib]\n"
        "oid = OID:1.2.840.113549.1.9.16.3.8\n"  # id-alg-zlibCompress, parameters absent
        "[encap]\n"
        "type = OID:1.2.840.113549.1.7.1\n"  # id-data
        f"econtent = EXPLICIT:0,FORMAT:HEX,OCTETSTRING:{zlib.compress(data).hex().upper()}\n"
    )
    run_openssl(openssl, "asn1parse", "-genconf", conf, "-noout", "-out", out)
    printed = run_openssl(openssl, "cms", "-cmsout", "-print", "-inform", "DER", "-in", out).decode()
    assert "id-smime-ct-compressedData" in printed and "zlib compression" in printed
    return out.read_bytes()


def openssl_uncompress(openssl: str, folder: Path, der: bytes) -> bytes:
    """The content of a DER CompressedData, opened without Relais's code."""
    src = _tmp(folder, ".p7z")
    src.write_bytes(der)
    done = subprocess.run(
        [openssl, "cms", "-uncompress", "-binary", "-inform", "DER", "-in", str(src)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    if done.returncode == 0:
        return done.stdout
    assert _NO_ZLIB in done.stderr, done.stderr.decode(errors="replace")
    printed = run_openssl(openssl, "cms", "-cmsout", "-print", "-inform", "DER", "-in", src).decode()
    assert "id-smime-ct-compressedData" in printed and "zlib compression" in printed and "pkcs7-data" in printed
    listing = run_openssl(openssl, "asn1parse", "-inform", "DER", "-in", src).decode()
    econtent = listing.split(":pkcs7-data", 1)[1]
    chunks = re.findall(r"prim: OCTET STRING\s+\[HEX DUMP\]:([0-9A-F]+)", econtent)
    assert chunks, listing
    return zlib.decompress(bytes.fromhex("".join(chunks)))


def compressed_entity(der: bytes, cte: str = "base64") -> bytes:
    """An application/pkcs7-mime compressed-data MIME entity around `der`, written by hand."""
    if cte == "base64":
        text = base64.b64encode(der)
        content = b"".join(text[i : i + 64] + b"\r\n" for i in range(0, len(text), 64))
    else:
        content = der
    return (
        b'Content-Type: application/pkcs7-mime; smime-type=compressed-data; name="smime.p7z"\r\n'
        + f"Content-Transfer-Encoding: {cte}\r\n".encode()
        + b'Content-Disposition: attachment; filename="smime.p7z"\r\n\r\n'
        + content
    )


def split_entity(entity: bytes) -> tuple[bytes, bytes]:
    """(header block, content) of a MIME entity, at its first empty line (CRLF or LF)."""
    m = re.search(rb"\r?\n\r?\n", entity)
    assert m is not None
    return entity[: m.start()], entity[m.end() :]


def der_of(entity: bytes) -> bytes:
    """The CMS bytes of an application/pkcs7-mime entity (binary or base64)."""
    head, content = split_entity(entity)
    if re.search(rb"(?im)^content-transfer-encoding:\s*base64", head):
        return base64.b64decode(re.sub(rb"\s+", b"", content))
    return content


def openssl_sign(openssl: str, folder: Path, entity: bytes, signer: tuple[Path, Path], md: str = "sha256") -> bytes:
    """The S/MIME multipart/signed entity (headers included) openssl writes for `entity`, signed as is."""
    src = _tmp(folder, ".mime")
    src.write_bytes(entity)
    return run_openssl(
        openssl, "cms", "-sign", "-binary", "-md", md, "-signer", signer[0], "-inkey", signer[1], "-in", src
    )


def openssl_encrypt(openssl: str, folder: Path, entity: bytes, recipient: Path, cipher: str = "-aes256") -> bytes:
    src = _tmp(folder, ".mime")
    src.write_bytes(entity)
    return run_openssl(openssl, "cms", "-encrypt", cipher, "-binary", "-outform", "DER", "-in", src, recipient)


def openssl_decrypt(openssl: str, folder: Path, der: bytes, recipient: tuple[Path, Path]) -> bytes:
    src = _tmp(folder, ".p7m")
    src.write_bytes(der)
    return run_openssl(
        openssl,
        "cms",
        "-decrypt",
        "-binary",
        "-inform",
        "DER",
        "-in",
        src,
        "-recip",
        recipient[0],
        "-inkey",
        recipient[1],
    )


def openssl_verified_content(openssl: str, folder: Path, signed_entity: bytes) -> bytes:
    """The content an S/MIME multipart/signed entity (CRLF framing) signs, as openssl extracts it."""
    src = _tmp(folder, ".eml")
    src.write_bytes(signed_entity)
    return run_openssl(openssl, "cms", "-verify", "-binary", "-crlfeol", "-noverify", "-in", src)


def rfc_mic_input(openssl: str, folder: Path, content_type: str, body: bytes, recipient: tuple[Path, Path]) -> bytes:
    """The bytes the MIC of an AS2 message covers (RFC 4130 §7.3.1, RFC 5402 §4), found by opening it with openssl.

    Signed: the signed data (§4.1), whatever was compressed around or inside it. Unsigned: the entity
    left once every encryption / compression layer is removed, headers and content (§4.2, §4.3; RFC
    4130: the decrypted entity). Neither: the body. For CRLF-framed multipart/signed (as Relais writes).
    """
    entity = b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    opened = False
    for _layer in range(8):
        head = split_entity(entity)[0].lower()
        if b"multipart/signed" in head:
            return openssl_verified_content(openssl, folder, entity)
        if b"enveloped-data" in head:
            entity = openssl_decrypt(openssl, folder, der_of(entity), recipient)
        elif b"compressed-data" in head:
            entity = openssl_uncompress(openssl, folder, der_of(entity))
        else:
            return entity if opened else body
        opened = True
    raise AssertionError("too many layers")


# the orders a partner may nest the layers in (innermost first), and the entity RFC 5402 §4 hashes
ORDERS = {
    "compressed": "uncompressed",  # §4.3
    "compressed+encrypted": "uncompressed",  # §4.2
    "compressed+signed": "compressed",  # §4.1, compressed before signing: the signed data is compressed
    "compressed+signed+encrypted": "compressed",
    "signed+compressed": "uncompressed",  # §4.1, signed before compressing: the signed data is uncompressed
    "signed+compressed+encrypted": "uncompressed",
}


def build(
    openssl: str,
    folder: Path,
    entity: bytes,
    order: str,
    signer: tuple[Path, Path] | None = None,
    recipient: Path | None = None,
    md: str = "sha256",
    cte: str = "base64",
) -> tuple[str, bytes, bytes]:
    """An AS2 message of the payload `entity` built by openssl: (HTTP Content-Type, HTTP body, MIC input).

    The MIC input is the entity RFC 5402 §4 says the MIC covers, bytes as written here or by openssl.
    """
    layers = order.split("+")
    ctype, current = "", entity  # `current`: the outermost MIME entity so far (headers and content)
    compressed_part: bytes | None = None
    for layer in layers:
        if layer == "compressed":
            der = openssl_compress(openssl, folder, current)
            current = compressed_part = compressed_entity(der, cte)
            ctype, body = 'application/pkcs7-mime; smime-type=compressed-data; name="smime.p7z"', der
        elif layer == "signed":
            assert signer is not None
            current = openssl_sign(openssl, folder, current, signer, md)
            ctype, body = smime_split(current)
        elif layer == "encrypted":
            assert recipient is not None
            der = openssl_encrypt(openssl, folder, current, recipient)
            ctype, body = "application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m", der
            current = b""  # outermost: travels as HTTP headers + body
    assert compressed_part is not None
    expected = compressed_part if ORDERS[order] == "compressed" else entity
    return ctype, body, expected


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def keydir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("as2keys-compression")


@pytest.fixture(scope="module")
def partner(keydir: Path) -> Station:
    return _station(keydir, "partner")


@pytest.fixture(scope="module")
def relais(keydir: Path) -> Station:
    return _station(keydir, "relais")


@pytest.fixture(scope="module")
def openssl() -> str:
    path = shutil.which("openssl")
    if path is None:
        pytest.fail("the openssl command line is required (RFC 5402 interop tests)")
    return path


# payload entities written by hand: odd headers and LF content; a base64 Content-Transfer-Encoding
B64_ENTITY = (
    b"Content-Type: application/xml\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b'Content-Disposition: attachment; filename="b64.xml"\r\n'
    b"\r\n" + base64.encodebytes(PAYLOAD).replace(b"\n", b"\r\n")
)
ENTITIES = {"odd": ODD_ENTITY, "base64": B64_ENTITY}


# --------------------------------------------------------------------------- receiving: openssl -> unwrap


@pytest.mark.parametrize("md", ["sha256", "sha1"])
@pytest.mark.parametrize("entity_name", sorted(ENTITIES))
@pytest.mark.parametrize("order", sorted(ORDERS))
def test_openssl_compressed_mic(
    openssl: str, tmp_path: Path, partner: Station, relais: Station, order: str, entity_name: str, md: str
) -> None:
    entity = ENTITIES[entity_name]
    ctype, body, expected = build(
        openssl, tmp_path, entity, order, signer=(partner.cert, partner.key), recipient=relais.cert, md=md
    )
    u = message.unwrap(
        ctype,
        body,
        own=relais.kp,
        partner_certs=[partner.kp.cert],
        requested_digests=[md],
        require_signature="signed" in order,
        require_encryption="encrypted" in order,
    )
    assert (u.compressed, u.signed, u.encrypted) == (True, "signed" in order, "encrypted" in order)
    assert u.payload == (PAYLOAD if entity_name == "base64" else split_entity(entity)[1])
    assert u.mic_digest == md
    assert u.mic == b64_digest(expected, md), f"{order}: MIC over the {ORDERS[order]} entity expected"


def test_openssl_compressed_binary_inner_entity(
    openssl: str, tmp_path: Path, partner: Station, relais: Station
) -> None:
    """Compressed before signing with a binary (not base64) compressed-data part: still the signed bytes."""
    ctype, body, expected = build(
        openssl,
        tmp_path,
        ODD_ENTITY,
        "compressed+signed+encrypted",
        signer=(partner.cert, partner.key),
        recipient=relais.cert,
        cte="binary",
    )
    u = message.unwrap(ctype, body, own=relais.kp, partner_certs=[partner.kp.cert])
    assert u.signed and u.compressed and u.encrypted
    assert u.mic == b64_digest(expected) and b"Content-Transfer-Encoding: binary" in expected


# --------------------------------------------------------------------------- sending: wrap -> openssl

SEND_CASES = [
    # (sign, encrypt, compress_before_sign)
    (False, False, True),
    (False, True, True),
    (True, False, True),
    (True, True, True),
    (True, False, False),
    (True, True, False),
]


def _payload_entity(name: str) -> bytes:
    """The payload entity `wrap` writes (its documented layout), written here independently."""
    return (
        b"Content-Type: application/xml\r\nContent-Transfer-Encoding: binary\r\n"
        + f'Content-Disposition: attachment; filename="{name}"\r\n\r\n'.encode()
        + PAYLOAD
    )


@pytest.mark.parametrize("digest", ["sha-256", "sha-1"])
@pytest.mark.parametrize("sign,encrypt,compress_before_sign", SEND_CASES)
def test_wrap_compressed_mic_is_rfc5402s(
    openssl: str,
    tmp_path: Path,
    partner: Station,
    relais: Station,
    sign: bool,
    encrypt: bool,
    compress_before_sign: bool,
    digest: str,
) -> None:
    """The MIC Relais expects back for its own compressed messages, recomputed from what openssl opens."""
    w = message.wrap(
        PAYLOAD,
        "f.xml",
        content_type="application/xml",
        sign=partner.kp if sign else None,
        encrypt_for=relais.kp.cert if encrypt else None,
        compress=True,
        digest=digest,
        compress_before_sign=compress_before_sign,
    )
    md = digest.replace("-", "")
    # peel the layers with openssl, outermost first
    if encrypt:
        assert "smime-type=enveloped-data" in w.content_type
        outer = openssl_decrypt(openssl, tmp_path, w.body, (relais.cert, relais.key))
    else:
        outer = mime.make(w.content_type, w.body)  # the entity whose headers travelled as HTTP headers
    if sign and compress_before_sign:
        signed_content = openssl_verified_content(openssl, tmp_path, outer)
        assert b"smime-type=compressed-data" in split_entity(signed_content)[0]
        uncompressed = openssl_uncompress(openssl, tmp_path, der_of(signed_content))
        expected = signed_content  # §4.1: the signed data, here the compressed-data entity
    elif sign:
        assert b"smime-type=compressed-data" in split_entity(outer)[0]
        signed_entity = openssl_uncompress(openssl, tmp_path, der_of(outer))
        assert b"multipart/signed" in split_entity(signed_entity)[0]
        uncompressed = openssl_verified_content(openssl, tmp_path, signed_entity)
        expected = uncompressed  # §4.1: the signed data, here the uncompressed payload entity
    else:
        assert b"smime-type=compressed-data" in split_entity(outer)[0]
        uncompressed = openssl_uncompress(openssl, tmp_path, der_of(outer))
        expected = uncompressed  # §4.2, §4.3: the uncompressed entity, headers and content
    assert uncompressed == _payload_entity("f.xml")
    assert expected == rfc_mic_input(openssl, tmp_path, w.content_type, w.body, (relais.cert, relais.key))
    assert w.mic_digest == digest
    assert w.mic == b64_digest(expected, md)
    # and Relais, receiving its own message, returns that MIC
    u = message.unwrap(
        w.content_type, w.body, own=relais.kp, partner_certs=[partner.kp.cert], requested_digests=[digest]
    )
    assert u.payload == PAYLOAD and u.compressed and u.mic == w.mic


@pytest.mark.parametrize("sign,encrypt", list(itertools.product([False, True], repeat=2)))
def test_uncompressed_mics_unchanged(
    openssl: str, tmp_path: Path, partner: Station, relais: Station, sign: bool, encrypt: bool
) -> None:
    """Without compression the RFC 4130 §7.3.1 MICs stay as they were."""
    w = message.wrap(
        PAYLOAD,
        "f.xml",
        content_type="application/xml",
        sign=partner.kp if sign else None,
        encrypt_for=relais.kp.cert if encrypt else None,
    )
    outer = (
        openssl_decrypt(openssl, tmp_path, w.body, (relais.cert, relais.key))
        if encrypt
        else mime.make(w.content_type, w.body)
    )
    if sign:
        expected = openssl_verified_content(openssl, tmp_path, outer)
        if not encrypt:
            assert expected == first_part(w.content_type, w.body)
    elif encrypt:
        expected = outer  # the decrypted entity
    else:
        expected = w.body  # the content, without headers
        assert w.body == PAYLOAD
    assert w.mic == b64_digest(expected)
