"""Synthetic data generation (the LAB method) declared as data.

A pipeline is a YAML list of small blocks (``lab_ci/sdg/pipelines/*.yaml``) with its
prompts in separate files (``lab_ci/sdg/prompts/``). ``lab_ci.sdg.api.generate_leaf``
runs the pipeline that fits a leaf with a teacher and returns the accepted message
records (the JSONL LAB training reads) and the rejected ones with their reasons.
"""
