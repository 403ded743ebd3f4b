"""`doorlink install-service` runs as root: what it is given must not reach
further than asked. A final newline in an option that ends up in the unit
file, and a file planted where the token is about to be written."""

import json
import os
import stat

import pytest

from host_tools import cli, install_service
from host_tools.cli_common import CliError
from host_tools.paths import BOARDS


def _files(folder):
    board = json.loads((BOARDS / "emulated.json").read_text())
    board.pop("heap_kb")
    board.update(runtimes=["cpython"], journal=dict(board["journal"], path="/var/lib/doorlink/journal"))
    (folder / "board.json").write_text(json.dumps(board))
    (folder / "site.json").write_text(json.dumps({"server": "ws://127.0.0.1:9/ws", "device_id": "pi-1",
                                                  "token": "tok_hostile_pi"}))
    return ["--board", str(folder / "board.json"), "--site", str(folder / "site.json")]


@pytest.mark.parametrize("option", [["--user", "doorlink\n"], ["--prefix", "/opt/doorlink\n"],
                                    ["--config-dir", "/etc/doorlink\n"], ["--unit-dir", "/etc/systemd/system\n"]])
def test_a_final_newline_cannot_slip_a_line_into_the_unit(tmp_path, capsys, option):
    with pytest.raises(SystemExit) as ended:
        cli.main(["install-service", *_files(tmp_path), "--root", str(tmp_path / "root"), "--dry-run", *option])
    out = capsys.readouterr()
    assert ended.value.code == 2 and "->" in out.err, out.out + out.err
    assert "would write" not in out.out


def test_the_token_is_never_written_through_a_file_planted_in_its_place(tmp_path):
    victim = tmp_path / "shadow"
    victim.write_text("root:secret\n")
    victim.chmod(0o600)
    config = tmp_path / "etc" / "doorlink"
    config.mkdir(parents=True)
    (config / "site.json.new").symlink_to(victim)
    install_service._write(config / "site.json", b'{"token": "tok"}', 0o640)
    assert victim.read_text() == "root:secret\n" and stat.S_IMODE(victim.stat().st_mode) == 0o600
    site = config / "site.json"
    assert site.read_bytes() == b'{"token": "tok"}' and not site.is_symlink()
    assert stat.S_IMODE(site.stat().st_mode) == 0o640 and not (config / "site.json.new").exists()


def test_a_file_that_cannot_be_written_is_a_message_not_a_traceback(tmp_path):
    (tmp_path / "etc").write_text("a file where the config folder goes")
    with pytest.raises(CliError) as refused:
        install_service._write(tmp_path / "etc" / "doorlink" / "site.json", b"{}", 0o640)
    assert "cannot write" in refused.value.problem and os.fspath(tmp_path / "etc") in refused.value.fix


def test_what_is_installed_is_what_was_checked_though_the_path_is_swapped_during_pip(tmp_path, capsys, monkeypatch):
    """pip takes minutes; whoever can write the board file's folder must not
    get root to install another file (board.json is world-readable)."""
    secret = tmp_path / "secret.json"
    secret.write_text('{"root": "secret"}')
    argv = _files(tmp_path)
    board = tmp_path / "board.json"
    checked = board.read_bytes()

    def swap_during_pip(target):
        board.unlink()
        board.symlink_to(secret)

    monkeypatch.setattr(install_service, "_install_venv", swap_during_pip)
    root = tmp_path / "root"
    with pytest.raises(SystemExit) as ended:
        cli.main(["install-service", *argv, "--root", str(root)])
    out = capsys.readouterr()
    assert ended.value.code == 0, out.out + out.err
    assert (root / "etc/doorlink/board.json").read_bytes() == checked
