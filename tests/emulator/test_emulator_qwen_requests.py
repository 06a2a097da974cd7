"""Qwen Image request checks: headers, models (unknown and retired), the body."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from emulator_support import (
    API_KEY,
    FAST_QWEN,
    GENERATE,
    GENERATE_TASK,
    SPEEDUP,
    Api,
    InputSite,
    error_body,
)
from tryon_local.emulator import EmulatorConfig, ModelQuota, serve_in_thread
from tryon_local.emulator import server as server_module
from tryon_local.emulator.generation import QWEN_2, QWEN_3
from tryon_local.emulator.server import EmulatorServer


def _invalid(response: httpx.Response, *words: str) -> str:
    message = error_body(response, 400, "InvalidParameter")["message"]
    for word in words:
        assert word in message, message
    return message


def _content(api: Api, images: int = 1, texts: int = 1, text: str = "the top from image 2"):
    return [
        *({"image": api.inputs("person.jpg")} for _ in range(images)),
        *({"text": text} for _ in range(texts)),
    ]


def _with_input(api: Api, messages: Any) -> dict[str, Any]:
    return {**api.qwen_body(), "input": {"messages": messages}}


# --- headers --------------------------------------------------------------------------


def test_async_header_on_the_sync_endpoint_is_403(api: Api) -> None:
    response = api.generate(headers={"X-DashScope-Async": "enable"})
    body = error_body(response, 403, "AccessDenied")
    assert body["message"] == "current user api does not support asynchronous calls"


def test_sync_call_of_the_async_endpoint_is_403(api: Api) -> None:
    response = api.http.post(GENERATE_TASK, json=api.qwen_body(model="qwen-image-3.0"))
    body = error_body(response, 403, "AccessDenied")
    assert body["message"] == "current user api does not support synchronous calls"


def test_keys_are_checked_first(api: Api) -> None:
    for path in (GENERATE, GENERATE_TASK):
        response = httpx.post(api.server.base_url + path, json={"model": "nope"})
        assert error_body(response, 401, "InvalidApiKey")["message"] == "No API-key provided."


def test_the_2_0_family_takes_no_tasks(api: Api) -> None:
    for model in ("qwen-image-2.0", "qwen-image-2.0-pro"):
        _invalid(api.submit_generation(model=model), model, "asynchronous")
    assert api.stats()["submits"] == 0 and api.timelines() == []


# --- models ----------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["qwen-image-9.0", "aitryon-plus", "aitryon-parsing-v1"])
def test_unknown_model_is_model_not_exist(api: Api, model: str) -> None:
    assert _invalid(api.generate(model=model)) == "Model not exist."
    assert _invalid(api.submit_generation(model=model)) == "Model not exist."
    stats = api.stats()
    assert stats["submits"] == 0 and stats["generations"] == 0


def test_a_missing_model_is_invalid_parameter(api: Api) -> None:
    body = api.qwen_body()
    del body["model"]
    _invalid(api.generate(body=body), "model")
    _invalid(api.generate(body={**body, "model": 5}), "model")


def test_runtime_retirement_answers_like_an_unknown_model(api: Api) -> None:
    assert api.knobs.get("/retire").json() == {"retired": []}
    assert api.retire("qwen-image-3.0") == ["qwen-image-3.0"]
    assert _invalid(api.submit_generation()) == "Model not exist."
    assert _invalid(api.generate(model="qwen-image-3.0")) == "Model not exist."
    # Checked before the body: a broken body still answers "Model not exist."
    broken = {"model": "qwen-image-3.0", "input": "nothing"}
    assert _invalid(api.generate(body=broken)) == "Model not exist."
    # ...but after the key and the async header.
    error_body(httpx.post(api.server.base_url + GENERATE, json=broken), 401, "InvalidApiKey")
    error_body(api.generate(body=broken, headers={"X-DashScope-Async": "enable"}), 403,
               "AccessDenied")
    # Other models are untouched; nothing was created for the retired one.
    assert api.generate(model="qwen-image-2.0").status_code == 200
    assert api.stats()["submits"] == 0 and api.timelines() == []

    assert api.retire("qwen-image-3.0", retired=False) == []
    assert api.submit_generation().status_code == 200


def test_retiring_try_on_models_covers_submit_parsing_and_get_policy(api: Api) -> None:
    for model in ("aitryon-plus", "aitryon-parsing-v1"):
        api.retire(model)
    assert _invalid(api.submit()) == "Model not exist."
    assert _invalid(api.parse()) == "Model not exist."
    policy = api.http.get("/uploads", params={"action": "getPolicy", "model": "aitryon-plus"})
    assert _invalid(policy) == "Model not exist."
    assert api.submit(body={**api.body(), "model": "aitryon"}).status_code == 200
    stats = api.stats()
    assert stats["submits"] == 1 and stats["parsings"] == 0 and stats["upload_policies"] == 0
    assert stats["retired"] == ["aitryon-parsing-v1", "aitryon-plus"]
    # A reset restores the configured set (empty here).
    api.knobs.post("/reset").raise_for_status()
    assert api.knobs.get("/retire").json() == {"retired": []}
    assert api.submit().status_code == 200


def test_retire_knob_rejects_bad_bodies(api: Api) -> None:
    for body in ({"model": "nope"}, {"model": "qwen-image-2.0", "retired": "yes"}, {}):
        assert api.knobs.post("/retire", json=body).status_code == 400
    assert api.knobs.post("/retire", content=b"[").status_code == 400


@pytest.fixture(scope="module")
def retiring_emulator() -> Iterator[EmulatorServer]:
    config = EmulatorConfig(
        api_keys=frozenset({API_KEY}), speedup=SPEEDUP, **FAST_QWEN,
        retired_models=frozenset({"qwen-image-2.0", "aitryon-plus"}),
    )
    with serve_in_thread(config) as server:
        yield server


def test_configured_retirement_survives_reset(
    retiring_emulator: EmulatorServer, inputs: InputSite
) -> None:
    api = Api(retiring_emulator, inputs)
    try:
        for _ in range(2):
            assert _invalid(api.generate(model="qwen-image-2.0")) == "Model not exist."
            assert _invalid(api.submit()) == "Model not exist."
            api.retire("qwen-image-3.0")
            assert api.knobs.get("/retire").json()["retired"] == [
                "aitryon-plus", "qwen-image-2.0", "qwen-image-3.0",
            ]
            api.knobs.post("/reset").raise_for_status()
            assert api.knobs.get("/retire").json()["retired"] == ["aitryon-plus", "qwen-image-2.0"]
        assert api.stats()["by_model"]["qwen-image-2.0"]["generations"] == 0
        assert api.generate(model="qwen-image-2.0-pro").status_code == 200
    finally:
        api.close()


def test_command_line_retires_models(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    started: list[Any] = []

    class Server:  # stands in for uvicorn's: no serving, just the app it was given
        def __init__(self, config: Any) -> None:
            started.append(config.app)

        def run(self, sockets: list[Any]) -> None:
            sockets[0].close()

    monkeypatch.setattr(server_module.uvicorn, "Server", Server)
    argv = ["--port", "0", "--retire", "aitryon-plus", "--retire", "qwen-image-2.0"]
    assert server_module.main(argv) == 0
    [app] = started
    assert app.state.emulator.retired == {"aitryon-plus", "qwen-image-2.0"}
    with pytest.raises(SystemExit):
        server_module.main(["--port", "0", "--retire", "qwen-image-9"])
    assert "unknown model" in capsys.readouterr().err


def test_config_rejects_unknown_retired_and_per_model_settings() -> None:
    with pytest.raises(ValueError, match="retired_models"):
        EmulatorConfig(retired_models=frozenset({"qwen-image-9"}))
    with pytest.raises(ValueError, match="model_quotas"):
        EmulatorConfig(model_quotas={"aitryon-refiner": ModelQuota(3)})
    with pytest.raises(ValueError):
        EmulatorConfig(model_quotas={"qwen-image-2.0": ModelQuota(0)})
    with pytest.raises(ValueError):
        EmulatorConfig(model_gen_time={"qwen-image-2.0": (5, 1)})
    config = EmulatorConfig(model_gen_time={"qwen-image-2.0": (1, 2)}, gen_time=(3, 4))
    assert config.gen_time_for("qwen-image-2.0") == (1.0, 2.0)
    assert config.gen_time_for("qwen-image-3.0-pro") == (25.0, 45.0)
    assert config.gen_time_for("aitryon") == (3.0, 4.0)
    # The published limits, a given one merged over them.
    assert config.model_quotas["qwen-image-3.0"] == ModelQuota(20, 60, 10, 500)
    assert config.model_quotas["qwen-image-2.0-pro"] == ModelQuota(2, 60)
    merged = EmulatorConfig(model_quotas={"aitryon": ModelQuota(4, 60, 3)}).model_quotas
    assert merged["aitryon"] == ModelQuota(4, 60, 3) and merged["aitryon-plus"].concurrency == 5


# --- the body --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "words"),
    [
        ("no messages", ["exactly one message", "0 messages"]),
        ("two messages", ["exactly one message"]),
        ("messages not a list", ["exactly one message", "no list"]),
        ("assistant role", ['role "user"']),
        ("content text", ["content must be a list"]),
        ("no images", ["0 image items"]),
        ("four images", ["4 image items", "1 to 3"]),
        ("two texts", ["2 text items"]),
        ("no text", ["0 text items"]),
        ("long text", ["801 characters", "800"]),
        ("empty text", ["empty"]),
        ("video item", ["content[0]"]),
        ("image and text in one item", ["content[0]"]),
        ("image not a string", ["content[0]"]),
    ],
)
def test_malformed_messages_are_invalid_parameter(api: Api, shape: str, words: list[str]) -> None:
    person = {"image": api.inputs("person.jpg")}
    messages = {
        "no messages": [],
        "two messages": [{"role": "user", "content": _content(api)}] * 2,
        "messages not a list": {"role": "user", "content": _content(api)},
        "assistant role": [{"role": "assistant", "content": _content(api)}],
        "content text": [{"role": "user", "content": "Dress image 1"}],
        "no images": [{"role": "user", "content": _content(api, images=0)}],
        "four images": [{"role": "user", "content": _content(api, images=4)}],
        "two texts": [{"role": "user", "content": _content(api, texts=2)}],
        "no text": [{"role": "user", "content": _content(api, texts=0)}],
        "long text": [{"role": "user", "content": _content(api, text="x" * 801)}],
        "empty text": [{"role": "user", "content": _content(api, text=" ")}],
        "video item": [{"role": "user", "content": [{"video": "v.mp4"}, *_content(api)]}],
        "image and text in one item": [
            {"role": "user", "content": [{**person, "text": "t"}, *_content(api)]}
        ],
        "image not a string": [{"role": "user", "content": [{"image": 3}, {"text": "t"}]}],
    }[shape]
    body = _with_input(api, messages)
    _invalid(api.generate(body=body), *words)
    _invalid(api.submit_generation(body={**body, "model": "qwen-image-3.0"}), *words)
    assert api.stats()["submits"] == 0 and api.timelines() == []


def test_three_images_and_800_characters_are_accepted(api: Api) -> None:
    text = ("the top from image 2 and the bottoms from image 3. " * 20)[:800]
    assert len(text) == 800
    response = api.generate(text=text)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "body",
    [
        {"model": "qwen-image-2.0"},
        {"model": "qwen-image-2.0", "input": "person.jpg"},
        {"model": "qwen-image-2.0", "input": {"prompt": "x"}},
        ["not", "an", "object"],
    ],
)
def test_malformed_bodies_are_invalid_parameter(api: Api, body: Any) -> None:
    _invalid(api.generate(body=body))


def test_body_that_is_not_json_is_invalid_parameter(api: Api) -> None:
    _invalid(api.http.post(GENERATE, content=b"{nope"))


@pytest.mark.parametrize(
    ("parameters", "field"),
    [
        ({"n": 7}, "parameters.n"),
        ({"n": 0}, "parameters.n"),
        ({"n": True}, "parameters.n"),
        ({"n": "1"}, "parameters.n"),
        ({"seed": -1}, "parameters.seed"),
        ({"seed": 2_147_483_648}, "parameters.seed"),
        ({"seed": 1.5}, "parameters.seed"),
        ({"negative_prompt": "x" * 501}, "parameters.negative_prompt"),
        ({"negative_prompt": 5}, "parameters.negative_prompt"),
        ({"watermark": "no"}, "parameters.watermark"),
        ({"prompt_extend": 1}, "parameters.prompt_extend"),
        ({"enable_thinking": False}, "parameters.enable_thinking"),  # 2.0 has no thinking
        ({"size": "1024x1024"}, "parameters.size"),
        ({"size": "1024*"}, "parameters.size"),
        ({"size": "*1024"}, "parameters.size"),
        ({"size": "a*b"}, "parameters.size"),
        ({"size": "1024 * 1024"}, "parameters.size"),
        ({"size": "0*1024"}, "parameters.size"),
        ({"size": 1024}, "parameters.size"),
        ({"size": "511*512"}, "pixels"),
        ({"size": "256*256"}, "pixels"),
        ({"size": "2049*2048"}, "pixels"),
        ({"size": "4096*4096"}, "pixels"),
    ],
)
def test_bad_parameters_name_the_field(api: Api, parameters: dict[str, Any], field: str) -> None:
    _invalid(api.generate(**parameters), field)


def test_parameters_must_be_an_object(api: Api) -> None:
    _invalid(api.generate(body={**api.qwen_body(), "parameters": "fast"}), "parameters")


def test_3_0_takes_thinking_and_bounds_the_aspect_ratio(api: Api) -> None:
    for model in ("qwen-image-3.0", "qwen-image-3.0-pro"):
        _invalid(api.submit_generation(model=model, size="256*2304"), "aspect", "1:8")
        _invalid(api.submit_generation(model=model, size="2304*256"), "aspect")
        _invalid(api.submit_generation(model=model, enable_thinking="on"), "enable_thinking")
    # Exactly 1:8 passes, as does a valid enable_thinking.
    assert api.submit_generation(size="256*2048", enable_thinking=False).status_code == 200
    # 2.0 has no aspect bound: 256*2304 is within the pixel bounds.
    response = api.generate(size="256*2304")
    assert response.status_code == 200, response.text
    assert response.json()["usage"] == {"width": 256, "height": 2304, "image_count": 1}


def test_sdk_and_unknown_parameters_are_ignored(api: Api) -> None:
    # The SDK's async_call sends `is_async`; the contract does not forbid extras.
    response = api.generate(is_async=False, style="<auto>", seed=None)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("size", "snapped"),
    [
        ("770*1150", (768, 1152)),
        ("512*512", (512, 512)),
        ("520*1000", (528, 1008)),
        # Rounding both sides up would leave the bounds: they are rounded down.
        ("2056*2040", (2048, 2032)),
    ],
)
def test_2_0_snaps_sides_to_multiples_of_16(size: str, snapped: tuple[int, int]) -> None:
    width, height = (int(v) for v in size.split("*"))
    assert QWEN_2.check_size(width, height) == snapped
    # 3.0 keeps the requested size.
    if max(width, height) <= 8 * min(width, height):
        assert QWEN_3.check_size(width, height) == (width, height)


def test_2_0_without_size_copies_the_last_image_within_the_bounds() -> None:
    assert QWEN_2.default_size((600, 600)) == (608, 608)
    assert QWEN_2.default_size((512, 1024)) == (512, 1024)
    assert QWEN_2.default_size((384, 384)) == (512, 512)  # brought up to 512*512 pixels
    assert QWEN_2.default_size((3072, 3072)) == (2048, 2048)  # brought down to 2048*2048
    width, height = QWEN_2.default_size((3000, 400))
    assert width % 16 == 0 and height % 16 == 0 and width * height <= 2048 * 2048
    assert QWEN_3.default_size((600, 600)) == (1024, 1024)


def test_size_in_the_answer_is_the_snapped_one(api: Api) -> None:
    response = api.generate(size="770*1150")
    assert response.status_code == 200, response.text
    assert response.json()["usage"] == {"width": 768, "height": 1152, "image_count": 1}


def test_2_0_without_size_answers_the_last_images_size(api: Api) -> None:
    body = api.qwen_body(images=("person.jpg", "top.jpg"), text="the top from image 2")
    del body["parameters"]["size"]
    response = api.generate(body=body)
    assert response.status_code == 200, response.text
    # top.jpg is 600x600: snapped to 608*608.
    assert response.json()["usage"] == {"width": 608, "height": 608, "image_count": 1}
