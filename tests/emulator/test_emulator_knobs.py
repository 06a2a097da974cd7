"""Rate limits, fault knobs and counters."""

from __future__ import annotations

import time

import httpx
import pytest
from emulator_support import DAY, SPEEDUP, Api, burst


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
    for delay in (0, -1, "5", True):
        lost = {"target": "lost_submit", "delay": delay}
        assert api.knobs.post("/faults", json=lost).status_code == 400


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


def test_lost_submit_creates_the_task_but_withholds_its_id(api: Api) -> None:
    api.fault(target="lost_submit", delay=2)
    assert api.armed()["lost_submit"] == [{"delay": 2.0, "remaining": 1}]
    with pytest.raises(httpx.ReadTimeout):
        api.submit(timeout=httpx.Timeout(5.0, read=0.5))

    # The provider created (and will bill) the task the client never heard of.
    listed = api.http.get("/tasks", params={"model_name": "aitryon-plus"}).json()
    assert listed["total"] == 1
    lost_id = listed["data"][0]["task_id"]
    assert api.wait(lost_id)["output"]["task_status"] == "SUCCEEDED"
    stats = api.stats()
    assert stats["submits"] == 1 and stats["lost_answers"] == 1
    assert api.armed()["lost_submit"] == []

    started = time.monotonic()
    assert api.submit(timeout=httpx.Timeout(5.0, read=0.5)).status_code == 200
    assert time.monotonic() - started < 0.5
    stats = api.stats()
    assert stats["submits"] == 2 and stats["lost_answers"] == 1


def test_lost_submit_spares_rejected_submits_and_reset_clears_it(api: Api) -> None:
    api.fault(target="lost_submit", count=2, delay=30)
    assert api.submit(body={"model": "nope"}, timeout=0.5).status_code == 400
    assert api.armed()["lost_submit"] == [{"delay": 30.0, "remaining": 2}]
    api.knobs.post("/reset").raise_for_status()
    assert api.armed()["lost_submit"] == []
    assert api.submit(timeout=0.5).status_code == 200
    assert api.stats()["lost_answers"] == 0


def test_disarm_clears_every_fault_and_releases_held_tasks_but_keeps_the_tasks(
    api: Api,
) -> None:
    api.fault(target="hold", count=2)
    held = api.create()
    api.wait(held, "RUNNING")
    api.fault(target="submit", status=500, code="InternalError")
    api.fault(target="task", code="InvalidPerson")
    api.fault(target="lost_submit", delay=30)
    api.fault(target="result", mode="redirect")
    api.fault(target="parsing", garment="upper")

    disarmed = api.knobs.delete("/faults")
    assert disarmed.status_code == 200
    assert disarmed.json()["armed"] == api.armed()
    assert api.armed() == {
        "submit": [], "query": [], "generation": [], "task": [], "lost_submit": [],
        "lost_call": [], "result": [], "hold": 0, "parsing": [],
    }
    assert api.wait(held)["output"]["task_status"] == "SUCCEEDED"
    fine = api.create()  # neither failed, held, lost nor faulted
    assert api.wait(fine)["output"]["task_status"] == "SUCCEEDED"
    assert [t["task_id"] for t in api.timelines()] == [held, fine]
    assert api.stats()["submits"] == 2


def test_task_timelines_keep_every_task_until_reset(api: Api) -> None:
    api.fault(target="hold", count=1)
    held = api.create()
    done = api.create()
    api.wait(done)
    api.wait(held, "RUNNING")

    timelines = api.timelines()
    assert [t["task_id"] for t in timelines] == [held, done]
    running, finished = timelines
    assert running["status"] == "RUNNING" and running["end_time"] is None
    assert running["scheduled_time"] >= running["submit_time"]
    assert finished["model"] == "aitryon-plus" and finished["status"] == "SUCCEEDED"
    assert abs(finished["submit_time"] - time.time()) < 60  # epoch seconds
    assert 1.0 <= finished["generation_seconds"] <= 2.0  # the fixture's gen_time
    # RUNNING alone lasts the generation time, scaled by the speed-up.
    assert finished["end_time"] - finished["scheduled_time"] >= (
        finished["generation_seconds"] / SPEEDUP
    )
    assert not running["purged"] and not finished["purged"]

    api.advance(DAY)
    assert api.query(done)["output"]["task_status"] == "UNKNOWN"
    timelines = api.timelines()
    assert [t["task_id"] for t in timelines] == [held, done]
    assert all(t["purged"] for t in timelines)
    assert timelines[1] == {**finished, "purged": True}

    api.knobs.post("/reset").raise_for_status()
    assert api.timelines() == []


def test_peaks_count_tasks_in_flight_and_tasks_in_slots(api: Api) -> None:
    api.fault(target="hold", count=7)
    assert burst(api.submit, 7) == [200] * 7
    stats = api.stats()
    assert stats["peak_in_flight"] == 7
    assert stats["peak_running"] == 5  # aitryon-plus's running limit
    assert stats["tasks"]["PENDING"] == 2

    tasks = api.statuses()
    for task_id in tasks:
        api.hold(task_id, False)
    api.wait_until(lambda: set(api.statuses().values()) == {"SUCCEEDED"})
    stats = api.stats()
    assert (stats["peak_in_flight"], stats["peak_running"]) == (7, 5)

    api.knobs.post("/reset").raise_for_status()
    stats = api.stats()
    assert (stats["peak_in_flight"], stats["peak_running"]) == (0, 0)
    # One task after another: never more than one in flight.
    for _ in range(2):
        api.wait(api.create())
    stats = api.stats()
    assert (stats["peak_in_flight"], stats["peak_running"]) == (1, 1)
