"""``lab-ci preview``: a small LAB generation run per changed leaf, rendered as the
Markdown comment the bot posts (:mod:`lab_ci.preview.api`, :mod:`lab_ci.preview.render`)."""
