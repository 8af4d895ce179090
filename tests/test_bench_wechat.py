"""The WeChat benchmark's own bookkeeping (the benchmark itself is run by hand: bench/README):
its fake platform answers as the platform does and tells a refused call from an accepted one,
and a duplicate or a lost answer makes ``sent_exactly_once`` false."""

from __future__ import annotations

import aiohttp

from bench import wechat as bench_wechat

SEP = bench_wechat.SEP


async def test_the_fake_platform_refuses_while_failing_and_counts_each_answer() -> None:
    fake = bench_wechat.FakePlatform()
    runner, base = await bench_wechat.serve_platform(fake)
    try:
        async with aiohttp.ClientSession() as http:

            async def custom(token: str, tag: str) -> int:
                payload = {"touser": "o", "msgtype": "text", "text": {}}
                payload["text"] = {"content": f"Officer 1{SEP}{tag} body"}
                async with http.post(
                    base + bench_wechat.CUSTOM, params={"access_token": token}, json=payload
                ) as response:
                    return int((await response.json())["errcode"])

            assert await custom("not-issued", "a") == 40001
            async with http.get(base + "/cgi-bin/token") as response:
                token = (await response.json())["access_token"]
            fake.failing = True
            assert await custom(token, "a") == -1
            fake.failing = False
            assert await custom(token, "a") == 0
            assert await custom(token, "b") == 0
            assert await custom(token, "b") == 0  # a duplicate
    finally:
        await runner.cleanup()
    assert fake.token_calls == 1
    assert fake.refused == {"a": 1} and {k: len(v) for k, v in fake.accepted.items()} == {
        "a": 1,
        "b": 2,
    }

    phase = bench_wechat.Phase("p", sent={"a": 0.0, "b": 0.0}, message_ids=[1, 2])
    told = bench_wechat.delivery(phase, fake)
    assert (told["delivered_more_than_once"], told["sent_exactly_once"]) == (1, False)
    assert told["calls_refused_by_platform"] == 1
    fake.accepted["b"].pop()
    assert bench_wechat.delivery(phase, fake)["sent_exactly_once"] is True
    lost = bench_wechat.Phase("q", sent={"a": 0.0, "c": 0.0}, message_ids=[1, 3])
    assert bench_wechat.delivery(lost, fake)["never_delivered"] == 1
    assert bench_wechat.delivery(lost, fake)["sent_exactly_once"] is False
