"""The test and demo clusters admit no other local user: a private Unix socket, no TCP."""

from __future__ import annotations

import os
import socket
import stat
from urllib.parse import parse_qs, urlsplit

from devenv.cluster import LocalCluster, server_settings
from devenv.paths import server_user


def test_the_test_cluster_listens_only_on_a_private_socket(cluster, db):
    query = parse_qs(urlsplit(cluster).query)
    sockets, port = query["host"][0], int(query["port"][0])
    mode = os.stat(sockets)
    assert stat.S_IMODE(mode.st_mode) == 0o700
    with db.connect() as conn:
        settings = dict(conn.execute(
            "SELECT name, setting FROM pg_settings WHERE name IN "
            "('listen_addresses', 'unix_socket_permissions')").fetchall())
    assert settings == {"listen_addresses": "", "unix_socket_permissions": "0700"}
    owner = server_user()
    if owner is not None:  # root: the server runs as another OS user, who owns the gate
        import pwd

        assert pwd.getpwuid(mode.st_uid).pw_name == owner
    with socket.socket() as tcp:
        assert tcp.connect_ex(("127.0.0.1", port)) != 0  # nothing listens on TCP


def test_the_demo_cluster_uses_the_same_rules(tmp_path):
    demo = LocalCluster(root=tmp_path)
    (tmp_path / "port").write_text("5999")
    assert demo.dsn() == f"postgresql://postgres@/blink?host={tmp_path / 'sockets'}&port=5999"
    assert server_settings("blink")["listen_addresses"] == ""
    assert server_settings("blink", tcp=True)["listen_addresses"] == "127.0.0.1"
