"""Pillow helpers the simulated results share: the try-on composite
(`images.py`), the Qwen Image render and the parsing crops."""

from __future__ import annotations

from io import BytesIO

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont, ImageOps

Box = tuple[int, int, int, int]  # left, top, right, bottom in pixels
Cutout = tuple[Image.Image, Image.Image]  # a garment and its mask, cropped to the garment
Font = ImageFont.ImageFont | ImageFont.FreeTypeFont


def open_rgb(data: bytes) -> Image.Image:
    with Image.open(BytesIO(data)) as image:
        # Respect camera orientation, and flatten transparency onto white.
        upright = ImageOps.exif_transpose(image).convert("RGBA")
    flat = Image.new("RGB", upright.size, (255, 255, 255))
    flat.paste(upright, mask=upright.getchannel("A"))
    return flat


def fit_into(image: Image.Image, size: tuple[int, int]) -> tuple[Image.Image, Box]:
    """Scale to fit inside `size` keeping the aspect ratio; pad with the backdrop colour."""
    scaled = ImageOps.contain(image, size, Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", size, backdrop_colour(image))
    left = (size[0] - scaled.width) // 2
    top = (size[1] - scaled.height) // 2
    canvas.paste(scaled, (left, top))
    return canvas, (left, top, left + scaled.width, top + scaled.height)


def backdrop_colour(image: Image.Image) -> tuple[int, int, int]:
    """The colour of a plain background, taken as the median of the four corners."""
    w, h = image.width - 1, image.height - 1
    corners = [image.getpixel(xy) for xy in ((0, 0), (w, 0), (0, h), (w, h))]
    channels = zip(*corners, strict=True)
    return tuple(sorted(c)[len(corners) // 2] for c in channels)  # type: ignore[return-value]


def region_in(box: Box, fractions: tuple[float, float, float, float]) -> Box:
    """The part of `box` that `fractions` (left, top, right, bottom) describe."""
    left, top, right, bottom = box
    w, h = right - left, bottom - top
    fl, ft, fr, fb = fractions
    return (left + round(fl * w), top + round(ft * h), left + round(fr * w), top + round(fb * h))


def cut_out(garment: Image.Image) -> Cutout:
    mask = garment_mask(garment)
    bbox = mask.getbbox()
    if bbox is None:
        return garment, Image.new("L", garment.size, 235)
    return garment.crop(bbox), mask.crop(bbox)


def paste_garment(canvas: Image.Image, cutout: Cutout, region: Box) -> None:
    garment, mask = cutout
    left, top, right, bottom = region
    scale = min((right - left) / garment.width, (bottom - top) / garment.height)
    size = (max(1, round(garment.width * scale)), max(1, round(garment.height * scale)))
    x = left + (right - left - size[0]) // 2
    y = top + (bottom - top - size[1]) // 2
    canvas.paste(
        garment.resize(size, Image.Resampling.LANCZOS),
        (x, y),
        mask=mask.resize(size, Image.Resampling.LANCZOS),
    )


def garment_mask(garment: Image.Image) -> Image.Image:
    """Cut a flat-lay garment out of its plain background, with soft edges.

    Background is what differs little from the corner colour *and* touches the
    border, so a white print inside the garment stays opaque.
    """
    plain = Image.new("RGB", garment.size, backdrop_colour(garment))
    r, g, b = ImageChops.difference(garment, plain).split()
    strongest = ImageChops.lighter(ImageChops.lighter(r, g), b)
    mask = strongest.point(lambda v: 255 if v > 32 else 0)
    coverage = mask.histogram()[255] / (mask.width * mask.height)
    if not 0.05 <= coverage <= 0.97:
        # No plain background to remove (a photo, or a garment filling the
        # frame): paste the whole picture so the input is still recognisable.
        return Image.new("L", garment.size, 235)
    # Pillow's flood fill is pure Python, so it runs on a thumbnail; the
    # full-size threshold keeps the edges sharp, the thumbnail fills the holes.
    small = mask.copy()
    small.thumbnail((_FILL_SIDE, _FILL_SIDE), Image.Resampling.NEAREST)
    w, h = small.width - 1, small.height - 1
    for corner in ((0, 0), (w, 0), (0, h), (w, h)):
        if small.getpixel(corner) == 0:
            ImageDraw.floodfill(small, corner, _OUTSIDE)
    inside = small.point(lambda v: 0 if v == _OUTSIDE else 255)
    inside = inside.resize(mask.size, Image.Resampling.NEAREST).filter(ImageFilter.MinFilter(5))
    mask = ImageChops.lighter(mask, inside)
    return mask.filter(ImageFilter.MedianFilter(5)).filter(ImageFilter.GaussianBlur(1.2))


_FILL_SIDE = 160  # thumbnail side for finding the background
_OUTSIDE = 128  # marker for background pixels reached from the border


def default_font(size: int) -> Font:
    try:
        return ImageFont.load_default(size=size)
    except (OSError, ImportError):
        # A Pillow built without FreeType: the small bitmap font still reads.
        return ImageFont.load_default()


def mark_new_face(canvas: Image.Image, region: Box) -> None:
    overlay = Image.new("RGBA", canvas.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    draw.rectangle(region, fill=(255, 200, 40, 90), outline=(255, 170, 0, 230), width=3)
    font = default_font(max(12, (region[2] - region[0]) // 6))
    centre = ((region[0] + region[2]) // 2, (region[1] + region[3]) // 2)
    centred_text(draw, centre, "new face", font, (40, 20, 0, 255))
    composite(canvas, overlay)


def draw_banner(canvas: Image.Image, model: str, label: str) -> None:
    """A translucent band across the bottom: SIMULATED, the model and `label`
    (which task or call made the image)."""
    width, height = canvas.size
    band = max(36, height // 9)
    overlay = Image.new("RGBA", canvas.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    draw.rectangle((0, height - band, width, height), fill=(15, 15, 20, 165))
    top = height - band
    centred_text(
        draw, (width // 2, top + band * 2 // 5), "SIMULATED",
        default_font(max(14, band // 2)), (255, 215, 0, 255),
    )
    centred_text(
        draw, (width // 2, top + band * 4 // 5), f"{model} | {label}",
        default_font(max(10, band // 5)), (240, 240, 240, 255),
    )
    composite(canvas, overlay)


def centred_text(
    draw: ImageDraw.ImageDraw,
    centre: tuple[int, int],
    text: str,
    font: Font,
    fill: tuple[int, int, int, int],
) -> None:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    x = centre[0] - (left + right) / 2
    y = centre[1] - (top + bottom) / 2
    draw.text((x, y), text, font=font, fill=fill)


def composite(canvas: Image.Image, overlay: Image.Image) -> None:
    merged = Image.alpha_composite(canvas.convert("RGBA"), overlay).convert("RGB")
    canvas.paste(merged)
