"""The DashScope synchronous generation protocol (Qwen Image 2.0 family): one
request that answers with the image once it is made, after tens of seconds or
minutes. No task exists, so an answer lost after sending cannot be looked up:
its outcome is unknown, and repeating it may pay twice."""

from __future__ import annotations

from dataclasses import dataclass

from tryon.providers.dashscope_tasks import result_image, result_usage
from tryon.providers.http import OSS_RESOLVE_HEADER, DashScopeHttp
from tryon.providers.request_bodies import QWEN_CALL_PATH, QwenImageRequest


@dataclass(frozen=True)
class GeneratedImage:
    image_url: str  # signed, valid 24 h: a credential
    request_id: str
    width: int | None = None
    height: int | None = None


class GenerationClient(DashScopeHttp):
    def generate(self, request: QwenImageRequest, *, oss_resolve: bool = False) -> GeneratedImage:
        data = self._call(
            "POST",
            QWEN_CALL_PATH,
            json=request.body(),
            # The synchronous endpoint refuses the async header (403).
            headers=OSS_RESOLVE_HEADER if oss_resolve else {},
            sends_work=True,
            model=request.model,
        )
        image_url = result_image(data.get("output") or {})
        if not image_url:
            raise self._malformed(data, "generation answer carries no output.choices image")
        usage = result_usage(data.get("usage"))
        return GeneratedImage(image_url=image_url, request_id=data.get("request_id", ""),
                              width=usage.get("width"), height=usage.get("height"))
