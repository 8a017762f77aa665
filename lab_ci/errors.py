"""Errors that reach the user as one clear line and a non-zero exit, never a traceback."""


class LabCIError(Exception):
    """A problem the user can act on (bad option, unreadable input, unreachable server).

    ``lab_ci.cli.main`` prints ``lab-ci: error: <message>`` and exits with ``exit_code``.
    """

    exit_code = 2
