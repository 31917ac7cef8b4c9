"""Client side of a partner's SFTP server (paramiko): pinned host key, public-key auth only.

``connect(cfg)`` opens one SSH transport and one SFTP session:

- the server's key is **pinned**: ``cfg.host_key`` ("type base64 [comment]", one
  or more lines) or the entries of ``cfg.known_hosts`` for ``host`` /
  ``[host]:port``. Only those key types are offered in the key exchange, and the
  key the server shows must be one of them, byte for byte. There is no
  "trust on first use" and no fallback: without a pin the connection is refused.
- the user authenticates with ``cfg.private_key`` only (ed25519, ECDSA or RSA);
  never a password, an agent or keys found in ``~/.ssh``.

Failures are typed: `Unreachable` (DNS, TCP, SSH handshake), `HostKeyMismatch`,
`AuthFailed`, and `ConnectionLost` when an established session dies. Per-file
problems stay ordinary ``OSError``s (``FileNotFoundError``, ``PermissionError``)
so callers can tell them apart from a dead connection.

Listings are lstat-based and never follow symbolic links; names that are not
valid UTF-8 are returned (with surrogate escapes) instead of breaking the
whole listing, so the caller can report and skip them.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import errno
import hashlib
import posixpath
import socket
import stat
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, TypeVar

import paramiko
from paramiko.sftp import (
    CMD_CLOSE,
    CMD_DATA,
    CMD_HANDLE,
    CMD_NAME,
    CMD_OPENDIR,
    CMD_READ,
    CMD_READDIR,
    CMD_STATUS,
    int64,
)

from connectors.partners import SftpPickup
from flows.domain.errors import RelaisError

BLOCK = 1024 * 1024
#: Read requests (32 KiB each) in flight during a download: 2 MiB of read-ahead at most.
PREFETCH_REQUESTS = 64
PART_SUFFIX = ".relais-part"
CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "aes128-ctr", "aes192-ctr", "aes256-ctr")

T = TypeVar("T")


class SftpError(RelaisError):
    """Anything that went wrong talking to a partner's SFTP server."""


class Unreachable(SftpError):
    """No SSH session could be set up: name resolution, TCP connection or SSH handshake failed."""


class HostKeyMismatch(SftpError):
    """The server's key is not the pinned one (or no key is pinned): never trusted."""


class AuthFailed(SftpError):
    """The server refused our key (or the key could not be loaded)."""


class ConnectionLost(SftpError):
    """An established session died (server stopped, network cut, timeout)."""


@dataclasses.dataclass(frozen=True, slots=True)
class RemoteFile:
    """One directory entry as the server describes it, without following links."""

    name: str
    size: int
    mtime: int | None
    is_file: bool
    is_symlink: bool
    is_dir: bool = False

    @property
    def valid_utf8(self) -> bool:
        try:
            self.name.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True


# ---- host keys -----------------------------------------------------------------------

_KEY_ALGORITHMS = {
    # key type (as in known_hosts) -> host key algorithms that prove it in the key exchange
    "ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"),
}


def _parse_key_line(line: str, where: str) -> paramiko.PKey:
    parts = line.split()
    if len(parts) < 2:
        raise HostKeyMismatch(f"{where}: a pinned host key must read 'type base64', got {line!r}")
    key_type, data = parts[0], parts[1]
    try:
        return paramiko.PKey.from_type_string(key_type, base64.b64decode(data, validate=True))
    except (binascii.Error, ValueError, paramiko.SSHException) as e:
        raise HostKeyMismatch(f"{where}: unusable pinned host key ({key_type}): {e}") from e


def pinned_keys(cfg: SftpPickup) -> list[paramiko.PKey]:
    """The server keys `cfg` trusts; HostKeyMismatch when it pins none (we never trust blindly)."""
    keys: list[paramiko.PKey] = []
    if cfg.host_key:
        for line in cfg.host_key.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                keys.append(_parse_key_line(line, "host_key"))
    if cfg.known_hosts:
        try:
            known = paramiko.HostKeys(str(cfg.known_hosts))
        except (OSError, paramiko.SSHException) as e:
            raise HostKeyMismatch(f"known_hosts {cfg.known_hosts}: unreadable: {e}") from e
        names = [cfg.host] if cfg.port == 22 else [f"[{cfg.host}]:{cfg.port}"]
        for name in names:
            entry = known.lookup(name)
            if entry:
                keys.extend(entry[t] for t in entry.keys())
        if not keys:
            raise HostKeyMismatch(f"known_hosts {cfg.known_hosts} has no key for {names[0]}")
    if not keys:
        raise HostKeyMismatch(f"no pinned host key for {cfg.host}:{cfg.port} (set host_key or known_hosts)")
    return keys


def _host_key_algorithms(keys: list[paramiko.PKey]) -> list[str]:
    algorithms: list[str] = []
    for key in keys:
        for algo in _KEY_ALGORITHMS.get(key.get_name(), (key.get_name(),)):
            if algo not in algorithms:
                algorithms.append(algo)
    return algorithms


def load_private_key(path: Path) -> paramiko.PKey:
    """An ed25519, ECDSA or RSA private key (OpenSSH or PEM format, not encrypted)."""
    try:
        return paramiko.PKey.from_path(Path(path))
    except FileNotFoundError as e:
        raise AuthFailed(f"private key {path}: not found") from e
    except paramiko.PasswordRequiredException as e:
        raise AuthFailed(f"private key {path}: encrypted keys are not supported") from e
    except (OSError, ValueError, paramiko.SSHException) as e:
        key = _load_with_cryptography(Path(path))
        if key is None:
            raise AuthFailed(f"private key {path}: unreadable: {type(e).__name__}: {e}") from e
        return key


def _load_with_cryptography(path: Path) -> paramiko.PKey | None:
    """ECDSA/RSA keys that paramiko's own OpenSSH-format parser refuses.

    paramiko 5.1 unpads the private section with ``data[:-0]`` when it needs no
    padding and ends with an empty comment: half of the ECDSA keys written by
    asyncssh (or any tool that leaves the comment empty) then read as garbage.
    cryptography parses them correctly; paramiko takes the parsed key as is.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

    loaded: PrivateKeyTypes
    try:
        data = path.read_bytes()
        try:
            loaded = serialization.load_ssh_private_key(data, password=None)
        except ValueError:
            loaded = serialization.load_pem_private_key(data, password=None)
    except (OSError, ValueError, TypeError):
        return None
    if isinstance(loaded, ec.EllipticCurvePrivateKey):
        return paramiko.ECDSAKey(vals=(loaded, loaded.public_key()))
    if isinstance(loaded, rsa.RSAPrivateKey):
        return paramiko.RSAKey(key=loaded)
    return None


# ---- the connection ------------------------------------------------------------------


def connect(cfg: SftpPickup, *, timeout: float = 15.0) -> SftpConnection:
    """One authenticated SFTP session to the partner's server described by `cfg`."""
    where = f"{cfg.user}@{cfg.host}:{cfg.port}"
    keys = pinned_keys(cfg)  # refused before any network traffic when nothing is pinned
    if cfg.private_key is None:
        raise AuthFailed(f"{where}: no private key configured (an airflow_conn_id must be resolved first)")
    user_key = load_private_key(cfg.private_key)
    try:
        sock = socket.create_connection((cfg.host, cfg.port), timeout=timeout)
    except OSError as e:
        raise Unreachable(f"{where}: cannot connect: {e}") from e
    transport = paramiko.Transport(sock)
    try:
        transport.banner_timeout = timeout
        transport.handshake_timeout = timeout
        transport.auth_timeout = timeout
        options = transport.get_security_options()
        wanted = _host_key_algorithms(keys)
        supported = [a for a in wanted if a in transport._preferred_keys]  # validated list
        if not supported:
            raise HostKeyMismatch(f"{where}: pinned key type(s) {wanted} not supported by this client")
        options.key_types = supported
        # AES-GCM first (one pass, and the fastest paramiko has), CTR+HMAC after; no CBC, no 3DES.
        options.ciphers = [c for c in CIPHERS if c in transport._preferred_ciphers]
        try:
            transport.start_client(timeout=timeout)
        except paramiko.IncompatiblePeer as e:
            if "host key" in str(e):
                raise HostKeyMismatch(f"{where}: the server offers none of the pinned key types {supported}") from e
            raise Unreachable(f"{where}: SSH handshake failed: {e}") from e
        except (paramiko.SSHException, EOFError, OSError) as e:
            raise Unreachable(f"{where}: SSH handshake failed: {type(e).__name__}: {e}") from e
        server_key = transport.get_remote_server_key()
        if not any(server_key.asbytes() == k.asbytes() for k in keys):
            raise HostKeyMismatch(
                f"{where}: host key mismatch: the server shows {server_key.get_name()} "
                f"SHA256:{_fingerprint(server_key)}, pinned: "
                + ", ".join(f"{k.get_name()} SHA256:{_fingerprint(k)}" for k in keys)
            )
        try:
            transport.auth_publickey(cfg.user, user_key)
        except paramiko.AuthenticationException as e:
            raise AuthFailed(
                f"{where}: public key refused ({user_key.get_name()} SHA256:{_fingerprint(user_key)}): {e}"
            ) from e
        except (paramiko.SSHException, EOFError, OSError) as e:
            raise Unreachable(f"{where}: connection lost during authentication: {e}") from e
        if not transport.is_authenticated():
            raise AuthFailed(f"{where}: the server wants more than a public key")
        try:
            sftp = paramiko.SFTPClient.from_transport(transport)
        except (paramiko.SSHException, EOFError, OSError) as e:
            raise Unreachable(f"{where}: no SFTP subsystem: {e}") from e
        if sftp is None:
            raise Unreachable(f"{where}: no SFTP subsystem")
        sftp.get_channel().settimeout(timeout)
        return SftpConnection(cfg, transport, sftp)
    except BaseException:
        transport.close()
        sock.close()
        raise


def _fingerprint(key: paramiko.PKey) -> str:
    return base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")


class _Replies:
    """Collects the replies to our pipelined reads (paramiko hands each reply to its request's owner)."""

    def __init__(self) -> None:
        self.got: dict[int, tuple[int, paramiko.Message]] = {}

    def _async_response(self, t: int, msg: paramiko.Message, num: int) -> None:
        self.got[num] = (t, msg)


class SftpConnection:
    """An open SFTP session. Use as a context manager (closes the transport)."""

    def __init__(self, cfg: SftpPickup, transport: paramiko.Transport, sftp: paramiko.SFTPClient) -> None:
        self.cfg = cfg
        self.transport = transport
        self.sftp = sftp
        self.where = f"{cfg.user}@{cfg.host}:{cfg.port}"

    def __enter__(self) -> SftpConnection:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.sftp.close()
        except Exception:  # closing a dead session
            pass
        self.transport.close()

    @property
    def alive(self) -> bool:
        channel = self.sftp.get_channel()
        return self.transport.is_active() and channel is not None and not channel.closed

    @contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        """Turn the failure of a dead session into ConnectionLost; per-file errors pass through."""
        try:
            yield
        except SftpError:
            raise
        except TimeoutError as e:
            self.transport.close()
            raise ConnectionLost(f"{self.where}: {what}: timed out") from e
        except (EOFError, paramiko.SSHException) as e:
            # Per-file SFTP errors are OSErrors; these mean the session itself is gone.
            self.transport.close()
            raise ConnectionLost(f"{self.where}: {what}: connection lost ({type(e).__name__}: {e})") from e
        except OSError as e:
            if not self.alive:
                self.transport.close()
                raise ConnectionLost(f"{self.where}: {what}: connection lost ({type(e).__name__}: {e})") from e
            raise

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        with self._guard(what):
            return fn()

    # ---- reading ---------------------------------------------------------------------

    def list_files(self, remote_dir: str) -> list[RemoteFile]:
        """Entries of `remote_dir` (no '.' / '..'), from lstat-like attributes: links are not followed.

        Like paramiko's listdir_attr, but a name that is not UTF-8 does not break the
        listing: it comes back with surrogate escapes (`RemoteFile.valid_utf8` is False).
        """
        with self._guard(f"list {remote_dir}"):
            return list(self._readdir(remote_dir))

    def _readdir(self, remote_dir: str) -> Iterator[RemoteFile]:
        sftp = self.sftp
        t, msg = sftp._request(CMD_OPENDIR, remote_dir)
        if t != CMD_HANDLE:
            raise paramiko.SFTPError("Expected handle")
        handle = msg.get_binary()
        entries = []
        try:
            while True:
                try:
                    t, msg = sftp._request(CMD_READDIR, handle)
                except EOFError:
                    if not self.alive:
                        raise
                    break  # end of the folder
                if t != CMD_NAME:
                    raise paramiko.SFTPError("Expected name response")
                for _ in range(msg.get_int()):
                    raw = msg.get_string()
                    msg.get_string()  # longname
                    attr = paramiko.SFTPAttributes._from_msg(msg)
                    name = raw.decode("utf-8", "surrogateescape")
                    if name in (".", ".."):
                        continue
                    mode = attr.st_mode or 0
                    entries.append(
                        RemoteFile(
                            name=name,
                            size=attr.st_size or 0,
                            mtime=attr.st_mtime,
                            is_file=stat.S_ISREG(mode),
                            is_symlink=stat.S_ISLNK(mode),
                            is_dir=stat.S_ISDIR(mode),
                        )
                    )
        finally:
            if self.alive:
                try:
                    sftp._request(CMD_CLOSE, handle)
                except (OSError, EOFError, paramiko.SSHException):
                    pass
        return iter(entries)

    def lstat(self, remote_path: str) -> RemoteFile:
        attr = self._call(f"lstat {remote_path}", lambda: self.sftp.lstat(remote_path))
        mode = attr.st_mode or 0
        return RemoteFile(
            name=posixpath.basename(remote_path),
            size=attr.st_size or 0,
            mtime=attr.st_mtime,
            is_file=stat.S_ISREG(mode),
            is_symlink=stat.S_ISLNK(mode),
            is_dir=stat.S_ISDIR(mode),
        )

    def exists(self, remote_path: str) -> bool:
        try:
            self.lstat(remote_path)
        except FileNotFoundError:
            return False
        return True

    def download(
        self,
        remote_path: str,
        out: BinaryIO,
        expected_size: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> tuple[int, str]:
        """Stream `remote_path` into `out` in 1 MiB blocks while hashing; returns (size, sha256 hex).

        Reads are pipelined in this thread (no read-ahead thread): at most
        PREFETCH_REQUESTS requests of 32 KiB are in flight, so memory stays flat
        whatever the file size. Reads go on to the end of the file, whatever
        `expected_size` said (the caller compares). `progress(bytes_so_far)` is
        called after each block written.
        """
        digest = hashlib.sha256()
        with self._guard(f"download {remote_path}"):
            with self.sftp.open(remote_path, "rb") as f:
                size = self._pipelined_read(f, out, digest, progress, expected_size)
        return size, digest.hexdigest()

    def _pipelined_read(
        self,
        f: paramiko.SFTPFile,
        out: BinaryIO,
        digest: hashlib._Hash,
        progress: Callable[[int], None] | None,
        expected_size: int | None,
    ) -> int:
        sftp = self.sftp
        replies = _Replies()
        pending: deque[tuple[int, int, int]] = deque()  # (request id, offset, length), in file order
        request = f.MAX_REQUEST_SIZE
        next_offset = 0
        eof = False
        size = 0
        buffer = bytearray()
        # Read ahead only over the expected bytes (a small file costs one read and one EOF),
        # then one request at a time should the file be longer than expected.
        window_end = expected_size + 1 if expected_size is not None else float("inf")

        def send(offset: int, length: int) -> int:
            return sftp._async_request(replies, CMD_READ, f.handle, int64(offset), int(length))

        def flush() -> None:
            nonlocal size
            digest.update(buffer)
            out.write(buffer)
            size += len(buffer)
            buffer.clear()
            if progress is not None:
                progress(size)

        def reply(num: int) -> tuple[int, paramiko.Message]:
            while num not in replies.got:
                sftp._read_response()  # dispatches each reply to its owner
            return replies.got.pop(num)

        try:
            while True:
                while not eof and len(pending) < PREFETCH_REQUESTS and (next_offset < window_end or not pending):
                    pending.append((send(next_offset, request), next_offset, request))
                    next_offset += request
                if not pending:
                    break
                num, offset, length = pending.popleft()
                t, msg = reply(num)
                if t == CMD_STATUS:
                    try:
                        sftp._convert_status(msg)  # EOFError at the end, OSError on errors
                    except EOFError:
                        eof = True
                        break
                    raise paramiko.SFTPError("read: status OK without data")
                if t != CMD_DATA:
                    raise paramiko.SFTPError("read: expected data")
                data = msg.get_string()
                if not data:
                    eof = True
                    break
                if len(data) < length:  # a short read: ask for the rest before anything further
                    rest = (offset + len(data), length - len(data))
                    pending.appendleft((send(*rest), *rest))
                buffer += data
                if len(buffer) >= BLOCK:
                    flush()
            if buffer:
                flush()
            return size
        finally:
            # Collect the replies still due (past the end of the file), unless the session is dead.
            if pending and self.alive:
                try:
                    for num, _, _ in pending:
                        reply(num)
                except (OSError, EOFError, paramiko.SSHException):
                    pass

    # ---- changing --------------------------------------------------------------------

    def rename(self, old: str, new: str) -> None:
        """SFTP rename (fails when `new` exists, as SFTP v3 servers do)."""
        self._call(f"rename {old}", lambda: self.sftp.rename(old, new))

    def posix_rename(self, old: str, new: str) -> None:
        """Rename replacing `new` (posix-rename@openssh.com); OSError when the server lacks it."""
        self._call(f"posix_rename {old}", lambda: self.sftp.posix_rename(old, new))

    def remove(self, remote_path: str) -> None:
        self._call(f"remove {remote_path}", lambda: self.sftp.remove(remote_path))

    def makedirs(self, remote_dir: str) -> None:
        """Create `remote_dir` and its missing parents (like ``mkdir -p``)."""
        if remote_dir in ("", ".", "/"):
            return
        with self._guard(f"makedirs {remote_dir}"):
            try:
                if stat.S_ISDIR(self.sftp.stat(remote_dir).st_mode or 0):
                    return
                raise FileExistsError(errno.EEXIST, f"{remote_dir} exists and is not a folder")
            except FileNotFoundError:
                pass
            parent = posixpath.dirname(remote_dir.rstrip("/"))
            if parent and parent != remote_dir:
                self.makedirs(parent)
            try:
                self.sftp.mkdir(remote_dir)
            except OSError:
                # Created meanwhile by someone else? Then fine; else the original error.
                try:
                    if stat.S_ISDIR(self.sftp.stat(remote_dir).st_mode or 0):
                        return
                except OSError:
                    pass
                raise

    def put_atomic(self, data: bytes | Path, remote_dir: str, name: str) -> str:
        """Write `data` (bytes, or a local file streamed) as `remote_dir/name`, atomically.

        The bytes go to ``.<name>.relais-part`` (a dot-file with a temporary suffix: a
        partner's poller skips it), the size is checked, then it is renamed to `name`:
        with posix-rename when the server offers it (replacing an existing file), else
        with a plain rename after removing an existing `name`. Returns the final path.
        Safe to call again after a failure: the temporary file is overwritten.
        """
        if not name or "/" in name or name in (".", ".."):
            raise ValueError(f"not a file name: {name!r}")
        tmp = posixpath.join(remote_dir, f".{name}{PART_SUFFIX}")
        final = posixpath.join(remote_dir, name)
        with self._guard(f"upload {final}"):
            with self.sftp.open(tmp, "wb") as f:
                f.set_pipelined(True)
                if isinstance(data, (bytes, bytearray, memoryview)):
                    view = memoryview(data)
                    for i in range(0, len(view), BLOCK):
                        f.write(bytes(view[i : i + BLOCK]))
                    expected = len(view)
                else:
                    expected = 0
                    with Path(data).open("rb") as src:
                        while block := src.read(BLOCK):
                            f.write(block)
                            expected += len(block)
            written = self.sftp.stat(tmp).st_size
            if written != expected:
                raise OSError(errno.EIO, f"{tmp}: {written} bytes on the server, {expected} sent")
            try:
                self.sftp.posix_rename(tmp, final)
            except OSError as e:
                if not self.alive or isinstance(e, PermissionError):
                    raise
                # No posix-rename on this server: plain rename, replacing an existing file.
                try:
                    self.sftp.rename(tmp, final)
                except OSError:
                    if not self.alive:
                        raise
                    self.sftp.remove(final)
                    self.sftp.rename(tmp, final)
        return final
