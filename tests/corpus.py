"""Input images for the preflight, made by code (no binary files in the repository):
photo-like persons and garments in every format and shape an upload can take, the
edge cases of the provider's rules, and files that are not images at all. Seeded,
so every run makes the same bytes."""

from __future__ import annotations

import io
import random
import struct
import zlib
from dataclasses import dataclass

import pillow_heif
from PIL import Image, ImageDraw, ImageFilter

pillow_heif.register_heif_opener()

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FIVE_KB = 5 * 1024


@dataclass(frozen=True)
class CorpusCase:
    """One upload. `expected` is "ok" (sent untouched), "fixed" (sent after fixes,
    each of `fixes` a substring of one recorded fix) or the error code."""

    name: str
    key: str
    data: bytes
    expected: str
    fixes: tuple[str, ...] = ()


def make_corpus() -> list[CorpusCase]:
    person = photo((640, 1280), seed=1)
    garment = garment_photo((800, 800), seed=2)
    person_jpeg = encode(person, "JPEG", quality=90)
    garment_png = encode(garment, "PNG")
    flat = Image.new("RGB", (200, 400), (214, 200, 188))  # a blank backdrop, a few hundred bytes
    cases = [
        # Accepted untouched.
        CorpusCase("person JPEG", "models/anna.jpg", person_jpeg, "ok"),
        CorpusCase("garment PNG", "garments/top/tee-001.png", garment_png, "ok"),
        CorpusCase("unicode key with spaces", "inputs/Été photo 01 \u2013 front.jpg",
                   encode(photo((600, 1200), seed=3), "JPEG", quality=88), "ok"),
        CorpusCase("PNG named .jpg", "models/lies-about-png.jpg",
                   encode(photo((500, 1000), seed=4), "PNG"), "ok"),
        CorpusCase("JPEG named .png", "garments/bottom/jeans.png",
                   encode(garment_photo((700, 900), seed=5), "JPEG", quality=90), "ok"),
        CorpusCase("grayscale JPEG", "models/bw-portrait.jpg",
                   encode(photo((600, 1200), seed=6).convert("L"), "JPEG", quality=90), "ok"),
        CorpusCase("150 px wide exactly", "models/narrow-150.jpg",
                   encode(photo((150, 300), seed=7), "JPEG", quality=95), "ok"),
        CorpusCase("4096 px side exactly", "models/tall-4096.jpg",
                   encode(photo((2048, 4096), seed=8, grain=0.04), "JPEG", quality=85), "ok"),
        CorpusCase("exactly 5 KB", "garments/top/plain-5120.png",
                   png_padded_to(encode(flat, "PNG"), FIVE_KB), "ok"),
        # Fixed, then sent.
        CorpusCase("one byte under 5 KB", "garments/top/plain-5119.png",
                   png_padded_to(encode(flat, "PNG"), FIVE_KB - 1), "fixed", ("5 KB minimum",)),
        CorpusCase("flat JPEG under 5 KB", "garments/top/blank.jpg",
                   encode(Image.new("RGB", (300, 600), (40, 60, 90)), "JPEG", quality=85),
                   "fixed", ("5 KB minimum",)),
        CorpusCase("5000 px tall", "models/tall-5000.jpg",
                   encode(photo((2500, 5000), seed=9, grain=0.04), "JPEG", quality=80),
                   "fixed", ("downscaled 2500x5000 to 2048x4096",)),
        CorpusCase("panorama 8200x4100", "models/group-panorama.jpg",
                   encode(photo((8200, 4100), seed=28, grain=0.0), "JPEG", quality=75), "fixed",
                   ("downscaled 8200x4100 to 4096x2048",)),
        CorpusCase("PNG of 7 MB", "garments/top/huge-scan.png", big_png(seed=10), "fixed",
                   ("re-encoded PNG as JPEG", "5 MB")),
        CorpusCase("JPEG of 6 MB", "models/camera-max-quality.jpg", big_jpeg(seed=11), "fixed",
                   ("5 MB",)),
        CorpusCase("CMYK JPEG", "garments/top/print-catalog.jpg",
                   encode(garment_photo((600, 600), seed=12).convert("CMYK"), "JPEG",
                          quality=90), "fixed", ("converted CMYK to RGB",)),
        CorpusCase("16-bit grayscale PNG", "models/scan-16bit.png", gray16_png(seed=13),
                   "fixed", ("converted 16-bit grayscale to 8-bit grayscale",)),
        CorpusCase("16-bit RGB PNG", "models/lightroom-export.png", rgb48_png(seed=29),
                   "fixed", ("converted 16-bit PNG samples to 8-bit",)),
        CorpusCase("palette PNG with transparency", "garments/top/palette-cutout.png",
                   palette_png(seed=14), "fixed",
                   ("converted palette colors to RGB", "flattened transparency onto white")),
        CorpusCase("RGBA garment PNG", "garments/top/cutout.png", encode(cutout(seed=15), "PNG"),
                   "fixed", ("re-encoded PNG as JPEG", "flattened transparency onto white")),
        CorpusCase("grayscale PNG with alpha", "garments/bottom/cutout-gray.png",
                   encode(cutout(seed=16).convert("LA"), "PNG"), "fixed",
                   ("flattened transparency onto white",)),
        CorpusCase("phone photo, EXIF orientation 6", "models/phone-portrait.jpg",
                   phone_jpeg(person, 6), "fixed", ("applied EXIF orientation (rotate 90°",)),
        CorpusCase("phone photo, EXIF orientation 3", "models/phone-upside-down.jpg",
                   phone_jpeg(person, 3), "fixed", ("applied EXIF orientation (rotate 180°)",)),
        CorpusCase("phone photo, orientation 6, over 4096 px", "models/phone-48mp.jpg",
                   phone_jpeg(photo((2300, 4600), seed=31, grain=0.03), 6), "fixed",
                   ("applied EXIF orientation (rotate 90°", "downscaled 2300x4600 to 2048x4096")),
        CorpusCase("HEIC", "models/iphone.HEIC",
                   heic(photo((600, 1200), seed=17)), "fixed",
                   ("re-encoded HEIC as JPEG",)),
        CorpusCase("HEIC named .jpg", "models/iphone-renamed.jpg",
                   heic(garment_photo((640, 640), seed=18)), "fixed",
                   ("re-encoded HEIC as JPEG",)),
        CorpusCase("WEBP", "garments/top/shop-export.webp",
                   encode(garment_photo((700, 700), seed=19), "WEBP", quality=85), "fixed",
                   ("re-encoded WEBP as JPEG",)),
        CorpusCase("static GIF", "garments/top/old-site.gif",
                   encode(garment_photo((400, 400), seed=20).quantize(128), "GIF"), "fixed",
                   ("re-encoded GIF as JPEG", "converted palette colors to RGB")),
        CorpusCase("TIFF", "models/studio.tiff",
                   encode(photo((500, 1000), seed=21), "TIFF", compression="tiff_deflate"),
                   "fixed", ("re-encoded TIFF as JPEG",)),
        CorpusCase("BMP", "garments/bottom/skirt.bmp",
                   encode(garment_photo((400, 500), seed=22), "BMP"), "fixed",
                   ("re-encoded BMP as JPEG",)),
        CorpusCase("MPO from a phone", "models/phone-depth.jpg", mpo(person), "fixed",
                   ("re-encoded MPO",)),
        CorpusCase("PPM", "models/export.ppm", encode(photo((300, 600), seed=23), "PPM"),
                   "fixed", ("re-encoded PPM as JPEG",)),
        # Rejected.
        CorpusCase("zero bytes", "models/empty.jpg", b"", "NotAnImage"),
        CorpusCase("text named .jpg", "models/notes.jpg",
                   b"Anna, front view, size M. Photo to follow.\n" * 8, "NotAnImage"),
        CorpusCase("PDF named .png", "garments/top/spec-sheet.png", pdf_like(), "NotAnImage"),
        CorpusCase("S3 error page named .jpg", "models/denied.jpg",
                   b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
                   b"<Message>Access Denied</Message></Error>", "NotAnImage"),
        CorpusCase("random bytes", "models/random.jpg", random.Random(24).randbytes(20_000),
                   "NotAnImage"),
        CorpusCase("truncated JPEG", "models/cut-upload.jpg",
                   person_jpeg[: len(person_jpeg) * 3 // 5], "CorruptImage"),
        CorpusCase("JPEG with only a header", "models/header-only.jpg", person_jpeg[:20],
                   "CorruptImage"),
        CorpusCase("truncated PNG", "garments/top/cut.png",
                   garment_png[:60_000], "CorruptImage"),
        CorpusCase("149 px wide", "models/narrow-149.jpg",
                   encode(photo((149, 400), seed=25), "JPEG", quality=95), "InvalidInputLength"),
        CorpusCase("8000x150 strip", "garments/top/banner.png",
                   encode(photo((8000, 150), seed=26, grain=0.0), "PNG"),
                   "InvalidInputLength"),
        CorpusCase("decompression bomb 30000x30000", "models/bomb.png",
                   png_header_only(30000, 30000), "InvalidInputLength"),
        CorpusCase("64 megapixels declared", "models/too-many-pixels.png",
                   png_header_only(8000, 8000), "InvalidInputLength"),
        CorpusCase("animated GIF", "garments/top/spinning.gif", animated(person, "GIF"),
                   "InvalidURL"),
        CorpusCase("animated WEBP", "garments/top/spinning.webp", animated(person, "WEBP"),
                   "InvalidURL"),
        CorpusCase("animated PNG", "garments/top/spinning.png", animated(person, "PNG"),
                   "InvalidURL"),
        CorpusCase("icon file", "garments/top/favicon.png",
                   encode(garment_photo((256, 256), seed=27), "ICO", sizes=[(256, 256)]),
                   "InvalidURL"),
    ]
    assert len({case.name for case in cases}) == len(cases)
    return cases


def photo(size: tuple[int, int], seed: int, grain: float = 0.08) -> Image.Image:
    """A person standing in a lit room: a graded backdrop, a floor, a figure of
    photographic proportions, soft edges and sensor grain."""
    rng = random.Random(seed)
    width, height = size
    small = (max(1, width // 4), max(1, height // 4))
    scene = _backdrop(small, rng)
    draw = ImageDraw.Draw(scene)
    w, h = small
    draw.rectangle((0, int(h * 0.82), w, h), fill=_color(rng, 60, 120))  # floor
    skin, top, bottom = _color(rng, 150, 230), _color(rng, 20, 220), _color(rng, 20, 120)
    cx = w / 2 + rng.uniform(-0.05, 0.05) * w
    unit = min(w / 2.2, h / 8.5)  # head height, about 1/8 of the figure
    y = h * 0.08
    draw.ellipse((cx - unit * 0.4, y, cx + unit * 0.4, y + unit), fill=skin)
    draw.rounded_rectangle((cx - unit, y + unit * 1.1, cx + unit, y + unit * 3.6),
                           radius=max(1, int(unit * 0.3)), fill=top)
    for side in (-1, 1):
        draw.line((cx + side * unit, y + unit * 1.3, cx + side * unit * 1.3, y + unit * 3.8),
                  fill=top, width=max(1, int(unit * 0.4)))
        draw.line((cx + side * unit * 0.45, y + unit * 3.6, cx + side * unit * 0.5,
                   y + unit * 7.6), fill=bottom, width=max(1, int(unit * 0.7)))
    return _develop(scene, size, rng, grain)


def garment_photo(size: tuple[int, int], seed: int, grain: float = 0.06) -> Image.Image:
    """A flat-lay T-shirt on a light table, shot from above."""
    rng = random.Random(seed)
    small = (max(1, size[0] // 4), max(1, size[1] // 4))
    scene = Image.new("RGB", small, _color(rng, 225, 250))
    ImageDraw.Draw(scene).polygon(_tee_outline(small), fill=_color(rng, 20, 200))
    return _develop(scene, size, rng, grain)


def cutout(seed: int) -> Image.Image:
    """A garment cut out on a transparent background (RGBA), as shops export them."""
    size = (700, 800)
    rgba = garment_photo(size, seed).convert("RGBA")
    mask = Image.new("L", (size[0] // 4, size[1] // 4), 0)
    ImageDraw.Draw(mask).polygon(_tee_outline(mask.size), fill=255)
    rgba.putalpha(mask.resize(size, Image.Resampling.BILINEAR))
    return rgba


def phone_jpeg(display: Image.Image, orientation: int) -> bytes:
    """A JPEG stored the way the sensor read it, with the EXIF orientation that
    tells a viewer how to turn it upright."""
    stored = {6: Image.Transpose.ROTATE_90, 3: Image.Transpose.ROTATE_180}[orientation]
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "Corpus Phone Co."  # Make
    exif[0x0110] = "Corpus 15"  # Model
    return encode(display.transpose(stored), "JPEG", quality=90, exif=exif)


def mpo(display: Image.Image) -> bytes:
    """A multi-picture JPEG as phones write for depth or bursts: the photo, then a
    smaller second picture."""
    second = display.resize((display.width // 2, display.height // 2)).convert("L").convert("RGB")
    return encode(display, "MPO", quality=90, save_all=True, append_images=[second])


def animated(display: Image.Image, fmt: str) -> bytes:
    base = display.resize((300, 600))
    frames = [base.rotate(angle, fillcolor=(230, 230, 230)) for angle in (0, 4, 8)]
    if fmt == "GIF":
        frames = [frame.quantize(64) for frame in frames]
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=120, loop=0)


def big_png(seed: int) -> bytes:
    """About 7 MB: a photo under heavy grain, which deflate cannot shrink."""
    size = (1500, 1650)
    grained = photo(size, seed, grain=0.0)
    noise = Image.merge("RGB", [_noise(size, seed + channel) for channel in range(3)])
    return encode(Image.blend(grained, noise, 0.75), "PNG")


def big_jpeg(seed: int) -> bytes:
    """About 6 MB: a high-ISO shot saved at quality 100 without chroma subsampling."""
    size = (1200, 1700)
    grained = photo(size, seed, grain=0.0)
    noise = Image.merge("RGB", [_noise(size, seed + channel) for channel in range(3)])
    return encode(Image.blend(grained, noise, 0.3), "JPEG", quality=100, subsampling=0)


def heic(image: Image.Image) -> bytes:
    """A HEIC as phones write it (x265's fastest preset keeps the corpus quick)."""
    return encode(image, "HEIF", quality=70, enc_params={"preset": "ultrafast"})


def gray16_png(seed: int) -> bytes:
    """A 16-bit grayscale scan (Pillow mode I;16)."""
    gray = photo((400, 800), seed).convert("L")
    deep = gray.convert("I").point(lambda value: value * 257).convert("I;16")
    return encode(deep, "PNG")


def rgb48_png(seed: int) -> bytes:
    """A 16-bit-per-channel RGB PNG, as photo editors export them. Pillow cannot write
    one, so it is assembled here; Pillow reads it back as 8-bit RGB."""
    image = photo((300, 600), seed)
    stride = image.width * 3
    flat, rows = image.tobytes(), []
    for top in range(0, len(flat), stride):
        row = flat[top:top + stride]
        deep = bytearray(2 * stride)
        deep[0::2] = deep[1::2] = row  # v -> v * 257, the full 16-bit range
        rows.append(b"\x00" + deep)  # filter type None
    header = struct.pack(">IIBBBBB", image.width, image.height, 16, 2, 0, 0, 0)
    return (PNG_SIGNATURE + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", zlib.compress(b"".join(rows), 1)) + _png_chunk(b"IEND", b""))


def palette_png(seed: int) -> bytes:
    """A 64-color PNG whose backdrop color is marked transparent."""
    size = (500, 600)
    scene = Image.new("RGB", size, (0, 255, 0))
    garment = garment_photo(size, seed)
    mask = Image.new("L", (size[0] // 4, size[1] // 4), 0)
    ImageDraw.Draw(mask).polygon(_tee_outline(mask.size), fill=255)
    scene.paste(garment, mask=mask.resize(size))
    indexed = scene.quantize(64)
    return encode(indexed, "PNG", transparency=indexed.getpixel((0, 0)))


def png_padded_to(png: bytes, total: int) -> bytes:
    """The same PNG grown to exactly `total` bytes by a private ancillary chunk
    (which decoders skip), to probe the 5 KB boundary."""
    padding = total - len(png) - 12
    assert padding >= 0, (len(png), total)
    ihdr_end = 8 + 12 + 13
    return png[:ihdr_end] + _png_chunk(b"prVt", b"\x00" * padding) + png[ihdr_end:]


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares a huge RGB image, followed by a token of data:
    decoding it would allocate width x height x 3 bytes."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (PNG_SIGNATURE + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 1024)) + _png_chunk(b"IEND", b""))


def pdf_like() -> bytes:
    return (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
            b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n"
            b"%%EOF\n")


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    if fmt == "PNG":
        options.setdefault("compress_level", 1)  # grain does not deflate anyway; be quick
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _backdrop(size: tuple[int, int], rng: random.Random) -> Image.Image:
    """A wall lit from one side: two colors blended along a tilted gradient."""
    # The middle of a turned gradient, clear of the corners the turn leaves empty.
    ramp = Image.linear_gradient("L").rotate(rng.uniform(-30, 30)).crop((64, 64, 192, 192))
    top = Image.new("RGB", size, _color(rng, 150, 240))
    low = Image.new("RGB", size, _color(rng, 40, 140))
    return Image.composite(top, low, ramp.resize(size))


def _develop(scene: Image.Image, size: tuple[int, int], rng: random.Random,
             grain: float) -> Image.Image:
    """Scale the drawing up (the interpolation softens its edges like a lens) and add
    sensor grain."""
    image = scene.filter(ImageFilter.GaussianBlur(0.7)).resize(size, Image.Resampling.BILINEAR)
    if grain:
        noise = _noise(size, rng.randrange(1 << 30)).convert("RGB")
        image = Image.blend(image, noise, grain)
    return image


def _noise(size: tuple[int, int], seed: int) -> Image.Image:
    return Image.frombytes("L", size, random.Random(seed).randbytes(size[0] * size[1]))


def _tee_outline(size: tuple[int, int]) -> list[tuple[float, float]]:
    w, h = size
    points = [(0.35, 0.12), (0.65, 0.12), (0.92, 0.28), (0.82, 0.42), (0.72, 0.36),
              (0.72, 0.9), (0.28, 0.9), (0.28, 0.36), (0.18, 0.42), (0.08, 0.28)]
    return [(x * w, y * h) for x, y in points]


def _color(rng: random.Random, low: int, high: int) -> tuple[int, int, int]:
    return tuple(rng.randint(low, high) for _ in range(3))


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
