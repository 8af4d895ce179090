"""``kinline serve``: one process, or N worker processes sharing one port (SO_REUSEPORT).

The parent migrates once (and seeds the demo), then starts the workers and supervises them:
a worker that dies is started again; SIGTERM or SIGINT reaches every worker, and each closes
its sockets with 1012 after its in-flight sends are acked. Workers share nothing but
PostgreSQL and Redis (several workers need both: the in-process broker cannot cross
processes, and SQLite has one writer).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import multiprocessing.connection
import os
import resource
import shutil
import signal
import socket
import sys
import tempfile
import time
from multiprocessing.process import BaseProcess

from aiohttp import web

from server import logs
from server.config import ConfigError, Settings
from storage import open_database

log = logging.getLogger(__name__)


def _install_uvloop() -> str:
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


async def prepare(settings: Settings, demo: bool) -> list[str]:
    """Migrate (and seed the demo data); return the lines to print for the operator."""
    store = await open_database(settings.database_url)
    try:
        await store.migrate()
        if demo:
            from server.demo import seed

            return await seed(store, settings)
        return []
    finally:
        await store.close()


def raise_open_files_limit() -> int:
    """Every socket is a file descriptor: lift the soft limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def run_worker(settings: Settings, reuse_port: bool) -> None:
    logs.setup(settings.log_format, settings.log_level)
    raise_open_files_limit()
    loop_name = _install_uvloop()
    from server.app import build_app  # after PROMETHEUS_MULTIPROC_DIR is set

    log.info("worker starting", extra={"pid": os.getpid(), "loop": loop_name})
    web.run_app(
        build_app(settings),
        host=settings.host,
        port=settings.port,
        reuse_port=reuse_port,
        backlog=settings.listen_backlog,
        print=None,
        access_log=None,
        shutdown_timeout=10.0,
        handle_signals=True,
    )


def check_listen(host: str, port: int) -> None:
    """Fail with one clear line, before saying we serve, if the address cannot be bound."""
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def serve(settings: Settings, *, demo: bool = False) -> int:
    logs.setup(settings.log_format, settings.log_level)
    if settings.workers > 1 and (
        settings.redis_url is None or settings.database_url.startswith("sqlite")
    ):
        raise ConfigError(
            "--workers above 1 needs KINLINE_REDIS_URL and a PostgreSQL KINLINE_DATABASE_URL"
        )
    check_listen(settings.host, settings.port)
    lines = asyncio.run(prepare(settings, demo))
    url = f"http://{'localhost' if settings.host in ('127.0.0.1', '0.0.0.0') else settings.host}"  # noqa: S104
    print(
        f"Kinline serving on {url}:{settings.port}/ ({settings.workers} worker"
        f"{'s' if settings.workers > 1 else ''}; health: {url}:{settings.port}/healthz)",
        flush=True,
    )
    base = f"{url}:{settings.port}"
    print(
        f"pages: {base}/app (relatives), {base}/console (officers), {base}/monitor (supervisors)",
        flush=True,
    )
    for line in lines:
        print(line, flush=True)
    if settings.workers == 1:
        run_worker(settings, reuse_port=False)
        return 0
    return _supervise(settings)


def _supervise(settings: Settings) -> int:
    metrics_dir = tempfile.mkdtemp(prefix="kinline-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    context = multiprocessing.get_context("spawn")
    stopping = False
    signalled: set[int] = set()

    def start() -> BaseProcess:
        process = context.Process(target=run_worker, args=(settings, True), daemon=False)
        process.start()
        return process

    def forward() -> None:
        """SIGTERM each live worker once: each drains its sends and closes with 1012."""
        for process in workers:
            if process.pid and process.pid not in signalled and process.is_alive():
                signalled.add(process.pid)
                os.kill(process.pid, signal.SIGTERM)

    def stop(signum: int, _: object) -> None:
        nonlocal stopping
        stopping = True
        forward()

    workers = [start() for _ in range(settings.workers)]
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while not stopping:
        for index, process in enumerate(workers):
            if not process.is_alive() and not stopping:
                log.warning(
                    "worker died; starting another",
                    extra={"pid": process.pid, "exitcode": process.exitcode},
                )
                from prometheus_client import multiprocess

                if process.pid:
                    multiprocess.mark_process_dead(process.pid)  # type: ignore[no-untyped-call]
                time.sleep(0.5)  # do not spin if workers die at once on start
                workers[index] = start()
        multiprocessing.connection.wait([p.sentinel for p in workers], timeout=1.0)
    forward()  # a worker started while the signal arrived has not heard it yet
    for process in workers:
        process.join(15)
        if process.is_alive():
            log.error("worker did not stop in time; killing it", extra={"pid": process.pid})
            process.kill()
    shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use `kinline serve`")
