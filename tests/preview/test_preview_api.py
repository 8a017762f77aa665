"""What run_preview keeps of a check diagnostic and of the teacher (pure helpers)."""

from dataclasses import dataclass

from lab_ci.check.diagnostics import Diagnostic
from lab_ci.preview.api import _diagnostic, _info
from lab_ci.teacher.base import TeacherInfo


@dataclass(frozen=True)
class HintedDiagnostic(Diagnostic):
    """A diagnostic as the checker gives it once it carries a fix (``hint``)."""

    hint: str | None = None


def test_a_diagnostics_hint_is_kept_where_the_checker_gives_one():
    plain = Diagnostic("error", "schema", "required", "'version' is a required property")
    assert "hint" not in _diagnostic(plain)
    hinted = HintedDiagnostic("error", "schema", "required", "version is missing", hint="Add `version: 3`.")
    d = _diagnostic(hinted)
    assert d["hint"] == "Add `version: 3`." and d["message"] == "version is missing" and d["line"] == 1


class Named:
    def __init__(self, info):
        self.info = info


def test_the_teacher_is_named_without_its_path_or_credentials():
    gguf = TeacherInfo(
        "gguf:abc123:teacher.gguf",
        "tiny",
        {"backend": "llama.cpp", "path": "/home/me/models/teacher.gguf", "n_ctx": 4096},
    )
    assert _info(Named(gguf)) == {
        "id": "gguf:abc123:teacher.gguf",
        "name": "tiny",
        "details": {"backend": "llama.cpp", "n_ctx": 4096},
    }
    server = TeacherInfo(
        "openai:https://bot:s3cret@llm.internal/v1#granite",
        "granite",
        {"backend": "openai", "base_url": "https://bot:s3cret@llm.internal/v1"},
    )
    info = _info(Named(server))
    assert "s3cret" not in str(info) and info["id"] == "openai:https://llm.internal/v1#granite"
