"""Preflight against the corpus: the exact outcome of every upload, and every fixed
image checked again the way the provider will see it."""

import functools
import io
import random
import resource
import struct
import time
from dataclasses import replace

import pytest
from corpus import CorpusCase, cutout, encode, garment_photo, make_corpus, phone_jpeg, photo
from PIL import ExifTags, Image, ImageChops, ImageFile, ImageOps, ImageStat
from tryon.image_rules import QWEN2_RULES, QWEN3_RULES, TRYON_RULES, ImageRules
from tryon.models.registry import MODELS
from tryon.preflight import MAX_INPUT_BYTES, InputRejected, Prepared, prepare_image
from tryon.preflight.opening import OPENED_FORMATS

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
    prepared = prepare_image(case.key, case.data, TRYON_RULES)
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
    prepared = prepare_image(case.key, case.data, TRYON_RULES)
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
    assert TRYON_RULES.min_bytes <= len(prepared.data) <= TRYON_RULES.max_bytes
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
    again = prepare_image(case.key, prepared.data, TRYON_RULES)
    assert not again.changed and again.data == prepared.data


@cases("fixed", fix="applied EXIF orientation")
def test_exif_rotation_turns_the_pixels_upright(case: CorpusCase):
    original = decoded(case.data)
    assert orientation(original) != 1
    prepared = prepare_image(case.key, case.data, TRYON_RULES)
    upright = ImageOps.exif_transpose(original).convert("RGB")
    assert prepared.width / prepared.height == pytest.approx(upright.width / upright.height, 0.01)
    produced = decoded(prepared.data).convert("RGB")
    upright = upright.resize(produced.size)
    # A wrong turn would leave the figure elsewhere and differ by far more than JPEG noise.
    assert max(ImageStat.Stat(ImageChops.difference(upright, produced)).mean) < 4


@cases(*ERROR_CODES)
def test_an_unfixable_upload_is_rejected_with_a_code_and_its_name(case: CorpusCase):
    with pytest.raises(InputRejected) as caught:
        prepare_image(case.key, case.data, TRYON_RULES)
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
        prepare_image(case.key, case.data, TRYON_RULES)
    assert rule in caught.value.message and fix in caught.value.message, caught.value.message


def test_only_the_decoders_of_accepted_formats_are_ever_reached(monkeypatch):
    """An upload in a format the pipeline has no use for never runs that format's
    decoder (a flaw there cannot be reached), and is still named in the refusal."""
    from PIL import IcoImagePlugin, PsdImagePlugin

    decoders_run = []

    def reached(self):
        decoders_run.append(type(self).__name__)
        raise SyntaxError("not decoded in this test")

    monkeypatch.setattr(IcoImagePlugin.IcoImageFile, "_open", reached)
    monkeypatch.setattr(PsdImagePlugin.PsdImageFile, "_open", reached)
    psd = io.BytesIO()
    Image.new("RGB", (400, 400)).save(psd, "TIFF")  # any image, then a PSD header
    for key, data, fmt in [("icon.jpg", BY_NAME["icon file"].data, "ICO"),
                           ("layers.png", b"8BPS\x00\x01" + b"\x00" * 64, "PSD")]:
        with pytest.raises(InputRejected) as caught:
            prepare_image(key, data, TRYON_RULES)
        assert caught.value.code == "InvalidURL"
        assert f"{key}: the image is in {fmt} format" in caught.value.message
    assert decoders_run == []
    # Every format any model takes as it is can be opened.
    for rules in (TRYON_RULES, QWEN2_RULES, QWEN3_RULES):
        assert set(rules.pass_through) <= set(OPENED_FORMATS)


def test_a_decompression_bomb_is_refused_from_its_header_without_allocating():
    case = BY_NAME["decompression bomb 30000x30000"]
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    started = time.perf_counter()
    with pytest.raises(InputRejected, match="megapixels"):
        prepare_image(case.key, case.data, TRYON_RULES)
    assert time.perf_counter() - started < 1.0
    # Decoding would need 2.7 GB; the peak of the whole test process barely moves.
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before
    assert grown < 100 * 1024


def test_the_caller_refuses_an_upload_over_the_read_limit_by_its_size():
    assert 10 * TRYON_RULES.max_bytes <= MAX_INPUT_BYTES
    oversized = InputRejected.oversized("models/raw.tiff", 80_000_000, TRYON_RULES)
    assert oversized.as_error() == {"code": "InvalidInputLength", "message": (
        "models/raw.tiff: the file is 80.0 MB; files over 50.0 MB are not read, and the "
        "provider takes at most 5 MB. Export the photo as a JPEG of at most 5 MB.")}


def test_an_upload_over_the_read_limit_is_refused_unread():
    case = BY_NAME["person JPEG"]
    # A photo a decoder would read (trailing bytes after a JPEG are ignored), one byte over.
    data = case.data + bytes(MAX_INPUT_BYTES + 1 - len(case.data))
    with pytest.raises(InputRejected) as caught:
        prepare_image(case.key, data, TRYON_RULES)
    assert caught.value.code == "InvalidInputLength"
    assert "files over 50.0 MB are not read" in caught.value.message


def test_over_the_size_limit_the_quality_drops_before_the_size():
    case = BY_NAME["person JPEG"]  # 640x1280, 225 kB at quality 90
    rules = replace(TRYON_RULES, max_bytes=150_000)
    prepared = prepare_image(case.key, case.data, rules)
    assert len(prepared.data) <= 150_000
    assert (prepared.width, prepared.height) == (640, 1280)
    assert [fix for fix in prepared.fixes if fix.startswith("lowered JPEG quality to ")]
    assert not prepare_image(case.key, prepared.data, rules).changed


def test_when_quality_is_not_enough_the_photo_is_downscaled_in_steps():
    case = BY_NAME["person JPEG"]
    rules = replace(TRYON_RULES, max_bytes=40_000)
    prepared = prepare_image(case.key, case.data, rules)
    assert len(prepared.data) <= 40_000
    assert prepared.width < 640 and prepared.width / prepared.height == pytest.approx(0.5, 0.01)
    [fix] = prepared.fixes
    assert fix.startswith("lowered JPEG quality to 75 and downscaled 640x1280 to ")
    assert not prepare_image(case.key, prepared.data, rules).changed


def test_a_photo_that_cannot_get_small_enough_is_rejected():
    case = BY_NAME["person JPEG"]
    # At 150x300 px this photo still needs about 5 kB.
    rules = replace(TRYON_RULES, min_bytes=1_000, max_bytes=3_000)
    with pytest.raises(InputRejected) as caught:
        prepare_image(case.key, case.data, rules)
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


# The Qwen Image rules: more formats taken as they are, small photos upscaled, 10 MB.

QWEN = pytest.mark.parametrize("rules", [QWEN2_RULES, QWEN3_RULES], ids=["qwen2", "qwen3"])


def assert_sendable(prepared: Prepared, rules: ImageRules) -> None:
    """What the provider receives obeys every one of the rules, checked independently
    of preflight's own check; and it passes preflight again untouched."""
    produced = decoded(prepared.data)
    assert produced.format in rules.pass_through
    assert (prepared.content_type, prepared.extension) == rules.pass_through[produced.format]
    assert prepared.content_type == Image.MIME[produced.format]
    assert produced.mode in ("RGB", "L") or (produced.mode == "P"
                                             and produced.format in ("GIF", "PNG"))
    assert "transparency" not in produced.info and orientation(produced) == 1
    assert rules.min_bytes <= len(prepared.data) <= rules.max_bytes
    assert produced.size == (prepared.width, prepared.height)
    assert min(produced.size) >= rules.min_side and max(produced.size) <= rules.max_side
    again = prepare_image("again", prepared.data, rules)
    assert not again.changed and again.data == prepared.data


def rejection(data: bytes, rules: ImageRules, key: str = "inputs/photo") -> InputRejected:
    with pytest.raises(InputRejected) as caught:
        prepare_image(key, data, rules)
    assert caught.value.message.startswith(f"{key}: ")
    return caught.value


def test_the_rules_are_the_contracts():
    assert (TRYON_RULES.min_bytes, TRYON_RULES.max_bytes) == (5 * 1024, 5_000_000)
    assert (TRYON_RULES.min_side, TRYON_RULES.max_side) == (150, 4096)
    assert set(TRYON_RULES.pass_through) == {"JPEG", "PNG"} and not TRYON_RULES.upscale_small
    for rules, label, max_side in ((QWEN2_RULES, "qwen-image-2.0 models", 3072),
                                   (QWEN3_RULES, "qwen-image-3.0 models", 2048)):
        assert rules.label == label
        assert (rules.min_bytes, rules.max_bytes, rules.min_side, rules.max_side) == (
            1, 10_000_000, 384, max_side)
        assert rules.upscale_small
        assert dict(rules.pass_through) == {
            "JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png"),
            "BMP": ("image/bmp", "bmp"), "TIFF": ("image/tiff", "tiff"),
            "WEBP": ("image/webp", "webp"), "GIF": ("image/gif", "gif")}


def test_each_model_is_preflighted_by_its_familys_rules():
    assert {model: spec.input_rules for model, spec in MODELS.items()} == {
        "aitryon-plus": TRYON_RULES, "aitryon": TRYON_RULES,
        "qwen-image-3.0": QWEN3_RULES, "qwen-image-3.0-pro": QWEN3_RULES,
        "qwen-image-2.0": QWEN2_RULES, "qwen-image-2.0-pro": QWEN2_RULES}


@QWEN
@pytest.mark.parametrize("name", ["person JPEG", "grayscale JPEG", "JPEG named .png",
                                  "garment PNG", "JPEG of 6 MB"])
def test_a_conforming_upload_goes_to_qwen_byte_for_byte(name: str, rules: ImageRules):
    case = BY_NAME[name]
    prepared = prepare_image(case.key, case.data, rules)
    assert not prepared.changed and prepared.data == case.data
    assert_sendable(prepared, rules)


def still(fmt: str) -> bytes:
    """A conforming still garment photo, 500x600 px, in `fmt`."""
    image = garment_photo((500, 600), seed=40)
    if fmt == "GIF":
        return encode(image.quantize(128), "GIF")
    if fmt == "palette PNG":
        return encode(image.quantize(128), "PNG")
    options = {"WEBP": {"quality": 85}, "lossless WEBP": {"lossless": True},
               "TIFF": {"compression": "tiff_deflate"}, "LZW TIFF": {"compression": "tiff_lzw"},
               "raw TIFF": {}, "BMP": {}}[fmt]
    return encode(image, fmt.split()[-1], **options)


STILLS = pytest.mark.parametrize(("fmt", "content_type", "extension"), [
    ("WEBP", "image/webp", "webp"),
    ("lossless WEBP", "image/webp", "webp"),
    ("BMP", "image/bmp", "bmp"),
    ("TIFF", "image/tiff", "tiff"),
    ("LZW TIFF", "image/tiff", "tiff"),
    ("raw TIFF", "image/tiff", "tiff"),
    ("GIF", "image/gif", "gif"),  # a GIF is always a palette image
    ("palette PNG", "image/png", "png"),
])


@QWEN
@STILLS
def test_qwen_takes_more_formats_as_they_are(fmt: str, content_type: str, extension: str,
                                             rules: ImageRules):
    data = still(fmt)
    prepared = prepare_image("garments/top/shop", data, rules)
    assert not prepared.changed and prepared.data == data
    assert (prepared.content_type, prepared.extension) == (content_type, extension)
    assert (prepared.width, prepared.height) == (500, 600)
    assert_sendable(prepared, rules)


@STILLS
def test_the_try_on_models_get_those_formats_as_jpeg(fmt: str, content_type: str,
                                                      extension: str):
    prepared = prepare_image("garments/top/shop", still(fmt), TRYON_RULES)
    assert prepared.content_type == "image/jpeg" and prepared.extension == "jpg"
    format_name = fmt.split()[-1]
    assert prepared.fixes[0] == f"re-encoded {format_name} as JPEG"
    assert_sendable(prepared, TRYON_RULES)


def rgb48_tiff(image: Image.Image) -> bytes:
    """A 16-bit-per-channel RGB TIFF (uncompressed, one strip). Pillow cannot write one
    and reads it back as 8-bit RGB."""
    flat = image.convert("RGB").tobytes()
    deep = bytearray(2 * len(flat))
    deep[0::2] = deep[1::2] = flat  # little-endian v * 257
    pixels, bits_at, pixels_at = bytes(deep), 8, 14
    entries = [(256, 4, 1, image.width), (257, 4, 1, image.height), (258, 3, 3, bits_at),
               (259, 3, 1, 1), (262, 3, 1, 2), (273, 4, 1, pixels_at), (277, 3, 1, 3),
               (278, 4, 1, image.height), (279, 4, 1, len(pixels))]
    ifd = (struct.pack("<H", len(entries))
           + b"".join(struct.pack("<HHII", *entry) for entry in entries) + b"\0\0\0\0")
    return (b"II*\x00" + struct.pack("<I", pixels_at + len(pixels))
            + struct.pack("<HHH", 16, 16, 16) + pixels + ifd)


def transparent_gif() -> bytes:
    indexed = garment_photo((500, 600), seed=41).quantize(64)
    return encode(indexed, "GIF", transparency=indexed.getpixel((0, 0)))


@QWEN
@pytest.mark.parametrize(("data", "fixes"), [
    (transparent_gif(), ("re-encoded GIF as JPEG", "flattened transparency onto white")),
    (encode(cutout(seed=42), "WEBP", quality=90),
     ("re-encoded WEBP as JPEG", "flattened transparency onto white")),
    (encode(garment_photo((500, 600), seed=43), "TIFF", compression="jpeg"),
     ("re-encoded TIFF as JPEG",)),
    (rgb48_tiff(photo((400, 800), seed=44)),
     ("re-encoded TIFF as JPEG", "converted 16-bit TIFF samples to 8-bit")),
    (encode(garment_photo((500, 600), seed=45).quantize(64), "BMP"),
     ("re-encoded BMP as JPEG", "converted palette colors to RGB")),
    (BY_NAME["palette PNG with transparency"].data,
     ("re-encoded PNG as JPEG", "flattened transparency onto white")),
    (BY_NAME["phone photo, EXIF orientation 3"].data, ("applied EXIF orientation",)),
    (BY_NAME["CMYK JPEG"].data, ("converted CMYK to RGB",)),
    (BY_NAME["MPO from a phone"].data, ("re-encoded MPO",)),
    (BY_NAME["PPM"].data, ("re-encoded PPM as JPEG",)),
], ids=["transparent GIF", "cutout WEBP", "JPEG-in-TIFF", "48-bit TIFF", "palette BMP",
        "transparent palette PNG", "EXIF orientation", "CMYK", "MPO", "PPM"])
def test_what_qwen_cannot_take_as_it_is_is_converted(data: bytes, fixes: tuple[str, ...],
                                                      rules: ImageRules):
    prepared = prepare_image("inputs/photo", data, rules)
    for fix in fixes:
        assert any(fix in recorded for recorded in prepared.fixes), (fix, prepared.fixes)
    assert prepared.content_type == "image/jpeg"
    assert_sendable(prepared, rules)


@QWEN
@pytest.mark.parametrize("name", ["HEIC", "HEIC named .jpg"])
def test_a_heic_becomes_a_jpeg_for_qwen_too(name: str, rules: ImageRules):
    case = BY_NAME[name]
    prepared = prepare_image(case.key, case.data, rules)
    assert prepared.fixes == ("re-encoded HEIC as JPEG",)
    assert_sendable(prepared, rules)


@QWEN
@pytest.mark.parametrize(("size", "upscaled"), [
    ((300, 500), (384, 640)),
    ((500, 300), (640, 384)),
    ((150, 300), (384, 768)),  # the smallest side upscaled
    ((383, 383), (384, 384)),
])
def test_a_small_photo_is_upscaled_for_qwen(size: tuple[int, int], upscaled: tuple[int, int],
                                            rules: ImageRules):
    original = photo(size, seed=46)
    prepared = prepare_image("models/small.jpg", encode(original, "JPEG", quality=90), rules)
    assert prepared.fixes == (
        f"upscaled {size[0]}x{size[1]} to {upscaled[0]}x{upscaled[1]} "
        f"(the {rules.label} need at least 384 px a side)",)
    assert (prepared.width, prepared.height) == upscaled
    assert prepared.content_type == "image/jpeg"
    assert_sendable(prepared, rules)
    # The same picture, larger: not a crop, not a stretch.
    produced = decoded(prepared.data).convert("RGB")
    expected = original.resize(upscaled, Image.Resampling.LANCZOS)
    assert max(ImageStat.Stat(ImageChops.difference(expected, produced)).mean) < 4


def test_the_try_on_models_still_reject_a_photo_under_150_px():
    error = rejection(encode(photo((140, 500), seed=47), "JPEG", quality=90), TRYON_RULES)
    assert error.code == "InvalidInputLength"
    assert "140x500 px; each side must be at least 150 px" in error.message


@QWEN
def test_an_upscaled_phone_photo_is_turned_upright_first(rules: ImageRules):
    upright = photo((300, 500), seed=48)
    prepared = prepare_image("models/phone.jpg", phone_jpeg(upright, 6), rules)
    assert prepared.fixes == (
        "applied EXIF orientation (rotate 90° clockwise)",
        f"upscaled 300x500 to 384x640 (the {rules.label} need at least 384 px a side)")
    assert (prepared.width, prepared.height) == (384, 640)
    assert_sendable(prepared, rules)


@QWEN
@pytest.mark.parametrize("name", ["149 px wide", "exactly 5 KB", "one byte under 5 KB",
                                  "16-bit RGB PNG"])
def test_a_photo_the_try_on_models_take_is_upscaled_and_one_they_refuse_is_refused(
        name: str, rules: ImageRules):
    # The floor of upscaling is the try-on minimum: 150 px.
    case = BY_NAME[name]
    if case.expected == "InvalidInputLength":
        error = rejection(case.data, rules, case.key)
        assert error.code == "InvalidInputLength"
        assert (f"149x400 px; the {rules.label} need at least 384 px a side, and only images "
                "of at least 150 px a side are upscaled to that") in error.message
        assert "Use a photo of at least 384 px a side." in error.message
    else:
        prepared = prepare_image(case.key, case.data, rules)
        assert any(fix.startswith("upscaled ") for fix in prepared.fixes), prepared.fixes
        assert_sendable(prepared, rules)


def test_a_large_photo_fits_qwen2_and_is_downscaled_for_qwen3():
    data = encode(photo((3000, 2000), seed=49), "JPEG", quality=85)
    as_is = prepare_image("models/studio.jpg", data, QWEN2_RULES)
    assert not as_is.changed and as_is.data == data
    smaller = prepare_image("models/studio.jpg", data, QWEN3_RULES)
    assert smaller.fixes == ("downscaled 3000x2000 to 2048x1365",)
    assert (smaller.width, smaller.height) == (2048, 1365)
    assert_sendable(smaller, QWEN3_RULES)


@QWEN
def test_a_photo_over_the_longer_side_is_downscaled_for_qwen(rules: ImageRules):
    case = BY_NAME["phone photo, orientation 6, over 4096 px"]  # 2300x4600 upright
    prepared = prepare_image(case.key, case.data, rules)
    fitted = (rules.max_side // 2, rules.max_side)
    assert prepared.fixes == ("applied EXIF orientation (rotate 90° clockwise)",
                              f"downscaled 2300x4600 to {fitted[0]}x{fitted[1]}")
    assert (prepared.width, prepared.height) == fitted
    assert_sendable(prepared, rules)


@pytest.mark.parametrize(("size", "rules", "rule"), [
    ((4000, 300), QWEN2_RULES,
     "4000x300 px; fitting its longer side into 3072 px would make the shorter side 230 px, "
     "under the 384 px minimum of the qwen-image-2.0 models. Crop it to an aspect ratio of "
     "at most 8:1."),
    ((2000, 200), QWEN2_RULES,
     "2000x200 px; upscaling its shorter side to the 384 px minimum of the qwen-image-2.0 "
     "models would make the longer side 3840 px, over the 3072 px maximum. Crop it to an "
     "aspect ratio of at most 8:1."),
    ((300, 1800), QWEN3_RULES,
     "300x1800 px; upscaling its shorter side to the 384 px minimum of the qwen-image-3.0 "
     "models would make the longer side 2304 px, over the 2048 px maximum. Crop it to an "
     "aspect ratio of at most 5:1."),
])
def test_a_strip_no_scaling_brings_within_the_sides_is_rejected(
        size: tuple[int, int], rules: ImageRules, rule: str):
    error = rejection(encode(photo(size, seed=50, grain=0.0), "PNG"), rules)
    assert error.code == "InvalidInputLength"
    assert rule in error.message, error.message


def test_a_strip_qwen3_refuses_is_upscaled_for_qwen2():
    prepared = prepare_image("garments/top/scarf.png",
                             encode(photo((300, 1800), seed=50, grain=0.0), "PNG"), QWEN2_RULES)
    assert (prepared.width, prepared.height) == (384, 2304)
    assert_sendable(prepared, QWEN2_RULES)


@functools.cache
def noise_png(size: tuple[int, int], seed: int) -> bytes:
    """Pure noise, which deflate cannot shrink: 3 bytes a pixel and more."""
    pixels = random.Random(seed).randbytes(size[0] * size[1] * 3)
    return encode(Image.frombytes("RGB", size, pixels), "PNG")


@pytest.mark.parametrize(("rules", "limit"), [
    (QWEN2_RULES, "10 MB"), (QWEN3_RULES, "10 MB"), (TRYON_RULES, "5 MB")])
def test_a_file_over_the_byte_limit_is_re_encoded_under_it(rules: ImageRules, limit: str):
    data = noise_png((2000, 1800), seed=51)
    assert len(data) > 10_000_000
    prepared = prepare_image("garments/top/scan.png", data, rules)
    assert prepared.fixes[0] == "re-encoded PNG as JPEG"
    assert prepared.fixes[-1].startswith(
        f"re-encoded as JPEG quality 92 to get under {limit} (was 10.8 MB, now ")
    assert len(prepared.data) <= rules.max_bytes
    assert_sendable(prepared, rules)


def test_shrinking_follows_the_rules_byte_limit_and_sides():
    data = noise_png((1000, 800), seed=52)  # 2.4 MB, and 0.7 MB as a JPEG of quality 92
    rules = replace(QWEN2_RULES, max_bytes=500_000)
    prepared = prepare_image("garments/top/scan.png", data, rules)
    assert len(prepared.data) <= 500_000 and (prepared.width, prepared.height) == (1000, 800)
    assert prepared.fixes[-1].startswith("lowered JPEG quality to ")
    assert prepared.fixes[-1].endswith(" to get under 0.5 MB")
    assert_sendable(prepared, rules)
    error = rejection(data, replace(QWEN2_RULES, max_bytes=50_000))
    assert error.code == "InvalidInputLength"
    assert "cannot be compressed under 0.05 MB without a side falling under 384 px" in (
        error.message)


@QWEN
@pytest.mark.parametrize("name", ["animated GIF", "animated WEBP", "animated PNG"])
def test_an_animation_stays_rejected_for_qwen(name: str, rules: ImageRules):
    # The models would take the first frame of a GIF and silently drop the rest.
    case = BY_NAME[name]
    error = rejection(case.data, rules, case.key)
    assert error.code == "InvalidURL"
    assert "export a single frame" in error.message


@QWEN
def test_qwen_messages_name_the_qwen_limits(rules: ImageRules):
    empty = rejection(b"", rules)
    assert empty.code == "NotAnImage"
    assert (f"empty (0 bytes); the {rules.label} need an image of at most 10 MB. "
            "Upload the photo again.") in empty.message
    assert InputRejected.oversized("models/raw.tiff", 80_000_000, rules).message == (
        "models/raw.tiff: the file is 80.0 MB; files over 50.0 MB are not read, and the "
        f"{rules.label} take at most 10 MB. Export the photo as a JPEG of at most 10 MB.")
    case = BY_NAME["64 megapixels declared"]
    bomb = rejection(case.data, rules, case.key)
    assert f"Export the photo at most {rules.max_side} px on its longer side." in bomb.message


@QWEN
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_every_corpus_upload_is_sent_fixed_or_refused_for_qwen(case: CorpusCase,
                                                               rules: ImageRules):
    """What the try-on rules refuse the Qwen rules refuse too, with the same code; the
    rest goes out within the Qwen rules."""
    if case.expected in ERROR_CODES:
        assert rejection(case.data, rules, case.key).code == case.expected
        return
    prepared = prepare_image(case.key, case.data, rules)
    assert_sendable(prepared, rules)
    assert prepared.original["bytes"] == len(case.data)
    if not prepared.changed:
        assert prepared.data == case.data
