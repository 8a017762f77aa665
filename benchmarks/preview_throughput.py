#!/usr/bin/env python3
"""Preview speed of three ways to run a GGUF teacher, in one process and one run.

For each model (random-weight llama GGUFs of realistic shapes written by
``scripts/make_bench_gguf.py`` into ``.cache/bench/``), on the same prompts, sampling
settings and thread count, the LLM calls of real previews are made by:

* ``naive``  -- llama-cpp-python's high-level API, one request at a time
  (``Llama.create_completion``; it reuses the KV cells of the previous request's prompt
  prefix);
* ``ours``   -- lab-ci's engine, ``LlamaCppTeacher`` (all samples of a block in one
  batch: the prompt tree evaluated with every shared prefix once, all sequences decoded
  together, prompt prefixes kept across the calls of a leaf);
* ``server`` -- llama.cpp's own ``llama-server`` (built by
  ``scripts/build_llama_server.sh`` from the same llama.cpp source and flags), started
  with ``--parallel`` equal to the batch size, continuous batching and its prompt cache
  (``--cache-prompt``, the host-memory cache ``--cache-ram``: both its defaults), driven by
  lab-ci's OpenAI backend (``OpenAITeacher``) with as many requests in flight as the
  pipeline's block has samples. Chat prompts are rendered by the same template code as
  ours and sent to ``/v1/completions``, so all three evaluate the same tokens.

The prompts are those of the real pipelines: the preview's blocks (``LLMBlock``) and
prompt files, on the example skill leaves and on skill leaves real contributors wrote
(the taxonomy history's pull requests). A random-weight model writes no parseable text,
so the later blocks' question/answer/context fields are filled with other example
leaves' seed examples; every call generates its block's max_tokens (capped by
``--max-tokens``).

Scenarios: ``preview-N`` -- a preview of the example leaf
``compositional_skills/linguistics/antonyms`` with N samples (``--samples``, default
1,3,8,20; 3 is the bot's default, 20 is build-sized); ``pr-19`` -- a pull request of 19
skill leaves (the 4 example skill leaves and 15 from the corpus, freeform and grounded)
with ``--pr-samples`` (3) samples each, one leaf after the other as ``run_preview`` does;
``again-3`` -- the 3-sample preview of the antonyms leaf run a second time right after
the first (a new push of the same pull request): only this one keeps the prompts of the
first run (llama-server's prompt cache; ours forgets at every leaf, as ``generate_leaf``
does; naive keeps its last request's).
The batch size (ours' ``max_parallel``, the server's ``--parallel``, the client's
concurrency) is the samples per leaf. Each timed run starts cold: the server is started
afresh (its start is not timed), ours forgets kept prompts at every leaf as
``generate_leaf`` does, the naive context is cleared.

Printed per scenario and path: generated tokens per wall second (prompt evaluation
included), time to the first complete sample (from a leaf's start until the first
completion of its last LLM block arrives: the first sample that went through every
block), wall seconds per preview, CPU seconds (this process, plus the server process for
``server``), and the ratios ours/naive and ours/server (tokens per wall second, and per
CPU second, which holds up better on a shared machine). The load average is printed
with every line: compare ratios within one run.

    python benchmarks/preview_throughput.py                     # the full table
    python benchmarks/preview_throughput.py --quick             # q4_0 only, preview-3/8 and pr-5, max_tokens 32
    python benchmarks/preview_throughput.py --device cuda       # offload to a GPU (falls back to the CPU, saying so)
    python benchmarks/preview_throughput.py --service           # preview latency, 1 and 5 concurrent, through the service

``--service`` measures instead the latency of 1 and of ``--service-previews`` (5)
concurrent previews (one leaf each, ``--pr-samples`` samples) three ways: a teacher per
job in one process (what the bot does without the service: the model is shared, its
lock serialises the jobs' calls), the teacher service (``lab_ci.teacher.service``: one
engine, every job's requests batched together, reached over loopback HTTP by lab-ci's
OpenAI backend as a preview child process would), and llama-server with a slot for
every sequence of all previews.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lab_ci.teacher.base import Completion, SamplingParams  # noqa: E402
from lab_ci.teacher.templates import ChatFormat, format_chat, merge_stops  # noqa: E402

LEAF = "compositional_skills/linguistics/antonyms/qna.yaml"
GROUNDED_LEAF = "compositional_skills/extraction/commit_messages/summary/qna.yaml"
TAXONOMY = REPO / "taxonomy"
SHARED = Path(os.environ.get("LAB_CI_SHARED", REPO.parent / "shared"))
CORPUS = SHARED / "corpus" / "taxonomy-history.bundle"
PATHS = ("naive", "ours", "server", "service")
#: the host-memory prompt store of the engine behind the teacher service (as the bot loads it)
SERVICE_STORE_MB = 1024


# --------------------------------------------------------------------------- machine


def read_bandwidth(n_threads: int, mb: int = 512, repeats: int = 3) -> float:
    """Bytes/s read by n_threads summing disjoint slices of one large array."""
    a = np.ones(mb * (1 << 20) // 4, dtype=np.float32)
    parts = np.array_split(a, n_threads)
    best = 0.0
    for _ in range(repeats):
        threads = [threading.Thread(target=np.add.reduce, args=(p,)) for p in parts]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        best = max(best, a.nbytes / (time.perf_counter() - t0))
    return best


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a process (Linux /proc), 0 where unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


# --------------------------------------------------------------------------- leaves and prompts


def _leaf_file(path: str, data: bytes):
    from lab_ci.taxonomy.leaf import LeafFile

    return LeafFile(path=path, data=data)


def example_leaf(path: str):
    from lab_ci.taxonomy.seeds import parse_leaf

    return parse_leaf(_leaf_file(path, (TAXONOMY / path).read_bytes()))


def example_skill_leaves() -> list:
    return [
        example_leaf(p.relative_to(TAXONOMY).as_posix())
        for p in sorted(TAXONOMY.glob("compositional_skills/**/qna.yaml"))
    ]


def corpus_skill_leaves(bundle: Path, count: int) -> list:
    """``count`` skill leaves real contributors wrote: from the taxonomy history's pull
    requests in number order, each PR's changed ``qna.yaml`` files that parse as a skill
    leaf with at least 3 seed examples (the check's minimum for skills), each path once
    (one pull request cannot change a file twice)."""
    from lab_ci.sdg.errors import SeedError
    from lab_ci.taxonomy.seeds import parse_leaf

    if count <= 0:
        return []
    if not bundle.exists():
        raise SystemExit(f"corpus {bundle} not found (set LAB_CI_SHARED, or use --pr-leaves 4 for example leaves only)")
    git = ["git", "-c", "safe.directory=*"]
    out = []
    with tempfile.TemporaryDirectory(prefix="bench-corpus-") as tmp:
        subprocess.run([*git, "clone", "--quiet", "--mirror", str(bundle), tmp], check=True)
        refs = subprocess.run(
            [*git, "-C", tmp, "for-each-ref", "--format=%(refname:short)", "refs/heads/pr/"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        for ref in sorted(refs, key=lambda r: int(r.rsplit("/", 1)[1])):
            names = subprocess.run(
                [*git, "-C", tmp, "diff", "--name-only", "--diff-filter=AM", f"{ref}^", ref],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.split()
            for name in names:
                if not (name.endswith("/qna.yaml") and name.startswith("compositional_skills/")):
                    continue
                if any(seeds.path == name for seeds in out):
                    continue
                data = subprocess.run(
                    [*git, "-C", tmp, "show", f"{ref}:{name}"], check=True, capture_output=True
                ).stdout
                try:
                    seeds = parse_leaf(_leaf_file(name, data))
                except (SeedError, ValueError, TypeError, AttributeError):
                    continue
                if seeds.kind == "skill" and len(seeds.examples) >= 3:
                    out.append(seeds)
                    break  # one leaf per pull request
            if len(out) >= count:
                return out
    raise SystemExit(f"the corpus has only {len(out)} usable skill leaves (wanted {count})")


def stand_ins() -> list[tuple[str, str, str]]:
    """(question, answer, context) stand-ins for generated text: the example skill
    leaves' seed examples (contexts from the grounded leaf's)."""
    qa = [(e.question, e.answer) for leaf in example_skill_leaves() for e in leaf.examples]
    contexts = [e.context for e in example_leaf(GROUNDED_LEAF).examples if e.context]
    return [(q, a, contexts[i % len(contexts)]) for i, (q, a) in enumerate(qa)]


def leaf_calls(teacher, seeds, samples: int, cap: int, fill) -> list[tuple[str, object, list[dict]]]:
    """(block name, LLMBlock, rows) for the LLM calls of one leaf's preview, through the
    leaf's own pipeline (freeform or grounded skills) and its real prompt files."""
    from lab_ci.sdg.blocks import BLOCK_TYPES, RunContext
    from lab_ci.sdg.pipeline import load_pipeline

    pipe = load_pipeline(seeds.default_pipeline)
    ctx = RunContext(
        teacher=teacher,
        seeds=seeds,
        samples=samples,
        seed=1,
        params=SamplingParams(temperature=0.7, top_p=0.95, seed=1),
        max_tokens_cap=cap,
    )
    ctx.prompts = pipe.prompts
    rows: list[dict] = []
    calls = []
    for b in pipe.blocks:
        if b.type == "sample_seeds":
            rows = BLOCK_TYPES[b.type](b.name, b.config, ctx).generate([])
            rows = [
                {
                    **r,
                    "question": fill[i % len(fill)][0],
                    "answer": fill[i % len(fill)][1],
                    "context": fill[i % len(fill)][2],
                }
                for i, r in enumerate(rows)
            ]
        elif b.type == "llm":
            calls.append((b.name, BLOCK_TYPES[b.type](b.name, b.config, ctx), rows))
    return calls


@dataclass
class Scenario:
    name: str
    leaves: list  # LeafSeeds, previewed one after the other
    samples: int  # per leaf; also the batch size
    again: bool = False  # timed: the second preview of the same leaves in a row (a new push, leaves unchanged)


# --------------------------------------------------------------------------- the three paths


class Recorder:
    """Wraps a teacher's chat(): generated tokens, and when each completion arrived."""

    def __init__(self, inner, arrivals):
        self.inner, self.info, self.arrivals = inner, inner.info, arrivals
        self.tokens = self.prompt_tokens = 0

    def chat(self, conversations, params, n=1):
        before = len(self.arrivals)
        out = self.inner.chat(conversations, params, n)
        if len(self.arrivals) == before:  # the path reports the whole call at once
            self.arrivals.append(time.perf_counter())
        self.tokens += sum(c.completion_tokens for comps in out for c in comps)
        self.prompt_tokens += sum(c.prompt_tokens for comps in out for c in comps)
        return out

    def __getattr__(self, name):  # forget_prompts, last_stats, ...
        return getattr(self.inner, name)


class NaiveTeacher:
    """One request at a time through llama-cpp-python's high-level API, with the same chat
    template, stops and per-sample seeds as ours."""

    name = "naive"

    def __init__(self, path: Path, chat_format: ChatFormat, info, n_threads: int, n_gpu_layers: int, fa: bool):
        from llama_cpp import Llama

        self.llm = Llama(
            str(path),
            n_ctx=4096,
            n_batch=512,
            n_threads=n_threads,
            n_threads_batch=n_threads,
            n_gpu_layers=n_gpu_layers,
            flash_attn=fa,
            verbose=False,
        )
        self.fmt, self.info, self.arrivals = chat_format, info, None

    def prepare(self, batch: int) -> None:
        self.llm.reset()
        self.llm._ctx.kv_cache_clear()

    def cpu(self) -> float:
        return time.process_time()

    def chat(self, conversations, params, n=1):
        stops = list(merge_stops(params.stop, self.fmt))
        out = []
        for i, conv in enumerate(conversations):
            prompt = format_chat(conv, self.fmt)
            comps = []
            for j in range(n):
                r = self.llm.create_completion(
                    prompt,
                    max_tokens=params.max_tokens,
                    temperature=params.temperature,
                    top_p=params.top_p,
                    stop=stops,
                    seed=(params.seed or 0) + i * n + j,
                )
                u, c = r["usage"], r["choices"][0]
                comps.append(
                    Completion(c["text"], c["finish_reason"] or "stop", u["prompt_tokens"], u["completion_tokens"])
                )
                if self.arrivals is not None:
                    self.arrivals.append(time.perf_counter())
            out.append(comps)
        return out

    def close(self) -> None:
        self.llm.close()


def engine(path: Path, batch: int, n_threads: int, n_gpu_layers: int, fa: bool, **kw):
    """lab-ci's engine on a bench model, ``batch`` sequences at once."""
    from lab_ci.teacher.llamacpp import LlamaCppTeacher

    return LlamaCppTeacher(
        path, n_ctx=2048, n_threads=n_threads, max_parallel=batch, n_gpu_layers=n_gpu_layers, flash_attn=fa, **kw
    )


class OursTeacher:
    """lab-ci's engine with max_parallel = the batch size (one teacher per batch size;
    the model is loaded once per process)."""

    name = "ours"

    def __init__(self, path: Path, n_threads: int, n_gpu_layers: int, fa: bool, prefix_cache: bool):
        self.path, self.n_threads, self.n_gpu_layers, self.fa = path, n_threads, n_gpu_layers, fa
        self.prefix_cache = prefix_cache
        self.teachers: dict = {}
        self.current = self._teacher(8)
        self.arrivals = None

    def _teacher(self, batch: int):
        if batch not in self.teachers:
            self.teachers[batch] = engine(
                self.path, batch, self.n_threads, self.n_gpu_layers, self.fa, prefix_cache=self.prefix_cache
            )
        return self.teachers[batch]

    @property
    def info(self):
        return self.current.info

    @property
    def chat_format(self):
        return self.current.chat_format

    def tokenize(self, text):
        return self.current.tokenize(text)

    def prepare(self, batch: int) -> None:
        self.current = self._teacher(batch)
        self.current.forget_prompts()

    def forget_prompts(self) -> None:
        self.current.forget_prompts()

    def cpu(self) -> float:
        return time.process_time()

    def chat(self, conversations, params, n=1):
        return self.current.chat(conversations, params, n)

    def close(self) -> None:
        for t in self.teachers.values():
            t.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    """One llama-server process on loopback: started, health-checked, stopped."""

    def __init__(self, binary: Path, model: Path, args: list[str], log: Path):
        self.binary, self.model, self.args, self.log = binary, model, args, log
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def start(self, timeout: float = 300) -> None:
        import httpx

        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        cmd = [str(self.binary), "-m", str(self.model), "--host", "127.0.0.1", "--port", str(port), *self.args]
        with open(self.log, "ab") as fh:
            fh.write(("\n$ " + " ".join(cmd) + "\n").encode())
            self.proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"llama-server exited with {self.proc.returncode}; see {self.log}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"llama-server did not become healthy within {timeout:.0f}s; see {self.log}")
            time.sleep(0.2)

    def cpu(self) -> float:
        return proc_cpu_seconds(self.proc.pid) if self.proc else 0.0

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            # llama-server may not exit on SIGTERM while clients hold requests open
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


class ServerTeacher:
    """llama-server with --parallel = the batch size (restarted, untimed, for every timed
    run), driven by lab-ci's OpenAI backend: chat prompts rendered with the model's chat
    format here, sent to /v1/completions with as many requests in flight as the block has
    samples."""

    name = "server"

    def __init__(self, binary, model, chat_format, n_threads, n_ctx_slot, gpu, fa, extra, log):
        self.binary, self.model, self.fmt = binary, model, chat_format
        self.n_threads, self.n_ctx_slot, self.gpu, self.fa, self.extra, self.log = (
            n_threads,
            n_ctx_slot,
            gpu,
            fa,
            extra,
            log,
        )
        self.server: LlamaServer | None = None
        self.client = None
        self.info = None
        self.arrivals = None
        self.client_cpu = 0.0

    def prepare(self, batch: int) -> None:
        from lab_ci.teacher.openai import OpenAITeacher

        self.close()
        args = [
            "--parallel",
            str(batch),
            "-c",
            str(batch * self.n_ctx_slot),
            "-t",
            str(self.n_threads),
            "-tb",
            str(self.n_threads),
            "-fa",
            "on" if self.fa else "off",
            "--no-webui",
            *(["-ngl", "999"] if self.gpu else []),
            *self.extra,
        ]
        self.server = LlamaServer(self.binary, self.model, args, self.log)
        self.server.start()
        owner = self

        class Timed(OpenAITeacher):
            def _attempt(self, method, path, body):
                out = super()._attempt(method, path, body)
                if owner.arrivals is not None and path == "completions":
                    owner.arrivals.append(time.perf_counter())
                return out

        self.client = Timed(self.server.url + "/v1", concurrency=batch, timeout=3600, max_retries=0)
        self.info = self.client.info

    def cpu(self) -> float:
        return time.process_time() + (self.server.cpu() if self.server else 0.0)

    def chat(self, conversations, params, n=1):
        from dataclasses import replace

        prompts = [format_chat(conv, self.fmt) for conv in conversations]
        return self.client.complete(prompts, replace(params, stop=merge_stops(params.stop, self.fmt)), n)

    def close(self) -> None:
        # the server first: closing the client waits for requests still in flight
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self.client is not None:
            self.client.close()
            self.client = None


class ServiceTeacher:
    """Our engine behind the teacher service (``lab_ci.teacher.service``), as the bot's
    preview children reach it: lab-ci's OpenAI backend over loopback HTTP, a job token,
    every request of a block in flight at once. The engine is made afresh (untimed) for
    every timed run; between the leaves of a run, and the runs of an ``again`` scenario,
    it keeps its prompts (a job cannot make a shared teacher forget), in the cache and in
    a prompt store of ``SERVICE_STORE_MB``."""

    name = "service"

    def __init__(self, path: Path, n_threads: int, n_gpu_layers: int, fa: bool):
        self.path, self.n_threads, self.n_gpu_layers, self.fa = path, n_threads, n_gpu_layers, fa
        self.engine = self.service = self.client = None
        self.info = None
        self.arrivals = None

    def prepare(self, batch: int) -> None:
        from lab_ci.teacher.openai import OpenAITeacher
        from lab_ci.teacher.service import TeacherService

        self.close()
        self.engine = engine(
            self.path, batch, self.n_threads, self.n_gpu_layers, self.fa, prompt_store_mb=SERVICE_STORE_MB
        )
        self.service = TeacherService(self.engine).start()
        ticket = self.service.open_job("bench", 10**12)
        owner = self

        class Timed(OpenAITeacher):
            def _attempt(self, method, path, body):
                out = super()._attempt(method, path, body)
                if owner.arrivals is not None and path.endswith("completions"):
                    owner.arrivals.append(time.perf_counter())
                return out

        self.client = Timed(ticket.url, api_key=ticket.token, model=ticket.model, concurrency=64, timeout=86400)
        self.info = self.client.info

    def cpu(self) -> float:
        return time.process_time()

    def chat(self, conversations, params, n=1):
        return self.client.chat(conversations, params, n)

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        if self.service is not None:
            self.service.close()
        if self.engine is not None:
            self.engine.close()
        self.engine = self.service = self.client = None


# --------------------------------------------------------------------------- measuring


@dataclass
class Run:
    path: str
    tokens: int = 0
    prompt_tokens: int = 0
    wall: float = 0.0
    cpu: float = 0.0
    first_sample: float = 0.0  # seconds from the first leaf's start to its first complete sample
    per_leaf: list[float] = field(default_factory=list)

    @property
    def tok_s(self) -> float:
        return self.tokens / self.wall if self.wall else 0.0

    @property
    def tok_cpu_s(self) -> float:
        return self.tokens / self.cpu if self.cpu else 0.0


def run_scenario(path_obj, scen: Scenario, cap: int, fill) -> Run:
    """One timed preview of every leaf of the scenario, one leaf after the other (for an
    ``again`` scenario: after an untimed one of the same leaves)."""
    path_obj.prepare(scen.samples)
    if scen.again:
        run_leaves(path_obj, Recorder(path_obj, []), scen, cap, fill, Run(path_obj.name), [])
    arrivals: list[float] = []
    path_obj.arrivals = arrivals
    rec = Recorder(path_obj, arrivals)
    run = Run(path_obj.name)
    c0, t0 = path_obj.cpu(), time.perf_counter()
    run_leaves(path_obj, rec, scen, cap, fill, run, arrivals)
    run.wall = time.perf_counter() - t0
    run.cpu = path_obj.cpu() - c0
    path_obj.arrivals = None
    run.tokens, run.prompt_tokens = rec.tokens, rec.prompt_tokens
    return run


def run_leaves(path_obj, rec: Recorder, scen: Scenario, cap: int, fill, run: Run, arrivals: list[float]) -> None:
    for i, seeds in enumerate(scen.leaves):
        forget = getattr(path_obj, "forget_prompts", None)
        if forget:
            forget()  # as generate_leaf does
        lt0 = time.perf_counter()
        calls = leaf_calls(rec, seeds, scen.samples, cap, fill)
        for k, (_name, block, rows) in enumerate(calls):
            mark = len(arrivals)
            block.generate(rows)
            if i == 0 and k == len(calls) - 1 and len(arrivals) > mark:
                run.first_sample = arrivals[mark] - lt0
        run.per_leaf.append(time.perf_counter() - lt0)


def warm_up(path_obj, fill) -> None:
    """Page the weights in, make the contexts: one short call on a prompt no scenario uses."""
    from lab_ci.teacher.base import Message

    path_obj.prepare(1)
    path_obj.chat([[Message("user", "Warm up: say something about " + fill[0][0])]], SamplingParams(max_tokens=4))


def ensure_gguf(shape: str, quant: str, cache: Path, corpus: Path | None) -> Path:
    """The bench model of a shape and quantization: with ``corpus``, a 32000-token
    byte-level BPE trained on it (real prompt lengths); without, the letter vocabulary."""
    path = cache / f"{shape}-{quant}{'-bpe' if corpus else ''}.gguf"
    if not path.exists():
        print(f"# writing {path} ...", flush=True)
        extra = ["--bpe-corpus", str(corpus)] if corpus else []
        cmd = [sys.executable, str(REPO / "scripts" / "make_bench_gguf.py"), "--shape", shape, "--quant", quant]
        subprocess.run([*cmd, "--out", str(path), *extra], check=True)
    return path


def server_binary(given: str | None) -> Path | None:
    if given:
        p = Path(given)
        if not p.is_file():
            raise SystemExit(f"--server {given}: no such file (build it with: bash scripts/build_llama_server.sh)")
        return p
    r = subprocess.run(
        ["bash", str(REPO / "scripts" / "build_llama_server.sh"), "--print"], capture_output=True, text=True
    )
    return Path(r.stdout.strip()) if r.returncode == 0 and r.stdout.strip() else None


def slot_cells(ours, scenarios: list[Scenario], cap: int, fill) -> int:
    """KV cells one server slot needs: the longest prompt of any call plus the longest
    max_tokens, rounded up to 256."""
    longest, gen = 0, 0

    class Probe:
        info = None

        def chat(self, conversations, params, n=1):
            nonlocal longest, gen
            gen = max(gen, params.max_tokens)
            for conv in conversations:
                longest = max(longest, len(ours.tokenize(format_chat(conv, ours.chat_format))))
            return [[Completion("", "stop", 0, 0) for _ in range(n)] for _ in conversations]

    for scen in scenarios:
        for seeds in scen.leaves:
            for _name, block, rows in leaf_calls(Probe(), seeds, scen.samples, cap, fill):
                block.generate(rows)
    return -(-(longest + gen + 16) // 256) * 256


# --------------------------------------------------------------------------- the teacher service


def concurrent_previews(open_teacher, leaves: list, samples: int, cap: int, fill) -> tuple[list[float], int]:
    """Preview every leaf at once, each in its own thread with its own teacher
    (``open_teacher(i)``, as a bot job opens one): each preview's latency (teacher opened,
    every LLM call made) and the tokens generated in all."""
    latencies = [0.0] * len(leaves)
    tokens = [0] * len(leaves)
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            t0 = time.perf_counter()
            teacher, close = open_teacher(i)
            rec = Recorder(teacher, [])
            try:
                for _name, block, rows in leaf_calls(rec, leaves[i], samples, cap, fill):
                    block.generate(rows)
            finally:
                close()
            latencies[i] = time.perf_counter() - t0
            tokens[i] = rec.tokens
        except BaseException as e:  # noqa: BLE001 - reported by the caller
            errors.append(e)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(leaves))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return latencies, sum(tokens)


def service_bench(args, gguf: Path, binary: Path | None, gpu: bool, fill) -> list[dict]:
    """Preview latency of 1 and of ``--service-previews`` concurrent pull requests (one
    leaf each, ``--pr-samples`` samples): a teacher per job in the bot's process (today:
    the model is shared, its lock serialises the jobs' calls), the teacher service
    (``lab_ci.teacher.service``: one engine, requests of all jobs batched together,
    reached over loopback HTTP by lab-ci's OpenAI backend as a preview child would), and
    llama-server with a slot per sequence."""
    from lab_ci.teacher.openai import OpenAITeacher
    from lab_ci.teacher.service import TeacherService

    k = args.service_previews
    leaves = example_skill_leaves()[:k]
    leaves += corpus_skill_leaves(args.corpus, k - len(leaves))
    samples, cap, fa = args.pr_samples, args.max_tokens, args.flash_attn == "on"
    n_gpu_layers = -1 if gpu else 0
    width = k * samples
    shared = engine(gguf, width, args.n_threads, n_gpu_layers, fa, prompt_store_mb=SERVICE_STORE_MB)
    fmt = shared.chat_format
    paths = {}

    def per_job(i):
        t = engine(gguf, 8, args.n_threads, n_gpu_layers, fa)
        return t, t.close

    paths["per-job"] = (per_job, time.process_time)
    service = TeacherService(shared, max_queued=4 * width, max_queued_per_job=64).start()

    def via_service(i):
        ticket = service.open_job(f"bench-{i}-{time.monotonic()}", 10**9)
        t = OpenAITeacher(ticket.url, api_key=ticket.token, model=ticket.model, concurrency=64, timeout=86400)

        def close():
            t.close()
            service.close_job(ticket)

        return t, close

    paths["service"] = (via_service, time.process_time)
    server = None
    if binary is not None:
        cells = slot_cells(shared, [Scenario("service", leaves, samples)], cap, fill)
        server = ServerTeacher(binary, gguf, fmt, args.n_threads, cells, gpu, fa, args.server_args.split(), None)
        server.log = Path(tempfile.mkdtemp(prefix="bench-server-")) / "llama-server.log"

        class Client:
            def __init__(self, url):
                self.client = OpenAITeacher(url, concurrency=64, timeout=86400, max_retries=0)
                self.info = self.client.info

            def chat(self, conversations, params, n=1):
                prompts = [format_chat(conv, fmt) for conv in conversations]
                return self.client.complete(prompts, replace(params, stop=merge_stops(params.stop, fmt)), n)

        def via_server(i):
            c = Client(server.server.url + "/v1")
            return c, c.client.close

        paths["server"] = (via_server, lambda: time.process_time() + server.server.cpu())
    rows = []
    try:
        # warm up: page in the weights, make the contexts
        concurrent_previews(lambda i: (shared, lambda: None), leaves[:1], 1, 2, fill)
        for concurrent in (1, k):
            for name, (opener, cpu) in paths.items():
                if name == "server":
                    server.prepare(width)  # restarted: no prompt cached from an earlier run
                c0, t0 = cpu(), time.perf_counter()
                latencies, tokens = concurrent_previews(opener, leaves[:concurrent], samples, cap, fill)
                wall, used = time.perf_counter() - t0, cpu() - c0
                row = {
                    "previews": concurrent,
                    "path": name,
                    "mean": sum(latencies) / len(latencies),
                    "max": max(latencies),
                    "wall": wall,
                    "cpu": used,
                    "tokens": tokens,
                }
                rows.append(row)
                print(
                    f"service-bench {concurrent} preview(s) {name:8s} latency mean {row['mean']:6.1f}s max {row['max']:6.1f}s  "
                    f"wall {wall:6.1f}s cpu {used:6.1f}s  {tokens / wall:5.1f} tok/s  load {load()}",
                    flush=True,
                )
    finally:
        service.close()
        shared.close()
        if server is not None:
            server.close()
    return rows


def print_service_table(model: str, rows: list[dict]) -> None:
    print()
    print(
        "| model | concurrent previews | path | latency mean s | latency max s | wall s | CPU s | tok/s | mean latency vs service |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        svc = next(x for x in rows if x["previews"] == r["previews"] and x["path"] == "service")
        print(
            f"| {model} | {r['previews']} | {r['path']} | {r['mean']:.1f} | {r['max']:.1f} | {r['wall']:.1f} | "
            f"{r['cpu']:.1f} | {r['tokens'] / r['wall']:.1f} | {r['mean'] / svc['mean']:.2f}x |"
        )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="preview speed: naive high-level API vs lab-ci's engine vs llama-server")
    ap.add_argument("--shapes", default="0.5b", help="bench model shapes (make_bench_gguf.py): 0.5b,1.5b,0.5b-gqa,...")
    ap.add_argument("--quants", default="q4_0,q8_0")
    ap.add_argument("--samples", default="1,3,8,20", help="samples per leaf of the one-leaf previews")
    ap.add_argument("--pr-leaves", type=int, default=19, help="leaves of the pull-request scenario (0: none)")
    ap.add_argument("--pr-samples", type=int, default=3, help="samples per leaf in the pull-request scenario")
    ap.add_argument("--paths", default=",".join(PATHS), help="naive,ours,server,service")
    ap.add_argument(
        "--again",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time a second preview of the same leaf in a row (--pr-samples samples): prompt caches across jobs",
    )
    ap.add_argument("--max-tokens", type=int, default=64, help="cap on every block's max_tokens")
    ap.add_argument("--n-threads", type=int, default=os.cpu_count())
    ap.add_argument("--flash-attn", choices=["on", "off"], default="on", help="the same for every path")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="cuda: offload every layer to the GPU")
    ap.add_argument("--server", default=None, help="llama-server binary (default: scripts/build_llama_server.sh's)")
    ap.add_argument("--server-args", default="", help="extra llama-server arguments, e.g. '--kv-unified'")
    ap.add_argument("--no-prefix-cache", action="store_true", help="ours without prompt prefixes kept across calls")
    ap.add_argument("--cache", type=Path, default=REPO / ".cache" / "bench")
    ap.add_argument("--corpus", type=Path, default=CORPUS, help="the taxonomy history bundle (tokenizer, PR leaves)")
    ap.add_argument("--quick", action="store_true", help="q4_0 only, preview-3 and -8, a 5-leaf PR, max_tokens 32")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows as JSON to this file")
    ap.add_argument(
        "--service",
        action="store_true",
        help="instead: preview latency of 1 and of --service-previews concurrent previews through the teacher service",
    )
    ap.add_argument("--service-previews", type=int, default=5, help="concurrent previews of --service (default 5)")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a killed run still stops its llama-server
    if args.quick:
        args.quants, args.samples, args.pr_leaves, args.max_tokens = "q4_0", "3,8", 5, 32
    paths = [p for p in args.paths.split(",") if p]
    unknown = set(paths) - set(PATHS)
    if unknown or not paths:
        ap.error(f"--paths: expected some of {','.join(PATHS)}, got {args.paths!r}")
    if not args.corpus.exists():
        ap.error(f"--corpus {args.corpus}: not found (set LAB_CI_SHARED to the folder holding corpus/)")

    import llama_cpp

    offload = bool(llama_cpp.llama_supports_gpu_offload())
    gpu = args.device == "cuda" and offload
    if args.device == "cuda" and not offload:
        print(
            "# --device cuda: this llama.cpp build cannot offload to a GPU (no CUDA build, or no GPU); "
            "falling back to the CPU for every path"
        )
    n_gpu_layers = -1 if gpu else 0
    fa = args.flash_attn == "on"
    binary = server_binary(args.server) if "server" in paths else None
    if "server" in paths and binary is None:
        print("# llama-server is not built: run `bash scripts/build_llama_server.sh` (~10 min); skipping that path")
        paths.remove("server")

    fill = stand_ins()
    samples = [int(s) for s in args.samples.split(",") if s]
    scenarios = [Scenario(f"preview-{n}", [example_leaf(LEAF)], n) for n in samples]
    if args.pr_leaves:
        examples = example_skill_leaves()[: args.pr_leaves]
        leaves = examples + corpus_skill_leaves(args.corpus, args.pr_leaves - len(examples))
        scenarios.append(Scenario(f"pr-{args.pr_leaves}", leaves, args.pr_samples))
    if args.again:
        scenarios.append(Scenario(f"again-{args.pr_samples}", [example_leaf(LEAF)], args.pr_samples, again=True))

    bw = read_bandwidth(args.n_threads)
    print(
        f"# machine: {os.cpu_count()} cores, n_threads={args.n_threads}, device={'cuda' if gpu else 'cpu'}, "
        f"read bandwidth {bw / 1e9:.1f} GB/s, load average {load()}"
    )
    print(
        f"# max_tokens cap={args.max_tokens}, temperature as each block sets, top_p=0.95, top_k=40, min_p=0.05, "
        f"flash_attn={args.flash_attn}; paths: {', '.join(paths)}"
        + (f"; llama-server {binary} {args.server_args}".rstrip() if binary else "")
    )
    if args.service:
        for shape in args.shapes.split(","):
            for quant in args.quants.split(","):
                gguf = ensure_gguf(shape, quant, args.cache, args.corpus)
                print(f"# {shape}/{quant}: {gguf.stat().st_size / 1e6:.0f} MB; {args.pr_samples} samples per preview")
                rows = service_bench(args, gguf, binary if "server" in paths else None, gpu, fill)
                print_service_table(f"{shape}/{quant}", rows)
        return 0
    log = Path(tempfile.mkdtemp(prefix="bench-server-")) / "llama-server.log"

    rows = []
    for shape in args.shapes.split(","):
        for quant in args.quants.split(","):
            gguf = ensure_gguf(shape, quant, args.cache, args.corpus)
            model = f"{shape}/{quant}"
            ours = OursTeacher(gguf, args.n_threads, n_gpu_layers, fa, not args.no_prefix_cache)
            objs = {}
            if "naive" in paths:
                objs["naive"] = NaiveTeacher(gguf, ours.chat_format, ours.info, args.n_threads, n_gpu_layers, fa)
            if "ours" in paths:
                objs["ours"] = ours
            if "server" in paths:
                cells = slot_cells(ours, scenarios, args.max_tokens, fill)
                objs["server"] = ServerTeacher(
                    binary, gguf, ours.chat_format, args.n_threads, cells, gpu, fa, args.server_args.split(), log
                )
            if "service" in paths:
                objs["service"] = ServiceTeacher(gguf, args.n_threads, n_gpu_layers, fa)
            print(f"# {model}: {gguf.stat().st_size / 1e6:.0f} MB", flush=True)
            try:
                for obj in objs.values():
                    warm_up(obj, fill)
                for scen in scenarios:
                    runs = {}
                    for name, obj in objs.items():
                        runs[name] = r = run_scenario(obj, scen, args.max_tokens, fill)
                        print(
                            f"{model:9s} {scen.name:10s} {name:6s} {r.tok_s:6.1f} tok/s  first sample {r.first_sample:6.1f}s  "
                            f"wall {r.wall:6.1f}s  cpu {r.cpu:6.1f}s  ({r.tokens} tok generated, {r.prompt_tokens} prompt tok)  "
                            f"load {load()}",
                            flush=True,
                        )
                    rows.append({"model": model, "scenario": scen.name, "leaves": len(scen.leaves), "runs": runs})
            finally:
                for obj in objs.values():
                    obj.close()

    print()
    print("| model | scenario | path | tok/s | first sample s | wall s / preview | CPU s | vs naive | vs server |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        runs = row["runs"]
        for name, r in runs.items():
            ratios = []
            for base in ("naive", "server"):
                b = runs.get(base)
                if name in ("ours", "service") and b is not None and b.tok_s and b.tok_cpu_s and r.tok_cpu_s:
                    ratios.append(f"{r.tok_s / b.tok_s:.2f}x ({r.tok_cpu_s / b.tok_cpu_s:.2f}x CPU)")
                else:
                    ratios.append("")
            print(
                f"| {row['model']} | {row['scenario']} | {name} | {r.tok_s:.1f} | {r.first_sample:.1f} | {r.wall:.1f} | "
                f"{r.cpu:.1f} | {ratios[0]} | {ratios[1]} |"
            )
    print(
        "\n# tok/s: generated tokens / wall seconds of the scenario's LLM calls (prompt evaluation included); "
        "vs: the row's tok/s over the other path's (in brackets: per CPU second, this process + the server's)."
    )
    if args.json:
        args.json.write_text(
            json.dumps([{**row, "runs": {k: vars(v) for k, v in row["runs"].items()}} for row in rows], indent=1)
        )
    shutil.rmtree(log.parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
