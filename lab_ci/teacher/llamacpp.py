"""A local GGUF teacher through llama-cpp-python, decoding many samples at once.

The model is loaded once per process (cache keyed by path, mtime and size) with
llama-cpp-python's ``LlamaModel``, used for tokenizing, metadata and the chat
template; calls on one model are serialized by its lock (``_LoadedModel``).
Generation uses the low-level API on a context of its own that holds several
sequences, laid out per batch as the cost model ``layout_costs`` prefers:

* one unified KV cache: the batch's prompts are evaluated as a prefix tree
  (``prompt_tree``): each prefix several sequences share is evaluated ONCE, its cells
  tagged with all of them (a batch token with several sequence ids). Prompt prefixes
  of the last two calls stay in the cache and a new sequence reuses the longest one
  it starts with (``prefix_cache``; ``forget_prompts()`` drops them);
* or one KV stream per sequence (``kv_unified=False``): only the prefix common to all
  is evaluated once and copied; each sequence's rest is evaluated on its own. In a
  unified cache every token's attention also walks the other sequences' (masked)
  cells, which makes prompts that share little cheaper in streams.

Then every step decodes one token for every unfinished sequence in one call. Each
sequence has its own sampler chain (llama.cpp's top-k, top-p, min-p, temperature,
seeded draw; greedy at temperature 0) seeded with ``seed + sequence index``, so a
fixed seed gives the same completions on every run (and, with the same earlier
calls, in one process), however the request is split into batches.
"""

from __future__ import annotations

import atexit
import ctypes
import functools
import hashlib
import logging
import os
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .base import Completion, Message, SamplingParams, TeacherError, TeacherInfo
from .templates import ChatFormat, chat_format_from_metadata, format_chat, merge_stops

GGUF_MAGIC = b"GGUF"
DEFAULT_MAX_PARALLEL = 8
#: llama.cpp's (and llama-cpp-python's) sampling defaults, used when SamplingParams leaves them unset
DEFAULT_TOP_K = 40
DEFAULT_MIN_P = 0.05
#: calls whose prompt prefixes a unified cache keeps for the next call to reuse
RETAINED_CALLS = 2
#: A unified cache that keeps prompts is made at least this many cells (at most
#: max_parallel x n_ctx): growing a context re-creates it and loses the kept prompts, so
#: a fresh teacher sized for its first call would forget them at every bigger call of a
#: leaf's pipeline (e.g. the answers' 256 tokens after the judges' 48). 8192 cells are
#: ~0.8 GB for a 0.5B model with 16 KV heads of 64, 1 GB for a 7-8B model with 8 of 128.
UNIFIED_MIN_CELLS = 8192

_models: dict[tuple, _LoadedModel] = {}
_models_lock = threading.Lock()
_hashes: dict[tuple, str] = {}


# --------------------------------------------------------------------------- pure logic


def common_prefix_len(seqs: Sequence[Sequence[int]]) -> int:
    """Length of the longest token prefix every sequence shares."""
    if not seqs:
        return 0
    first = seqs[0]
    n = min(len(s) for s in seqs)
    for i in range(n):
        t = first[i]
        if any(s[i] != t for s in seqs):
            return i
    return n


def shared_prefix_len(seqs: Sequence[Sequence[int]]) -> int:
    """The prefix evaluated once for a batch: the common prefix, leaving every
    sequence at least one token of its own (whose logits start its sampling)."""
    if not seqs:
        return 0
    return max(0, min(common_prefix_len(seqs), min(len(s) for s in seqs) - 1))


def prompt_tree(seqs: Sequence[Sequence[int]]) -> list[tuple[int, int, tuple[int, ...], bool]]:
    """The ``(token, position, sequence ids, wants_logits)`` entries that evaluate a
    batch's prompts as a prefix tree: every prefix that several sequences share is
    evaluated ONCE, its cells tagged with all of those sequences (a unified KV cache
    holds a cell for several sequences), then each sequence's own remainder. Every
    sequence keeps its last prompt token to itself: its logits start its sampling.

    Entries come in depth-first order, so each sequence's positions are consecutive
    in the list (llama.cpp requires that within and across ``llama_decode`` calls)."""
    out: list[tuple[int, int, tuple[int, ...], bool]] = []
    # (group of sequence indices sharing tokens[:depth], depth); a stack, not recursion
    stack: list[tuple[list[int], int]] = [(list(range(len(seqs))), 0)] if seqs else []
    while stack:
        group, depth = stack.pop()
        first = seqs[group[0]]
        end = min(len(seqs[i]) for i in group) - 1  # shareable positions stop before anyone's last token
        d = depth
        while d < end and all(seqs[i][d] == first[d] for i in group):
            d += 1
        ids = tuple(group)
        out.extend((first[pos], pos, ids, False) for pos in range(depth, d))
        children: dict[int, list[int]] = {}
        for i in group:
            if len(seqs[i]) - 1 == d:
                out.append((seqs[i][d], d, (i,), True))
            else:
                children.setdefault(seqs[i][d], []).append(i)
        # push in reverse so the smallest token's subtree is evaluated first
        for tok in sorted(children, reverse=True):
            stack.append((children[tok], d))
    return out


def per_sequence(max_tokens: int | Sequence[int], n: int) -> list[int]:
    """max_tokens of each of n sequences (one number for all, or one each)."""
    return [max_tokens] * n if isinstance(max_tokens, int) else list(max_tokens)


def stream_cells_needed(seqs: Sequence[Sequence[int]], max_tokens: int | Sequence[int]) -> int:
    """KV cells one sequence's stream needs: the longest prompt plus its max_tokens."""
    return max((len(s) + m for s, m in zip(seqs, per_sequence(max_tokens, len(seqs)))), default=0)


#: Cost of attending to one KV cell, relative to a token's matrix products. Measured on
#: CPU for a 1024-wide, 24-layer model: 800 cells of context make a token ~30% dearer.
ATTEND_COST = 0.0004
#: Cost of a cell the attention mask hides (another sequence's, in a unified cache), with
#: flash attention, which skips masked cells: measured ~1/8 of a visible one. Without
#: flash attention masked cells cost as much as visible ones.
MASKED_COST_FA = ATTEND_COST / 8


def _tokens_cost(
    n: int,
    first_span: float,
    step: float,
    alpha: float,
    beta: float = 0.0,
    first_masked: float = 0.0,
    masked_step: float = 0.0,
) -> float:
    """Cost of n tokens whose visible spans are first_span, first_span+step, ... and
    masked spans first_masked, first_masked+masked_step, ...: each costs 1 + alpha per
    visible cell + beta per masked cell."""
    if n <= 0:
        return 0.0
    tri = n * (n - 1) / 2
    return n + alpha * (n * first_span + step * tri) + beta * (n * first_masked + masked_step * tri)


def layout_costs(
    seqs: Sequence[Sequence[int]],
    max_tokens: int | Sequence[int],
    tree: Sequence | None = None,
    *,
    alpha: float = ATTEND_COST,
    beta: float = MASKED_COST_FA,
) -> tuple[float, float]:
    """Estimated cost of one batch (prompts and max_tokens of decoding) in a unified
    KV cache and in one stream per sequence, in units of one token's matrix products.

    Unified: the prompt tree is evaluated (each shared prefix once), each token sees
    its own sequence's cells and skips (at ``beta``) the other sequences' cells.
    Streams: only the prefix common to all is evaluated once; each token sees only its
    own sequence's cells."""
    tree = prompt_tree(seqs) if tree is None else tree
    n = len(seqs)
    gen = per_sequence(max_tokens, n)
    unified = 0.0
    for j, (_tok, pos, _ids, _logits) in enumerate(tree):
        unified += 1 + alpha * pos + beta * (j - pos)
    used = len(tree)
    for s, m in zip(seqs, gen):
        # step t: own cells len(s)+t, masked: the rest of the cache, growing by n-1 per step
        unified += _tokens_cost(m, len(s), 1, alpha, beta, used - len(s), n - 1)
    p = shared_prefix_len(seqs)
    streams = _tokens_cost(p, 0, 1, alpha)
    for s, m in zip(seqs, gen):
        streams += _tokens_cost(len(s) - p + m, p, 1, alpha)
    return unified, streams


def use_unified_cache(
    seqs: Sequence[Sequence[int]],
    max_tokens: int | Sequence[int],
    tree: Sequence | None = None,
    *,
    flash_attn: bool = True,
) -> bool:
    """Whether one batch runs best in ONE unified KV cache rather than a stream per
    sequence (see :func:`layout_costs`). Near ties go to the unified cache: there the
    sequences' decoding steps read the cells they share once (measured ~15% faster)."""
    if len(seqs) <= 1:
        return True
    unified, streams = layout_costs(seqs, max_tokens, tree, beta=MASKED_COST_FA if flash_attn else ATTEND_COST)
    return unified <= 1.05 * streams


def plan_batches(seqs: Sequence[Sequence[int]], max_parallel: int) -> list[list[int]]:
    """Split sequence indices into batches of at most ``max_parallel``, putting
    sequences with equal or similar prompts together (sorted by tokens, so shared
    prefixes land in the same batch)."""
    if max_parallel < 1:
        raise ValueError("max_parallel must be >= 1")
    order = sorted(range(len(seqs)), key=lambda i: (list(seqs[i]), i))
    return [order[i : i + max_parallel] for i in range(0, len(order), max_parallel)]


def check_context(prompt_lens: Sequence[int], max_tokens: int, n_ctx: int, index: int = 0) -> None:
    """Raise TeacherError when a prompt plus max_tokens does not fit the context
    (prompts are numbered from ``index``)."""
    for i, n in enumerate(prompt_lens, index):
        if n + max_tokens > n_ctx:
            raise TeacherError(
                f"prompt {i} is {n} tokens; with max_tokens={max_tokens} it needs {n + max_tokens} "
                f"tokens but the teacher context holds n_ctx={n_ctx}: shorten the prompt, lower "
                f"max_tokens or raise n_ctx"
            )


def find_stop(text: str, stops: Sequence[str]) -> int:
    """Index of the earliest stop string in text, or -1."""
    best = -1
    for s in stops:
        i = text.find(s)
        if i >= 0 and (best < 0 or i < best):
            best = i
    return best


def sequence_seed(seed: int | None, index: int) -> int:
    """The sampler seed of sequence ``index`` of a request (llama.cpp's random seed if None)."""
    import llama_cpp

    if seed is None:
        return llama_cpp.LLAMA_DEFAULT_SEED
    return (seed + index) % 0xFFFFFFFF  # 0xFFFFFFFF itself means "random"


# --------------------------------------------------------------------------- the plan of one call
#
# A call (one batch of at most max_parallel sequences) is planned by a pure function,
# ``plan_call``, from the cache's state and the sequences' prompt tokens and lengths: which
# context it needs, which kept prompt cells each sequence reuses, what is evaluated. The
# teacher executes the plan's operations on llama.cpp in order, then decodes.


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """The teacher settings a plan depends on."""

    max_parallel: int
    n_ctx: int
    prefix_cache: bool = True
    flash_attn: bool | None = None
    #: cells the prompt store may hold (0: no store; see ``plan_call``)
    store_cells: int = 0
    #: shortest prompt stored, and the fewest tokens a restore must add to what kept prompts give
    min_store: int = 32

    @property
    def slots(self) -> int:
        """Sequence-id slots of a unified cache: this call's and the kept calls'."""
        return RETAINED_CALLS + 1 if self.prefix_cache else 1


@dataclass(frozen=True, slots=True)
class CacheState:
    """What the teacher's llama.cpp context holds between calls."""

    cells: int = 0  # cells of the context (per stream when not unified); 0: no context yet
    unified: bool = False
    kept: tuple[tuple[int, tuple[int, ...]], ...] = ()  # (sequence id, prompt tokens) of kept prompts
    kept_cells: tuple[tuple[int, int], ...] = ()  # (slot, prompt cells its call evaluated)
    calls: int = 0  # calls that kept their prompts (their slot rotates)
    stored: tuple[tuple[int, ...], ...] = ()  # prompts in the host-memory store, least recently used first


@dataclass(frozen=True, slots=True)
class NewContext:
    """(Re)create the context: one unified cache of ``cells``, or max_parallel streams of ``cells``."""

    unified: bool
    cells: int


@dataclass(frozen=True, slots=True)
class ClearCache:
    """Forget every cell (metadata only: free cells are masked, their old values finite)."""


@dataclass(frozen=True, slots=True)
class RemoveSeq:
    """Drop a sequence's cells (all of them, or positions p0 .. p1-1)."""

    seq: int
    p0: int = -1
    p1: int = -1


@dataclass(frozen=True, slots=True)
class CopySeq:
    """Tag a sequence's cells (positions p0 .. p1-1; -1: all) with another sequence id too."""

    src: int
    dst: int
    p0: int = -1
    p1: int = -1


@dataclass(frozen=True, slots=True)
class Evaluate:
    """Evaluate ``(token, position, sequence ids, wants_logits)`` entries (in calls of at
    most n_batch tokens); a sequence whose logits come out samples its first token."""

    entries: tuple[tuple[int, int, tuple[int, ...], bool], ...]


@dataclass(frozen=True, slots=True)
class SaveSeq:
    """Copy a kept prompt's cells (sequence ``seq``, the prompt ``tokens``) into the
    host-memory prompt store, before they leave the cache."""

    seq: int
    tokens: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class RestoreSeq:
    """Put a stored prompt's cells back into the cache as sequence ``dst``, keeping its
    first ``keep`` positions."""

    tokens: tuple[int, ...]
    dst: int
    keep: int


@dataclass(frozen=True, slots=True)
class DropStored:
    """Forget a stored prompt (the store is full)."""

    tokens: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class CallPlan:
    ops: tuple  # NewContext | ClearCache | RemoveSeq | CopySeq | Evaluate | SaveSeq | RestoreSeq | DropStored
    ids: tuple[int, ...]  # the KV sequence id of each sequence
    unified: bool
    retain: bool  # the prompts stay for the next calls: a finished sequence frees only its generated cells
    evaluated: int  # prompt tokens evaluated
    reused: int  # prompt tokens taken from kept prompts
    after: CacheState  # the cache's state once the call has run


def context_cells(cells: int) -> int:
    """A context's size for ``cells``: rounded up to 256, at least 256."""
    return max(256, -(-cells // 256) * 256)


def unified_cells(need: int, tree_cells: int, retain: bool, state: CacheState, cfg: EngineConfig) -> int:
    """Cells for a new unified context: this call's ``need``; when prompts are kept,
    room for the kept calls' prompt trees, at least ``UNIFIED_MIN_CELLS`` (within
    max_parallel x n_ctx) and twice the context it replaces, so it is rarely re-created
    (which loses the kept prompts)."""
    if not retain:
        return need
    grown = 2 * state.cells if state.cells and state.unified else 0
    floor = min(UNIFIED_MIN_CELLS, cfg.max_parallel * cfg.n_ctx)
    ceiling = cfg.max_parallel * cfg.n_ctx * (RETAINED_CALLS + 1)
    return max(need + RETAINED_CALLS * tree_cells, min(max(floor, grown), ceiling))


def match_kept(seqs: Sequence[Sequence[int]], kept: Sequence[tuple[int, Sequence[int]]]) -> list[tuple[int, int]]:
    """For each sequence, the kept prompt sharing its longest prefix: (sequence id,
    length), or (-1, 0). The last token is never reused (its logits start the sampling)."""
    out = []
    for toks in seqs:
        best, best_len = -1, 0
        for rid, rtoks in kept:
            n = min(common_prefix_len([toks, rtoks]), len(toks) - 1)
            if n > best_len:
                best, best_len = rid, n
        out.append((best, best_len))
    return out


def match_stored(seqs: Sequence[Sequence[int]], stored: Sequence[tuple[int, ...]]) -> list[tuple[int, int]]:
    """For each sequence, the stored prompt sharing its longest prefix: (index in
    ``stored``, length), or (-1, 0); the last token is never reused."""
    return match_kept(seqs, list(enumerate(stored)))


def plan_call(
    state: CacheState, seqs: Sequence[Sequence[int]], max_tokens: Sequence[int], cfg: EngineConfig
) -> CallPlan:
    """The plan of one batch: ``seqs`` (prompt tokens, at most ``cfg.max_parallel``),
    each generating up to ``max_tokens[i]``.

    Layout: a unified cache or one stream per sequence, as ``use_unified_cache`` prefers
    (a single sequence keeps whatever context fits). A unified cache that keeps prompts
    (``cfg.prefix_cache``) gives each sequence the cells of the kept prompt it shares the
    longest prefix with, unless the kept cells it does not use would cost more (masked
    for all of its tokens) than the reuse saves; its calls use the sequence ids of slot
    ``calls % slots`` in rotation, and the oldest kept call's prompts are dropped. A call
    that does not fit beside the kept prompts starts clean in a context grown by
    ``unified_cells``.

    With a prompt store (``cfg.store_cells``), kept prompts that leave the cache are
    saved to host memory first (least recently used ones dropped to fit), and a
    sequence whose prompt starts like a stored one (by at least ``cfg.min_store`` tokens
    more than any kept prompt) gets those cells restored: once per stored prompt, into
    the sequence that uses most of it, and tagged into the others (``CopySeq``)."""
    n = len(seqs)
    max_tokens = list(max_tokens)
    one = stream_cells_needed(seqs, max_tokens)
    tree = prompt_tree(seqs)
    if n == 1 and state.cells and state.cells >= one:
        unified = state.unified  # one sequence runs the same in either kind of context
    else:
        unified = use_unified_cache(seqs, max_tokens, tree, flash_attn=cfg.flash_attn is not False)
    need = len(tree) + sum(max_tokens)
    retain = unified and cfg.prefix_cache
    slots = cfg.slots
    slot = state.calls % slots if retain else 0
    oldest = (slot + 1) % slots
    ops: list = []
    cells, ctx_unified, kept, kept_cells = state.cells, state.unified, list(state.kept), dict(state.kept_cells)
    stored = list(state.stored)

    def save(prompts) -> None:
        """Kept prompts about to leave the cache: into the store (most recent last)."""
        if not cfg.store_cells:
            return
        for rid, toks in prompts:
            if len(toks) < cfg.min_store or any(k[: len(toks)] == toks for k in stored):
                continue  # short, or stored already (as itself or the start of a longer one)
            for k in [k for k in stored if toks[: len(k)] == k]:
                stored.remove(k)  # a stored prompt this one extends: superseded
                ops.append(DropStored(k))
            ops.append(SaveSeq(rid, toks))
            stored.append(toks)
        while sum(map(len, stored)) > cfg.store_cells:
            ops.append(DropStored(stored.pop(0)))

    def ensure(want_unified: bool, want: int) -> None:
        nonlocal cells, ctx_unified, kept, kept_cells
        if cells and ctx_unified == want_unified and cells >= want:
            return
        save(kept)
        cells, ctx_unified, kept, kept_cells = context_cells(want), want_unified, [], {}
        ops.append(NewContext(want_unified, cells))

    # which sequences start from a stored prompt rather than a kept one
    kept_match = match_kept(seqs, kept) if retain and kept else [(-1, 0)] * n
    from_store: dict[int, list[tuple[int, int]]] = {}  # stored index -> [(sequence, length)]
    if retain and stored:
        for i, (k, m) in enumerate(match_stored(seqs, stored)):
            if k >= 0 and m >= kept_match[i][1] + cfg.min_store:
                from_store.setdefault(k, []).append((i, m))
    # a stored prompt is restored whole, then cut to what its sequence uses
    spare = max((len(stored[k]) - max(m for _, m in g) for k, g in from_store.items()), default=0)
    if unified:
        # the kept prompts this call may reuse (the oldest kept call's slot is its own)
        room = sum(c for k, c in kept_cells.items() if k != oldest) if retain else 0
        if not (cells and ctx_unified and cells >= need + room + spare):
            # no room for this call beside them: start clean, in a context grown so that
            # the next calls can keep theirs
            save(kept)
            kept, kept_cells = [], {}
            ensure(True, unified_cells(need + spare, len(tree), retain, state, cfg))
    elif not cells or ctx_unified or cells < one:
        ensure(False, one)
    ids = tuple(slot * cfg.max_parallel + i for i in range(n))
    matches = match_kept(seqs, kept) if retain and kept else [(-1, 0)] * n
    reuse = [m for _, m in matches]
    if any(reuse):
        # Worth it? Kept cells that this call does not use are masked for all of its
        # tokens (MASKED_COST_FA each); the reused ones are not evaluated again.
        saved = sum(1 for _, pos, group, _ in tree if all(pos < reuse[i] for i in group))
        masked = kept_cells.get((slot - 1) % slots, 0)
        if saved <= MASKED_COST_FA * masked * (len(tree) - saved + sum(max_tokens)):
            reuse = [0] * n
    if any(reuse):
        ops += [RemoveSeq(sid) for sid in ids]  # the slot is empty by construction; make sure
        ops += [CopySeq(src, sid, 0, m) for (src, m), sid in zip(matches, ids) if src >= 0 and m > 0]
        lo, hi = oldest * cfg.max_parallel, (oldest + 1) * cfg.max_parallel
        dropped = [(rid, t) for rid, t in kept if lo <= rid < hi]
        save(dropped)
        ops += [RemoveSeq(rid) for rid, _ in dropped]
        kept = [(rid, t) for rid, t in kept if not lo <= rid < hi]
        kept_cells.pop(oldest, None)
    else:
        save(kept)
        ops.append(ClearCache())
        kept, kept_cells = [], {}
    for k, group in from_store.items():
        key = state.stored[k]
        if key not in stored:
            continue  # dropped above to make room (rare: a store smaller than one call)
        i, m = max(group, key=lambda g: g[1])
        ops += [RemoveSeq(ids[j]) for j, _ in group if j != i and matches[j][1]]  # drop a kept prompt's tag
        ops.append(RestoreSeq(key, ids[i], m))
        reuse[i] = m
        for j, mj in group:
            if j != i:
                ops.append(CopySeq(ids[i], ids[j], 0, mj))
                reuse[j] = mj
        stored.remove(key)
        stored.append(key)  # most recently used
    if unified:
        # the prompt tree: every shared prefix once, tagged with all its sequences;
        # positions a sequence reuses from an earlier call skipped
        todo = []
        for tok, pos, group, logits in tree:
            group = tuple(ids[i] for i in group if pos >= reuse[i])
            if group:
                todo.append((tok, pos, group, logits))
        ops.append(Evaluate(tuple(todo)))
        evaluated = len(todo)
    else:
        # the prefix common to all, once, on the first sequence; copied into every other
        # sequence's stream; then each sequence's own suffix, one sequence at a time
        # (llama.cpp splits batches that mix streams into equal per-sequence micro-batches)
        p = shared_prefix_len(seqs)
        ops.append(Evaluate(tuple((tok, pos, (ids[0],), False) for pos, tok in enumerate(seqs[0][:p]))))
        ops += [CopySeq(ids[0], sid) for sid in ids[1:]]
        for sid, toks in zip(ids, seqs):
            last = len(toks) - 1
            ops.append(Evaluate(tuple((toks[pos], pos, (sid,), pos == last) for pos in range(p, len(toks)))))
        evaluated = p + sum(len(t) - p for t in seqs)
    calls = state.calls
    if retain:
        kept += [(sid, tuple(t)) for sid, t in zip(ids, seqs)]
        kept_cells[slot] = len(tree)
        calls += 1
    after = CacheState(cells, ctx_unified, tuple(kept), tuple(sorted(kept_cells.items())), calls, tuple(stored))
    return CallPlan(tuple(ops), ids, unified, retain, evaluated, sum(reuse), after)


# --------------------------------------------------------------------------- file checks


def check_gguf_file(path: Path) -> None:
    """Raise TeacherError unless path is a readable GGUF file."""
    if not path.exists():
        raise TeacherError(f"teacher model {path}: no such file")
    if not path.is_file():
        raise TeacherError(f"teacher model {path}: not a file")
    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
    except OSError as e:
        raise TeacherError(f"teacher model {path}: cannot read: {e.strerror or e}") from e
    if magic != GGUF_MAGIC:
        raise TeacherError(f"teacher model {path}: not a GGUF file (starts with {magic!r}, expected b'GGUF')")


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, cached in-process by (path, mtime, size)."""
    st = path.stat()
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    if key not in _hashes:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                h.update(chunk)
        _hashes[key] = h.hexdigest()
    return _hashes[key]


def model_cell_bytes(model) -> int:
    """Bytes one KV cell of a llama-cpp-python ``LlamaModel`` takes in an f16 cache: K and V
    of every layer, each n_head_kv x head size."""
    import llama_cpp

    m = model.model
    n_layer = llama_cpp.llama_model_n_layer(m)
    n_head = max(1, llama_cpp.llama_model_n_head(m))
    n_head_kv = llama_cpp.llama_model_n_head_kv(m) or n_head
    return max(1, n_layer * 2 * (model.n_embd() // n_head) * n_head_kv * 2)


def gpu_offload_supported() -> bool:
    import llama_cpp

    return bool(llama_cpp.llama_supports_gpu_offload())


_llama_log = logging.getLogger("lab_ci.llama_cpp")
#: llama.cpp's log levels (ggml_log_level: 1 debug, 2 info, 3 warn, 4 error, 5 continue)
#: as Python logging levels. Its info and warnings are for -vv: e.g. every unified
#: context of several sequences warns "n_ctx_seq > n_ctx_train -- possible training
#: context overflow", which cannot happen here (each sequence stays within n_ctx).
_GGML_LEVELS = {1: logging.DEBUG, 2: logging.DEBUG, 3: logging.DEBUG, 4: logging.ERROR}
_log_callback = None


def _route_llama_logs() -> None:
    """Send llama.cpp's log lines to the ``lab_ci.llama_cpp`` logger (once per process)
    instead of llama-cpp-python's printer, which shows warnings as errors."""
    global _log_callback
    if _log_callback is not None:
        return
    import llama_cpp

    last = [logging.DEBUG]

    @llama_cpp.llama_log_callback
    def callback(level, text, user_data):
        lvl = last[0] if level == 5 else _GGML_LEVELS.get(level, logging.DEBUG)
        last[0] = lvl
        if _llama_log.isEnabledFor(lvl):
            _llama_log.log(lvl, "%s", text.decode("utf-8", "replace").rstrip("\n"))

    _log_callback = callback  # keep a reference: llama.cpp holds only the pointer
    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))


#: llama.cpp's extra weight buffers: ``auto`` (on, unless the build uses AMX), on, off
ENV_REPACK = "LAB_CI_LLAMA_REPACK"


def use_extra_buffers() -> bool:
    """Whether models load with llama.cpp's extra CPU weight buffers (``use_extra_bufts``,
    what llama-server's ``--no-repack`` turns off): the repacked layouts that speed up
    Q4_0 and friends on AVX2/NEON, and the AMX buffers of a build for Sapphire Rapids
    and later Xeons. ggml's AMX matrix product crashes the process on some of those
    machines (seen here and in CI: a general protection fault in
    ``ggml_backend_amx_mul_mat`` at the first decode, on every model; llama.cpp issue
    20824), so ``auto`` turns them off when the llama.cpp build reports ``AMX_INT8 = 1``.
    ``$LAB_CI_LLAMA_REPACK=on`` keeps them where AMX works; ``off`` never uses them."""
    import llama_cpp

    raw = os.environ.get(ENV_REPACK) or "auto"
    mode = raw.strip().lower()
    if mode in ("on", "1", "true", "yes"):
        return True
    if mode in ("off", "0", "false", "no"):
        return False
    if mode != "auto":
        raise TeacherError(f"${ENV_REPACK}={raw!r}: expected auto, on or off")
    return "AMX_INT8 = 1" not in llama_cpp.llama_print_system_info().decode("utf-8", "replace")


@dataclass
class _LoadedModel:
    """A model loaded once per process (llama-cpp-python's low-level ``LlamaModel``:
    tokenizer, metadata, weights), with the lock that every llama.cpp call on it or on a
    context made from it holds: llama.cpp does not promise that two contexts of one
    model can decode at the same time, and each decode already uses every core, so
    serializing costs no throughput on the CPU."""

    model: object
    lock: threading.RLock
    teachers: weakref.WeakSet[LlamaCppTeacher]


def load_llama(path: Path, n_gpu_layers: int | None = None) -> _LoadedModel:
    """The process-wide model of a GGUF file (loaded once, reused)."""
    import llama_cpp
    from llama_cpp._internals import LlamaModel

    check_gguf_file(path)
    _route_llama_logs()
    if n_gpu_layers is None:
        n_gpu_layers = -1 if gpu_offload_supported() else 0
    extra = use_extra_buffers()
    st = path.stat()
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size, n_gpu_layers, extra)
    with _models_lock:
        loaded = _models.get(key)
        if loaded is None:
            _backend_init()
            params = llama_cpp.llama_model_default_params()
            params.n_gpu_layers = 0x7FFFFFFF if n_gpu_layers < 0 else n_gpu_layers
            params.use_extra_bufts = extra
            try:
                model = LlamaModel(path_model=str(path), params=params, verbose=False)
            except (ValueError, RuntimeError, OSError) as e:
                raise TeacherError(f"teacher model {path}: llama.cpp cannot load it: {e}") from e
            loaded = _models[key] = _LoadedModel(model, threading.RLock(), weakref.WeakSet())
    return loaded


@functools.cache
def _backend_init() -> None:
    import llama_cpp

    llama_cpp.llama_backend_init()


def clear_model_cache() -> None:
    """Forget the cached models (they are freed once no teacher uses them)."""
    with _models_lock:
        _models.clear()


@atexit.register
def _close_models() -> None:
    # Free contexts, then models, while llama_cpp is still importable (not during
    # interpreter teardown). A model that a (daemon) thread is still decoding on is
    # left alone: freeing it under that thread would crash the exit.
    with _models_lock:
        for loaded in _models.values():
            if not loaded.lock.acquire(timeout=5):
                continue
            try:
                for teacher in list(loaded.teachers):
                    teacher.close()
                loaded.model.close()
            except Exception:
                pass
            finally:
                loaded.lock.release()
        _models.clear()


# --------------------------------------------------------------------------- the backend


class _RestoreFailed(Exception):
    """llama.cpp could not put a stored prompt back (no room in the cache)."""


@dataclass(slots=True)
class GenRequest:
    """One sequence to generate: its prompt tokens, its sampling settings (stop strings
    included: ``chat`` merges the template's) and its sampler's seed. ``cancelled``
    (polled between decoding steps) ends it early with ``finish_reason="cancelled"``;
    ``on_done`` gets its completion as soon as it is finished, before the rest of its
    batch (called on the decoding thread: keep it short)."""

    tokens: list[int]
    params: SamplingParams
    seed: int
    cancelled: Callable[[], bool] | None = None
    on_done: Callable[[Completion], None] | None = None


@dataclass
class _Seq:
    """One sequence being generated."""

    req: GenRequest
    sampler: object
    stops: tuple[str, ...] = ()
    tail: int = 64
    n_past: int = 0
    next_token: int = -1
    out: bytearray = None  # type: ignore[assignment]
    n_gen: int = 0
    done: bool = False
    finish: str = "length"
    text: str | None = None

    def __post_init__(self):
        self.out = bytearray()
        self.n_past = len(self.req.tokens)
        self.stops = tuple(x for x in self.req.params.stop if x)
        self.tail = max((len(x.encode("utf-8")) for x in self.stops), default=0) + 64

    def completion(self) -> Completion:
        text = self.text if self.text is not None else self.out.decode("utf-8", "ignore")
        return Completion(text, self.finish, prompt_tokens=len(self.req.tokens), completion_tokens=self.n_gen)


class LlamaCppTeacher:
    """The local GGUF teacher. See the module docstring for the batching design."""

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        max_parallel: int = DEFAULT_MAX_PARALLEL,
        n_gpu_layers: int | None = None,
        n_ubatch: int = 512,
        flash_attn: bool | None = None,
        chat_format: ChatFormat | None = None,
        prefix_cache: bool = True,
        prompt_store_mb: int = 0,
    ):
        import llama_cpp

        self.path = Path(path)
        if n_ctx < 16:
            raise TeacherError(f"n_ctx={n_ctx} is too small")
        if max_parallel < 1:
            raise TeacherError(f"max_parallel={max_parallel} must be >= 1")
        loaded = load_llama(self.path, n_gpu_layers)
        #: llama-cpp-python's ``LlamaModel`` (shared by every teacher of this file)
        self.model = loaded.model
        # shared by every teacher of this model (see _LoadedModel); reentrant for close()
        self._lock = loaded.lock
        loaded.teachers.add(self)
        self.n_ctx = n_ctx
        self.max_parallel = min(max_parallel, llama_cpp.llama_max_parallel_sequences())
        self.n_threads = n_threads or os.cpu_count() or 1
        self.n_ubatch = max(16, n_ubatch)
        self.n_batch = max(self.n_ubatch, self.max_parallel)
        self.flash_attn = flash_attn
        self.gpu = gpu_offload_supported() and (n_gpu_layers is None or n_gpu_layers != 0)
        model = self.model
        self._vocab = model.vocab
        self._bos = model.token_bos()
        self._add_bos = model.add_bos_token()
        self._n_vocab = model.n_vocab()
        self._pieces: dict[int, bytes] = {}
        self._ctx = None
        # prompt prefixes kept across calls (unified cache with flash attention only)
        self.prefix_cache = prefix_cache and flash_attn is not False
        if prompt_store_mb < 0:
            raise TeacherError(f"prompt_store_mb={prompt_store_mb} must be >= 0")
        #: bytes of one KV cell (f16 K and V of every layer)
        self.cell_bytes = model_cell_bytes(model)
        store_cells = prompt_store_mb * (1 << 20) // self.cell_bytes if self.prefix_cache else 0
        self._config = EngineConfig(self.max_parallel, self.n_ctx, self.prefix_cache, self.flash_attn, store_cells)
        self._state = CacheState()  # what the context holds (see plan_call)
        self._ctx_kind = (0, False)  # the context's cells and kind, as made
        self._store: dict[tuple[int, ...], bytes] = {}  # host-memory prompt store: prompt -> its cells
        #: what the last complete()/chat() call evaluated: prompt tokens, evaluated, reused
        self.last_stats: dict[str, int] = {}
        self._batch = None
        meta = model.metadata()
        self.chat_format = chat_format or chat_format_from_metadata(
            meta,
            bos_token=self._piece(self._bos, special=True).decode("utf-8", "ignore") if self._bos >= 0 else "",
            eos_token=self._piece(model.token_eos(), special=True).decode("utf-8", "ignore")
            if model.token_eos() >= 0
            else "",
        )
        digest = file_sha256(self.path)
        self.info = TeacherInfo(
            id=f"gguf:{digest[:12]}:{self.path.name}",
            name=meta.get("general.name") or self.path.stem,
            details={
                "backend": "llama.cpp",
                "path": str(self.path),
                "sha256": digest,
                "n_ctx": self.n_ctx,
                "max_parallel": self.max_parallel,
                "n_threads": self.n_threads,
                "gpu_offload": self.gpu,
                "chat_format": self.chat_format.name,
                "n_params": model.n_params(),
                "model_desc": model.desc(),
            },
        )

    # ------------------------------------------------------------------ public API

    def tokenize(self, text: str) -> list[int]:
        """Tokens of a prompt as generation sees them (BOS added, special tokens parsed).
        Not under the model's lock: llama.cpp's tokenizer only reads the vocabulary
        (llama-server tokenizes on its HTTP threads while it decodes), so the teacher
        service admits requests while a batch decodes."""
        toks = self.model.tokenize(text.encode("utf-8"), add_bos=self._add_bos, special=True)
        if len(toks) >= 2 and toks[0] == self._bos and toks[1] == self._bos:
            toks = toks[1:]  # the template already wrote the BOS text
        return toks

    def complete(self, prompts: Sequence[str], params: SamplingParams, n: int = 1) -> list[list[Completion]]:
        if n < 1:
            raise TeacherError(f"n={n} must be >= 1")
        if params.max_tokens < 1:
            raise TeacherError(f"max_tokens={params.max_tokens} must be >= 1")
        prompts = list(prompts)
        toks = [self.tokenize(p) for p in prompts]
        for i, t in enumerate(toks):
            if not t:
                raise TeacherError(f"prompt {i} is empty")
        check_context([len(t) for t in toks], params.max_tokens, self.n_ctx)
        # sequence k = prompt index * n + sample, seeded seed + k
        reqs = [
            GenRequest(toks[i], params, sequence_seed(params.seed, i * n + j))
            for i in range(len(prompts))
            for j in range(n)
        ]
        results = self.generate(reqs)
        return [results[i * n : (i + 1) * n] for i in range(len(prompts))]

    def generate(self, requests: Sequence[GenRequest]) -> list[Completion]:
        """One completion per request, all decoded together: in batches of at most
        max_parallel sequences, similar prompts together (``plan_batches``), each batch
        run by its ``plan_call`` plan. A request already cancelled when its batch starts
        is not run (``finish_reason="cancelled"``, no tokens)."""
        requests = list(requests)
        for i, r in enumerate(requests):
            if not r.tokens:
                raise TeacherError(f"prompt {i} is empty")
            if r.params.max_tokens < 1:
                raise TeacherError(f"max_tokens={r.params.max_tokens} must be >= 1")
            check_context([len(r.tokens)], r.params.max_tokens, self.n_ctx, index=i)
        results: list[Completion | None] = [None] * len(requests)
        with self._lock:
            self.last_stats = {
                "prompt_tokens": sum(len(r.tokens) for r in requests),
                "evaluated_tokens": 0,
                "reused_tokens": 0,
            }
            for group in plan_batches([r.tokens for r in requests], self.max_parallel):
                live = []
                for k in group:
                    r = requests[k]
                    if r.cancelled is not None and r.cancelled():
                        results[k] = Completion("", "cancelled", len(r.tokens), 0)
                        if r.on_done is not None:
                            r.on_done(results[k])
                    else:
                        live.append(k)
                if live:
                    for k, c in zip(live, self._generate([requests[k] for k in live])):
                        results[k] = c
        return results  # type: ignore[return-value]

    def chat(
        self, conversations: Sequence[Sequence[Message]], params: SamplingParams, n: int = 1
    ) -> list[list[Completion]]:
        prompts = [format_chat(conv, self.chat_format) for conv in conversations]
        stops = merge_stops(params.stop, self.chat_format)
        return self.complete(prompts, _replace_stop(params, stops), n)

    def forget_prompts(self) -> None:
        """Drop the prompt prefixes kept from earlier calls, so the next call's output
        does not depend on what ran before. (With quantized weights, reused KV cells
        can differ from freshly evaluated ones in the last bits; at a near-tie that
        changes a sample.) The pipelines call this at the start of every leaf."""
        import llama_cpp

        with self._lock:
            if self._ctx is not None and self._state.kept:
                llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(self._ctx), True)
            self._state = CacheState(*self._ctx_kind) if self._ctx is not None else CacheState()
            self._store.clear()

    def close(self) -> None:
        import llama_cpp

        with self._lock:
            if self._batch is not None:
                llama_cpp.llama_batch_free(self._batch)
                self._batch = None
            if self._ctx is not None:
                llama_cpp.llama_free(self._ctx)
                self._ctx = None
                self._state = CacheState()
                self._ctx_kind = (0, False)
            self._store.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    # ------------------------------------------------------------------ internals

    def _piece(self, token: int, special: bool = False) -> bytes:
        import llama_cpp

        key = token if not special else -1 - token
        piece = self._pieces.get(key)
        if piece is None:
            buf = ctypes.create_string_buffer(256)
            n = llama_cpp.llama_token_to_piece(self._vocab, token, buf, 256, 0, special)
            if n < 0:
                buf = ctypes.create_string_buffer(-n)
                n = llama_cpp.llama_token_to_piece(self._vocab, token, buf, -n, 0, special)
            piece = buf.raw[: max(n, 0)]
            self._pieces[key] = piece
        return piece

    def _new_context(self, unified: bool, cells: int) -> None:
        """(Re)create the context: one unified KV cache of ``cells`` cells, or max_parallel
        KV streams of ``cells`` cells each."""
        import llama_cpp

        if self._ctx is not None:
            llama_cpp.llama_free(self._ctx)
            self._ctx = None
        p = llama_cpp.llama_context_default_params()
        p.n_ctx = cells if unified else cells * self.max_parallel
        p.n_batch = self.n_batch
        p.n_ubatch = self.n_ubatch
        p.n_seq_max = self.max_parallel * (self._config.slots if unified else 1)
        p.n_threads = self.n_threads
        p.n_threads_batch = self.n_threads
        p.kv_unified = unified
        p.no_perf = True
        if self.flash_attn is not None:
            p.flash_attn_type = (
                llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED if self.flash_attn else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
            )
        ctx = llama_cpp.llama_init_from_model(self.model.model, p)
        if not ctx:
            raise TeacherError(
                f"llama.cpp could not create a context of {cells if unified else f'{self.max_parallel} x {cells}'} "
                f"cells for {self.path.name}"
            )
        self._ctx = ctx
        self._ctx_kind = (cells, unified)
        if self._batch is None:
            self._batch = llama_cpp.llama_batch_init(self.n_batch, 0, self.max_parallel)

    def _make_sampler(self, params: SamplingParams, seed: int):
        """llama.cpp's usual chain: top-k, top-p, min-p, temperature, a seeded draw
        (greedy at temperature 0). Top-k first also keeps each draw cheap: top-p alone
        sorts the whole vocabulary for every token (measured 1.6 ms vs 0.04 ms per token
        on a 32000-token vocabulary, i.e. 15% of a batched decoding step)."""
        import llama_cpp

        chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        add = lambda smpl: llama_cpp.llama_sampler_chain_add(chain, smpl)  # noqa: E731
        if params.temperature <= 0:
            add(llama_cpp.llama_sampler_init_greedy())
            return chain
        top_k = DEFAULT_TOP_K if params.top_k is None else params.top_k
        min_p = DEFAULT_MIN_P if params.min_p is None else params.min_p
        if top_k > 0:
            add(llama_cpp.llama_sampler_init_top_k(top_k))
        if 0 < params.top_p < 1:
            add(llama_cpp.llama_sampler_init_top_p(params.top_p, 1))
        if min_p > 0:
            add(llama_cpp.llama_sampler_init_min_p(min_p, 1))
        add(llama_cpp.llama_sampler_init_temp(params.temperature))
        add(llama_cpp.llama_sampler_init_dist(seed))
        return chain

    def _decode(self, entries: Sequence[tuple[int, int, tuple[int, ...], bool]], seqs: dict[int, _Seq]) -> None:
        """Evaluate (token, pos, sequence ids, wants_logits) entries in calls of at most
        n_batch tokens; a sequence whose logits come out samples its next token at once.
        ``seqs`` maps a KV sequence id to its sequence."""
        import llama_cpp

        b = self._batch
        for start in range(0, len(entries), self.n_batch):
            chunk = entries[start : start + self.n_batch]
            for i, (tok, pos, group, logits) in enumerate(chunk):
                b.token[i] = tok
                b.pos[i] = pos
                b.n_seq_id[i] = len(group)
                for j, sid in enumerate(group):
                    b.seq_id[i][j] = sid
                b.logits[i] = 1 if logits else 0
            b.n_tokens = len(chunk)
            rc = llama_cpp.llama_decode(self._ctx, b)
            if rc != 0:
                raise TeacherError(
                    f"llama_decode failed (code {rc}{': no room in the KV cache' if rc == 1 else ''}) "
                    f"on {self.path.name}"
                )
            for i, (_tok, _pos, group, logits) in enumerate(chunk):
                if logits:
                    seq = seqs[group[0]]
                    seq.next_token = llama_cpp.llama_sampler_sample(seq.sampler, self._ctx, i)

    def _execute(self, op, seqs: dict[int, _Seq]) -> None:
        """Carry out one operation of a plan (see ``plan_call``)."""
        import llama_cpp

        if isinstance(op, NewContext):
            self._new_context(op.unified, op.cells)
            return
        mem = llama_cpp.llama_get_memory(self._ctx)
        if isinstance(op, Evaluate):
            self._decode(op.entries, seqs)
        elif isinstance(op, CopySeq):
            llama_cpp.llama_memory_seq_cp(mem, op.src, op.dst, op.p0, op.p1)
        elif isinstance(op, RemoveSeq):
            llama_cpp.llama_memory_seq_rm(mem, op.seq, op.p0, op.p1)
        elif isinstance(op, ClearCache):
            # metadata only: zeroing the buffers too costs ~10 ms per 8192 cells; free
            # cells are masked out, and what they still hold is finite (old K/V values)
            llama_cpp.llama_memory_clear(mem, False)
        elif isinstance(op, SaveSeq):
            size = llama_cpp.llama_state_seq_get_size(self._ctx, op.seq)
            buf = (ctypes.c_uint8 * size)()
            got = llama_cpp.llama_state_seq_get_data(self._ctx, buf, size, op.seq)
            self._store[op.tokens] = bytes(buf)[:got]
        elif isinstance(op, RestoreSeq):
            blob = self._store.get(op.tokens)
            buf = (ctypes.c_uint8 * len(blob)).from_buffer_copy(blob) if blob else None
            if buf is None or not llama_cpp.llama_state_seq_set_data(self._ctx, buf, len(blob), op.dst):
                raise _RestoreFailed(f"could not restore a stored prompt of {len(op.tokens)} tokens")
            llama_cpp.llama_memory_seq_rm(mem, op.dst, op.keep, -1)
        elif isinstance(op, DropStored):
            self._store.pop(op.tokens, None)
        else:  # pragma: no cover - a new kind of operation without its execution
            raise TypeError(f"unknown plan operation {op!r}")

    def _generate(self, reqs: list[GenRequest]) -> list[Completion]:
        """Run one batch: execute its plan (context, kept prompts, prompt evaluation),
        then decode one token for every unfinished sequence per step."""
        import llama_cpp

        tokens, lengths = [r.tokens for r in reqs], [r.params.max_tokens for r in reqs]
        plan = plan_call(self._state, tokens, lengths, self._config)
        seqs = [_Seq(r, self._make_sampler(r.params, r.seed)) for r in reqs]
        by_id = dict(zip(plan.ids, seqs))
        try:
            try:
                for op in plan.ops:
                    self._execute(op, by_id)
            except _RestoreFailed as e:
                # llama.cpp found no room for it: start this batch clean, without the store
                _llama_log.warning("prompt store: %s; starting the batch clean", e)
                self._store.clear()
                llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(self._ctx), True)
                self._state = CacheState(*self._ctx_kind)
                plan = plan_call(self._state, tokens, lengths, self._config)
                by_id = dict(zip(plan.ids, seqs))
                for op in plan.ops:
                    self._execute(op, by_id)
            self.last_stats["evaluated_tokens"] += plan.evaluated
            self.last_stats["reused_tokens"] += plan.reused
            mem = llama_cpp.llama_get_memory(self._ctx)
            while True:
                step = []
                for sid, seq in by_id.items():
                    if seq.done:
                        continue
                    self._accept(seq)
                    if seq.done:  # free its generated cells (a kept prompt stays)
                        llama_cpp.llama_memory_seq_rm(mem, sid, len(seq.req.tokens) if plan.retain else -1, -1)
                        if seq.req.on_done is not None:
                            seq.req.on_done(seq.completion())
                    else:
                        step.append((seq.next_token, seq.n_past, (sid,), True))
                        seq.n_past += 1
                if not step:
                    break
                self._decode(step, by_id)
        except BaseException:
            if self._ctx is not None:
                llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(self._ctx), True)
            self._state = CacheState(*self._ctx_kind) if self._ctx is not None else CacheState()
            self._store.clear()
            raise
        finally:
            for seq in seqs:
                llama_cpp.llama_sampler_free(seq.sampler)
        self._state = plan.after
        return [seq.completion() for seq in seqs]

    def _accept(self, seq: _Seq) -> None:
        """Take the sampled token into the sequence; mark it done on cancellation, EOG,
        a stop string or its max_tokens."""
        import llama_cpp

        if seq.req.cancelled is not None and seq.req.cancelled():
            seq.done, seq.finish = True, "cancelled"
            return
        tok = seq.next_token
        if llama_cpp.llama_vocab_is_eog(self._vocab, tok):
            seq.done, seq.finish = True, "stop"
            return
        seq.n_gen += 1
        piece = self._piece(tok)
        seq.out += piece
        if seq.stops:
            recent = bytes(seq.out[-(seq.tail + len(piece)) :]).decode("utf-8", "ignore")
            if find_stop(recent, seq.stops) >= 0:
                text = seq.out.decode("utf-8", "ignore")
                seq.text = text[: find_stop(text, seq.stops)]
                seq.done, seq.finish = True, "stop"
                return
        if seq.n_gen >= seq.req.params.max_tokens:
            seq.done, seq.finish = True, "length"


def _replace_stop(params: SamplingParams, stop: tuple[str, ...]) -> SamplingParams:
    from dataclasses import replace

    return replace(params, stop=stop)
