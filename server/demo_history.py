"""A few weeks of plausible history for the demo (issue 16), so that a newcomer's first look at
the monitor shows what the figures are for: questions on most days, most answered within the
target and some late, ratings, complaints (some answered) and approved comments.

Deterministic: one ``random.Random(SEED)`` draws every choice in a fixed order, so two seeds
of an empty database make the same history (its instants move with the day it is seeded on,
the shape does not). Idempotent: the history's relatives are its marker; when the first one
exists, nothing is written again.

The history is written with chosen past instants. Messages are inserted through the
database's own rule (migration 0007's life-cycle trigger opens and answers the cycles, and
claims a thread by an officer's answer, whoever inserts the row; migration 0014's triggers
chain them), and what the desk's functions would do at an instant (resolve, rate) is done
with the same statements and audit entries at that instant; complaints, links and comments go
through their storage functions, given the instant as ``now``.
"""

from __future__ import annotations

import random
from datetime import datetime, time, timedelta, tzinfo

from domain.records import LinkClaim, Prison, User
from server import identity
from server.config import Settings
from storage import accounts, audit_trail, comments, complaints, conversations, links, prisons
from storage.complaints import NewComplaint
from storage.errors import NotFound
from storage.sql import Database, utcnow

SEED = 20261207
DAYS = 21

# per prison: (phone, name, relationship, inmate number, inmate name)
FAMILIES: dict[str, tuple[tuple[str, str, str, str, str], ...]] = {
    "GM": (
        ("13900000101", "张秀英 Zhang Xiuying", "mother", "GM-0101", "张伟 Zhang Wei"),
        ("13900000102", "王丽 Wang Li", "wife", "GM-0102", "刘洋 Liu Yang"),
        ("13900000103", "李娜 Li Na", "sister", "GM-0103", "李强 Li Qiang"),
        ("13900000104", "赵明 Zhao Ming", "father", "GM-0104", "赵磊 Zhao Lei"),
        ("13900000105", "孙芳 Sun Fang", "wife", "GM-0105", "周杰 Zhou Jie"),
    ),
    "SH": (
        ("13900000201", "吴静 Wu Jing", "mother", "SH-0101", "吴斌 Wu Bin"),
        ("13900000202", "郑红 Zheng Hong", "wife", "SH-0102", "马超 Ma Chao"),
        ("13900000203", "冯亮 Feng Liang", "brother", "SH-0103", "冯刚 Feng Gang"),
    ),
}
QUESTIONS = (
    "请问他这个月的零用钱还剩多少？",
    "下周二可以探视吗？需要带什么？",
    "他最近身体怎么样？",
    "减刑的事情有消息了吗？",
    "寄去的衣服收到了吗？",
    "他在车间的工作累不累？",
    "这个月可以打亲情电话吗？",
    "他的药按时吃了吗？",
)
ANSWERS = (
    "您好，已为您查询，请看信息页的最新记录。",
    "可以的，请在应用里预约，带好身份证。",
    "他身体状况良好，请放心。",
    "目前还没有结果，有消息会第一时间告知您。",
    "已经收到并转交给他了。",
)
FOLLOW_UPS = ("好的，谢谢！", "明白了，辛苦了。", "那我下周再问。")
RATING_WEIGHTS = ((5, 50), (4, 25), (3, 12), (2, 8), (1, 5))
COMPLAINTS = (
    ("visits", "探视预约一直显示已满，希望增加时段。"),
    ("conduct of staff", "上次电话咨询时工作人员态度不好。"),
    ("money", "汇款两周了还没有到账。"),
)
COMMENTS = ("谢谢通知，已经知道了。", "开放日可以带孩子吗？", "辛苦了！")


def _delay(rng: random.Random) -> int:
    """Seconds to the first answer: mostly within the 5-minute target, some late."""
    roll = rng.random()
    if roll < 0.7:
        return rng.randint(25, 280)
    if roll < 0.9:
        return rng.randint(320, 1500)
    return rng.randint(1800, 5400)


def _stars(rng: random.Random) -> int:
    total = sum(w for _, w in RATING_WEIGHTS)
    roll = rng.uniform(0, total)
    for stars, weight in RATING_WEIGHTS:
        roll -= weight
        if roll <= 0:
            return stars
    return 5


class _Writer:
    """Writes one conversation's life at chosen instants."""

    def __init__(self, store: Database) -> None:
        self.store = store
        self.n = 0

    async def say(self, conv: int, who: User, body: str, at: datetime) -> None:
        self.n += 1
        async with self.store.write() as sql:
            seq = (
                int(await sql.fetchval("SELECT last_seq FROM conversations WHERE id = $1", conv))
                + 1
            )
            # chained as stored (migration 0014): PostgreSQL's trigger hashes the row itself;
            # on SQLite the adaptor hashes what it appends, with the function it registers
            columns = (
                "INSERT INTO messages (conversation_id, seq, sender_id, sender_role, cid, kind,"
                " body, created_at, hash) "
            )
            values = (
                "SELECT $1, $2, $3, $4, $5, 'text', $6, $7,"
                " kinline_message_hash(chain_head, $7, $6, $1, 'text', $3, $2)"
                " FROM conversations WHERE id = $1"
                if self.store.dialect == "sqlite"
                else "VALUES ($1, $2, $3, $4, $5, 'text', $6, $7, NULL)"
            )
            await sql.execute(
                columns + values,
                conv,
                seq,
                who.id,
                who.role,
                f"history-{self.n}",
                body,
                at,
            )

    async def resolve(self, conv: int, prison_id: int, officer: User, at: datetime) -> int:
        async with self.store.write() as sql:
            cycle = int(await sql.fetchval("SELECT cycle FROM conversations WHERE id = $1", conv))
            await sql.execute(
                "UPDATE conversations SET state = 'resolved', updated_at = $2 WHERE id = $1",
                conv,
                at,
            )
            await sql.execute(
                "UPDATE conversation_cycles SET resolved_at = $3, resolved_by = $4"
                " WHERE conversation_id = $1 AND cycle = $2",
                conv,
                cycle,
                at,
                officer.id,
            )
            state = {"state": "active", "officer_id": officer.id, "cycle": cycle}
            await audit_trail.record(
                sql,
                at=at,
                actor_id=officer.id,
                action="conversation.resolved",
                object_type="conversation",
                object_id=conv,
                prison_id=prison_id,
                before=state,
                after={**state, "state": "resolved"},
            )
        return cycle

    async def rate(
        self, conv: int, prison_id: int, cycle: int, relative: User, stars: int, at: datetime
    ) -> None:
        comment = "回复很及时" if stars >= 4 else "希望回复快一点"
        async with self.store.write() as sql:
            await sql.execute(
                "UPDATE conversation_cycles SET rating = $3, rating_comment = $4"
                " WHERE conversation_id = $1 AND cycle = $2",
                conv,
                cycle,
                stars,
                comment,
            )
            await audit_trail.record(
                sql,
                at=at,
                actor_id=relative.id,
                action="conversation.rated",
                object_type="conversation",
                object_id=conv,
                prison_id=prison_id,
                before={"cycle": cycle, "rating": None},
                after={"cycle": cycle, "rating": stars, "comment": comment},
            )


async def _family(
    store: Database,
    settings: Settings,
    prison: Prison,
    officer: User,
    family: tuple[str, str, str, str, str],
    password_hash: str,
    n: int,
) -> tuple[User, int]:
    phone, name, relationship, number, inmate_name = family
    relative = await accounts.add_relative(
        store,
        phone,
        name,
        password_hash,
        identity.digest(settings.secret, f"demo-history-{phone}"),
        f"{n:04d}"[-4:],
    )
    inmate = await prisons.add_inmate(store, prison.id, number, inmate_name)
    link = await links.claim_link(
        store,
        LinkClaim(
            relative_id=relative.id,
            prison_claim=prison.code,
            inmate_number=number,
            relationship=relationship,
            evidence="户口本 household register",
            prison_id=prison.id,
            inmate_id=inmate.id,
        ),
    )
    await links.transition_link(store, link.id, "pending", "verified", officer.id, "demo")
    conv = await conversations.open_conversation(store, relative.id, inmate.id)
    return relative, conv.id


async def seed_history(
    store: Database,
    settings: Settings,
    prisons_by_code: dict[str, Prison],
    officers_by_code: dict[str, list[User]],
    supervisors_by_code: dict[str, User],
    admin: User,
    password_hash: str,
    now: datetime,
) -> bool:
    """Write the history once; whether it was written now (``False``: it was there)."""
    try:
        await accounts.credentials(store, FAMILIES["GM"][0][0])
        return False
    except NotFound:
        pass
    rng = random.Random(SEED)
    zone: tzinfo = settings.zone
    writer = _Writer(store)
    today = now.astimezone(zone).date()
    start = datetime.combine(today - timedelta(days=DAYS), time(), zone)
    n = 0
    for code, families in FAMILIES.items():
        prison, officers = prisons_by_code[code], officers_by_code[code]
        for family in families:
            n += 1
            relative, conv = await _family(
                store, settings, prison, officers[0], family, password_hash, n
            )
            # a question every one to four days, in desk hours mostly
            day = rng.randint(0, 2)
            while day < DAYS:
                hour = rng.choice((8, 9, 10, 11, 14, 15, 16, 17, 19, 21))
                asked = start + timedelta(days=day, hours=hour, minutes=rng.randint(0, 59))
                officer = rng.choice(officers)
                answered = asked + timedelta(seconds=_delay(rng))
                await writer.say(conv, relative, rng.choice(QUESTIONS), asked)
                await writer.say(conv, officer, rng.choice(ANSWERS), answered)
                done = answered + timedelta(minutes=rng.randint(1, 20))
                if rng.random() < 0.5:
                    await writer.say(conv, relative, rng.choice(FOLLOW_UPS), done)
                    done += timedelta(minutes=rng.randint(1, 10))
                cycle = await writer.resolve(conv, prison.id, officer, done)
                if rng.random() < 0.65:
                    rated = done + timedelta(minutes=rng.randint(1, 90))
                    await writer.rate(conv, prison.id, cycle, relative, _stars(rng), rated)
                day += rng.randint(1, 4)
            if rng.random() < 0.4:  # a complaint now and then, some answered
                category, body = rng.choice(COMPLAINTS)
                filed_at = start + timedelta(days=rng.randint(2, DAYS - 3), hours=10)
                filed = await complaints.file_complaint(
                    store,
                    NewComplaint(
                        prison_id=prison.id,
                        complainant_id=relative.id,
                        category=category,
                        body=body,
                        conversation_id=conv,
                    ),
                    now=filed_at,
                    zone=zone,
                    days=settings.complaint_days,
                )
                if rng.random() < 0.6:
                    await complaints.transition(
                        store,
                        filed.id,
                        "answered",
                        actor_id=supervisors_by_code[code].id,
                        message="已核实并答复，如有疑问请再联系我们。",
                        now=filed_at + timedelta(days=rng.randint(1, 3)),
                    )
    from storage import announcements

    for news in await announcements.announcements(store, limit=10):
        for k, body in enumerate(COMMENTS):
            code = rng.choice(tuple(FAMILIES))
            phone = rng.choice(FAMILIES[code])[0]
            if news.prison_id is not None and news.prison_id != prisons_by_code[code].id:
                continue
            author, _ = await accounts.credentials(store, phone)
            made = await comments.post(store, news.id, author.id, body, utcnow())
            if k < len(COMMENTS) - 1:  # the last one waits for a moderator
                await comments.decide(store, made.id, "approved", admin.id, utcnow())
    return True
