"""Partner files: validated with every problem named, a bad file left out without stopping the others;
Airflow connections fill SFTP credentials."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace

import pytest

from connectors import partners
from connectors.sftp import airflow_conn
from flows.domain.errors import ConfigError

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"  # a public key


def test_toml_and_yaml_partners(tmp_path):
    (tmp_path / "op-a.toml").write_text(
        'id = "op-a"\nname = "Opérateur A"\n[sftp]\nhost = "127.0.0.1"\nport = 2222\nuser = "relais"\n'
        'private_key = "~/k"\nhost_key = "ssh-ed25519 AAAA"\npatterns = ["*.zip"]\ndone_marker = ".done"\n'
    )
    (tmp_path / "op-b.yaml").write_text(f"hosted:\n  authorized_keys: ['{KEY} b@host']\n")
    found = partners.load(tmp_path)
    assert set(found) == {"op-a", "op-b"}
    a = found["op-a"].sftp
    assert (a.port, a.patterns, a.done_marker, a.processed_dir) == (2222, ("*.zip",), ".done", "processed")
    assert a.private_key == Path("~/k").expanduser()
    assert found["op-b"].hosted.authorized_keys == (f"{KEY} b@host",)


def test_hosted_keys_are_checked(tmp_path):
    (tmp_path / "op-h.toml").write_text(f'[hosted]\nauthorized_keys = ["{KEY}", "ssh-ed25519 AAAA"]\nkeys = 1\n')
    found = partners.load(tmp_path)
    assert dict(found) == {}
    text = "\n".join(found.problems["op-h"])
    assert "hosted: unknown field(s) keys" in text and "hosted.authorized_keys[1]: not an OpenSSH public key" in text


def test_every_problem_is_named(tmp_path):
    (tmp_path / "bad.toml").write_text('id = "../x"\nextra = 1\n[sftp]\nport = 0\npickup_dir = "../up"\n')
    found = partners.load(tmp_path)
    assert dict(found) == {} and list(found.problems) == ["bad.toml"]  # no valid id: named by its file
    text = "\n".join(found.problems["bad.toml"])
    with pytest.raises(ConfigError) as exc:
        partners.load_strict(tmp_path)
    assert str(exc.value) == text
    for needle in (
        "id:",
        "unknown field(s) extra",
        "sftp.host: required",
        "private_key",
        "host_key",
        "sftp.port",
        "pickup_dir",
    ):
        assert needle in text, needle
    assert "bad.toml" in text


def test_unreadable_file(tmp_path):
    (tmp_path / "x.toml").write_text("this is = = not toml")
    found = partners.load(tmp_path)
    [problem] = found.problems["x.toml"]
    assert "unreadable partner file" in problem and str(tmp_path / "x.toml") in problem
    assert found.held == {"x"}  # the partner it would be by default: its inbox is left alone
    with pytest.raises(ConfigError, match="unreadable"):
        partners.load_strict(tmp_path)


def test_airflow_connection_fills_credentials(tmp_path):
    (tmp_path / "op-c.toml").write_text('[sftp]\nairflow_conn_id = "sftp_op_c"\npickup_dir = "up"\n')
    cfg = partners.load(tmp_path)["op-c"].sftp
    conn = SimpleNamespace(
        host="10.0.0.5",
        port=2200,
        login="relais",
        extra_dejson={"private_key": "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n", "host_key": "ssh-ed25519 AAAAC3"},
    )
    resolved = airflow_conn.resolve(cfg, tmp_path / "keys", lookup=lambda cid: conn)
    assert (resolved.host, resolved.port, resolved.user, resolved.host_key) == (
        "10.0.0.5",
        2200,
        "relais",
        "ssh-ed25519 AAAAC3",
    )
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
        'our_key_password_env = "OPX_KEY_PASSWORD"\n'
    )
    (tmp_path / "op-y.yaml").write_text(
        "as2:\n  as2_id: OPY\n  our_as2_id: RELAIS\n  partner_cert: op.pem\n  our_cert: relais.pem\n"
        "  our_key: relais.key\n  require_encryption: false\n  max_bytes: 1000\n"
    )
    found = partners.load(tmp_path)
    x, y = found["op-x"].as2, found["op-y"].as2
    assert (x.as2_id, x.digest, x.encryption, x.compress, x.mdn) == ("OP X", "sha-256", None, True, "async")
    assert x.partner_cert == tmp_path / "op.pem" and x.our_key == tmp_path / "relais.key"
    assert (y.encrypt, y.sign, y.require_signature, y.require_encryption, y.max_bytes, y.url) == (
        "aes256-cbc",
        True,
        True,
        False,
        1000,
        None,
    )


def test_as2_every_problem_is_named(tmp_path):
    _as2_files(tmp_path)
    (tmp_path / "bad.toml").write_text(
        '[as2]\nas2_id = ""\npartner_cert = "missing.pem"\nour_cert = 3\nmdn = "later"\nencrypt = "rot13"\n'
        'digest = "md5"\nurl = "ftp://x"\nsign = "yes"\nmax_bytes = -1\nour_key_password_env = "no-t valid"\n'
        "extra = 1\n"
    )
    (tmp_path / "async.toml").write_text(
        '[as2]\nas2_id = "A"\nour_as2_id = "R"\npartner_cert = "op.pem"\nour_cert = "relais.pem"\n'
        'our_key = "relais.key"\nurl = "https://a.example/as2"\nmdn = "async"\n'
    )
    found = partners.load(tmp_path)
    assert dict(found) == {} and set(found.problems) == {"bad", "async"}  # ids from the file names
    text = "\n".join(found.problems["bad"] + found.problems["async"])
    for needle in (
        "as2.as2_id: required",
        "as2.our_as2_id: required",
        "as2.partner_cert: no such file",
        "as2.our_cert: required",
        "as2.our_key: required",
        "as2.mdn",
        "as2.encrypt",
        "as2.digest",
        "as2.url",
        "as2.sign",
        "as2.max_bytes",
        "as2.our_key_password_env",
        "unknown field(s) extra",
        "as2.async_mdn_url: required",
    ):
        assert needle in text, needle


def test_as2_ids_are_unique(tmp_path):
    _as2_files(tmp_path)
    for pid in ("op-1", "op-2"):
        (tmp_path / f"{pid}.toml").write_text(
            '[as2]\nas2_id = "SAME"\nour_as2_id = "R"\npartner_cert = "op.pem"\nour_cert = "relais.pem"\n'
            'our_key = "relais.key"\n'
        )
    (tmp_path / "op-3.toml").write_text('name = "Folder only"\n')
    found = partners.load(tmp_path)
    assert list(found) == ["op-3"]  # which of the two owns SAME cannot be told: both are left out
    assert "as2_id 'SAME' is also partner op-2's" in found.problems["op-1"][0]
    assert "as2_id 'SAME' is also partner op-1's" in found.problems["op-2"][0]
    assert found.held == {"op-1", "op-2"}
    with pytest.raises(ConfigError, match="as2_id 'SAME' is also partner op-1's"):
        partners.load_strict(tmp_path)


# ---- a bad file is that partner's problem ------------------------------------------------------


def test_a_bad_file_leaves_the_others_loaded(tmp_path):
    (tmp_path / "op-good.toml").write_text('id = "op-good"\nname = "Good"\n')
    (tmp_path / "op-bad.toml").write_text('id = "op-bad"\n[sftp]\nhost = "h"\npoll_seconds = 0\n')
    (tmp_path / "broken.yaml").write_text("id: [unclosed\n")
    found = partners.load(tmp_path)
    assert isinstance(found, Mapping) and list(found) == ["op-good"] and "op-bad" not in found
    assert found["op-good"].name == "Good" and found.get("op-bad") is None and len(found) == 1
    assert set(found.problems) == {"op-bad", "broken.yaml"}  # by partner id, else by file name
    bad = "\n".join(found.problems["op-bad"])
    for needle in ("sftp.user: required", "give private_key", "pin the server's key", "sftp.poll_seconds"):
        assert needle in bad, needle  # every problem named
    assert all(str(tmp_path / "op-bad.toml") in p for p in found.problems["op-bad"])
    assert found.files == {"op-bad": (tmp_path / "op-bad.toml",), "broken.yaml": (tmp_path / "broken.yaml",)}
    assert found.held == {"op-bad", "broken"}
    assert found == {"op-good": found["op-good"]}  # compares as the mapping of the good partners
    with pytest.raises(ConfigError) as exc:
        partners.load_strict(tmp_path)
    assert "op-bad.toml" in str(exc.value) and "broken.yaml" in str(exc.value)


def test_a_partner_defined_twice_is_bad(tmp_path):
    for name in ("op-a.toml", "op-a.yaml"):
        (tmp_path / name).write_text("id: op-a\n" if name.endswith("yaml") else 'id = "op-a"\n')
    (tmp_path / "op-b.toml").write_text('id = "op-b"\n')
    found = partners.load(tmp_path)
    assert list(found) == ["op-b"]
    [problem] = found.problems["op-a"]
    assert "defined twice or more: op-a.toml, op-a.yaml" in problem and found.held == {"op-a"}
    (tmp_path / "op-a.yaml").write_text("id: op-a\nunknown: 1\n")  # the second one bad as well
    found = partners.load(tmp_path)
    assert list(found) == ["op-b"] and len(found.problems["op-a"]) == 2


def test_an_unreadable_file_does_not_hold_a_partner_defined_elsewhere(tmp_path):
    (tmp_path / "op-a.toml").write_text('id = "op-a"\n')
    (tmp_path / "op-a.old.toml").write_text("= broken")
    found = partners.load(tmp_path)
    assert list(found) == ["op-a"] and list(found.problems) == ["op-a.old.toml"]
    assert found.held == frozenset()  # op-a's own file is good: that is what identifies it


def test_no_folder_no_partners(tmp_path):
    found = partners.load(tmp_path / "missing")
    assert dict(found) == {} and found.problems == {} and found.held == frozenset()
    assert partners.load_strict(tmp_path / "missing") == {}
