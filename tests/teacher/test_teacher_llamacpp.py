"""The local llama.cpp teacher on real GGUFs: our tiny random-weight ones and the
tiny trained teacher from scripts/build_tiny_models.py."""

from __future__ import annotations

import threading

import pytest

from lab_ci.teacher import load_teacher
from lab_ci.teacher.base import Message, SamplingParams, Teacher, TeacherError
from lab_ci.teacher.llamacpp import (
    GenRequest,
    LlamaCppTeacher,
    check_context,
    common_prefix_len,
    find_stop,
    layout_costs,
    plan_batches,
    prompt_tree,
    sequence_seed,
    shared_prefix_len,
    use_unified_cache,
)
from lab_ci.teacher.templates import format_chat

GREEDY = SamplingParams(temperature=0.0, max_tokens=24)
PROMPTS = [
    "<|system|>\nYou are a careful teacher.\n<|user|>\nWrite a question about bees.\n<|assistant|>\n",
    "<|system|>\nYou are a careful teacher.\n<|user|>\nWrite a question about the moon and its phases.\n<|assistant|>\n",
    "<|system|>\nYou are a careful teacher.\n<|user|>\nWrite\n<|assistant|>\n",
    "A different prompt without the shared prefix",
]


@pytest.fixture(scope="module", params=["random-f32", "random-q8_0", "tiny-teacher"])
def teacher(request, random_ggufs) -> LlamaCppTeacher:
    if request.param == "tiny-teacher":
        path = request.getfixturevalue("tiny_models")["teacher"]
    else:
        path = random_ggufs[request.param.removeprefix("random-")]
    t = load_teacher(str(path), n_ctx=512, max_parallel=8)
    yield t
    t.close()


# ----------------------------------------------------------------- pure batching logic


def test_prefix_logic():
    assert common_prefix_len([[1, 2, 3], [1, 2, 4], [1, 2]]) == 2
    assert common_prefix_len([[5], [6]]) == 0
    # every sequence keeps at least one token of its own
    assert shared_prefix_len([[1, 2, 3], [1, 2, 3]]) == 2
    assert shared_prefix_len([[1, 2], [1, 2, 3]]) == 1


def test_prompt_tree_evaluates_each_shared_prefix_once():
    seqs = [[1, 2, 3, 4], [1, 2, 5, 6], [1, 2, 5, 7], [9], [1, 2, 5, 7]]
    tree = prompt_tree(seqs)
    # every sequence sees exactly its own tokens, at consecutive positions, in order
    for s, toks in enumerate(seqs):
        mine = [(tok, pos) for tok, pos, ids, _ in tree if s in ids]
        assert mine == [(t, i) for i, t in enumerate(toks)]
    # each (prefix) is evaluated once: [1,2] for 0,1,2,4; [5] for 1,2,4; [7] for 2 and 4 apart
    assert [(t, p, ids) for t, p, ids, _ in tree if len(ids) > 1] == [
        (1, 0, (0, 1, 2, 4)),
        (2, 1, (0, 1, 2, 4)),
        (5, 2, (1, 2, 4)),
    ]
    # the last token of every sequence is its own and the only one with logits
    assert sorted(ids for _, _, ids, logits in tree if logits) == [(0,), (1,), (2,), (3,), (4,)]
    assert len(tree) == 2 + 2 + 1 + 1 + 2 + 1  # [1,2] [3,4] [5] [6] [7]x2 [9]
    # identical prompts: everything but the last token shared
    assert [ids for *_, ids, _ in prompt_tree([[4, 5, 6]] * 3)] == [(0, 1, 2), (0, 1, 2), (0,), (1,), (2,)]


def test_layout_choice_follows_what_is_shared():
    head = list(range(100))
    same = [head + list(range(1000, 1600))] * 8
    # two sets of examples, four different questions each (the preview's answer prompts)
    sets = [
        head + list(range(1000 + 1000 * (i // 4), 1600 + 1000 * (i // 4))) + [50000 + 40 * i + j for j in range(40)]
        for i in range(8)
    ]
    # eight prompts that share only the header (every sample its own examples)
    mixed = [head + [10000 * (i + 1) + j for j in range(700)] for i in range(8)]
    assert use_unified_cache(same, 32) and use_unified_cache(sets, 256)
    assert not use_unified_cache(mixed, 32)
    unified, streams = layout_costs(sets, 256)
    assert unified < 0.7 * streams  # the tree evaluates ~1600 prompt tokens, streams ~5600
    assert use_unified_cache([[1, 2, 3]], 8)


def test_plan_batches_groups_equal_prompts_and_caps_size():
    a, b = [1, 2, 9], [1, 3]
    seqs = [a, b, a, b, a, b, a, b, [7]]
    plan = plan_batches(seqs, max_parallel=4)
    assert all(len(g) <= 4 for g in plan)
    assert sorted(i for g in plan for i in g) == list(range(9))
    assert [0, 2, 4, 6] in plan and [1, 3, 5, 7] in plan and [8] in plan


def test_check_context_and_find_stop():
    check_context([10, 20], max_tokens=30, n_ctx=50)
    with pytest.raises(TeacherError, match="prompt 1 is 21 tokens; with max_tokens=30 it needs 51"):
        check_context([10, 21], max_tokens=30, n_ctx=50)
    assert find_stop("abc\n\nxyz END", ["END", "\n\n"]) == 3
    assert find_stop("abc", ["x"]) == -1


# ----------------------------------------------------------------- loading


def test_identity_and_protocol(teacher):
    assert isinstance(teacher, Teacher)
    kind, digest, name = teacher.info.id.split(":", 2)
    assert kind == "gguf" and len(digest) == 12 and name == teacher.path.name
    assert teacher.info.details["sha256"].startswith(digest)


def test_model_is_loaded_once_per_process(random_ggufs):
    a = LlamaCppTeacher(random_ggufs["q8_0"], n_ctx=256)
    b = LlamaCppTeacher(random_ggufs["q8_0"], n_ctx=128)
    assert a.model is b.model
    a.close()
    b.close()


def test_teachers_of_one_model_generate_from_threads_as_they_do_alone(random_ggufs):
    # Bot workers open a teacher per job on the one cached model: their calls take the
    # model's lock in turn, and each gets what it gets alone (fixed seeds).
    params = SamplingParams(temperature=0.8, max_tokens=16, seed=7)
    with LlamaCppTeacher(random_ggufs["q8_0"], n_ctx=512, prefix_cache=False) as t:
        alone = [[c.text for c in cs] for cs in t.complete(PROMPTS, params, n=2)]
    got: dict[int, list] = {}
    errors: list[BaseException] = []

    def run(k: int) -> None:
        try:
            for _ in range(3):
                with LlamaCppTeacher(random_ggufs["q8_0"], n_ctx=512, prefix_cache=False) as t:
                    got.setdefault(k, []).append([[c.text for c in cs] for cs in t.complete(PROMPTS, params, n=2)])
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert not errors
    assert sorted(got) == [0, 1, 2]
    assert all(runs == [alone] * 3 for runs in got.values())


def test_repack_setting_chooses_the_weight_buffers(random_ggufs, monkeypatch):
    from lab_ci.teacher.llamacpp import ENV_REPACK, use_extra_buffers

    monkeypatch.setenv(ENV_REPACK, "off")
    assert use_extra_buffers() is False
    with LlamaCppTeacher(random_ggufs["q8_0"], n_ctx=256) as off:
        assert off.complete(["a b c"], GREEDY)[0][0].completion_tokens > 0
    monkeypatch.setenv(ENV_REPACK, "on")
    assert use_extra_buffers() is True
    with LlamaCppTeacher(random_ggufs["q8_0"], n_ctx=256) as on:
        assert on.model is not off.model  # cached per setting
        assert on.info.id == off.info.id
    monkeypatch.setenv(ENV_REPACK, "Sometimes")
    with pytest.raises(TeacherError, match="LAB_CI_LLAMA_REPACK='Sometimes': expected auto, on or off"):
        LlamaCppTeacher(random_ggufs["q8_0"], n_ctx=256)


def test_load_errors_are_clear(tmp_path):
    with pytest.raises(TeacherError, match="no such file"):
        load_teacher(str(tmp_path / "missing.gguf"))
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"PK\x03\x04not a gguf")
    with pytest.raises(TeacherError, match="not a GGUF file"):
        load_teacher(str(bad))
    with pytest.raises(TeacherError, match="not a file"):
        load_teacher(str(tmp_path))
    with pytest.raises(TeacherError, match="only http:// and https://"):
        load_teacher("ftp://example.invalid/model")
    with pytest.raises(TeacherError, match="no teacher given"):
        load_teacher("")


def test_truncated_gguf_is_a_teacher_error(tmp_path, random_ggufs):
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(random_ggufs["q8_0"].read_bytes()[:4096])
    with pytest.raises(TeacherError, match="cannot load"):
        load_teacher(str(cut))


# ----------------------------------------------------------------- generation


def test_batched_equals_sequential_greedy(teacher):
    """Greedy decoding of several prompts (2 samples each, shared prefix) in one batch
    gives the texts one-at-a-time decoding gives.

    With f32 weights the match is exact. With quantized weights llama.cpp's CPU
    kernels for a batch of rows (GEMM) and for one row (vec_dot) sum the q8 blocks in
    different orders; the logits differ in the last bits, and a random-weight model
    meets near ties (measured: top-2 logit margin 0.0035 at token 23 of prompt 2 on
    tiny q8_0) where that flips the argmax. So for quantized models the texts must agree
    up to such a tie: exactly for the first tokens, and samples of one batch always.
    """
    batched = teacher.complete(PROMPTS, GREEDY, n=2)
    one_by_one = [teacher.complete([p], GREEDY)[0][0] for p in PROMPTS]
    exact = "F32" in teacher.info.details["model_desc"]
    for i, single in enumerate(one_by_one):
        assert single.completion_tokens > 0
        a, b = batched[i]
        assert a == b, f"prompt {i}: two greedy samples in one batch differ"
        assert a.prompt_tokens == single.prompt_tokens == len(teacher.tokenize(PROMPTS[i]))
        if exact:
            assert a == single, f"prompt {i}"
        else:
            assert a.text[:6] == single.text[:6], f"prompt {i}"


def test_split_into_several_batches_gives_the_same_results(random_ggufs):
    prompts = [f"<|user|>\nQuestion number {i}\n<|assistant|>\n" for i in range(5)]
    wide = LlamaCppTeacher(random_ggufs["f32"], n_ctx=256, max_parallel=8)
    narrow = LlamaCppTeacher(random_ggufs["f32"], n_ctx=256, max_parallel=3)
    params = SamplingParams(temperature=0.9, top_p=0.9, max_tokens=16, seed=7)
    assert wide.complete(prompts, params, n=2) == narrow.complete(prompts, params, n=2)
    wide.close()
    narrow.close()


def test_requests_with_their_own_settings_decode_together_as_they_do_alone(random_ggufs):
    """generate(): each request has its own sampling settings, length, stops and seed
    (the teacher service batches requests of several jobs); f32: exactly what each gives alone."""
    settings = [
        SamplingParams(temperature=0.0, max_tokens=5),
        SamplingParams(temperature=1.0, top_p=0.9, max_tokens=17, seed=3),
        SamplingParams(temperature=0.7, max_tokens=11, seed=8, stop=("e",)),
    ]
    with LlamaCppTeacher(random_ggufs["f32"], n_ctx=256, max_parallel=4, prefix_cache=False) as t:
        alone = [t.complete([PROMPTS[i]], params)[0][0] for i, params in enumerate(settings)]
        reqs = [
            GenRequest(t.tokenize(PROMPTS[i]), params, sequence_seed(params.seed, 0))
            for i, params in enumerate(settings)
        ]
        together = t.generate(reqs)
    assert together == alone
    assert [c.completion_tokens for c in together][:2] == [5, 17]
    assert together[2].finish_reason == "stop" or together[2].completion_tokens == 11


def test_a_cancelled_request_stops_and_finished_ones_are_reported_at_once(random_ggufs):
    done: list[tuple[str, int]] = []
    polls = {"n": 0}

    def cancel_after_a_few():
        polls["n"] += 1
        return polls["n"] > 6

    params = SamplingParams(temperature=0.0, max_tokens=40)
    with LlamaCppTeacher(random_ggufs["f32"], n_ctx=256, max_parallel=4) as t:
        reqs = [
            GenRequest(t.tokenize(PROMPTS[0]), SamplingParams(temperature=0.0, max_tokens=3), 0),
            GenRequest(t.tokenize(PROMPTS[1]), params, 0, cancelled=cancel_after_a_few),
            GenRequest(t.tokenize(PROMPTS[2]), params, 0, cancelled=lambda: True),  # cancelled before its batch
            GenRequest(t.tokenize(PROMPTS[3]), params, 0),
        ]
        for i, r in enumerate(reqs):
            r.on_done = lambda c, i=i: done.append((c.finish_reason, i))
        short, cancelled, never, full = t.generate(reqs)
        assert t.last_stats["prompt_tokens"] == sum(len(r.tokens) for r in reqs)
    assert short.completion_tokens == 3 and full.completion_tokens == 40
    assert cancelled.finish_reason == "cancelled" and 0 < cancelled.completion_tokens < 40
    assert never == type(never)("", "cancelled", len(reqs[2].tokens), 0)
    # each completion is reported when it is done: the short one long before the last
    assert done[0] == ("cancelled", 2) and done[-1] == ("length", 3)
    assert done.index(("length", 0)) < done.index(("cancelled", 1)) < len(done) - 1


def test_fixed_seed_repeats_and_samples_differ(teacher):
    params = SamplingParams(temperature=1.0, top_p=0.95, max_tokens=20, seed=1234)
    teacher.forget_prompts()
    first = teacher.complete(PROMPTS[:2], params, n=3)
    teacher.forget_prompts()  # the same history (none), so the same samples
    second = teacher.complete(PROMPTS[:2], params, n=3)
    assert first == second
    texts = [c.text for c in first[0]]
    assert len(set(texts)) > 1, "samples of one prompt should differ (seed + index)"
    other = teacher.complete(PROMPTS[:2], SamplingParams(temperature=1.0, top_p=0.95, max_tokens=20, seed=99), n=3)
    assert other != first


def test_prompt_prefixes_are_reused_across_calls(random_ggufs):
    """A call whose prompts start like an earlier call's reuses those KV cells (only
    the rest is evaluated), and greedy output is what a fresh teacher gives (f32:
    exactly). forget_prompts() drops them."""
    path = random_ggufs["f32"]
    a = [PROMPTS[0], PROMPTS[1]]
    b = [PROMPTS[0].replace("bees.", "bees and wasps."), PROMPTS[1] + "Sure."]
    with LlamaCppTeacher(path, n_ctx=512, max_parallel=4) as t:
        t.complete(a, GREEDY, n=2)
        assert t.last_stats["reused_tokens"] == 0
        warm = t.complete(b, GREEDY)
        stats = dict(t.last_stats)
        t.forget_prompts()
        cold = t.complete(b, GREEDY)
        cold_stats = dict(t.last_stats)
    assert stats["prompt_tokens"] == cold_stats["prompt_tokens"]
    assert stats["reused_tokens"] > 0 and cold_stats["reused_tokens"] == 0
    assert stats["evaluated_tokens"] < cold_stats["evaluated_tokens"]
    assert warm == cold
    with LlamaCppTeacher(path, n_ctx=512, max_parallel=4, prefix_cache=False) as t:
        t.complete(a, GREEDY)
        assert t.complete(b, GREEDY) == cold and t.last_stats["reused_tokens"] == 0


def test_kept_prompts_survive_a_bigger_next_call(random_ggufs):
    """A fresh teacher's first call is small (a judge: few tokens out); the next one
    wants far more cells (answers: many tokens out). The unified cache is made big
    enough up front that this does not re-create the context, which would lose the
    first call's prompts."""
    path = random_ggufs["f32"]
    first = [PROMPTS[0], PROMPTS[1]]
    second = [PROMPTS[0] + "Sure.", PROMPTS[1] + "Sure."]
    with LlamaCppTeacher(path, n_ctx=512, max_parallel=4) as t:
        t.complete(first, SamplingParams(temperature=0.0, max_tokens=2))
        t.complete(second, SamplingParams(temperature=0.0, max_tokens=300))
        assert t.last_stats["reused_tokens"] >= sum(len(t.tokenize(p)) - 1 for p in first)
        assert t._state.cells <= 4 * 512 * 3  # within max_parallel x n_ctx x (kept calls + 1)


def test_a_call_that_outgrows_the_cache_grows_it_for_the_next(random_ggufs):
    """A call that does not fit beside the kept prompts starts clean in a bigger
    context, so the next call of that size keeps and reuses them (instead of starting
    clean again in the same small context)."""
    path = random_ggufs["f32"]
    big = SamplingParams(temperature=0.0, max_tokens=440)
    second = [PROMPTS[0] + "Sure.", PROMPTS[1] + "Sure."]
    # max_parallel 2 x n_ctx 512: the cache starts at 1024 cells; 2 x 440 tokens and the
    # second call's prompts fit in it, but not beside the first call's prompts
    with LlamaCppTeacher(path, n_ctx=512, max_parallel=2) as t:
        t.complete(PROMPTS[:2], SamplingParams(temperature=0.0, max_tokens=2))
        assert t._state.cells == 1024
        t.complete(second, big)
        assert t._state.cells > 1024
        t.complete(second, big)
        assert t.last_stats["reused_tokens"] == sum(len(t.tokenize(p)) - 1 for p in second)


def test_max_tokens_respected(teacher):
    for m in (1, 5):
        [[c]] = teacher.complete([PROMPTS[0]], SamplingParams(temperature=0.0, max_tokens=m))
        assert c.completion_tokens <= m
        if c.finish_reason == "length":
            assert c.completion_tokens == m


def test_stop_strings_cut_the_text(teacher):
    # a prompt whose greedy completion is long enough that a stop at its 5th character
    # ends it tokens earlier
    fulls = [teacher.complete([p], SamplingParams(temperature=0.0, max_tokens=40))[0][0] for p in PROMPTS]
    prompt, full = next((p, f) for p, f in zip(PROMPTS, fulls) if f.completion_tokens >= 8 and len(f.text) >= 8)
    stop = full.text[4:7]
    cut_at = full.text.find(stop)
    [[stopped]] = teacher.complete([prompt], SamplingParams(temperature=0.0, max_tokens=40, stop=(stop, "never-there")))
    assert stopped.finish_reason == "stop"
    assert stopped.text == full.text[:cut_at]
    assert stop not in stopped.text
    assert stopped.completion_tokens < full.completion_tokens


def test_context_overflow_is_a_teacher_error(random_ggufs):
    t = LlamaCppTeacher(random_ggufs["q8_0"], n_ctx=64)
    long_prompt = "word " * 200
    n = len(t.tokenize(long_prompt))
    with pytest.raises(TeacherError, match=f"prompt 0 is {n} tokens"):
        t.complete([long_prompt], SamplingParams(max_tokens=8))
    with pytest.raises(TeacherError, match="n_ctx=64"):
        t.complete(["short"], SamplingParams(max_tokens=64))
    t.close()


def test_many_sequences_fill_the_context_without_overflow(random_ggufs):
    # 32 sequences of (prompt + max_tokens) close to n_ctx each: split into batches of 8
    t = LlamaCppTeacher(random_ggufs["q8_0"], n_ctx=128, max_parallel=8)
    prompt = "<|user|>\n" + "tell me more " * 8 + "\n<|assistant|>\n"
    max_tokens = 128 - len(t.tokenize(prompt))
    out = t.complete([prompt], SamplingParams(temperature=1.0, max_tokens=max_tokens, seed=5), n=32)
    assert len(out) == 1 and len(out[0]) == 32
    assert all(c.completion_tokens <= max_tokens for c in out[0])
    assert sum(c.completion_tokens for c in out[0]) > 32
    t.close()


def test_chat_uses_lab_template_without_gguf_template(random_ggufs):
    t = LlamaCppTeacher(random_ggufs["q8_0"], n_ctx=256)
    assert t.chat_format.name == "lab"
    conv = [Message("system", "Be brief."), Message("user", "Name a colour.")]
    [[via_chat]] = t.chat([conv], GREEDY)
    [[via_complete]] = t.complete(
        [format_chat(conv, t.chat_format)], SamplingParams(temperature=0.0, max_tokens=24, stop=("<|endoftext|>",))
    )
    assert via_chat == via_complete
    t.close()


def test_chat_uses_the_gguf_chat_template(random_ggufs):
    t = LlamaCppTeacher(random_ggufs["chatml"], n_ctx=256)
    assert t.chat_format.name == "gguf-jinja" and t.info.details["chat_format"] == "gguf-jinja"
    conv = [Message("user", "Name a colour.")]
    prompt = format_chat(conv, t.chat_format)
    assert prompt == "<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\n"
    [[via_chat]] = t.chat([conv], GREEDY)
    [[via_complete]] = t.complete([prompt], SamplingParams(temperature=0.0, max_tokens=24, stop=t.chat_format.stop))
    assert via_chat == via_complete
    t.close()


def test_concurrent_callers_are_serialised(random_ggufs):
    t = LlamaCppTeacher(random_ggufs["q8_0"], n_ctx=256)
    expected = t.complete(PROMPTS, GREEDY)
    results: list = [None] * 4

    def work(k):
        results[k] = t.complete(PROMPTS, GREEDY)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert all(r == expected for r in results)
    t.close()


def test_bad_arguments(random_ggufs):
    t = LlamaCppTeacher(random_ggufs["q8_0"], n_ctx=256)
    assert t.complete([], GREEDY) == []
    with pytest.raises(TeacherError, match="n=0"):
        t.complete(["x"], GREEDY, n=0)
    with pytest.raises(TeacherError, match="max_tokens=0"):
        t.complete(["x"], SamplingParams(max_tokens=0))
    with pytest.raises(TeacherError, match="do not apply"):
        load_teacher(str(random_ggufs["q8_0"]), concurrency_typo=3)
    t.close()


def test_llama_cpp_warnings_go_to_logging_not_the_terminal(tiny_models, capfd, caplog):
    """A unified context of several sequences makes llama.cpp warn "n_ctx_seq > n_ctx_train"
    (harmless here); it must not reach a contributor's terminal, only -vv logging."""
    import logging

    long_prompts = [PROMPTS[0] * 6] * 8
    with caplog.at_level(logging.DEBUG, logger="lab_ci.llama_cpp"):
        # the tiny teacher was trained with n_ctx 2048; 8 x (prompt + 300) cells exceed it
        with LlamaCppTeacher(tiny_models["teacher"], n_ctx=2048, max_parallel=8) as t:
            t.complete(long_prompts, SamplingParams(temperature=0.0, max_tokens=300))
    out, err = capfd.readouterr()
    assert "n_ctx_seq" not in err and "n_ctx_seq" not in out
    logged = [r.getMessage() for r in caplog.records if r.name == "lab_ci.llama_cpp"]
    assert any("possible training context overflow" in m for m in logged), logged[-5:]


def test_prompts_come_back_from_the_host_memory_store(random_ggufs):
    """With a prompt store, a prompt that left the cache long ago (a new push of the
    same pull request, several jobs later) is restored from host memory instead of being
    evaluated again; greedy output is what a fresh teacher gives (f32: exactly)."""
    path = random_ggufs["f32"]
    leaf = [PROMPTS[0] + "Sure." * 20, PROMPTS[1] + "Sure." * 20]
    others = [[f"<|user|>\nSomething else entirely, number {k}.\n<|assistant|>\n"] for k in range(4)]
    with LlamaCppTeacher(path, n_ctx=1024, max_parallel=4) as fresh:
        want = fresh.complete(leaf, GREEDY)
    with LlamaCppTeacher(path, n_ctx=1024, max_parallel=4, prompt_store_mb=64) as t:
        t.complete(leaf, GREEDY)
        for prompts in others:
            t.complete(prompts, GREEDY)
        leaf_tokens = {tuple(t.tokenize(p)) for p in leaf}
        assert not leaf_tokens & {toks for _, toks in t._state.kept}  # the leaf's prompts left the cache
        assert leaf_tokens <= set(t._store)
        again = t.complete(leaf, GREEDY)
        stats = dict(t.last_stats)
        t.forget_prompts()
        assert not t._store
    assert again == want
    assert stats["reused_tokens"] >= sum(len(t.tokenize(p)) - 1 for p in leaf) - 2
    assert stats["evaluated_tokens"] <= 4
    with pytest.raises(TeacherError, match="prompt_store_mb=-1"):
        LlamaCppTeacher(path, n_ctx=256, prompt_store_mb=-1)
