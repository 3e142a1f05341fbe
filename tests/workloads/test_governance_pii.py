"""PII detectors on hand-labelled true and false positives, classification suggestions, and the masking
functions (Python and the SQL the query engines run must agree)."""
from __future__ import annotations

import duckdb
import pytest
from sqlglot import exp

from benchmarks.pii import run as bench
from workloads.governance import pii
from workloads.governance.masking import mask_sql, mask_value

TRUE_POSITIVES = [
    ("write to ada.lovelace@example.com today", pii.EMAIL, "ada.lovelace@example.com"),
    ("call +49 30 12345678 after 5", pii.PHONE, "+49 30 12345678"),
    ("US office (415) 555-2671", pii.PHONE, "(415) 555-2671"),
    ("London 020 7946 0958.", pii.PHONE, "020 7946 0958"),
    ("card 4111 1111 1111 1111 on file", pii.PAYMENT_CARD, "4111 1111 1111 1111"),
    ("amex 378282246310005", pii.PAYMENT_CARD, "378282246310005"),
    ("IBAN DE89 3704 0044 0532 0130 00", pii.IBAN, "DE89 3704 0044 0532 0130 00"),
    ("pay to GB82WEST12345698765432", pii.IBAN, "GB82WEST12345698765432"),
    ("SSN 123-45-6789", pii.NATIONAL_ID, "123-45-6789"),
    ("NI number AB 12 34 56 C", pii.NATIONAL_ID, "AB 12 34 56 C"),
    ("Steuer-ID 86095742719", pii.NATIONAL_ID, "86095742719"),
]
FALSE_POSITIVES = [
    "order o-000000123 total 1234.56 EUR",
    "card 4111 1111 1111 1112",  # Luhn fails
    "IBAN DE89 3704 0044 0532 0130 01",  # mod-97 fails
    "SSN 000-12-3456 and 666-12-3456 and 912-12-3456",  # areas never issued
    "NINO QQ123456C",  # excluded prefix
    "tax id 86095742718",  # check digit wrong
    "id 550e8400-e29b-41d4-a716-446655440000",
    "at 2026-01-01 10:00 from 192.168.1.10, v1.24.1",
    "timestamp 1767225600",
    "user at example dot com",
]


@pytest.mark.parametrize(("text", "kind", "value"), TRUE_POSITIVES)
def test_detectors_find_validated_personal_data(text, kind, value):
    assert [(f.classification, f.text) for f in pii.detect(text)] == [(kind, value)]


@pytest.mark.parametrize("text", FALSE_POSITIVES)
def test_detectors_ignore_lookalikes(text):
    assert pii.detect(text) == []


def test_overlaps_resolve_to_the_most_specific_kind():
    found = pii.detect("NL91ABNA0417164300 and 4111111111111111")
    assert [(f.classification, f.text) for f in found] == [(pii.IBAN, "NL91ABNA0417164300"),
                                                           (pii.PAYMENT_CARD, "4111111111111111")]


def test_suggestions_from_values_and_names():
    emails = [f"user{i}@example.com" for i in range(9)] + ["not an email"]
    hint = pii.suggest("contact", emails)
    assert (hint.classification, hint.confidence, hint.evidence) == (pii.EMAIL, 0.9, "9 of 10 sampled values")
    assert pii.suggest("contact", emails[:5] + ["x"] * 5) is None  # below the 80 % threshold
    assert pii.suggest("phone_number", [None, None]).classification == pii.PHONE  # the name alone
    assert pii.suggest("coupon_code", ["WELCOME10", "SPRING"]) is None


def test_benchmark_reports_precision_and_recall_against_the_baseline():
    figures = bench(repeat=1)
    assert figures["labelled"] == 300 and figures["texts"] > figures["labelled"]
    assert figures["detectors"]["precision"] >= 0.95 and figures["detectors"]["recall"] >= 0.95
    assert figures["baseline"]["precision"] < figures["detectors"]["precision"]


VALUES = ["ada@example.com", "4111111111111111", "abc", None, "+49 30 1234"]


@pytest.mark.parametrize("mask", ["redact", "hash", "partial", "null"])
def test_sql_masks_equal_the_python_masks(mask, monkeypatch):
    monkeypatch.setenv("DP_MASK_SALT", "pepper")
    con = duckdb.connect()
    con.execute("CREATE TABLE t (v VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?)", [[v] for v in VALUES])
    got = [r[0] for r in con.sql(exp.select(mask_sql("v", mask, "string")).from_("t").sql("duckdb")).fetchall()]
    assert got == [mask_value(v, mask) for v in VALUES]


def test_mask_values():
    assert mask_value("ada@example.com", "partial") == "a***@example.com"
    assert mask_value("4111111111111111", "partial") == "***1111"
    assert mask_value("abcd", "partial") == "***"
    assert mask_value("x", "redact") == "***" and mask_value(None, "redact") is None
    assert mask_value("x", "hash") == mask_value("x", "hash") != mask_value("y", "hash")
    with pytest.raises(ValueError, match="unknown mask"):
        mask_value("x", "scramble")
    assert "TO_HEX(SHA256(TO_UTF8(" in exp.select(mask_sql("v", "hash", "string")).from_("t").sql("trino")
