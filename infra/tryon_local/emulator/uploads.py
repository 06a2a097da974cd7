"""Temporary file upload (CONTRACT.md, "Temporary file upload").

`getPolicy` hands out a signed OSS POST policy for a fresh upload directory;
the form upload is checked the way OSS checks a PostObject; a model call that
sends `X-DashScope-OssResourceResolve: enable` may then name the file as
`oss://{key}`. Files live 48 h and serve only the model named when the policy
was issued (the provider's "file-model binding").
"""

from __future__ import annotations

import base64
import binascii
import email.errors
import email.parser
import email.policy
import hashlib
import hmac
import json
import math
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .clock import PROVIDER_TZ, EmulatorClock
from .images import TRYON_RULES, InputRules

# Provider durations and values, from its getPolicy example; the clock scales
# the durations like every other.
POLICY_LIFETIME = 300  # `expire_in_seconds`
FILE_LIFETIME = 48 * 3600  # an uploaded file can be used for 48 h
CAPACITY_LIMIT_MB = 999_999_999
OBJECT_ACL = "private"
FORBID_OVERWRITE = "true"

OSS_SCHEME = "oss://"
RESOLVE_HEADER = "X-DashScope-OssResourceResolve"
# Room for the form's text fields on top of the largest accepted file.
FORM_OVERHEAD = 1024 * 1024

_BUCKET = "dashscope-instant-emulator"
_EXPIRATION_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


class UploadRejected(Exception):
    """The form upload fails; answered as an OSS XML error."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Form:
    """A PostObject form: the text fields before `file`, and the file itself."""

    fields: dict[str, str]
    file: bytes | None


@dataclass(frozen=True)
class StoredUpload:
    data: bytes
    model: str
    expires: float  # emulator clock


def parse_form(content_type: str, body: bytes) -> Form:
    """Parse a multipart/form-data body with the standard library's MIME parser.

    Like OSS, `file` must be the last field: anything after it is ignored. The
    first of repeated fields wins.
    """
    malformed = UploadRejected(
        400,
        "MalformedPOSTRequest",
        "The body of your POST request is not well-formed multipart/form-data.",
    )
    if not content_type.lower().startswith("multipart/form-data"):
        raise malformed
    head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    boundary_defects = (
        email.errors.StartBoundaryNotFoundDefect, email.errors.CloseBoundaryNotFoundDefect,
    )
    if not message.is_multipart() or any(isinstance(d, boundary_defects) for d in message.defects):
        raise malformed
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if not isinstance(name, str) or not isinstance(payload, bytes):
            raise malformed
        if name == "file":
            return Form(fields, payload)
        try:
            fields.setdefault(name, payload.decode())
        except UnicodeDecodeError:
            raise malformed from None
    return Form(fields, None)


class UploadStore:
    """Issued upload directories and the files uploaded into them."""

    def __init__(self, clock: EmulatorClock, max_file_mb: int) -> None:
        self._clock = clock
        self.max_file_mb = max_file_mb
        self.max_file_bytes = max_file_mb * 1024 * 1024
        # Per process, like the result-URL secret: policies from another run fail.
        self._secret = secrets.token_bytes(32)
        self.access_key_id = "LTAI5t" + secrets.token_hex(9)
        # The account's folder: the provider's upload_dir names the account first.
        self._account = secrets.token_hex(8)
        self._dirs: dict[str, tuple[str, float]] = {}  # upload_dir -> (model, policy expiry)
        self._files: dict[str, StoredUpload] = {}

    # --- step 1: getPolicy ---------------------------------------------------------

    def issue_policy(self, model: str, upload_host: str) -> dict[str, object]:
        """The `data` of a getPolicy answer, for uploads to `upload_host`."""
        now = self._clock.now()
        lifetime = self._clock.scaled(POLICY_LIFETIME)
        day = datetime.fromtimestamp(now, PROVIDER_TZ).strftime("%Y-%m-%d")
        upload_dir = f"dashscope-instant/{self._account}/{day}/{uuid.uuid4().hex}"
        expiration = datetime.fromtimestamp(now + lifetime, UTC).strftime(_EXPIRATION_FORMAT)
        document = {
            # OSS prints milliseconds; %f gives microseconds.
            "expiration": expiration[:-4] + "Z",
            "conditions": [
                {"bucket": _BUCKET},
                ["starts-with", "$key", upload_dir + "/"],
                ["content-length-range", 0, self.max_file_bytes],
                {"x-oss-object-acl": OBJECT_ACL},
                {"x-oss-forbid-overwrite": FORBID_OVERWRITE},
            ],
        }
        policy = base64.b64encode(json.dumps(document).encode()).decode()
        self._dirs[upload_dir] = (model, now + lifetime)
        return {
            "policy": policy,
            "signature": self._sign(policy),
            "upload_dir": upload_dir,
            "upload_host": upload_host,
            # The scaled lifetime, so a client that trusts it renews in time.
            "expire_in_seconds": max(1, math.ceil(lifetime)),
            "max_file_size_mb": self.max_file_mb,
            "capacity_limit_mb": CAPACITY_LIMIT_MB,
            "oss_access_key_id": self.access_key_id,
            "x_oss_object_acl": OBJECT_ACL,
            "x_oss_forbid_overwrite": FORBID_OVERWRITE,
        }

    # --- step 2: the form upload ---------------------------------------------------

    def accept(self, form: Form) -> str:
        """Store the form's file, checked like an OSS PostObject; returns its key."""
        fields = form.fields
        for name in ("OSSAccessKeyId", "Signature", "policy"):
            if not fields.get(name):
                raise UploadRejected(
                    403, "AccessDenied", f"The form field {name} is missing or empty."
                )
        if fields["OSSAccessKeyId"] != self.access_key_id:
            raise UploadRejected(
                403,
                "InvalidAccessKeyId",
                "The OSS Access Key Id you provided does not exist in our records.",
            )
        policy = fields["policy"]
        if not hmac.compare_digest(self._sign(policy), fields["Signature"]):
            raise UploadRejected(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you "
                "provided. Check your key and signing method.",
            )
        document = self._decode(policy)
        now = self._clock.now()
        if now > self._expiry(document):
            raise UploadRejected(
                403, "AccessDenied", "Invalid according to Policy: Policy expired."
            )
        if form.file is None:
            raise UploadRejected(403, "AccessDenied", "The form field file is missing.")
        upload_dir = self._check_conditions(document, fields, len(form.file))
        issued = self._dirs.get(upload_dir)
        if issued is None:
            # Signed and current, but issued before a reset of the emulator.
            raise UploadRejected(
                403, "AccessDenied", "Invalid according to Policy: unknown upload directory."
            )
        key = fields["key"]
        existing = self._files.get(key)
        if existing is not None and now <= existing.expires and (
            fields.get("x-oss-forbid-overwrite", "").lower() == "true"
        ):
            raise UploadRejected(
                409,
                "FileAlreadyExists",
                "The object you specified already exists and can not be overwritten.",
            )
        self._files[key] = StoredUpload(
            data=form.file,
            model=issued[0],
            expires=now + self._clock.scaled(FILE_LIFETIME),
        )
        return key

    def _check_conditions(self, document: dict[str, Any], fields: dict[str, str], size: int) -> str:
        """Apply the policy's conditions to the form; returns the upload directory.

        The document was signed by this store, so its conditions have the
        shapes issue_policy writes.
        """
        upload_dir = ""
        for condition in document.get("conditions", []):
            failed = UploadRejected(
                403,
                "AccessDenied",
                f"Invalid according to Policy: Policy Condition failed: {json.dumps(condition)}",
            )
            if isinstance(condition, dict):
                for name, value in condition.items():
                    # The bucket is the upload host itself, not a form field.
                    if name != "bucket" and fields.get(name) != value:
                        raise failed
            elif condition[0] == "starts-with" and condition[1] == "$key":
                upload_dir = condition[2].rstrip("/")
                # A key is `{upload_dir}/{filename}`: the directory alone is no file.
                if not fields.get("key", "").startswith(condition[2]) or (
                    len(fields["key"]) == len(condition[2])
                ):
                    raise failed
            elif condition[0] == "content-length-range":
                if size > condition[2]:
                    raise UploadRejected(
                        400,
                        "EntityTooLarge",
                        "Your proposed upload exceeds the maximum allowed size "
                        f"({self.max_file_mb} MB).",
                    )
                if size < condition[1]:
                    raise UploadRejected(
                        400, "EntityTooSmall", "Your proposed upload is smaller than allowed."
                    )
        return upload_dir

    # --- step 3: oss:// in a model call --------------------------------------------

    def resolve(
        self, field: str, url: str, model: str, enabled: bool, rules: InputRules = TRYON_RULES
    ) -> bytes | None:
        """The uploaded bytes an `oss://` URL names, or None for any other URL.

        Raises InputRejected when the resolve header was not sent (a bad
        reference), or the file is unknown, expired or uploaded for another
        model (it cannot be fetched); `rules` give the codes.
        """
        if not url.lower().startswith(OSS_SCHEME):
            return None
        if not enabled:
            raise rules.reject_reference(
                f"{field}: {url} is a temporary-upload URL; it is only resolved when the "
                f"request carries the header {RESOLVE_HEADER}: enable.",
            )
        stored = self._files.get(url[len(OSS_SCHEME) :])
        if stored is None or self._clock.now() > stored.expires:
            raise rules.reject_unreachable(
                f"{field}: {url} was not found or expired; uploaded files live 48 hours.",
            )
        if stored.model != model:
            raise rules.reject_unreachable(
                f"{field}: {url} was uploaded for model {stored.model}, not {model}; "
                "files cannot be shared across models.",
            )
        return stored.data

    # --- housekeeping ----------------------------------------------------------------

    def expire(self, now: float) -> None:
        for upload_dir in [d for d, (_, until) in self._dirs.items() if now > until]:
            del self._dirs[upload_dir]
        for key in [k for k, f in self._files.items() if now > f.expires]:
            del self._files[key]

    def clear(self) -> None:
        self._dirs.clear()
        self._files.clear()

    def __len__(self) -> int:
        return len(self._files)

    def _sign(self, policy: str) -> str:
        # OSS's POST signature: base64 of HMAC-SHA1 over the base64 policy.
        digest = hmac.new(self._secret, policy.encode(), hashlib.sha1).digest()
        return base64.b64encode(digest).decode()

    @staticmethod
    def _decode(policy: str) -> dict[str, Any]:
        try:
            document = json.loads(base64.b64decode(policy, validate=True))
        except (binascii.Error, ValueError):
            document = None
        if not isinstance(document, dict):
            raise UploadRejected(400, "InvalidPolicyDocument", "The policy is not valid JSON.")
        return document

    @staticmethod
    def _expiry(document: dict[str, Any]) -> float:
        try:
            moment = datetime.strptime(str(document.get("expiration")), _EXPIRATION_FORMAT)
        except ValueError:
            raise UploadRejected(
                400, "InvalidPolicyDocument", "The policy has no valid expiration."
            ) from None
        return moment.replace(tzinfo=UTC).timestamp()
