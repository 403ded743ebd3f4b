"""`doorlink bench` as a user types it: every mistake is one clear error
line and exit code 2, never a traceback; --db means the same file before
or after the subcommand; admins are provisioned with hashed tokens."""

import socket
import sqlite3
import subprocess
import sys

import pytest

from host_tools.bench import BenchStore
from host_tools.paths import ROOT

DOORLINK = [sys.executable, "-m", "host_tools.cli"]


def doorlink(*args, cwd=ROOT, timeout=30):
    return subprocess.run(DOORLINK + list(args), cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


def clear_error(res, words):
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr and words in res.stderr, res.stderr


def test_db_before_the_subcommand_is_the_one_written(tmp_path):
    db = tmp_path / "chosen.sqlite3"
    res = doorlink("bench", "--db", str(db), "add-device", "--id", "d1", "--token", "t1", cwd=tmp_path)
    assert res.returncode == 0 and f"added to {db}" in res.stdout, res.stderr
    assert not (tmp_path / "bench.sqlite3").exists()
    store = BenchStore(db)
    try:
        assert store.check_token("d1", "t1")
    finally:
        store.close()
    # after the subcommand it wins; neither given: the default, in the current folder
    other = tmp_path / "other.sqlite3"
    assert doorlink("bench", "--db", str(db), "add-device", "--id", "d2", "--token", "t2", "--db", str(other),
                    cwd=tmp_path).returncode == 0
    assert doorlink("bench", "add-admin", "--name", "ops", "--token", "adm_0123456789abcdef",
                    cwd=tmp_path).returncode == 0
    assert (tmp_path / "bench.sqlite3").exists() and other.exists()


def test_add_admin_stores_a_hash_and_refuses_short_tokens(tmp_path):
    db = tmp_path / "b.sqlite3"
    res = doorlink("bench", "add-admin", "--name", "ops", "--token", "adm_0123456789abcdef", "--db", str(db))
    assert res.returncode == 0 and "admin ops added" in res.stdout
    con = sqlite3.connect(db)
    (stored,), = con.execute("SELECT token FROM admins").fetchall()
    con.close()
    assert stored.startswith("scrypt$") and "adm_0123456789abcdef" not in stored
    clear_error(doorlink("bench", "add-admin", "--name", "ops", "--token", "short", "--db", str(db)),
                "at least 16 characters")


@pytest.mark.parametrize("args, words", [
    (["--id", "", "--token", "t"], "device_id must be a non-empty string"),
    (["--id", "d", "--token", ""], "token must be a non-empty string"),
])
def test_add_device_with_an_empty_value_is_a_clear_error(tmp_path, args, words):
    clear_error(doorlink("bench", "add-device", *args, "--db", str(tmp_path / "b.sqlite3")), words)


def test_a_db_that_is_not_a_bench_database_is_a_clear_error(tmp_path):
    junk = tmp_path / "junk.sqlite3"
    junk.write_text("this is not SQLite\n" * 100)
    clear_error(doorlink("bench", "--port", "0", "--db", str(junk)), "is not a usable bench database")
    clear_error(doorlink("bench", "add-device", "--id", "d", "--token", "t", "--db", str(junk)),
                "is not a usable bench database")


def test_a_db_that_cannot_be_written_is_a_clear_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for db in (blocker / "bench.sqlite3", tmp_path):   # under a file; a folder
        clear_error(doorlink("bench", "--port", "0", "--db", str(db)), "cannot open")
        clear_error(doorlink("bench", "add-admin", "--name", "x", "--token", "adm_0123456789abcdef",
                             "--db", str(db)), "cannot open")


def test_a_port_in_use_or_out_of_range_is_a_clear_error(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        clear_error(doorlink("bench", "--port", str(port), "--db", str(tmp_path / "b.sqlite3")),
                    f"cannot listen on 127.0.0.1:{port}")
    clear_error(doorlink("bench", "--port", "99999", "--db", str(tmp_path / "b.sqlite3")),
                "port must be 0-65535")


def test_bench_help_names_the_security_options():
    res = doorlink("bench", "--help")
    assert res.returncode == 0
    for flag in ("--require-auth", "--allow-origin", "--trust-sn-only"):
        assert flag in res.stdout
    assert "add-admin" in res.stdout


def test_secrets_come_from_stdin_or_a_file_so_ps_does_not_show_them(tmp_path):
    db = tmp_path / "b.sqlite3"
    res = subprocess.run(DOORLINK + ["bench", "add-device", "--id", "d1", "--token", "-", "--db", str(db)],
                         input="tok_from_stdin\n", capture_output=True, text=True, timeout=30,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert res.returncode == 0, res.stderr
    key = tmp_path / "key.txt"
    key.write_text("a-control-key-from-a-file\nignored second line\n")
    assert doorlink("bench", "add-device", "--id", "d2", "--token", "t2", "--control-key", f"@{key}",
                    "--db", str(db)).returncode == 0
    store = BenchStore(db)
    try:
        assert store.check_token("d1", "tok_from_stdin") and not store.check_token("d1", "-")
        assert store.control_key("d2") == "a-control-key-from-a-file"
    finally:
        store.close()
    clear_error(doorlink("bench", "add-admin", "--name", "ops", "--token", f"@{tmp_path / 'none'}",
                         "--db", str(db)), "cannot read")
    (tmp_path / "empty").write_text("\n")
    clear_error(doorlink("bench", "add-admin", "--name", "ops", "--token", f"@{tmp_path / 'empty'}",
                         "--db", str(db)), "no secret on the first line")
