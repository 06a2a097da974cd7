"""Request bodies, one per wire format: the OutfitAnyone try-on task and the
Qwen Image message (CONTRACT.md). Which model speaks which is the registry's
business (`tryon.models.registry`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TRYON_PATH = "/services/aigc/image2image/image-synthesis"
QWEN_TASK_PATH = "/services/aigc/image-generation/generation"
QWEN_CALL_PATH = "/services/aigc/multimodal-generation/generation"


@dataclass(frozen=True)
class TryOnRequest:
    model: str
    person_image_url: str
    top_garment_url: str | None = None
    bottom_garment_url: str | None = None
    resolution: int = -1
    restore_face: bool = True

    path = TRYON_PATH

    def body(self) -> dict[str, Any]:
        garments = {
            "top_garment_url": self.top_garment_url,
            "bottom_garment_url": self.bottom_garment_url,
        }
        return {
            "model": self.model,
            "input": {
                "person_image_url": self.person_image_url,
                **{k: v for k, v in garments.items() if v},
            },
            "parameters": {"resolution": self.resolution, "restore_face": self.restore_face},
        }


@dataclass(frozen=True)
class QwenImageRequest:
    """References in a fixed order plus one instruction that names them by
    position ("image 1" is the person). The same body goes to the async task
    endpoint and to the synchronous one; `path` is set by the protocol."""

    model: str
    images: tuple[str, ...]
    instruction: str
    size: str  # "W*H"
    path: str = QWEN_TASK_PATH

    def body(self) -> dict[str, Any]:
        content: list[dict[str, str]] = [{"image": url} for url in self.images]
        content.append({"text": self.instruction})
        return {
            "model": self.model,
            "input": {"messages": [{"role": "user", "content": content}]},
            # prompt_extend would rewrite the instruction: garments must be
            # reproduced as given, so it stays off (and thinking with it).
            "parameters": {"n": 1, "size": self.size, "prompt_extend": False,
                           "watermark": False},
        }
