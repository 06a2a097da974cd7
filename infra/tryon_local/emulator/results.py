"""Result images behind signed, expiring URLs, like the provider's OSS links.

Try-on results (`{task_id}.jpg`), Qwen Image results (`{task_id}-{k}.png`,
`generation-{request_id}-{k}.png`) and parsing crops and previews share one
store: all of them live 24 h and are purged together.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import math
import secrets
from dataclasses import dataclass

RESULT_PATH = "/results/{name}"
MEDIA_TYPES = {".jpg": "image/jpeg", ".png": "image/png"}


class Access(enum.Enum):
    OK = "ok"
    MISSING_SIGNATURE = "missing-signature"
    BAD_SIGNATURE = "bad-signature"
    EXPIRED = "expired"
    NOT_FOUND = "not-found"


@dataclass(frozen=True)
class StoredResult:
    data: bytes
    expires: int  # epoch seconds on the emulator clock, as in `Expires=`
    media_type: str


def result_name(task_id: str) -> str:
    """The stored name of a try-on task's result image."""
    return f"{task_id}.jpg"


class ResultStore:
    def __init__(self) -> None:
        # A fresh secret per process: URLs from another run are not honoured,
        # as a real signed URL from another key would not be.
        self._secret = secrets.token_bytes(32)
        self._results: dict[str, StoredResult] = {}

    def put(self, name: str, data: bytes, expires_at: float) -> int:
        """Store an image under `name` (`.jpg` or `.png`); returns its `Expires`."""
        media_type = MEDIA_TYPES.get(name[name.rfind(".") :])
        if media_type is None:
            raise ValueError(f"unsupported result name {name!r}")
        expires = math.ceil(expires_at)
        self._results[name] = StoredResult(data=data, expires=expires, media_type=media_type)
        return expires

    def signed_path(self, name: str) -> str | None:
        """Path and query of the image's URL, or None when there is no such image."""
        stored = self._results.get(name)
        if stored is None:
            return None
        path = RESULT_PATH.format(name=name)
        return f"{path}?Expires={stored.expires}&Signature={self._sign(path, stored.expires)}"

    def open(
        self, name: str, expires: str | None, signature: str | None, now: float
    ) -> tuple[Access, StoredResult | None]:
        if not expires or not signature or not expires.isdigit():
            return Access.MISSING_SIGNATURE, None
        path = RESULT_PATH.format(name=name)
        if not hmac.compare_digest(self._sign(path, int(expires)), signature):
            return Access.BAD_SIGNATURE, None
        if now > int(expires):
            return Access.EXPIRED, None
        stored = self._results.get(name)
        if stored is None:
            return Access.NOT_FOUND, None
        return Access.OK, stored

    def expire(self, now: float) -> None:
        for name in [n for n, r in self._results.items() if now > r.expires]:
            del self._results[name]

    def clear(self) -> None:
        self._results.clear()

    def __len__(self) -> int:
        return len(self._results)

    def _sign(self, path: str, expires: int) -> str:
        message = f"GET\n{path}\n{expires}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()
