"""``kinline bench storm`` and ``connect`` on a tiny load (the benchmarks themselves are run by
hand: bench/README): a killed worker's relatives all come back and resume; connects are counted
for either server."""

from __future__ import annotations

import json

import pytest

from bench import connect, harness, storm

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _services(pg_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(harness, "PG_ADMIN_URL", pg_url)  # the bench's database beside the test's
    monkeypatch.setattr(harness, "REDIS_URL", redis_url)


async def test_every_relative_of_a_killed_worker_resumes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = storm._parser().parse_args(["--sockets", "40", "--backoff", "50", "--timeout", "30"])
    assert await storm._main(args) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert 0 < result["killed_worker_sockets"] < 40  # the kernel spread them over two workers
    assert result["dropped"] == result["killed_worker_sockets"] == result["resumed"]
    assert result["all_resumed_s"] is not None and result["all_resumed_s"] < 30


@pytest.mark.parametrize("server", ["kinline", "socketio"])
async def test_connects_are_counted_for_either_server(
    server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--clients", "30", "--rounds", "2", "--pause", "0.1", "--server", server]
    assert await connect._main(connect._parser().parse_args(argv)) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["failures"] == 0
    assert [r["connected"] for r in result["rounds"]] == [30, 30]
    assert result["connects_per_s"]["min"] > 0
