"""Result images behind signed, expiring URLs, like the provider's OSS links."""

from __future__ import annotations

import enum
import hashlib
import hmac
import math
import secrets
from dataclasses import dataclass

RESULT_PATH = "/results/{task_id}.jpg"


class Access(enum.Enum):
    OK = "ok"
    MISSING_SIGNATURE = "missing-signature"
    BAD_SIGNATURE = "bad-signature"
    EXPIRED = "expired"
    NOT_FOUND = "not-found"


@dataclass(frozen=True)
class StoredResult:
    jpeg: bytes
    expires: int  # epoch seconds on the emulator clock, as in `Expires=`


class ResultStore:
    def __init__(self) -> None:
        # A fresh secret per process: URLs from another run are not honoured,
        # as a real signed URL from another key would not be.
        self._secret = secrets.token_bytes(32)
        self._results: dict[str, StoredResult] = {}

    def put(self, task_id: str, jpeg: bytes, expires_at: float) -> int:
        expires = math.ceil(expires_at)
        self._results[task_id] = StoredResult(jpeg=jpeg, expires=expires)
        return expires

    def signed_path(self, task_id: str) -> str | None:
        """Path and query of the result's URL, or None when there is no result."""
        stored = self._results.get(task_id)
        if stored is None:
            return None
        path = RESULT_PATH.format(task_id=task_id)
        return f"{path}?Expires={stored.expires}&Signature={self._sign(path, stored.expires)}"

    def open(
        self, task_id: str, expires: str | None, signature: str | None, now: float
    ) -> tuple[Access, bytes | None]:
        if not expires or not signature or not expires.isdigit():
            return Access.MISSING_SIGNATURE, None
        path = RESULT_PATH.format(task_id=task_id)
        if not hmac.compare_digest(self._sign(path, int(expires)), signature):
            return Access.BAD_SIGNATURE, None
        if now > int(expires):
            return Access.EXPIRED, None
        stored = self._results.get(task_id)
        if stored is None:
            return Access.NOT_FOUND, None
        return Access.OK, stored.jpeg

    def expire(self, now: float) -> None:
        for task_id in [t for t, r in self._results.items() if now > r.expires]:
            del self._results[task_id]

    def clear(self) -> None:
        self._results.clear()

    def __len__(self) -> int:
        return len(self._results)

    def _sign(self, path: str, expires: int) -> str:
        message = f"GET\n{path}\n{expires}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()
