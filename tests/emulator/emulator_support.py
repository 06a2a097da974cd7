"""Helpers shared by the emulator tests: constants, bad inputs, a thin client."""

from __future__ import annotations

import base64
import random
import ssl
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx
from PIL import Image
from tryon_local.emulator.config import PUBLISHED_QUOTAS, QWEN_MODELS
from tryon_local.emulator.server import EmulatorServer

SAMPLES = Path(__file__).resolve().parents[2] / "infra" / "tryon_local" / "samples"
API_KEY = "sk-test"
SPEEDUP = 100.0  # 1-2 provider seconds of generation -> 10-20 ms
DAY = 24 * 3600
# One TLS context for every test client: building one per client loads the CA
# bundle each time, tens of milliseconds per test.
TLS = ssl.create_default_context()
GENERATE = "/services/aigc/multimodal-generation/generation"
GENERATE_TASK = "/services/aigc/image-generation/generation"
# The shared emulator's Qwen settings: fast images, and a rate window wide
# enough that tests making a few calls are not throttled (the limit tests
# start an emulator with the defaults).
FAST_QWEN: dict[str, Any] = {
    "model_gen_time": dict.fromkeys(QWEN_MODELS, (1.0, 2.0)),
    "model_quotas": {model: replace(PUBLISHED_QUOTAS[model], request_limit=50,
                                    request_limit_period=1) for model in QWEN_MODELS},
}


def make_bad_inputs(root: Path) -> None:
    """Files that must fail pre-processing, each for one rule."""
    (root / "not-an-image.jpg").write_text("this is text, not a JPEG\n" * 400)
    rng = random.Random(1)
    # 100x100 px of noise: over 5 KB, but sides under 150 px.
    small = Image.frombytes("RGB", (100, 100), rng.randbytes(100 * 100 * 3))
    small.save(root / "small-100px.png")
    # A plain 200x200 JPEG: valid sides, but about 1 KB, under the 5 KB floor.
    Image.new("RGB", (200, 200), (90, 140, 200)).save(root / "tiny-1kb.jpg", quality=60)
    # Over 5 MB (not even an image: the download stops before decoding).
    (root / "big-6mb.jpg").write_bytes(rng.randbytes(6 * 1024 * 1024))
    assert (root / "small-100px.png").stat().st_size > 5 * 1024
    assert (root / "tiny-1kb.jpg").stat().st_size < 5 * 1024
    # Fine for try-on, under the Qwen models' 384 px.
    Image.frombytes("RGB", (300, 300), rng.randbytes(300 * 300 * 3)).save(root / "small-300px.png")
    # Over the Qwen models' 10 MB.
    (root / "big-11mb.jpg").write_bytes(rng.randbytes(11 * 1024 * 1024))


def make_plain_picture(root: Path) -> None:
    """A valid input with nothing in it: parsing finds no garment. BMP, so a
    single colour still weighs over 5 KB."""
    Image.new("RGB", (300, 600), (120, 160, 200)).save(root / "plain.bmp")


def error_body(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The provider's error answer: `code`, `message` and `request_id` at the top level."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code, body
    assert set(body) == {"code", "message", "request_id"} and body["message"], body
    return body


def result_images(output: dict[str, Any]) -> list[str]:
    """The image URLs of a Qwen answer's `output` (sync answer or SUCCEEDED task)."""
    [choice] = output["choices"]
    assert choice["finish_reason"] == "stop" and choice["message"]["role"] == "assistant"
    return [item["image"] for item in choice["message"]["content"]]


def fetch_png(url: str) -> Image.Image:
    response = httpx.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    image = Image.open(BytesIO(response.content))
    assert image.format == "PNG"
    image.load()
    return image


def data_url(image: Image.Image, fmt: str = "PNG", **save: Any) -> str:
    out = BytesIO()
    image.save(out, format=fmt, **save)
    mime = {"JPEG": "jpeg", "PNG": "png", "GIF": "gif", "TIFF": "tiff"}[fmt]
    return f"data:image/{mime};base64,{base64.b64encode(out.getvalue()).decode()}"


def burst(call: Callable[[], httpx.Response], count: int) -> list[int]:
    """Fire `count` calls at once, so they land well inside one second; the
    sorted status codes."""
    with ThreadPoolExecutor(max_workers=count) as pool:
        started = time.monotonic()
        codes = sorted(r.status_code for r in pool.map(lambda _: call(), range(count)))
    elapsed = time.monotonic() - started
    assert elapsed < 1.0, f"{count} calls took {elapsed:.2f}s; the test needs them within 1 s"
    return codes


@dataclass(frozen=True)
class InputSite:
    """The local stand-in for the public web; call it with a file name for its URL."""

    url: str

    def __call__(self, name: str) -> str:
        return f"{self.url}/{name}"



class Api:
    """A thin client of the emulator, shaped like the provider's API."""

    def __init__(self, server: EmulatorServer, inputs: InputSite) -> None:
        self.server = server
        self.inputs = inputs
        self.http = httpx.Client(
            base_url=server.base_url, headers={"Authorization": f"Bearer {API_KEY}"}, verify=TLS
        )
        self.knobs = httpx.Client(base_url=f"{server.root_url}/_emulator", verify=TLS)

    def close(self) -> None:
        self.http.close()
        self.knobs.close()

    def body(self, **input_fields: Any) -> dict[str, Any]:
        parameters = input_fields.pop("parameters", {"resolution": -1, "restore_face": True})
        fields = {
            "person_image_url": self.inputs("person.jpg"),
            "top_garment_url": self.inputs("top.jpg"),
            "bottom_garment_url": self.inputs("bottom.jpg"),
            **input_fields,
        }
        return {
            "model": "aitryon-plus",
            "input": {k: v for k, v in fields.items() if v is not None},
            "parameters": parameters,
        }

    def submit(
        self,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | httpx.Timeout | None = None,
        **input_fields: Any,
    ) -> httpx.Response:
        """A submit; `timeout` (seconds) replaces the client's default."""
        return self.http.post(
            "/services/aigc/image2image/image-synthesis",
            json=body if body is not None else self.body(**input_fields),
            headers={"X-DashScope-Async": "enable", **(headers or {})},
            timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
        )

    def create(self, **input_fields: Any) -> str:
        response = self.submit(**input_fields)
        assert response.status_code == 200, response.text
        return response.json()["output"]["task_id"]

    def query(self, task_id: str) -> dict[str, Any]:
        # Stay under 20 queries/s even when polling: retry a throttled query.
        for _ in range(50):
            response = self.http.get(f"/tasks/{task_id}")
            if response.status_code != 429:
                assert response.status_code == 200, response.text
                return response.json()
            time.sleep(0.1)
        raise AssertionError("queries kept being throttled")

    def wait(self, task_id: str, *statuses: str, timeout: float = 10.0) -> dict[str, Any]:
        """Poll until the task reaches one of `statuses` (default: any end state)."""
        wanted = statuses or ("SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN")
        deadline = time.monotonic() + timeout
        while True:
            body = self.query(task_id)
            if body["output"]["task_status"] in wanted:
                return body
            if time.monotonic() > deadline:
                raise AssertionError(f"task never reached {wanted}: {body}")
            time.sleep(0.06)

    def statuses(self) -> dict[str, str]:
        """task_id -> status of every task, as a query reports it, without using the
        query rate limit (the timelines knob)."""
        response = self.knobs.get("/tasks")
        assert response.status_code == 200, response.text
        return {t["task_id"]: t["status"] for t in response.json() if not t["purged"]}

    def wait_until(self, check: Any, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met; tasks: {self.statuses()}")
            time.sleep(0.03)

    def parse(
        self,
        image_url: str | None = None,
        clothes_type: Any = ("upper", "lower"),
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """A parsing call (synchronous); `image_url` defaults to the sample person.
        `clothes_type` goes out as JSON as given (a tuple becomes a list)."""
        return self.http.post(
            "/services/vision/image-process/process",
            json={
                "model": "aitryon-parsing-v1",
                "input": {"image_url": image_url or self.inputs("person.jpg")},
                "parameters": {"clothes_type": clothes_type},
            },
            headers=headers or {},
        )

    def policy(self, model: str = "aitryon-plus") -> dict[str, Any]:
        """The `data` of a getPolicy answer."""
        response = self.http.get("/uploads", params={"action": "getPolicy", "model": model})
        assert response.status_code == 200, response.text
        return response.json()["data"]

    def upload(
        self, policy: dict[str, Any], name: str, data: bytes, /, **fields: str | None
    ) -> httpx.Response:
        """The form upload of the provider's step 2; `fields` override (None drops)."""
        form: dict[str, str | None] = {
            "OSSAccessKeyId": policy["oss_access_key_id"],
            "Signature": policy["signature"],
            "policy": policy["policy"],
            "key": f"{policy['upload_dir']}/{name}",
            "x-oss-object-acl": policy["x_oss_object_acl"],
            "x-oss-forbid-overwrite": policy["x_oss_forbid_overwrite"],
            "success_action_status": "200",
            **fields,
        }
        # httpx sends the data fields first, then `file`, as the provider requires.
        return httpx.post(
            policy["upload_host"],
            data={k: v for k, v in form.items() if v is not None},
            files={"file": (name, data, "image/jpeg")},
        )

    # --- the Qwen Image models ---

    def qwen_body(
        self,
        model: str = "qwen-image-2.0",
        images: tuple[str, ...] = ("person.jpg", "top.jpg", "bottom.jpg"),
        text: str = "Dress the person in image 1 in the top from image 2 and the bottoms "
        "from image 3.",
        **parameters: Any,
    ) -> dict[str, Any]:
        """A Qwen body; `images` are names on the input site or references as
        sent (anything with a `/` or `:`: URLs, paths, `data:`), `parameters`
        default to a small size and no rewriting."""
        content: list[dict[str, str]] = [
            {"image": name if "/" in name or ":" in name else self.inputs(name)}
            for name in images
        ]
        return {
            "model": model,
            "input": {"messages": [{"role": "user", "content": [*content, {"text": text}]}]},
            "parameters": {"size": "512*768", "prompt_extend": False, "watermark": False,
                           **parameters},
        }

    def generate(
        self,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | httpx.Timeout | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """A synchronous Qwen call (`kwargs` go to qwen_body)."""
        return self.http.post(
            GENERATE,
            json=body if body is not None else self.qwen_body(**kwargs),
            headers=headers or {},
            timeout=timeout if timeout is not None else 30.0,
        )

    def submit_generation(
        self, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """An asynchronous Qwen call (`kwargs` go to qwen_body, model 3.0 by default)."""
        kwargs.setdefault("model", "qwen-image-3.0")
        return self.http.post(
            GENERATE_TASK,
            json=body if body is not None else self.qwen_body(**kwargs),
            headers={"X-DashScope-Async": "enable", **(headers or {})},
        )

    def create_generation(self, **kwargs: Any) -> str:
        response = self.submit_generation(**kwargs)
        assert response.status_code == 200, response.text
        return response.json()["output"]["task_id"]

    def retire(self, model: str, retired: bool = True) -> list[str]:
        response = self.knobs.post("/retire", json={"model": model, "retired": retired})
        assert response.status_code == 200, response.text
        return response.json()["retired"]

    def stats(self) -> dict[str, Any]:
        return self.knobs.get("/stats").json()

    def timelines(self) -> list[dict[str, Any]]:
        response = self.knobs.get("/tasks")
        assert response.status_code == 200, response.text
        return response.json()

    def armed(self) -> dict[str, Any]:
        return self.knobs.get("/faults").json()["armed"]

    def fault(self, **body: Any) -> None:
        self.knobs.post("/faults", json=body).raise_for_status()

    def hold(self, task_id: str, hold: bool) -> None:
        self.knobs.post(f"/tasks/{task_id}/hold", json={"hold": hold}).raise_for_status()

    def advance(self, seconds: float) -> None:
        self.knobs.post("/clock", json={"advance_seconds": seconds}).raise_for_status()
