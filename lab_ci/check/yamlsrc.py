"""Where the leaf reader used to live: it is :mod:`lab_ci.taxonomy.yamlsrc` now (the
leaf-model layer, so nothing below ``check`` has to import ``check``).

Kept so that code written against the old place (``from lab_ci.check import
yamlsrc``) goes on working; new code imports :mod:`lab_ci.taxonomy.yamlsrc`."""

from lab_ci.taxonomy.yamlsrc import *  # noqa: F403
from lab_ci.taxonomy.yamlsrc import duplicate_keys, find_key, node_at, position  # noqa: F401
