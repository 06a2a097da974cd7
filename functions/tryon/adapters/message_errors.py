"""The last error of a queue message, kept for its dead-letter consumer."""

from __future__ import annotations

from tryon.adapters.dynamo import Table

MESSAGE_ERROR_PK, MESSAGE_ERROR_SK = "MSGERR#", "MSGERR"
MESSAGE_ERROR_TTL_SECONDS = 15 * 24 * 3600  # past the dead-letter queue's 14 days


class MessageErrors:
    def __init__(self, table: Table) -> None:
        self._t = table

    def remember(self, message_id: str, error: dict[str, str], now: float) -> None:
        self._t.table.put_item(Item={**self._key(message_id), "error": error,
                                     "expires_at": int(now) + MESSAGE_ERROR_TTL_SECONDS})

    def last(self, message_id: str) -> dict[str, str] | None:
        item = self._t.read(self._key(message_id), consistent=False)
        return item["error"] if item else None

    @staticmethod
    def _key(message_id: str) -> dict[str, str]:
        return {"pk": f"{MESSAGE_ERROR_PK}{message_id}", "sk": MESSAGE_ERROR_SK}
