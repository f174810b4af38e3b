"""config/settings.py: one typed object, validated at start-up, never echoing a secret."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import kombu
import pytest
from celery.app.backends import by_url

from aep_activator.config.settings import DEFAULT_SCOPES, Settings, SettingsError, get_settings, load_settings
from aep_activator.tasks.celery import celery_config

ROOT = Path(__file__).resolve().parents[2]
ENV_EXAMPLE = ROOT / ".env.example"
FIELDS = [name.upper() for name in Settings.model_fields]

SECRET = "s3cr3t-Value-that-must-never-leak"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.token-that-must-never-leak"
FLOWER_PASSWORD = "flower-pass-never-leaks"
REDIS_PASSWORD = "redis-pass-never-leaks"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No setting comes from the developer's shell or a stray .env: every test starts from defaults."""
    for name in FIELDS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _env_example() -> dict[str, str]:
    out: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if m := re.fullmatch(r"([A-Z][A-Z0-9_]*)=(.*)", line):
            out[m[1]] = m[2]
    return out


def test_defaults_point_at_production_adobe_and_the_documented_quotas() -> None:
    s = load_settings()
    assert s.aep_base_url == "https://platform.adobe.io"
    assert s.aep_ims_url == "https://ims-na1.adobelogin.com"
    assert s.aep_scopes == DEFAULT_SCOPES
    assert s.quota_adhoc_per_day == 20
    assert s.quota_segment_jobs_per_day == 2
    assert s.quota_window_s == 86400
    assert s.aep_client_id is None
    assert s.aep_client_secret is None
    assert s.aep_sandbox_name is None


def test_environment_variables_override_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AEP_BASE_URL", "http://127.0.0.1:8080/")
    monkeypatch.setenv("AEP_SANDBOX_NAME", "dev-1")
    monkeypatch.setenv("QUOTA_ADHOC_PER_DAY", "5")
    monkeypatch.setenv("POLL_FACTOR", "2")
    monkeypatch.setenv("aep_client_id", "lower-case-name-works")
    s = load_settings()
    assert s.aep_base_url == "http://127.0.0.1:8080"  # trailing slash stripped
    assert s.aep_sandbox_name == "dev-1"
    assert s.quota_adhoc_per_day == 5
    assert s.poll_factor == 2.0
    assert s.aep_client_id == "lower-case-name-works"


def test_get_settings_reads_once_and_is_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AEP_QUEUE", "first")
    first = get_settings()
    monkeypatch.setenv("AEP_QUEUE", "second")
    assert get_settings() is first
    assert get_settings().aep_queue == "first"
    get_settings.cache_clear()
    assert get_settings().aep_queue == "second"


def test_several_bad_variables_produce_one_error_naming_each(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "http://localhost:6379/0")
    monkeypatch.setenv("POLL_FACTOR", "fast")
    monkeypatch.setenv("AEP_SANDBOX_NAME", "Prod")
    monkeypatch.setenv("AEP_BASE_URL", "platform.adobe.io")
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    lines = message.splitlines()
    for name in ("REDIS_URL", "POLL_FACTOR", "AEP_SANDBOX_NAME", "AEP_BASE_URL"):
        assert sum(line.strip().startswith(name + ":") for line in lines) == 1, message
    assert "redis://" in message  # says what is accepted
    # The bad values themselves are not echoed (they could be secrets pasted in the wrong place).
    assert "localhost:6379" not in message
    assert "fast" not in message
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


def test_a_visibility_timeout_below_the_task_time_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VISIBILITY_TIMEOUT_S", "100")
    monkeypatch.setenv("TASK_TIME_LIMIT_S", "300")
    with pytest.raises(SettingsError, match="VISIBILITY_TIMEOUT_S must be above TASK_TIME_LIMIT_S"):
        load_settings()


def test_a_summary_minimum_above_its_size_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLL_SUMMARY_SIZE", "64")
    monkeypatch.setenv("POLL_SUMMARY_MIN", "100")
    with pytest.raises(SettingsError, match=r"POLL_SUMMARY_MIN \(100\) must be at most POLL_SUMMARY_SIZE \(64\)"):
        load_settings()
    monkeypatch.setenv("POLL_ADAPTIVE", "false")  # no summary at all: nothing to contradict
    assert load_settings().poll_summary_min == 100


def test_out_of_range_numbers_are_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLL_JITTER", "1.5")
    monkeypatch.setenv("FLOWER_PORT", "70000")
    monkeypatch.setenv("AEP_READ_TIMEOUT_S", "0")
    with pytest.raises(SettingsError) as info:
        load_settings()
    for name in ("POLL_JITTER", "FLOWER_PORT", "AEP_READ_TIMEOUT_S"):
        assert name in str(info.value)


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("FLOWER_BASIC_AUTH", FLOWER_PASSWORD, "FLOWER_BASIC_AUTH must look like user:password"),
        ("REDIS_URL", f"http://:{REDIS_PASSWORD}@localhost/0", "REDIS_URL: must start with one of"),
        ("AEP_BASE_URL", f"ftp://user:{REDIS_PASSWORD}@host", "AEP_BASE_URL: must be an http(s) URL"),
    ],
)
def test_a_secret_never_appears_in_an_error_message(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv("AEP_CLIENT_SECRET", SECRET)
    monkeypatch.setenv("AEP_ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert expected in message
    for secret in (SECRET, TOKEN, FLOWER_PASSWORD, REDIS_PASSWORD):
        assert secret not in message
        assert secret not in repr(info.value)


def test_a_secret_never_appears_in_repr_or_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AEP_CLIENT_SECRET", SECRET)
    monkeypatch.setenv("AEP_ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("FLOWER_BASIC_AUTH", f"admin:{FLOWER_PASSWORD}")
    monkeypatch.setenv("REDIS_URL", f"rediss://default:{REDIS_PASSWORD}@redis.example:6380/0")
    s = load_settings()
    masked = s.masked()
    texts = [repr(s), str(s), str(masked)]
    for text in texts:
        for secret in (SECRET, TOKEN, FLOWER_PASSWORD, REDIS_PASSWORD):
            assert secret not in text
    assert masked["AEP_CLIENT_SECRET"] == "**********"
    assert masked["AEP_ACCESS_TOKEN"] == "**********"
    assert masked["FLOWER_BASIC_AUTH"] == "**********"
    assert masked["REDIS_URL"] == "rediss://default:**********@redis.example:6380/0"
    assert set(masked) == set(FIELDS)
    # The real values stay usable by the code that needs them.
    assert s.aep_client_secret is not None
    assert s.aep_client_secret.get_secret_value() == SECRET
    assert s.redis_url == f"rediss://default:{REDIS_PASSWORD}@redis.example:6380/0"


def test_require_aep_names_every_missing_credential() -> None:
    s = load_settings()
    with pytest.raises(SettingsError) as info:
        s.require_aep()
    message = str(info.value)
    for name in ("AEP_CLIENT_ID", "AEP_ORG_ID", "AEP_CLIENT_SECRET"):
        assert name in message
    assert len(s.aep_problems()) == 3


def test_require_aep_accepts_a_client_secret_or_a_static_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AEP_CLIENT_ID", "cid")
    monkeypatch.setenv("AEP_ORG_ID", "ORG@AdobeOrg")
    monkeypatch.setenv("AEP_ACCESS_TOKEN", TOKEN)
    assert load_settings().require_aep().aep_problems() == []
    monkeypatch.delenv("AEP_ACCESS_TOKEN")
    monkeypatch.setenv("AEP_CLIENT_SECRET", SECRET)
    assert load_settings().require_aep().aep_problems() == []


def test_require_aep_names_only_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AEP_CLIENT_ID", "cid")
    with pytest.raises(SettingsError) as info:
        load_settings().require_aep()
    assert "AEP_CLIENT_ID" not in str(info.value)
    assert "AEP_ORG_ID" in str(info.value)
    assert "AEP_CLIENT_SECRET" in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/0",
        "rediss://user:pw@redis.example:6380/1",
        "sentinel://sentinel-1:26379/mymaster",
    ],
)
def test_every_redis_scheme_celery_understands_is_accepted(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("REDIS_URL", url)
    s = load_settings()
    assert s.redis_url == url
    # What the worker will do with it: kombu finds a broker transport and Celery a result backend.
    config = celery_config(s)
    assert kombu.Connection(config["broker_url"], transport=config.get("broker_transport")).get_transport_cls()
    assert by_url(config["result_backend"])[0]


@pytest.mark.parametrize(("url", "reason"), [("unix:///var/run/redis.sock", "Unix socket"),
                                             ("sentinels://sentinel-1:26379/mymaster", "use sentinel://")])
def test_redis_schemes_that_kombu_or_celery_cannot_serve_are_refused(
    monkeypatch: pytest.MonkeyPatch, url: str, reason: str
) -> None:
    monkeypatch.setenv("REDIS_URL", url)
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "REDIS_URL" in str(info.value) and "is not supported" in str(info.value) and reason in str(info.value)
    # The reason holds: stock kombu has no transport by that name.
    with pytest.raises(KeyError):
        kombu.Connection(url).get_transport_cls()


def test_a_dotenv_file_in_the_working_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("AEP_CLIENT_ID=from-dotenv\nQUOTA_SEGMENT_JOBS_PER_DAY=1\n")
    s = load_settings()
    assert s.aep_client_id == "from-dotenv"
    assert s.quota_segment_jobs_per_day == 1


def test_the_environment_wins_over_the_dotenv_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("AEP_CLIENT_ID=from-dotenv\n")
    monkeypatch.setenv("AEP_CLIENT_ID", "from-env")
    assert load_settings().aep_client_id == "from-env"


def test_a_blank_variable_means_unset_and_a_blank_secret_is_not_a_credential(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AEP_CLIENT_ID", "")
    monkeypatch.setenv("AEP_SANDBOX_NAME", "")
    monkeypatch.setenv("AEP_CLIENT_SECRET", "")
    monkeypatch.setenv("POLL_FACTOR", "")
    s = load_settings()
    assert s.aep_client_id is None
    assert s.aep_sandbox_name is None
    assert s.aep_client_secret is None
    assert s.poll_factor == 1.1
    assert any("AEP_CLIENT_SECRET" in p for p in s.aep_problems())


def test_env_example_names_exactly_the_settings_fields() -> None:
    names = [line.split("=", 1)[0] for line in ENV_EXAMPLE.read_text().splitlines() if re.match(r"[A-Z]", line)]
    assert len(names) == len(set(names)), "a variable is listed twice"
    assert set(names) == set(FIELDS)


def test_env_example_has_a_comment_with_the_default_above_every_variable() -> None:
    lines = ENV_EXAMPLE.read_text().splitlines()
    for i, line in enumerate(lines):
        if re.match(r"[A-Z]", line):
            comment = lines[i - 1]
            assert comment.startswith("# "), f"{line!r} lacks a comment"
            assert "default" in comment, f"{line!r}: its comment does not give the default"


def test_env_example_values_are_the_real_defaults_and_secrets_are_blank() -> None:
    values = _env_example()
    for name, field in Settings.model_fields.items():
        written = values[name.upper()]
        if field.default is None:
            assert written == "", f"{name.upper()} has no default, so .env.example must leave it blank"
        else:
            assert written == str(field.default), name.upper()
    for secret in ("AEP_CLIENT_SECRET", "AEP_ACCESS_TOKEN", "FLOWER_BASIC_AUTH", "API_KEYS", "CALLBACK_SECRET"):
        assert values[secret] == ""


def test_a_copy_of_env_example_loads_and_then_asks_only_for_the_credentials(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(ENV_EXAMPLE.read_text())
    s = load_settings()
    assert s == Settings.model_construct()  # every value is the default
    assert [p.split(":")[0] for p in s.aep_problems()] == ["AEP_CLIENT_ID", "AEP_ORG_ID", "AEP_CLIENT_SECRET"]


def test_api_keys_must_be_name_role_and_a_sha256_and_are_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    good = "ops1:ops:" + "a" * 64
    monkeypatch.setenv("API_KEYS", f"{good},billing:producer:{'B' * 64}")
    assert load_settings().api_keys is not None
    for bad in ("ops1:admin:" + "a" * 64, "ops1:ops:plain-text-key", "no-colons", f"{good},"):
        monkeypatch.setenv("API_KEYS", bad)
        with pytest.raises(SettingsError) as info:
            load_settings()
        assert "API_KEYS" in str(info.value)
        assert "plain-text-key" not in str(info.value)
    monkeypatch.setenv("API_KEYS", good)
    assert load_settings().masked()["API_KEYS"] == "**********"


def test_callback_hosts_need_a_callback_secret_to_sign_with(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLBACK_HOSTS", "Hooks.Example.com, 127.0.0.1")
    with pytest.raises(SettingsError, match="CALLBACK_SECRET"):
        load_settings()
    monkeypatch.setenv("CALLBACK_SECRET", SECRET)
    s = load_settings()
    assert s.callback_host_list == ["hooks.example.com", "127.0.0.1"]
    assert SECRET not in repr(s) and s.masked()["CALLBACK_SECRET"] == "**********"


def test_log_format_is_text_or_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_FORMAT", "yaml")
    with pytest.raises(SettingsError, match="LOG_FORMAT"):
        load_settings()


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"QUOTA_YEAR_START": "02-29"}, "QUOTA_YEAR_START '02-29' is not a day that exists every year"),
        ({"QUOTA_YEAR_START": "13-01"}, "QUOTA_YEAR_START '13-01'"),
        ({"QUOTA_YEAR_START": "1-1"}, "QUOTA_YEAR_START"),
        ({"QUOTA_RESERVED_FOR_SCHEDULES": "adhoc:21"}, "holds back 21 adhoc slots, more than the daily limit 20"),
        ({"QUOTA_RESERVED_FOR_SCHEDULES": "segment_jobs:3"}, "holds back 3 segment_jobs slots"),
        ({"QUOTA_RESERVED_FOR_SCHEDULES": "exports:1"}, "QUOTA_RESERVED_FOR_SCHEDULES"),
        (
            {"AEP_SANDBOXES": "prod,dev", "AEP_SANDBOX_NAME": "stage"},
            "AEP_SANDBOX_NAME 'stage' is not in AEP_SANDBOXES",
        ),
        ({"AEP_SANDBOXES": "Prod"}, "AEP_SANDBOXES"),
        ({"AEP_SANDBOX_TYPES": "prod:staging"}, "AEP_SANDBOX_TYPES"),
    ],
)
def test_bad_sandbox_and_quota_settings_are_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], words: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=re.escape(words)):
        load_settings()


def test_sandbox_and_quota_settings_read_as_the_readme_writes_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AEP_SANDBOXES", "prod,dev")
    monkeypatch.setenv("AEP_SANDBOX_TYPES", "prod:production,dev:development")
    monkeypatch.setenv("QUOTA_RESERVED_FOR_SCHEDULES", "adhoc:2,segment_jobs:1")
    s = load_settings()
    assert s.sandboxes == ("prod", "dev")
    assert s.sandbox_types == {"prod": "production", "dev": "development"}
    assert s.reserved_for_schedules == {"adhoc": 2, "segment_jobs": 1}
