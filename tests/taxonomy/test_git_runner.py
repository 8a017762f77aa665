"""The one git runner (lab_ci.taxonomy.gitrun): what the environment of a real git
process contains under each profile, time and output bounds that kill the whole process
group, typed errors with a safe category and a redacted detail."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from lab_ci.taxonomy import gitrun
from lab_ci.taxonomy.gitrun import ISOLATED, LOCAL, GitError, GitRunner, GitTimeout, classify_stderr
from labtest import run_git


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    r = tmp_path / "repo"
    r.mkdir()
    run_git("init", "--quiet", "--initial-branch=main", cwd=r)
    (r / "a.txt").write_text("a\n")
    run_git("add", "a.txt", cwd=r)
    run_git("commit", "--quiet", "-m", "a", cwd=r)
    return r


@pytest.fixture
def hostile_env(tmp_path: Path, monkeypatch) -> Path:
    """A caller environment full of things git must not see: a global config with a
    credential helper and a proxy, proxy variables, a .netrc, and GIT_* redirections."""
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text(
        "[user]\n\tname = From Global\n[http]\n\tproxy = http://127.0.0.1:9\n[credential]\n\thelper = store\n"
    )
    (home / ".netrc").write_text("machine github.com login bot password hunter2\n")
    other = tmp_path / "other.git"
    run_git("init", "--quiet", "--bare", str(other))
    for k, v in {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "https_proxy": "http://127.0.0.1:9",
        "ALL_PROXY": "socks5://127.0.0.1:9",
        "NO_PROXY": "*",
        "GIT_SSL_NO_VERIFY": "1",
        "GIT_DIR": str(other),
        "GIT_INDEX_FILE": str(tmp_path / "elsewhere.index"),
        "GIT_CONFIG_PARAMETERS": "'core.hookspath'='/tmp/evil-hooks'",
        "GIT_CONFIG_NOSYSTEM": "",
        "GIT_ASKPASS": "/bin/echo",
        "GIT_TRACE": "0",
    }.items():
        monkeypatch.setenv(k, v)
    return home


def child_env(runner: GitRunner, cwd: Path) -> dict[str, str]:
    """The environment a program started BY git sees (an alias), read back for real."""
    r = runner.with_config(("alias.showenv", "!env -0"))
    out = r.run(["showenv"], cwd=cwd).stdout.decode()
    return dict(item.split("=", 1) for item in out.split("\0") if "=" in item)


def test_isolated_profile_gives_git_no_caller_config_proxy_or_redirection(repo, hostile_env):
    runner = GitRunner(ISOLATED)
    env = child_env(runner, repo)
    for name in (
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "NO_PROXY",
        "GIT_SSL_NO_VERIFY",
        "GIT_DIR",
        "XDG_CONFIG_HOME",
    ):
        assert name not in env, name
    assert env["HOME"] == "/nonexistent"  # no ~/.gitconfig and no ~/.netrc for curl
    assert env["GIT_TERMINAL_PROMPT"] == "0" and env["GIT_CONFIG_GLOBAL"] == "/dev/null"
    scopes = runner.text(["config", "--list", "--show-scope"], cwd=repo)
    assert "global" not in scopes and "system" not in scopes
    assert "From Global" not in scopes and "127.0.0.1:9" not in scopes
    assert "command\tcredential.helper=" in scopes and "command\tcore.hookspath=/dev/null" in scopes
    assert "command\tprotocol.allow=never" in scopes


def test_local_profile_keeps_the_users_config_but_drops_redirections(repo, hostile_env):
    runner = GitRunner(LOCAL)
    env = child_env(runner, repo)
    assert "GIT_DIR" not in env and "GIT_INDEX_FILE" not in env and "GIT_CONFIG_PARAMETERS" not in env
    assert env["GIT_TRACE"] == "0"  # the user's own debugging switch stays
    # the repository git works on is the one asked for, not $GIT_DIR's
    assert runner.text(["rev-parse", "--absolute-git-dir"], cwd=repo) == str((repo / ".git").resolve())
    # the user's own settings apply (their git add would use them too) ...
    assert runner.text(["config", "user.name"], cwd=repo) == "From Global"
    # ... but not their credential helper, hooks or transports
    helpers = runner.run(["config", "--get-all", "--show-scope", "credential.helper"], cwd=repo).text.splitlines()
    assert helpers == ["global\tstore", "command\t"]  # an empty value resets the list
    assert runner.text(["config", "core.hooksPath"], cwd=repo) == "/dev/null"


def test_config_and_secrets_stay_off_the_command_line_and_out_of_errors(repo):
    secret = "ghs_s3cretT0ken"
    runner = GitRunner(ISOLATED).with_config(
        ("http.extraHeader", f"Authorization: Bearer {secret}"),
        ("alias.leak", f"!cat /proc/$PPID/cmdline; echo 'fatal: token {secret} rejected' >&2; exit 1"),
        secrets=[secret],
    )
    with pytest.raises(GitError) as e:
        runner.run(["leak"], cwd=repo)
    assert secret not in str(e.value) and "token *** rejected" in e.value.detail
    cmdline = runner.run(["leak"], cwd=repo, check=False).stdout
    assert b"leak" in cmdline and secret.encode() not in cmdline


def test_timeout_kills_the_whole_process_group(repo, tmp_path):
    pidfile = tmp_path / "child.pid"
    runner = GitRunner(ISOLATED).with_config(("alias.hang", f"!sleep 60 & echo $! > {pidfile}; wait"))
    t0 = time.monotonic()
    with pytest.raises(GitTimeout) as e:
        runner.run(["hang"], cwd=repo, timeout=1.0)
    assert time.monotonic() - t0 < 10
    assert e.value.category == gitrun.TIMED_OUT and "timed out after 1 s" in str(e.value)
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)
    assert not _alive(pid), "a grandchild of git survived the timeout"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_output_is_bounded_or_truncated(repo):
    runner = GitRunner(ISOLATED).with_config(("alias.flood", "!yes lab-ci"))
    t0 = time.monotonic()
    with pytest.raises(GitError) as e:
        runner.run(["flood"], cwd=repo, max_output=100_000)
    assert e.value.category == gitrun.OUTPUT_TOO_LARGE
    got = runner.run(["flood"], cwd=repo, max_output=1000, truncate=True)
    assert got.truncated and got.stdout == (b"lab-ci\n" * 200)[:1000]
    assert time.monotonic() - t0 < 20


def test_watch_stops_git_with_its_category(repo):
    runner = GitRunner(ISOLATED).with_config(("alias.slow", "!sleep 30"))
    calls = []

    def watch():
        calls.append(1)
        return gitrun.TOO_LARGE if len(calls) > 2 else None

    t0 = time.monotonic()
    with pytest.raises(GitError) as e:
        runner.run(["slow"], cwd=repo, watch=watch)
    assert e.value.category == gitrun.TOO_LARGE and time.monotonic() - t0 < 10


def test_watch_has_the_last_word_on_a_git_that_ends_between_polls(repo):
    """A fast git (here: done before the first poll, 0.1 s in) is still held to its
    watch: the document fetcher's disk budget once let a fetch that finished between
    two polls write past its limit."""
    with pytest.raises(GitError) as e:
        GitRunner(ISOLATED).run(["rev-parse", "--git-dir"], cwd=repo, watch=lambda: gitrun.TOO_LARGE)
    assert e.value.category == gitrun.TOO_LARGE
    assert GitRunner(ISOLATED).text(["rev-parse", "--git-dir"], cwd=repo, watch=lambda: None)


def test_large_input_and_output_do_not_deadlock(repo):
    data = os.urandom(3 * 1024 * 1024) * 4  # 12 MiB through stdin, both pipes busy
    want = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    assert GitRunner(LOCAL).text(["hash-object", "-w", "--stdin"], cwd=repo, input=data) == want
    back = GitRunner(LOCAL).run(["cat-file", "blob", want], cwd=repo).stdout
    assert back == data


def test_failures_are_typed(repo, tmp_path):
    with pytest.raises(GitError) as e:
        GitRunner(git=str(tmp_path / "no-such-git")).run(["version"])
    assert e.value.category == gitrun.GIT_MISSING
    not_repo = tmp_path / "plain"
    not_repo.mkdir()
    with pytest.raises(GitError) as e:
        GitRunner(LOCAL).run(["rev-parse", "HEAD"], cwd=not_repo, env={"GIT_CEILING_DIRECTORIES": str(tmp_path)})
    assert e.value.category == gitrun.NOT_A_REPOSITORY and e.value.returncode == 128
    with pytest.raises(GitError) as e:
        GitRunner(ISOLATED).run(["fetch", "--quiet", "ext::sh -c true", "main"], cwd=repo)
    assert e.value.category == gitrun.PROTOCOL_NOT_ALLOWED
    with pytest.raises(GitError) as e:
        GitRunner(ISOLATED, protocols=("file",)).run(["fetch", "--quiet", f"file://{repo}", "f" * 40], cwd=repo)
    assert e.value.category == gitrun.COMMIT_NOT_FOUND
    with pytest.raises(GitError) as e:
        GitRunner(ISOLATED, protocols=("file",)).run(["fetch", "--quiet", f"file://{tmp_path}/nope.git"], cwd=repo)
    assert e.value.category == gitrun.NOT_FOUND
    assert str(e.value).startswith("git fetch failed: ")


# What git 2.39 (libcurl with GnuTLS or OpenSSL) prints, as seen on this machine and in
# git's and curl's sources, and the category each must get.
STDERR = [
    ("fatal: unable to access 'https://h/x.git/': Could not resolve host: h", gitrun.HOST_NOT_FOUND),
    (
        "fatal: unable to access 'https://127.0.0.1:53293/x.git/': Failed to connect to 127.0.0.1 port 53293 "
        "after 0 ms: Couldn't connect to server",
        gitrun.CONNECTION_FAILED,
    ),
    (
        "fatal: unable to access 'https://127.0.0.1:36263/x.git/': gnutls_handshake() failed: "
        "An unexpected TLS packet was received.",
        gitrun.TLS_FAILED,
    ),
    (
        "fatal: unable to access 'https://127.0.0.1:1/x.git/': SSL: certificate subject name (docs.test) "
        "does not match target host name '127.0.0.1'",
        gitrun.TLS_FAILED,
    ),
    ("fatal: unable to access 'https://h/x/': server certificate verification failed. CAfile: none", gitrun.TLS_FAILED),
    ("fatal: unable to access 'https://h/x/': Connection timed out after 10001 milliseconds", gitrun.TIMED_OUT),
    (
        "error: RPC failed; curl 28 Operation too slow. Less than 1000 bytes/sec transferred the last 30 seconds",
        gitrun.TIMED_OUT,
    ),
    ("fatal: unable to access 'https://h/x.git/': The requested URL returned error: 301", gitrun.REDIRECTED),
    ("remote: Repository not found.\nfatal: repository 'https://github.com/a/b.git/' not found", gitrun.NOT_FOUND),
    ("fatal: could not read Username for 'https://github.com': terminal prompts disabled", gitrun.NOT_FOUND),
    ("fatal: unable to access 'https://h/x/': The requested URL returned error: 403", gitrun.NOT_FOUND),
    ("fatal: remote error: upload-pack: not our ref ffffffffffffffffffffffffffffffffffffffff", gitrun.COMMIT_NOT_FOUND),
    ("fatal: couldn't find remote ref refs/heads/nope", gitrun.COMMIT_NOT_FOUND),
    ("fatal: transport 'ext' not allowed", gitrun.PROTOCOL_NOT_ALLOWED),
    ("fatal: detected dubious ownership in repository at '/srv/x'", gitrun.UNSAFE_OWNER),
    ("fatal: not a git repository (or any of the parent directories): .git", gitrun.NOT_A_REPOSITORY),
    ("fatal: the remote end hung up unexpectedly\nfatal: early EOF", gitrun.CONNECTION_FAILED),
    ("fatal: something nobody has seen before", gitrun.FAILED),
]


@pytest.mark.parametrize("stderr,category", STDERR)
def test_stderr_categories(stderr, category):
    assert classify_stderr(stderr) == category
