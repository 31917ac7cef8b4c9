"""Hostile input against the hardened XML parser and the archive reader.

Every refusal is asserted by rule code and by a readable message naming what
was refused; positive cases check that ordinary invoices and batches go through.
"""

from __future__ import annotations

import gzip
import io
import random
import socket
import stat
import struct
import tarfile
import threading
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from lxml import etree

from flows.domain.errors import Rejected, UnsafeInput
from flows.domain.model import Container
from flows.io import safearchive, safexml
from flows.io.safearchive import ArchiveLimits
from flows.io.safexml import XmlLimits

UBL_NS = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
UBL = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    f'<Invoice xmlns="{UBL_NS}"'
    ' xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">'
    "<cbc:ID>F-2026-001</cbc:ID><cbc:Note>Café</cbc:Note></Invoice>"
).encode()
CII_NS = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"


def refusal(call: Callable[[], object], code: str, *, unsafe: bool = False) -> Rejected:
    """Run `call`, expecting a refusal under rule `code`; return it for further checks."""
    with pytest.raises(Rejected) as info:
        call()
    exc = info.value
    assert exc.rule.code == code, str(exc)
    assert isinstance(exc, UnsafeInput) is unsafe, type(exc)
    message = str(exc)
    assert message.startswith(f"{code}: {exc.rule.message_en}")
    assert "Traceback" not in message and "<lxml" not in message and "\\x" not in message
    assert exc.to_error().rule == code
    return exc


# --- XML ---------------------------------------------------------------------


class TestXmlRefusals:
    def test_empty(self) -> None:
        refusal(lambda: safexml.parse(b""), "RLS-T01")
        refusal(lambda: safexml.peek_root(b""), "RLS-T01")

    def test_not_xml(self) -> None:
        exc = refusal(lambda: safexml.parse(b"%PDF-1.7 not xml"), "RLS-T03")
        assert exc.detail == "Start tag expected, '<' not found"
        assert exc.location == "line 1, column 1"
        refusal(lambda: safexml.peek_root(b"hello"), "RLS-T03")

    def test_truncated(self) -> None:
        truncated = UBL[: UBL.index(b"<cbc:Note>")]
        exc = refusal(lambda: safexml.parse(truncated), "RLS-T03")
        assert exc.detail == "Premature end of data in tag Invoice line 2"
        assert exc.location == f"line 2, column {len(truncated.splitlines()[1]) + 1}"
        # peek_root reads only the start: the root is there.
        assert safexml.peek_root(truncated) == (UBL_NS, "Invoice")
        refusal(lambda: safexml.parse(UBL[:-20]), "RLS-T03")

    def test_mismatched_tags_give_libxml2_message_and_position(self) -> None:
        exc = refusal(lambda: safexml.parse(b"<a>\n  <b></c>\n</a>"), "RLS-T03")
        assert exc.detail == "Opening and ending tag mismatch: b line 2 and c"
        assert exc.location == "line 2, column 10"

    def test_unknown_encoding_declaration(self) -> None:
        data = b'<?xml version="1.0" encoding="UTF-8-W/O-BOM"?><Invoice/>'
        for call in (safexml.parse, safexml.peek_root):
            exc = refusal(lambda call=call: call(data), "RLS-T03")
            assert exc.detail == "unknown encoding 'UTF-8-W/O-BOM' in the XML declaration"

    def test_non_text_encoding_declaration(self) -> None:
        data = b'<?xml version="1.0" encoding="base64"?><a/>'
        exc = refusal(lambda: safexml.parse(data), "RLS-T03")
        assert "base64" in (exc.detail or "")

    def test_declared_encoding_contradicted_by_bytes(self) -> None:
        latin1_as_utf8 = b'<?xml version="1.0" encoding="UTF-8"?><a>caf\xe9</a>'
        exc = refusal(lambda: safexml.parse(latin1_as_utf8), "RLS-T03")
        assert exc.detail == "Invalid bytes in character encoding"
        utf16_declared_ascii_bytes = b'<?xml version="1.0" encoding="UTF-16"?><a/>'
        exc = refusal(lambda: safexml.parse(utf16_declared_ascii_bytes), "RLS-T03")
        assert "'UTF-16'" in (exc.detail or "")

    def test_size_limit(self) -> None:
        exc = refusal(lambda: safexml.parse(UBL, limits=XmlLimits(max_bytes=100)), "RLS-T05", unsafe=True)
        assert str(len(UBL)) in (exc.detail or "")

    def test_libxml2_resource_limits(self) -> None:
        # Text nodes may exceed libxml2's default 10 MB: an attachment under the platform's
        # 10 MB limit is ~13.3 MB of base64. The document as a whole stays under max_bytes.
        huge_text = b"<a>" + b"x" * 14_000_000 + b"</a>"
        assert safexml.parse(huge_text).getroot().text.startswith("xxx")
        exc = refusal(lambda: safexml.parse(huge_text, limits=XmlLimits(max_bytes=10_000_000)), "RLS-T05", unsafe=True)
        assert "14000007" in (exc.detail or "")
        # Nesting stays bounded: at most 100 levels, as Saxon's parser allows (RLS-T19).
        exc = refusal(lambda: safexml.parse(b"<a>" * 3000 + b"</a>" * 3000), "RLS-T19", unsafe=True)
        assert "depth over 100" in (exc.detail or "")
        assert safexml.parse(b"<a>" * 100 + b"</a>" * 100) is not None


SECRET = "RELAIS-SECRET-MARKER"


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text(SECRET)
    return path


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A local TCP server that must never see a connection."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.settimeout(0.05)
    yield server
    server.close()


def assert_no_connection(server: socket.socket) -> None:
    with pytest.raises(TimeoutError):
        server.accept()


def hostile_documents(secret: Path, port: int) -> dict[str, bytes]:
    laughs = "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
    return {
        "xxe-file": (f'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "{secret.as_uri()}">]><a>&x;</a>').encode(),
        "xxe-http": (f'<!DOCTYPE a [<!ENTITY x SYSTEM "http://127.0.0.1:{port}/x">]><a>&x;</a>').encode(),
        "external-dtd": f'<!DOCTYPE a SYSTEM "http://127.0.0.1:{port}/a.dtd"><a/>'.encode(),
        "parameter-entity": (
            f'<!DOCTYPE a [<!ENTITY % p SYSTEM "{secret.as_uri()}"> %p;'
            f'<!ENTITY % q SYSTEM "http://127.0.0.1:{port}/q"> %q;]><a/>'
        ).encode(),
        "billion-laughs": (f'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol0 "lol">{laughs}]><lolz>&lol9;</lolz>')
        .replace("&lol0;", "lol")
        .encode(),
        "doctype-only": b'<?xml version="1.0"?>\n<!-- hi -->\n<!DOCTYPE Invoice>\n<Invoice/>',
        "doctype-utf16": '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE a><a/>'.encode("utf-16"),
        "doctype-utf16-no-bom": '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE a><a/>'.encode("utf-16-be"),
        "doctype-utf7": b'<?xml version="1.0" encoding="UTF-7"?>+ADw-!DOCTYPE a+AD4-+ADw-a/+AD4-',
        "doctype-after-long-comment": b"<!--" + b"x" * 100_000 + b"--><!DOCTYPE a><a/>",
    }


HOSTILE = [
    "xxe-file",
    "xxe-http",
    "external-dtd",
    "parameter-entity",
    "billion-laughs",
    "doctype-only",
    "doctype-utf16",
    "doctype-utf16-no-bom",
    "doctype-utf7",
    "doctype-after-long-comment",
]


class TestXmlDoctypeRefusals:
    @pytest.mark.parametrize("case", HOSTILE)
    def test_refused_before_parsing(self, case: str, secret_file: Path, listener: socket.socket) -> None:
        data = hostile_documents(secret_file, listener.getsockname()[1])[case]
        for call in (safexml.parse, safexml.peek_root):
            exc = refusal(lambda call=call: call(data), "RLS-T04", unsafe=True)
            assert exc.detail == "the document has a DOCTYPE declaration"
            assert exc.location.startswith("line ")
        assert_no_connection(listener)

    @pytest.mark.parametrize("case", HOSTILE)
    def test_docinfo_check_refuses_what_the_prolog_scan_missed(
        self, case: str, secret_file: Path, listener: socket.socket, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(safexml, "_check_prolog", lambda data: None)
        data = hostile_documents(secret_file, listener.getsockname()[1])[case]
        exc = refusal(lambda: safexml.parse(data), "RLS-T04", unsafe=True)
        expected = "amplification" if case == "billion-laughs" else "DOCTYPE"
        assert expected in (exc.detail or "")
        assert_no_connection(listener)

    @pytest.mark.parametrize("case", HOSTILE)
    def test_parser_alone_expands_nothing_and_fetches_nothing(
        self, case: str, secret_file: Path, listener: socket.socket
    ) -> None:
        """Without both DOCTYPE checks, the hardened parser still reads no file, no URL."""
        data = hostile_documents(secret_file, listener.getsockname()[1])[case]
        try:
            root = etree.fromstring(data, safexml.make_parser())
        except etree.XMLSyntaxError as exc:
            assert case == "billion-laughs" and "amplification" in str(exc)
        else:
            text = etree.tostring(root, encoding="unicode")
            assert SECRET not in text
            assert "lollol" not in text
        assert_no_connection(listener)


class TestXmlAccepted:
    def test_parse_ubl(self) -> None:
        tree = safexml.parse(UBL)
        assert tree.getroot().tag == f"{{{UBL_NS}}}Invoice"
        assert tree.getroot()[1].text == "Café"

    def test_peek_root_ubl(self) -> None:
        assert safexml.peek_root(UBL) == (UBL_NS, "Invoice")

    def test_peek_root_reads_only_the_start(self) -> None:
        start = f'<rsm:CrossIndustryInvoice xmlns:rsm="{CII_NS}"><broken'.encode()
        assert safexml.peek_root(start) == (CII_NS, "CrossIndustryInvoice")
        assert safexml.peek_root(b"<!-- c --><?pi x?>\n<Invoice/>") == (None, "Invoice")

    def test_utf16_with_bom(self) -> None:
        for codec in ("utf-16", "utf-16-be", "utf-16-le"):
            data = UBL.decode().replace("UTF-8", "UTF-16").encode(codec)
            if codec != "utf-16":
                data = ("\ufeff" + UBL.decode().replace("UTF-8", "UTF-16")).encode(codec)
            assert safexml.parse(data).getroot()[1].text == "Café"
            assert safexml.peek_root(data) == (UBL_NS, "Invoice")

    def test_utf8_bom_and_latin1(self) -> None:
        assert safexml.parse(b"\xef\xbb\xbf" + UBL).getroot()[0].text == "F-2026-001"
        latin1 = b'<?xml version="1.0" encoding="ISO-8859-1"?><a>caf\xe9</a>'
        assert safexml.parse(latin1).getroot().text == "café"

    def test_comments_kept(self) -> None:
        root = safexml.parse(b"<a><!-- keep --></a>").getroot()
        assert isinstance(root[0], etree._Comment)

    def test_make_parser_cannot_be_weakened(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="resolve_entities"):
            safexml.make_parser(resolve_entities=True)
        parser = safexml.make_parser(remove_blank_text=True)
        blank = etree.fromstring(b"<a>\n  <b/>\n</a>", parser)
        assert blank.text is None and blank[0].tail is None  # the extra option applies
        secret = tmp_path / "secret.txt"
        secret.write_text("TOP-SECRET")
        xxe = f'<!DOCTYPE a [<!ENTITY x SYSTEM "{secret.as_uri()}">]><a>&x;</a>'.encode()
        try:  # the hardened options stay: an external entity is never read
            assert b"TOP-SECRET" not in etree.tostring(etree.fromstring(xxe, parser))
        except etree.XMLSyntaxError:
            pass
        # and the parse built on it refuses the DOCTYPE outright, under its rule
        refusal(lambda: safexml.parse(xxe), "RLS-T04", unsafe=True)

    def test_threads(self) -> None:
        errors: list[BaseException] = []

        def work() -> None:
            try:
                for _ in range(300):
                    assert safexml.parse(UBL).getroot()[0].text == "F-2026-001"
                    refusal(lambda: safexml.parse(UBL[:-5]), "RLS-T03")
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors


# --- sniff -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "container"),
    [
        (b"PK\x03\x04\x14\x00", Container.ZIP),
        (b"PK\x05\x06" + b"\x00" * 18, Container.ZIP),
        (gzip.compress(b"x", mtime=0), Container.TAR_GZ),
        (b"%PDF-1.7\n", Container.PDF),
        (b"\r\n\r\n%PDF-1.4", Container.PDF),
        (b"garbage" * 10 + b"%PDF-1.4", Container.PDF),
        (UBL, Container.XML),
        (b"\xef\xbb\xbf\n  <Invoice/>", Container.XML),
        ("\n<Invoice/>".encode("utf-16"), Container.XML),
        ("<Invoice/>".encode("utf-16-le"), Container.XML),
        (b"<!-- %PDF- in a comment --><a/>", Container.XML),
        (b"", Container.UNKNOWN),
        (b"Invoice;123;EUR", Container.UNKNOWN),
    ],
)
def test_sniff(head: bytes, container: Container) -> None:
    assert safearchive.sniff(head) is container


# --- archives: builders ----------------------------------------------------------


def make_zip(path: Path, members: list[tuple[str | zipfile.ZipInfo, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return path


def tar_member(name: str, data: bytes = b"", **attrs: object) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for key, value in attrs.items():
        setattr(info, key, value)
    return info, data


def make_tar_gz(path: Path, members: list[tuple[tarfile.TarInfo, bytes]], fmt: int = tarfile.PAX_FORMAT) -> Path:
    with tarfile.open(path, "w:gz", format=fmt) as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


def check(path: Path, container: Container, limits: ArchiveLimits = ArchiveLimits()) -> int:
    """safearchive.check() on the file at `path` (the reader takes file objects, as the archive gives)."""
    with path.open("rb") as f:
        return safearchive.check(f, container, limits)


def iter_entries(
    path: Path, container: Container, limits: ArchiveLimits = ArchiveLimits()
) -> Iterator[safearchive.Entry]:
    """safearchive.iter_entries() on the file at `path`, kept open while the entries are read."""
    with path.open("rb") as f:
        yield from safearchive.iter_entries(f, container, limits)


def read_all(path: Path, container: Container, limits: ArchiveLimits = ArchiveLimits()) -> list[tuple[str, bytes]]:
    return [(e.name, e.read()) for e in iter_entries(path, container, limits)]


def both_refuse(
    path: Path, container: Container, code: str, *, unsafe: bool = True, limits: ArchiveLimits = ArchiveLimits()
) -> Rejected:
    """check() refuses, and so does iter_entries() on its own (defence in depth)."""
    exc = refusal(lambda: check(path, container, limits), code, unsafe=unsafe)
    again = refusal(lambda: read_all(path, container, limits), code, unsafe=unsafe)
    assert again.detail == exc.detail
    return exc


INVOICES = [(f"lot/facture-{i}.xml", UBL.replace(b"F-2026-001", b"F-%d" % i)) for i in range(3)]


# --- archives: accepted ----------------------------------------------------------


class TestArchivesAccepted:
    def test_zip_entries_in_order(self, tmp_path: Path) -> None:
        path = make_zip(
            tmp_path / "lot.zip",
            [
                ("lot/", b""),
                *INVOICES,
                ("__MACOSX/lot/._facture-0.xml", b"\0\5\26\7"),
                ("lot/.DS_Store", b"junk"),
                ("lot/._facture-1.xml", b"junk"),
                ("./z\\last.xml", b"<a/>"),
            ],
        )
        assert safearchive.sniff(path.read_bytes()[:1024]) is Container.ZIP
        assert check(path, Container.ZIP) == 4
        assert read_all(path, Container.ZIP) == [*INVOICES, ("z/last.xml", b"<a/>")]
        sizes = [(e.name, e.size) for e in iter_entries(path, Container.ZIP)]
        assert sizes[0] == ("lot/facture-0.xml", len(INVOICES[0][1]))

    def test_tar_gz_entries_in_order(self, tmp_path: Path) -> None:
        members = [tar_member("lot", type=tarfile.DIRTYPE)]
        members += [tar_member(name, data) for name, data in INVOICES]
        members += [tar_member("lot/._facture-0.xml", b"junk"), tar_member("./z/last.xml", b"<a/>")]
        for fmt in (tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT):
            path = make_tar_gz(tmp_path / f"lot-{fmt}.tar.gz", members, fmt)
            assert safearchive.sniff(path.read_bytes()[:1024]) is Container.TAR_GZ
            assert check(path, Container.TAR_GZ) == 4
            assert read_all(path, Container.TAR_GZ) == [*INVOICES, ("z/last.xml", b"<a/>")]

    def test_long_names_and_unicode(self, tmp_path: Path) -> None:
        name = "lot/" + "é" * 120 + ".xml"
        path = make_tar_gz(tmp_path / "long.tar.gz", [tar_member(name, b"<a/>")])
        assert read_all(path, Container.TAR_GZ) == [(name, b"<a/>")]
        path = make_zip(tmp_path / "long.zip", [(name, b"<a/>")])
        assert read_all(path, Container.ZIP) == [(name, b"<a/>")]

    def test_empty_archives(self, tmp_path: Path) -> None:
        assert check(make_zip(tmp_path / "e.zip", []), Container.ZIP) == 0
        assert check(make_tar_gz(tmp_path / "e.tar.gz", []), Container.TAR_GZ) == 0

    def test_unread_entries_are_skipped(self, tmp_path: Path) -> None:
        path = make_tar_gz(tmp_path / "lot.tar.gz", [tar_member(n, d) for n, d in INVOICES])
        entries = iter_entries(path, Container.TAR_GZ)
        next(entries)
        third = [e for e in entries][-1]
        with pytest.raises(RuntimeError, match="after the iterator moved on"):
            third.read()  # the stream has gone past it

    @pytest.mark.parametrize("container", [Container.ZIP, Container.TAR_GZ])
    def test_entry_reads_once_while_current(self, tmp_path: Path, container: Container) -> None:
        if container is Container.ZIP:
            path = make_zip(tmp_path / "lot.zip", INVOICES)
        else:
            path = make_tar_gz(tmp_path / "lot.tar.gz", [tar_member(n, d) for n, d in INVOICES])
        entries = iter_entries(path, container)
        first = next(entries)
        assert first.read() == INVOICES[0][1]
        with pytest.raises(RuntimeError, match="read twice"):
            first.read()
        second = next(entries)
        entries.close()
        with pytest.raises(RuntimeError):
            second.read()

    def test_not_an_archive_container(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError):
            safearchive.check(io.BytesIO(UBL), Container.XML)

    @pytest.mark.parametrize("container", [Container.ZIP, Container.TAR_GZ])
    def test_any_seekable_file_object_from_its_start(self, tmp_path: Path, container: Container) -> None:
        """In-memory objects (no file descriptor) read like files; each reader starts from the start."""
        if container is Container.ZIP:
            path = make_zip(tmp_path / "lot.zip", INVOICES)
        else:
            path = make_tar_gz(tmp_path / "lot.tar.gz", [tar_member(n, d) for n, d in INVOICES])
        f = io.BytesIO(path.read_bytes())
        f.seek(17)
        assert safearchive.check(f, container) == 3
        assert [(e.name, e.read()) for e in safearchive.iter_entries(f, container)] == INVOICES  # same object
        assert not f.closed  # the caller's to close

    def test_legitimate_large_compressible_batch(self, tmp_path: Path) -> None:
        # Real invoices compress 10-30x: 3 MiB of varied XML stays under the ratio limit.
        rng = random.Random(7)
        data = b"".join(b"<cbc:Note>%d %s</cbc:Note>" % (i, rng.randbytes(8).hex().encode()) for i in range(80_000))
        path = make_zip(tmp_path / "big.zip", [("big.xml", data)])
        assert check(path, Container.ZIP) == 1
        path = make_tar_gz(tmp_path / "big.tar.gz", [tar_member("big.xml", data)])
        assert read_all(path, Container.TAR_GZ) == [("big.xml", data)]


# --- archives: unsafe entries (RLS-T06) ----------------------------------------

TRAVERSALS = [
    "../evil.xml",
    "lot/../../evil.xml",
    "..\\evil.xml",
    "lot\\..\\..\\evil.xml",
    "lot/.../x.xml",
    "__MACOSX/../../evil.xml",
]
ABSOLUTES = ["/etc/cron.d/evil", "C:\\Windows\\evil.xml", "c:evil.xml", "\\\\srv\\share\\evil.xml"]


class TestUnsafeEntries:
    @pytest.mark.parametrize("name", TRAVERSALS + ABSOLUTES)
    def test_zip_names(self, tmp_path: Path, name: str) -> None:
        path = make_zip(tmp_path / "x.zip", [("ok.xml", b"<a/>"), (name, b"<a/>")])
        exc = both_refuse(path, Container.ZIP, "RLS-T06")
        assert repr(name) in (exc.detail or "")
        assert ("traversal" if name in TRAVERSALS else "absolute path") in (exc.detail or "")

    @pytest.mark.parametrize("name", TRAVERSALS + ABSOLUTES)
    def test_tar_names(self, tmp_path: Path, name: str) -> None:
        members = [tar_member("ok.xml", b"<a/>"), tar_member(name, b"<a/>")]
        path = make_tar_gz(tmp_path / "x.tar.gz", members)
        exc = both_refuse(path, Container.TAR_GZ, "RLS-T06")
        assert repr(name) in (exc.detail or "")

    def test_zip_symlink(self, tmp_path: Path) -> None:
        link = zipfile.ZipInfo("facture.xml")
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        path = make_zip(tmp_path / "x.zip", [(link, b"/etc/passwd")])
        exc = both_refuse(path, Container.ZIP, "RLS-T06")
        assert exc.detail == "'facture.xml' is a symbolic link"

    def test_zip_device(self, tmp_path: Path) -> None:
        dev = zipfile.ZipInfo("facture.xml")
        dev.external_attr = (stat.S_IFCHR | 0o666) << 16
        path = make_zip(tmp_path / "x.zip", [(dev, b"")])
        assert "device" in (both_refuse(path, Container.ZIP, "RLS-T06").detail or "")

    @pytest.mark.parametrize(
        ("member", "expected"),
        [
            (
                tar_member("facture.xml", type=tarfile.SYMTYPE, linkname="/etc/passwd"),
                "symbolic link to '/etc/passwd'",
            ),
            (
                tar_member("facture.xml", type=tarfile.LNKTYPE, linkname="/etc/shadow"),
                "hard link to '/etc/shadow'",
            ),
            (tar_member("facture.xml", type=tarfile.CHRTYPE, devmajor=1, devminor=3), "device"),
            (tar_member("facture.xml", type=tarfile.BLKTYPE, devmajor=8, devminor=0), "device"),
            (tar_member("facture.xml", type=tarfile.FIFOTYPE), "fifo"),
            (tar_member("facture.xml", type=tarfile.GNUTYPE_SPARSE), "sparse file"),
        ],
        ids=["symlink", "hardlink", "chardev", "blockdev", "fifo", "sparse"],
    )
    def test_tar_links_and_devices(self, tmp_path: Path, member: tuple[tarfile.TarInfo, bytes], expected: str) -> None:
        fmt = tarfile.GNU_FORMAT if member[0].type == tarfile.GNUTYPE_SPARSE else tarfile.PAX_FORMAT
        path = make_tar_gz(tmp_path / "x.tar.gz", [tar_member("ok.xml", b"<a/>"), member], fmt)
        exc = both_refuse(path, Container.TAR_GZ, "RLS-T06")
        assert exc.detail == f"'facture.xml' is a {expected}"


# --- archives: bombs (RLS-T07) --------------------------------------------------

ZEROS = b"\0" * 50_000_000


class TestBombs:
    def test_zip_bomb_ratio(self, tmp_path: Path) -> None:
        path = make_zip(tmp_path / "bomb.zip", [("facture.xml", ZEROS)])
        exc = both_refuse(path, Container.ZIP, "RLS-T07")
        assert "'facture.xml' expands from" in (exc.detail or "") and "ratio" in (exc.detail or "")

    def test_tar_gz_bomb_ratio(self, tmp_path: Path) -> None:
        path = make_tar_gz(tmp_path / "bomb.tar.gz", [tar_member("facture.xml", ZEROS)])
        exc = both_refuse(path, Container.TAR_GZ, "RLS-T07")
        assert "ratio" in (exc.detail or "")

    def test_gzip_bomb_that_is_no_tar(self, tmp_path: Path) -> None:
        path = tmp_path / "bomb.gz"
        path.write_bytes(gzip.compress(b"x" * 512 + ZEROS))  # an invalid header, then zeros
        refusal(lambda: check(path, Container.TAR_GZ), "RLS-T13")
        path.write_bytes(gzip.compress(ZEROS))  # reads as an empty tar, then a bomb
        refusal(lambda: check(path, Container.TAR_GZ), "RLS-T07", unsafe=True)

    def test_tar_pax_header_bomb(self, tmp_path: Path) -> None:
        """tarfile reads a pax header whole: the stream limits stop it early."""
        info, data = tar_member("facture.xml", b"<a/>")
        info.pax_headers = {"comment": "x" * 50_000_000}
        path = make_tar_gz(tmp_path / "pax.tar.gz", [(info, data)])
        exc = both_refuse(path, Container.TAR_GZ, "RLS-T07")
        assert "ratio" in (exc.detail or "")

    def test_overall_ratio_of_small_entries(self, tmp_path: Path) -> None:
        # No entry reaches 1 MiB, so only the whole archive's ratio can tell.
        members = [(f"f{i}.xml", b"\0" * 900_000) for i in range(30)]
        path = make_zip(tmp_path / "many.zip", members)
        exc = both_refuse(path, Container.ZIP, "RLS-T07")
        assert "archive" in (exc.detail or "")
        path = make_tar_gz(tmp_path / "many.tar.gz", [tar_member(n, d) for n, d in members])
        both_refuse(path, Container.TAR_GZ, "RLS-T07")

    @pytest.mark.parametrize("container", [Container.ZIP, Container.TAR_GZ])
    def test_too_many_entries(self, tmp_path: Path, container: Container) -> None:
        members = [(f"f{i}.xml", b"<a/>") for i in range(6)]
        limits = ArchiveLimits(max_entries=5)
        if container is Container.ZIP:
            path = make_zip(tmp_path / "many.zip", members)
        else:
            path = make_tar_gz(tmp_path / "many.tar.gz", [tar_member(n, d) for n, d in members])
        exc = both_refuse(path, container, "RLS-T07", limits=limits)
        assert "entries" in (exc.detail or "")
        assert check(path, container, ArchiveLimits(max_entries=6)) == 6

    @pytest.mark.parametrize("container", [Container.ZIP, Container.TAR_GZ])
    def test_entry_too_large(self, tmp_path: Path, container: Container) -> None:
        limits = ArchiveLimits(max_entry_bytes=1000)
        data = bytes(random.Random(1).randbytes(1001))
        if container is Container.ZIP:
            path = make_zip(tmp_path / "big.zip", [("big.xml", data)])
        else:
            path = make_tar_gz(tmp_path / "big.tar.gz", [tar_member("big.xml", data)])
        exc = both_refuse(path, container, "RLS-T07", limits=limits)
        assert exc.detail == "'big.xml' is 1001 bytes, over the limit of 1000 per entry"

    @pytest.mark.parametrize("container", [Container.ZIP, Container.TAR_GZ])
    def test_total_too_large(self, tmp_path: Path, container: Container) -> None:
        limits = ArchiveLimits(max_total_bytes=2500)
        members = [(f"f{i}.xml", random.Random(i).randbytes(1000)) for i in range(3)]
        if container is Container.ZIP:
            path = make_zip(tmp_path / "t.zip", members)
        else:
            path = make_tar_gz(tmp_path / "t.tar.gz", [tar_member(n, d) for n, d in members])
        exc = both_refuse(path, container, "RLS-T07", limits=limits)
        assert exc.detail == "over 2500 bytes in all (reached at 'f2.xml')"

    def test_zip_size_lie(self, tmp_path: Path) -> None:
        """The directory says 1,000 bytes; the deflated data holds 5,000,000."""
        content = b"<a>" + b" " * 4_999_993 + b"</a>"
        path = make_zip(tmp_path / "lie.zip", [("facture.xml", content)])
        raw = bytearray(path.read_bytes())
        local, central = raw.find(b"PK\x03\x04"), raw.find(b"PK\x01\x02")
        struct.pack_into("<I", raw, local + 22, 1000)
        struct.pack_into("<I", raw, central + 24, 1000)
        path.write_bytes(bytes(raw))
        assert zipfile.ZipFile(path).getinfo("facture.xml").file_size == 1000
        exc = both_refuse(path, Container.ZIP, "RLS-T07")
        assert exc.detail == "'facture.xml' holds more data than its declared 1000 bytes"

    def test_zip_central_directory_too_large(self, tmp_path: Path) -> None:
        path = make_zip(tmp_path / "cd.zip", [(f"{'n' * 200}{i}.xml", b"") for i in range(20)])
        exc = both_refuse(path, Container.ZIP, "RLS-T07", limits=ArchiveLimits(max_entries=1))
        assert "zip directory declares 20 entries" in (exc.detail or "")


# --- archives: unreadable (RLS-T13) ----------------------------------------------


class TestUnreadable:
    def test_truncated_zip(self, tmp_path: Path) -> None:
        path = make_zip(tmp_path / "t.zip", INVOICES)
        path.write_bytes(path.read_bytes()[:-30])
        exc = both_refuse(path, Container.ZIP, "RLS-T13", unsafe=False)
        assert exc.detail and str(tmp_path) not in exc.detail  # no local path leaks out

    def test_zip_crc_error(self, tmp_path: Path) -> None:
        with zipfile.ZipFile(tmp_path / "c.zip", "w", zipfile.ZIP_STORED) as zf:
            zf.writestr("facture.xml", UBL)
        raw = bytearray((tmp_path / "c.zip").read_bytes())
        raw[raw.find(b"F-2026-001")] ^= 0x01
        (tmp_path / "c.zip").write_bytes(bytes(raw))
        exc = both_refuse(tmp_path / "c.zip", Container.ZIP, "RLS-T13", unsafe=False)
        assert (exc.detail or "").startswith("'facture.xml': Bad CRC-32")

    def test_encrypted_zip_entry(self, tmp_path: Path) -> None:
        path = make_zip(tmp_path / "e.zip", [("facture.xml", UBL)])
        raw = bytearray(path.read_bytes())
        for signature, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
            at = raw.find(signature) + flags_at
            struct.pack_into("<H", raw, at, struct.unpack_from("<H", raw, at)[0] | 0x1)
        path.write_bytes(bytes(raw))
        exc = both_refuse(path, Container.ZIP, "RLS-T13", unsafe=False)
        assert exc.detail == "encrypted entry 'facture.xml'"

    def test_not_a_zip(self, tmp_path: Path) -> None:
        path = tmp_path / "x.zip"
        path.write_bytes(b"PK\x03\x04 this is not really a zip")
        both_refuse(path, Container.ZIP, "RLS-T13", unsafe=False)

    def test_truncated_tar_gz(self, tmp_path: Path) -> None:
        path = make_tar_gz(tmp_path / "t.tar.gz", [tar_member(n, d) for n, d in INVOICES])
        for cut in (10, len(path.read_bytes()) // 2, len(path.read_bytes()) - 4):
            (tmp_path / "cut.tar.gz").write_bytes(path.read_bytes()[:cut])
            both_refuse(tmp_path / "cut.tar.gz", Container.TAR_GZ, "RLS-T13", unsafe=False)

    def test_tar_gz_crc_error(self, tmp_path: Path) -> None:
        path = make_tar_gz(tmp_path / "c.tar.gz", [tar_member(n, d) for n, d in INVOICES])
        raw = bytearray(path.read_bytes())
        raw[-8] ^= 0xFF  # the gzip trailer's CRC-32
        path.write_bytes(bytes(raw))
        exc = both_refuse(path, Container.TAR_GZ, "RLS-T13", unsafe=False)
        assert "CRC" in (exc.detail or "")

    def test_gzip_of_not_a_tar(self, tmp_path: Path) -> None:
        path = tmp_path / "x.tar.gz"
        path.write_bytes(gzip.compress(UBL))
        both_refuse(path, Container.TAR_GZ, "RLS-T13", unsafe=False)
        path.write_bytes(b"\x1f\x8b but not gzip at all")
        both_refuse(path, Container.TAR_GZ, "RLS-T13", unsafe=False)

    def test_corrupt_tar_header_mid_archive(self, tmp_path: Path) -> None:
        """tarfile would silently end the archive there; the whole batch must be refused."""
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tf:
            for info, data in (tar_member(n, d) for n, d in INVOICES):
                tf.addfile(info, io.BytesIO(data))
        raw = bytearray(buffer.getvalue())
        second_header = raw.find(b"lot/facture-1.xml")
        raw[second_header + 148] ^= 0x07  # its checksum field
        path = tmp_path / "h.tar.gz"
        path.write_bytes(gzip.compress(bytes(raw)))
        exc = both_refuse(path, Container.TAR_GZ, "RLS-T13", unsafe=False)
        assert "header" in (exc.detail or "")

    @pytest.mark.parametrize("container", [Container.ZIP, Container.TAR_GZ])
    def test_random_corruption_never_crashes(self, tmp_path: Path, container: Container) -> None:
        """Flipped and cut bytes give a refusal or a clean read, never another exception."""
        if container is Container.ZIP:
            good = make_zip(tmp_path / "g.zip", INVOICES).read_bytes()
        else:
            members = [tar_member(n, d) for n, d in INVOICES]
            good = make_tar_gz(tmp_path / "g.tar.gz", members).read_bytes()
        rng = random.Random(20261123)
        path = tmp_path / "fuzz"
        for _ in range(300):
            raw = bytearray(good)
            for _ in range(rng.randint(1, 4)):
                raw[rng.randrange(len(raw))] = rng.randrange(256)
            if rng.random() < 0.2:
                raw = raw[: rng.randrange(len(raw))]
            path.write_bytes(bytes(raw))
            try:
                check(path, container)
                read_all(path, container)
            except Rejected as exc:
                assert exc.rule.code in ("RLS-T06", "RLS-T07", "RLS-T13"), str(exc)
