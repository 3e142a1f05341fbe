"""Personal data detectors and column classification suggestions.

Each detector finds candidates with a pattern, then validates them the way the issuer does, so that ordinary
numbers (order ids, amounts, timestamps) are not taken for personal data:

| classification | what is recognised | validation |
| --- | --- | --- |
| `pii.email` | e-mail addresses | RFC 5321 shape: local part, `@`, a domain with a 2+ letter TLD |
| `pii.phone` | phone numbers in international (`+49 30 1234567`) or national format | Google's libphonenumber (`phonenumberslite`): a valid number for its country (national numbers: `DEFAULT_REGIONS`) |
| `pii.payment_card` | card numbers, 13-19 digits, optionally grouped by spaces or dashes | issuer prefix (Visa, Mastercard, Amex, Discover, JCB, Diners, Maestro, UnionPay) and the Luhn check |
| `pii.iban` | IBANs, compact or in groups of four | the country's IBAN length and the ISO 7064 mod-97 check |
| `pii.national_id` | US SSN (`123-45-6789`), UK National Insurance number (`AB 12 34 56 C`), German tax id (Steuerliche Identifikationsnummer, 11 digits) | SSN: no area 000/666/9xx, group 00 or serial 0000; NINO: HMRC's excluded letters and prefixes; Steuer-ID: ISO 7064 MOD 11,10 check digit and its digit-repetition rule |

Bare 9-digit numbers are not taken for SSNs, nor bare digit runs for national phone numbers unless they start
with a trunk 0 (far too many false positives: ids, timestamps): those need their separators.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

EMAIL = "pii.email"
PHONE = "pii.phone"
PAYMENT_CARD = "pii.payment_card"
IBAN = "pii.iban"
NATIONAL_ID = "pii.national_id"
CLASSIFICATIONS = (EMAIL, PHONE, PAYMENT_CARD, IBAN, NATIONAL_ID)
_SPECIFICITY = (EMAIL, IBAN, PAYMENT_CARD, NATIONAL_ID, PHONE)
# Regions tried for phone numbers written without a country code (the shop's markets).
DEFAULT_REGIONS = ("US", "GB", "DE", "FR")

_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
                    r"[A-Za-z]{2,24}(?![\w-])")
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?![A-Za-z0-9])")
_SSN = re.compile(r"(?<![\d-])(\d{3})([- ])(\d{2})\2(\d{4})(?![\d-])")
_NINO = re.compile(r"(?<![A-Za-z0-9])([A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]) ?(\d{2}) ?(\d{2}) ?(\d{2}) ?([A-D])"
                   r"(?![A-Za-z0-9])", re.IGNORECASE)
_STEUER_ID = re.compile(r"(?<![\d-])[1-9]\d(?: ?\d){9}(?![\d-])")
_PHONE = re.compile(r"(?<![\w+.-])(?:\+|00)?(?:\(\d{1,5}\) ?)?\d[\d ()./-]{5,18}\d(?![\w.-]\w)")
# Dates, IP addresses, versions, amounts, SSN-shaped numbers: never phone numbers, whatever a parser accepts.
_NOT_PHONE = re.compile(r"\d{4}[-/.]\d{2}[-/.]\d{2}.*|\d+(?:\.\d+)+|\d{3}-\d{2}-\d{4}")

# IBAN lengths by country (SWIFT IBAN registry, the European countries and the other common ones).
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29, "CH": 21,
    "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18,
    "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23,
    "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27,
    "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29,
    "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "TN": 24, "TR": 26,
    "UA": 29, "VG": 24, "XK": 20,
}
_NINO_BAD_PREFIXES = {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}


@dataclass(frozen=True)
class Finding:
    classification: str
    start: int
    end: int
    text: str


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card_brand_ok(digits: str) -> bool:
    n = len(digits)
    two, four, six = int(digits[:2]), int(digits[:4]), int(digits[:6])
    return ((digits[0] == "4" and n in (13, 16, 19))  # Visa
            or ((51 <= two <= 55 or 2221 <= four <= 2720) and n == 16)  # Mastercard
            or (two in (34, 37) and n == 15)  # American Express
            or ((four == 6011 or two == 65 or 644 <= int(digits[:3]) <= 649 or 622126 <= six <= 622925)
                and n in (16, 19))  # Discover
            or (3528 <= four <= 3589 and 16 <= n <= 19)  # JCB
            or ((300 <= int(digits[:3]) <= 305 or two in (36, 38, 39)) and 14 <= n <= 19)  # Diners Club
            or (two in (50, 56, 57, 58, 63, 67) and 12 <= n <= 19)  # Maestro
            or (two == 62 and 16 <= n <= 19))  # UnionPay


def card_ok(candidate: str) -> bool:
    digits = re.sub(r"[ -]", "", candidate)
    return 13 <= len(digits) <= 19 and _card_brand_ok(digits) and luhn_ok(digits)


def iban_ok(candidate: str) -> bool:
    compact = candidate.replace(" ", "").upper()
    if IBAN_LENGTHS.get(compact[:2]) != len(compact) or not compact.isalnum():
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def ssn_ok(area: str, group: str, serial: str) -> bool:
    return area not in ("000", "666") and not area.startswith("9") and group != "00" and serial != "0000"


def nino_ok(prefix: str) -> bool:
    return prefix.upper() not in _NINO_BAD_PREFIXES


def steuer_id_ok(candidate: str) -> bool:
    """German tax id: 11 digits, no leading 0; in the first ten exactly one digit repeats (twice or three
    times, a triple never adjacent), and the ISO 7064 MOD 11,10 check digit."""
    digits = candidate.replace(" ", "")
    if len(digits) != 11 or digits[0] == "0":
        return False
    counts = Counter(digits[:10])
    repeated = [d for d, c in counts.items() if c > 1]
    if len(repeated) != 1 or counts[repeated[0]] > 3:
        return False
    if counts[repeated[0]] == 3 and repeated[0] * 3 in digits[:10]:
        return False
    product = 10
    for ch in digits[:10]:
        total = (int(ch) + product) % 10 or 10
        product = (total * 2) % 11
    check = (11 - product) % 10
    return check == int(digits[10])


def _phones(text: str, regions: tuple[str, ...]) -> Iterable[Finding]:
    import phonenumbers

    for match in _PHONE.finditer(text):
        raw = match.group(0)
        digits = re.sub(r"\D", "", raw)
        if not 7 <= len(digits) <= 15 or _NOT_PHONE.fullmatch(raw):
            continue
        international = raw.startswith(("+", "00"))
        if not international and raw.isdigit() and not raw.startswith("0"):
            continue  # a bare run of digits (an id, a timestamp) is not taken for a national number
        for region in (None,) if international else regions:
            try:
                number = phonenumbers.parse("+" + raw[2:] if raw.startswith("00") else raw, region)
            except phonenumbers.NumberParseException:
                continue
            if phonenumbers.is_valid_number(number):
                yield Finding(PHONE, match.start(), match.end(), raw)
                break


def detect(text: str, regions: tuple[str, ...] = DEFAULT_REGIONS) -> list[Finding]:
    """Every validated piece of personal data in `text`, leftmost first; overlapping candidates resolve to the
    most specific classification (a card number is not also reported as a phone number)."""
    if not text:
        return []
    found: list[Finding] = []
    found += [Finding(EMAIL, m.start(), m.end(), m.group(0)) for m in _EMAIL.finditer(text)]
    found += [Finding(PAYMENT_CARD, m.start(), m.end(), m.group(0)) for m in _CARD.finditer(text)
              if card_ok(m.group(0))]
    found += [Finding(IBAN, m.start(), m.end(), m.group(0)) for m in _IBAN.finditer(text) if iban_ok(m.group(0))]
    found += [Finding(NATIONAL_ID, m.start(), m.end(), m.group(0)) for m in _SSN.finditer(text)
              if ssn_ok(m.group(1), m.group(3), m.group(4))]
    found += [Finding(NATIONAL_ID, m.start(), m.end(), m.group(0)) for m in _NINO.finditer(text)
              if nino_ok(m.group(1))]
    found += [Finding(NATIONAL_ID, m.start(), m.end(), m.group(0)) for m in _STEUER_ID.finditer(text)
              if steuer_id_ok(m.group(0))]
    found += list(_phones(text, regions))
    # Overlaps resolve to the most specific kind (an IBAN's digits are no card number, a card's no phone).
    accepted: list[Finding] = []
    for finding in sorted(found, key=lambda f: (_SPECIFICITY.index(f.classification), f.start)):
        if not any(a.start < finding.end and finding.start < a.end for a in accepted):
            accepted.append(finding)
    return sorted(accepted, key=lambda f: (f.start, -f.end))


def classify_value(text: str) -> str | None:
    """The classification of a value that is, as a whole, one piece of personal data (a column cell)."""
    stripped = text.strip() if isinstance(text, str) else ""
    findings = detect(stripped)
    if findings and findings[0].start == 0 and findings[0].end == len(stripped):
        return findings[0].classification
    return None


# Column names that say what a column holds, whatever its values look like in a sample.
_NAME_HINTS = [
    (re.compile(r"(^|_)e?mail(_address)?($|_)"), EMAIL),
    (re.compile(r"(^|_)(phone|mobile|msisdn|tel|telephone)(_number)?($|_)"), PHONE),
    (re.compile(r"(^|_)(card_number|pan|cc_number|credit_card)($|_)"), PAYMENT_CARD),
    (re.compile(r"(^|_)iban($|_)"), IBAN),
    (re.compile(r"(^|_)(ssn|nino|national_id|tax_id|steuer_id|passport(_number)?)($|_)"), NATIONAL_ID),
    (re.compile(r"(^|_)(full_name|first_name|last_name|surname|given_name)($|_)"), "pii.name"),
    (re.compile(r"(^|_)(address|street|postcode|zip_code|ip_address)($|_)"), "pii.location"),
]


@dataclass(frozen=True)
class Suggestion:
    column: str
    classification: str
    confidence: float  # share of the sampled non-null values recognised (1.0 for a name hint alone)
    evidence: str


def suggest(column: str, values: Iterable[object], threshold: float = 0.8) -> Suggestion | None:
    """A classification for a column from its name and a sample of its values, or None when nothing points to
    personal data. Values decide when at least `threshold` of the non-null strings are one kind of PII."""
    sample = [v for v in values if isinstance(v, str) and v.strip()]
    kinds = Counter(classify_value(v) for v in sample)
    kinds.pop(None, None)
    if sample and kinds:
        kind, hits = kinds.most_common(1)[0]
        share = hits / len(sample)
        if share >= threshold:
            return Suggestion(column, kind, round(share, 3), f"{hits} of {len(sample)} sampled values")
    for pattern, kind in _NAME_HINTS:
        if pattern.search(column.lower()):
            return Suggestion(column, kind, 1.0, "column name")
    return None
