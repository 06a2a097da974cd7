"""Create-task request checks: auth, async header, body, model, garments."""

from __future__ import annotations

import httpx
import pytest

SUBMIT = "/services/aigc/image2image/image-synthesis"


def _error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code
    assert set(body) == {"code", "message", "request_id"}
    assert body["request_id"]
    return body


def test_missing_api_key_is_401(api) -> None:
    response = httpx.post(
        api.server.base_url + SUBMIT, json=api.body(), headers={"X-DashScope-Async": "enable"}
    )
    assert _error(response, 401, "InvalidApiKey")["message"] == "No API-key provided."


def test_wrong_api_key_is_401_on_every_route(api) -> None:
    wrong = {"Authorization": "Bearer sk-wrong", "X-DashScope-Async": "enable"}
    base = api.server.base_url
    submit = httpx.post(base + SUBMIT, json=api.body(), headers=wrong)
    assert _error(submit, 401, "InvalidApiKey")["message"] == "Invalid API-key provided."
    query = httpx.get(base + "/tasks/some-id", headers=wrong)
    assert _error(query, 401, "InvalidApiKey")["message"] == "Invalid API-key provided."
    listing = httpx.get(base + "/tasks", headers={})
    assert _error(listing, 401, "InvalidApiKey")["message"] == "No API-key provided."


def test_synchronous_call_is_403(api) -> None:
    response = api.http.post(SUBMIT, json=api.body())
    body = _error(response, 403, "AccessDenied")
    assert body["message"] == "current user api does not support synchronous calls"


def test_no_garment_is_invalid_garment(api) -> None:
    response = api.submit(top_garment_url=None, bottom_garment_url=None)
    _error(response, 400, "InvalidGarment")
    # An empty string means "not given", as when leaving bottom empty for a dress.
    _error(api.submit(top_garment_url="", bottom_garment_url=""), 400, "InvalidGarment")


@pytest.mark.parametrize(
    "parameters",
    [
        {"resolution": "1024"},
        {"resolution": 1024.0},
        {"resolution": True},
        {"resolution": 720},
        {"restore_face": "yes"},
        "not-an-object",
    ],
)
def test_ill_typed_parameters_are_invalid_parameter(api, parameters) -> None:
    _error(api.submit(parameters=parameters), 400, "InvalidParameter")


@pytest.mark.parametrize(
    "body",
    [
        {"model": "aitryon-plus"},
        {"model": "aitryon-plus", "input": "person.jpg"},
        {"model": "aitryon-plus", "input": {"top_garment_url": "http://x/top.jpg"}},
        {"model": "aitryon-plus", "input": {"person_image_url": 1, "top_garment_url": "u"}},
        {"model": "aitryon-plus", "input": {"person_image_url": "u", "top_garment_url": 5}},
        {"input": {"person_image_url": "u", "top_garment_url": "t"}},
        ["not", "an", "object"],
    ],
)
def test_malformed_bodies_are_invalid_parameter(api, body) -> None:
    _error(api.submit(body=body), 400, "InvalidParameter")


def test_body_that_is_not_json_is_invalid_parameter(api) -> None:
    response = api.http.post(
        SUBMIT, content=b"{not json", headers={"X-DashScope-Async": "enable"}
    )
    _error(response, 400, "InvalidParameter")


@pytest.mark.parametrize("model", ["aitryon-ultra", "qwen-image-2.0", "aitryon-parsing-v1"])
def test_unknown_model_is_400_model_not_exist(api, model) -> None:
    # CONTRACT.md: unknown ids have been seen answering 400 InvalidParameter.
    body = {**api.body(), "model": model}
    assert _error(api.submit(body=body), 400, "InvalidParameter")["message"] == "Model not exist."
    assert api.stats()["submits"] == 0


@pytest.mark.parametrize("model", ["aitryon-plus", "aitryon"])
def test_accepted_create_answers_pending_with_ids(api, model) -> None:
    response = api.submit(body={**api.body(), "model": model})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["output"]["task_status"] == "PENDING"
    assert len(body["output"]["task_id"]) == 36
    assert len(body["request_id"]) == 36


def test_trailing_slash_is_accepted(api) -> None:
    response = api.http.post(
        SUBMIT + "/", json=api.body(), headers={"X-DashScope-Async": "enable"}
    )
    assert response.status_code == 200, response.text
    task_id = response.json()["output"]["task_id"]
    query = api.http.get(f"/tasks/{task_id}/")
    assert query.status_code == 200
    assert query.json()["output"]["task_id"] == task_id
    assert api.http.get("/tasks/").status_code == 200


def test_every_answer_has_a_fresh_request_id(api) -> None:
    ids = {api.submit().json()["request_id"] for _ in range(3)}
    ids |= {api.submit(body={}).json()["request_id"] for _ in range(2)}
    assert len(ids) == 5


def test_unknown_task_is_200_unknown(api) -> None:
    response = api.http.get("/tasks/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 200
    body = response.json()
    assert body["output"] == {
        "task_id": "00000000-0000-0000-0000-000000000000",
        "task_status": "UNKNOWN",
    }
    assert body["request_id"]


def test_unknown_route_is_a_json_404(api) -> None:
    response = api.http.get("/no/such/route")
    assert response.status_code == 404
    assert response.json()["request_id"]
