"""Rate limits, fault knobs and counters."""

from __future__ import annotations

import httpx
from emulator_support import Api, burst


def test_eleventh_submit_in_one_second_is_throttled(api: Api) -> None:
    api.fault(target="hold", count=11)  # keep the accepted tasks cheap
    assert burst(api.submit, 11) == [200] * 10 + [429]
    throttled = api.submit()
    assert throttled.status_code == 429
    assert throttled.json()["code"] == "Throttling.RateQuota"
    stats = api.stats()
    assert stats["submits"] == 10
    assert stats["submit_requests"] == 12
    assert stats["throttled"]["submit"] == 2


def test_unauthenticated_submits_do_not_use_the_rate_window(api: Api) -> None:
    anonymous = httpx.Client(base_url=api.server.base_url)
    for _ in range(12):
        response = anonymous.post(
            "/services/aigc/image2image/image-synthesis", json=api.body(),
            headers={"X-DashScope-Async": "enable"},
        )
        assert response.status_code == 401
    anonymous.close()
    assert api.submit().status_code == 200


def test_twenty_first_query_in_one_second_is_throttled(api: Api) -> None:
    task_id = api.create()
    assert burst(lambda: api.http.get(f"/tasks/{task_id}"), 21) == [200] * 20 + [429]
    assert api.stats()["throttled"]["query"] == 1


def test_submit_fault_fails_the_next_call_only(api: Api) -> None:
    api.fault(target="submit", status=429, code="Throttling.RateQuota", message="slow down")
    first = api.submit()
    assert first.status_code == 429
    assert first.json()["code"] == "Throttling.RateQuota"
    assert first.json()["message"] == "slow down"
    assert api.submit().status_code == 200
    stats = api.stats()
    assert stats["submits"] == 1 and stats["submit_requests"] == 2
    assert stats["injected"]["submit"] == 1 and stats["throttled"]["submit"] == 0


def test_query_fault_fails_the_next_queries(api: Api) -> None:
    task_id = api.create()
    api.fault(target="query", status=503, code="ModelServingError", count=2)
    for _ in range(2):
        response = api.http.get(f"/tasks/{task_id}")
        assert response.status_code == 503
        assert response.json()["code"] == "ModelServingError"
    assert api.http.get(f"/tasks/{task_id}").status_code == 200


def test_task_fault_ends_the_next_task_failed_with_its_code(api: Api) -> None:
    api.fault(target="task", code="InvalidPerson", message="no person found", count=1)
    doomed = api.create()
    fine = api.create()
    output = api.wait(doomed)["output"]
    assert output["task_status"] == "FAILED"
    assert output["code"] == "InvalidPerson" and output["message"] == "no person found"
    assert "end_time" in output and "image_url" not in output
    assert api.wait(fine)["output"]["task_status"] == "SUCCEEDED"


def test_fail_knob_ends_a_running_task_at_once(api: Api) -> None:
    api.fault(target="hold", count=1)
    task_id = api.create()
    api.wait(task_id, "RUNNING")
    response = api.knobs.post(
        f"/tasks/{task_id}/fail", json={"code": "InternalError.Algo", "message": "boom"}
    )
    assert response.status_code == 200
    output = api.query(task_id)["output"]
    assert output["task_status"] == "FAILED"
    assert (output["code"], output["message"]) == ("InternalError.Algo", "boom")


def test_fail_knob_on_a_pending_task_lands_when_it_would_end(api: Api) -> None:
    api.fault(target="hold", count=5)
    blockers = [api.create() for _ in range(5)]
    queued = api.create()
    api.knobs.post(f"/tasks/{queued}/fail", json={"code": "InvalidPerson"}).raise_for_status()
    assert api.query(queued)["output"]["task_status"] == "PENDING"
    api.hold(blockers[0], False)
    output = api.wait(queued)["output"]
    assert output["task_status"] == "FAILED" and output["code"] == "InvalidPerson"


def test_knobs_reject_bad_bodies(api: Api) -> None:
    assert api.knobs.post("/faults", json={"target": "everything"}).status_code == 400
    assert api.knobs.post("/faults", json={"target": "submit"}).status_code == 400
    assert api.knobs.post("/faults", json={"target": "hold", "count": 0}).status_code == 400
    assert api.knobs.post("/tasks/nope/fail", json={}).status_code == 404
    assert api.knobs.post("/clock", json={"advance_seconds": -1}).status_code == 400


def test_stats_count_calls_and_tasks(api: Api) -> None:
    httpx.post(
        api.server.base_url + "/services/aigc/image2image/image-synthesis", json=api.body()
    )  # no key: counted as a request, not accepted
    api.fault(target="hold", count=1)
    held = api.create()
    done = api.create()
    api.wait(done)
    api.wait(held, "RUNNING")
    stats = api.stats()
    assert stats["submit_requests"] == 3
    assert stats["submits"] == 2
    assert stats["queries"] >= 2
    assert stats["running"] == 1
    assert stats["tasks"]["SUCCEEDED"] == 1 and stats["tasks"]["RUNNING"] == 1
    assert stats["cancels"] == 0

    api.knobs.post("/reset").raise_for_status()
    stats = api.stats()
    assert stats["submits"] == 0 and stats["running"] == 0
    assert sum(stats["tasks"].values()) == 0
    assert api.query(held)["output"]["task_status"] == "UNKNOWN"
