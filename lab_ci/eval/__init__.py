"""lab-ci eval stage: does a model know and do what the taxonomy change teaches?

Modules (each importable alone; torch and llama.cpp load only when a model does):

- :mod:`.hf`: :class:`~.hf.HFModel`, a Hugging Face model folder with the teacher
  interface plus batched log-likelihood scoring (CPU or CUDA).
- :mod:`.mcq`: MMLU-Branch: multiple-choice questions the teacher writes from a knowledge
  leaf's documents (``pipelines/mmlu_branch.yaml``), scored by log-likelihood.
- :mod:`.judge`: MT-Bench-Branch: the teacher rates answers 1-10 against the reference
  (``pipelines/prompts/judge_answer.txt``).
- :mod:`.stats`: paired deltas and bootstrap intervals.
- :mod:`.gates`: thresholds -> pass/fail with reasons.
- :mod:`.runner`: plan, questions, scores, judgments, comparison, checkpoint selection,
  and :func:`~.runner.run_eval` (``lab-ci eval``).
- :mod:`.report`: the Markdown section and the per-leaf delta plot.
- :mod:`.store`: the resumable cache.

The context rule and the one function that asks a model a leaf's seed questions
(precheck, postcheck, eval) are in :mod:`lab_ci.sdg.questions`, below every caller.

Layering: eval reads leaves (``taxonomy``, its ``seeds`` model), asks teachers (``teacher``),
generates through ``sdg`` pipelines and loads models with transformers; ``builds`` (its
evaluate stage) and ``bot`` (the build check run) call it, never the other way round.
"""
