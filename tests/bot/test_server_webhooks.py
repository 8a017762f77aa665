"""Pure parts of the webhook service: signatures, delivery parsing, event time, settings."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from botlib import WEBHOOK_PAYLOADS

from lab_ci.bot import webhooks
from lab_ci.bot.settings import Settings
from lab_ci.errors import LabCIError

# The example from GitHub's "Validating webhook deliveries" documentation.
DOC_SECRET = b"It's a Secret to Everybody"
DOC_BODY = b"Hello, World!"
DOC_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_signature_matches_githubs_documented_example():
    assert webhooks.sign(DOC_SECRET, DOC_BODY) == DOC_SIGNATURE
    assert webhooks.verify_signature(DOC_SECRET, DOC_BODY, DOC_SIGNATURE)
    assert webhooks.verify_signature(DOC_SECRET, DOC_BODY, DOC_SIGNATURE.upper().replace("SHA256=", "sha256="))


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "sha256=",
        "sha1=757107ea0eb2509fc211221cce984b8a37570b6d",
        DOC_SIGNATURE[:-1] + "0",
        DOC_SIGNATURE.replace("sha256=", ""),
        "sha256=zz\u00e9",
    ],
)
def test_bad_signatures_are_rejected(header):
    assert not webhooks.verify_signature(DOC_SECRET, DOC_BODY, header)


def test_signature_depends_on_secret_and_every_byte():
    assert not webhooks.verify_signature(b"other secret", DOC_BODY, DOC_SIGNATURE)
    assert not webhooks.verify_signature(DOC_SECRET, DOC_BODY + b" ", DOC_SIGNATURE)
    assert not webhooks.verify_signature(b"", DOC_BODY, DOC_SIGNATURE)


def headers(**over):
    h = {"X-GitHub-Event": "pull_request", "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958"}
    h.update(over)
    return {k: v for k, v in h.items() if v is not None}


def test_parse_real_delivery():
    body = (WEBHOOK_PAYLOADS / "pull_request" / "opened.payload.json").read_bytes()
    d = webhooks.parse_delivery(headers(**{"X-GitHub-Hook-ID": "42"}), body)
    assert (d.event, d.id, d.action, d.hook_id) == (
        "pull_request",
        "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "opened",
        "42",
    )
    assert d.body is body
    assert d.payload == json.loads(body)
    expected_installation = json.loads(body).get("installation", {}).get("id")
    assert d.installation_id == expected_installation


def test_headers_are_case_insensitive_in_plain_dicts():
    d = webhooks.parse_delivery({"x-github-event": "push", "X-GITHUB-DELIVERY": "abc"}, b"{}")
    assert (d.event, d.id) == ("push", "abc")


@pytest.mark.parametrize(
    "hdrs, body, reason",
    [
        (headers(**{"X-GitHub-Event": None}), b"{}", "missing_event"),
        (headers(**{"X-GitHub-Delivery": None}), b"{}", "missing_delivery"),
        (headers(**{"X-GitHub-Event": "pull request; drop"}), b"{}", "malformed"),
        (headers(**{"X-GitHub-Delivery": "../../etc"}), b"{}", "malformed"),
        (headers(), b"{not json", "malformed_json"),
        (headers(), b"\xff\xfe", "malformed_json"),
        (headers(), b'"a string"', "malformed_json"),
    ],
)
def test_malformed_deliveries_raise_a_400_error(hdrs, body, reason):
    with pytest.raises(webhooks.BadDelivery) as e:
        webhooks.parse_delivery(hdrs, body)
    assert e.value.status == 400 and e.value.reason == reason


def test_target_check():
    d = webhooks.parse_delivery(
        headers(
            **{"X-GitHub-Hook-Installation-Target-Type": "integration", "X-GitHub-Hook-Installation-Target-ID": "12"}
        ),
        b"{}",
    )
    webhooks.check_target(d, "12")
    webhooks.check_target(d, None)  # no App id configured: nothing to compare
    with pytest.raises(webhooks.Forbidden) as e:
        webhooks.check_target(d, "13")
    assert e.value.status == 403 and e.value.reason == "wrong_target"


@pytest.mark.parametrize(
    "event, name, expected",
    [
        ("pull_request", "synchronize.payload.json", ("pull_request", "updated_at")),
        ("issue_comment", "edited.payload.json", ("comment", "updated_at")),
        ("check_suite", "requested.payload.json", ("check_suite", "updated_at")),
        ("workflow_run", "completed.payload.json", ("workflow_run", "updated_at")),
    ],
)
def test_event_time_reads_the_events_own_signed_timestamp(event, name, expected):
    payload = json.loads((WEBHOOK_PAYLOADS / event / name).read_text())
    t = webhooks.event_time(event, payload)
    obj, field = expected
    own = datetime.fromisoformat(payload[obj][field].replace("Z", "+00:00"))
    assert t is not None and t >= own


def test_event_time_of_a_push_is_the_push_time_and_ping_has_none():
    push = json.loads((WEBHOOK_PAYLOADS / "push" / "payload.json").read_text())
    assert webhooks.event_time("push", push) == datetime.fromtimestamp(push["repository"]["pushed_at"], UTC)
    ping = json.loads((WEBHOOK_PAYLOADS / "ping" / "payload.json").read_text())
    assert webhooks.event_time("ping", ping) is None


def test_check_age():
    now = datetime(2026, 1, 10, tzinfo=UTC)
    payload = {"pull_request": {"updated_at": "2026-01-09T00:00:00Z"}}
    d = webhooks.Delivery(id="x", event="pull_request", body=b"", payload=payload)
    webhooks.check_age(d, 0, now)  # off
    webhooks.check_age(d, timedelta(days=2).total_seconds(), now)
    with pytest.raises(webhooks.Forbidden) as e:
        webhooks.check_age(d, 3600, now)
    assert e.value.reason == "stale"


def test_settings_never_show_secrets(tmp_path):
    key = tmp_path / "app.pem"
    key.write_text("-----BEGIN RSA PRIVATE KEY-----\nMIIfake\n-----END RSA PRIVATE KEY-----\n")
    env = {
        "LAB_CI_WEBHOOK_SECRET": "hunter2-webhook",
        "LAB_CI_APP_ID": "4242",
        "LAB_CI_PRIVATE_KEY_PATH": str(key),
        "LAB_CI_DATA_DIR": str(tmp_path),
        "LAB_CI_WORKERS": "3",
        "LAB_CI_MAX_DELIVERY_AGE": "345600",
        "LAB_CI_GITHUB_API_URL": "http://127.0.0.1:9/api",
    }
    s = Settings.from_env(env)
    assert s.webhook_secret == b"hunter2-webhook" and s.app_id == "4242" and s.workers == 3
    assert s.max_delivery_age == 345600 and s.github_api_url == "http://127.0.0.1:9/api"
    assert s.queue_path == tmp_path / "queue.db"
    assert s.private_key_pem().startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert "hunter2" not in repr(s) and "MIIfake" not in repr(s)
    described = json.dumps(s.describe())
    assert "hunter2" not in described and s.describe()["webhook_secret"] == "set"
    assert Settings.from_env(env, workers=0, db_path=tmp_path / "q.db").queue_path == tmp_path / "q.db"


@pytest.mark.parametrize(
    "env, message",
    [
        ({"LAB_CI_WORKERS": "many"}, "LAB_CI_WORKERS='many' is not a valid int"),
        ({"LAB_CI_LEASE_SECONDS": "0"}, "LAB_CI_LEASE_SECONDS must be > 0"),
        ({"LAB_CI_CHECK_MEMORY_MB": "-1"}, "LAB_CI_CHECK_MEMORY_MB must be > 0"),
        ({"LAB_CI_LOCAL_EXECUTOR": "maybe"}, "LAB_CI_LOCAL_EXECUTOR='maybe' is not a valid boolean"),
        ({"LAB_CI_DB_SYNCHRONOUS": "OFF"}, "LAB_CI_DB_SYNCHRONOUS must be FULL, NORMAL or EXTRA"),
    ],
)
def test_bad_settings_are_clear_errors(env, message):
    with pytest.raises(LabCIError, match=message):
        Settings.from_env(env)


def test_unreadable_private_key_is_a_clear_error(tmp_path):
    s = Settings.from_env({"LAB_CI_PRIVATE_KEY_PATH": str(tmp_path / "missing.pem")})
    with pytest.raises(LabCIError, match="cannot read private key"):
        s.private_key_pem()


def test_authenticate_checks_the_signature_before_anything_else():
    bad_json = b"{not json"
    with pytest.raises(webhooks.BadSignature):  # 401, not 400: unauthenticated input is not parsed
        webhooks.authenticate(headers(), bad_json, secret=DOC_SECRET)
    with pytest.raises(webhooks.BadDelivery):
        webhooks.authenticate(
            headers(**{"X-Hub-Signature-256": webhooks.sign(DOC_SECRET, bad_json)}), bad_json, secret=DOC_SECRET
        )
    body = b'{"pull_request": {"updated_at": "2020-01-01T00:00:00Z"}}'
    signed = headers(**{"X-Hub-Signature-256": webhooks.sign(DOC_SECRET, body)})
    assert webhooks.authenticate(signed, body, secret=DOC_SECRET).payload["pull_request"]
    with pytest.raises(webhooks.Forbidden, match="stale"):
        webhooks.authenticate(signed, body, secret=DOC_SECRET, max_age=86400)
    # no secret configured: signatures are not checked at all (local use)
    assert webhooks.authenticate(headers(), body, secret=None).event == "pull_request"
