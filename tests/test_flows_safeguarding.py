"""The register's address matching and the checks of the DSL-side forms (flows/safeguarding.py), no I/O."""
from __future__ import annotations

from datetime import date

import pytest

from flows.request import FieldErrors
from flows.risk import Flag, address_key, family_key
from flows.safeguarding import validate_flag, validate_referral, validate_share
from storage.store import Store
from tests.conftest import MONDAY_9AM

TODAY = date(2026, 11, 23)


@pytest.mark.parametrize("written", [
    "12 Example Road, Botley OX2 9AA",
    "12, EXAMPLE RD.  botley,ox29aa",
    "12 example road\nOX2 9AA",
    "12 Example Rd OX2  9AA (blue door)",
])
def test_one_address_however_it_is_written_has_one_key(written):
    assert address_key(written) == address_key("12 Example Road, Botley OX2 9AA") == "pc:ox29aa:12"


def test_another_house_or_flat_at_the_same_postcode_is_another_address():
    assert address_key("14 Example Road OX2 9AA") != address_key("12 Example Road OX2 9AA")
    assert address_key("Flat 2, 12 Example Road OX2 9AA") != address_key("12 Example Road OX2 9AA")


def test_without_a_postcode_street_words_are_read_in_full():
    assert address_key("12 Example Rd") == address_key("12, example ROAD") == "12exampleroad"


def test_family_references_ignore_case_spacing_and_punctuation():
    assert family_key("ab-123") == family_key("AB 123") == "AB123"


def test_a_flag_stored_before_postcodes_were_read_still_matches(tmp_path):
    store = Store(tmp_path / "db.sqlite")
    with store.transaction() as tx:
        tx.db.conn.execute(
            "INSERT INTO register (address_key, family_key, flag, reason, author, created_at) VALUES (?, NULL, ?, ?, ?, ?)",
            ["12exampleroadbotleyox29aa", Flag.meet_on_premises.value, "Dog", "U01", MONDAY_9AM.timestamp()],
        )
    [entry] = store.read().register_for("12 Example Road, Botley OX2 9AA", "ZZ9")
    assert entry.flag is Flag.meet_on_premises


def test_a_flag_needs_something_to_be_on_a_flag_and_a_reason():
    with pytest.raises(FieldErrors) as caught:
        validate_flag({"address": " ", "pupil_ref": None, "flag": "bogus", "reason": ""})
    assert set(caught.value.errors) == {"address", "flag", "reason"}


@pytest.mark.parametrize("written", ["23/11/2026", "2026-13-01", "tomorrow"])
def test_a_date_in_the_wrong_form_is_named_with_the_form_to_use(written):
    with pytest.raises(FieldErrors) as caught:
        validate_referral({"agency": "Early Help", "referred_on": written, "consent": "yes"}, TODAY)
    assert "write it like 2026-11-30 (year-month-day)" in caught.value.errors["referred_on"]


def test_sharing_with_no_one_or_several_is_refused():
    for people in ([], ["U02", "U03"]):
        with pytest.raises(FieldErrors) as caught:
            validate_share({"shared_with": people, "shared_on": "2026-11-23", "why": "x"}, TODAY, "U10")
        assert "one colleague" in caught.value.errors["shared_with"]
