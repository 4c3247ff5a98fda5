"""Every error a user can cause at the command line ends in one clear line and exit code 1, never a traceback."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from costguard import cli
from costguard.cli import main

DIGEST = "0" * 64


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    alerts = tmp_path / "alerts.jsonl"
    alerts.write_text(json.dumps({"alert_id": "a", "instance_id": "i-0123456789abcdef0"}) + "\n")
    not_toml = tmp_path / "not.toml"
    not_toml.write_text("phase = \n")
    bad_policy = tmp_path / "bad.toml"
    bad_policy.write_text('phase = "yolo"\n')
    garbage_db = tmp_path / "garbage.db"
    garbage_db.write_bytes(b"this is not SQLite" * 100)
    return {
        "alerts": alerts,
        "not_toml": not_toml,
        "bad_policy": bad_policy,
        "garbage_db": garbage_db,
        "no_dir_db": tmp_path / "no" / "such" / "dir" / "x.db",
        "missing": tmp_path / "missing.json",
    }


CASES: list[tuple[str, list[str], str]] = [
    ("unknown command", ["frobnicate"], "No such command 'frobnicate'"),
    ("missing file", ["process", "{missing}"], "does not exist"),
    ("bad number", ["process", "{alerts}", "--concurrency", "0"], "'--concurrency'"),
    ("policy not TOML", ["process", "{alerts}", "--policy", "{not_toml}"], "is not valid TOML"),
    ("invalid policy", ["process", "{alerts}", "--policy", "{bad_policy}"], "phase: Input should be"),
    ("db in no directory", ["process", "{alerts}", "--db", "{no_dir_db}"], "as costguard's database"),
    ("db not SQLite", ["audit", "verify", "--db", "{garbage_db}"], "file is not a database"),
    ("no scripted model", ["process", "{alerts}", "--scripted-model", "{missing}"], "cannot read scripted model"),
    ("no such thread", ["review", "approve", "alert:nope", "--reviewer", "a", "--digest", DIGEST], "no thread"),
    ("bad digest", ["review", "reject", "alert:nope", "--reviewer", "a", "--digest", "abc"], "invalid review"),
    ("bad edit", ["review", "edit", "t", "--reviewer", "a", "--digest", DIGEST, "--action", "boom"], "invalid edit"),
    ("show nothing", ["review", "show", "alert:nope"], "not waiting for a review"),
    ("history nothing", ["history", "alert:nope"], "no thread 'alert:nope'"),
    ("resume what", ["resume"], "give a THREAD or --all"),
    ("undo nothing", ["undo", "alert:nope", "--reviewer", "a"], "has not finished"),
    ("rollback nowhere", ["rollback", "alert:nope", "--to", "x"], "no checkpoint 'x'"),
    ("bad time", ["metrics", "--since", "yesterday"], "--since must be an ISO-8601 time"),
]


@pytest.mark.parametrize(("case", "argv", "said"), CASES, ids=[c[0] for c in CASES])
def test_a_user_error_is_one_line_and_exit_1(
    case: str,
    argv: list[str],
    said: str,
    files: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # logging stays as the test session has it: the CLI's would print to this test's (then closed) stderr
    monkeypatch.setattr(cli, "configure_cli_logging", lambda: None)
    monkeypatch.setenv("COSTGUARD_DB", str(tmp_path / "cg.db"))
    monkeypatch.setenv("COLUMNS", "300")
    monkeypatch.setattr(sys, "argv", ["costguard", *(a.format(**files) for a in argv)])
    with pytest.raises(SystemExit) as ended:
        main()
    captured = capsys.readouterr()
    assert ended.value.code == 1, captured.err
    assert "Traceback" not in captured.err + captured.out
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: ")
    assert said in lines[0]
