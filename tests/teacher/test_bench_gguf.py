"""scripts/make_bench_gguf.py --bpe-corpus: random-weight bench models with a byte-level
BPE trained on real text (a real git repository / bundle of qna.yaml files), loaded
and run by the real llama.cpp runtime."""

from __future__ import annotations

import subprocess
import sys

from lab_ci.teacher.base import Message, SamplingParams
from lab_ci.teacher.llamacpp import LlamaCppTeacher
from lab_ci.teacher.templates import format_chat
from labtest import REPO_ROOT, commit_all, run_git, write_file

SCRIPT = REPO_ROOT / "scripts" / "make_bench_gguf.py"
TEXT = (
    "The lighthouse on the island was built of stone. Its keeper wrote the weather in a log "
    "every evening, and the log says when the lamp was lit and when ships passed the rocks.\n"
)


def qna(question: str) -> bytes:
    body = "".join(f"  - question: {question} {i}?\n    answer: {TEXT.strip()} {i}.\n" for i in range(5))
    return f"version: 3\ntask_description: Answer questions about the island.\nseed_examples:\n{body}".encode()


def make(out, corpus, shape="tiny"):
    return subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--shape",
            shape,
            "--quant",
            "q8_0",
            "--out",
            str(out),
            "--bpe-corpus",
            str(corpus),
        ],
        capture_output=True,
        text=True,
    )


def test_bpe_trained_on_a_git_repository_and_bundle(tmp_path):
    repo = tmp_path / "corpus"
    repo.mkdir()
    run_git("init", "-q", "-b", "main", cwd=repo)
    write_file(repo, "knowledge/island/qna.yaml", qna("When was the lamp lit"))
    commit_all(repo, "main")
    run_git("checkout", "-q", "-b", "pr/1", cwd=repo)
    write_file(repo, "skills/weather/qna.yaml", qna("What did the keeper write") + b"  broken: [yaml\n")
    commit_all(repo, "pr 1: a leaf with broken YAML still gives text")
    run_git("checkout", "-q", "main", cwd=repo)

    out = tmp_path / "models" / "tiny-bpe.gguf"
    r = make(out, repo)
    assert r.returncode == 0, r.stderr
    assert "trained bpe-512-" in r.stdout
    [folder] = (tmp_path / "models").glob("bpe-512-*")
    assert (folder / "tokenizer.json").is_file()  # kept beside the model, trained once
    # a bundle of the same history trains the same tokenizer (same texts), not again
    bundle = tmp_path / "corpus.bundle"
    run_git("bundle", "create", "-q", str(bundle), "--all", cwd=repo)
    r2 = make(tmp_path / "models" / "again.gguf", bundle)
    assert r2.returncode == 0, r2.stderr
    assert "trained bpe" not in r2.stdout and list((tmp_path / "models").glob("bpe-512-*")) == [folder]

    with LlamaCppTeacher(out, n_ctx=256, max_parallel=2) as t:
        assert t.model.n_vocab() == 512
        toks = t.tokenize(TEXT)
        assert len(toks) < len(TEXT) / 2.5  # merges learned from the corpus (bytes would be 1 per char)
        assert t.model.detokenize(toks).decode() == TEXT
        prompt = format_chat([Message("user", "When was the lamp lit?")], t.chat_format)
        assert prompt.startswith("<|user|>\n") and prompt.endswith("<|assistant|>\n")
        [[c]] = t.complete([prompt], SamplingParams(temperature=0.0, max_tokens=4))
        assert c.prompt_tokens == len(t.tokenize(prompt)) and 1 <= c.completion_tokens <= 4


def test_bad_corpus_is_a_clear_error(tmp_path):
    not_a_bundle = tmp_path / "notes.bundle"
    not_a_bundle.write_text("just text\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    for corpus, message in [
        (tmp_path / "nowhere.bundle", "nowhere.bundle: no such file or folder"),
        (not_a_bundle, "notes.bundle: not a git bundle or repository"),
        (empty, "empty: no qna.yaml files or text files in it"),
    ]:
        r = make(tmp_path / "m.gguf", corpus)
        assert r.returncode == 2, r.stderr
        assert message in r.stderr and "Traceback" not in r.stderr
        assert not (tmp_path / "m.gguf").exists()
