"""Large bodies are decoded, validated and routed in a worker thread, so the event loop
answers other requests meanwhile; small ones stay on the loop (no thread hop)."""

from __future__ import annotations

import threading

import orjson

import router.ingest
from tests.conftest import fresh_event
from tests.service import API_KEY, running_service

RULES = """
version: 1
sinks:
  audit: {type: log}
rules:
  - name: failed
    when: {status: FAILED}
    to: [audit]
"""


async def test_a_large_body_is_parsed_off_the_event_loop_and_a_small_one_on_it(
    tmp_path, write_rules, monkeypatch
):
    threads: list[threading.Thread] = []
    real_prepare = router.ingest.prepare

    def recording_prepare(*args, **kwargs):
        threads.append(threading.current_thread())
        return real_prepare(*args, **kwargs)

    monkeypatch.setattr(router.ingest, "prepare", recording_prepare)
    large = fresh_event(status="FAILED", transcript=[{"speaker": "agent", "text": "x" * 90}] * 5000)
    small = fresh_event(status="FAILED")
    headers = {"x-api-key": API_KEY, "Content-Type": "application/json"}
    async with running_service(write_rules(RULES), tmp_path / "r.db") as client:
        for event in (large, small):
            answer = await client.post(
                "/webhooks/revring", data=orjson.dumps(event), headers=headers
            )
            assert answer.status == 200
            assert (await answer.json())["deliveries"] == 1
        bad = orjson.dumps({**large, "transcript": [*large["transcript"], 7]})
        answer = await client.post("/webhooks/revring", data=bad, headers=headers)
        assert answer.status == 422
        assert (await answer.json())["problems"][0].startswith("transcript")
    loop_thread = threading.current_thread()
    assert len(orjson.dumps(large)) > router.ingest.IngestLimits.inline_parse_bytes
    assert threads[0] is not loop_thread
    assert threads[1] is loop_thread
    assert threads[2] is not loop_thread
