"""Temporary file upload: getPolicy, the OSS form upload, and oss:// inputs."""

from __future__ import annotations

import base64
import json
import random
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import dashscope
import httpx
import pytest
from dashscope.utils.oss_utils import OssUtils
from emulator_support import API_KEY, SAMPLES, SPEEDUP, Api, InputSite, burst
from tryon_local.emulator import EmulatorConfig, serve_in_thread

RESOLVE = {"X-DashScope-OssResourceResolve": "enable"}
PERSON = (SAMPLES / "person.jpg").read_bytes()
CST = timezone(timedelta(hours=8))


def _oss_error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/xml")
    assert f"<Code>{code}</Code>" in response.text and response.headers["x-oss-request-id"]
    return response.text


def _uploaded(api: Api, name: str = "person.jpg", model: str = "aitryon-plus") -> str:
    """Upload the sample person; its oss:// URL."""
    policy = api.policy(model)
    response = api.upload(policy, name, PERSON)
    assert response.status_code == 200, response.text
    assert response.content == b""
    return f"oss://{policy['upload_dir']}/{name}"


def test_get_policy_answers_the_documented_fields(api: Api) -> None:
    response = api.http.get("/uploads", params={"action": "getPolicy", "model": "aitryon-plus"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"data", "request_id"}
    data = body["data"]
    assert set(data) == {
        "policy", "signature", "upload_dir", "upload_host", "expire_in_seconds",
        "max_file_size_mb", "capacity_limit_mb", "oss_access_key_id", "x_oss_object_acl",
        "x_oss_forbid_overwrite",
    }
    assert data["upload_host"] == api.server.root_url + "/oss"
    assert data["upload_dir"].startswith("dashscope-instant/")
    # dashscope-instant/{account}/{date in Beijing}/{random}, like the provider's.
    assert data["upload_dir"].split("/")[2] == datetime.now(CST).strftime("%Y-%m-%d")
    assert data["expire_in_seconds"] == 3  # the provider's 300 s, scaled by the speed-up
    assert data["max_file_size_mb"] == 100 and data["capacity_limit_mb"] >= 100
    assert (data["x_oss_object_acl"], data["x_oss_forbid_overwrite"]) == ("private", "true")
    assert len(base64.b64decode(data["signature"])) == 20  # HMAC-SHA1, as OSS signs policies

    document = json.loads(base64.b64decode(data["policy"]))
    expiration = datetime.strptime(document["expiration"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert 0 < (expiration.replace(tzinfo=UTC) - datetime.now(UTC)).total_seconds() <= 3
    assert ["starts-with", "$key", data["upload_dir"] + "/"] in document["conditions"]
    assert {"x-oss-forbid-overwrite": "true"} in document["conditions"]
    # A fresh directory per policy.
    assert api.policy()["upload_dir"] != data["upload_dir"]


def test_get_policy_checks_key_and_parameters(api: Api) -> None:
    base = api.server.base_url + "/uploads"
    params = {"action": "getPolicy", "model": "aitryon-plus"}
    assert httpx.get(base, params=params).status_code == 401
    for partial in ({"action": "getPolicy"}, {"model": "aitryon-plus"}, {}):
        response = api.http.get("/uploads", params=partial)
        assert response.status_code == 400 and response.json()["code"] == "InvalidParameter"
    assert api.http.get("/uploads", params={**params, "action": "delete"}).status_code == 400
    assert api.http.get("/uploads/", params=params).status_code == 200


def test_uploaded_person_drives_a_try_on_with_the_resolve_header(api: Api) -> None:
    person = _uploaded(api)
    task_id = api.create(person_image_url=person, headers=RESOLVE)
    output = api.wait(task_id)["output"]
    assert output["task_status"] == "SUCCEEDED", output
    stats = api.stats()
    assert stats["uploads"] == 1 and stats["upload_policies"] == 1


def test_oss_url_without_the_header_fails_invalid_url(api: Api) -> None:
    person = _uploaded(api)
    output = api.wait(api.create(person_image_url=person))["output"]
    assert output["task_status"] == "FAILED" and output["code"] == "InvalidURL"
    assert "person_image_url" in output["message"]
    assert "X-DashScope-OssResourceResolve" in output["message"]


def test_unknown_expired_or_foreign_oss_urls_fail_invalid_url(api: Api) -> None:
    policy = api.policy()
    unknown = f"oss://{policy['upload_dir']}/never-uploaded.jpg"
    output = api.wait(api.create(top_garment_url=unknown, headers=RESOLVE))["output"]
    assert (output["task_status"], output["code"]) == ("FAILED", "InvalidURL")
    assert "top_garment_url" in output["message"] and "not found or expired" in output["message"]

    # Files serve the model named at upload only.
    for_parsing = _uploaded(api, model="aitryon-parsing-v1")
    output = api.wait(api.create(person_image_url=for_parsing, headers=RESOLVE))["output"]
    assert output["code"] == "InvalidURL" and "aitryon-parsing-v1" in output["message"]

    person = _uploaded(api, "later.jpg")
    api.advance(48 * 3600 / SPEEDUP + 1)  # the 48 h lifetime, scaled
    output = api.wait(api.create(person_image_url=person, headers=RESOLVE))["output"]
    assert output["code"] == "InvalidURL" and "not found or expired" in output["message"]
    assert api.stats()["stored_uploads"] == 0


def test_parsing_reads_an_uploaded_image(api: Api) -> None:
    person = _uploaded(api, model="aitryon-parsing-v1")
    response = api.parse(person, ["upper", "lower"], headers=RESOLVE)
    assert response.status_code == 200, response.text
    assert None not in response.json()["output"]["crop_img_url"]

    refused = api.parse(person, ["upper"])
    assert refused.status_code == 400 and refused.json()["code"] == "InvalidURL"
    assert "X-DashScope-OssResourceResolve" in refused.json()["message"]
    gone = api.parse(person + ".missing", ["upper"], headers=RESOLVE)
    assert gone.status_code == 400 and "not found or expired" in gone.json()["message"]


def test_bad_signature_unknown_access_key_and_foreign_key_are_403(api: Api) -> None:
    policy = api.policy()

    def upload(**fields: str | None) -> httpx.Response:
        return api.upload(policy, "a.jpg", PERSON, **fields)

    forged = "AAAA" + policy["signature"][4:]
    _oss_error(upload(Signature=forged), 403, "SignatureDoesNotMatch")
    _oss_error(upload(OSSAccessKeyId="LTAIother"), 403, "InvalidAccessKeyId")
    outside = _oss_error(upload(key="dashscope-instant/elsewhere/a.jpg"), 403, "AccessDenied")
    assert "Policy Condition failed" in outside
    # The directory alone is not a file name.
    _oss_error(upload(key=policy["upload_dir"] + "/"), 403, "AccessDenied")
    # The policy pins the ACL and the overwrite guard.
    _oss_error(upload(**{"x-oss-forbid-overwrite": "false"}), 403, "AccessDenied")
    for field in ("OSSAccessKeyId", "Signature", "policy", "key", "x-oss-object-acl"):
        _oss_error(upload(**{field: None}), 403, "AccessDenied")
    assert api.stats()["uploads"] == 0


def test_expired_policy_is_403(api: Api) -> None:
    policy = api.policy()
    api.advance(300 / SPEEDUP + 1)  # the 300 s policy lifetime, scaled
    text = _oss_error(api.upload(policy, "a.jpg", PERSON), 403, "AccessDenied")
    assert "Policy expired" in text


def test_overwriting_a_file_is_409(api: Api) -> None:
    policy = api.policy()
    assert api.upload(policy, "a.jpg", PERSON).status_code == 200
    _oss_error(api.upload(policy, "a.jpg", PERSON), 409, "FileAlreadyExists")
    # One policy serves several files of its directory.
    assert api.upload(policy, "b.jpg", PERSON).status_code == 200
    assert api.stats()["uploads"] == 2


def test_form_must_be_multipart_with_file_last(api: Api) -> None:
    policy = api.policy()
    host = policy["upload_host"]
    _oss_error(httpx.post(host, data={"key": "x"}), 400, "MalformedPOSTRequest")
    unterminated = httpx.post(
        host, content=b"--b\r\nbroken", headers={"content-type": "multipart/form-data; boundary=b"}
    )
    _oss_error(unterminated, 400, "MalformedPOSTRequest")
    # A field after the file is ignored, as OSS ignores it: here, the key.
    boundary = "xyz"
    parts = [
        ("OSSAccessKeyId", policy["oss_access_key_id"]), ("Signature", policy["signature"]),
        ("policy", policy["policy"]), ("x-oss-object-acl", "private"),
        ("x-oss-forbid-overwrite", "true"),
    ]
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        .encode() for name, value in parts
    )
    body += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode() + PERSON + b"\r\n"
    body += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="key"\r\n\r\n'
        f'{policy["upload_dir"]}/a.jpg\r\n--{boundary}--\r\n'
    ).encode()
    late_key = httpx.post(
        host, content=body, headers={"content-type": f"multipart/form-data; boundary={boundary}"}
    )
    _oss_error(late_key, 403, "AccessDenied")


def test_success_action_status_picks_the_answer(api: Api) -> None:
    policy = api.policy()
    assert api.upload(policy, "a.jpg", PERSON, success_action_status=None).status_code == 204
    receipt = api.upload(policy, "b.jpg", PERSON, success_action_status="201")
    assert receipt.status_code == 201
    assert f"<Key>{policy['upload_dir']}/b.jpg</Key>" in receipt.text
    assert receipt.headers["ETag"].startswith('"')


def test_binary_content_survives_the_upload(api: Api) -> None:
    """Line breaks and boundary-like bytes in the file must not be altered."""
    tail = b"\r\n--\r\n\n\r" + random.Random(2).randbytes(4096)
    policy = api.policy("aitryon-parsing-v1")
    assert api.upload(policy, "p.jpg", PERSON + tail).status_code == 200
    stored = api.server.state.uploads.resolve(
        "image_url", f"oss://{policy['upload_dir']}/p.jpg", "aitryon-parsing-v1", True
    )
    assert stored == PERSON + tail


def test_the_official_sdk_uploader_works(
    api: Api, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """dashscope's own uploader (getPolicy, then the form) against the emulator."""
    monkeypatch.setattr(dashscope, "base_http_api_url", api.server.base_url)
    path = tmp_path / "me.jpg"
    path.write_bytes(PERSON)
    url, certificate = OssUtils.upload(model="aitryon", file_path=str(path), api_key=API_KEY)
    assert url == f"oss://{certificate['upload_dir']}/me.jpg"
    body = {**api.body(person_image_url=url), "model": "aitryon"}
    task_id = api.submit(body=body, headers=RESOLVE).json()["output"]["task_id"]
    assert api.wait(task_id)["output"]["task_status"] == "SUCCEEDED"


def test_size_limit_and_policy_rate_limit(inputs: InputSite) -> None:
    config = EmulatorConfig(
        api_keys=frozenset({API_KEY}), speedup=SPEEDUP, upload_policy_rps=3,
        upload_max_file_mb=1,
    )
    with serve_in_thread(config) as server:
        api = Api(server, inputs)
        try:
            policy = api.policy()
            assert policy["max_file_size_mb"] == 1
            big = random.Random(3).randbytes(1024 * 1024 + 1)
            _oss_error(api.upload(policy, "big.jpg", big), 400, "EntityTooLarge")
            # Far past the limit: refused without keeping the body.
            _oss_error(api.upload(policy, "huge.jpg", big * 3), 400, "EntityTooLarge")
            assert api.upload(policy, "ok.jpg", PERSON).status_code == 200

            def get() -> httpx.Response:
                return api.http.get("/uploads", params={"action": "getPolicy", "model": "aitryon"})

            assert burst(get, 4) == [200] * 3 + [429]
            throttled = get()
            assert throttled.json()["code"] == "Throttling.RateQuota"
            # The limit is per model.
            assert api.policy("aitryon-plus")["upload_dir"]
            assert api.stats()["throttled"]["upload_policy"] == 2
        finally:
            api.close()
