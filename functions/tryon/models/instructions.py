"""The instruction a Qwen Image model gets for a look: who wears what, named by
the references' positions (image 1 is always the person), and what must not
change. Reviewed text: a change here changes every Qwen image, so keep the
phrases "the top / the bottoms / the dress from image N" (the emulator places
garments by them) and keep every variant under the provider's 800 characters."""

from __future__ import annotations

from dataclasses import dataclass

MAX_INSTRUCTION_CHARS = 800  # the provider's limit for the one text item
MAX_RETAILER_CHARS = 300  # what a manifest may add

_PRESERVE = ("Keep the person's face, hair, pose, body shape and the background of image 1 "
             "unchanged.")
_PRESERVE_NEW_FACE = ("Keep the person's hair, pose, body shape and the background of image 1 "
                      "unchanged; the face may change.")
_FIDELITY = "Reproduce the garments' colours, fabric, patterns and logos exactly."


@dataclass(frozen=True)
class Outfit:
    """What a look puts on the person, in reference order after the person."""

    top: bool = False
    bottom: bool = False
    dress: bool = False
    keep: str | None = None  # "top" | "bottom": the person's own stays on
    restore_face: bool = True
    extra: str | None = None  # the retailer's own words, appended


def reference_roles(outfit: Outfit) -> list[str]:
    """The roles of the references in the order they are sent: person first, then
    the top (or dress), then the bottom."""
    roles = ["person"]
    if outfit.top or outfit.dress:
        roles.append("top")
    if outfit.bottom:
        roles.append("bottom")
    return roles


def instruction_for(outfit: Outfit) -> str:
    if outfit.dress:
        wear = ("Dress the person in image 1 in the dress from image 2, worn alone in place of "
                "their top and bottoms.")
    elif outfit.top and outfit.bottom:
        wear = "Dress the person in image 1 in the top from image 2 and the bottoms from image 3."
    elif outfit.top:
        wear = "Dress the person in image 1 in the top from image 2"
        wear += ("; keep their own bottoms unchanged." if outfit.keep == "bottom"
                 else "; choose bottoms that go with it.")
    elif outfit.bottom:
        wear = "Dress the person in image 1 in the bottoms from image 2"
        wear += ("; keep their own top unchanged." if outfit.keep == "top"
                 else "; choose a top that goes with them.")
    else:
        raise ValueError("a look needs a top, a bottom or a dress")
    parts = [wear, _PRESERVE if outfit.restore_face else _PRESERVE_NEW_FACE, _FIDELITY]
    if outfit.extra:
        parts.append(outfit.extra.strip())
    text = " ".join(parts)
    if len(text) > MAX_INSTRUCTION_CHARS:  # guarded by the manifest's 300-character limit
        raise ValueError(f"instruction of {len(text)} characters; the provider takes "
                         f"{MAX_INSTRUCTION_CHARS}")
    return text
