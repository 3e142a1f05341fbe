"""`dp bench pii`: precision and recall of the PII detectors on a labelled sample, next to a baseline of plain
regular expressions (no validation: what a quick scan would use) measured on the same sample in the same run,
and the throughput of both.

The sample is generated (seeded): valid values of each kind, written the ways people write them, inside short
texts; and hard negatives that look like them: numbers failing the Luhn or mod-97 checks, SSNs with reserved
areas, NINOs with excluded prefixes, order ids, timestamps, amounts, UUIDs, IP addresses, dates, SKUs.
A detection counts as true when its span and classification match a labelled one.
"""
from __future__ import annotations

import random
import re
import string
import time
from collections import Counter
from typing import Any

from workloads.governance import pii

BASELINE = {  # the regular expressions alone
    pii.EMAIL: re.compile(r"\S+@\S+\.\w+"),
    pii.PHONE: re.compile(r"\+?\(?\d[\d ()-]{7,}\d"),
    pii.PAYMENT_CARD: re.compile(r"\b(?:\d[ -]?){13,19}\b"),
    pii.IBAN: re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b"),
    pii.NATIONAL_ID: re.compile(r"\b\d{3}-\d{2}-\d{4}\b|\b[A-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b|\b\d{11}\b"),
}
TEMPLATES = ["{v}", "contact: {v}", "Customer wrote {v} in the notes.", "{v}; follow up tomorrow", "ref ({v})"]


def _luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    for check in string.digits:
        if pii.luhn_ok(body + check):
            return body + check
    raise AssertionError("unreachable")


def _iban(country: str, rng: random.Random) -> str:
    bban = "".join(rng.choice(string.digits) for _ in range(pii.IBAN_LENGTHS[country] - 4))
    number = int("".join(str(int(ch, 36)) for ch in bban + country + "00"))
    return f"{country}{98 - number % 97:02d}{bban}"


def _steuer_id(rng: random.Random) -> str:
    while True:
        digits = [rng.choice("123456789")] + [rng.choice(string.digits) for _ in range(9)]
        for check in string.digits:
            candidate = "".join(digits) + check
            if pii.steuer_id_ok(candidate):
                return candidate


def _group(text: str, size: int = 4) -> str:
    return " ".join(text[i:i + size] for i in range(0, len(text), size))


def positives(rng: random.Random) -> list[tuple[str, str]]:
    names = ["ada.lovelace", "alan_turing", "g.hopper+news", "linus", "m-hamilton"]
    domains = ["example.com", "mail.example.org", "uni-heidelberg.de", "example.co.uk"]
    out = [(pii.EMAIL, f"{rng.choice(names)}{rng.randint(1, 999)}@{rng.choice(domains)}") for _ in range(60)]
    phones = ["+49 30 {a}{b}", "+44 20 7946 {c}", "(415) 555-{c}", "+1 415-555-{c}", "030 {a}{b}", "0151 {c} {c}",
              "+33 1 42 68 {d} {d}", "020 7946 {c}"]
    for _ in range(60):
        out.append((pii.PHONE, rng.choice(phones).format(a=rng.randint(1000, 9999), b=rng.randint(1000, 9999),
                                                         c=rng.randint(1000, 9999), d=rng.randint(10, 99))))
    for _ in range(60):
        prefix, length = rng.choice([("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("34", 15), ("37", 15),
                                     ("6011", 16)])
        card = _luhn_complete(prefix, length, rng)
        out.append((pii.PAYMENT_CARD, rng.choice([card, _group(card), _group(card).replace(" ", "-")])))
    for _ in range(60):
        iban = _iban(rng.choice(["DE", "GB", "FR", "NL", "ES", "IT", "AT", "CH"]), rng)
        out.append((pii.IBAN, rng.choice([iban, _group(iban)])))
    for _ in range(20):
        area = rng.choice([n for n in range(1, 900) if n != 666])
        out.append((pii.NATIONAL_ID, f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"))
    for _ in range(20):
        prefix = rng.choice(["AB", "CE", "JG", "PR", "TW", "HN"])
        digits = f"{rng.randint(0, 999999):06d}"
        out.append((pii.NATIONAL_ID, rng.choice([f"{prefix}{digits}{rng.choice('ABCD')}",
                                                 f"{prefix} {digits[:2]} {digits[2:4]} {digits[4:]} {rng.choice('ABCD')}"])))
    out += [(pii.NATIONAL_ID, _steuer_id(rng)) for _ in range(20)]
    return out


def negatives(rng: random.Random) -> list[str]:
    out = []
    for _ in range(40):
        card = _luhn_complete("4", 16, rng)
        out.append(card[:-1] + str((int(card[-1]) + rng.randint(1, 9)) % 10))  # Luhn fails
    for _ in range(40):
        iban = _iban("DE", rng)
        out.append(iban[:2] + f"{(int(iban[2:4]) + 1) % 100:02d}" + iban[4:])  # mod-97 fails
    out += [f"{rng.choice(['000', '666', '912'])}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"
            for _ in range(20)]
    out += [f"{rng.choice(['QQ', 'GB', 'BG', 'DA'])}{rng.randint(0, 999999):06d}{rng.choice('ABCD')}"
            for _ in range(20)]
    out += [f"o-{rng.randint(0, 10**9):09d}" for _ in range(20)]
    out += [str(rng.randint(1_600_000_000, 1_800_000_000)) for _ in range(20)]  # unix timestamps
    out += [f"{rng.randint(1, 99999)}.{rng.randint(0, 99):02d} EUR" for _ in range(20)]
    out += [f"{rng.getrandbits(32):08x}-{rng.getrandbits(16):04x}-{rng.getrandbits(16):04x}-"
            f"{rng.getrandbits(16):04x}-{rng.getrandbits(48):012x}" for _ in range(20)]
    out += [".".join(str(rng.randint(1, 254)) for _ in range(4)) for _ in range(20)]
    out += [f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} {rng.randint(0, 23):02d}:00" for _ in range(20)]
    out += [f"sku-{rng.randint(0, 99999):05d}" for _ in range(20)]
    out += [str(rng.randint(10**10, 10**11 - 1)) for _ in range(40)]  # 11 digits, mostly failing the Steuer-ID
    out += ["user at example dot com", "v1.24.1", "x@y", "@handle", "+++"] * 4
    return out


def sample(seed: int = 7) -> list[tuple[str, list[tuple[str, str]]]]:
    """(text, [(classification, value)]) pairs; negatives carry no labels."""
    rng = random.Random(seed)
    texts = [(rng.choice(TEMPLATES).format(v=value), [(kind, value)]) for kind, value in positives(rng)]
    texts += [(rng.choice(TEMPLATES).format(v=value), []) for value in negatives(rng)]
    rng.shuffle(texts)
    return texts


def _baseline(text: str) -> list[tuple[str, str]]:
    return [(kind, m.group(0)) for kind, pattern in BASELINE.items() for m in pattern.finditer(text)]


def _score(found: list[list[tuple[str, str]]], labels: list[list[tuple[str, str]]]) -> dict[str, dict[str, Any]]:
    counts: dict[str, Counter] = {k: Counter() for k in pii.CLASSIFICATIONS}
    for got, want in zip(found, labels):
        got_set, want_set = set(got), set(want)
        for kind, value in got_set:
            counts.setdefault(kind, Counter())["tp" if (kind, value) in want_set else "fp"] += 1
        for kind, value in want_set - got_set:
            counts[kind]["fn"] += 1
    scores = {}
    for kind, c in counts.items():
        precision = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 1.0
        recall = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else 1.0
        scores[kind] = {"precision": round(precision, 3), "recall": round(recall, 3), "tp": c["tp"], "fp": c["fp"],
                        "fn": c["fn"]}
    return scores


def _overall(scores: dict[str, dict[str, Any]]) -> dict[str, float]:
    tp = sum(s["tp"] for s in scores.values())
    fp = sum(s["fp"] for s in scores.values())
    fn = sum(s["fn"] for s in scores.values())
    return {"precision": round(tp / (tp + fp), 3) if tp + fp else 1.0,
            "recall": round(tp / (tp + fn), 3) if tp + fn else 1.0}


def run(seed: int = 7, repeat: int = 20) -> dict[str, Any]:
    texts = sample(seed)
    labels = [want for _, want in texts]
    timings = {}
    results = {}
    for name, detector in (("detectors", lambda t: [(f.classification, f.text) for f in pii.detect(t)]),
                           ("baseline", _baseline)):
        started = time.perf_counter()
        for _ in range(repeat):
            found = [detector(text) for text, _ in texts]
        timings[name] = len(texts) * repeat / (time.perf_counter() - started)
        results[name] = _score(found, labels)
    return {
        "texts": len(texts), "labelled": sum(len(w) for w in labels),
        "detectors": {**_overall(results["detectors"]), "texts_per_s": round(timings["detectors"])},
        "baseline": {**_overall(results["baseline"]), "texts_per_s": round(timings["baseline"])},
        "per_class": {kind: {"precision": s["precision"], "recall": s["recall"],
                             "baseline_precision": results["baseline"][kind]["precision"],
                             "baseline_recall": results["baseline"][kind]["recall"]}
                      for kind, s in results["detectors"].items()},
    }
