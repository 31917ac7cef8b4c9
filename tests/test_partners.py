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
