"""The local stack's DynamoDB (tryon_local.moto_dynamodb over moto): queries read one
partition yet answer what a whole-table read would, through puts, updates and deletes
that move items between an index's partitions; a canceled transaction restores its own
items and nobody else's; many threads at once lose nothing."""

import random
import threading

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from tryon_local import moto_dynamodb


@pytest.fixture
def table(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    moto_dynamodb.install()
    with mock_aws():
        client = boto3.client("dynamodb")
        client.create_table(
            TableName="t", BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                       {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"}
                                  for n in ("pk", "sk", "queue", "order")],
            GlobalSecondaryIndexes=[{
                "IndexName": "queue",
                "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["note"]},
                "KeySchema": [{"AttributeName": "queue", "KeyType": "HASH"},
                              {"AttributeName": "order", "KeyType": "RANGE"}]}])
        yield client


def queued(client, queue: str, page: int = 3, **extra) -> list[str]:
    ids, start = [], {}
    while True:
        answer = client.query(TableName="t", IndexName="queue", Limit=page,
                              KeyConditionExpression="#q = :q",
                              ExpressionAttributeNames={"#q": "queue"},
                              ExpressionAttributeValues={":q": {"S": queue}}, **start, **extra)
        ids += [item["pk"]["S"] for item in answer["Items"]]
        if "LastEvaluatedKey" not in answer:
            return ids
        start = {"ExclusiveStartKey": answer["LastEvaluatedKey"]}


def test_index_queries_follow_items_between_partitions(table):
    rng = random.Random(7)
    truth: dict[str, tuple[str | None, str]] = {}  # pk -> (queue or none, order)
    for step in range(400):
        pk = f"JOB#{rng.randrange(60):02d}"
        action = rng.choice(["put", "update", "remove", "unorder", "delete"])
        # Few orders: items tie on the index's range key, and the table's key decides.
        queue, order = rng.choice(["a", "b", "c"]), f"{rng.randrange(40):04d}"
        if action == "put":
            table.put_item(TableName="t", Item={
                "pk": {"S": pk}, "sk": {"S": "JOB"}, "queue": {"S": queue},
                "order": {"S": order}, "note": {"S": order}, "big": {"S": "x" * 100}})
            truth[pk] = (queue, order)
        elif action == "update":  # changed in place by moto: moves partitions
            table.update_item(TableName="t", Key={"pk": {"S": pk}, "sk": {"S": "JOB"}},
                              UpdateExpression="SET #q = :q, #o = :o",
                              ExpressionAttributeNames={"#q": "queue", "#o": "order"},
                              ExpressionAttributeValues={":q": {"S": queue},
                                                         ":o": {"S": order}})
            truth[pk] = (queue, order)
        elif action == "remove" and pk in truth:  # leaves the sparse index
            table.update_item(TableName="t", Key={"pk": {"S": pk}, "sk": {"S": "JOB"}},
                              UpdateExpression="REMOVE #q",
                              ExpressionAttributeNames={"#q": "queue"})
            truth[pk] = (None, truth[pk][1])
        elif action == "unorder" and pk in truth:  # no range key: not in the index either
            table.update_item(TableName="t", Key={"pk": {"S": pk}, "sk": {"S": "JOB"}},
                              UpdateExpression="REMOVE #o",
                              ExpressionAttributeNames={"#o": "order"})
            truth[pk] = (None, "")
        elif action == "delete":
            table.delete_item(TableName="t", Key={"pk": {"S": pk}, "sk": {"S": "JOB"}})
            truth.pop(pk, None)
        if step % 25 == 0:
            for item in table.query(
                    TableName="t", IndexName="queue", KeyConditionExpression="#q = :q",
                    ExpressionAttributeNames={"#q": "queue"},
                    ExpressionAttributeValues={":q": {"S": "a"}})["Items"]:
                assert set(item) <= {"pk", "sk", "queue", "order", "note"}  # as projected
            for name in ("a", "b", "c"):
                expected = sorted((o, p) for p, (q, o) in truth.items() if q == name)
                for page in (1, 3, 100):
                    assert queued(table, name, page) == [p for _, p in expected], (step, name)
                    assert queued(table, name, page, ScanIndexForward=False) == [
                        p for _, p in reversed(expected)]


def test_a_table_query_reads_its_partition_and_its_range(table):
    for pk, sk in (("BATCH#1", "A"), ("BATCH#1", "B"), ("BATCH#1", "C"), ("BATCH#2", "A")):
        table.put_item(TableName="t", Item={"pk": {"S": pk}, "sk": {"S": sk}})
    answer = table.query(TableName="t", KeyConditionExpression="pk = :p AND sk > :s",
                         ExpressionAttributeValues={":p": {"S": "BATCH#1"}, ":s": {"S": "A"}})
    assert [i["sk"]["S"] for i in answer["Items"]] == ["B", "C"]
    assert table.query(TableName="t", KeyConditionExpression="pk = :p",
                       ExpressionAttributeValues={":p": {"S": "NONE"}})["Items"] == []


def backend_table():
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].tables["t"]


def test_a_canceled_transaction_restores_its_own_items_only(table):
    table.put_item(TableName="t", Item={"pk": {"S": "A"}, "sk": {"S": "x"}, "n": {"N": "1"}})
    table.put_item(TableName="t", Item={"pk": {"S": "other"}, "sk": {"S": "x"}})
    served = backend_table()
    with pytest.raises(ClientError) as refused:
        table.transact_write_items(TransactItems=[
            {"Update": {"TableName": "t", "Key": {"pk": {"S": "A"}, "sk": {"S": "x"}},
                        "UpdateExpression": "SET n = :two",
                        "ExpressionAttributeValues": {":two": {"N": "2"}}}},
            {"Put": {"TableName": "t", "Item": {"pk": {"S": "new"}, "sk": {"S": "x"}}}},
            {"ConditionCheck": {"TableName": "t",
                                "Key": {"pk": {"S": "missing"}, "sk": {"S": "x"}},
                                "ConditionExpression": "attribute_exists(pk)"}}])
    reasons = refused.value.response["CancellationReasons"]
    assert [r["Code"] for r in reasons] == ["None", "None", "ConditionalCheckFailed"]
    # moto put back a copy of the whole table, made before the transaction began, over
    # every write other requests made meanwhile; here the table stays the one served.
    assert backend_table() is served
    items = {i["pk"]["S"]: i for i in table.scan(TableName="t")["Items"]}
    assert set(items) == {"A", "other"}
    assert items["A"]["n"] == {"N": "1"}

    table.transact_write_items(TransactItems=[
        {"Update": {"TableName": "t", "Key": {"pk": {"S": "A"}, "sk": {"S": "x"}},
                    "UpdateExpression": "SET n = :two", "ConditionExpression": "n = :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}, ":two": {"N": "2"}}}},
        {"Delete": {"TableName": "t", "Key": {"pk": {"S": "other"}, "sk": {"S": "x"}}}}])
    items = {i["pk"]["S"]: i for i in table.scan(TableName="t")["Items"]}
    assert set(items) == {"A"} and items["A"]["n"] == {"N": "2"}
    with pytest.raises(ClientError) as twice:
        table.transact_write_items(TransactItems=[
            {"Delete": {"TableName": "t", "Key": {"pk": {"S": "A"}, "sk": {"S": "x"}}}},
            {"Delete": {"TableName": "t", "Key": {"pk": {"S": "A"}, "sk": {"S": "x"}}}}])
    assert twice.value.response["Error"]["Code"] == "ValidationException"


def test_threads_writing_and_canceling_at_once_lose_nothing(table):
    def put(n: int) -> None:
        for i in range(25):
            table.put_item(TableName="t", Item={
                "pk": {"S": f"P{n}-{i}"}, "sk": {"S": "x"}, "queue": {"S": "q"},
                "order": {"S": f"{n}{i:03d}"}})

    def cancel() -> None:  # moto's own transaction put a copy of the table back here
        for _ in range(20):
            with pytest.raises(ClientError):
                table.transact_write_items(TransactItems=[
                    {"Put": {"TableName": "t", "Item": {"pk": {"S": "T"}, "sk": {"S": "x"}}}},
                    {"ConditionCheck": {"TableName": "t",
                                        "Key": {"pk": {"S": "never"}, "sk": {"S": "x"}},
                                        "ConditionExpression": "attribute_exists(pk)"}}])
            queued(table, "q", page=1000)

    failures: list[BaseException] = []

    def run(work, *args) -> None:
        try:
            work(*args)
        except BaseException as failure:  # moto's: dictionary changed size during iteration
            failures.append(failure)

    threads = [threading.Thread(target=run, args=(put, n)) for n in range(4)]
    threads += [threading.Thread(target=run, args=(cancel,)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(queued(table, "q", page=1000)) == 100
    assert len(table.scan(TableName="t")["Items"]) == 100


def test_writes_are_counted_by_item_kind_a_transaction_once_per_item(table):
    counter = moto_dynamodb.WriteCounter()
    table.put_item(TableName="t", Item={"pk": {"S": "JOB#1"}, "sk": {"S": "JOB"}})
    table.transact_write_items(TransactItems=[
        {"Update": {"TableName": "t", "Key": {"pk": {"S": "JOB#1"}, "sk": {"S": "JOB"}},
                    "UpdateExpression": "SET n = :n",
                    "ExpressionAttributeValues": {":n": {"N": "1"}}}},
        {"Put": {"TableName": "t", "Item": {"pk": {"S": "SLOTS#m"}, "sk": {"S": "1"}}}}])
    with pytest.raises(ClientError):
        table.put_item(TableName="t", Item={"pk": {"S": "JOB#1"}, "sk": {"S": "JOB"}},
                       ConditionExpression="attribute_not_exists(pk)")
    assert counter.by_kind() == {"JOB": 3, "SLOTS": 1}
    assert sum(counter.counts.values()) == 4


def test_answers_written_as_json_read_as_moto_serializes_them(table, monkeypatch):
    table.put_item(TableName="t", Item={
        "pk": {"S": "JOB#1"}, "sk": {"S": "JOB"}, "queue": {"S": "a"}, "order": {"S": "1"},
        "n": {"N": "1.50"}, "flags": {"SS": ["x", "y"]}, "none": {"NULL": True},
        "ok": {"BOOL": False}, "blob": {"B": b"\x00\x01"},
        "timeline": {"M": {"queued": {"N": "12.5"}, "list": {"L": [{"S": "é"}]}}}})
    table.put_item(TableName="t", Item={"pk": {"S": "JOB#2"}, "sk": {"S": "JOB"},
                                        "queue": {"S": "a"}, "order": {"S": "2"}})
    calls = [
        lambda: table.get_item(TableName="t", Key={"pk": {"S": "JOB#1"}, "sk": {"S": "JOB"}},
                               ReturnConsumedCapacity="TOTAL"),
        lambda: table.get_item(TableName="t", Key={"pk": {"S": "none"}, "sk": {"S": "JOB"}}),
        lambda: table.query(TableName="t", IndexName="queue", Limit=1,
                            KeyConditionExpression="#q = :q",
                            ExpressionAttributeNames={"#q": "queue"},
                            ExpressionAttributeValues={":q": {"S": "a"}}),
        lambda: table.batch_get_item(RequestItems={"t": {"Keys": [
            {"pk": {"S": "JOB#1"}, "sk": {"S": "JOB"}}, {"pk": {"S": "JOB#2"}, "sk": {"S": "JOB"}}],
            "ProjectionExpression": "pk, timeline"}}),
        lambda: table.update_item(TableName="t", Key={"pk": {"S": "JOB#2"}, "sk": {"S": "JOB"}},
                                  UpdateExpression="SET n = :n", ReturnValues="ALL_NEW",
                                  ExpressionAttributeValues={":n": {"N": "3"}}),
        lambda: table.scan(TableName="t", Select="COUNT"),
    ]
    answers = {}
    for as_json in (True, False):
        monkeypatch.setattr(moto_dynamodb, "SERIALIZE_AS_JSON", as_json)
        answers[as_json] = []
        for call in calls:
            answer = call()
            answer.pop("ResponseMetadata")
            answers[as_json].append(answer)
    assert answers[True] == answers[False]
    assert answers[True][0]["Item"]["blob"] == {"B": b"\x00\x01"}
