"""The operator pages say what the code says: the settings table of
docs/operators/configuration.md is settings_markdown(), and every bot variable the
deploy and security pages name exists."""

from __future__ import annotations

import re

from botlib import REPO_ROOT

from lab_ci.bot.settings import settings_fields, settings_markdown
from lab_ci.taxonomy.documents import POLICY_ENV

DOCS = REPO_ROOT / "docs" / "operators"
#: variables of other stages that the operator pages may name
OTHER = {"LAB_CI_STUDENT", "LAB_CI_DOCUMENT_MIRRORS", "LAB_CI_PIPELINE_DIR", "LAB_CI_DEBUG"}
OTHER |= set(POLICY_ENV.values())  # document fetching (lab_ci.taxonomy.documents)
OTHER |= {"LAB_CI_TEACHER_API_KEY", "LAB_CI_TEACHER_MODEL", "LAB_CI_SHARED", "LAB_CI_LLAMA_REPACK"}


def test_configuration_page_lists_every_setting_as_the_code_does():
    assert settings_markdown() in (DOCS / "configuration.md").read_text()


def test_the_operator_pages_name_only_real_variables():
    known = {f.env for f in settings_fields()} | OTHER
    for page in ("deploy.md", "security.md", "configuration.md", "local-bot.md"):
        named = {v for v in re.findall(r"LAB_CI_[A-Z_]+", (DOCS / page).read_text()) if not v.endswith("_")}
        assert named <= known, f"{page} names unknown variables: {sorted(named - known)}"


def test_metric_families_are_what_metrics_exports(tmp_path):
    """metric_families() (what the metrics reference is generated from) lists exactly
    the families of a real exposition, with their types and labels."""
    from prometheus_client.parser import text_string_to_metric_families

    from lab_ci.bot.jobs import JobSpec
    from lab_ci.bot.metrics import Metrics, metric_families
    from lab_ci.bot.queue import SQLiteQueue

    queue = SQLiteQueue(tmp_path / "q.db")
    queue.enqueue(JobSpec("check", {}))
    metrics = Metrics()
    metrics.bind(stats=queue.stats, workers_alive=lambda: 3)
    metrics.jobs_refused.labels(kind="preview", reason="user_quota").inc()
    exported = {f.name: f for f in text_string_to_metric_families(metrics.render().decode())}
    queue.close()
    declared = {f.name: f for f in metric_families()}
    assert set(exported) == set(declared)
    for name, family in declared.items():
        assert exported[name].type == family.type and exported[name].documentation == family.help
    refused = exported["labci_jobs_refused"].samples[0]
    assert refused.name == "labci_jobs_refused_total" and set(refused.labels) == set(
        declared["labci_jobs_refused"].labels
    )
    assert {s.labels["kind"] for s in exported["labci_jobs"].samples} == {"check"}
