"""``/metrics`` with several workers: each process counts into its own file, named by its pid,
and the scrape sums them. channels/metrics.py reads the pid once (and again after a fork)
instead of prometheus_client's system call per increment; a forked process must still count
apart from its parent, or the figures of one worker would overwrite another's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.spawns

CHILD = """
import os, sys
from channels import metrics
metrics.messages_acked.inc(3)
metrics.ack_latency.observe(0.004)
child = os.fork()
if child == 0:
    metrics.messages_acked.inc(4)
    metrics.ack_latency.observe(0.3)
    os._exit(0)
os.waitpid(child, 0)
metrics.messages_acked.inc(1)
print(os.getpid(), child)
"""

READ = """
from prometheus_client import CollectorRegistry, generate_latest, multiprocess
registry = CollectorRegistry()
multiprocess.MultiProcessCollector(registry)
print(generate_latest(registry).decode())
"""


def test_forked_workers_count_apart_and_the_scrape_sums_them(tmp_path: Path) -> None:
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": str(Path.cwd())}
    run = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True
    )
    parent, child = run.stdout.split()
    files = {p.name for p in tmp_path.iterdir()}
    assert f"counter_{parent}.db" in files and f"counter_{child}.db" in files
    scraped = subprocess.run(
        [sys.executable, "-c", READ], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert "kinline_messages_acked_total 8.0" in scraped
    assert "kinline_ack_latency_seconds_count 2.0" in scraped
    assert 'kinline_ack_latency_seconds_bucket{le="0.005"} 1.0' in scraped
