"""Take the screenshots shown in the README: `python -m tests.screenshots` (writes `docs/*.png`).

It runs the screenshot scenario of the browser tests against a fresh stack, like `make test`.
"""

from __future__ import annotations

import os
import sys

import pytest

from tests.conftest import ROOT
from tests.test_browser_screenshots import SCREENSHOTS_DIR


def main() -> int:
    os.environ[SCREENSHOTS_DIR] = str(ROOT / "docs")
    return pytest.main(["-q", "-p", "no:cacheprovider", "-rs",
                        str(ROOT / "tests" / "test_browser_screenshots.py")])


if __name__ == "__main__":
    sys.exit(main())
