"""Draws the sample inputs of the demo: a person and three flat-lay garments.

Everything is drawn from shapes here, so the images carry no licence beyond
this repository's. Deterministic: the same Pillow gives the same bytes. Run
once and commit the outputs:

    python infra/tryon_local/samples/generate.py

Each output satisfies the provider's input rules (5 KB-5 MB, every side
150-4096 px, JPEG); the script checks that before writing.
"""

from __future__ import annotations

import math
import random
from io import BytesIO
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageFilter

HERE = Path(__file__).resolve().parent
MIN_BYTES, MAX_BYTES = 5 * 1024, 150 * 1024  # the provider's floor; our own ceiling
MIN_SIDE, MAX_SIDE = 150, 4096
SEED = 20250630

PAPER = (248, 247, 244)  # the flat-lay backdrop


def _grain(image: Image.Image, amount: int, seed: int) -> Image.Image:
    """Add faint, seeded noise: it looks like a photo and keeps JPEGs above 5 KB."""
    rng = random.Random(seed)
    noise = Image.frombytes("L", image.size, rng.randbytes(image.width * image.height))
    noise = noise.point(lambda v: v * amount // 255)
    offset = Image.new("L", image.size, amount // 2)
    bands = [ImageChops.subtract(ImageChops.add(b, noise), offset) for b in image.split()]
    return Image.merge("RGB", bands)


def _pattern_fill(base: Image.Image, mask: Image.Image, pattern: Image.Image) -> None:
    """Paint `pattern` onto `base` inside the garment's silhouette."""
    base.paste(pattern, (0, 0), mask)


def person() -> Image.Image:
    """A stylised full-body, front-facing figure, proportioned to the emulator's
    face/torso/legs regions (images.py) so pasted garments land on the body."""
    w, h = 512, 1024
    image = Image.new("RGB", (w, h))
    draw = ImageDraw.Draw(image)
    for y in range(h):  # a soft studio backdrop, lighter at the top
        shade = 236 - y * 22 // h
        draw.line([(0, y), (w, y)], fill=(shade - 6, shade, shade + 6))
    draw.ellipse((120, 945, 392, 995), fill=(196, 200, 206))  # floor shadow

    skin, skin_dark = (226, 180, 150), (196, 150, 122)
    hair = (60, 42, 32)
    shirt, shirt_dark = (205, 208, 212), (175, 178, 184)
    trousers, trousers_dark = (70, 78, 92), (52, 58, 70)
    shoes = (35, 35, 40)

    # Legs and shoes.
    draw.polygon([(180, 490), (254, 490), (250, 935), (196, 935)], fill=trousers)
    draw.polygon([(258, 490), (332, 490), (316, 935), (262, 935)], fill=trousers)
    draw.line([(256, 500), (256, 930)], fill=trousers_dark, width=4)
    draw.rounded_rectangle((186, 928, 252, 960), radius=12, fill=shoes)
    draw.rounded_rectangle((260, 928, 326, 960), radius=12, fill=shoes)
    # Arms (behind the torso), hands.
    draw.polygon([(150, 200), (182, 215), (160, 540), (126, 536)], fill=skin)
    draw.polygon([(362, 200), (330, 215), (352, 540), (386, 536)], fill=skin)
    draw.ellipse((118, 528, 164, 584), fill=skin_dark)
    draw.ellipse((348, 528, 394, 584), fill=skin_dark)
    # Torso: a plain fitted top with short sleeves and a waistband.
    draw.polygon(
        [(230, 182), (282, 182), (360, 198), (392, 300), (350, 316), (338, 500),
         (174, 500), (162, 316), (120, 300), (152, 198)],
        fill=shirt,
    )
    draw.line([(162, 316), (174, 500)], fill=shirt_dark, width=3)
    draw.line([(350, 316), (338, 500)], fill=shirt_dark, width=3)
    draw.rectangle((174, 488, 338, 506), fill=trousers_dark)
    # Neck, head, hair and a simple face.
    draw.rectangle((236, 150, 276, 192), fill=skin_dark)
    draw.arc((228, 166, 284, 200), 0, 180, fill=shirt_dark, width=4)
    draw.ellipse((200, 34, 312, 168), fill=skin)
    draw.chord((194, 24, 318, 120), 180, 360, fill=hair)
    draw.rectangle((194, 70, 206, 120), fill=hair)
    draw.rectangle((306, 70, 318, 120), fill=hair)
    for cx in (232, 280):
        draw.ellipse((cx - 9, 92, cx + 9, 104), fill=(250, 250, 250))
        draw.ellipse((cx - 4, 94, cx + 4, 102), fill=(50, 40, 30))
        draw.line([(cx - 12, 84), (cx + 10, 82)], fill=hair, width=3)
    draw.line([(256, 104), (250, 126), (258, 128)], fill=skin_dark, width=2)
    draw.arc((236, 126, 276, 148), 20, 160, fill=(170, 80, 80), width=3)

    image = image.filter(ImageFilter.SMOOTH)
    return _grain(image, 10, SEED)


def top() -> Image.Image:
    """A teal T-shirt, flat-lay, with orange stripes and a yellow star."""
    w, h = 600, 600
    image = Image.new("RGB", (w, h), PAPER)
    outline = [
        (230, 70), (262, 92), (338, 92), (370, 70), (470, 110), (560, 230), (480, 280),
        (450, 240), (450, 540), (150, 540), (150, 240), (120, 280), (40, 230), (130, 110),
    ]
    mask = Image.new("L", (w, h), 0)
    ImageDraw.Draw(mask).polygon(outline, fill=255)

    pattern = Image.new("RGB", (w, h), (0, 128, 128))
    pd = ImageDraw.Draw(pattern)
    for y in range(150, 560, 70):
        pd.rectangle((0, y, w, y + 22), fill=(244, 134, 52))
    # A five-pointed star on the chest.
    cx, cy, outer, inner = 300, 300, 80, 33
    star = []
    for i in range(10):
        radius = outer if i % 2 == 0 else inner
        angle = -math.pi / 2 + i * math.pi / 5
        star.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
    pd.polygon(star, fill=(255, 214, 10), outline=(120, 80, 0), width=3)
    _pattern_fill(image, mask, pattern)

    draw = ImageDraw.Draw(image)
    draw.polygon(outline, outline=(0, 80, 80), width=4)
    draw.arc((230, 40, 370, 130), 0, 180, fill=(0, 80, 80), width=8)  # neckline
    return _grain(image, 8, SEED + 1)


def bottom() -> Image.Image:
    """Indigo denim trousers, flat-lay, with a twill texture and seams."""
    w, h = 480, 720
    image = Image.new("RGB", (w, h), PAPER)
    outline = [(110, 40), (370, 40), (400, 680), (270, 680), (240, 250), (210, 680), (80, 680)]
    mask = Image.new("L", (w, h), 0)
    ImageDraw.Draw(mask).polygon(outline, fill=255)

    pattern = Image.new("RGB", (w, h), (42, 62, 122))
    pd = ImageDraw.Draw(pattern)
    for x in range(-h, w, 7):  # diagonal twill lines
        pd.line([(x, 0), (x + h, h)], fill=(58, 80, 146), width=2)
    pd.rectangle((0, 40, w, 78), fill=(30, 44, 92))  # waistband
    _pattern_fill(image, mask, pattern)

    draw = ImageDraw.Draw(image)
    stitch = (214, 160, 60)
    draw.polygon(outline, outline=(24, 34, 72), width=4)
    draw.line([(240, 80), (240, 250)], fill=stitch, width=3)  # fly
    draw.line([(150, 100), (200, 170)], fill=stitch, width=3)  # pockets
    draw.line([(330, 100), (280, 170)], fill=stitch, width=3)
    draw.rectangle((232, 50, 248, 68), fill=(190, 190, 196))  # button
    return _grain(image, 8, SEED + 2)


def dress() -> Image.Image:
    """A red sleeveless dress, flat-lay, with white polka dots."""
    w, h = 500, 800
    image = Image.new("RGB", (w, h), PAPER)
    outline = [
        (180, 40), (205, 40), (215, 110), (285, 110), (295, 40), (320, 40), (345, 160),
        (325, 330), (440, 740), (60, 740), (175, 330), (155, 160),
    ]
    mask = Image.new("L", (w, h), 0)
    ImageDraw.Draw(mask).polygon(outline, fill=255)

    pattern = Image.new("RGB", (w, h), (200, 30, 45))
    pd = ImageDraw.Draw(pattern)
    for row, y in enumerate(range(20, h, 48)):
        for x in range(20 + (row % 2) * 24, w, 48):
            pd.ellipse((x - 9, y - 9, x + 9, y + 9), fill=(252, 248, 240))
    pd.rectangle((0, 318, w, 340), fill=(120, 10, 25))  # waist sash
    _pattern_fill(image, mask, pattern)

    ImageDraw.Draw(image).polygon(outline, outline=(110, 10, 20), width=4)
    return _grain(image, 8, SEED + 3)


def _encode(image: Image.Image, name: str) -> bytes:
    out = BytesIO()
    image.save(out, format="JPEG", quality=86)
    data = out.getvalue()
    if not MIN_BYTES <= len(data) <= MAX_BYTES:
        raise SystemExit(f"{name}: {len(data)} bytes is outside {MIN_BYTES}-{MAX_BYTES}")
    if not all(MIN_SIDE <= side <= MAX_SIDE for side in image.size):
        raise SystemExit(f"{name}: {image.size} has a side outside {MIN_SIDE}-{MAX_SIDE} px")
    return data


def main() -> None:
    for name, draw in (("person", person), ("top", top), ("bottom", bottom), ("dress", dress)):
        data = _encode(draw(), name)
        (HERE / f"{name}.jpg").write_bytes(data)
        print(f"{name}.jpg: {len(data)} bytes")


if __name__ == "__main__":
    main()
