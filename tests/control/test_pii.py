from __future__ import annotations

import pytest

from keel.control.pii import (
    PII_KINDS,
    de_steuer_id_ok,
    find_pii,
    fr_nir_ok,
    iban_ok,
    luhn_ok,
    no_fodselsnummer_ok,
    rodne_cislo_ok,
)

VALID = [
    ("email", "jane.doe+crm@example.co.uk"),
    ("phone", "+46 70 123 45 67"),
    ("phone", "+47 412 34 567"),
    ("phone", "0046 70-123 45 67"),
    ("phone", "070-123 45 67"),
    ("phone", "08-123 456 78"),
    ("phone", "040 123 4567"),
    ("phone", "030 12345678"),
    ("phone", "06 12 34 56 78"),
    ("phone", "0905 123 456"),
    ("iban", "SE45 5000 0000 0583 9825 7466"),
    ("iban", "DE89370400440532013000"),
    ("iban", "GB82 WEST 1234 5698 7654 32"),
    ("iban", "NO93 8601 1117 947"),
    ("iban", "FI21 1234 5600 0007 85"),
    ("iban", "DK50 0040 0440 1162 43"),
    ("iban", "FR14 2004 1010 0505 0001 3M02 606"),
    ("iban", "CZ65 0800 0000 1920 0014 5399"),
    ("iban", "SK31 1200 0000 1987 4263 7541"),
    ("payment_card", "4111 1111 1111 1111"),
    ("payment_card", "5500-0000-0000-0004"),
    ("payment_card", "378282246310005"),
    ("se_personnummer", "811228-9874"),
    ("se_personnummer", "19811228-9874"),
    ("se_personnummer", "811288-9871"),  # samordningsnummer (day + 60)
    ("no_fodselsnummer", "15076500565"),
    ("dk_cpr", "241285-1237"),
    ("fi_henkilotunnus", "131052-308T"),
    ("fi_henkilotunnus", "010594Y803U"),  # 2023 century sign
    ("de_steuer_id", "86095742719"),
    ("fr_nir", "1 85 05 78 006 084 91"),
    ("cz_sk_rodne_cislo", "736028/5163"),
]


@pytest.mark.parametrize(("kind", "value"), VALID, ids=[f"{k}:{v}" for k, v in VALID])
def test_valid_identifiers_are_found_with_exact_spans(kind: str, value: str) -> None:
    text = f"Kontakt: {value}. Tack!"
    [finding] = find_pii(text)
    assert finding.kind == kind
    assert text[finding.start : finding.end] == value
    assert finding.rule == f"pii.{kind}"


INVALID_CHECKSUMS = [
    "SE45 5000 0000 0583 9825 7467",  # IBAN mod-97 off by one
    "GB82 WEST 1234 5698 7654 33",
    "4111 1111 1111 1112",  # Luhn fails
    "811228-9875",  # personnummer Luhn fails
    "15076500566",  # fødselsnummer k2 wrong
    "131052-308A",  # henkilötunnus check char wrong
    "86095742718",  # Steuer-ID check digit wrong
    "1 85 05 78 006 084 36",  # NIR key wrong
    "736028/5164",  # rodné číslo not divisible by 11
    "320185-1234",  # CPR shape with an impossible date
]


@pytest.mark.parametrize("value", INVALID_CHECKSUMS)
def test_invalid_checksums_are_not_flagged(value: str) -> None:
    assert find_pii(f"ref {value} end") == []


BENIGN = [
    "Order #100234 total 1 299,00 kr on 2026-03-15",
    "Projects P-2026-0042 and P-2025-1187 are late",
    "Invoice INV-20260315-0042 was paid",
    "Order no. 0012345678 shipped",
    "Price 12.50 EUR, 1.234.567 SEK, 1,299.00 USD",
    "Meeting 15.01.2026 at 10:30, or 01/02/2026 10:30",
    "Build 2026.11.25.1234, version 10.0.19045.4046",
    "Tracking 1Z999AA10123456784",
    "Unix time 1764064800, id 1234567890, account 12345678901",
    "ISBN 978-3-16-148410-0",
    "Project code 4000-1234-5678-9012",
    "qty 5 x 199.00 = 995.00",
]


@pytest.mark.parametrize("text", BENIGN)
def test_order_numbers_dates_prices_and_ids_are_not_pii(text: str) -> None:
    assert find_pii(text) == []


def test_kinds_filter_and_overlaps_resolve_to_one_finding() -> None:
    text = "mail a@b.se, card 4111111111111111, iban SE4550000000058398257466"
    assert [f.kind for f in find_pii(text)] == ["email", "payment_card", "iban"]
    assert [f.kind for f in find_pii(text, ["iban"])] == ["iban"]
    for f in find_pii(text):
        assert f.start is not None and f.end is not None


def test_locale_breaks_ties_between_national_formats() -> None:
    ambiguous = "070761-4285"  # valid as a Swedish and a Danish number
    assert find_pii(ambiguous, locale="da-DK")[0].kind == "dk_cpr"
    assert find_pii(ambiguous, locale="sv")[0].kind == "se_personnummer"


def test_unhyphenated_cpr_needs_mod11_or_the_word_cpr() -> None:
    assert find_pii("nr 3112991235", ["dk_cpr"]) == []
    assert find_pii("CPR: 3112991235", ["dk_cpr"])[0].score == 0.75


def test_phone_numbers_without_trunk_prefix_need_a_phone_word() -> None:
    assert find_pii("ordre 22334455") == []
    assert [f.kind for f in find_pii("tlf. 22 33 44 55")] == ["phone"]
    assert [f.kind for f in find_pii("tel: 777 123 456")] == ["phone"]


def test_finding_never_carries_the_value() -> None:
    [f] = find_pii("jane@example.com")
    assert "jane" not in repr(f)


def test_checksum_functions() -> None:
    assert luhn_ok("79927398713") and not luhn_ok("79927398710")
    assert iban_ok("SE4550000000058398257466")
    assert no_fodselsnummer_ok("15076500565")
    assert de_steuer_id_ok("86095742719") and not de_steuer_id_ok("11111111111")
    assert fr_nir_ok("1", "85", "05", "78", "006", "084", "91")
    assert fr_nir_ok("2", "69", "02", "2A", "341", "732", f"{97 - int('2690219341732') % 97:02d}")
    assert rodne_cislo_ok("7360285163")
    assert len(PII_KINDS) == 11
