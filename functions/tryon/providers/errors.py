"""What a provider call that did not succeed means for the pipeline: retry it,
give up on the look, or never repeat it (its outcome is unknown)."""

from __future__ import annotations

from typing import Any


class ProviderError(Exception):
    """A provider call that did not succeed: HTTP status, provider code, message, request id.

    `outcome_known` is False when the request may have reached the provider but
    no answer came back (e.g. a read timeout): a submit in that state may have
    created a paid task, so it must never be blindly repeated.
    """

    retryable = False

    def __init__(
        self,
        status: int | None,
        code: str,
        message: str,
        request_id: str | None = None,
        outcome_known: bool = True,
        model: str | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.outcome_known = outcome_known
        self.model = model  # the model the request named, where it named one
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"HTTP {self.status}" if self.status else "no response"
        rid = f", request_id {self.request_id}" if self.request_id else ""
        return f"{self.code}: {self.message} ({where}{rid})"

    def as_error(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class RetryableProviderError(ProviderError):
    """Throttling, server errors, timeouts: the same call may succeed later."""

    retryable = True


class PermanentProviderError(ProviderError):
    """Bad input, bad key, no quota: repeating the call will not help."""


class ModelMissingError(PermanentProviderError):
    """The provider does not (or no longer) serve this model: retired, unknown,
    or not open to the account. The refused request created nothing."""


def provider_error(status: int | None, code: str, message: str, **kwargs: Any) -> ProviderError:
    if is_model_missing(status, code, message):
        return ModelMissingError(status, code, message, **kwargs)
    cls = RetryableProviderError if is_retryable(status, code) else PermanentProviderError
    return cls(status, code, message, **kwargs)


def is_retryable(status: int | None, code: str) -> bool:
    """429 (except an exhausted quota) and 5xx may succeed later; the rest will not."""
    if status == 429:
        return code != "Throttling.AllocationQuota"
    return status is not None and status >= 500


def is_model_missing(status: int | None, code: str, message: str) -> bool:
    """The answers CONTRACT.md lists for a missing or retired model: 400 (sometimes
    404) InvalidParameter "Model not exist.", 404 ModelNotFound, 403 Model.AccessDenied."""
    if code in ("ModelNotFound", "Model.AccessDenied"):
        return True
    return code == "InvalidParameter" and "model not exist" in (message or "").lower()
