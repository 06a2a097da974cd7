"""Preflight of input images, before any paid provider call: each photo is checked
by its content (never its file name) against the image rules of the model family it
goes to (an ImageRules, passed in by the caller), what can be fixed faithfully is
fixed and recorded, and the rest is rejected with a message that names the file, the
rule and the fix. Pure: bytes in, result out; nothing here knows about S3 or Lambda.

prepare: one image through all of it; opening: format by content, header limits,
bounded decode; conformance: what keeps an image from going as it is; fixes:
orientation, colour modes, transparency; sizes: the size sent; encoding: re-encoding
within the byte limits; messages: InputRejected and its wording."""

from tryon.image_rules import MAX_INPUT_BYTES
from tryon.preflight.messages import InputRejected
from tryon.preflight.prepare import Prepared, prepare_image

__all__ = ["MAX_INPUT_BYTES", "InputRejected", "Prepared", "prepare_image"]
