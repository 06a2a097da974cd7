"""The account's limits: the limits API in its documented shape, the knob that
changes them at run time (enforced at once), the queue cap, and the task list in
its documented shape."""

from __future__ import annotations

import time

import httpx
from emulator_support import Api, burst, error_body

LIMITS = "/models/limits"
LIMIT_FIELDS = {"request_limit", "request_limit_period", "usage_limit", "usage_limit_field",
                "usage_limit_period", "async_user_concurrency_limit", "async_user_queue_limit"}


def quotas(api: Api, **params: object) -> dict:
    response = api.http.get(LIMITS, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def set_limits(api: Api, **body: object) -> httpx.Response:
    return api.knobs.post("/limits", json=body)


def test_the_limits_api_answers_a_models_limits_in_the_documented_shape(api: Api) -> None:
    answer = quotas(api, model="aitryon-plus")
    assert set(answer) == {"output", "request_id"}
    output = answer["output"]
    assert (output["total"], output["page_no"], output["page_size"]) == (1, 1, 20)
    [quota] = output["quotas"]
    assert set(quota) == {"model", "workspace_id", "model_limit", "workspace_limit"}
    assert quota["model"] == "aitryon-plus" and quota["workspace_limit"] is None
    assert set(quota["model_limit"]) == LIMIT_FIELDS
    assert quota["model_limit"] == {
        "request_limit": 10, "request_limit_period": 1, "usage_limit": None,
        "usage_limit_field": None, "usage_limit_period": None,
        "async_user_concurrency_limit": 5, "async_user_queue_limit": 500}
    # A synchronous model has no running tasks or queue.
    [sync] = quotas(api, model="aitryon-parsing-v1")["output"]["quotas"]
    assert sync["model_limit"]["async_user_concurrency_limit"] is None
    assert sync["model_limit"]["async_user_queue_limit"] is None


def test_the_limits_api_pages_every_model_and_lists_nothing_for_an_unknown_one(
        api: Api) -> None:
    everything = quotas(api, page_size=100)["output"]
    models = [q["model"] for q in everything["quotas"]]
    assert everything["total"] == len(models) == 7 and "qwen-image-3.0" in models
    second = quotas(api, page_size=2, page_no=2)["output"]
    assert [q["model"] for q in second["quotas"]] == models[2:4]
    assert quotas(api, model="qwen-image-9")["output"] == {
        "total": 0, "page_no": 1, "page_size": 20, "quotas": []}
    error_body(api.http.get(LIMITS, params={"page_size": "many"}), 400, "InvalidParameter")
    # A retired model's limits are still the account's facts.
    api.retire("qwen-image-2.0")
    assert quotas(api, model="qwen-image-2.0")["output"]["total"] == 1


def test_the_limits_api_needs_a_key_and_takes_injected_faults(api: Api) -> None:
    denied = httpx.get(str(api.http.base_url) + LIMITS.lstrip("/"))
    assert denied.status_code == 401 and denied.json()["code"] == "InvalidApiKey"
    api.fault(target="limits", status=503, code="ServiceUnavailable")
    error_body(api.http.get(LIMITS), 503, "ServiceUnavailable")
    assert api.http.get(LIMITS).status_code == 200
    assert api.stats()["injected"]["limits"] == 1


def test_changed_limits_are_answered_and_enforced_at_once(api: Api) -> None:
    changed = set_limits(api, model="aitryon", concurrency=2, request_limit=30,
                         request_limit_period=60)
    assert changed.status_code == 200, changed.text
    assert changed.json()["aitryon"]["enforced"]["concurrency"] == 2
    [quota] = quotas(api, model="aitryon")["output"]["quotas"]
    assert quota["model_limit"]["async_user_concurrency_limit"] == 2
    assert quota["model_limit"]["request_limit"] == 30
    assert quota["model_limit"]["request_limit_period"] == 60

    basic = {**api.body(), "model": "aitryon"}
    api.fault(target="hold", count=3)
    tasks = []
    for _ in range(3):
        tasks.append(api.create(body=basic))
        # 30 a minute is one in any second: the next one a second on is admitted...
        error_body(api.submit(body=basic), 429, "Throttling.RateQuota")
        time.sleep(1.05)
    api.wait_until(lambda: [api.statuses()[t] for t in tasks][:2] == ["RUNNING"] * 2)
    assert api.statuses()[tasks[2]] == "PENDING"
    # Raised again: the queued task starts at once.
    set_limits(api, model="aitryon", concurrency=3).raise_for_status()
    api.wait_until(lambda: api.statuses()[tasks[2]] == "RUNNING")


def test_a_workspace_cap_below_the_accounts_is_the_one_enforced(api: Api) -> None:
    response = set_limits(api, model="qwen-image-3.0",
                          workspace={"concurrency": 1, "request_limit": 5})
    assert response.status_code == 200, response.text
    [quota] = quotas(api, model="qwen-image-3.0")["output"]["quotas"]
    assert quota["workspace_limit"]["async_user_concurrency_limit"] == 1
    assert quota["model_limit"]["async_user_concurrency_limit"] == 10  # the account's
    api.fault(target="hold", count=2)
    first, second = api.create_generation(), api.create_generation()
    api.wait(first, "RUNNING")
    assert api.query(second)["output"]["task_status"] == "PENDING"
    assert response.json()["qwen-image-3.0"]["enforced"]["concurrency"] == 1
    # Reset: the configured limits again, no workspace cap.
    api.knobs.post("/reset").raise_for_status()
    [quota] = quotas(api, model="qwen-image-3.0")["output"]["quotas"]
    assert quota["workspace_limit"] is None


def test_the_limits_knob_refuses_nonsense(api: Api) -> None:
    for body in ({"model": "qwen-image-9"}, {"model": "aitryon", "concurrency": 0},
                 {"model": "aitryon", "request_limit_period": 30},
                 {"model": "aitryon", "request_limit": "ten"},
                 {"model": "aitryon", "colour": 1},
                 {"model": "aitryon", "workspace": 5}):
        assert set_limits(api, **body).status_code == 400, body
    assert api.knobs.get("/limits").json()["aitryon"]["concurrency"] == 5


def test_past_the_running_tasks_and_a_full_queue_a_submit_is_refused(api: Api) -> None:
    set_limits(api, model="qwen-image-3.0", concurrency=1, queue=2).raise_for_status()
    api.fault(target="hold", count=3)
    tasks = [api.create_generation() for _ in range(3)]  # 1 running, 2 queued
    api.wait(tasks[0], "RUNNING")
    body = error_body(api.submit_generation(), 429, "Throttling")
    assert "queue" in body["message"]
    model = api.stats()["by_model"]["qwen-image-3.0"]
    assert (model["submits"], model["queue_full"], model["peak_pending"]) == (3, 1, 2)
    # A running task ends: a queued one starts, and the queue has room again.
    api.hold(tasks[0], False)
    api.wait(tasks[1], "RUNNING")
    assert api.submit_generation().status_code == 200


def test_the_task_list_answers_in_the_documented_shape(api: Api) -> None:
    api.fault(target="hold", count=1)
    held = api.create()
    done = api.create()
    api.wait(done)
    api.wait(held, "RUNNING")
    listing = api.http.get("/tasks", params={"model_name": "aitryon-plus"}).json()
    assert set(listing) == {"total", "total_page", "page_no", "page_size", "request_id", "data"}
    assert (listing["total"], listing["total_page"]) == (2, 1)
    items = {item["task_id"]: item for item in listing["data"]}
    running, ended = items[held], items[done]
    assert running["status"] == "RUNNING" and "end_time" not in running
    assert ended["status"] == "SUCCEEDED" and "image_url" not in ended
    assert ended["gmt_create"] <= ended["start_time"] <= ended["end_time"]
    assert isinstance(ended["gmt_create"], int) and ended["gmt_create"] > 1.7e12  # epoch ms
    assert ended["model_name"] == "aitryon-plus" and ended["region"] == "cn-beijing"
    assert ended["user_api_unique_key"].endswith(":aitryon-plus")
    assert {"request_id", "api_key_id"} <= set(ended)
    # RUNNING lists the phases too (the list knows no PRE-PROCESSING).
    by_status = api.http.get("/tasks", params={"status": "RUNNING"}).json()
    assert [item["task_id"] for item in by_status["data"]] == [held]
    error_body(api.http.get("/tasks", params={"status": "PRE-PROCESSING"}), 400,
               "InvalidParameter")
    assert api.http.get("/tasks", params={"page_size": 1}).json()["total_page"] == 2


def test_query_list_and_cancel_share_the_accounts_20_per_second(api: Api) -> None:
    codes = burst(lambda: api.http.get("/tasks"), 24)
    assert codes.count(200) == 20 and codes.count(429) == 4
    assert api.stats()["throttled"]["query"] == 4
