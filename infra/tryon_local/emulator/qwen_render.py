"""The simulated Qwen Image result: which references went where, at a glance.

Image 1 (the person) is the base, scaled into the requested canvas. A garment
is pasted where the instruction places it, in the phrases the pipeline writes
("the top from image 2", "the bottoms from image 3", "the dress from image
2"); a reference the instruction does not place is shown as a labelled
thumbnail. A strip of every reference, numbered as the instruction counts
them, sits in the top-left corner, and the SIMULATED banner names the model
and the task or call, as on the try-on composite.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from io import BytesIO

from PIL import Image, ImageDraw, ImageOps

from . import drawing
from .generation import GenerationRequest
from .images import DRESS_REGION, FACE_REGION, LEGS_REGION, TORSO_REGION

PLACEMENT = re.compile(r"the (top|bottoms|dress) from image (\d)", re.IGNORECASE)
NEW_FACE = re.compile(r"the face may change", re.IGNORECASE)
REGIONS = {"top": TORSO_REGION, "bottoms": LEGS_REGION, "dress": DRESS_REGION}
# Pasted in this order so a top's hem falls over the waistband, as on the try-on composite.
PASTE_ORDER = ("dress", "bottoms", "top")


def render_request(
    request: GenerationRequest, references: Sequence[bytes], model: str, label: str
) -> tuple[tuple[int, int], list[bytes]]:
    """The output size and the `n` result PNGs of a checked request whose
    references are downloaded, in order (run in a worker thread)."""
    figures = [drawing.open_rgb(data) for data in references]
    size = request.size or request.family.default_size(figures[-1].size)
    if request.n == 1:
        return size, [render_edit(figures, request.text, size, model, label)]
    return size, [
        render_edit(figures, request.text, size, model, f"{label} #{k}/{request.n}")
        for k in range(1, request.n + 1)
    ]


def placements(text: str, references: int) -> dict[int, str]:
    """Reference number -> garment, for every reference after the person that
    the instruction places (the first phrase naming it wins)."""
    placed: dict[int, str] = {}
    for match in PLACEMENT.finditer(text):
        number = int(match[2])
        if 2 <= number <= references:
            placed.setdefault(number, match[1].lower())
    return placed


def render_edit(
    figures: Sequence[Image.Image], text: str, size: tuple[int, int], model: str, label: str
) -> bytes:
    canvas, box = drawing.fit_into(figures[0], size)
    placed = placements(text, len(figures))
    for garment in PASTE_ORDER:
        for number, kind in placed.items():
            if kind == garment:
                region = drawing.region_in(box, REGIONS[garment])
                drawing.paste_garment(canvas, drawing.cut_out(figures[number - 1]), region)
    if NEW_FACE.search(text):
        drawing.mark_new_face(canvas, drawing.region_in(box, FACE_REGION))
    unplaced = [n for n in range(2, len(figures) + 1) if n not in placed]
    _draw_thumbnails(canvas, figures, unplaced)
    drawing.draw_banner(canvas, model, label)
    out = BytesIO()
    # Fast compression: these images are looked at once, not kept.
    canvas.save(out, format="PNG", compress_level=1)
    return out.getvalue()


def _draw_thumbnails(
    canvas: Image.Image, figures: Sequence[Image.Image], unplaced: Sequence[int]
) -> None:
    """The numbered strip of every reference (top left) and a larger thumbnail
    of each reference the instruction did not place (top right)."""
    width, height = canvas.size
    small = max(32, min(width, height) // 9)
    large = max(48, min(width, height) // 5)
    gap = max(3, small // 10)
    # (caption, reference number, top-left corner, side) of every thumbnail.
    cells = [
        (str(n), n, (gap + (n - 1) * (small + gap), gap), small)
        for n in range(1, len(figures) + 1)
    ]
    cells += [
        (f"image {n}", n, (width - gap - large, gap + i * (large + gap)), large)
        for i, n in enumerate(unplaced)
    ]

    backing = Image.new("RGBA", canvas.size, (0, 0, 0, 0))
    strip_right = gap + len(figures) * (small + gap)
    ImageDraw.Draw(backing).rectangle((0, 0, strip_right, small + 2 * gap), fill=(15, 15, 20, 140))
    drawing.composite(canvas, backing)
    for _, number, (x, y), side in cells:
        thumb = ImageOps.contain(figures[number - 1], (side, side), Image.Resampling.LANCZOS)
        canvas.paste(thumb, (x + (side - thumb.width) // 2, y + (side - thumb.height) // 2))

    overlay = Image.new("RGBA", canvas.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    for caption, _, (x, y), side in cells:
        draw.rectangle((x, y, x + side, y + side), outline=(255, 215, 0, 230), width=2)
        font = drawing.default_font(max(10, side // 4 if side == small else side // 7))
        left, top, right, bottom = draw.textbbox((0, 0), caption, font=font)
        tag = (x, y, x + right - left + 6, y + bottom - top + 6)
        draw.rectangle(tag, fill=(255, 215, 0, 230))
        centre = ((tag[0] + tag[2]) // 2, (tag[1] + tag[3]) // 2)
        drawing.centred_text(draw, centre, caption, font, (20, 20, 20, 255))
    drawing.composite(canvas, overlay)
