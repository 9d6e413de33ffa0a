"""A customer's time zone and language as their browser reports them: what is kept, what is
refused (shared.locales and the contract types built on it)."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from shared.contracts.base import LanguageTag, TimeZoneName
from shared.locales import is_language_tag, is_time_zone


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("Europe/Zurich", True),
        ("America/Argentina/Buenos_Aires", True),
        ("UTC", True),
        ("Etc/GMT+5", True),
        ("europe/zurich", False),  # names are exact
        ("Mars/Olympus_Mons", False),
        ("../../etc/passwd", False),  # never read as a path
        ("/usr/share/zoneinfo/UTC", False),
        ("Europe/Zurich\n", False),
        ("", False),
        ("Europe/Zurich" + "x" * 100, False),
    ],
)
def test_a_time_zone_is_an_iana_name(name, ok):
    assert is_time_zone(name) is ok


@pytest.mark.parametrize(
    ("tag", "ok"),
    [
        ("de", True),
        ("de-CH", True),
        ("en-US", True),
        ("zh-Hant-TW", True),
        ("sr-Latn-RS", True),
        ("es-419", True),
        ("en-US-u-ca-gregory", True),
        ("en_US", False),  # a POSIX locale, not BCP 47
        ("xx-YY", False),  # no such language
        ("e", False),
        ("de-CH-", False),
        ("<script>", False),
        ("de CH", False),
        ("", False),
        ("en-" + "-".join(["abcdefgh"] * 5), False),  # too long
    ],
)
def test_a_language_is_a_bcp47_tag(tag, ok):
    assert is_language_tag(tag) is ok


def test_the_contract_types_say_which_value_is_wrong():
    assert TypeAdapter(TimeZoneName).validate_python("Europe/Zurich") == "Europe/Zurich"
    assert TypeAdapter(LanguageTag).validate_python("de-CH") == "de-CH"
    with pytest.raises(ValidationError, match="not an IANA time zone name"):
        TypeAdapter(TimeZoneName).validate_python("Mars/Olympus_Mons")
    with pytest.raises(ValidationError, match="not a BCP 47 language tag"):
        TypeAdapter(LanguageTag).validate_python("en_US")
