"""The size preflight sends an image at, by the rules' sides."""

from __future__ import annotations

from tryon.image_rules import ImageRules


def scaled(width: int, height: int, rules: ImageRules) -> tuple[int, int]:
    """The size preflight sends, keeping the aspect ratio: the longer side fitted into
    max_side, or the shorter side upscaled to min_side where the rules say so, or the
    size as it is. Within the rules unless the aspect ratio rules it out."""
    if max(width, height) > rules.max_side:
        return fit(width, height, rules.max_side)
    if rules.upscale_small and min(width, height) < rules.min_side:
        if width <= height:
            return rules.min_side, round(height * rules.min_side / width)
        return round(width * rules.min_side / height), rules.min_side
    return width, height


def fit(width: int, height: int, max_side: int) -> tuple[int, int]:
    """The size with the longer side at max_side, keeping the aspect ratio."""
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))
