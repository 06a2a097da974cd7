"""Each version of an image is decoded once per set of rules on the stack: every later
look naming it, in any manifest, reuses what preflight found (the fixes and the fixed
copy, or why it was refused); a new upload is a new version, checked afresh."""

import io
import json

from fakes import INBOX
from PIL import Image
from tryon.adapters.checked_images import CHECKED_TTL_SECONDS
from tryon.job_record import JobStatus
from tryon.jobs import Source, job_id_for
from tryon.models.registry import model_spec
from tryon.stages.intake import take_upload
from tryon.stages.preparation import CLAIM_WAIT_SECONDS


def photo(size=(768, 1024), fmt="JPEG") -> bytes:
    buffer = io.BytesIO()
    Image.effect_noise(size, 64).convert("RGB").save(buffer, fmt)
    return buffer.getvalue()


def manifest(fake, name: str, looks: list[dict]) -> list:
    key = f"jobs/{name}.json"
    body = json.dumps({"version": 1, "looks": looks}).encode()
    source = Source(INBOX, key, "etag", fake.storage.put(INBOX, key, body, "application/json"))
    take_upload(fake.ctx, source)
    return [fake.jobs.get(job_id_for(source, look["id"])) for look in looks]


def decodes(fake) -> tuple[int, int]:
    return fake.counted.count("ImagesDecoded"), fake.counted.count("ImageChecksReused")


def test_a_person_photo_named_by_many_looks_and_manifests_is_decoded_once(fake):
    fake.storage.put(INBOX, "models/anna.webp", photo(fmt="WEBP"))  # fixed: WebP to JPEG
    for i in range(3):
        fake.storage.put(INBOX, f"catalog/t{i}.jpg", photo())
    looks = [{"id": f"l{i}", "person": "models/anna.webp", "top": f"catalog/t{i}.jpg"}
             for i in range(3)]
    first = manifest(fake, "spring", looks)
    assert decodes(fake) == (4, 0)  # the person once, each top once
    second = manifest(fake, "spring-again", looks)
    assert decodes(fake) == (4, 4)  # the next manifest decodes nothing
    for a, b in zip(first, second, strict=True):
        assert a.status == b.status == JobStatus.ADMITTED or a.status == JobStatus.QUEUED
        assert a.submit_inputs == b.submit_inputs  # the same fixed copy and facts
        assert a.normalized == b.normalized and a.normalized["person"]["fixes"]

    fake.storage.put(INBOX, "models/anna.webp", photo(fmt="WEBP"))  # a new version
    manifest(fake, "after-a-new-photo", looks[:1])
    assert decodes(fake) == (5, 5)  # the new person photo decoded, the top reused


def test_a_refused_image_is_refused_again_without_decoding_it(fake):
    fake.storage.put(INBOX, "models/tiny.jpg", photo(size=(100, 100)))
    fake.storage.put(INBOX, "catalog/t.jpg", photo())
    look = [{"id": "a", "person": "models/tiny.jpg", "top": "catalog/t.jpg"}]
    [first] = manifest(fake, "one", look)
    [second] = manifest(fake, "two", look)
    assert first.status == second.status == JobStatus.FAILED
    assert first.error == second.error and first.error["code"] == "InvalidInputLength"
    assert fake.counted.count("ImagesDecoded") == 1  # the person; the top never reached


def test_a_record_older_than_the_fixed_copies_keep_is_checked_afresh(fake):
    fake.storage.put(INBOX, "models/anna.jpg", photo())
    fake.storage.put(INBOX, "catalog/t.jpg", photo())
    look = [{"id": "a", "person": "models/anna.jpg", "top": "catalog/t.jpg"}]
    manifest(fake, "one", look)
    fake.advance(CHECKED_TTL_SECONDS + 1)
    manifest(fake, "two", look)
    assert decodes(fake) == (4, 0)



def test_a_look_waits_for_another_function_checking_the_same_image(fake):
    fake.storage.put(INBOX, "catalog/t.jpg", photo())
    person = fake.storage.put(INBOX, "models/anna.jpg", photo())
    rules = model_spec("aitryon-plus").input_rules.label
    # Another function (a child of the same batch) holds the claim to check the photo.
    assert fake.checked_images.claim(INBOX, "models/anna.jpg", person, rules, fake.clock())
    sleeps = []

    def meanwhile(seconds: float) -> None:  # its outcome arrives while this one waits
        sleeps.append(seconds)
        fake.clock.sleep(seconds)
        if len(sleeps) == 2:
            fake.checked_images.put(INBOX, "models/anna.jpg", person, rules, {"ready": {
                "key": "models/anna.jpg", "content_type": "image/jpeg", "extension": "jpg",
                "width": 768, "height": 1024, "fixes": []}}, fake.clock())

    fake.ctx.sleep = meanwhile
    [job] = manifest(fake, "one", [{"id": "a", "person": "models/anna.jpg",
                                    "top": "catalog/t.jpg"}])
    assert job.status == JobStatus.ADMITTED and len(sleeps) == 2
    assert decodes(fake) == (1, 1)  # the top; the photo was the other's


def test_a_claim_never_answered_is_waited_for_a_bounded_time_then_checked_here(fake):
    fake.storage.put(INBOX, "catalog/t.jpg", photo())
    person = fake.storage.put(INBOX, "models/anna.jpg", photo())
    rules = model_spec("aitryon-plus").input_rules.label
    fake.checked_images.claim(INBOX, "models/anna.jpg", person, rules, fake.clock())
    before = fake.clock()
    [job] = manifest(fake, "one", [{"id": "a", "person": "models/anna.jpg",
                                    "top": "catalog/t.jpg"}])
    assert job.status == JobStatus.ADMITTED and decodes(fake) == (2, 0)
    assert fake.clock() - before == CLAIM_WAIT_SECONDS  # its checker died: no longer
