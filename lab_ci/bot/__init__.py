"""lab-ci bot stage: the GitHub App behind ``lab-ci serve``.

Service side (webhook endpoint, durable queue, workers): :mod:`.app`, :mod:`.webhooks`,
:mod:`.queue`, :mod:`.worker`, :mod:`.metrics`, :mod:`.logs`, :mod:`.settings`,
:mod:`.cli`. GitHub side (what events mean, GitHub I/O): :mod:`.handlers` (a router plus
one module per concern) with :mod:`.github`, :mod:`.mirror`, :mod:`.approvals`,
:mod:`.config`, :mod:`.commands`, :mod:`.render`. The contract between them is
:mod:`.jobs` (job specs, admission) and :mod:`.payloads` (typed job payloads); the objects
a job needs are one :class:`~lab_ci.bot.services.Services`. Work on untrusted input runs
in limited child processes: :mod:`.isolation` and :mod:`.work`.
"""
