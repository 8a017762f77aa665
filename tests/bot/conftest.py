"""The bot tests' fixtures live in botlib.py (importable by a unique name; see
tests/labtest.py for why tests never ``from conftest import``)."""

from botlib import *  # noqa: F401,F403
