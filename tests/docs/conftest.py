"""The documentation tests import the site's generators from docs/_hooks/."""

from __future__ import annotations

import sys
from pathlib import Path

HOOKS = Path(__file__).resolve().parents[2] / "docs" / "_hooks"
if str(HOOKS) not in sys.path:
    sys.path.insert(0, str(HOOKS))
