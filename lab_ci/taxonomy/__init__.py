"""Reading InstructLab taxonomies from git objects, with no checkout.

- :mod:`.leaf`: :class:`LeafFile`, the unit every stage takes (owned by the lead).
- :mod:`.gitrun`: :class:`GitRunner`, the one way lab_ci runs git (environment,
  time and output bounds, typed errors).
- :mod:`.gitrepo`: :class:`GitTaxonomy`, the git plumbing (open, resolve, ls-tree,
  read blobs, diff trees, snapshot the working tree).
- :mod:`.changes`: which leaves a diff touches (pure).
- :mod:`.worktree`: leaves as files on disk.
- :mod:`.collect`: :func:`collect_leaves`, the one entry point the stages use.
"""
