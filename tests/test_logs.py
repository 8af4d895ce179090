"""Structured logs: one JSON object a line off a terminal; secrets never reach the output."""

from __future__ import annotations

import io
import json
import logging
import os
import pty
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from server import logs

REPO = Path(__file__).resolve().parent.parent

SECRETS = {
    "password": "hunter2-correct-horse",
    "token": "tok_9f8e7d6c5b4a",
    "body": "meet me at the east gate",
    "authorization": "Bearer abc.def.ghi",
    "id_number": "440104199001011234",
}

PROGRAM = """
import logging, sys
from server import logs
logs.setup(sys.argv[1], "INFO")
log = logging.getLogger("kinline.test")
log.debug("hidden at INFO")
log.info("user %s signed in", "li.wei", extra={
    "user_id": 7, "password": "hunter2-correct-horse", "token": "tok_9f8e7d6c5b4a",
    "body": "meet me at the east gate", "authorization": "Bearer abc.def.ghi",
    "id_number": "440104199001011234",
})
log.warning("second line", extra={"Password": "hunter2-correct-horse", "conversation": 3})
try:
    raise RuntimeError("boom")
except RuntimeError:
    log.exception("it failed", extra={"token": "tok_9f8e7d6c5b4a"})
"""


def run_program(log_format: str, stderr: int | None = subprocess.PIPE) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KINLINE_")}
    env["PYTHONPATH"] = str(REPO)
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM, log_format],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        timeout=30,
        check=True,
    )
    assert result.stdout == ""  # logs go to stderr, never stdout
    return result.stderr or ""


def assert_no_secrets(output: str) -> None:
    for key, value in SECRETS.items():
        assert value not in output, key
        assert f'"{key}"' not in output


@pytest.mark.spawns
def test_not_on_a_terminal_each_line_is_one_json_object() -> None:
    output = run_program("auto")  # stderr is a pipe, not a terminal
    lines = output.strip().splitlines()
    entries = [json.loads(line) for line in lines[:2]]
    assert [e["msg"] for e in entries] == ["user li.wei signed in", "second line"]
    assert [e["level"] for e in entries] == ["info", "warning"]
    assert all(e["logger"] == "kinline.test" for e in entries)
    assert all("at" in e for e in entries)
    assert entries[0]["user_id"] == 7
    assert entries[1]["conversation"] == 3
    # the exception is inside its JSON object: still one object a line
    assert len(lines) == 3
    failure = json.loads(lines[2])
    assert failure["level"] == "error"
    assert "RuntimeError: boom" in failure["exc"]
    assert "hidden at INFO" not in output
    assert_no_secrets(output)


@pytest.mark.spawns
def test_json_can_be_forced() -> None:
    output = run_program("json")
    assert all(json.loads(line)["logger"] == "kinline.test" for line in output.splitlines())


@pytest.mark.spawns
def test_on_a_terminal_logs_are_text() -> None:
    main, child = pty.openpty()
    try:
        run_program("auto", stderr=child)
        os.close(child)
        child = -1
        chunks = []
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: the terminal has no writer left
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        if child >= 0:
            os.close(child)
        os.close(main)
    output = b"".join(chunks).decode()
    assert "kinline.test: user li.wei signed in" in output
    assert "user_id=7" in output
    assert not output.lstrip().startswith("{")
    assert_no_secrets(output)


@pytest.mark.spawns
def test_text_format_also_drops_secrets() -> None:
    output = run_program("text")
    assert "info    kinline.test: user li.wei signed in user_id=7" in output
    assert_no_secrets(output)


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """``logs.setup`` on a captured stderr; the root logger is restored afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    access_level = logging.getLogger("aiohttp.access").level
    stream = io.StringIO()
    saved, sys.stderr = sys.stderr, stream
    try:
        logs.setup("auto", "INFO")
    finally:
        sys.stderr = saved
    yield stream
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(access_level)


@pytest.mark.parametrize("key", sorted(SECRETS))
def test_each_sensitive_key_is_dropped(captured: io.StringIO, key: str) -> None:
    logging.getLogger("kinline.test").info("event", extra={key: SECRETS[key], "request": "r1"})
    entry = json.loads(captured.getvalue())
    assert entry["msg"] == "event"
    assert entry["request"] == "r1"  # other context is kept
    assert key not in entry
    assert SECRETS[key] not in captured.getvalue()


def test_non_json_values_do_not_break_a_line(captured: io.StringIO) -> None:
    logging.getLogger("kinline.test").info("odd", extra={"path": Path("/x"), "ids": {1, 2}})
    entry = json.loads(captured.getvalue())
    assert entry["path"] == "/x"


def test_setup_sets_the_level(captured: io.StringIO) -> None:
    log = logging.getLogger("kinline.test")
    log.debug("not shown")
    log.info("shown")
    assert [json.loads(line)["msg"] for line in captured.getvalue().splitlines()] == ["shown"]
