"""``kinline``: the operators' commands, run as an operator runs them (a subprocess)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage import open_database, prisons
from tests import services

pytestmark = pytest.mark.spawns

REPO = Path(__file__).resolve().parent.parent
STRONG = "tea-kettle-harbour-42"


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KINLINE_")}
    env["PYTHONPATH"] = str(REPO)
    env.update(extra)
    return env


def seed(url: str, *codes: str) -> None:
    """Migrate and add prisons directly through the store (setup, not what is under test)."""

    async def run() -> None:
        store = await open_database(url)
        try:
            await store.migrate()
            for code in codes:
                await prisons.add_prison(store, code, f"{code} Prison", "")
        finally:
            await store.close()

    asyncio.run(run())


class Kinline:
    def __init__(self, cwd: Path, database_url: str) -> None:
        self.cwd = cwd
        self.database_url = database_url

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "server", "--database-url", self.database_url, *args],
            cwd=self.cwd,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    def ok(self, *args: str) -> str:
        """Run a command that must succeed; return its one line of output."""
        result = self(*args)
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
        lines = result.stdout.strip().splitlines()
        assert len(lines) == 1, result.stdout
        return lines[0]

    def fails(self, *args: str) -> str:
        """Run a command that must fail with one ``kinline: error:`` line; return it."""
        result = self(*args)
        assert result.returncode != 0, result.stdout
        assert "Traceback" not in result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("kinline: error: "), lines[0]
        assert result.stdout == ""
        return lines[0]


@pytest.fixture
def fresh(tmp_path: Path) -> Kinline:
    """``kinline`` on an SQLite database nobody has created yet."""
    return Kinline(tmp_path, f"sqlite:///{tmp_path}/data/kinline.db")


@pytest.fixture
def kinline(fresh: Kinline) -> Kinline:
    """``kinline`` on a migrated SQLite database holding the prisons GM and FS."""
    seed(fresh.database_url, "GM", "FS")
    return fresh


@pytest.fixture
def fresh_postgres(tmp_path: Path) -> Iterator[Kinline]:
    """``kinline`` on a PostgreSQL database nobody has migrated yet."""
    for url in services.throwaway_postgres():
        yield Kinline(tmp_path, url)


def user_add(role: str, login: str, password: str, name: str, *prisons: str) -> list[str]:
    args = ["user", "add", "--role", role, "--login", login, "--password", password]
    args += ["--name", name]
    for code in prisons:
        args += ["--prison", code]
    return args


# -- what the production commands load --------------------------------------------------------


def _python(probe: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", probe],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_the_production_commands_never_import_bench(fresh: Kinline) -> None:
    """Issue 11: the production CLI must not import ``bench/``. Importing ``server.cli`` and
    running an operator's command leave the load generators unloaded; ``kinline bench`` and
    ``python -m bench`` still run them."""
    probe = (
        "import sys\n"
        "from server import cli\n"
        "assert 'bench' not in sys.modules, 'importing server.cli loaded bench'\n"
        f"code = cli.main(['--database-url', {fresh.database_url!r}, 'migrate'])\n"
        "print(code, sorted(m for m in sys.modules if m.split('.')[0] == 'bench'))\n"
    )
    result = _python(probe, fresh.cwd)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "0 []"
    for command in ([sys.executable, "-m", "server", "bench"], [sys.executable, "-m", "bench"]):
        usage = subprocess.run(
            command,
            cwd=REPO,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert usage.returncode == 2 and "chat,broadcast,idle" in usage.stdout, usage


def test_bench_without_the_benchmarks_installed_is_one_error_line(tmp_path: Path) -> None:
    """Regression (issue 11): on an install without ``bench/``, ``kinline bench`` ended in a
    ``ModuleNotFoundError`` traceback; it is one ``kinline: error:`` line and status 2."""
    probe = (
        "import sys\n"
        "class NoBench:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'bench':\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, NoBench())\n"
        "from server import cli\n"
        "sys.exit(cli.main(['bench', 'chat']))\n"
    )
    result = _python(probe, tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "kinline: error: the benchmarks (bench/) are not installed; run them from a checkout"
    ]


# -- migrate ---------------------------------------------------------------------------------


def test_migrate_reports_what_it_applied(fresh: Kinline) -> None:
    line = fresh.ok("migrate")
    assert line.startswith("applied "), line
    assert "0001" in line


def test_migrate_reports_what_it_applied_on_postgresql(fresh_postgres: Kinline) -> None:
    line = fresh_postgres.ok("migrate")
    assert line.startswith("applied "), line
    assert "0001" in line


def test_migrate_rerun_is_a_no_op(fresh: Kinline) -> None:
    fresh("migrate")
    assert fresh.ok("migrate") == "database is up to date"
    assert (fresh.cwd / "data" / "kinline.db").is_file()


# -- prison add ------------------------------------------------------------------------------


def test_prison_add_reports_the_new_prison(kinline: Kinline) -> None:
    line = kinline.ok("prison", "add", "ZS", "Zhongshan Prison")
    assert line.startswith("added prison ZS (Zhongshan Prison) with id ")
    assert line.rsplit(" ", 1)[1].isdigit()


def test_duplicate_prison_code_is_refused(kinline: Kinline) -> None:
    line = kinline.fails("prison", "add", "GM", "Another")
    assert "'GM'" in line
    assert "already exists" in line


# -- user add --------------------------------------------------------------------------------


def test_officer_add_names_the_prison(kinline: Kinline) -> None:
    line = kinline.ok(*user_add("officer", "li.wei", STRONG, "Li Wei", "GM"))
    assert line.startswith("added officer li.wei (Li Wei) of GM with id ")


def test_supervisor_of_two_prisons(kinline: Kinline) -> None:
    line = kinline.ok(*user_add("supervisor", "wang", STRONG, "Wang Fang", "GM", "FS"))
    assert line.startswith("added supervisor wang (Wang Fang) of GM, FS with id ")


def test_admin_needs_no_prison(kinline: Kinline) -> None:
    line = kinline.ok(*user_add("admin", "root", STRONG, "Admin"))
    assert line.startswith("added admin root (Admin) with id ")


def test_duplicate_login_is_refused(kinline: Kinline) -> None:
    kinline.ok(*user_add("officer", "li.wei", STRONG, "Li Wei", "GM"))
    line = kinline.fails(*user_add("supervisor", "li.wei", STRONG, "Other Li", "FS"))
    assert "'li.wei'" in line
    assert "taken" in line


def test_weak_passwords_are_refused_and_create_nothing(kinline: Kinline) -> None:
    for password, why in [
        ("short1", "at least 10 characters"),
        ("Password123", "too common"),
        ("aaaaabbbbbb", "too common"),
    ]:
        line = kinline.fails(*user_add("officer", "li.wei", password, "Li Wei", "GM"))
        assert why in line
        assert password not in line  # the password is not echoed back
    # nothing was created: the login is still free
    kinline.ok(*user_add("officer", "li.wei", STRONG, "Li Wei", "GM"))


@pytest.mark.parametrize("prisons", [(), ("GM", "FS")], ids=["none", "two"])
def test_officer_needs_exactly_one_prison(kinline: Kinline, prisons: tuple[str, ...]) -> None:
    line = kinline.fails(*user_add("officer", "li.wei", STRONG, "Li Wei", *prisons))
    assert "exactly one prison" in line


def test_supervisor_needs_a_prison(kinline: Kinline) -> None:
    line = kinline.fails(*user_add("supervisor", "wang", STRONG, "Wang Fang"))
    assert "--prison" in line


def test_user_in_unknown_prison_is_refused(kinline: Kinline) -> None:
    line = kinline.fails(*user_add("officer", "li.wei", STRONG, "Li Wei", "XX"))
    assert "unknown prison 'XX'" in line


# -- inmate add ------------------------------------------------------------------------------


def test_inmate_add_reports_the_inmate(kinline: Kinline) -> None:
    line = kinline.ok("inmate", "add", "--prison", "GM", "--number", "44-0012", "--name", "Zhang")
    assert line.startswith("added inmate 44-0012 (Zhang) to GM with id ")


def test_inmate_in_unknown_prison_is_refused(kinline: Kinline) -> None:
    line = kinline.fails("inmate", "add", "--prison", "XX", "--number", "1", "--name", "Zhang")
    assert "unknown prison 'XX'" in line


def test_duplicate_inmate_number_is_refused(kinline: Kinline) -> None:
    args = ("inmate", "add", "--prison", "GM", "--number", "44-0012")
    kinline.ok(*args, "--name", "Zhang San")
    line = kinline.fails(*args, "--name", "Li Si")
    assert "44-0012" in line
    # the same number in another prison is another inmate
    kinline.ok("inmate", "add", "--prison", "FS", "--number", "44-0012", "--name", "Li Si")


# -- the same commands on PostgreSQL ---------------------------------------------------------


def test_operator_commands_on_postgresql(fresh_postgres: Kinline) -> None:
    kinline = fresh_postgres
    assert kinline.ok("prison", "add", "GM", "Gaoming").startswith("added prison GM (Gaoming)")
    assert "already exists" in kinline.fails("prison", "add", "GM", "Again")
    line = kinline.ok(*user_add("officer", "li.wei", STRONG, "Li Wei", "GM"))
    assert line.startswith("added officer li.wei (Li Wei) of GM with id ")
    assert "taken" in kinline.fails(*user_add("admin", "li.wei", STRONG, "Other"))
    line = kinline.ok("inmate", "add", "--prison", "GM", "--number", "7", "--name", "Zhang")
    assert line.startswith("added inmate 7 (Zhang) to GM with id ")
    assert "unknown prison 'XX'" in kinline.fails(
        "inmate", "add", "--prison", "XX", "--number", "8", "--name", "Li"
    )


# -- serve -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str) -> tuple[int, dict[str, str], bytes]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def wait_healthy(process: subprocess.Popen[str], port: int, limit: float = 15.0) -> None:
    """Poll /healthz (bounded) until it answers 200; fail if the server exits or never does."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"kinline serve exited {process.returncode}:\n{out}\n{err}")
        try:
            if get(f"http://127.0.0.1:{port}/healthz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    pytest.fail(f"kinline serve did not answer /healthz within {limit} s")


@pytest.fixture
def serve() -> Iterator[list[subprocess.Popen[str]]]:
    """Start ``kinline serve`` processes; kill any still running at the end."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.communicate()


def start_serve(
    started: list[subprocess.Popen[str]], cwd: Path, port: int, *extra: str
) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "server",
            "--database-url",
            f"sqlite:///{cwd}/data/k.db",
            "serve",
            "--port",
            str(port),
            *extra,
        ],
        cwd=cwd,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    started.append(process)
    return process


def stop(process: subprocess.Popen[str], limit: float = 5.0) -> tuple[str, str]:
    process.send_signal(signal.SIGTERM)
    try:
        out, err = process.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"kinline serve still running {limit} s after SIGTERM:\n{out}\n{err}")
    assert process.returncode == 0, f"exit {process.returncode}:\n{err}"
    return out, err


def somaxconn() -> int:
    return int(Path("/proc/sys/net/core/somaxconn").read_text())


def listen_backlog(port: int) -> int:
    """The accept queue's size of the socket listening on ``port`` (``ss``: its Send-Q)."""
    shown = subprocess.run(
        ["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout.split()
    return int(shown[2])


def test_serve_embedded_default(serve: list[subprocess.Popen[str]], tmp_path: Path) -> None:
    port = free_port()
    process = start_serve(serve, tmp_path, port)
    wait_healthy(process, port)

    status, headers, body = get(f"http://127.0.0.1:{port}/healthz")
    assert status == 200
    assert json.loads(body) == {"status": "ok"}

    status, headers, body = get(f"http://127.0.0.1:{port}/")
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert b"Kinline" in body
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]

    status, _, body = get(f"http://127.0.0.1:{port}/readyz")
    assert status == 200
    assert json.loads(body)["ready"] is True

    assert (tmp_path / "var" / "secret").is_file()  # generated in the working directory
    assert listen_backlog(port) == min(4096, somaxconn())  # a storm's SYNs wait, not drop
    assert (tmp_path / "data" / "k.db").is_file()  # the database named by --database-url

    out, _ = stop(process)
    assert f"http://localhost:{port}/" in out
    assert "demo logins" not in out


def test_serve_demo_prints_url_and_logins(
    serve: list[subprocess.Popen[str]], tmp_path: Path
) -> None:
    port = free_port()
    process = start_serve(serve, tmp_path, port, "--demo")
    wait_healthy(process, port)
    status, _, _ = get(f"http://127.0.0.1:{port}/")
    assert status == 200
    out, _ = stop(process)
    assert f"http://localhost:{port}/" in out
    assert "officer.li" in out
    assert "supervisor.wang" in out
    assert "password" in out


def test_serve_on_a_port_in_use_is_one_error_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        kinline = Kinline(tmp_path, f"sqlite:///{tmp_path}/k.db")
        line = kinline.fails("serve", "--port", str(port))
    assert str(port) in line
