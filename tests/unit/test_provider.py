"""The provider client against canned HTTP answers (pure request/response logic);
the end-to-end tests drive it against the emulator over real HTTP."""

import json
import time

import httpx
import pytest
from tryon.providers.dashscope_generation import GenerationClient
from tryon.providers.dashscope_tasks import TaskClient, parse_provider_time
from tryon.providers.errors import (
    ModelMissingError,
    PermanentProviderError,
    RetryableProviderError,
    is_retryable,
)
from tryon.providers.request_bodies import (
    QWEN_CALL_PATH,
    QWEN_TASK_PATH,
    QwenImageRequest,
    TryOnRequest,
)

KEY = "sk-secret-do-not-leak"


def client_answering(handler, cls=TaskClient) -> tuple[TaskClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    return cls("https://dash.example/api/v1/", KEY,
               transport=httpx.MockTransport(record)), seen


def test_submit_sends_the_contract_headers_and_body():
    client, seen = client_answering(lambda r: httpx.Response(200, json={
        "output": {"task_status": "PENDING", "task_id": "t-1"}, "request_id": "r-1"}))
    task = client.submit(TryOnRequest("aitryon-plus", "https://p", top_garment_url="https://t",
                                      resolution=1024, restore_face=False))
    assert (task.task_id, task.request_id) == ("t-1", "r-1")
    request = seen[0]
    assert request.method == "POST"
    assert str(request.url) == ("https://dash.example/api/v1/services/aigc/image2image/"
                                "image-synthesis")
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.headers["X-DashScope-Async"] == "enable"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.content) == {
        "model": "aitryon-plus",
        "input": {"person_image_url": "https://p", "top_garment_url": "https://t"},
        "parameters": {"resolution": 1024, "restore_face": False},
    }


def test_query_parses_a_succeeded_task():
    client, seen = client_answering(lambda r: httpx.Response(200, json={
        "request_id": "r-2", "output": {
            "task_id": "t-1", "task_status": "SUCCEEDED",
            "submit_time": "2025-06-30 14:37:53.838", "scheduled_time": "2025-06-30 14:37:53.858",
            "end_time": "2025-06-30 14:38:11.472", "image_url": "http://x/tryon.jpg"},
        "usage": {"image_count": 1}}))
    state = client.query("t-1")
    assert seen[0].url.path == "/api/v1/tasks/t-1" and "X-DashScope-Async" not in seen[0].headers
    assert state.status == "SUCCEEDED" and state.image_url == "http://x/tryon.jpg"
    assert state.end_time - state.submit_time == pytest.approx(17.634)
    assert state.image_count == 1 and not state.is_pending


def test_the_task_list_is_read_in_its_documented_shape():
    client, seen = client_answering(lambda r: httpx.Response(200, json={
        "total": 2, "total_page": 1, "page_no": 1, "page_size": 100, "request_id": "r-l",
        "data": [{"task_id": "t-1", "status": "RUNNING", "model_name": "aitryon-plus",
                  "gmt_create": 1745568428109, "start_time": 1745568428138,
                  "region": "cn-beijing", "request_id": "x", "api_key_id": "k",
                  "user_api_unique_key": "apikey:v1:aigc:image2image:image-synthesis:aitryon-plus"},
                 {"task_id": "t-2", "status": "SUCCEEDED", "model_name": "aitryon-plus",
                  "gmt_create": 1745568400000, "start_time": 1745568400010,
                  "end_time": 1745568420000}]}))
    running, done = client.recent_tasks("aitryon-plus", 1745568000.0, 1745569000.0)
    params = seen[0].url.params
    assert (params["model_name"], params["page_size"], params["start_time"]) == (
        "aitryon-plus", "100", "20250425160000")  # the provider's time zone (UTC+8)
    assert (running.task_id, running.status, running.end_time) == ("t-1", "RUNNING", None)
    assert running.submit_time == pytest.approx(1745568428.109)
    assert running.scheduled_time == pytest.approx(1745568428.138)
    assert done.end_time == pytest.approx(1745568420.0) and done.image_url is None
    bad, _ = client_answering(lambda r: httpx.Response(200, json={"data": [
        {"task_id": "t", "task_status": "RUNNING"}]}))
    with pytest.raises(PermanentProviderError, match="listed task status"):
        bad.recent_tasks("aitryon-plus", 0.0, 1.0)


def test_failed_task_keeps_the_provider_code():
    client, _ = client_answering(lambda r: httpx.Response(200, json={
        "request_id": "r", "output": {"task_id": "t", "task_status": "FAILED",
                                      "code": "InvalidPerson", "message": "no person"}}))
    state = client.query("t")
    assert (state.status, state.code, state.message) == ("FAILED", "InvalidPerson", "no person")


@pytest.mark.parametrize(("status", "code", "retryable"), [
    (429, "Throttling.RateQuota", True),
    (429, "Throttling", True),
    (429, "Throttling.AllocationQuota", False),
    (500, "InternalError", True),
    (503, "ModelUnavailable", True),
    (400, "InvalidParameter", False),
    (400, "Arrearage", False),
    (401, "InvalidApiKey", False),
    (403, "AccessDenied", False),
])
def test_errors_are_typed_and_classified(status, code, retryable):
    client, _ = client_answering(lambda r: httpx.Response(status, json={
        "code": code, "message": "m", "request_id": "rid"}))
    with pytest.raises(RetryableProviderError if retryable else PermanentProviderError) as err:
        client.submit(TryOnRequest("aitryon", "https://p", bottom_garment_url="https://b"))
    assert (err.value.status, err.value.code, err.value.request_id) == (status, code, "rid")
    assert err.value.retryable is retryable and is_retryable(status, code) is retryable
    assert err.value.outcome_known


def test_a_read_timeout_on_submit_leaves_the_outcome_unknown():
    def timeout(request):
        raise httpx.ReadTimeout("slow", request=request)

    client, _ = client_answering(timeout)
    with pytest.raises(RetryableProviderError) as err:
        client.submit(TryOnRequest("aitryon", "https://p", top_garment_url="https://t"))
    assert not err.value.outcome_known
    with pytest.raises(RetryableProviderError) as err:
        client.query("t")
    assert err.value.outcome_known  # a query creates nothing


def test_a_refused_connection_is_known_not_to_have_submitted():
    def refused(request):
        raise httpx.ConnectError("refused", request=request)

    client, _ = client_answering(refused)
    with pytest.raises(RetryableProviderError) as err:
        client.submit(TryOnRequest("aitryon", "https://p", top_garment_url="https://t"))
    assert err.value.outcome_known


def test_each_answered_request_reports_its_latency():
    """ProviderLatency: every answer, an error's too; nothing for a request unanswered."""
    answers = iter([
        httpx.Response(200, json={"output": {"task_id": "t", "task_status": "RUNNING"}}),
        httpx.Response(429, json={"code": "Throttling", "message": "busy"}),
    ])

    def slow(request):
        if "refuse" in request.url.path:
            raise httpx.ConnectError("refused", request=request)
        time.sleep(0.02)
        return next(answers)

    latencies: list[float] = []
    client = TaskClient("https://dash.example/api/v1", KEY, transport=httpx.MockTransport(slow),
                        on_answer=latencies.append)
    client.query("t")
    with pytest.raises(RetryableProviderError):
        client.query("t")
    with pytest.raises(RetryableProviderError):
        client.query("refuse")
    assert len(latencies) == 2 and all(20 <= ms < 2000 for ms in latencies)


def test_the_key_never_shows(capsys):
    client, _ = client_answering(lambda r: httpx.Response(401, json={
        "code": "InvalidApiKey", "message": "Invalid API-key provided.", "request_id": "r"}))
    with pytest.raises(PermanentProviderError) as err:
        client.query("t")
    for text in (repr(client), str(err.value), repr(err.value), str(err.value.as_error())):
        assert KEY not in text


def test_malformed_answers_are_permanent_errors():
    client, _ = client_answering(lambda r: httpx.Response(200, json={"output": {}}))
    with pytest.raises(PermanentProviderError, match="MalformedResponse"):
        client.query("t")


def test_provider_times_are_china_standard_time():
    assert parse_provider_time("2025-06-30 14:37:53.838") == pytest.approx(1751265473.838)
    assert parse_provider_time(None) is None


QWEN_SUCCESS = {"output": {"choices": [{"finish_reason": "stop", "message": {
    "role": "assistant", "content": [{"image": "https://oss.example/x.png?Expires=1"}]}}]},
    "request_id": "r-q"}


def qwen_request(path: str = QWEN_TASK_PATH) -> QwenImageRequest:
    return QwenImageRequest("qwen-image-3.0", ("https://p", "https://t"),
                            "Dress the person in image 1 in the top from image 2.", "768*1152",
                            path=path)


def test_qwen_task_submit_sends_one_message_to_the_async_endpoint():
    client, seen = client_answering(lambda r: httpx.Response(200, json={
        "output": {"task_status": "PENDING", "task_id": "t-q"}, "request_id": "r"}))
    assert client.submit(qwen_request()).task_id == "t-q"
    request = seen[0]
    assert request.url.path == "/api/v1/services/aigc/image-generation/generation"
    assert request.headers["X-DashScope-Async"] == "enable"
    assert json.loads(request.content) == {
        "model": "qwen-image-3.0",
        "input": {"messages": [{"role": "user", "content": [
            {"image": "https://p"}, {"image": "https://t"},
            {"text": "Dress the person in image 1 in the top from image 2."}]}]},
        "parameters": {"n": 1, "size": "768*1152", "prompt_extend": False, "watermark": False},
    }


@pytest.mark.parametrize("usage", [
    {"width": 768, "height": 1152, "image_count": 1},
    {"output_width": 768, "output_height": 1152, "output_image_count": 1},
])
def test_a_succeeded_qwen_task_gives_its_image_and_size_in_either_usage_shape(usage):
    body = {**QWEN_SUCCESS, "usage": usage}
    body["output"] = {**body["output"], "task_id": "t", "task_status": "SUCCEEDED"}
    client, _ = client_answering(lambda r: httpx.Response(200, json=body))
    state = client.query("t")
    assert state.image_url == "https://oss.example/x.png?Expires=1"
    assert (state.width, state.height, state.image_count) == (768, 1152, 1)


def test_a_synchronous_generation_sends_no_async_header_and_returns_the_image():
    client, seen = client_answering(lambda r: httpx.Response(200, json={
        **QWEN_SUCCESS, "usage": {"width": 768, "height": 1152, "image_count": 1}}),
        cls=GenerationClient)
    image = client.generate(qwen_request(QWEN_CALL_PATH))
    assert seen[0].url.path == "/api/v1/services/aigc/multimodal-generation/generation"
    assert "X-DashScope-Async" not in seen[0].headers
    assert (image.image_url, image.width, image.height) == (
        "https://oss.example/x.png?Expires=1", 768, 1152)


def test_a_lost_generation_answer_leaves_the_outcome_unknown():
    def timeout(request):
        raise httpx.ReadTimeout("slow", request=request)

    client, _ = client_answering(timeout, cls=GenerationClient)
    with pytest.raises(RetryableProviderError) as err:
        client.generate(qwen_request(QWEN_CALL_PATH))
    assert not err.value.outcome_known


@pytest.mark.parametrize(("status", "code", "message"), [
    (400, "InvalidParameter", "Model not exist."),
    (404, "InvalidParameter", "Model not exist."),
    (404, "ModelNotFound", "m"),
    (403, "Model.AccessDenied", "m"),
])
def test_a_missing_or_retired_model_is_its_own_permanent_error(status, code, message):
    client, _ = client_answering(lambda r: httpx.Response(status, json={
        "code": code, "message": message, "request_id": "rid"}))
    with pytest.raises(ModelMissingError) as err:
        client.submit(qwen_request())
    assert not err.value.retryable and err.value.outcome_known
    assert err.value.model == "qwen-image-3.0"  # which model the provider refused


def test_other_invalid_parameters_are_not_a_missing_model():
    client, _ = client_answering(lambda r: httpx.Response(400, json={
        "code": "InvalidParameter", "message": "size out of range", "request_id": "rid"}))
    with pytest.raises(PermanentProviderError) as err:
        client.submit(qwen_request())
    assert not isinstance(err.value, ModelMissingError)


def test_a_body_with_a_code_is_an_error_even_with_http_200():
    client, _ = client_answering(lambda r: httpx.Response(200, json={
        "code": "DataInspectionFailed", "message": "moderated", "request_id": "rid"}),
        cls=GenerationClient)
    with pytest.raises(PermanentProviderError) as err:
        client.generate(qwen_request(QWEN_CALL_PATH))
    assert err.value.code == "DataInspectionFailed"


def test_a_refused_parsing_model_is_named_as_the_one_refused():
    client, _ = client_answering(lambda r: httpx.Response(400, json={
        "code": "InvalidParameter", "message": "Model not exist.", "request_id": "rid"}))
    with pytest.raises(ModelMissingError) as err:
        client.parse_garment("https://p", "lower")
    assert err.value.model == "aitryon-parsing-v1"
