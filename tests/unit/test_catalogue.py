"""Catalogue batches (`jobs/<name>.csv`, `.jsonl`): read as spreadsheets write them, each
row checked by the manifest's rules, a row's fault failing its look alone and naming
its row and column, a file's fault refusing the file."""

import csv
import io
import json

import pytest
from tryon.catalogue import (
    BatchFileError,
    Row,
    RowError,
    canonical_csv,
    kind_of,
    look_of,
    read_rows,
    row_of_item,
)

MODEL = "qwen-image-3.0"


def rows(text: str | bytes, kind: str = "csv", **limits) -> list:
    raw = text.encode() if isinstance(text, str) else text
    return list(read_rows(io.BytesIO(raw), kind, **limits))


def looks(text: str | bytes, kind: str = "csv") -> list:
    found = []
    for row in rows(text, kind):
        try:
            found.append(look_of(row, MODEL))
        except RowError as exc:
            found.append(exc)
    return found


def test_a_spreadsheets_csv_gives_one_look_per_row_with_its_attributes():
    # Excel's "CSV UTF-8": a BOM, CRLF, a quoted cell with a comma and a doubled quote.
    text = ("\ufeffId,Person,Top,Bottom,Resolution,Restore_Face,Priority,attr.sku,attr.season\r\n"
            'spring-1,models/anna.jpg,catalog/t1.jpg,,1024,no,interactive,"SKU-1, ""red""",SS27\r\n'
            ",models/ben.jpg,,catalog/b2.jpg,,,,SKU-2,\r\n"
            ",,,,,,,,\r\n")  # a row of empty cells
    first, second = looks(text)
    assert (first.look_id, first.person, first.top, first.bottom) == (
        "spring-1", "models/anna.jpg", "catalog/t1.jpg", None)
    assert (first.resolution, first.restore_face, first.priority, first.model) == (
        1024, False, "interactive", MODEL)
    assert first.attributes == (("season", "SS27"), ("sku", 'SKU-1, "red"'))
    assert (second.look_id, second.bottom, second.resolution, second.restore_face) == (
        "row-3", "catalog/b2.jpg", -1, True)  # unnamed: after its spreadsheet row


def test_a_semicolon_csv_from_a_comma_decimal_locale_reads_the_same():
    [look] = looks("id;person;dress;model\nd1;models/anna.jpg;catalog/d1.jpg;qwen-image-2.0\n")
    assert (look.top, look.top_is_dress, look.model) == ("catalog/d1.jpg", True,
                                                         "qwen-image-2.0")


def test_a_rows_fault_names_its_row_and_column_and_fails_that_look_alone():
    text = ("id,person,top,bottom,dress,keep,resolution,restore_face,attr.bad name\n"
            "ok,p.jpg,t.jpg,,,,,,\n"
            "r2,p.jpg,t.jpg,,,,12x,,\n"
            "r3,p.jpg,t.jpg,,d.jpg,,,,\n"
            "r4,p.jpg,t.jpg,,,top,,,\n"
            "r5,p.jpg,t.jpg,,,,,maybe,\n"
            "r6,p.jpg,t.jpg,,,,,,x\n"
            "r7,,t.jpg,,,,,,\n"
            "r8,p.jpg,t.jpg,,,,2048,,\n")
    found = looks(text)
    assert found[0].look_id == "ok"
    assert [str(e) for e in found[1:]] == [
        "row 3, column resolution: '12x' is not a number: write -1, 1024 or 1280",
        "row 4: a dress is worn alone: remove top/bottom, or the dress",
        "row 5, column keep: keep 'top' keeps the person's own top: remove top",
        "row 6, column restore_face: 'maybe' is not true or false",
        "row 7, column attr.*: attribute names start with a letter, use letters, digits, "
        "'_' or '-', and are not event, status, model, batch_id or schema",
        "row 8, column person: person is required",
        "row 9, column resolution: resolution must be one of [-1, 1024, 1280]",
    ]
    assert {e.code for e in found[1:]} == {"InvalidRow"}


def test_a_files_fault_refuses_the_whole_file():
    for text, what in (
            ("", "the file is empty"),
            ("id,person,colour\n", "column 3 ('colour') is not one this file may have"),
            ("id,top\n", "no person column"),
            ("id,person,Person\n", "column 'Person' is named twice"),
            ("person,top\np.jpg,t.jpg,extra\n", "row 2 has 3 cells, more than the 2 columns"),
            (b"person,top\np\xe9.jpg,t.jpg\n", "not UTF-8")):
        with pytest.raises(BatchFileError) as refused:
            rows(text)
        assert what in str(refused.value), (text, str(refused.value))
        assert refused.value.code == "InvalidBatchFile"


def test_more_rows_than_the_stack_takes_is_too_large_and_nothing_is_read_past_it():
    text = "person,top\n" + "p.jpg,t.jpg\n" * 4
    assert len(rows(text, max_looks=4)) == 4
    with pytest.raises(BatchFileError) as refused:
        rows(text, max_looks=3)
    assert refused.value.code == "BatchTooLarge"
    assert "more than 3 looks (rows)" in str(refused.value)


def test_json_lines_give_a_look_per_line_with_the_manifests_fields():
    lines = [{"id": "a", "person": "p.jpg", "top": "t.jpg", "restore_face": False,
              "resolution": 1280, "attributes": {"sku": "S1"}},
             {"id": "b", "person": "p.jpg", "colour": "red", "top": "t.jpg"},
             {"person": "p.jpg", "bottom": "b.jpg", "resolution": [1]}]
    text = "\n".join(json.dumps(line) for line in lines) + "\n\n"
    first, unknown, wrong_type = looks(text, "jsonl")
    assert (first.look_id, first.restore_face, first.resolution, first.attributes) == (
        "a", False, 1280, (("sku", "S1"),))
    assert str(unknown) == ("row 2, column colour: unknown field 'colour': a look has id, "
                            "person, top, bottom, dress, keep, model, resolution, "
                            "restore_face, priority, instruction and attributes")
    assert [r.look_id for r in rows(text, "jsonl")] == ["a", "b", "row-3"]  # id kept
    assert str(wrong_type).startswith("row 3, column resolution: resolution must be")
    with pytest.raises(BatchFileError, match="line 2 is not a JSON object"):
        rows('{"person": "p.jpg"}\n[1, 2]\n', "jsonl")


def test_the_canonical_csv_carries_every_row_to_the_expansion_unchanged():
    text = ("person;top;attr.sku;Instruction\n"
            'p.jpg;t.jpg;"a;b";Keep the sleeves rolled\n'
            "p2.jpg;t2.jpg;;\n")
    read = rows(text)
    canonical = canonical_csv(read, {"attr.sku"}).decode()
    assert canonical.splitlines()[0] == ("row,id,person,top,bottom,dress,keep,model,resolution,"
                                         "restore_face,priority,instruction,attr.sku,error")
    # What Step Functions' CSV reader hands each child: every cell a string.
    items = list(csv.DictReader(io.StringIO(canonical)))
    assert [row_of_item(item) for item in items] == read
    assert [look_of(row_of_item(item), MODEL).instruction for item in items] == [
        "Keep the sleeves rolled", None]


def test_a_rows_read_time_fault_travels_in_the_canonical_csvs_error_column():
    text = ("id,person,top,resolution\n"
            "a,p.jpg,t.jpg,1024\n"
            f"b,p.jpg,{'x' * 3000},\n")
    read = rows(text)
    assert read[1].error and read[1].error.column == "top"
    repeated = RowError(4, "id", "repeats the id of row 2", code="DuplicateLookId")
    marked = [*read, Row(4, {"id": "a", "person": "p.jpg"}, repeated)]
    canonical = canonical_csv(marked, set()).decode()
    items = list(csv.DictReader(io.StringIO(canonical)))
    assert items[0]["error"] == ""
    back = [row_of_item(item) for item in items]
    assert back == marked
    with pytest.raises(RowError) as caught:
        look_of(back[2], MODEL)
    assert caught.value.code == "DuplicateLookId" and str(caught.value) == (
        "row 4, column id: repeats the id of row 2")
    assert look_of(back[0], MODEL).parameters()["resolution"] == 1024


def test_the_suffix_says_how_a_file_under_jobs_is_read():
    assert (kind_of("jobs/ss27.csv"), kind_of("jobs/SS27.CSV"), kind_of("jobs/x.jsonl")) == (
        "csv", "csv", "jsonl")
    assert kind_of("jobs/x.json") is None and kind_of("jobs/x.csv.txt") is None
