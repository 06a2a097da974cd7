"""Inputs are pinned to the version that was checked: the one an S3 event named,
whatever was uploaded over it since, and the provider's presigned URL serves that
version and no other (moto's S3, in process)."""

import io
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image
from tryon.image_rules import TRYON_RULES
from tryon.preflight import InputRejected
from tryon.stages.preparation import prepare_inputs


def jpeg(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.effect_noise((width, height), 64).convert("RGB").save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def test_the_version_an_event_named_is_checked_and_sent_not_a_later_upload(moto_stages):
    s3, ctx, storage = moto_stages.s3, moto_stages.ctx, moto_stages.ctx.storage
    key = "garments/top/TEE-1.jpg"
    first = s3.put_object(Bucket="inbox", Key=key, Body=jpeg(400, 600))["VersionId"]
    s3.put_object(Bucket="inbox", Key=key, Body=b"not an image any more")  # uploaded over it

    fields = prepare_inputs(ctx, "inbox", {"top": key}, TRYON_RULES, {}, {key: first})
    sent = fields["submit_inputs"]["top"]
    assert (sent["width"], sent["height"], sent["version_id"]) == (400, 600, first)
    assert fields["input_versions"] == {key: first}

    url = storage.presign_get("inbox", key, 900, sent["version_id"])
    assert parse_qs(urlsplit(url).query)["versionId"] == [first]
    assert Image.open(io.BytesIO(storage.read("inbox", key, first))).size == (400, 600)
    # Not pinned, the current version is checked (and would be refused).
    with pytest.raises(InputRejected, match="not an image"):
        prepare_inputs(ctx, "inbox", {"top": key}, TRYON_RULES, {})
