"""DynamoDB adapter for the HTTP API's integrations (a retailer's system, each with
its own credentials and daily image quota): their keys, of which only a SHA-256
is stored, the AWS principals that may act for them, and the quota counters.

Why a plain SHA-256: a key is 256 random bits, so nothing can be guessed from
its hash; a slow password hash protects guessable secrets, and would only add
latency to every request."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

import boto3
from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from tryon.adapters.dynamo import applied, from_dynamo, to_dynamo
from tryon.adapters.slots import PRIORITIES

KEY_PREFIX = "tryon_"
MAX_KEY_CHARS = 100
INTEGRATIONS_PK = "INTEGRATIONS"  # one item per integration (sk: its name): one Query lists all
KEY_PK, KEY_SK = "APIKEY#", "APIKEY"
PRINCIPAL_PK, PRINCIPAL_SK = "PRINCIPAL#", "PRINCIPAL"
QUOTA_PK, QUOTA_SK = "QUOTA#", "QUOTA"
UPLOADS_SK = "UPLOADS"  # the day's upload forms and declared bytes, beside its images
QUOTA_TTL_SECONDS = 35 * 24 * 3600
# What the operator sets per integration (`tryon keys set`): instructions allowed; its
# weight in the turns of waiting looks (tryon.adapters.slots); the priorities it may
# ask for; the fraction of the daily budget it may spend; the most slots of a model
# its looks may hold at once. The pipeline's functions may read these alone (template).
SETTINGS = frozenset({"allow_instruction", "share", "priorities", "budget_share",
                      "max_in_flight"})


@dataclass(frozen=True)
class Integration:
    name: str
    daily_quota: int
    key_id: str | None = None  # the key that authenticated the request (None: IAM)
    allow_instruction: bool = False  # its looks may carry a retailer's instruction
    priorities: tuple[str, ...] = PRIORITIES  # the priorities its looks may ask for
    budget_share: float | None = None  # at most this fraction of the day's image budget

    def quota(self, daily_budget: int) -> int:
        """Its images per UTC day: its quota, and at most its share of the budget."""
        if self.budget_share is None:
            return self.daily_quota
        return min(self.daily_quota, int(self.budget_share * daily_budget))

    def context(self) -> dict[str, str | int | bool]:
        """As the token authorizer hands it to the API function (flat, and every value
        arrives there as a string: `from_context`)."""
        return {"integration": self.name, "key_id": self.key_id or "",
                "daily_quota": self.daily_quota, "allow_instruction": self.allow_instruction,
                "priorities": ",".join(self.priorities),
                "budget_share": "" if self.budget_share is None else str(self.budget_share)}

    @classmethod
    def from_context(cls, found: dict[str, Any]) -> Integration:
        share = str(found.get("budget_share") or "")
        return cls(str(found["integration"]), int(found["daily_quota"]),
                   str(found.get("key_id") or "") or None,
                   str(found.get("allow_instruction")).lower() == "true",
                   tuple(str(found.get("priorities") or ",".join(PRIORITIES)).split(",")),
                   float(share) if share else None)


def _integration(name: str, item: dict[str, Any], default_quota: int,
                 key_id: str | None = None) -> Integration:
    """The integration its item describes (the stack's default quota where it has none)."""
    quota, share = item.get("daily_quota"), item.get("budget_share")
    return Integration(name, default_quota if quota is None else int(quota), key_id,
                       bool(item.get("allow_instruction")),
                       tuple(item.get("priorities") or PRIORITIES),
                       None if share is None else float(share))


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def role_of(principal_arn: str) -> str:
    """The form a principal is stored and looked up by. A role's is
    `arn:aws:iam::ACCT:role/NAME`, from its ARN (any path dropped) or from an
    assumed-role session ARN (what API Gateway reports for a role's SigV4 request):
    a session ARN carries the role's name but not its path, and a role's name is
    unique in its account whatever its path. Any other ARN as it is: an IAM user's
    userArn carries the user's path, so a user is matched exactly."""
    parts = principal_arn.split(":", 5)
    if len(parts) != 6:
        return principal_arn
    partition, service, account, resource = parts[1], parts[2], parts[4], parts[5]
    if service == "sts" and resource.startswith("assumed-role/"):
        role = resource.split("/")[1]  # assumed-role/NAME/SESSION
    elif service == "iam" and resource.startswith("role/"):
        role = resource.rsplit("/", 1)[1]  # role/PATH/NAME
    else:
        return principal_arn
    return f"arn:{partition}:iam::{account}:role/{role}"


class Integrations:
    def __init__(self, table_name: str, dynamodb: Any = None) -> None:
        self._table = (dynamodb or boto3.resource("dynamodb")).Table(table_name)

    # --- the operator's side (the `tryon keys` commands) ----------------------

    def create_key(self, name: str, daily_quota: int | None, now: float) -> tuple[str, str]:
        """A new key for `name` (the integration is created on its first key; a quota
        given replaces its quota). Returns (key, key id); the key is shown only now."""
        key_id = secrets.token_hex(4)
        key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        updates = ["keys_by_id.#id = :hash"]
        values: dict[str, Any] = {":hash": key_hash(key)}
        if daily_quota is not None:
            updates.append("daily_quota = :quota")
            values[":quota"] = daily_quota
        self._ensure_integration(name, now)
        self._table.update_item(
            Key={"pk": INTEGRATIONS_PK, "sk": name},
            # A new key opens a revoked integration again.
            UpdateExpression="SET " + ", ".join(updates) + " REMOVE revoked_at",
            ExpressionAttributeNames={"#id": key_id},
            ExpressionAttributeValues=values)
        self._table.put_item(Item=to_dynamo({"pk": KEY_PK + key_hash(key), "sk": KEY_SK,
                                             "name": name, "key_id": key_id,
                                             "created_at": now}))
        return key, key_id

    def allow_principal(self, name: str, principal_arn: str, now: float) -> str | None:
        """Let an IAM role or user act as `name` through the SigV4 API, and for no other
        integration: returns the one it acted for until now, which no longer lists it.
        A role is matched by its account and name whatever its path (`role/PATH/NAME`
        is kept as `role/NAME`, see `role_of`); a user by its ARN, path included."""
        arn = role_of(principal_arn)
        self._ensure_integration(name, now)
        old = self._table.put_item(Item=to_dynamo({"pk": PRINCIPAL_PK + arn,
                                                   "sk": PRINCIPAL_SK, "name": name,
                                                   "created_at": now}),
                                   ReturnValues="ALL_OLD").get("Attributes")
        left = old["name"] if old and old["name"] != name else None
        if left:
            self._table.update_item(Key={"pk": INTEGRATIONS_PK, "sk": left},
                                    UpdateExpression="DELETE principals :arn",
                                    ExpressionAttributeValues={":arn": {arn}})
        # Like a new key, a principal allowed opens a revoked integration again.
        self._table.update_item(Key={"pk": INTEGRATIONS_PK, "sk": name},
                                UpdateExpression="ADD principals :arn REMOVE revoked_at",
                                ExpressionAttributeValues={":arn": {arn}})
        return left

    def revoke_principal(self, name: str, principal_arn: str, now: float) -> None:
        """Stop one IAM role or user acting as `name` (its ARN in any form
        `allow_principal` takes); its keys and other principals stay."""
        arn = role_of(principal_arn)
        item = self.get(name)
        if item is None:
            raise KeyError(f"no integration named {name!r}")
        if arn not in item.get("principals", ()):
            raise KeyError(f"integration {name!r} has no IAM principal {arn!r}")
        try:
            self._table.update_item(Key={"pk": PRINCIPAL_PK + arn, "sk": PRINCIPAL_SK},
                                    UpdateExpression="SET revoked_at = :now",
                                    ConditionExpression="#name = :name",
                                    ExpressionAttributeNames={"#name": "name"},
                                    ExpressionAttributeValues={":now": to_dynamo(now),
                                                               ":name": name})
        except ClientError as exc:  # meanwhile allowed for another integration: leave it
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
        self._table.update_item(Key={"pk": INTEGRATIONS_PK, "sk": name},
                                UpdateExpression="DELETE principals :arn",
                                ExpressionAttributeValues={":arn": {arn}})

    def set_allow_instruction(self, name: str, allowed: bool) -> None:
        """Whether the integration's looks may carry a retailer's instruction: off until
        the operator allows it (the text goes to the provider account every tenant
        shares)."""
        self.set_settings(name, {"allow_instruction": allowed})

    def set_settings(self, name: str, values: dict[str, Any]) -> None:
        """Set an existing integration's settings (SETTINGS); a value None removes the
        setting (its default again)."""
        unknown = set(values) - SETTINGS
        if unknown or not values:
            raise ValueError(f"no setting {sorted(unknown)}: one of {sorted(SETTINGS)}")
        self._update(name, values)

    def set_upload_quota(self, name: str, forms: int | None, size: int | None) -> None:
        """The integration's own upload quotas: forms and declared bytes per UTC day
        (None leaves one as it is)."""
        changes = {"upload_forms": forms, "upload_bytes": size}
        self._update(name, {field: value for field, value in changes.items()
                            if value is not None})

    def _update(self, name: str, values: dict[str, Any]) -> None:
        """Set fields of an existing integration's item; a value None removes one."""
        if not values:
            return
        kept = {field: value for field, value in values.items() if value is not None}
        removed = [field for field, value in values.items() if value is None]
        expression = " ".join(part for part in (
            "SET " + ", ".join(f"#{f} = :{f}" for f in kept) if kept else "",
            "REMOVE " + ", ".join(f"#{f}" for f in removed) if removed else "") if part)
        if not applied(
                self._table.update_item,
                Key={"pk": INTEGRATIONS_PK, "sk": name}, UpdateExpression=expression,
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames={f"#{f}": f for f in values},  # `share` is reserved
                **({"ExpressionAttributeValues": {f":{f}": to_dynamo(v)
                                                  for f, v in kept.items()}} if kept else {})):
            raise KeyError(f"no integration named {name!r}")

    def forget(self, name: str) -> int:
        """Delete the integration, its keys' records and its IAM principals' (erasure:
        nothing of it stays in the table but its quota counters, which expire).
        Returns the records deleted."""
        item = self.get(name)
        if item is None:
            return 0
        keys = [{"pk": KEY_PK + digest, "sk": KEY_SK}
                for digest in item.get("keys_by_id", {}).values()]
        principals = []
        for arn in item.get("principals", ()):
            record = self._table.get_item(Key={"pk": PRINCIPAL_PK + arn, "sk": PRINCIPAL_SK},
                                          ConsistentRead=True).get("Item")
            if record and record.get("name") == name:  # not one allowed for another since
                principals.append({"pk": PRINCIPAL_PK + arn, "sk": PRINCIPAL_SK})
        for key in [*keys, *principals, {"pk": INTEGRATIONS_PK, "sk": name}]:
            self._table.delete_item(Key=key)
        return len(keys) + len(principals) + 1

    def revoke(self, name: str, key_id: str | None, now: float) -> list[str]:
        """Revoke one key of the integration, or (no key id) all of them and its IAM
        principals. Returns the key ids revoked."""
        item = self.get(name)
        if item is None:
            raise KeyError(f"no integration named {name!r}")
        keys = item.get("keys_by_id", {})
        if key_id is not None and key_id not in keys:
            raise KeyError(f"integration {name!r} has no key {key_id!r}")
        chosen = [key_id] if key_id else list(keys)
        for chosen_id in chosen:
            self._table.update_item(Key={"pk": KEY_PK + keys[chosen_id], "sk": KEY_SK},
                                    UpdateExpression="SET revoked_at = :now",
                                    ExpressionAttributeValues={":now": to_dynamo(now)})
        if key_id is None:
            for arn in item.get("principals", ()):
                self._table.update_item(Key={"pk": PRINCIPAL_PK + arn, "sk": PRINCIPAL_SK},
                                        UpdateExpression="SET revoked_at = :now",
                                        ExpressionAttributeValues={":now": to_dynamo(now)})
            self._table.update_item(Key={"pk": INTEGRATIONS_PK, "sk": name},
                                    UpdateExpression="SET revoked_at = :now",
                                    ExpressionAttributeValues={":now": to_dynamo(now)})
        return chosen

    def list(self) -> list[dict[str, Any]]:
        """Every integration with its keys (id, created, revoked), never their hashes."""
        items, start = [], None
        while True:
            page = self._table.query(KeyConditionExpression=Key("pk").eq(INTEGRATIONS_PK),
                                     **({"ExclusiveStartKey": start} if start else {}))
            items += page["Items"]
            start = page.get("LastEvaluatedKey")
            if not start:
                break
        return [self._described(from_dynamo(item)) for item in items]

    def _described(self, item: dict[str, Any]) -> dict[str, Any]:
        keys = []
        for key_id, digest in sorted(item.get("keys_by_id", {}).items()):
            record = from_dynamo(self._table.get_item(
                Key={"pk": KEY_PK + digest, "sk": KEY_SK}).get("Item") or {})
            keys.append({"key_id": key_id, "created_at": record.get("created_at"),
                         "revoked_at": record.get("revoked_at")})
        return {"name": item["sk"], "daily_quota": item.get("daily_quota"),
                "allow_instruction": bool(item.get("allow_instruction")),
                "share": float(item.get("share", 1)),
                "priorities": list(item.get("priorities") or PRIORITIES),
                "budget_share": item.get("budget_share"),
                "max_in_flight": item.get("max_in_flight"),
                "upload_forms": item.get("upload_forms"),
                "upload_bytes": item.get("upload_bytes"),
                "created_at": item.get("created_at"), "revoked_at": item.get("revoked_at"),
                "principals": sorted(item.get("principals", ())), "keys": keys}

    def settings(self, name: str) -> dict[str, Any]:
        """What the operator set for the integration (SETTINGS; {} for none, or no such
        integration), read as the pipeline's functions may: those attributes alone."""
        names = {f"#{field}": field for field in SETTINGS}
        item = self._table.get_item(Key={"pk": INTEGRATIONS_PK, "sk": name},
                                    ProjectionExpression=", ".join(names),
                                    ExpressionAttributeNames=names).get("Item")
        return from_dynamo(item) if item else {}

    def for_quota(self, name: str, default_quota: int) -> Integration | None:
        """The integration as its quota is counted (its quota and budget share), read as
        intake may (the settings and `daily_quota` alone); None for no such integration."""
        names = {f"#{field}": field for field in (*SETTINGS, "daily_quota", "sk")}
        item = self._table.get_item(Key={"pk": INTEGRATIONS_PK, "sk": name},
                                    ProjectionExpression=", ".join(names),
                                    ExpressionAttributeNames=names).get("Item")
        return _integration(name, from_dynamo(item), default_quota) if item else None

    def get(self, name: str) -> dict[str, Any] | None:
        item = self._table.get_item(Key={"pk": INTEGRATIONS_PK, "sk": name},
                                    ConsistentRead=True).get("Item")
        return from_dynamo(item) if item else None

    def _ensure_integration(self, name: str, now: float) -> None:
        try:
            self._table.put_item(Item=to_dynamo({"pk": INTEGRATIONS_PK, "sk": name,
                                                 "name": name, "created_at": now,
                                                 "keys_by_id": {}}),
                                 ConditionExpression="attribute_not_exists(pk)")
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    # --- the API's side ---------------------------------------------------------

    def authenticate(self, key: str, default_quota: int) -> Integration | None:
        """The integration a bearer key belongs to; None for an unknown or revoked key."""
        if not key.startswith(KEY_PREFIX) or len(key) > MAX_KEY_CHARS:
            return None
        record = self._table.get_item(Key={"pk": KEY_PK + key_hash(key), "sk": KEY_SK},
                                      ConsistentRead=True).get("Item")
        if not record or "revoked_at" in record:
            return None
        return self._active(record["name"], default_quota, str(record["key_id"]))

    def for_principal(self, principal_arn: str, default_quota: int) -> Integration | None:
        """The integration an IAM caller (SigV4) acts for, if the operator allowed it."""
        record = self._table.get_item(Key={"pk": PRINCIPAL_PK + role_of(principal_arn),
                                           "sk": PRINCIPAL_SK}, ConsistentRead=True).get("Item")
        if not record or "revoked_at" in record:
            return None
        return self._active(record["name"], default_quota, None)

    def _active(self, name: str, default_quota: int, key_id: str | None) -> Integration | None:
        item = self.get(name)
        if item is None or "revoked_at" in item:
            return None
        return _integration(name, item, default_quota, key_id)

    def charge_quota(self, name: str, day: str, count: int, quota: int, now: float) -> bool:
        """Count `count` images against the integration's quota for the day, all or
        none; False (nothing counted) when they do not fit."""
        if count > quota:
            return False
        return applied(
            self._table.update_item,
            Key={"pk": f"{QUOTA_PK}{name}#{day}", "sk": QUOTA_SK},
            UpdateExpression="ADD used :count SET expires_at = :ttl",
            ConditionExpression="attribute_not_exists(used) OR used <= :room",
            ExpressionAttributeValues={":count": count, ":room": quota - count,
                                       ":ttl": int(now) + QUOTA_TTL_SECONDS})

    def refund_quota(self, name: str, day: str, count: int) -> None:
        self._table.update_item(Key={"pk": f"{QUOTA_PK}{name}#{day}", "sk": QUOTA_SK},
                                UpdateExpression="ADD used :minus",
                                ExpressionAttributeValues={":minus": -count})

    def charge_uploads(self, name: str, day: str, forms: int, size: int, *, max_forms: int,
                       max_bytes: int, now: float) -> bool:
        """Count `forms` upload forms declaring `size` bytes against the day's upload
        quotas, all or none; False (nothing counted) when either would be passed."""
        if forms > max_forms or size > max_bytes:
            return False
        return applied(
            self._table.update_item,
            Key={"pk": f"{QUOTA_PK}{name}#{day}", "sk": UPLOADS_SK},
            UpdateExpression="ADD forms :forms, declared_bytes :bytes SET expires_at = :ttl",
            ConditionExpression="(attribute_not_exists(forms) OR forms <= :form_room) AND "
                                "(attribute_not_exists(declared_bytes) OR "
                                "declared_bytes <= :byte_room)",
            ExpressionAttributeValues={":forms": forms, ":bytes": size,
                                       ":form_room": max_forms - forms,
                                       ":byte_room": max_bytes - size,
                                       ":ttl": int(now) + QUOTA_TTL_SECONDS})

    def uploads_used(self, name: str, day: str) -> dict[str, int]:
        item = self._table.get_item(Key={"pk": f"{QUOTA_PK}{name}#{day}", "sk": UPLOADS_SK},
                                    ConsistentRead=True).get("Item") or {}
        return {"forms": int(item.get("forms", 0)), "bytes": int(item.get("declared_bytes", 0))}

    def quota_used(self, name: str, day: str) -> int:
        item = self._table.get_item(Key={"pk": f"{QUOTA_PK}{name}#{day}", "sk": QUOTA_SK},
                                    ConsistentRead=True).get("Item") or {}
        return int(item.get("used", 0))
