"""Input rules and the composite, without a server."""

from __future__ import annotations

import io
import random
import struct
import zlib

import pytest
from emulator_support import SAMPLES
from PIL import Image
from tryon_local.emulator import images


def _encode(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def _noise(size: tuple[int, int]) -> Image.Image:
    rng = random.Random(5)
    return Image.frombytes("RGB", size, rng.randbytes(size[0] * size[1] * 3))


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "BMP", "WEBP"])
def test_accepted_formats_pass(fmt: str) -> None:
    checked = images.check_image("person_image_url", _encode(_noise((300, 400)), fmt))
    assert (checked.width, checked.height) == (300, 400)


def test_a_gif_is_rejected_by_content() -> None:
    with pytest.raises(images.InputRejected) as caught:
        images.check_image("top_garment_url", _encode(_noise((300, 300)), "GIF"))
    assert caught.value.code == "InvalidURL"
    assert "GIF" in caught.value.message and "top_garment_url" in caught.value.message


def test_a_heic_phone_photo_passes() -> None:
    checked = images.check_image("person_image_url", _encode(_noise((300, 400)), "HEIF"))
    assert (checked.width, checked.height) == (300, 400)


def test_a_decompression_bomb_is_refused_before_decoding() -> None:
    png = bytearray(_encode(_noise((200, 200)), "PNG"))
    # Rewrite the IHDR chunk to claim 60000x60000 pixels (and fix its CRC).
    ihdr = png[12:29]
    ihdr[4:12] = struct.pack(">II", 60000, 60000)
    png[12:29] = ihdr
    png[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    with pytest.raises(images.InputRejected) as caught:
        images.check_image("person_image_url", bytes(png))
    assert caught.value.code == "InvalidInputLength"


def test_a_side_over_4096_px_is_invalid_input_length() -> None:
    tall = _encode(Image.new("RGB", (160, 4200), (10, 200, 30)), "PNG") + b"\x00" * 6000
    with pytest.raises(images.InputRejected) as caught:
        images.check_image("bottom_garment_url", tall)
    assert caught.value.code == "InvalidInputLength" and "160x4200" in caught.value.message


@pytest.mark.parametrize("name", ["person.jpg", "top.jpg", "bottom.jpg", "dress.jpg"])
def test_shipped_samples_are_valid_inputs(name: str) -> None:
    data = (SAMPLES / name).read_bytes()
    assert 5 * 1024 <= len(data) <= 150 * 1024
    checked = images.check_image("person_image_url", data)
    assert checked.format == "JPEG"


def test_composite_keeps_the_person_size_and_marks_the_face() -> None:
    person = (SAMPLES / "person.jpg").read_bytes()
    top = (SAMPLES / "top.jpg").read_bytes()
    kept = images.render_composite(
        person=person, top=top, bottom=None, resolution=-1, restore_face=True,
        model="aitryon", task_id="abc",
    )
    new_face = images.render_composite(
        person=person, top=top, bottom=None, resolution=-1, restore_face=False,
        model="aitryon", task_id="abc",
    )
    with Image.open(io.BytesIO(kept)) as a, Image.open(io.BytesIO(new_face)) as b:
        assert a.size == b.size == (512, 1024)
        face = (200, 50, 310, 160)
        # The face is left alone in one, overlaid in the other.
        assert a.crop(face).tobytes() != b.crop(face).tobytes()
        # The garment changed the torso: the result is not the person image.
        with Image.open(io.BytesIO(person)) as original:
            torso = (200, 300, 300, 400)
            assert a.crop(torso).tobytes() != original.convert("RGB").crop(torso).tobytes()
