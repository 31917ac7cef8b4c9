"""CMS CompressedData (RFC 3274, zlib) for AS2 (split out of `connectors.as2.cms`)."""

from __future__ import annotations

import zlib

from pyasn1.error import PyAsn1Error
from pyasn1_modules import rfc3274, rfc5652

from connectors.as2.cms.asn1 import _content_info, _decode, _open_content_info
from connectors.as2.errors import DecompressionFailed, MalformedMessage

# --------------------------------------------------------------------------- compression


def compress(data: bytes) -> bytes:
    """DER ContentInfo(CompressedData), RFC 3274: zlib (RFC 1950) over `data`, as id-data."""
    cd = rfc3274.CompressedData()
    cd["version"] = 0
    cd["compressionAlgorithm"]["algorithm"] = rfc3274.id_alg_zlibCompress
    cd["encapContentInfo"]["eContentType"] = rfc5652.id_data
    cd["encapContentInfo"]["eContent"] = zlib.compress(data, 6)
    return _content_info(rfc3274.id_ct_compressedData, cd)


def decompress(der: bytes, max_bytes: int) -> bytes:
    """The content of a CompressedData, refusing (`DecompressionFailed`) to produce more than `max_bytes`."""
    try:
        oid, content = _open_content_info(der)
        if oid != str(rfc3274.id_ct_compressedData):
            raise DecompressionFailed(f"not compressed data but {oid}")
        cd = _decode(content, rfc3274.CompressedData())
    except (PyAsn1Error, MalformedMessage) as e:
        raise DecompressionFailed(f"malformed CompressedData: {e}") from e
    if cd["compressionAlgorithm"]["algorithm"] != rfc3274.id_alg_zlibCompress:
        raise DecompressionFailed(f"unsupported compression algorithm {cd['compressionAlgorithm']['algorithm']}")
    econtent = cd["encapContentInfo"]["eContent"]
    if not econtent.isValue:
        raise DecompressionFailed("CompressedData without content")
    return _inflate(bytes(econtent), max_bytes)


def _inflate(compressed: bytes, max_bytes: int) -> bytes:
    d = zlib.decompressobj()
    out = bytearray()
    chunk = 1 << 20
    pending = compressed
    try:
        while True:
            room = max_bytes + 1 - len(out)
            piece = d.decompress(pending, min(chunk, room))
            out += piece
            if len(out) > max_bytes:
                raise DecompressionFailed(f"decompressed content exceeds {max_bytes} bytes")
            pending = d.unconsumed_tail
            if d.eof:
                break
            if not pending and not piece:
                raise DecompressionFailed("truncated zlib stream")
    except zlib.error as e:
        raise DecompressionFailed(f"invalid zlib data: {e}") from e
    return bytes(out)
