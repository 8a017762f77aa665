"""A Hugging Face causal LM folder as an evaluation model (transformers, CPU or CUDA).

:class:`HFModel` speaks the teacher interface (``chat``/``complete``, so
:func:`lab_ci.sdg.questions.ask_seed_questions` asks it the same prompts it asks a
GGUF) and adds :meth:`HFModel.loglikelihoods`, the batched scorer behind the
multiple-choice (MMLU-Branch) evaluation.

Batching. Requests are sorted by length and packed into batches under a token budget
(``max_batch_tokens`` padded tokens per forward pass), left-padded with explicit
position ids, so each row's tokens see exactly the positions they would alone. A
log-likelihood batch asks the model only for the logits of the last ``K`` positions
(``logits_to_keep``, K = the longest continuation in the batch) instead of
``T x vocabulary`` of them. Generation batches the same way and decodes greedily
(temperature 0) or samples with a seeded generator.

Numerics. Batched and one-at-a-time scoring run the same arithmetic on differently
shaped matrices, so log-likelihoods agree to float rounding (about 1e-6 relative in
fp32), not bit for bit; ``benchmarks/eval_throughput.py`` checks that every choice is
the same. On CUDA the default dtype is bfloat16 (fp32 on CPU); candidate and baseline
are scored in the same dtype.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import LabCIError
from ..teacher.base import Completion, Message, SamplingParams, TeacherInfo

log = logging.getLogger(__name__)

#: files up to this size are hashed by content for the fingerprint; bigger ones
#: (weights) by name, size and modification time
_HASH_CONTENT_BYTES = 4 << 20
#: most logits (positions scored x vocabulary) one batch may hold: 1 GiB of fp32
_LOGITS_BUDGET = 1 << 28


def model_fingerprint(path: str | Path) -> str:
    """A cheap identity of a model folder: the content of its small files (config,
    tokenizer) and the name, size and mtime of its big ones (weights). A changed file
    changes it; the cache keys of answers and scores start with it."""
    root = Path(path)
    h = hashlib.sha256()
    for p in sorted(q for q in root.rglob("*") if q.is_file()):
        st = p.stat()
        h.update(p.relative_to(root).as_posix().encode() + b"\0")
        if st.st_size <= _HASH_CONTENT_BYTES:
            h.update(hashlib.sha256(p.read_bytes()).digest())
        else:
            h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()


def check_model_dir(path: str | Path, what: str = "model") -> Path:
    """``path`` if it looks like a Hugging Face causal LM folder, else a clear LabCIError."""
    p = Path(path)
    if not p.is_dir():
        raise LabCIError(f"{what} {str(path)!r}: not a folder (expected a Hugging Face model folder)")
    if not (p / "config.json").is_file():
        raise LabCIError(f"{what} {str(path)!r}: no config.json (expected a Hugging Face model folder)")
    if not any(p.glob("*.safetensors")) and not any(p.glob("*.bin")):
        raise LabCIError(f"{what} {str(path)!r}: no weights (*.safetensors)")
    if not ((p / "tokenizer.json").is_file() or (p / "tokenizer_config.json").is_file()):
        raise LabCIError(f"{what} {str(path)!r}: no tokenizer (tokenizer.json / tokenizer_config.json)")
    return p


def resolve_device(device: str = "auto", dtype: str = "auto") -> tuple[str, str]:
    """(device, dtype) that ``auto`` means here: CUDA when present, bf16 on a GPU that
    supports it, else fp32; a clear LabCIError for anything unusable."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise LabCIError(f"device {device!r}: expected auto, cpu or cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise LabCIError("device cuda: no CUDA GPU is available")
    if dtype == "auto":
        dtype = "bf16" if device.startswith("cuda") and torch.cuda.is_bf16_supported() else "fp32"
    if dtype not in ("fp32", "bf16", "fp16"):
        raise LabCIError(f"dtype {dtype!r}: expected auto, fp32, bf16 or fp16")
    return device, dtype


@dataclass(frozen=True, slots=True)
class LogLikelihood:
    """The log-likelihood of a continuation given its context."""

    total: float  # sum of the continuation tokens' log-probabilities (natural log)
    tokens: int  # how many continuation tokens
    greedy: bool  # every continuation token was the model's most likely one

    @property
    def mean(self) -> float:
        return self.total / max(1, self.tokens)


class HFModel:
    """A transformers causal LM loaded once; see the module docstring.

    ``device``: ``auto`` (CUDA when present) | ``cpu`` | ``cuda``; ``dtype``: ``auto``
    (bf16 on a GPU that supports it, else fp32) | ``fp32`` | ``bf16`` | ``fp16``.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        device: str = "auto",
        dtype: str = "auto",
        max_batch_tokens: int = 8192,
        name: str | None = None,
    ):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.path = check_model_dir(path)
        if max_batch_tokens < 1:
            raise LabCIError("max_batch_tokens must be >= 1")
        device, dtype = resolve_device(device, dtype)
        dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
        self.device = torch.device(device)
        self.dtype = dtype
        self.max_batch_tokens = max_batch_tokens
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.path)
            self.model = AutoModelForCausalLM.from_pretrained(self.path, dtype=dtypes[dtype]).to(self.device).eval()
        except (OSError, ValueError, KeyError) as e:
            raise LabCIError(f"model {str(self.path)!r}: transformers cannot load it: {e}") from None
        tok = self.tokenizer
        self.eos_id = tok.eos_token_id
        self.pad_id = tok.pad_token_id if tok.pad_token_id is not None else (self.eos_id or 0)
        limits = [getattr(self.model.config, "max_position_embeddings", None), getattr(tok, "model_max_length", None)]
        self.max_context = min([n for n in limits if isinstance(n, int) and 0 < n < 10**7] or [2048])
        self.fingerprint = model_fingerprint(self.path)
        self._head_ok: bool | None = None
        label = name or self.path.name
        self.info = TeacherInfo(
            id=f"hf:{self.fingerprint[:16]}:{label}",
            name=label,
            details={"path": str(self.path), "device": str(self.device), "dtype": dtype},
        )

    # ------------------------------------------------------------------ prompts
    def chat_prompt(self, messages: Sequence[Message]) -> str:
        """The model's chat template applied, ending with the assistant's turn."""
        msgs = [{"role": m.role, "content": m.content} for m in messages]
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        from ..teacher.base import LAB_ASSISTANT

        return "".join(f"<|{m['role']}|>\n{m['content']}\n" for m in msgs) + f"{LAB_ASSISTANT}\n"

    def encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    # ------------------------------------------------------------------ generation
    def chat(self, conversations: Sequence[Sequence[Message]], params: SamplingParams, n: int = 1):
        return self.complete([self.chat_prompt(c) for c in conversations], params, n)

    def complete(self, prompts: Sequence[str], params: SamplingParams, n: int = 1) -> list[list[Completion]]:
        """Completions of raw prompts (no special tokens added), batched. A prompt that
        does not fit the model's context with ``max_tokens`` more gets one completion
        with ``finish_reason="error"`` saying so."""
        ids = [self.encode(p) for p in prompts]
        flat = [(i, j) for i in range(len(ids)) for j in range(n)]
        out: dict[tuple[int, int], Completion] = {}
        todo = []
        for i, j in flat:
            if len(ids[i]) + params.max_tokens > self.max_context:
                out[(i, j)] = Completion(
                    f"the prompt ({len(ids[i])} tokens) and max_tokens={params.max_tokens} do not fit "
                    f"the model's context of {self.max_context} tokens",
                    "error",
                    len(ids[i]),
                    0,
                )
            else:
                todo.append((i, j))
        todo.sort(key=lambda ij: (-len(ids[ij[0]]), ij))
        for batch in self._batches(todo, lambda ij: len(ids[ij[0]]) + params.max_tokens):
            for key, comp in zip(batch, self._generate([ids[i] for i, _ in batch], params, batch[0][1])):
                out[key] = comp
        return [[out[(i, j)] for j in range(n)] for i in range(len(ids))]

    def _batches(self, items: list, size_of) -> list[list]:
        """Consecutive runs of ``items`` (sorted longest first) whose padded size (rows x
        the first row's size) stays within the token budget; at least one item each."""
        batches, cur = [], []
        for it in items:
            if cur and size_of(cur[0]) * (len(cur) + 1) > self.max_batch_tokens:
                batches.append(cur)
                cur = []
            cur.append(it)
        if cur:
            batches.append(cur)
        return batches

    def _left_pad(self, rows: list[list[int]]):
        import torch

        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for k, r in enumerate(rows):
            ids[k, width - len(r) :] = torch.tensor(r, dtype=torch.long)
            mask[k, width - len(r) :] = 1
        return ids.to(self.device), mask.to(self.device)

    def _generate(self, rows: list[list[int]], params: SamplingParams, salt: int) -> list[Completion]:
        import torch

        ids, mask = self._left_pad(rows)
        greedy = params.temperature <= 0
        kw: dict = {
            "max_new_tokens": params.max_tokens,
            "do_sample": not greedy,
            "pad_token_id": self.pad_id,
            "eos_token_id": self.eos_id,
        }
        if not greedy:
            kw.update(temperature=params.temperature, top_p=params.top_p)
            if params.top_k is not None:
                kw["top_k"] = params.top_k
            torch.manual_seed((params.seed or 0) * 1000 + salt)
        else:
            kw.update(temperature=None, top_p=None, top_k=None)
        if params.stop:
            kw.update(stop_strings=list(params.stop), tokenizer=self.tokenizer)
        with torch.inference_mode():
            out = self.model.generate(input_ids=ids, attention_mask=mask, **kw)
        comps = []
        width = ids.shape[1]
        for k, r in enumerate(rows):
            new = out[k, width:].tolist()
            stopped = self.eos_id is not None and self.eos_id in new
            if stopped:
                new = new[: new.index(self.eos_id)]
            text = self.tokenizer.decode(new, skip_special_tokens=True)
            cut = [text.find(s) for s in params.stop if s and s in text]
            if cut:
                text, stopped = text[: min(cut)], True
            reason = "stop" if stopped or len(new) < params.max_tokens else "length"
            comps.append(Completion(text.strip(), reason, len(r), len(new)))
        return comps

    # ------------------------------------------------------------------ scoring
    def loglikelihoods(
        self, requests: Sequence[tuple[list[int], list[int]]], *, max_batch_tokens: int | None = None
    ) -> list[LogLikelihood]:
        """``log P(continuation | context)`` for each (context ids, continuation ids).

        The context is cut from the left when context + continuation exceed the model's
        context. ``max_batch_tokens`` overrides the model's budget for this call (1:
        one request per forward pass, the unbatched path)."""
        budget = self.max_batch_tokens if max_batch_tokens is None else max_batch_tokens
        items = []
        for i, (ctx, cont) in enumerate(requests):
            if not cont:
                raise ValueError(f"request {i}: empty continuation")
            if len(cont) >= self.max_context:
                raise LabCIError(f"a continuation of {len(cont)} tokens does not fit the model's context")
            full = (list(ctx) + list(cont))[-(self.max_context + 1) :]
            items.append((i, full[:-1], full[-len(cont) :]))
        items.sort(key=lambda it: (-len(it[1]), it[0]))
        vocab = int(getattr(self.model.config, "vocab_size", 0) or 32000)
        batches, cur, scored = [], [], 0
        for it in items:  # longest first: the first row's length is the padded width
            if cur and (
                len(cur[0][1]) * (len(cur) + 1) > budget  # padded tokens
                or (scored + len(it[2])) * vocab > _LOGITS_BUDGET  # logits memory
            ):
                batches.append(cur)
                cur, scored = [], 0
            cur.append(it)
            scored += len(it[2])
        if cur:
            batches.append(cur)
        out: dict[int, LogLikelihood] = {}
        for batch in batches:
            out.update(self._score_batch(batch))
        return [out[i] for i in range(len(requests))]

    def _score_batch(self, batch) -> dict[int, LogLikelihood]:
        """One forward pass over left-padded rows; the log-probabilities of the target
        tokens only (logit minus logsumexp, no full log-softmax copy). The output layer
        runs on exactly the positions that predict a target (the decoder's hidden states
        gathered, then the head) when the model passed the check in :meth:`_head_check`;
        otherwise on the last K positions of every row (``logits_to_keep``)."""
        import torch

        ids, mask = self._left_pad([inp for _, inp, _ in batch])
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        width = ids.shape[1]
        rows_idx = [k for k, (_, _, t) in enumerate(batch) for _ in t]
        pos_idx = [width - len(t) + j for _, _, t in batch for j in range(len(t))]
        with torch.inference_mode():
            if self._head_check():
                hidden = self._decoder()(input_ids=ids, attention_mask=mask, position_ids=positions)[0]
                picked_h = hidden[torch.tensor(rows_idx, device=self.device), torch.tensor(pos_idx, device=self.device)]
                logits = self.model.get_output_embeddings()(picked_h).float()  # [targets, vocab]
            else:
                keep = max(len(t) for _, _, t in batch)
                full = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=keep)
                kept = full.logits[:, -keep:, :]
                logits = kept[
                    torch.tensor(rows_idx, device=self.device),
                    torch.tensor([p - (width - keep) for p in pos_idx], device=self.device),
                ].float()
            targets = torch.tensor([tok for _, _, t in batch for tok in t], device=self.device)
            logp = logits.gather(-1, targets[:, None]).squeeze(-1) - torch.logsumexp(logits, dim=-1)
            hit = logits.argmax(-1) == targets
        out, start = {}, 0
        for i, _, target in batch:
            n = len(target)
            out[i] = LogLikelihood(float(logp[start : start + n].sum()), n, bool(hit[start : start + n].all()))
            start += n
        return out

    def _decoder(self):
        get = getattr(self.model, "get_decoder", None)
        dec = get() if callable(get) else None
        return dec if dec is not None and dec is not self.model else self.model.base_model

    def _head_check(self) -> bool:
        """Whether the output layer applied to the decoder's hidden states gives the
        model's own logits (true for llama-style models; models that scale or cap their
        logits afterwards fail it and keep the slower path). Checked once, on 8 tokens."""
        if self._head_ok is None:
            import torch

            try:
                ids = torch.tensor([[self.pad_id] + list(range(1, 8))], device=self.device) % max(
                    2, int(getattr(self.model.config, "vocab_size", 2))
                )
                with torch.inference_mode():
                    want = self.model(input_ids=ids).logits.float()
                    got = self.model.get_output_embeddings()(self._decoder()(input_ids=ids)[0]).float()
                self._head_ok = bool(torch.allclose(got, want, rtol=1e-3, atol=1e-3))
            except (AttributeError, TypeError, NotImplementedError, RuntimeError, IndexError):
                self._head_ok = False
            if not self._head_ok:
                log.info("%s: output layer not separable; scoring with logits_to_keep", self.path)
        return self._head_ok

    def score_choices(
        self, groups: Sequence[tuple[list[int], Sequence[list[int]]]], *, max_batch_tokens: int | None = None
    ) -> list[list[LogLikelihood]]:
        """:meth:`loglikelihoods` of every (context, choice) pair of each (context ids,
        [choice ids, ...]) group (a multiple-choice question and its options), all pairs
        batched together, returned per group.

        Sharing each context's keys and values between its choices (one forward pass of
        the context, then the choices after its cache) was measured and left out:
        MMLU-Branch contexts are short (a question asked without its passage: 13-15% of
        the tokens) and the cache copies cost more than the saved context tokens on CPU
        (docs/developers/benchmarks.md)."""
        for g, (_, choices) in enumerate(groups):
            if not choices or any(not c for c in choices):
                raise ValueError(f"group {g}: every choice needs at least one token")
        flat = [(ctx, c) for ctx, choices in groups for c in choices]
        lls = iter(self.loglikelihoods(flat, max_batch_tokens=max_batch_tokens))
        return [[next(lls) for _ in choices] for _, choices in groups]

    def close(self) -> None:
        self.model = None
