"""The local teacher's plan of a call (``plan_call``): pure, so tested without a model."""

from __future__ import annotations

from lab_ci.teacher.llamacpp import (
    UNIFIED_MIN_CELLS,
    CacheState,
    ClearCache,
    CopySeq,
    DropStored,
    EngineConfig,
    Evaluate,
    NewContext,
    RemoveSeq,
    RestoreSeq,
    SaveSeq,
    context_cells,
    plan_call,
    prompt_tree,
)

CFG = EngineConfig(max_parallel=4, n_ctx=4096)
HEAD = list(range(1, 300))  # a system prompt and task every prompt of a leaf starts with


def evaluated_positions(plan) -> dict[int, list[int]]:
    """KV sequence id -> the positions evaluated for it."""
    out: dict[int, list[int]] = {}
    for op in plan.ops:
        if isinstance(op, Evaluate):
            for _tok, pos, ids, _logits in op.entries:
                for sid in ids:
                    out.setdefault(sid, []).append(pos)
    return out


def test_first_call_makes_a_unified_cache_big_enough_to_keep_prompts():
    seqs = [HEAD + [500, 501]] * 3  # a set of samples: one prompt three times
    plan = plan_call(CacheState(), seqs, [64, 64, 64], CFG)
    assert plan.unified and plan.retain
    assert plan.ops[0] == NewContext(True, context_cells(UNIFIED_MIN_CELLS))
    assert isinstance(plan.ops[1], ClearCache)
    # the shared prompt is evaluated once, each sequence's last token on its own
    assert plan.evaluated == len(prompt_tree(seqs)) == len(HEAD) + 1 + 3
    assert plan.ids == (0, 1, 2) and plan.reused == 0
    assert evaluated_positions(plan) == {sid: list(range(len(seqs[0]))) for sid in plan.ids}
    assert plan.after.cells == context_cells(UNIFIED_MIN_CELLS) and plan.after.calls == 1
    assert [sid for sid, _ in plan.after.kept] == [0, 1, 2]
    assert dict(plan.after.kept_cells) == {0: plan.evaluated}


def test_next_call_reuses_the_kept_prompt_cells_and_evaluates_only_the_rest():
    first = plan_call(CacheState(), [HEAD + [500, 501]] * 2, [48, 48], CFG)
    answers = [HEAD + [500, 501, 600 + i, 601] for i in range(2)]  # answer prompts start like the questions'
    plan = plan_call(first.after, answers, [256, 256], CFG)
    assert not any(isinstance(op, (NewContext, ClearCache)) for op in plan.ops)
    assert plan.ids == (4, 5)  # the next slot's sequence ids
    copies = [op for op in plan.ops if isinstance(op, CopySeq)]
    assert [(c.dst, c.p0, c.p1) for c in copies] == [(4, 0, len(HEAD) + 2), (5, 0, len(HEAD) + 2)]
    assert all(c.src in (0, 1) for c in copies)
    assert plan.reused == 2 * (len(HEAD) + 2) and plan.evaluated == 2 * 2
    # only the new positions are evaluated, for each sequence
    assert evaluated_positions(plan) == {sid: [len(HEAD) + 2, len(HEAD) + 3] for sid in plan.ids}
    # both calls' prompts are kept; three calls later the first one's are dropped
    assert {sid for sid, _ in plan.after.kept} == {0, 1, 4, 5}
    state = plan.after
    for k in range(2):
        state = plan_call(state, [HEAD + [700 + k, 1]] * 2, [8, 8], CFG).after
    assert {sid for sid, _ in state.kept} == {0, 1, 4, 5} - {4, 5} | {8, 9}  # slots rotate: 0, 1, 2, 0
    assert state.calls == 4


def test_the_oldest_kept_call_is_dropped_from_the_cache():
    state = CacheState()
    for k in range(3):
        state = plan_call(state, [HEAD + [900 + k, 1]], [8], CFG).after
    plan = plan_call(state, [HEAD + [950, 1]], [8], CFG)
    # slot 0 again: its ids are the oldest call's, removed from the cache first
    assert plan.ids == (0,)
    assert RemoveSeq(0) in plan.ops


def test_a_call_that_does_not_fit_beside_the_kept_prompts_starts_clean_in_a_bigger_context():
    cfg = EngineConfig(max_parallel=2, n_ctx=512)
    small = plan_call(CacheState(), [HEAD + [1, 2], HEAD + [3, 4]], [2, 2], cfg)
    assert small.after.cells == 1024  # max_parallel x n_ctx: within the floor's cap
    big = plan_call(small.after, [HEAD + [1, 2, 5], HEAD + [3, 4, 5]], [440, 440], cfg)
    assert isinstance(big.ops[0], NewContext) and big.ops[0].cells > 1024
    assert big.reused == 0  # the kept prompts are gone with the old context
    again = plan_call(big.after, [HEAD + [1, 2, 5], HEAD + [3, 4, 5]], [440, 440], cfg)
    assert not any(isinstance(op, NewContext) for op in again.ops)
    assert again.reused == 2 * (len(HEAD) + 2)


CFG8 = EngineConfig(max_parallel=8, n_ctx=4096)
# eight prompts that share only a header (every sample its own draw of examples)
MIXED = [HEAD[:100] + [10000 * (i + 1) + j for j in range(700)] for i in range(8)]


def test_prompts_sharing_only_a_header_run_in_one_stream_each():
    plan = plan_call(CacheState(), MIXED, [32] * 8, CFG8)
    assert not plan.unified and not plan.retain
    assert plan.ops[0] == NewContext(False, context_cells(800 + 32))
    # the common header once on the first sequence, copied into the others' streams
    assert [op for op in plan.ops if isinstance(op, CopySeq)] == [CopySeq(0, s) for s in range(1, 8)]
    assert plan.evaluated == 100 + 8 * 700
    assert plan.after.kept == () and plan.after.calls == 0


def test_one_sequence_keeps_the_context_it_finds():
    streams = plan_call(CacheState(), MIXED, [32] * 8, CFG8).after
    plan = plan_call(streams, [HEAD[:50]], [16], CFG8)
    assert not plan.unified and not any(isinstance(op, NewContext) for op in plan.ops)


def test_reuse_is_skipped_when_the_masked_kept_cells_cost_more_than_it_saves():
    # the previous call kept a long prompt that this call shares only 2 tokens with
    long = [7, 8] + list(range(20000, 27000))
    cfg = EngineConfig(max_parallel=1, n_ctx=16384)
    first = plan_call(CacheState(), [long], [4], cfg)
    plan = plan_call(first.after, [[7, 8, 9, 10]], [500], cfg)
    assert plan.reused == 0 and isinstance(plan.ops[0], ClearCache)
    assert plan.after.kept == ((plan.ids[0], (7, 8, 9, 10)),)


def test_per_sequence_max_tokens_size_the_cache():
    seqs = [HEAD + [1], HEAD + [2]]
    cfg = EngineConfig(max_parallel=2, n_ctx=4096, prefix_cache=False)
    plan = plan_call(CacheState(), seqs, [10, 3000], cfg)
    assert plan.unified and not plan.retain
    assert plan.ops[0] == NewContext(True, context_cells(len(prompt_tree(seqs)) + 3010))
    assert plan.after.kept == ()


# ----------------------------------------------------------------- the host-memory prompt store

STORE = EngineConfig(max_parallel=4, n_ctx=4096, store_cells=10_000, min_store=32)


def run_calls(state, calls, cfg=STORE):
    plans = []
    for seqs in calls:
        plans.append(plan_call(state, seqs, [16] * len(seqs), cfg))
        state = plans[-1].after
    return state, plans


def test_kept_prompts_leaving_the_cache_are_stored_first():
    first = [HEAD + [500, 1], HEAD + [501, 1]]
    others = [[HEAD + [9000 + k, 1]] for k in range(3)]  # each reuses the kept HEAD: the slots rotate
    state, plans = run_calls(CacheState(), [first, *others])
    # the third call drops the first call's prompts (two calls' stay): saved, then removed
    ops = plans[2].ops
    saves = [op for op in ops if isinstance(op, SaveSeq)]
    assert [(op.seq, op.tokens) for op in saves] == [(0, tuple(first[0])), (1, tuple(first[1]))]
    assert ops.index(saves[-1]) < ops.index(RemoveSeq(0))
    assert state.stored[:2] == (tuple(first[0]), tuple(first[1]))
    # no store: nothing saved
    _, plain = run_calls(CacheState(), [first, *others], CFG)
    assert not any(isinstance(op, SaveSeq) for plan in plain for op in plan.ops)


def test_a_stored_prompt_is_restored_once_and_shared():
    first = [HEAD + [500, 1]]
    others = [[[9000 + 100 * k + j for j in range(200)]] for k in range(3)]
    state, _ = run_calls(CacheState(), [first, *others])
    again = [HEAD + [500, 1, 7], HEAD + [500, 2], HEAD + [600]]  # a new push: the same leaf's prompts
    plan = plan_call(state, again, [16] * 3, STORE)
    restores = [op for op in plan.ops if isinstance(op, RestoreSeq)]
    assert restores == [RestoreSeq(tuple(first[0]), plan.ids[0], len(HEAD) + 2)]
    copies = [op for op in plan.ops if isinstance(op, CopySeq)]
    assert CopySeq(plan.ids[0], plan.ids[1], 0, len(HEAD) + 1) in copies
    assert CopySeq(plan.ids[0], plan.ids[2], 0, len(HEAD)) in copies
    assert plan.reused == (len(HEAD) + 2) + (len(HEAD) + 1) + len(HEAD)
    assert evaluated_positions(plan)[plan.ids[0]] == [len(HEAD) + 2]
    assert plan.after.stored[-1] == tuple(first[0])  # most recently used last


def test_the_store_drops_its_least_recently_used_prompts_to_fit():
    small = EngineConfig(max_parallel=4, n_ctx=4096, store_cells=500, min_store=32)
    calls = [[[1000 * (k + 1) + j for j in range(200)]] for k in range(6)]
    state, plans = run_calls(CacheState(), calls, small)
    # nothing shared: each call clears the cache, saving the kept prompts; two of 200 fit
    assert state.stored == (tuple(calls[3][0]), tuple(calls[4][0]))
    assert any(isinstance(op, DropStored) and op.tokens == tuple(calls[0][0]) for op in plans[3].ops)


def test_prompts_are_stored_before_the_cache_is_cleared_or_replaced():
    first = [HEAD + [500, 1]]
    cfg = EngineConfig(max_parallel=1, n_ctx=16384, store_cells=100_000, min_store=32)
    state, _ = run_calls(CacheState(), [first], cfg)
    # a call that shares nothing worth reusing clears the cache: the kept prompt is saved first
    plan = plan_call(state, [[7, 8, 9, 10]], [500], cfg)
    kinds = [type(op) for op in plan.ops]
    assert kinds.index(SaveSeq) < kinds.index(ClearCache)
    # one that needs a bigger context: saved before the new context
    big = plan_call(plan_call(CacheState(), first, [16], cfg).after, [HEAD + [1]], [15_000], cfg)
    kinds = [type(op) for op in big.ops]
    assert kinds.index(SaveSeq) < kinds.index(NewContext)
