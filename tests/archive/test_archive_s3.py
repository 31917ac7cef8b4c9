"""The S3 archive (archive/s3.py) against a real SeaweedFS (`weed mini`, tests/conftest.py `seaweedfs`).

The contract tests of tests/archive/test_archive.py run against it too (BACKENDS["s3"]); here: what is S3's own
(metadata, Object Lock as SeaweedFS enforces it, tampering, deletion behind Relais's back, a purge
refused), memory and speed on large objects, S3 unreachable at intake and at dispatch, the whole pipeline
with the S3 archive, and `relais archive verify` on both backends.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

pytest.importorskip("boto3")

from botocore.exceptions import ClientError
from click.testing import CliRunner
from structlog.testing import capture_logs

from archive import CorruptObject, LocalArchive
from archive.s3 import BucketNotLocked, S3Archive, parse_url
from relais.s3local import LocalS3 as SeaweedS3
from relais.s3local import free_ports
from tests.conftest import PROJECT_ROOT

DATA = b"<Invoice/>" * 1000
SHA = hashlib.sha256(DATA).hexdigest()


def _archive(server: SeaweedS3, tmp_path: Path, bucket: str = "relais-s3-tests", **kw) -> S3Archive:
    return S3Archive(bucket, f"t-{uuid.uuid4().hex[:12]}", client=server.client(), spool_dir=tmp_path / "spool", **kw)


def _versions(server: SeaweedS3, a: S3Archive, sha256: str) -> list[dict]:
    listing = server.client().list_object_versions(Bucket=a.bucket, Prefix=a.key(sha256))
    return [v for v in listing.get("Versions", []) if v["Key"] == a.key(sha256)]


# --- configuration ----------------------------------------------------------------


def test_url_and_keys() -> None:
    assert parse_url("s3://b/p/q/") == ("b", "p/q")
    with pytest.raises(ValueError):
        parse_url("/var/archive")
    a = S3Archive("b", "/pre/", client=object())
    assert a.key(SHA) == f"pre/sha256/{SHA[:2]}/{SHA[2:4]}/{SHA}"
    assert S3Archive("b", client=object()).key(SHA) == f"sha256/{SHA[:2]}/{SHA[2:4]}/{SHA}"
    with pytest.raises(ValueError, match="not a SHA-256"):
        a.key("../x")


def test_archive_is_imported_lazily() -> None:
    code = "import sys, archive; assert 'boto3' not in sys.modules; archive.S3Archive; assert 'boto3' in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, check=True)


def test_runtime_chooses_the_archive_from_the_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from relais.compose import Runtime
    from relais.settings import Settings

    for name in ("RELAIS_ARCHIVE_URL", "RELAIS_S3_ENDPOINT_URL", "RELAIS_ARCHIVE_RETENTION_YEARS"):
        monkeypatch.delenv(name, raising=False)
    rt = Runtime.open(Settings.from_env(tmp_path / "a"))
    assert type(rt.archive) is LocalArchive  # the default, unchanged
    rt.close()
    monkeypatch.setenv("RELAIS_ARCHIVE_URL", "s3://relais-archive/prod")
    monkeypatch.setenv("RELAIS_S3_ENDPOINT_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("RELAIS_ARCHIVE_RETENTION_YEARS", "11")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    s = Settings.from_env(tmp_path / "b")
    assert (s.archive_url, s.s3_endpoint_url, s.archive_retention_years) == (
        "s3://relais-archive/prod",
        "http://127.0.0.1:1",
        11,
    )
    rt = Runtime.open(s)  # nothing is asked of S3 yet: an unreachable store does not stop a process
    assert isinstance(rt.archive, S3Archive)
    assert (rt.archive.bucket, rt.archive.prefix, rt.archive.retention_years) == ("relais-archive", "prod", 11)
    rt.close()
    monkeypatch.setenv("RELAIS_ARCHIVE_RETENTION_YEARS", "ten")
    with pytest.raises(ValueError, match="RELAIS_ARCHIVE_RETENTION_YEARS"):
        Settings.from_env(tmp_path / "c")


# --- what S3 stores, and what SeaweedFS enforces -------------------------------------


def test_bucket_created_with_object_lock_and_objects_locked(seaweedfs: SeaweedS3, tmp_path: Path) -> None:
    bucket = f"relais-new-{uuid.uuid4().hex[:8]}"
    a = _archive(seaweedfs, tmp_path, bucket)
    c = seaweedfs.client()
    with pytest.raises(ClientError):
        c.head_bucket(Bucket=bucket)
    obj = a.put_bytes(DATA)
    assert c.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]["ObjectLockEnabled"] == "Enabled"
    assert c.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    head = c.head_object(Bucket=bucket, Key=a.key(obj.sha256))
    assert head["Metadata"] == {"sha256": SHA}
    assert head["ContentLength"] == len(DATA)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    expected = dt.datetime.now(dt.UTC).replace(year=dt.datetime.now(dt.UTC).year + 10)
    assert abs(head["ObjectLockRetainUntilDate"] - expected) < dt.timedelta(minutes=5)
    retention = c.get_object_retention(Bucket=bucket, Key=a.key(obj.sha256))["Retention"]
    assert retention["Mode"] == "COMPLIANCE"
    # SeaweedFS enforces compliance mode: the version cannot be deleted, the retention cannot be shortened
    # nor turned into governance mode, even by this admin identity; the bucket cannot be deleted.
    [version] = _versions(seaweedfs, a, obj.sha256)
    for kwargs in ({}, {"BypassGovernanceRetention": True}):
        with pytest.raises(ClientError, match="AccessDenied"):
            c.delete_object(Bucket=bucket, Key=a.key(obj.sha256), VersionId=version["VersionId"], **kwargs)
    shorter = {"Mode": "COMPLIANCE", "RetainUntilDate": dt.datetime.now(dt.UTC) + dt.timedelta(days=1)}
    with pytest.raises(ClientError, match="AccessDenied"):
        c.put_object_retention(Bucket=bucket, Key=a.key(obj.sha256), Retention=shorter)
    governance = {"Mode": "GOVERNANCE", "RetainUntilDate": retention["RetainUntilDate"]}
    with pytest.raises(ClientError, match="AccessDenied"):
        c.put_object_retention(
            Bucket=bucket, Key=a.key(obj.sha256), Retention=governance, BypassGovernanceRetention=True
        )
    with pytest.raises(ClientError, match="BucketNotEmpty"):
        c.delete_bucket(Bucket=bucket)
    assert a.verify(obj.sha256)


def test_retention_years_setting(seaweedfs: SeaweedS3, tmp_path: Path) -> None:
    a = _archive(seaweedfs, tmp_path, retention_years=2)
    obj = a.put_bytes(b"two years")
    head = seaweedfs.client().head_object(Bucket=a.bucket, Key=a.key(obj.sha256))
    assert head["ObjectLockRetainUntilDate"].year == dt.datetime.now(dt.UTC).year + 2
    with pytest.raises(ValueError):
        S3Archive("b", retention_years=0, client=object())


def test_a_bucket_without_object_lock_is_refused(seaweedfs: SeaweedS3, tmp_path: Path) -> None:
    bucket = f"relais-plain-{uuid.uuid4().hex[:8]}"
    seaweedfs.client().create_bucket(Bucket=bucket)
    with pytest.raises(BucketNotLocked):
        _archive(seaweedfs, tmp_path, bucket).put_bytes(DATA)


def test_write_once_one_version(seaweedfs: SeaweedS3, tmp_path: Path) -> None:
    a = _archive(seaweedfs, tmp_path)
    first = a.put_bytes(DATA)
    assert a.put_stream(io.BytesIO(DATA)) == first
    assert len(_versions(seaweedfs, a, SHA)) == 1  # not rewritten: no second version
    assert list((tmp_path / "spool").iterdir()) == []  # no spool file left behind


def test_write_once_refuses_an_object_claiming_other_bytes(seaweedfs: SeaweedS3, tmp_path: Path) -> None:
    """Under the key already: an object whose metadata or size is not ours is not taken as our bytes."""
    a = _archive(seaweedfs, tmp_path)
    seaweedfs.client().put_object(Bucket=a.bucket, Key=a.key(SHA), Body=DATA[:-1], Metadata={"sha256": SHA})
    a.ensure_bucket()
    with pytest.raises(CorruptObject):
        a.put_bytes(DATA)


def test_altered_behind_its_back_is_never_served(seaweedfs: SeaweedS3, tmp_path: Path) -> None:
    """Object Lock keeps the original version; a new version put on top (even claiming the right digest)
    is what a plain GET returns: `open` refuses it, `verify` reports it, the original is still there."""
    a = _archive(seaweedfs, tmp_path)
    obj = a.put_bytes(DATA)
    c = seaweedfs.client()
    c.put_object(
        Bucket=a.bucket, Key=a.key(SHA), Body=DATA.replace(b"Invoice", b"Invoicf", 1), Metadata={"sha256": SHA}
    )
    with pytest.raises(CorruptObject, match="hash to"):
        a.open(obj.sha256)
    with pytest.raises(CorruptObject):
        a.read(obj.sha256)
    assert a.exists(obj.sha256) and not a.verify(obj.sha256)
    c.put_object(Bucket=a.bucket, Key=a.key(SHA), Body=DATA)  # the right bytes, the metadata gone
    with pytest.raises(CorruptObject, match="metadata"):
        a.open(obj.sha256)
    assert not a.verify(obj.sha256)
    versions = _versions(seaweedfs, a, SHA)
    assert len(versions) == 3
    original = min(versions, key=lambda v: v["LastModified"])
    body = c.get_object(Bucket=a.bucket, Key=a.key(SHA), VersionId=original["VersionId"])["Body"].read()
    assert hashlib.sha256(body).hexdigest() == SHA  # locked: intact


def test_deleted_behind_its_back(seaweedfs: SeaweedS3, tmp_path: Path) -> None:
    """A DELETE without a version id is allowed (it adds a delete marker): the object looks missing."""
    a = _archive(seaweedfs, tmp_path)
    obj = a.put_bytes(DATA)
    seaweedfs.client().delete_object(Bucket=a.bucket, Key=a.key(obj.sha256))
    assert not a.exists(obj.sha256)
    assert not a.verify(obj.sha256)
    with pytest.raises(FileNotFoundError):
        a.open(obj.sha256)
    assert len(_versions(seaweedfs, a, SHA)) == 1  # the locked version is still stored
    assert a.put_bytes(DATA) == obj and a.verify(obj.sha256)  # archiving the bytes again restores the key


def test_purge_of_a_locked_object_is_refused_and_logged(seaweedfs: SeaweedS3, tmp_path: Path) -> None:
    a = _archive(seaweedfs, tmp_path)
    obj = a.put_bytes(DATA)
    seaweedfs.client().put_object(Bucket=a.bucket, Key=a.key(SHA), Body=b"intruder")  # an unlocked version
    with capture_logs() as logs, pytest.raises(PermissionError, match="retention-locked"):
        a.delete(obj.sha256)
    refused = [e for e in logs if e["event"] == "archive.delete_refused"]
    assert len(refused) == 1 and refused[0]["key"] == a.key(SHA) and refused[0]["error"] == "AccessDenied"
    assert [e["event"] for e in logs if e["event"] == "archive.deleted"] == ["archive.deleted"]  # the intruder's
    assert a.exists(obj.sha256) and a.verify(obj.sha256)  # the locked original is what is served again


# --- large objects: bounded memory, speed ----------------------------------------------


_BIG = textwrap.dedent("""
    import io, json, os, sys, time
    os.environ.update(json.loads(sys.argv[1]))
    from archive.s3 import S3Archive

    def hwm_kb():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])

    class Pattern(io.RawIOBase):
        '''n bytes made on the fly (not zeros, so nothing compresses), one read in memory at a time.'''
        def __init__(self, n):
            self.left = n
            self.block = bytes(range(256)) * 4096
        def readable(self):
            return True
        def read(self, size=-1):
            size = min(self.left, len(self.block) if size is None or size < 0 else size, len(self.block))
            self.left -= size
            return self.block[:size]

    size = int(sys.argv[3])
    a = S3Archive("relais-big", sys.argv[2], endpoint_url=os.environ["RELAIS_S3_ENDPOINT_URL"], spool_dir=sys.argv[4])
    a.verify(a.put_stream(Pattern(3 << 20)).sha256)  # warm up: imports, connections
    before = hwm_kb()
    t0 = time.monotonic()
    obj = a.put_stream(Pattern(size))
    t1 = time.monotonic()
    n = 0
    with a.open(obj.sha256) as f:
        while chunk := f.read(1 << 20):
            n += len(chunk)
    t2 = time.monotonic()
    print(json.dumps({"sha256": obj.sha256, "size": obj.size, "read": n, "growth_kb": hwm_kb() - before,
                      "put_mb_s": size / 2**20 / (t1 - t0), "get_mb_s": size / 2**20 / (t2 - t1)}))
""")


def _big(server: SeaweedS3, tmp_path: Path, size: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _BIG, json.dumps(server.env()), uuid.uuid4().hex[:12], str(size), str(tmp_path)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.splitlines()[-1])
    expected = hashlib.sha256()
    block = bytes(range(256)) * 4096
    left = size
    while left:
        expected.update(block[: min(left, len(block))])
        left -= min(left, len(block))
    assert result["sha256"] == expected.hexdigest() and result["size"] == result["read"] == size
    assert result["growth_kb"] < 100 * 1024, result  # VmHWM (peak RSS) grows by less than 100 MB
    print(f"\n{size >> 20} MiB: {result}")  # the figures (pytest -s shows them)
    return result


def test_64mb_stream_in_bounded_memory(seaweedfs: SeaweedS3, tmp_path: Path) -> None:
    _big(seaweedfs, tmp_path, 64 << 20)


@pytest.mark.slow
def test_1gb_stream_in_bounded_memory(seaweedfs: SeaweedS3, tmp_path: Path) -> None:
    _big(seaweedfs, tmp_path, 1 << 30)


# --- S3 unreachable ----------------------------------------------------------------


def _closed_port() -> int:
    return free_ports(1)[0]  # nothing listens there once the probe socket is closed


def _s3_env(monkeypatch: pytest.MonkeyPatch, server: SeaweedS3 | None, bucket: str) -> None:
    env = (
        server.env()
        if server is not None
        else {
            "RELAIS_S3_ENDPOINT_URL": f"http://127.0.0.1:{_closed_port()}",
            "AWS_ACCESS_KEY_ID": "x",
            "AWS_SECRET_ACCESS_KEY": "y",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("RELAIS_ARCHIVE_URL", f"s3://{bucket}/relais")


def test_s3_unreachable_at_intake_leaves_the_file_in_the_drop_zone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlalchemy as sa

    from flows.store import tables as t
    from relais import runner
    from relais.compose import Runtime
    from relais.settings import Settings
    from tests.support.helpers import drop

    _s3_env(monkeypatch, None, "relais-down")
    rt = Runtime.open(Settings.from_env(tmp_path / "home", stable_seconds=0.0))
    try:
        path = drop(rt, "op-a", "f.xml", DATA)
        assert runner.intake(rt) == []  # logged (intake.channel_failed); the other channels go on
        assert path.read_bytes() == DATA  # still in the drop zone: the next intake takes it
        with rt.store.engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(t.flows)).scalar() == 0  # nothing recorded
        assert rt.store.archive_refs() == []
        assert list((rt.settings.staging_dir / "s3").iterdir()) == []  # no spool file left behind
    finally:
        rt.close()


def _pipeline_runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: SeaweedS3, directory_file):
    from flows.directory import importer as directory
    from relais.compose import Runtime
    from relais.settings import Settings

    _s3_env(monkeypatch, server, f"relais-rt-{uuid.uuid4().hex[:8]}")
    rt = Runtime.open(Settings.from_env(tmp_path / "home", stable_seconds=0.0))
    assert isinstance(rt.archive, S3Archive)
    directory.import_file(rt.store, directory_file[0])
    return rt


def _run_a_flow(rt, tmp_path: Path, directory_file):
    from flows.domain.model import FlowStatus
    from relais import generate as gen
    from tests.support.helpers import drop, return_flow, run

    _, recipients = directory_file
    [path] = gen.write_batch(tmp_path / "gen", "ubl", 5, 2, batch="zip", recipients=recipients, seed=4)
    inbox_file = drop(rt, "op-a", path.name, path.read_bytes())
    [flow] = run(rt)
    assert not inbox_file.exists()
    assert flow.status is FlowStatus.IN_INTEGRE, flow
    assert rt.archive.read(flow.sha256) == path.read_bytes()
    invoices = list(rt.store.iter_invoices(flow.id))
    assert len(invoices) == 5 and all(inv.delivered_to and Path(inv.delivered_to).is_file() for inv in invoices)
    root = return_flow(rt, flow)  # the return flow, sent to the partner's out folder
    assert root.findtext(".//CPPFluxStatut/StatutFlux") == "IN_INTEGRE"
    return flow


def test_whole_pipeline_on_s3_then_archive_verify(
    seaweedfs: SeaweedS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, directory_file
) -> None:
    from flows.domain.outbox import OutboxKind
    from relais.cli import main

    rt = _pipeline_runtime(tmp_path, monkeypatch, seaweedfs, directory_file)
    try:
        flow = _run_a_flow(rt, tmp_path, directory_file)
        refs = rt.store.archive_refs()
        assert {r.source for r in refs} >= {"flow", "outbox"}
        assert all(rt.archive.verify(r.sha256) for r in refs)
        [ret_row] = [i for i in rt.store.outbox_for_flow(flow.id) if i.kind is OutboxKind.RETURN]
        [ret] = [r for r in refs if r.source == "outbox" and r.ref == str(ret_row.id)]
        home = str(rt.settings.home)
        cli = CliRunner()
        ok = cli.invoke(main, ["--home", home, "archive", "verify"])
        assert ok.exit_code == 0, ok.output
        assert "0 altéré(s), 0 manquant(s)" in ok.output and "S3Archive" in ok.output
        future = cli.invoke(main, ["--home", home, "archive", "verify", "--since", "2999-01-01"])
        assert future.exit_code == 0 and "0 objet(s)" in future.output
        c, a = seaweedfs.client(), rt.archive
        c.put_object(Bucket=a.bucket, Key=a.key(flow.sha256), Body=b"<tampered/>", Metadata={"sha256": flow.sha256})
        c.delete_object(Bucket=a.bucket, Key=a.key(ret.sha256))
        bad = cli.invoke(main, ["--home", home, "archive", "verify", "--since", "2000-01-01"])
        assert bad.exit_code == 1, bad.output
        assert f"MISMATCH  {flow.sha256}  flow:{flow.id}" in bad.output
        assert f"MISSING   {ret.sha256}  outbox:{ret.ref}" in bad.output
        assert "1 altéré(s), 1 manquant(s)" in bad.output
    finally:
        rt.close()


def test_s3_unreachable_at_dispatch_is_retried_never_lost(
    seaweedfs: SeaweedS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, directory_file
) -> None:
    import sqlalchemy as sa

    from flows.domain.outbox import OutboxKind
    from flows.pipeline import dispatch
    from flows.returns import report as returnflow
    from flows.store import OutboxStatus
    from flows.store import tables as t

    rt = _pipeline_runtime(tmp_path, monkeypatch, seaweedfs, directory_file)
    try:
        flow = _run_a_flow(rt, tmp_path, directory_file)
        # A second return flow is queued (archived while S3 answers); then S3 goes away.
        payload = rt.archive.put_bytes(b"<RetourBis/>")
        address = rt.channels.return_address(flow.partner, "bis-" + returnflow.file_name(flow))
        rt.store.finish_flow(flow, address, payload.sha256)
        down = S3Archive(rt.archive.bucket, rt.archive.prefix, endpoint_url=f"http://127.0.0.1:{_closed_port()}")
        rt_down = dataclasses.replace(rt, archive=down)
        report = dispatch.dispatch(rt_down.outbound)
        assert report.failed == 1
        [row] = rt.store.pending_outbox(kind=OutboxKind.RETURN)
        assert row.archive_sha256 == payload.sha256 and row.attempts == 1
        assert row.last_error and "EndpointConnectionError" in row.last_error  # pending, with its error
        assert not Path(address.destination).exists()
        with rt.store.engine.begin() as conn:  # its retry time has come
            conn.execute(sa.update(t.outbox).where(t.outbox.c.id == row.id).values(next_attempt_at=None))
        assert dispatch.dispatch(rt.outbound).failed == 0  # S3 is back: sent
        assert rt.store.pending_outbox(kind=OutboxKind.RETURN) == []
        assert [i.status for i in rt.store.outbox_for_flow(flow.id) if i.id == row.id] == [OutboxStatus.SENT]
        assert Path(address.destination).read_bytes() == b"<RetourBis/>"
    finally:
        rt.close()


# --- `relais archive verify` on the local archive too ------------------------------------


def test_archive_verify_on_the_local_archive(rt, tmp_path: Path, directory_file) -> None:
    from relais.cli import main

    flow = _run_a_flow(rt, tmp_path, directory_file)
    assert isinstance(rt.archive, LocalArchive)
    cli = CliRunner()
    env = {"RELAIS_ARCHIVE_URL": ""}
    ok = cli.invoke(main, ["--home", str(rt.settings.home), "archive", "verify"], env=env)
    assert ok.exit_code == 0 and "0 altéré(s), 0 manquant(s)" in ok.output, ok.output
    path = rt.archive._path(flow.sha256)
    path.chmod(0o644)
    path.write_bytes(b"<tampered/>")
    bad = cli.invoke(main, ["--home", str(rt.settings.home), "archive", "verify"], env=env)
    assert bad.exit_code == 1 and f"MISMATCH  {flow.sha256}" in bad.output, bad.output


# --- put_many: many small objects at once ---------------------------------------------------


class _Raw:
    """The raw body of a canned botocore response."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: object):
        yield self._body

    def read(self, *_: object) -> bytes:
        body, self._body = self._body, b""
        return body


def _fail_puts(client, key: str, times: int) -> list[int]:
    """Answer the first `times` PUTs of `key` with a 500 before they reach S3 (a before-send hook, under
    botocore's retries); the list counts every attempt at it."""
    from botocore.awsrequest import AWSResponse

    attempts: list[int] = []

    def hook(request, **_: object):
        if request.method == "PUT" and request.url.split("?")[0].endswith(key):
            attempts.append(1)
            if len(attempts) <= times:
                body = b"<Error><Code>InternalError</Code><Message>injected</Message></Error>"
                return AWSResponse(request.url, 500, {}, _Raw(body))
        return None

    client.meta.events.register("before-send.s3.PutObject", hook)
    return attempts


def test_put_many_stores_every_object_once(seaweedfs: SeaweedS3, tmp_path: Path) -> None:
    a = _archive(seaweedfs, tmp_path)
    blobs = [f"<Invoice n='{i}'/>".encode() * 50 for i in range(20)]
    files = []
    for i, b in enumerate(blobs[:5]):
        (tmp_path / f"{i}.xml").write_bytes(b)
        files.append(tmp_path / f"{i}.xml")
    objs = a.put_many([*files, *blobs[5:]])
    assert [o.sha256 for o in objs] == [hashlib.sha256(b).hexdigest() for b in blobs]  # in the sources' order
    assert all(a.read(o.sha256) == b for o, b in zip(objs, blobs, strict=True))
    assert a.put_many(blobs[:3] + [DATA]) == [*objs[:3], a.put_bytes(DATA)]  # stored already: kept
    assert all(len(_versions(seaweedfs, a, o.sha256)) == 1 for o in objs)  # never written twice
    assert list((tmp_path / "spool").iterdir()) == []


def test_put_many_retries_a_failed_put(seaweedfs: SeaweedS3, tmp_path: Path) -> None:
    client = seaweedfs.client(attempts=3)
    a = S3Archive("relais-s3-tests", f"t-{uuid.uuid4().hex[:12]}", client=client, spool_dir=tmp_path / "spool")
    blobs = [f"<Invoice n='{i}'/>".encode() for i in range(6)]
    flaky = hashlib.sha256(blobs[2]).hexdigest()
    attempts = _fail_puts(client, flaky, times=1)
    objs = a.put_many(blobs)
    assert len(attempts) == 2  # failed once, retried
    assert a.read(flaky) == blobs[2] and len(objs) == 6


def test_put_many_never_reports_a_failed_put_as_stored(seaweedfs: SeaweedS3, tmp_path: Path) -> None:
    client = seaweedfs.client(attempts=3)
    a = S3Archive("relais-s3-tests", f"t-{uuid.uuid4().hex[:12]}", client=client, spool_dir=tmp_path / "spool")
    blobs = [f"<Invoice n='{i}'/>".encode() for i in range(6)]
    broken = hashlib.sha256(blobs[4]).hexdigest()
    attempts = _fail_puts(client, broken, times=100)
    with pytest.raises(ClientError) as failed:
        a.put_many(blobs)
    assert len(attempts) > 1 and "InternalError" in str(failed.value)  # retried, and every attempt failed
    assert not a.exists(broken)
    assert list((tmp_path / "spool").iterdir()) == []
