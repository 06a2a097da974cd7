"""Qwen Image limits (per-model concurrency and rate, per second and per minute)
and fault knobs."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from emulator_support import API_KEY, SPEEDUP, Api, InputSite, burst, error_body
from tryon_local.emulator import EmulatorConfig, ModelQuota, serve_in_thread
from tryon_local.emulator.server import EmulatorServer


@pytest.fixture(scope="module")
def limited() -> Iterator[EmulatorServer]:
    """The published limits (3.0: 20/min, 2.0-pro: 2/min...), except that a
    qwen-image-2.0 image takes one real second and the model is given 2 calls at
    once under a wide window, so a sync-only model's concurrency can be seen on its
    own; downloads time out after 0.3 s."""
    config = EmulatorConfig(
        api_keys=frozenset({API_KEY}), speedup=SPEEDUP, seed=3, download_timeout=0.3,
        model_gen_time={"qwen-image-2.0": (100.0, 100.0)},
        model_quotas={"qwen-image-2.0": ModelQuota(10, 1, concurrency=2)},
    )
    with serve_in_thread(config) as server:
        yield server


@pytest.fixture
def slow(limited: EmulatorServer, inputs: InputSite) -> Iterator[Api]:
    httpx.post(f"{limited.root_url}/_emulator/reset").raise_for_status()
    client = Api(limited, inputs)
    yield client
    client.close()


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/person.jpg"


def test_third_concurrent_sync_call_is_throttled(slow: Api) -> None:
    with ThreadPoolExecutor(max_workers=2) as pool:
        calls = [pool.submit(slow.generate) for _ in range(2)]
        # Both hold their slot for the second their image takes.
        slow.wait_until(lambda: slow.stats()["by_model"]["qwen-image-2.0"]["running"] == 2)
        body = error_body(slow.generate(), 429, "Throttling.RateQuota")
        assert "concurrent" in body["message"]
        assert [c.result().status_code for c in calls] == [200, 200]
    # The slots are free again.
    assert slow.generate().status_code == 200
    stats = slow.stats()
    model = stats["by_model"]["qwen-image-2.0"]
    assert (model["generations"], model["throttled"], model["peak_running"]) == (3, 1, 2)
    assert stats["throttled"]["generation"] == 1 and stats["generation_requests"] == 4


def test_eleventh_async_task_waits_pending(api: Api) -> None:
    api.fault(target="hold", count=11)
    tasks = [api.create_generation() for _ in range(11)]
    api.wait_until(lambda: [api.statuses()[t] for t in tasks] == ["RUNNING"] * 10 + ["PENDING"])
    stats = api.stats()
    assert stats["by_model"]["qwen-image-3.0"]["running"] == 10
    assert stats["tasks"]["PENDING"] == 1 and stats["running"] == 10
    api.hold(tasks[1], False)
    api.wait(tasks[1])
    api.wait(tasks[10], "RUNNING")  # took the freed slot


def test_a_per_minute_limit_and_its_per_second_share(slow: Api) -> None:
    # 2.0-pro: 2 calls a minute, at most 1 in any second. Admitted calls fail fast
    # on the unreachable input.
    unreachable = _closed_port_url()
    call = lambda: slow.generate(model="qwen-image-2.0-pro", images=(unreachable,))  # noqa: E731
    assert burst(call, 3) == [415, 429, 429]
    error_body(call(), 429, "Throttling.RateQuota")
    # Another model's window is its own.
    assert slow.generate(model="qwen-image-3.0", images=(unreachable,)).status_code == 415
    time.sleep(1.05)
    assert call().status_code == 415  # the minute's second
    time.sleep(1.05)
    assert call().status_code == 429  # the minute's third, though its second is free
    stats = slow.stats()
    assert stats["throttled"]["generation"] == 4
    assert stats["by_model"]["qwen-image-2.0-pro"]["throttled"] == 4
    assert stats["generations"] == 0


def test_second_async_submit_in_one_second_is_throttled(slow: Api) -> None:
    # 3.0's 20 a minute, spread: 1 in any second.
    slow.fault(target="hold", count=4)
    assert burst(slow.submit_generation, 3) == [200, 429, 429]
    throttled = error_body(slow.submit_generation(), 429, "Throttling.RateQuota")
    assert "rate" in throttled["message"]
    # Other windows are untouched: another Qwen model, and the try-on submits.
    assert slow.submit_generation(model="qwen-image-3.0-pro").status_code == 200
    assert slow.submit().status_code == 200
    time.sleep(1.05)
    assert slow.submit_generation().status_code == 200
    stats = slow.stats()
    assert stats["submits"] == 4 and stats["throttled"]["submit"] == 3
    assert stats["by_model"]["qwen-image-3.0"]["throttled"] == 3
    assert stats["by_model"]["qwen-image-3.0"]["submits"] == 2


def test_input_not_fetched_in_time_is_a_download_failure(slow: Api) -> None:
    images = ("person.jpg", slow.inputs("slow/top.jpg"))
    body = error_body(slow.generate(model="qwen-image-3.0", images=images), 415,
                      "BadRequest.InputDownloadFailed")
    assert "timed out" in body["message"] and "image 2" in body["message"]
    # 3.0-pro: 3.0's window (calls and submits together) is spent for this second.
    output = slow.wait(slow.create_generation(model="qwen-image-3.0-pro",
                                              images=images))["output"]
    assert (output["task_status"], output["code"]) == ("FAILED", "BadRequest.InputDownloadFailed")


# --- fault knobs ---------------------------------------------------------------------


def test_generation_fault_fails_the_next_sync_call(api: Api) -> None:
    api.fault(target="generation", status=429, code="Throttling.RateQuota", message="slow down")
    assert api.armed()["generation"] == [
        {"status": 429, "code": "Throttling.RateQuota", "message": "slow down", "remaining": 1}
    ]
    assert error_body(api.generate(), 429, "Throttling.RateQuota")["message"] == "slow down"
    assert api.generate().status_code == 200
    stats = api.stats()
    assert stats["injected"]["generation"] == 1 and stats["throttled"]["generation"] == 0
    assert stats["generations"] == 1 and stats["generation_requests"] == 2
    # The async endpoint is a submit: the generation fault does not touch it.
    api.fault(target="generation", status=500, code="InternalError")
    assert api.submit_generation().status_code == 200


def test_submit_fault_applies_to_the_async_qwen_endpoint(api: Api) -> None:
    api.fault(target="submit", status=503, code="ModelServingError")
    error_body(api.submit_generation(), 503, "ModelServingError")
    assert api.submit_generation().status_code == 200
    assert api.stats()["injected"]["submit"] == 1


def test_lost_call_makes_the_image_but_withholds_the_answer(api: Api) -> None:
    api.fault(target="lost_call", delay=3)
    assert api.armed()["lost_call"] == [{"delay": 3.0, "remaining": 1}]
    with pytest.raises(httpx.ReadTimeout):
        api.generate(timeout=httpx.Timeout(5.0, read=0.5))
    # Made (perhaps after the client gave up) and billed, though it never saw the URL.
    api.wait_until(lambda: api.stats()["generations"] == 1)
    stats = api.stats()
    assert stats["generations"] == 1 and stats["lost_calls"] == 1
    assert stats["by_model"]["qwen-image-2.0"]["images"] == 1 and stats["results"] == 1
    assert api.armed()["lost_call"] == []

    started = time.monotonic()
    assert api.generate().status_code == 200
    assert time.monotonic() - started < 2.5  # not withheld: the knob was used up
    assert api.stats()["lost_calls"] == 1


def test_lost_call_spares_rejected_calls_and_lost_submit_covers_qwen_tasks(api: Api) -> None:
    api.fault(target="lost_call", delay=30)
    assert api.generate(images=()).status_code == 400
    assert api.armed()["lost_call"] == [{"delay": 30.0, "remaining": 1}]
    api.knobs.post("/reset").raise_for_status()
    assert api.armed()["lost_call"] == []

    api.fault(target="lost_submit", delay=2)
    with pytest.raises(httpx.ReadTimeout):
        api.http.post(
            "/services/aigc/image-generation/generation", json=api.qwen_body("qwen-image-3.0"),
            headers={"X-DashScope-Async": "enable"}, timeout=httpx.Timeout(5.0, read=0.5),
        )
    listed = api.http.get("/tasks", params={"model_name": "qwen-image-3.0"}).json()
    assert listed["total"] == 1
    assert api.wait(listed["data"][0]["task_id"])["output"]["task_status"] == "SUCCEEDED"


def test_fault_knobs_check_the_new_targets(api: Api) -> None:
    assert api.knobs.post("/faults", json={"target": "generation"}).status_code == 400
    for delay in (0, -1, "5", True):
        bad = {"target": "lost_call", "delay": delay}
        assert api.knobs.post("/faults", json=bad).status_code == 400
    unknown = api.knobs.post("/faults", json={"target": "everything"})
    assert unknown.status_code == 400
    assert "generation" in unknown.json()["error"] and "lost_call" in unknown.json()["error"]
