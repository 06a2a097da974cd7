"""moto's DynamoDB made to hold at catalogue scale (moto 5.2.5), for the local stack.

Four things a catalogue of thousands of rows meets that a small job never does:

- moto's threaded server runs requests side by side on one backend without a lock, so
  a query may iterate a table while a put grows it ("dictionary changed size during
  iteration"). Every DynamoDB operation here holds one lock, as if one node served it.
- `transact_write_items` deep-copies each table it names before starting and, when a
  condition fails, puts that copy back: O(table) per transaction, and the copy
  erases every other request's writes made meanwhile. Here a transaction saves only
  the items it names and, when it is canceled, restores only those.
- Answers that carry items were serialized by moto's generic, model-driven serializer,
  a sixth of the process's time; an item read is already in DynamoDB's JSON shape, so
  it is written as it is (`SERIALIZE_AS_JSON`; the tests compare both).
- `Table.query` reads every item of the table to find one partition, of the table or
  of an index. Here each index keeps its items by hash key, brought up to date from
  the keys written since the last query, sorted, and the table's partitions are looked
  up directly: a query costs its page, not the table.
"""

from __future__ import annotations

import bisect
import copy
import inspect
import json
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

LOCK = threading.RLock()
_MARK = "tryon_catalogue_scale"
SERIALIZE_AS_JSON = True  # False: moto's own serializer (the tests compare the two)


def install() -> None:
    """Patch moto's DynamoDB classes once per process (a second call does nothing)."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table
    from moto.dynamodb.responses import DynamoResult

    if getattr(DynamoDBBackend.query, _MARK, False):
        return
    original_update = DynamoDBBackend.update_item

    def update_item(self: Any, *args: Any, **kwargs: Any) -> Any:
        item = original_update(self, *args, **kwargs)  # changed in place: mark it
        _changed(self.get_table(kwargs.get("table_name") or args[0]), item)
        return item

    DynamoDBBackend.update_item = update_item
    DynamoDBBackend.transact_write_items = _transact_write_items
    for name in ("get_item", "put_item", "update_item", "delete_item", "query", "scan",
                 "transact_write_items", "describe_table"):
        setattr(DynamoDBBackend, name, _locked(getattr(DynamoDBBackend, name)))
    Table.put_item = _marking_put(Table.put_item)
    Table.delete_item = _marking_delete(Table.delete_item)
    Table.query = _indexed_query(Table.query)
    DynamoResult.execute_result = _as_json(DynamoResult.execute_result)
    setattr(DynamoDBBackend.query, _MARK, True)


def _locked(method: Callable[..., Any]) -> Callable[..., Any]:
    def locked(self: Any, *args: Any, **kwargs: Any) -> Any:
        with LOCK:
            return method(self, *args, **kwargs)

    locked.__name__ = method.__name__
    locked.__wrapped__ = method  # type: ignore[attr-defined]
    return locked


def _as_json(execute_result: Callable[..., Any]) -> Callable[..., Any]:
    def as_json(self: Any, context: Any) -> Any:
        if SERIALIZE_AS_JSON and isinstance(self.result, dict):
            try:
                body = json.dumps(self.result)
            except TypeError:  # bytes or a date: moto's serializer knows their shapes
                pass
            else:
                return 200, {"Content-Type": "application/x-amz-json-1.0"}, body
        return execute_result(self, context)

    return as_json


# --- transactions that save and restore only their own items -------------------------

def _transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    """moto's transaction (same checks, same errors), its backup per item, not per table."""
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed,
        MockValidationException,
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )

    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    saved: list[tuple[Any, Any, Any, Any]] = []  # table, hash, range, the item before
    targets: set[tuple[str, str]] = set()
    errors: list[tuple[Any, Any, Any]] = []

    def restore() -> None:
        for table, hash_value, range_value, before in reversed(saved):
            if before is None:
                table.delete_item(hash_value, range_value)
            elif range_value is not None:
                table.items[hash_value][range_value] = before
            else:
                table.items[hash_value] = before
            _mark(table, (hash_value, range_value))

    for entry in transact_items:
        if len(entry) > 1:
            raise TransactWriteSingleOpException
        original_item: dict[str, Any] | None = None
        try:
            op_type, op = next(iter(entry.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")
            table_name = op["TableName"]
            table = self.get_table(table_name)
            if op_type == "Put":
                key = {name: op["Item"][name]
                       for name in (table.hash_key_attr, table.range_key_attr) if name}
            else:
                key = op["Key"]
            target = (str(table_name), json.dumps(key, sort_keys=True))
            if target in targets:
                raise MultipleTransactionsException()
            targets.add(target)
            hash_value, range_value = _key_values(table, key)
            current = table.get_item(hash_value, range_value)
            saved.append((table, hash_value, range_value, copy.deepcopy(current)))
            names = op.get("ExpressionAttributeNames")
            values = op.get("ExpressionAttributeValues")
            condition = op.get("ConditionExpression")
            if condition is not None and not get_filter_expression(
                    condition, names, values).expr(current):
                if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                    original_item = current.to_json()["Attributes"]
                raise ConditionalCheckFailed(item=original_item)
            if op_type == "Put":
                self.put_item(table_name, op["Item"], condition_expression=condition,
                              expression_attribute_names=names,
                              expression_attribute_values=values)
            elif op_type == "Delete":
                self.delete_item(table_name, key, condition_expression=condition,
                                 expression_attribute_names=names,
                                 expression_attribute_values=values)
            elif op_type == "Update":
                self.update_item(table_name, key, update_expression=op["UpdateExpression"],
                                 condition_expression=condition,
                                 expression_attribute_names=names,
                                 expression_attribute_values=values)
            errors.append((None, None, None))
        except (MultipleTransactionsException, MockValidationException):
            restore()
            raise
        except ConditionalCheckFailed as e:
            errors.append(("ConditionalCheckFailed", str(e.message), original_item))
        except Exception as e:  # as moto: any other failure cancels with its name
            errors.append((type(e).__name__, str(e), original_item))
    if any(code is not None for code, _, _ in errors):
        restore()
        raise TransactionCanceledException(errors)


def _key_values(table: Any, key: dict[str, Any]) -> tuple[Any, Any]:
    from moto.dynamodb.models.dynamo_type import DynamoType

    range_value = (DynamoType(key[table.range_key_attr])
                   if table.range_key_attr else None)
    return DynamoType(key[table.hash_key_attr]), range_value


# --- queries that read their partition only -------------------------------------------

def _marking_put(put: Callable[..., Any]) -> Callable[..., Any]:
    def put_item(self: Any, *args: Any, **kwargs: Any) -> Any:
        item = put(self, *args, **kwargs)
        _changed(self, item)
        return item

    return put_item


def _marking_delete(delete: Callable[..., Any]) -> Callable[..., Any]:
    def delete_item(self: Any, hash_key: Any, range_key: Any) -> Any:
        item = delete(self, hash_key, range_key)
        _mark(self, (hash_key, range_key or None))
        return item

    return delete_item


def _changed(table: Any, item: Any) -> None:
    if item is not None:
        _mark(table, (item.hash_key, item.range_key if table.range_key_attr else None))


def _mark(table: Any, key: tuple[Any, Any]) -> None:
    dirty = table.__dict__.get("_tryon_dirty")
    if dirty is not None:  # no index read yet: nothing to keep up to date
        dirty.add(key)


def _indexed_query(query: Callable[..., Any]) -> Callable[..., Any]:
    signature = inspect.signature(query)

    def indexed(self: Any, *args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(self, *args, **kwargs).arguments
        candidates = _partition(self, bound["hash_key"], bound.get("index_name"),
                                bound.get("hash_key_conditions"))
        if candidates is None:
            return query(self, *args, **kwargs)
        if isinstance(candidates, _Bucket):  # already in the index's order
            self.sorted_items = lambda hash_attrs, range_attrs, items: items
            candidates = candidates.page(bound)
        self.all_items = lambda: candidates  # moto's loop reads these items only
        try:
            return query(self, *args, **kwargs)
        finally:
            self.__dict__.pop("all_items", None)
            self.__dict__.pop("sorted_items", None)

    return indexed


def _partition(table: Any, hash_key: Any, index_name: str | None,
               conditions: list[tuple[str, Any]] | None) -> list[Any] | _Bucket | None:
    """The items a query can match (an index's in its order), or None to let moto read
    them all."""
    if not index_name:
        if hash_key is None:
            return None
        part = table.items.get(hash_key)
        if part is None:
            return []
        return list(part.values()) if table.range_key_attr else [part]
    index = next((i for i in table.all_indexes() if i.name == index_name), None)
    if index is None or not conditions:
        return None  # moto says what is wrong
    shape = _IndexShape.of(table, index)
    wanted = dict(conditions)
    if set(wanted) != set(shape.hash_attrs):
        return None
    by_hash = _buckets(table, shape)
    return by_hash.get(tuple(wanted[a] for a in shape.hash_attrs)) or _Bucket(shape)


class _IndexShape:
    """What an index's partitions are kept by: its hash attributes, the range
    attributes an item must have to be in it, and the attributes its items are sorted
    by (moto's own order: Table._generate_attr_to_sort_by)."""

    def __init__(self, table: Any, index: Any) -> None:
        schema = index.schema
        self.index = index
        self.hash_attrs = tuple(k["AttributeName"] for k in schema if k["KeyType"] == "HASH")
        self.range_attrs = tuple(k["AttributeName"] for k in schema if k["KeyType"] == "RANGE")
        if self.range_attrs:
            ranges: list[str | None] = [*self.range_attrs, table.range_key_attr]
        else:  # as moto: the table's range key (or its hash key) acts as the range key
            ranges = [table.range_key_attr or table.hash_key_attr, table.range_key_attr]
        self.sort_attrs = tuple(table._generate_attr_to_sort_by(
            [*self.hash_attrs, table.hash_key_attr], ranges))

    @classmethod
    def of(cls, table: Any, index: Any) -> _IndexShape:
        known = table.__dict__.setdefault("_tryon_index_shapes", {})
        if index.name not in known:
            known[index.name] = cls(table, index)
        return known[index.name]

    def sort_key(self, values: Callable[[str], Any]) -> tuple | None:
        try:
            return tuple(values(a).cast_value for a in self.sort_attrs)
        except (KeyError, AttributeError):
            return None


class _Bucket:
    """One partition of an index: its items as the index projects them, kept sorted by
    plain values (moto sorted the whole partition on every query, comparing its typed
    values: a fifth of the process on a queue of thousands), so that a query reads only
    the page it answers."""

    __slots__ = ("items", "shape", "sort_keys")

    def __init__(self, shape: _IndexShape) -> None:
        self.shape, self.sort_keys, self.items = shape, [], []

    def __bool__(self) -> bool:
        return bool(self.items)

    def add(self, sort_key: tuple, item: Any) -> None:
        at = bisect.bisect_left(self.sort_keys, sort_key)
        self.sort_keys.insert(at, sort_key)
        self.items.insert(at, item)

    def remove(self, sort_key: tuple) -> None:
        at = bisect.bisect_left(self.sort_keys, sort_key)
        del self.sort_keys[at], self.items[at]

    def page(self, query: dict[str, Any]) -> list[Any]:
        """The items moto's loop needs to answer `query` as over the whole partition:
        with a Limit and no range condition, the page (and one more, to tell there is a
        next page) from its ExclusiveStartKey on."""
        from moto.dynamodb.models.dynamo_type import DynamoType

        limit = query.get("limit")
        if not limit or query.get("range_comparison") or query.get("filter_kwargs"):
            return list(self.items)
        forward = query.get("scan_index_forward", True) is not False
        start, end = 0, len(self.items)
        after = query.get("exclusive_start_key")
        if after:
            key = self.shape.sort_key(lambda a: DynamoType(after[a]))
            if key is None:
                return list(self.items)
            if forward:  # moto skips the start key itself, and what comes before it
                start = bisect.bisect_left(self.sort_keys, key)
            else:
                end = bisect.bisect_right(self.sort_keys, key)
        span = limit + 2
        return self.items[start:start + span] if forward else self.items[max(start, end - span):end]


def _buckets(table: Any, shape: _IndexShape) -> dict[Any, _Bucket]:
    """The index's partitions by hash value (moto deep-copied and sized whole items
    before projecting them: most of a queue query's cost); built once, then kept up to
    date from the keys written since."""
    state = table.__dict__.setdefault("_tryon_indexes", {})
    dirty = table.__dict__.setdefault("_tryon_dirty", set())
    if dirty:
        for buckets, where, known in state.values():
            for key in dirty:
                _place(buckets, where, key, _item_at(table, key), known)
        dirty.clear()
    if shape.index.name not in state:
        buckets: dict[Any, _Bucket] = {}
        where: dict[Any, Any] = {}
        for item in table.all_items():
            key = (item.hash_key, item.range_key if table.range_key_attr else None)
            _place(buckets, where, key, item, shape)
        state[shape.index.name] = (buckets, where, shape)
    return state[shape.index.name][0]


def _place(buckets: dict[Any, _Bucket], where: dict, key: Any, item: Any,
           shape: _IndexShape) -> None:
    old = where.pop(key, None)
    if old is not None:
        values, sort_key = old
        bucket = buckets[values]
        bucket.remove(sort_key)
        if not bucket:
            del buckets[values]
    if item is None:
        return
    values = tuple(item.attrs.get(a) for a in shape.hash_attrs)
    # A sparse index leaves out an item without all its key attributes (as moto does).
    if any(v is None for v in values) or not all(item.attrs.get(a) for a in shape.range_attrs):
        return
    sort_key = shape.sort_key(item.attrs.__getitem__)
    if sort_key is None:
        return
    bucket = buckets.get(values)
    if bucket is None:
        bucket = buckets[values] = _Bucket(shape)
    bucket.add(sort_key, shape.index.project(item))
    where[key] = (values, sort_key)


def _item_at(table: Any, key: tuple[Any, Any]) -> Any:
    hash_value, range_value = key
    part = table.items.get(hash_value)
    if part is None or not table.range_key_attr:
        return part
    return part.get(range_value)


# --- what the benchmarks count -----------------------------------------------------------

class WriteCounter:
    """Item writes, by operation and by the kind of item (its key's prefix: JOB, SLOTS,
    TURNS, ...), for the benchmarks. Each item a transaction names counts once (its
    condition checks too: DynamoDB bills them as writes); a write its condition refuses
    counts too (billed as well). Wraps moto's backend methods. Also each request by
    action: how many, the seconds moto took to answer them, the bytes answered."""

    OPERATIONS = ("put_item", "update_item", "delete_item", "transact_write_items")

    def __init__(self) -> None:

        from moto.dynamodb.models import DynamoDBBackend

        self.counts: Counter[tuple[str, str]] = Counter()
        self.requests: dict[str, list[float]] = {}  # action -> [count, seconds, bytes]
        self._lock = threading.Lock()
        self._inside = threading.local()  # a transaction's own puts are its items
        for operation in self.OPERATIONS:
            original = getattr(DynamoDBBackend, operation)
            original = getattr(original, "counted_original", original)
            setattr(DynamoDBBackend, operation, self._counting(operation, original))
        self._time_requests()

    def _time_requests(self) -> None:
        import time

        from moto.dynamodb.responses import DynamoHandler

        original = DynamoHandler.call_action
        original = getattr(original, "counted_original", original)
        counter = self

        def call_action(self: Any) -> Any:
            started = time.perf_counter()
            answer = original(self)
            spent = time.perf_counter() - started
            size = len(answer[2]) if isinstance(answer, tuple) and len(answer) == 3 else 0
            with counter._lock:
                entry = counter.requests.setdefault(self._get_action(), [0, 0.0, 0])
                entry[0] += 1
                entry[1] += spent
                entry[2] += size
            return answer

        call_action.counted_original = original  # type: ignore[attr-defined]
        DynamoHandler.call_action = call_action

    def snapshot(self) -> dict[str, Any]:
        """Both counts as JSON: writes keyed `operation|kind`."""
        with self._lock:
            return {"writes": {f"{op}|{kind}": n for (op, kind), n in self.counts.items()},
                    "requests": {action: list(entry)
                                 for action, entry in self.requests.items()}}

    def by_kind(self) -> dict[str, int]:
        return dict(writes_by_kind(self.counts))

    def _counting(self, operation: str, original: Any) -> Any:
        counter = self

        def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
            if getattr(counter._inside, "transaction", False):
                return original(self, *args, **kwargs)
            if operation == "transact_write_items":
                entries = args[0] if args else kwargs["transact_items"]
                kinds = [_kind(op.get("Key") or op.get("Item") or {})
                         for entry in entries for op in entry.values()]
            else:
                kinds = [_kind(args[1] if len(args) > 1 else
                               kwargs.get("item_attrs") or kwargs.get("key") or {})]
            with counter._lock:
                for kind in kinds:
                    counter.counts[(operation, kind)] += 1
            counter._inside.transaction = operation == "transact_write_items"
            try:
                return original(self, *args, **kwargs)
            finally:
                counter._inside.transaction = False

        counted.counted_original = original  # type: ignore[attr-defined]
        return counted


def writes_by_kind(counts: dict[tuple[str, str], int]) -> Counter[str]:
    """(operation, kind) -> writes, summed by kind."""
    kinds: Counter[str] = Counter()
    for (_, kind), count in counts.items():
        kinds[kind] += count
    return kinds


def _kind(key: dict[str, Any]) -> str:
    """JOB for JOB#<id>, the attribute's name for a table keyed otherwise."""
    for name in ("pk", "id"):
        value = key.get(name)
        if isinstance(value, dict) and "S" in value:
            return value["S"].split("#", 1)[0] if "#" in value["S"] else name
    return "other"
