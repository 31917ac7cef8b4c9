"""Partner files: validated with every problem named; Airflow connections fill SFTP credentials."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from connectors import partners
from connectors.sftp import airflow_conn
from flows.errors import ConfigError


def test_toml_and_yaml_partners(tmp_path):
    (tmp_path / "op-a.toml").write_text(
        'id = "op-a"\nname = "Opérateur A"\n[sftp]\nhost = "127.0.0.1"\nport = 2222\nuser = "relais"\n'
        'private_key = "~/k"\nhost_key = "ssh-ed25519 AAAA"\npatterns = ["*.zip"]\ndone_marker = ".done"\n')
    (tmp_path / "op-b.yaml").write_text("hosted:\n  authorized_keys: ['ssh-ed25519 AAAA b@host']\n")
    found = partners.load(tmp_path)
    assert set(found) == {"op-a", "op-b"}
    a = found["op-a"].sftp
    assert (a.port, a.patterns, a.done_marker, a.processed_dir) == (2222, ("*.zip",), ".done", "processed")
    assert a.private_key == Path("~/k").expanduser()
    assert found["op-b"].hosted.authorized_keys == ("ssh-ed25519 AAAA b@host",)


def test_every_problem_is_named(tmp_path):
    (tmp_path / "bad.toml").write_text('id = "../x"\nextra = 1\n[sftp]\nport = 0\npickup_dir = "../up"\n')
    with pytest.raises(ConfigError) as exc:
        partners.load(tmp_path)
    text = str(exc.value)
    for needle in ("id:", "unknown field(s) extra", "sftp.host: required", "private_key", "host_key",
                   "sftp.port", "pickup_dir"):
        assert needle in text, needle
    assert "bad.toml" in text


def test_unreadable_file(tmp_path):
    (tmp_path / "x.toml").write_text("this is = = not toml")
    with pytest.raises(ConfigError, match="unreadable"):
        partners.load(tmp_path)


def test_airflow_connection_fills_credentials(tmp_path):
    (tmp_path / "op-c.toml").write_text('[sftp]\nairflow_conn_id = "sftp_op_c"\npickup_dir = "up"\n')
    cfg = partners.load(tmp_path)["op-c"].sftp
    conn = SimpleNamespace(host="10.0.0.5", port=2200, login="relais",
                           extra_dejson={"private_key": "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n",
                                         "host_key": "ssh-ed25519 AAAAC3"})
    resolved = airflow_conn.resolve(cfg, tmp_path / "keys", lookup=lambda cid: conn)
    assert (resolved.host, resolved.port, resolved.user, resolved.host_key) == (
        "10.0.0.5", 2200, "relais", "ssh-ed25519 AAAAC3")
    assert resolved.private_key.read_text().startswith("-----BEGIN OPENSSH")
    assert oct(resolved.private_key.stat().st_mode & 0o777) == "0o600"
    assert resolved.pickup_dir == "up"
    bare = SimpleNamespace(host="h", port=None, login="u", extra_dejson={})
    with pytest.raises(ConfigError, match="lacks"):
        airflow_conn.resolve(cfg, tmp_path / "keys", lookup=lambda cid: bare)


def _as2_files(folder: Path) -> None:
    for name in ("op.pem", "relais.pem", "relais.key"):
        (folder / name).write_text("PEM")  # only their presence is checked when the file is read


def test_as2_section(tmp_path):
    _as2_files(tmp_path)
    (tmp_path / "op-x.toml").write_text(
        '[as2]\nas2_id = "OP X"\nour_as2_id = "RELAIS"\npartner_cert = "op.pem"\nour_cert = "relais.pem"\n'
        f'our_key = "{tmp_path / "relais.key"}"\nurl = "https://as2.op-x.example/as2"\nmdn = "async"\n'
        'async_mdn_url = "https://relais.example/as2"\ndigest = "SHA256"\nencrypt = "none"\ncompress = true\n'
        'our_key_password_env = "OPX_KEY_PASSWORD"\n')
    (tmp_path / "op-y.yaml").write_text(
        "as2:\n  as2_id: OPY\n  our_as2_id: RELAIS\n  partner_cert: op.pem\n  our_cert: relais.pem\n"
        "  our_key: relais.key\n  require_encryption: false\n  max_bytes: 1000\n")
    found = partners.load(tmp_path)
    x, y = found["op-x"].as2, found["op-y"].as2
    assert (x.as2_id, x.digest, x.encryption, x.compress, x.mdn) == ("OP X", "sha-256", None, True, "async")
    assert x.partner_cert == tmp_path / "op.pem" and x.our_key == tmp_path / "relais.key"
    assert (y.encrypt, y.sign, y.require_signature, y.require_encryption, y.max_bytes, y.url) == (
        "aes256-cbc", True, True, False, 1000, None)


def test_as2_every_problem_is_named(tmp_path):
    _as2_files(tmp_path)
    (tmp_path / "bad.toml").write_text(
        '[as2]\nas2_id = ""\npartner_cert = "missing.pem"\nour_cert = 3\nmdn = "later"\nencrypt = "rot13"\n'
        'digest = "md5"\nurl = "ftp://x"\nsign = "yes"\nmax_bytes = -1\nour_key_password_env = "no-t valid"\n'
        'extra = 1\n')
    (tmp_path / "async.toml").write_text(
        '[as2]\nas2_id = "A"\nour_as2_id = "R"\npartner_cert = "op.pem"\nour_cert = "relais.pem"\n'
        'our_key = "relais.key"\nurl = "https://a.example/as2"\nmdn = "async"\n')
    with pytest.raises(ConfigError) as exc:
        partners.load(tmp_path)
    text = str(exc.value)
    for needle in ("as2.as2_id: required", "as2.our_as2_id: required", "as2.partner_cert: no such file",
                   "as2.our_cert: required", "as2.our_key: required", "as2.mdn", "as2.encrypt", "as2.digest",
                   "as2.url", "as2.sign", "as2.max_bytes", "as2.our_key_password_env", "unknown field(s) extra",
                   "as2.async_mdn_url: required"):
        assert needle in text, needle


def test_as2_ids_are_unique(tmp_path):
    _as2_files(tmp_path)
    for pid in ("op-1", "op-2"):
        (tmp_path / f"{pid}.toml").write_text(
            '[as2]\nas2_id = "SAME"\nour_as2_id = "R"\npartner_cert = "op.pem"\nour_cert = "relais.pem"\n'
            'our_key = "relais.key"\n')
    with pytest.raises(ConfigError, match="as2_id 'SAME' is already partner op-1's"):
        partners.load(tmp_path)
