"""``lab-ci serve`` whose checks run another job-process target, for tests.

Usage: ``python tests/bot/serve_with_target.py MODULE:FUNCTION serve [options]``. The seam
is a module attribute, ``lab_ci.bot.work.CHECK_TARGET`` (what the check handler hands to
the job process): a test points it at a job that simply burns CPU or memory, so the
isolation is tested whatever the checker does with hostile files."""

from __future__ import annotations

import sys

from lab_ci.bot import work
from lab_ci.cli import main

if __name__ == "__main__":
    work.CHECK_TARGET = sys.argv.pop(1)
    sys.exit(main(sys.argv[1:]))
