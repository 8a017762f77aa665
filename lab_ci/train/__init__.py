"""lab-ci train stage: phased LAB training (knowledge, then skills with replay) with torch.

Public API (imported lazily, so ``import lab_ci.train`` does not load torch)::

    from lab_ci.train import PhaseSpec, TrainConfig, train_phases
    result = train_phases(student_dir, [PhaseSpec("knowledge", (k,)), PhaseSpec("skills", (s, r))],
                          out_dir, TrainConfig(epochs=2))
    result.final_dir  # HF model dir of the last phase

Modules: ``config`` (TrainConfig, checked against ``config.schema.json``; no torch),
``data`` (messages JSONL -> tokens + assistant-only labels), ``packing``
(padding-free packing, multipack step planner), ``loop`` (train),
``attention`` (per-sample varlen sdpa for packed rows),
``checkpoint`` (atomic, exact-resume checkpoints), ``distributed`` (torchrun, DDP,
FSDP), ``files`` (whole-or-nothing writes, OS errors as user errors, folder swaps),
``phases`` (train_phases), ``run`` (``python -m lab_ci.train.run``),
``tiny`` (download-free tiny models for tests and benchmarks).
"""

_EXPORTS = {
    "TrainConfig": "lab_ci.train.config",
    "train": "lab_ci.train.loop",
    "LoopResult": "lab_ci.train.loop",
    "StopTraining": "lab_ci.train.loop",
    "PhaseSpec": "lab_ci.train.phases",
    "PhaseResult": "lab_ci.train.phases",
    "TrainResult": "lab_ci.train.phases",
    "train_phases": "lab_ci.train.phases",
    "replay_sample": "lab_ci.train.phases",
    "load_dataset": "lab_ci.train.data",
    "read_messages_jsonl": "lab_ci.train.data",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'lab_ci.train' has no attribute {name!r}")
