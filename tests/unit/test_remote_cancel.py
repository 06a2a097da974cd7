"""The API function's one provider call, a queued task's cancel, made by the function
that holds the key: the request and the answer across Lambda, both ways."""

import io
import json
from types import SimpleNamespace

import pytest
from tryon.handlers import provider_cancel
from tryon.providers.errors import PermanentProviderError, RetryableProviderError
from tryon.providers.remote_cancel import cancel_only

CONTEXT = SimpleNamespace(function_name="cancel", memory_limit_in_mb=128,
                          invoked_function_arn="arn:aws:lambda:x", aws_request_id="r",
                          get_remaining_time_in_millis=lambda: 15000)


class Tasks:
    """The provider's task client, as the cancel function's context has it."""

    def __init__(self, refuse: bool = False) -> None:
        self.refuse, self.canceled = refuse, []

    def cancel(self, task_id: str) -> str:
        if self.refuse:
            raise PermanentProviderError(400, "UnsupportedOperation",
                                         "only a PENDING task can be canceled", "req-9")
        self.canceled.append(task_id)
        return "req-1"


class Lambda:
    """Lambda's Invoke, running the cancel function's handler in process."""

    def __init__(self, fail: bool = False) -> None:
        self.fail, self.calls = fail, []

    def invoke(self, FunctionName: str, Payload: bytes) -> dict:
        self.calls.append(FunctionName)
        if self.fail:
            return {"FunctionError": "Unhandled", "Payload": io.BytesIO(b'{"errorMessage": "x"}')}
        answer = provider_cancel.handler(json.loads(Payload), CONTEXT)
        return {"Payload": io.BytesIO(json.dumps(answer).encode())}


@pytest.fixture
def tasks(monkeypatch):
    tasks = Tasks()
    monkeypatch.setattr(provider_cancel, "stage_context",
                        lambda: SimpleNamespace(provider=lambda: SimpleNamespace(tasks=tasks)))
    return tasks


def test_a_cancel_crosses_to_the_function_with_the_key_and_its_answer_comes_back(tasks):
    lambda_client = Lambda()
    provider = cancel_only("tryon-providercancel", lambda_client)
    assert provider().tasks.cancel("t-123") == "req-1"
    assert tasks.canceled == ["t-123"] and lambda_client.calls == ["tryon-providercancel"]


def test_the_providers_refusal_comes_back_as_its_own_error(tasks):
    tasks.refuse = True
    with pytest.raises(PermanentProviderError) as refused:
        cancel_only("f", Lambda())().tasks.cancel("t-123")
    assert (refused.value.code, refused.value.request_id) == ("UnsupportedOperation", "req-9")


def test_a_failed_cancel_function_is_an_unknown_outcome_and_junk_is_refused(tasks):
    with pytest.raises(RetryableProviderError):
        cancel_only("f", Lambda(fail=True))().tasks.cancel("t-123")
    with pytest.raises(PermanentProviderError, match="not a provider task id"):
        cancel_only("f", Lambda())().tasks.cancel("../../tasks")
    assert tasks.canceled == []
