"""DynamoDB adapter for checked images: what preflight found of one version of one
image against one set of rules (the fixes and where the fixed copy lives, or why it
was refused), so that every look naming the same image reuses it instead of
decoding it again. Keyed by content address: the bucket, key and version (a new
upload is a new version, never a stale record) and the rules' label.

Kept for less than the fixed copies in normalized/ (7 days' lifecycle), so a record
never points to a copy that is gone; read only while unexpired (TTL deletes late)."""

from __future__ import annotations

import hashlib
from typing import Any

from tryon.adapters.dynamo import Table, applied, to_dynamo

CHECKED_PK, CHECKED_SK = "CHECKED#", "CHECKED"
CHECKED_TTL_SECONDS = 5 * 24 * 3600
CHECK_LEASE_SECONDS = 60  # a claim to check an image lapses after this (its checker died)


def _key(bucket: str, key: str, version_id: str, rules: str) -> dict[str, str]:
    digest = hashlib.sha256(f"{bucket}\n{key}\n{version_id}\n{rules}".encode()).hexdigest()
    return {"pk": f"{CHECKED_PK}{digest}", "sk": CHECKED_SK}


class CheckedImages:
    def __init__(self, table: Table) -> None:
        self._t = table

    def get(self, bucket: str, key: str, version_id: str, rules: str, now: float
            ) -> dict[str, Any] | None:
        """The outcome recorded for this version and rules, if any and unexpired."""
        item = self._t.read(_key(bucket, key, version_id, rules))
        if item is None or item.get("expires_at", 0) <= now:
            return None
        return item.get("outcome")  # None while a claim stands

    def claim(self, bucket: str, key: str, version_id: str, rules: str, now: float) -> bool:
        """Take the check of this version and rules (True: decode it, then `put`); False
        while another's claim stands or its outcome is recorded."""
        return applied(
            self._t.table.put_item, Item=to_dynamo({
                **_key(bucket, key, version_id, rules), "image": f"s3://{bucket}/{key}",
                "expires_at": int(now) + CHECK_LEASE_SECONDS}),
            ConditionExpression="attribute_not_exists(pk) OR expires_at <= :now",
            ExpressionAttributeValues={":now": int(now)})

    def put(self, bucket: str, key: str, version_id: str, rules: str,
            outcome: dict[str, Any], now: float) -> None:
        """Record an outcome (the same for everyone who checks this version: a second
        writer writes what the first did)."""
        self._t.table.put_item(Item=to_dynamo({
            **_key(bucket, key, version_id, rules), "outcome": outcome,
            "image": f"s3://{bucket}/{key}", "expires_at": int(now) + CHECKED_TTL_SECONDS}))
