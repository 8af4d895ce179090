"""The peer: the server a Python team would write instead of Kinline, as a second target of
``kinline bench chat|broadcast|idle --server socketio``.

python-socketio 5 on aiohttp with ``AsyncRedisManager`` (Redis pub/sub between processes),
asyncpg, uvloop, two processes sharing the port (SO_REUSEPORT), the WebSocket transport only.
A message is persisted the plain way: the conversation's ``seq`` under a row lock, an insert,
a commit, then the emit to the conversation's room (bench/README.md lists the statements).

- :mod:`bench.peer.schema`: its two tables, created in the bench's throwaway database and
  seeded with the ids of Kinline's conversations;
- :mod:`bench.peer.server`: the server (``python -m bench.peer.server``);
- :mod:`bench.peer.processes`: starts and stops its processes for :class:`bench.harness.Bench`;
- :mod:`bench.peer.client`: Engine.IO v4 / Socket.IO v5 over the bench's raw WebSocket client.
"""
