"""lab-ci: a git-native validator and CI bot for InstructLab-style taxonomies."""

__version__ = "0.1.0"
