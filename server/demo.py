"""Demo data for ``kinline demo`` and ``kinline serve --demo`` (what ``make run`` serves).

Seeding is idempotent: every step looks for what it would create and leaves it alone when it
is there, so the demo can be seeded again over itself (or over a half-seeded database after a
crash) without duplicates. Everything goes through the same storage functions the API uses,
so the demo's conversations have real cycles, audit entries and figures.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from domain.records import Inmate, LinkClaim, NewMessage, Prison, Role, User
from server import identity, passwords
from server.config import Settings
from server.demo_history import seed_history
from storage import (
    accounts,
    announcements,
    desk,
    desk_settings,
    inmate_info,
    keywords,
    links,
    prisons,
    profiles,
    visits,
)
from storage.desk_settings import DeskHours, DeskSettings
from storage.errors import Conflict, NotFound
from storage.inmate_info import HealthIn, InfoPatch, MovementIn, TermIn
from storage.keywords import KeywordList
from storage.profiles import SupervisorProfile
from storage.sql import Database, utcnow
from storage.visit_rules import Hours, VisitRules

DEMO_PASSWORD = "kinline-demo-2026"  # noqa: S105 (printed for the demo on purpose)

PRISONS = (
    ("GM", "高明监狱 Gaoming Prison", "Foshan"),
    ("SH", "四会监狱 Sihui Prison", "Zhaoqing"),
)
# (login, name, role, prison codes)
STAFF: tuple[tuple[str, str, Role, tuple[str, ...]], ...] = (
    ("bureau.admin", "省监狱管理局 Bureau Admin", "admin", ()),
    ("officer.li", "李伟 Officer Li Wei", "officer", ("GM",)),
    ("officer.chen", "陈浩 Officer Chen Hao", "officer", ("GM",)),
    ("officer.zhou", "周敏 Officer Zhou Min", "officer", ("SH",)),
)
# (login, name, title, prison, photo number, address, phone)
SUPERVISORS = (
    (
        "supervisor.wang",
        "王芳 Wang Fang",
        "党代表 Party representative",
        "GM",
        1,
        "佛山市高明区荷城街道 Hecheng, Gaoming, Foshan",
        "0757-8888 1201",
    ),
    (
        "supervisor.liu",
        "刘强 Liu Qiang",
        "人大代表 People's Congress deputy",
        "GM",
        2,
        "佛山市高明区人大 Gaoming District People's Congress",
        "0757-8888 1202",
    ),
    (
        "supervisor.zhang",
        "张丽 Zhang Li",
        "政协委员 CPPCC member",
        "GM",
        3,
        "佛山市高明区政协 Gaoming District CPPCC",
        "0757-8888 1203",
    ),
    (
        "supervisor.huang",
        "黄军 Huang Jun",
        "党代表 Party representative",
        "SH",
        4,
        "肇庆市四会市东城街道 Dongcheng, Sihui, Zhaoqing",
        "0758-3333 2101",
    ),
    (
        "supervisor.xu",
        "徐英 Xu Ying",
        "人大代表 People's Congress deputy",
        "SH",
        5,
        "四会市人大 Sihui People's Congress",
        "0758-3333 2102",
    ),
    (
        "supervisor.deng",
        "邓伟 Deng Wei",
        "政协委员 CPPCC member",
        "SH",
        6,
        "四会市政协 Sihui CPPCC",
        "0758-3333 2103",
    ),
)
INMATES = (
    ("GM", "GM-0001", "陈健 Chen Jian"),
    ("GM", "GM-0002", "黄波 Huang Bo"),
    ("SH", "SH-0001", "林峰 Lin Feng"),
)
# (phone, name, id number, relationship, inmate number)
RELATIVES = (
    ("13800000001", "陈梅 Chen Mei", "440681195803120021", "mother", "GM-0001"),
    ("13800000002", "黄兰 Huang Lan", "440681198506230042", "wife", "GM-0002"),
    ("13800000003", "林秀 Lin Xiu", "441284199011050063", "sister", "SH-0001"),
)
RULES = VisitRules(
    days=[2, 4, 6],
    hours=[Hours("09:00", "11:30"), Hours("14:00", "16:30")],
    min_days_between=30,
    max_visitors=3,
    allowed_items=[
        "换洗衣物 Clean clothes (no metal parts)",
        "书籍 Books (checked at the gate)",
        "身份证、户口本 ID card and household register",
    ],
    forbidden_items=[
        "食品、饮料 Food and drink",
        "现金 Cash",
        "手机及电子设备 Phones and devices",
        "药品 Medicine (hand it to the prison clinic)",
    ],
    notes="请提前一天预约，携带身份证原件。Book a day ahead and bring your original ID card.",
)


@dataclass
class Demo:
    prisons: dict[str, Prison]
    users: dict[str, User]
    inmates: dict[str, Inmate]


async def _prison(store: Database, code: str, name: str, city: str) -> Prison:
    try:
        return await prisons.prison_by_code(store, code)
    except NotFound:
        return await prisons.add_prison(store, code, name, city)


async def _user(
    store: Database, login: str, name: str, role: Role, prisons: list[int], password_hash: str
) -> User:
    try:
        user, _ = await accounts.credentials(store, login)
    except NotFound:
        user = await accounts.add_user(store, role, login, name, password_hash, prisons)
    return user


async def _relative(
    store: Database, settings: Settings, phone: str, name: str, id_number: str, password_hash: str
) -> User:
    try:
        user, _ = await accounts.credentials(store, phone)
    except NotFound:
        user = await accounts.add_relative(
            store,
            phone,
            name,
            password_hash,
            identity.digest(settings.secret, id_number),
            identity.last4(id_number),
        )
    return user


async def _inmate(store: Database, prison: Prison, number: str, name: str) -> Inmate:
    found = await prisons.inmate_by_number(store, prison.id, number)
    return found or await prisons.add_inmate(store, prison.id, number, name)


async def _card(store: Database, inmate: Inmate, officer: User, now: datetime) -> None:
    _, card = await inmate_info.card(store, inmate.id)
    if card.money.movements:  # seeded already
        return
    today = now.date()
    patches = (
        InfoPatch(
            activity="每日 6:30 起床，上午劳动，下午学习，晚上 19:00 看新闻。"
            " Up at 6:30, work in the morning, classes in the afternoon, news at 19:00.",
            work="服装车间缝纫组 Garment workshop, sewing team",
            health=HealthIn("good", "体检正常 Annual check-up normal"),
            term=TermIn(
                original="有期徒刑八年 Eight years",
                start=date(2021, 3, 15),
                expected_release=date(2029, 3, 14),
            ),
            next_visit_date=today + timedelta(days=3),
        ),
        InfoPatch(movement=MovementIn("deposit", 50000, now - timedelta(days=20), "家属汇款")),
        InfoPatch(movement=MovementIn("spending", 18750, now - timedelta(days=6), "超市 shop")),
    )
    for patch in patches:
        await inmate_info.update_info(store, inmate.id, patch, officer.id, now)


async def _conversation(
    store: Database,
    demo: Demo,
    phone: str,
    number: str,
    officer: str,
    lines: list[tuple[str, str]],
    *,
    resolve: bool,
    rating: int | None = None,
) -> None:
    relative, staff = demo.users[phone], demo.users[officer]
    thread, _ = await desk.open_thread(store, relative.id, demo.inmates[number].id, utcnow())
    if thread.last_seq:  # seeded already
        return
    for n, (who, body) in enumerate(lines):
        sender = relative if who == "relative" else staff
        if who == "officer" and n == 1:
            await desk.claim(store, thread.id, staff.id, utcnow())
        await store.append_messages(
            [NewMessage(thread.id, sender.id, sender.role, f"demo-{n}", body, "text", sender.name)]
        )
    if resolve:
        await desk.resolve(store, thread.id, staff.id, utcnow())
        if rating is not None:
            await desk.rate(
                store, thread.id, relative.id, rating, "回复很及时 Quick answer", utcnow()
            )


# The composer promises canned replies after "/": the demo has a few per prison.
CANNED = (
    (
        "visit",
        "会见时间为每周二、周四、周六 9:00-11:30 和 14:00-16:30，每次最多 3 人，"
        "两次会见至少相隔 30 天，请在应用里预约并携带身份证。",
    ),
    ("money", "零用钱可通过监狱财务窗口或指定账户存入，到账后会在应用的信息页显示。"),
    ("health", "服刑人员身体状况稳定，如有变化狱医会及时处理，我们也会在这里告知您。"),
    ("thanks", "感谢您的耐心，如有其他问题请随时留言。"),
)


# Keyword review: the seeded categories with a few words each (the admin edits them on /admin).
KEYWORDS = (
    ("escape", "脱逃", ["越狱", "逃跑", "翻墙", "接应"]),
    ("contraband", "违禁品", ["手机", "毒品", "SIM卡"]),
    ("threats", "威胁", ["杀了你", "报复", "弄死"]),
    ("self-harm", "自伤", ["自杀", "不想活", "割腕"]),
)
# Gaoming assigns new questions round robin (at most 3 per officer); both prisons answer a
# question nobody on duty can take with their desk hours (issue 16).
DESK_HOURS = DeskHours("每天 8:30-17:30", "daily 8:30-17:30")


async def _desk_settings(store: Database, demo: Demo, admin: User, now: datetime) -> None:
    for code, mode in (("GM", "round_robin"), ("SH", "off")):
        prison_id = demo.prisons[code].id
        if (await desk_settings.settings(store, prison_id)).away_reply:
            continue  # seeded already (or set by hand: left alone)
        wanted = DeskSettings(
            prison_id=prison_id,
            auto_assign=mode,  # type: ignore[arg-type]
            assign_cap=3,
            away_reply=True,
            desk_hours=DESK_HOURS,
        )
        await desk_settings.update(store, wanted, admin.id, now)


async def seed(store: Database, settings: Settings) -> list[str]:
    """Seed idempotently; return the lines that tell the operator how to sign in."""
    now = utcnow()
    password_hash = await asyncio.to_thread(passwords.hash_password, DEMO_PASSWORD)
    demo = Demo({}, {}, {})
    for code, name, city in PRISONS:
        demo.prisons[code] = await _prison(store, code, name, city)
    for login, name, role, codes in STAFF:
        ids = [demo.prisons[c].id for c in codes]
        demo.users[login] = await _user(store, login, name, role, ids, password_hash)
    admin = demo.users["bureau.admin"]
    for login, name, title, code, photo, address, phone in SUPERVISORS:
        demo.users[login] = await _user(
            store, login, name, "supervisor", [demo.prisons[code].id], password_hash
        )
        profile = SupervisorProfile(title, f"/static/photos/supervisor-{photo}.svg", address, phone)
        async with store.read() as sql:
            stored = await sql.fetchval(
                "SELECT profile FROM users WHERE id = $1", demo.users[login].id
            )
        if profiles.profile_from(sql.unjson(stored)) != profile:
            await profiles.set_supervisor_profile(store, demo.users[login].id, profile)
    for prison in demo.prisons.values():
        if await visits.visit_rules(store, prison.id) != RULES:
            await visits.set_visit_rules(store, prison.id, RULES, admin.id, now)
    for code, prison in demo.prisons.items():
        if not await desk.canned_replies(store, [prison.id]):
            author = demo.users["officer.li" if code == "GM" else "officer.zhou"]
            for short_name, body in CANNED:
                await desk.add_canned(store, prison.id, short_name, body, author.id, now)
    if not any(k.words for k in (await keywords.lists(store)).lists):
        lists = [KeywordList(code, label, words) for code, label, words in KEYWORDS]
        await keywords.replace_lists(store, lists, admin.id, now)
    for code, number, name in INMATES:
        demo.inmates[number] = await _inmate(store, demo.prisons[code], number, name)
        officer = demo.users["officer.li" if code == "GM" else "officer.zhou"]
        await _card(store, demo.inmates[number], officer, now)
    code_of = {prison.id: code for code, prison in demo.prisons.items()}
    for phone, name, id_number, relationship, number in RELATIVES:
        relative = await _relative(store, settings, phone, name, id_number, password_hash)
        demo.users[phone] = relative
        inmate = demo.inmates[number]
        if inmate.id not in await links.verified_inmates(store, relative.id):
            officer = demo.users[
                "officer.li" if inmate.prison_id == demo.prisons["GM"].id else "officer.zhou"
            ]
            claim = LinkClaim(  # as the relative asks in the app, verified as an officer does
                relative_id=relative.id,
                prison_claim=code_of[inmate.prison_id],
                inmate_number=number,
                relationship=relationship,
                evidence="户口本 household register",
                prison_id=inmate.prison_id,
                inmate_id=inmate.id,
            )
            try:
                link = await links.claim_link(store, claim)
            except Conflict:
                continue  # a request made by hand: leave it to the officers
            await links.transition_link(store, link.id, "pending", "verified", officer.id, "demo")
    await _conversation(
        store,
        demo,
        "13800000001",
        "GM-0001",
        "officer.li",
        [
            ("relative", "您好，请问我儿子陈健这个月的零用钱还有多少？"),
            ("officer", "您好，陈健目前零用钱余额为 312.50 元，本月已在超市消费 187.50 元。"),
            ("relative", "好的，谢谢！下周二可以探视吗？"),
            ("officer", "可以，周二 9:00-11:30 或 14:00-16:30，请在应用里预约并带身份证。"),
        ],
        resolve=True,
        rating=5,
    )
    await _conversation(
        store,
        demo,
        "13800000002",
        "GM-0002",
        "officer.chen",
        [
            ("relative", "请问黄波最近身体怎么样？上次说他感冒了。"),
        ],
        resolve=False,
    )
    await _conversation(
        store,
        demo,
        "13800000003",
        "SH-0001",
        "officer.zhou",
        [
            ("relative", "林峰的减刑裁定下来了吗？"),
            ("officer", "您好，裁定尚未下达，有结果后我们会第一时间在这里告知您。"),
        ],
        resolve=True,
    )
    if not await announcements.announcements(store, limit=1):
        open_day = now.date() + timedelta(days=10)
        for prison_id, title, body in (
            (
                None,
                "监狱开放日 Prison open day",
                "全省各监狱将于开放日接待家属参观，欢迎预约。"
                " Families may visit on the open day: book ahead.",
            ),
            (
                demo.prisons["GM"].id,
                "探视新规 New visiting rules",
                "自下月起探视需提前一天预约。From next month visits must be booked a day ahead.",
            ),
        ):
            await announcements.post(
                store,
                announcements.NewAnnouncement(
                    author_id=admin.id,
                    title=title,
                    body=body,
                    prison_id=prison_id,
                    open_day=open_day if prison_id is None else None,
                ),
                now=now,
            )
    await _desk_settings(store, demo, admin, now)
    await seed_history(
        store,
        settings,
        demo.prisons,
        {
            "GM": [demo.users["officer.li"], demo.users["officer.chen"]],
            "SH": [demo.users["officer.zhou"]],
        },
        {"GM": demo.users["supervisor.wang"], "SH": demo.users["supervisor.huang"]},
        admin,
        password_hash,
        now,
    )
    return [
        f"demo password for every login: {DEMO_PASSWORD}",
        "  relatives (/app):          13800000001, 13800000002, 13800000003",
        "  officers (/console):       officer.li, officer.chen (Gaoming), officer.zhou (Sihui)",
        "  supervisors (/monitor):    supervisor.wang, supervisor.liu, supervisor.zhang (Gaoming),"
        " supervisor.huang, supervisor.xu, supervisor.deng (Sihui)",
        "  bureau admin:              bureau.admin",
    ]
