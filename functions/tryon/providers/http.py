"""The DashScope HTTP core shared by both protocol families: the key, error
answers turned into typed errors, and the temporary file upload.

The API key is held privately and never rendered into reprs, errors or logs."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from tryon.providers.errors import PermanentProviderError, RetryableProviderError, provider_error

# Header that lets a model call read `oss://` keys from the provider's temporary upload.
OSS_RESOLVE_HEADER = {"X-DashScope-OssResourceResolve": "enable"}
DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=20.0, write=20.0, pool=5.0)


class DashScopeHttp:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        on_answer: Callable[[float], None] | None = None,
    ) -> None:
        # Told the milliseconds of each request the provider answered (any status).
        self._on_answer = on_answer
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
            transport=transport,
        )

    def __repr__(self) -> str:  # never show the key
        return f"{type(self).__name__}(base_url={str(self._http.base_url)!r})"

    def close(self) -> None:
        self._http.close()

    def upload(self, model: str, filename: str, data: bytes, content_type: str) -> str:
        """Put a file in the provider's temporary storage (48 h); returns its `oss://` URL.
        The file serves only `model`."""
        policy = self._call("GET", "/uploads", model=model,
                            params={"action": "getPolicy", "model": model}).get("data") or {}
        if not policy.get("upload_host") or not policy.get("upload_dir"):
            raise self._malformed({}, "upload policy answer carries no upload_host/upload_dir")
        key = f"{policy['upload_dir']}/{filename}"
        fields = {
            "OSSAccessKeyId": policy.get("oss_access_key_id", ""),
            "Signature": policy.get("signature", ""),
            "policy": policy.get("policy", ""),
            "key": key,
            "x-oss-object-acl": policy.get("x_oss_object_acl", "private"),
            "x-oss-forbid-overwrite": policy.get("x_oss_forbid_overwrite", "true"),
            "success_action_status": "200",
        }
        try:
            # The upload host is storage, not the API: no Authorization header goes there.
            response = httpx.post(policy["upload_host"], data=fields,
                                  files={"file": (filename, data, content_type)},
                                  timeout=DEFAULT_TIMEOUT)
        except httpx.TransportError as exc:
            raise RetryableProviderError(None, "UploadFailed",
                                         f"temporary upload failed: {type(exc).__name__}") from None
        if not response.is_success:
            raise provider_error(response.status_code, "UploadFailed",
                                 f"temporary upload answered HTTP {response.status_code}")
        return f"oss://{key}"

    def _call(self, method: str, path: str, *, sends_work: bool = False,
              model: str | None = None, **kwargs: Any) -> dict:
        """One request; the answer's JSON object, or a typed ProviderError.
        `sends_work`: the request may create paid work, so an answer lost after
        sending leaves its outcome unknown. `model`: the model it names, so that a
        refusal says which one was refused."""
        sent = time.monotonic()
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            # A connect timeout never reached the provider; any later timeout may have.
            unsent = isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout)
            raise RetryableProviderError(
                None,
                "RequestTimeout",
                f"{method} {path} timed out ({type(exc).__name__})",
                outcome_known=unsent or not sends_work,
            ) from None
        except httpx.TransportError as exc:
            unsent = isinstance(exc, httpx.ConnectError)
            raise RetryableProviderError(
                None,
                "ConnectionError",
                f"{method} {path} failed: {type(exc).__name__}",
                outcome_known=unsent or not sends_work,
            ) from None
        if self._on_answer:
            self._on_answer((time.monotonic() - sent) * 1000)
        try:
            data = response.json()
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        # A body with a top-level code is an error even when the status says 200.
        if response.is_success and not data.get("code"):
            return data
        code = data.get("code") or f"HTTP{response.status_code}"
        raise provider_error(
            response.status_code,
            code,
            data.get("message") or response.reason_phrase,
            request_id=data.get("request_id") or response.headers.get("x-request-id"),
            model=model,
        )

    @staticmethod
    def _malformed(data: dict, why: str) -> PermanentProviderError:
        return PermanentProviderError(
            200, "MalformedResponse", why, request_id=data.get("request_id")
        )
