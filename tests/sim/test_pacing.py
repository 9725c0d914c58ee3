"""Speed profiles: the pacer's schedule (with a virtual clock) and paced streams' order."""

from __future__ import annotations

import pytest
from openai import OpenAI

from orchestrator.sim import ModelProfile, SimConfig, SimServer
from orchestrator.sim.pacing import Pacer


class VirtualClock:
    """Time advances only when the pacer sleeps (a consumer that costs nothing)."""

    def __init__(self) -> None:
        self.now_s = 100.0
        self.sleeps_s: list[float] = []

    def __call__(self) -> float:
        return self.now_s

    async def sleep(self, seconds: float) -> None:
        self.sleeps_s.append(seconds)
        self.now_s += seconds


async def run_pacer(profile: ModelProfile, n_tokens: int, seed: int = 0) -> VirtualClock:
    clock = VirtualClock()
    pacer = Pacer(profile, seed, clock=clock, sleep=clock.sleep)
    await pacer.first_token()
    for _ in range(n_tokens - 1):
        await pacer.next_token()
    return clock


async def test_fast_profile_batches_sleeps_instead_of_one_per_token() -> None:
    clock = await run_pacer(ModelProfile(name="f", ttft_ms=60, tokens_per_s=1000), 101)
    ttft_s, *gaps_s = clock.sleeps_s
    assert ttft_s == pytest.approx(0.060)
    assert len(gaps_s) == 25  # 100 gaps of 1 ms, slept in 4 ms steps
    assert sum(gaps_s) == pytest.approx(0.100)


async def test_slow_profile_sleeps_each_gap() -> None:
    clock = await run_pacer(ModelProfile(name="d", ttft_ms=600, tokens_per_s=70), 8)
    assert clock.sleeps_s[1:] == pytest.approx([1 / 70] * 7)


async def test_unpaced_profile_never_waits_but_yields_to_the_loop() -> None:
    clock = await run_pacer(ModelProfile(name="b"), 641)
    assert clock.sleeps_s == [0] * 20  # one zero-length yield per 32 tokens


async def test_jitter_is_seeded() -> None:
    profile = ModelProfile(name="j", ttft_ms=50, tokens_per_s=100, jitter=0.5)
    first = (await run_pacer(profile, 20, seed=7)).sleeps_s
    again = (await run_pacer(profile, 20, seed=7)).sleeps_s
    other = (await run_pacer(profile, 20, seed=8)).sleeps_s
    assert first == again != other
    assert all(0.5 / 100 <= gap <= 1.5 / 100 for gap in first[1:])


def test_paced_stream_keeps_order_and_counts() -> None:
    profile = ModelProfile(name="paced", ttft_ms=20, tokens_per_s=2000, jitter=0.2)
    with SimServer(SimConfig(models=[profile])).run_in_thread() as sim:
        client = OpenAI(base_url=sim.base_url, api_key="x", max_retries=0)
        events = list(client.responses.create(
            model="paced", input="go", max_output_tokens=40, stream=True))
        client.close()
    deltas = [e for e in events if e.type == "response.output_text.delta"]
    assert len(deltas) == 40
    assert "".join(d.delta for d in deltas) == events[-1].response.output_text
    assert [e.sequence_number for e in events] == list(range(len(events)))


def test_profile_parse() -> None:
    profile = ModelProfile.parse("spark:60:1000")
    assert (profile.name, profile.ttft_ms, profile.tokens_per_s) == ("spark", 60, 1000)
    assert ModelProfile.parse("x:0:0:0.25").jitter == 0.25
