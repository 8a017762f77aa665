"""lab-ci bot stage: the GitHub App behind ``lab-ci serve``.

Service side (webhook endpoint, durable queue, workers): :mod:`.app`, :mod:`.webhooks`,
:mod:`.queue`, :mod:`.worker`, :mod:`.metrics`, :mod:`.settings`, :mod:`.cli`.
GitHub side (what events mean, GitHub I/O): :mod:`.handlers` and its helpers.
The contract between them is :mod:`.jobs`.
"""
