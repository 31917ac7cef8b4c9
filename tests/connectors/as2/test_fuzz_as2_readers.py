"""Fuzz the AS2 readers of hostile input with hypothesis: MIME (connectors/as2/mime.py), CMS
(connectors/as2/cms/), a whole message (`message.unwrap`) and an MDN (`mdn.parse`).

Seeds are made with the project's own helpers: a payload signed, compressed and encrypted by
`message.wrap`, a signed MDN by `mdn.build`, and each CMS structure alone. For any bytes, random or a
mutation of a seed, each reader returns or raises the `As2CryptoError` it documents (`MalformedMessage`
for MIME, `DecompressionFailed`, `DecryptionFailed`, `AuthenticationFailed` or `IntegrityCheckFailed`
for CMS), never another exception, within the per-input deadline (tests/support/fuzzing.py). `unwrap`
turns any unplanned exception into `UnexpectedProcessingError`: here such a conversion counts as a
failure (a reader's own refusal is expected), so its catch-all hides nothing.
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from connectors.as2 import cms, mdn, message, mime
from connectors.as2.errors import As2CryptoError, MalformedMessage, UnexpectedProcessingError
from flows.domain.errors import RelaisError
from relais import generate as gen
from tests.support.as2_keys import make_test_keypair
from tests.support.fuzzing import fuzzed, hostile_bytes, mutations, no_hang

OURS = make_test_keypair("relais-fuzz")
PARTNER = make_test_keypair("partner-fuzz")
PAYLOAD = gen.invoice_xml("ubl", next(gen.plan(1, 1, gen.sample_directory(), seed=5)))

WRAPPED = message.wrap(PAYLOAD, "facture.xml", sign=PARTNER, encrypt_for=OURS.cert, compress=True)
SIGNED = message.wrap(PAYLOAD, "facture.xml", sign=PARTNER, digest="sha-1")
PLAIN_ENTITY = mime.make("application/xml", PAYLOAD, [("Content-Disposition", 'attachment; filename="f.xml"')])
SIGNATURE = cms.sign_detached(PLAIN_ENTITY, PARTNER)
COMPRESSED = cms.compress(PLAIN_ENTITY)
ENVELOPED = cms.encrypt(PLAIN_ENTITY, OURS.cert, "aes128-cbc")
AUTH_ENVELOPED = cms.encrypt(PLAIN_ENTITY, OURS.cert, "aes256-gcm")
MESSAGES = [(WRAPPED.content_type, WRAPPED.body), (SIGNED.content_type, SIGNED.body)]


def _entity(wrapped: message.Wrapped) -> bytes:
    return mime.make(wrapped.content_type, wrapped.body, [h for h in wrapped.headers if h[0] != "Content-Type"])


MDN_HEADERS, MDN_BODY = mdn.http_parts(
    mdn.build(our_id="relais", partner_id="partner", original_message_id="<1@partner>", mic=WRAPPED.mic, sign=OURS).data
)
MDN_TYPE = next(v for k, v in MDN_HEADERS if k.lower() == "content-type")
MIME_SEEDS = (_entity(SIGNED), _entity(WRAPPED), MDN_BODY, PLAIN_ENTITY)
CMS_SEEDS = (SIGNATURE, COMPRESSED, ENVELOPED, AUTH_ENVELOPED)


def _own(call, *refusals: type[BaseException]) -> object:
    """`call()`, a refusal of the types it documents being fine; anything else fails the example."""
    with no_hang():
        try:
            return call()
        except refusals:
            return None


@given(data=hostile_bytes(*MIME_SEEDS))
@fuzzed(250)
@example(data=b"Content-Type: multipart/signed; boundary=\r\n\r\n")
@example(data=b"Content-Type: multipart/signed; boundary*0*=x'y'%\r\n\r\n--")
def test_mime_reads_any_bytes(data: bytes) -> None:
    entity = mime.parse(data)  # never refuses: not MIME is all body
    assert entity.raw == data
    assert isinstance(mime.filename(entity), str | None)
    assert isinstance(mime.canonical(data), bytes)
    _own(lambda: mime.decoded_body(entity), MalformedMessage)
    parts = _own(lambda: mime.split_multipart(entity), MalformedMessage)
    for part in parts or []:
        inner = mime.parse(part)
        _own(lambda inner=inner: mime.decoded_body(inner), MalformedMessage)
    for _name, value in entity.headers:
        mime.parse_content_type(value)


@given(der=hostile_bytes(*CMS_SEEDS), content=st.sampled_from([PLAIN_ENTITY, b""]))
@fuzzed(250)
@example(der=b"\x30\x80\x06\x00", content=b"")  # found: an empty OID, PyAsn1Error (fixed)
@example(der=b"\x30\x03\x06\x01\x80", content=b"")  # found: PyAsn1Error from content_kind (fixed)
def test_cms_reads_any_bytes(der: bytes, content: bytes) -> None:
    _own(lambda: cms.content_kind(der), MalformedMessage)
    _own(lambda: cms.decompress(der, 1_000_000), As2CryptoError)
    _own(lambda: cms.decrypt(der, OURS), As2CryptoError)
    _own(lambda: cms.verify_detached(content, der, [PARTNER.cert]), As2CryptoError)
    _own(lambda: cms.verify_attached(der, [PARTNER.cert]), As2CryptoError)


def _unwrap(content_type: str, body: bytes) -> None:
    with no_hang():
        try:
            message.unwrap(content_type, body, own=OURS, partner_certs=[PARTNER.cert], max_bytes=1_000_000)
        except As2CryptoError as e:
            # the catch-all's conversion: exactly an UnexpectedProcessingError, caused by a foreign exception
            cause = e.__cause__
            if type(e) is UnexpectedProcessingError and cause is not None and not isinstance(cause, RelaisError):
                pytest.fail(f"unwrap's catch-all hid {type(cause).__name__}: {cause}")


@given(message_=st.sampled_from(MESSAGES).flatmap(lambda m: st.tuples(st.just(m[0]), mutations(m[1]))))
@fuzzed(120)
def test_unwrap_reads_any_body(message_: tuple[str, bytes]) -> None:
    _unwrap(*message_)


@given(
    content_type=st.sampled_from([WRAPPED.content_type, SIGNED.content_type, MDN_TYPE])
    | st.text(max_size=120)
    | st.sampled_from(["application/pkcs7-mime; smime-type=compressed-data", "multipart/signed; boundary=b"]),
    body=hostile_bytes(*MIME_SEEDS, *CMS_SEEDS, max_size=2048),
)
@fuzzed(120)
@example(content_type="application/pkcs7-mime", body=b"\x30\x03\x06\x01\x80")
def test_unwrap_reads_any_content_type_and_body(content_type: str, body: bytes) -> None:
    _unwrap(content_type, body)


@given(
    content_type=st.sampled_from([MDN_TYPE, "multipart/report; report-type=disposition-notification; boundary=b"]),
    body=hostile_bytes(MDN_BODY),
    verify=st.booleans(),
)
@fuzzed(150)
def test_mdn_reads_any_body(content_type: str, body: bytes, verify: bool) -> None:
    _own(
        lambda: mdn.parse(content_type, body, partner_certs=[OURS.cert], require_signature=verify, verify=verify),
        As2CryptoError,
    )


def test_the_seeds_are_valid() -> None:
    """The seeds are what they claim: the fuzzing starts from real messages."""
    got = message.unwrap(WRAPPED.content_type, WRAPPED.body, own=OURS, partner_certs=[PARTNER.cert])
    assert got.payload == PAYLOAD and got.signed and got.encrypted and got.compressed
    assert cms.decrypt(AUTH_ENVELOPED, OURS) == PLAIN_ENTITY == cms.decompress(COMPRESSED, 10**6)
    assert cms.verify_detached(PLAIN_ENTITY, SIGNATURE, [PARTNER.cert], now=dt.datetime.now(dt.UTC))
    assert mdn.parse(MDN_TYPE, MDN_BODY, partner_certs=[OURS.cert]).original_message_id == "<1@partner>"
