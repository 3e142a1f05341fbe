"""Reading raw Kafka values: every record is either read or rejected with a precise reason, never lost."""
from __future__ import annotations

import json

import pyarrow as pa
import pytest

from workloads.medallion.records import read_values
from workloads.medallion.tables import EVENT_FIELDS

SCHEMA = pa.schema([("event_id", pa.string()), ("event_time", pa.timestamp("us", tz="UTC")),
                    ("order_id", pa.string()), ("line_number", pa.int64()), ("product_id", pa.string()),
                    ("category", pa.string()), ("quantity", pa.int64()), ("unit_price", pa.float64()),
                    ("discount", pa.float64())])
REQUIRED = [f.name for f in EVENT_FIELDS["order_lines"] if f.required]
GOOD = {"event_id": "e", "event_time": "2026-01-01T10:00:00.5Z", "order_id": "o1", "line_number": 1,
        "product_id": "p1", "category": "books", "quantity": 2, "unit_price": 9.99}


def encode(**changes) -> bytes:
    return json.dumps({**GOOD, **changes}).encode()


def read(values, max_bytes: int = 10_000):
    return read_values(values, SCHEMA, REQUIRED, max_bytes)


@pytest.mark.parametrize("payload, code, words", [
    (b'{"event_id": "e", ', "malformed_json", "malformed JSON"),
    (b"\xff\xfe{}", "malformed_json", "UTF-8"),
    (b"[1, 2]", "not_an_object", "array"),
    (b'"text"', "not_an_object", "string"),
    (encode(quantity="two"), "wrong_type", "'quantity' must be an integer, got string"),
    (encode(quantity=1.5), "wrong_type", "'quantity' must be an integer, got number"),
    (encode(quantity=True), "wrong_type", "'quantity' must be an integer, got boolean"),
    (encode(quantity=2**70), "wrong_type", "64-bit"),
    (encode(unit_price="9.99"), "wrong_type", "'unit_price' must be a number"),
    (encode(event_time="yesterday"), "wrong_type", "not an ISO-8601 timestamp"),
    (encode(order_id=None), "missing_field", "order_id"),
    (json.dumps({k: v for k, v in GOOD.items() if k not in ("order_id", "category")}).encode(), "missing_field",
     "order_id, category"),
    (b'{"event_id": "a", "event_id": "b"}', "duplicate_field", "'event_id' appears more than once"),
    (encode(meta={"a": 1}), "unsupported_field", "nested"),
    (encode(**{"Bad Name": 1}), "unsupported_field", "not a valid column name"),
    (b"", "empty", "empty payload"),
    (None, "empty", "empty payload"),
    (encode(padding="x" * 20_000), "oversized", "exceeds the 10000-byte limit"),
])
def test_each_kind_of_bad_record_is_rejected_with_its_reason(payload, code, words):
    values = [encode(event_id="before"), payload, encode(event_id="after")]
    parsed = read(values)
    assert parsed.table.column("event_id").to_pylist() == ["before", "after"]
    assert parsed.indices.tolist() == [0, 2]
    [reject] = parsed.rejects
    assert (reject.index, reject.code) == (1, code)
    assert words in reject.reason


def test_valid_json_with_newlines_or_unicode_is_read():
    pretty = json.dumps({**GOOD, "event_id": "pretty", "category": "bücher ✓"}, indent=2).encode()
    parsed = read([encode(event_id="a"), pretty])
    assert not parsed.rejects
    assert parsed.table.column("category").to_pylist() == ["books", "bücher ✓"]


def test_a_new_field_is_inferred_and_conflicting_types_are_rejected():
    values = [encode(event_id="a"), encode(event_id="b", coupon="X1"), encode(event_id="c", coupon=5),
              encode(event_id="d", coupon=None)]
    parsed = read(values)
    assert [(f.name, f.type) for f in parsed.new_fields] == [("coupon", pa.string())]
    assert parsed.table.column("coupon").to_pylist() == [None, "X1", None]
    [reject] = parsed.rejects
    assert (reject.index, reject.code) == (2, "wrong_type") and "coupon" in reject.reason


def test_many_bad_records_among_many_good_ones_are_all_accounted_for():
    values = [encode(event_id=str(i)) if i % 97 else b"{oops" for i in range(20_000)]
    parsed = read(values)
    bad = {r.index for r in parsed.rejects}
    assert bad == {i for i in range(20_000) if i % 97 == 0}
    assert sorted(parsed.indices.tolist() + sorted(bad)) == list(range(20_000))
    assert parsed.table.num_rows == 20_000 - len(bad)
