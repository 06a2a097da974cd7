"""What every repository on the jobs table shares: one table, items told apart by
their partition key's prefix; Decimal in and out; conditional writes that answer
False, not an error, when their condition does not hold."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

RECORD_TTL_SECONDS = 90 * 24 * 3600


def to_dynamo(value: Any) -> Any:
    """DynamoDB takes Decimal, not float; keep millisecond precision."""
    if isinstance(value, float):
        return Decimal(str(round(value, 3)))
    if isinstance(value, dict):
        return {k: to_dynamo(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [to_dynamo(v) for v in value]
    return value


def from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_dynamo(v) for v in value]
    return value


def is_condition_failure(exc: ClientError) -> bool:
    return exc.response["Error"]["Code"] == "ConditionalCheckFailedException"


def applied(call: Any, **kwargs: Any) -> bool:
    """Run a conditional write; False (not an error) when its condition did not hold."""
    try:
        call(**kwargs)
    except ClientError as exc:
        if is_condition_failure(exc):
            return False
        raise
    return True


class Table:
    """The jobs table, as one repository sees it."""

    def __init__(self, table_name: str, dynamodb: Any) -> None:
        self.dynamodb = dynamodb
        self.table = dynamodb.Table(table_name)
        self._ensured: set[str] = set()

    def read(self, key: dict[str, str], consistent: bool = True) -> dict[str, Any] | None:
        item = self.table.get_item(Key=key, ConsistentRead=consistent).get("Item")
        return from_dynamo(item) if item else None

    def ensure(self, item: dict[str, Any]) -> dict[str, str]:
        """Create a shared item (once per process) so that updates can set paths
        inside its maps; returns its key."""
        key = {"pk": item["pk"], "sk": item["sk"]}
        if item["pk"] not in self._ensured:
            applied(self.table.put_item, Item=item, ConditionExpression="attribute_not_exists(pk)")
            self._ensured.add(item["pk"])
        return key
