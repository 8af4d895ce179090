"""The real-time layer's Prometheus metrics, defined once.

With several workers, ``server.serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` before this module is
imported, and ``/metrics`` aggregates every worker's files (gauges sum the live processes).
In that mode prometheus_client asks ``os.getpid()`` on every increment and observation (a
fork resets the values), a system call each: 5 % of a worker's CPU at 500 msg/s in a py-spy
profile (issue 17). The pid is read once here instead, and again in a forked child.
"""

from __future__ import annotations

import os

from prometheus_client import Counter, Gauge, Histogram, values


class _Pid:
    """This process's pid, read at import and after every fork."""

    value = os.getpid()

    @classmethod
    def refresh(cls) -> None:
        cls.value = os.getpid()

    @classmethod
    def get(cls) -> int:
        return cls.value


os.register_at_fork(after_in_child=_Pid.refresh)
if values.ValueClass is not values.MutexValue:  # multiprocess mode
    values.ValueClass = values.MultiProcessValue(process_identifier=_Pid.get)  # type: ignore[no-untyped-call]

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0)

open_sockets = Gauge(
    "kinline_open_sockets", "WebSocket connections open", multiprocess_mode="livesum"
)
frames_in = Counter("kinline_frames_in_total", "Frames received from clients", ["type"])
frames_out = Counter("kinline_frames_out_total", "Frames written to sockets")
messages_acked = Counter("kinline_messages_acked_total", "Messages committed and acknowledged")
ack_latency = Histogram(
    "kinline_ack_latency_seconds", "Send frame received -> ack written", buckets=LATENCY_BUCKETS
)
delivery_latency = Histogram(
    "kinline_delivery_latency_seconds",
    "Event published -> written to a local socket (per topic fan-out)",
    buckets=LATENCY_BUCKETS,
)
broker_reconnects = Counter("kinline_broker_reconnects_total", "Broker connections re-established")
resyncs = Counter("kinline_resyncs_total", "Topic repairs from storage", ["reason"])
slow_consumer_closes = Counter(
    "kinline_slow_consumer_closes_total", "Sockets closed with 4008 for falling behind"
)
heartbeat_cuts = Counter(
    "kinline_heartbeat_cuts_total", "Sockets cut for not answering pings (server/heartbeat.py)"
)
rebalance_shed = Counter(
    "kinline_rebalance_shed_total",
    "Sockets closed with 1012 to move them to a less loaded process (server/rebalance.py)",
)
errors = Counter("kinline_errors_total", "Error frames sent, by code", ["code"])
commit_seconds = Histogram(
    "kinline_commit_seconds",
    "One group-commit batch: append statement and commit",
    buckets=LATENCY_BUCKETS,
)
commit_batch_size = Histogram(
    "kinline_commit_batch_size",
    "Messages per group-commit batch",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
