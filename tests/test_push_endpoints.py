"""Which Web Push endpoints a device may subscribe: https on a public host, or one under a
prefix of ``KINLINE_PUSH_ENDPOINTS`` (tests, a private push service) and nothing that merely
starts with the same characters."""

from __future__ import annotations

import pytest

from server.config import Settings
from server.push import endpoint_allowed

CASES = {
    # (allowed prefixes, endpoint): allowed?
    ((), "https://push.example.com/send/abc"): True,
    ((), "http://push.example.com/send/abc"): False,  # not https
    ((), "https://127.0.0.1/send"): False,  # not a public host
    ((), "https://localhost/send"): False,
    ((), "https://user:pw@push.example.com/x"): False,
    (("http://127.0.0.1:9001/push/",), "http://127.0.0.1:9001/push/1"): True,
    (("http://127.0.0.1:9001/push/",), "http://127.0.0.1:9001/other"): False,
    (("http://127.0.0.1:9001",), "http://127.0.0.1:9001/push/1"): True,
    (("http://127.0.0.1:9001",), "http://127.0.0.1:90011/push/1"): False,  # another port
    (("http://push.test",), "http://push.test.evil.example/x"): False,  # another host
    (("https://push.test",), "https://push.test"): True,
    (("http://127.0.0.1:",), "http://127.0.0.1:4321/push"): True,  # any port on that host
}


@pytest.mark.parametrize(("prefixes", "endpoint"), list(CASES))
def test_an_endpoint_is_allowed_only_under_a_prefix_or_public_https(
    prefixes: tuple[str, ...], endpoint: str
) -> None:
    settings = Settings(push_endpoints=prefixes)
    assert endpoint_allowed(settings, endpoint) is CASES[(prefixes, endpoint)]
