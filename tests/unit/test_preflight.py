"""Preflight against the corpus: the exact outcome of every upload, and every fixed
image checked again the way the provider will see it."""

import io
import resource
import time

import pytest
from corpus import CorpusCase, make_corpus
from PIL import ExifTags, Image, ImageChops, ImageFile, ImageOps, ImageStat
from tryon import preflight
from tryon.preflight import MAX_INPUT_BYTES, InputRejected, Prepared, prepare_image

CASES = make_corpus()
BY_NAME = {case.name: case for case in CASES}
ERROR_CODES = {"NotAnImage", "CorruptImage", "InvalidInputLength", "InvalidURL"}
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png"}


def cases(*expected: str, fix: str = "") -> pytest.MarkDecorator:
    chosen = [case for case in CASES
              if case.expected in expected
              and (not fix or any(fix in recorded for recorded in case.fixes))]
    return pytest.mark.parametrize("case", chosen, ids=[case.name for case in chosen])


def decoded(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image


def orientation(image: Image.Image) -> int:
    return image.getexif().get(ExifTags.Base.Orientation, 1)


@cases("ok")
def test_a_conforming_upload_is_sent_byte_for_byte(case: CorpusCase):
    prepared = prepare_image(case.key, case.data)
    assert not prepared.changed and prepared.fixes == ()
    assert prepared.data == case.data
    original = decoded(case.data)
    assert prepared.content_type == Image.MIME[original.format]  # the content's, not the key's
    assert prepared.extension == EXTENSIONS[prepared.content_type]
    assert (prepared.width, prepared.height) == original.size
    assert prepared.original == {"format": original.format, "width": original.width,
                                 "height": original.height, "bytes": len(case.data)}


@cases("fixed")
def test_a_fixable_upload_is_fixed_and_the_fix_recorded(case: CorpusCase):
    prepared = prepare_image(case.key, case.data)
    assert prepared.changed
    for fix in case.fixes:
        assert any(fix in recorded for recorded in prepared.fixes), (fix, prepared.fixes)

    # What the provider receives obeys every one of its rules.
    produced = decoded(prepared.data)
    assert produced.format in ("JPEG", "PNG")
    assert prepared.content_type == Image.MIME[produced.format]
    assert prepared.extension == EXTENSIONS[prepared.content_type]
    assert produced.mode in ("RGB", "L")
    assert "transparency" not in produced.info and orientation(produced) == 1
    assert preflight.MIN_BYTES <= len(prepared.data) <= preflight.MAX_BYTES
    assert produced.size == (prepared.width, prepared.height)
    assert min(produced.size) >= 150 and max(produced.size) <= 4096
    assert prepared.original["bytes"] == len(case.data)

    # Upright, and in the original's proportions.
    original = decoded(case.data)
    width, height = original.size
    if orientation(original) in (5, 6, 7, 8):
        width, height = height, width
    assert prepared.width / prepared.height == pytest.approx(width / height, rel=0.01)

    # Fixing is idempotent: the output passes untouched.
    again = prepare_image(case.key, prepared.data)
    assert not again.changed and again.data == prepared.data


@cases("fixed", fix="applied EXIF orientation")
def test_exif_rotation_turns_the_pixels_upright(case: CorpusCase):
    original = decoded(case.data)
    assert orientation(original) != 1
    prepared = prepare_image(case.key, case.data)
    upright = ImageOps.exif_transpose(original).convert("RGB")
    assert prepared.width / prepared.height == pytest.approx(upright.width / upright.height, 0.01)
    produced = decoded(prepared.data).convert("RGB")
    upright = upright.resize(produced.size)
    # A wrong turn would leave the figure elsewhere and differ by far more than JPEG noise.
    assert max(ImageStat.Stat(ImageChops.difference(upright, produced)).mean) < 4


@cases(*ERROR_CODES)
def test_an_unfixable_upload_is_rejected_with_a_code_and_its_name(case: CorpusCase):
    with pytest.raises(InputRejected) as caught:
        prepare_image(case.key, case.data)
    error = caught.value
    assert error.code == case.expected, error.message
    assert error.message.startswith(f"{case.key}: ")
    assert str(error) == error.message
    assert error.as_error() == {"code": case.expected, "message": error.message}
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


@pytest.mark.parametrize(("name", "rule", "fix"), [
    ("zero bytes", "empty (0 bytes)", "Upload the photo again"),
    ("text named .jpg", "not an image (its content is text)", "Upload the photo itself"),
    ("PDF named .png", "a PDF document", "Upload the photo itself"),
    ("truncated JPEG", "truncated or damaged", "Upload the photo again"),
    ("149 px wide", "149x400 px; each side must be at least 150 px", "Use a larger photo"),
    ("8000x150 strip", "shorter side 77 px, under the 150 px minimum", "Crop it"),
    ("decompression bomb 30000x30000", "900 megapixels; images over 50 megapixels",
     "Export the photo at most 4096 px"),
    ("64 megapixels declared", "8000x8000 px (64 megapixels)", "Export the photo"),
    ("animated GIF", "is an animated GIF", "export a single frame as JPEG"),
    ("animated PNG", "is an animated PNG", "export a single frame as JPEG"),
    ("icon file", "ICO format, which the provider does not accept", "Export the photo as JPEG"),
])
def test_a_rejection_names_the_rule_and_a_fix(name: str, rule: str, fix: str):
    case = BY_NAME[name]
    with pytest.raises(InputRejected) as caught:
        prepare_image(case.key, case.data)
    assert rule in caught.value.message and fix in caught.value.message, caught.value.message


def test_a_decompression_bomb_is_refused_from_its_header_without_allocating():
    case = BY_NAME["decompression bomb 30000x30000"]
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    started = time.perf_counter()
    with pytest.raises(InputRejected, match="megapixels"):
        prepare_image(case.key, case.data)
    assert time.perf_counter() - started < 1.0
    # Decoding would need 2.7 GB; the peak of the whole test process barely moves.
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before
    assert grown < 100 * 1024


def test_the_caller_refuses_an_upload_over_the_read_limit_by_its_size():
    assert MAX_INPUT_BYTES >= 10 * preflight.MAX_BYTES
    oversized = InputRejected.oversized("models/raw.tiff", 80_000_000)
    assert oversized.as_error() == {"code": "InvalidInputLength", "message": (
        "models/raw.tiff: the file is 80.0 MB; files over 50.0 MB are not read, and the "
        "provider takes at most 5 MB. Export the photo as a JPEG of at most 5 MB.")}


def test_an_upload_over_the_read_limit_is_refused_unread(monkeypatch):
    monkeypatch.setattr(preflight, "MAX_INPUT_BYTES", 100_000)
    case = BY_NAME["person JPEG"]
    with pytest.raises(InputRejected) as caught:
        prepare_image(case.key, case.data)
    assert caught.value.code == "InvalidInputLength"
    assert "files over 0.1 MB are not read" in caught.value.message


def test_over_the_size_limit_the_quality_drops_before_the_size(monkeypatch):
    case = BY_NAME["person JPEG"]  # 640x1280, 225 kB at quality 90
    monkeypatch.setattr(preflight, "MAX_BYTES", 150_000)
    prepared = prepare_image(case.key, case.data)
    assert len(prepared.data) <= 150_000
    assert (prepared.width, prepared.height) == (640, 1280)
    assert [fix for fix in prepared.fixes if fix.startswith("lowered JPEG quality to ")]
    assert not prepare_image(case.key, prepared.data).changed


def test_when_quality_is_not_enough_the_photo_is_downscaled_in_steps(monkeypatch):
    case = BY_NAME["person JPEG"]
    monkeypatch.setattr(preflight, "MAX_BYTES", 40_000)
    prepared = prepare_image(case.key, case.data)
    assert len(prepared.data) <= 40_000
    assert prepared.width < 640 and prepared.width / prepared.height == pytest.approx(0.5, 0.01)
    [fix] = prepared.fixes
    assert fix.startswith("lowered JPEG quality to 75 and downscaled 640x1280 to ")
    assert not prepare_image(case.key, prepared.data).changed


def test_a_photo_that_cannot_get_small_enough_is_rejected(monkeypatch):
    case = BY_NAME["person JPEG"]
    # At 150x300 px this photo still needs about 5 kB.
    monkeypatch.setattr(preflight, "MIN_BYTES", 1_000)
    monkeypatch.setattr(preflight, "MAX_BYTES", 3_000)
    with pytest.raises(InputRejected) as caught:
        prepare_image(case.key, case.data)
    assert caught.value.code == "InvalidInputLength"
    assert "without a side falling under 150 px" in caught.value.message


def test_changed_is_whether_anything_was_fixed():
    untouched = Prepared(b"x", "image/png", "png", 150, 150, (), {})
    fixed = Prepared(b"x", "image/jpeg", "jpg", 150, 150, ("re-encoded BMP as JPEG",), {})
    assert (untouched.changed, fixed.changed) == (False, True)


def test_the_corpus_covers_every_rule():
    assert len(CASES) >= 28
    assert {case.expected for case in CASES} == {"ok", "fixed"} | ERROR_CODES
    assert all(case.fixes for case in CASES if case.expected == "fixed")
    assert not any(case.fixes for case in CASES if case.expected != "fixed")
    assert any(" " in case.key and not case.key.isascii() for case in CASES)
    assert sum(len(case.data) for case in CASES) < 60_000_000
