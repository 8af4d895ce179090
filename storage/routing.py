"""Auto-assignment: the oldest question nobody holds, given round robin to an on-duty officer
below the prison's cap, in one transaction.

Several processes assign at once (each one hears of the questions it stored, and each one
sweeps), and none may give a thread twice or past the cap. So one assignment is one write
transaction that, in this order (the order ``claim`` and ``change_duty`` take the same rows
in, so none of them deadlocks with another):

1. locks the prison's ``desk_settings`` row (two assigners in one prison take turns; round
   robin's position is read after the lock, so it never hands two threads to one officer
   because both read the same position);
2. locks the candidates' ``users`` rows (id order) and keeps those still said on duty in the
   prison, officers of it and not disabled: an officer going off duty meanwhile has either
   committed (it is left out) or waits for this to commit (and then releases what it got);
3. counts what each holds (``active``) and keeps those below the cap;
4. gives the oldest waiting thread nobody holds to the next of them after the last one
   given, with a *conditional* ``UPDATE ... WHERE state = 'waiting' AND assigned_officer_id
   IS NULL``: a claim by a person that came first makes it change nothing, and the next
   thread is tried;
5. audits ``conversation.claimed`` (``via: auto``, actor: none, the system did it).

The candidates (officers on duty *and connected*) come from the caller's roster, outside the
database; the stored duty flag is checked again here under the lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from storage import audit_trail
from storage.desk import Thread, _read_thread
from storage.sql import Database, for_update, ids_in

MAX_TRIES = 20  # threads tried in one transaction when people claim them first


def next_in_turn(eligible: Sequence[int], last: int | None) -> int:
    """Round robin: the first officer (by id) after ``last``, else the first of all."""
    ordered = sorted(eligible)
    if last is not None:
        for officer in ordered:
            if officer > last:
                return officer
    return ordered[0]


async def assign_next(
    db: Database, prison_id: int, candidates: Sequence[int], now: datetime
) -> Thread | None:
    """One waiting thread of the prison given to an officer, or ``None`` when there is
    nothing to do: assignment off, no question waiting unheld, or every candidate at the cap."""
    if not candidates:
        return None
    lock = for_update(db)
    async with db.write() as sql:
        setting = await sql.fetchrow(
            "SELECT auto_assign, assign_cap, last_assigned_id FROM desk_settings"
            " WHERE prison_id = $1" + lock,
            prison_id,
        )
        if setting is None or setting["auto_assign"] != "round_robin":
            return None
        people = sorted(set(candidates))
        await sql.execute(f"SELECT id FROM users WHERE id IN {ids_in(people)} ORDER BY id" + lock)
        rows = await sql.fetch(
            "SELECT u.id FROM users u JOIN user_prisons p ON p.user_id = u.id"
            " JOIN duty d ON d.user_id = u.id AND d.prison_id = p.prison_id"
            f" WHERE u.id IN {ids_in(people)} AND p.prison_id = $1 AND u.role = 'officer'"
            " AND u.disabled = $2 AND d.on_duty = $3",
            prison_id,
            False,
            True,
        )
        on_duty = [int(r["id"]) for r in rows]
        if not on_duty:
            return None
        loads = {
            int(r["assigned_officer_id"]): int(r["n"])
            for r in await sql.fetch(
                "SELECT assigned_officer_id, count(*) AS n FROM conversations"
                f" WHERE prison_id = $1 AND state = 'active' AND assigned_officer_id IN"
                f" {ids_in(on_duty)} GROUP BY assigned_officer_id",
                prison_id,
            )
        }
        cap = int(setting["assign_cap"])
        eligible = [o for o in on_duty if loads.get(o, 0) < cap]
        if not eligible:
            return None
        officer = next_in_turn(eligible, setting["last_assigned_id"])
        waiting = await sql.fetch(
            "SELECT id, cycle FROM conversations WHERE prison_id = $1 AND state = 'waiting'"
            " AND assigned_officer_id IS NULL ORDER BY wait_started_at, id LIMIT $2",
            prison_id,
            MAX_TRIES,
        )
        for row in waiting:
            given = await sql.execute(
                "UPDATE conversations SET state = 'active', assigned_officer_id = $2,"
                " updated_at = $3 WHERE id = $1 AND state = 'waiting'"
                " AND assigned_officer_id IS NULL",
                row["id"],
                officer,
                now,
            )
            if not given:
                continue  # claimed by a person meanwhile
            await sql.execute(
                "UPDATE desk_settings SET last_assigned_id = $2 WHERE prison_id = $1",
                prison_id,
                officer,
            )
            await audit_trail.record(
                sql,
                at=now,
                actor_id=None,
                action="conversation.claimed",
                object_type="conversation",
                object_id=row["id"],
                prison_id=prison_id,
                before={"state": "waiting", "officer_id": None, "cycle": row["cycle"]},
                after={
                    "state": "active",
                    "officer_id": officer,
                    "cycle": row["cycle"],
                    "via": "auto",
                },
            )
            return await _read_thread(sql, row["id"])
        return None
