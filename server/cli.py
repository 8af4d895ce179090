"""``kinline``: the operators' command line.

Every command reports what it did in one line; a bad argument or an unreachable database is
one ``kinline: error: ...`` line on stderr and exit status 2, never a traceback.
``kinline verify`` exits 1 with ``kinline: verify: broken: <the first broken record>`` on
stderr when a hash chain or an anchor does not hold (``storage/chains.py``).

``kinline bench`` is a development tool (the load generators of ``bench/``, also run as
``python -m bench``): it is imported by name only when that command runs, so no production
command (and no import of this module) loads it, and a deployment without ``bench/`` says so
in one line.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from server import config
from server.attachment_sweep import sweep
from server.config import ConfigError, Settings
from server.passwords import WeakPassword, check_strength, hash_password
from server.retention import archive_dir, retention_cutoff
from storage import accounts, chain_anchors, chains, open_database, prisons, retention
from storage.errors import Conflict, NotFound, StoreUnavailable
from storage.objects import open_objects
from storage.retention_archive import ArchiveFailed
from storage.sql import Database, utcnow


class CliError(Exception):
    """A user-facing failure: printed as one line."""


class Broken(Exception):
    """``kinline verify`` found a record that does not hold: exit status 1."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kinline", description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="overrides KINLINE_DATABASE_URL")
    parser.add_argument("--redis-url", help="overrides KINLINE_REDIS_URL")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    commands.add_parser("migrate", help="apply pending database migrations")
    commands.add_parser(
        "retention",
        help="purge the text of messages older than KINLINE_RETENTION_YEARS (audited)",
    )
    commands.add_parser(
        "verify",
        help="recompute every hash chain and anchor; exit 1 naming the first broken record",
    )
    commands.add_parser("anchor", help="take today's anchor of every chain head (once a day)")
    commands.add_parser(
        "demo", help="seed the demo prisons, staff, inmates and relatives (idempotent)"
    )

    prison = commands.add_parser("prison", help="manage prisons").add_subparsers(
        dest="action", required=True
    )
    add = prison.add_parser("add", help="add a prison")
    add.add_argument("code")
    add.add_argument("name")
    add.add_argument("--city", default="")

    user = commands.add_parser("user", help="manage staff accounts").add_subparsers(
        dest="action", required=True
    )
    add = user.add_parser("add", help="add a staff account")
    add.add_argument("--role", required=True, choices=["officer", "supervisor", "admin"])
    add.add_argument("--login", required=True)
    add.add_argument("--password", required=True)
    add.add_argument("--name", required=True)
    add.add_argument("--prison", action="append", default=[], metavar="CODE")

    inmate = commands.add_parser("inmate", help="manage inmates").add_subparsers(
        dest="action", required=True
    )
    add = inmate.add_parser("add", help="add an inmate")
    add.add_argument("--prison", required=True, metavar="CODE")
    add.add_argument("--number", required=True)
    add.add_argument("--name", required=True)

    wechat = commands.add_parser("wechat", help="the WeChat Official Account").add_subparsers(
        dest="action", required=True
    )
    wechat.add_parser("menu", help="publish the account's menu (chat, information, visits...)")

    serve = commands.add_parser("serve", help="serve HTTP and WebSocket")
    serve.add_argument("--host")
    serve.add_argument("--port")
    serve.add_argument("--workers")
    serve.add_argument("--demo", action="store_true", help="seed the demo data first")

    bench = commands.add_parser("bench", help="run a benchmark (a dev tool, see bench/)")
    bench.add_argument("workload", nargs=argparse.REMAINDER)
    return parser


async def _with_store(settings: Settings, work: Callable[[Database], Awaitable[str]]) -> str:
    store = await open_database(settings.database_url)
    try:
        if work is not _migrate:  # migrate reports what it applies itself
            await store.migrate()
        return await work(store)
    finally:
        await store.close()


async def _migrate(store: Database) -> str:
    applied = await store.migrate()
    return f"applied {', '.join(applied)}" if applied else "database is up to date"


def _command(args: argparse.Namespace, settings: Settings) -> Callable[[Database], Awaitable[str]]:
    """The store work of the one-shot commands (everything but serve and bench)."""

    async def prison_add(store: Database) -> str:
        try:
            prison = await prisons.add_prison(store, args.code, args.name, args.city)
        except Conflict:
            raise CliError(f"a prison with code {args.code!r} already exists") from None
        return f"added prison {prison.code} ({prison.name}) with id {prison.id}"

    async def user_add(store: Database) -> str:
        try:
            check_strength(args.password, (args.login, args.name))
        except WeakPassword as exc:
            raise CliError(str(exc)) from None
        if args.role == "officer" and len(args.prison) != 1:
            raise CliError("an officer belongs to exactly one prison: give --prison CODE once")
        if args.role == "supervisor" and not args.prison:
            raise CliError("a supervisor oversees at least one prison: give --prison CODE")
        prisons = [await _prison(store, code) for code in args.prison]
        try:
            user = await accounts.add_user(
                store, args.role, args.login, args.name, hash_password(args.password), prisons
            )
        except Conflict:
            raise CliError(f"the login {args.login!r} is taken") from None
        where = f" of {', '.join(args.prison)}" if args.prison else ""
        return f"added {user.role} {user.login} ({user.name}){where} with id {user.id}"

    async def inmate_add(store: Database) -> str:
        prison_id = await _prison(store, args.prison)
        try:
            inmate = await prisons.add_inmate(store, prison_id, args.number, args.name)
        except Conflict:
            raise CliError(f"{args.prison} already has an inmate number {args.number!r}") from None
        return f"added inmate {inmate.number} ({inmate.name}) to {args.prison} with id {inmate.id}"

    async def demo(store: Database) -> str:
        from server.demo import seed

        return "seeded the demo\n" + "\n".join(await seed(store, config.with_secret(settings)))

    async def wechat_menu(store: Database) -> str:
        from server.wechat_platform import Platform, PlatformError, menu

        if not settings.wechat_enabled:
            raise CliError(
                "the WeChat channel is off: set KINLINE_WECHAT_APPID, _SECRET and _TOKEN"
            )
        platform = Platform(settings, store)
        published = menu(settings)
        try:
            await platform.create_menu(published)
        except PlatformError as exc:
            raise CliError(f"WeChat refused the menu: {exc}") from None
        finally:
            await platform.close()
        names = ", ".join(button["name"] for button in published["button"])
        return f"published the WeChat menu: {names}"

    async def retention_now(store: Database) -> str:
        if settings.retention_years == 0:
            raise CliError("KINLINE_RETENTION_YEARS is 0: messages are kept forever")
        before = retention_cutoff(settings.retention_years, utcnow())
        archive_to = archive_dir(settings.retention_archive)
        try:
            count = await retention.purge(store, before, utcnow(), archive_to=archive_to)
        except ArchiveFailed as exc:
            raise CliError(f"nothing purged: the archive could not be written: {exc}") from None
        # their files' objects now, as a serving process's sweep would (server/attachment_sweep)
        objects = await open_objects(
            settings.files, endpoint=settings.s3_endpoint, region=settings.s3_region
        )
        try:
            _, deleted = await sweep(store, objects, settings.unsent_attachment_hours)
        finally:
            await objects.close()
        return (
            f"purged the text of {count} messages written before {before:%Y-%m-%d}"
            f" ({deleted} files deleted)"
        )

    async def verify(store: Database) -> str:
        verdict = await chains.verify(store)
        if verdict.broken is not None:
            raise Broken(verdict.broken)
        return (
            f"every chain holds: {verdict.messages} messages in {verdict.conversations}"
            f" conversations, {verdict.audit_entries} audit entries, {verdict.anchors} anchors"
        )

    async def anchor(store: Database) -> str:
        taken, created = await chain_anchors.anchor(store, utcnow())
        return f"{'took' if created else 'kept'} the anchor of {taken.day}: {taken.digest}"

    commands: dict[tuple[str, str | None], Callable[[Database], Awaitable[str]]] = {
        ("verify", None): verify,
        ("anchor", None): anchor,
        ("wechat", "menu"): wechat_menu,
        ("migrate", None): _migrate,
        ("retention", None): retention_now,
        ("demo", None): demo,
        ("prison", "add"): prison_add,
        ("user", "add"): user_add,
        ("inmate", "add"): inmate_add,
    }
    return commands[(args.command, getattr(args, "action", None))]


async def _prison(store: Database, code: str) -> int:
    try:
        return (await prisons.prison_by_code(store, code)).id
    except NotFound:
        raise CliError(f"unknown prison {code!r}") from None


def settings_from(args: argparse.Namespace) -> Settings:
    flags: dict[str, Any] = {"database_url": args.database_url, "redis_url": args.redis_url}
    for name in ("host", "port", "workers"):
        flags[name] = getattr(args, name, None)
    return config.load(**flags)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = settings_from(args)
        if args.command == "serve":
            from server.serve import serve

            if args.demo and "KINLINE_VERIFY_PHONE" not in os.environ:
                # the demo texts no phone: registration there takes no code
                settings = dataclasses.replace(settings, verify_phone=False)
            return serve(config.with_vapid(config.with_secret(settings)), demo=args.demo)
        if args.command == "bench":
            return _bench(args.workload)
        print(asyncio.run(_with_store(settings, _command(args, settings))))
    except Broken as exc:
        print(f"kinline: verify: broken: {exc}", file=sys.stderr)
        return 1
    except (ConfigError, CliError, ValueError) as exc:
        return _fail(str(exc))
    except StoreUnavailable as exc:
        return _fail(f"database unreachable: {exc}")
    except KeyboardInterrupt:
        return 130
    return 0


def _bench(argv: Sequence[str]) -> int:
    """Run a benchmark workload: ``bench.main``, looked up by name only now."""
    try:
        bench = importlib.import_module("bench")
    except ModuleNotFoundError as exc:
        if exc.name != "bench":
            raise
        raise CliError(
            "the benchmarks (bench/) are not installed; run them from a checkout"
        ) from None
    code: int = bench.main(list(argv))
    return code


def _fail(message: str) -> int:
    print(f"kinline: error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
