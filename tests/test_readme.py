"""The README stays true: every setting and every topic is documented."""

from __future__ import annotations

from pathlib import Path

from shared.config import variable_names
from shared.topics import TOPICS

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_every_setting_is_documented():
    missing = [name for name in sorted(variable_names()) if name not in README]
    assert missing == []


def test_every_topic_is_documented():
    missing = [name for name in TOPICS if f"`{name}`" not in README]
    assert missing == []
