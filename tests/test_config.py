"""Configuration: one ``Settings`` from ``KINLINE_*`` and flags; bad values are one line."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from channels.redis_target import ClusterTarget, cluster_target
from server import config
from server.config import ConfigError, Settings

REPO = Path(__file__).resolve().parent.parent


def clean_env(**extra: str) -> dict[str, str]:
    """The process environment without any ``KINLINE_*`` leaking in from the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KINLINE_")}
    env["PYTHONPATH"] = str(REPO)
    env.update(extra)
    return env


def kinline(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server", *args],
        cwd=cwd,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


# -- load(): defaults, environment, flags ----------------------------------------------------


def test_defaults_without_environment() -> None:
    settings = config.load({})
    assert settings == Settings()
    assert settings.database_url == "sqlite:///var/kinline.db"
    assert settings.redis_url is None
    assert (settings.host, settings.port, settings.workers) == ("127.0.0.1", 8080, 1)
    assert settings.log_format == "auto"
    assert settings.log_level == "INFO"


def test_environment_is_parsed_into_typed_values() -> None:
    settings = config.load(
        {
            "KINLINE_DATABASE_URL": "postgresql://db.internal/kinline",
            "KINLINE_REDIS_URL": "redis://cache:6379/2",
            "KINLINE_SECRET": "s3cr3t",
            "KINLINE_HOST": "0.0.0.0",
            "KINLINE_PORT": "9000",
            "KINLINE_WORKERS": "4",
            "KINLINE_LISTEN_BACKLOG": "512",
            "KINLINE_SEND_RATE": "2.5",
            "KINLINE_SEND_BURST": "7",
            "KINLINE_HEARTBEAT": "12",
            "KINLINE_SESSION_DAYS": "3",
            "KINLINE_LOG_FORMAT": "text",
            "KINLINE_LOG_LEVEL": "DEBUG",
            "KINLINE_ALLOWED_ORIGINS": "https://a.example.org/, https://b.example.org",
            "UNRELATED": "ignored",
        }
    )
    assert settings.database_url == "postgresql://db.internal/kinline"
    assert settings.redis_url == "redis://cache:6379/2"
    assert settings.secret == "s3cr3t"
    assert settings.host == "0.0.0.0"
    assert settings.port == 9000
    assert settings.workers == 4
    assert settings.listen_backlog == 512
    assert settings.send_rate == 2.5
    assert settings.send_burst == 7
    assert settings.heartbeat == 12.0
    assert settings.session_days == 3
    assert settings.log_format == "text"
    assert settings.log_level == "DEBUG"
    assert settings.allowed_origins == ("https://a.example.org", "https://b.example.org")
    assert settings.origins == {"https://a.example.org", "https://b.example.org"}


def test_load_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KINLINE_PORT", "8123")
    assert config.load().port == 8123


def test_flags_win_over_environment() -> None:
    env = {
        "KINLINE_PORT": "9000",
        "KINLINE_HOST": "10.0.0.1",
        "KINLINE_DATABASE_URL": "postgresql://from-env/db",
    }
    settings = config.load(env, port=7000, host="10.0.0.2", database_url="sqlite:///x.db")
    assert settings.port == 7000
    assert settings.host == "10.0.0.2"
    assert settings.database_url == "sqlite:///x.db"


def test_flags_are_parsed_like_the_environment() -> None:
    # the CLI passes flags as strings
    assert config.load({}, port="7001", workers="3").port == 7001
    assert config.load({}, port="7001", workers="3").workers == 3


def test_unset_flags_leave_the_environment_in_charge() -> None:
    settings = config.load({"KINLINE_PORT": "9000"}, port=None, host=None)
    assert settings.port == 9000
    assert settings.host == "127.0.0.1"


def test_empty_redis_url_means_the_in_process_broker() -> None:
    assert config.load({"KINLINE_REDIS_URL": ""}).redis_url is None


@pytest.mark.parametrize(
    "url",
    [
        "redis://h:6379/0",
        "rediss://h:6380",
        "unix:///run/redis.sock",
        "redis+cluster://a:7000,b:7001,c:7002",
        "rediss+cluster://user:pw@a:7000",
    ],
)
def test_redis_schemes_accepted(url: str) -> None:
    assert config.load({"KINLINE_REDIS_URL": url}).redis_url == url


def test_cluster_url_names_its_seed_nodes_and_credentials() -> None:
    target = cluster_target("rediss+cluster://ops:p%40ss@10.0.0.1:7000, [::1]:7001")
    assert target == ClusterTarget(
        (("10.0.0.1", 7000), ("::1", 7001)), username="ops", password="p@ss", tls=True
    )
    assert cluster_target("redis://h:6379/0") is None


@pytest.mark.parametrize(
    "url",
    ["redis+cluster://", "redis+cluster://a", "redis+cluster://a:7000,b:x", "redis+cluster://a:0"],
)
def test_bad_cluster_url_is_refused_naming_the_node(url: str) -> None:
    with pytest.raises(ConfigError, match=r"KINLINE_REDIS_URL.*is not host:port"):
        config.load({"KINLINE_REDIS_URL": url})


@pytest.mark.parametrize(
    "url", ["sqlite:///var/k.db", "sqlite:////abs/k.db", "postgresql://h/db", "postgres://h/db"]
)
def test_database_schemes_accepted(url: str) -> None:
    assert config.load({"KINLINE_DATABASE_URL": url}).database_url == url


# -- load(): bad values name the setting in one line ----------------------------------------


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("KINLINE_DATABASE_URL", "mysql://x"),
        ("KINLINE_DATABASE_URL", "kinline.db"),
        ("KINLINE_REDIS_URL", "http://cache:6379"),
        ("KINLINE_PORT", "abc"),
        ("KINLINE_PORT", "-1"),
        ("KINLINE_PORT", "70000"),  # not a TCP port (must not wrap around to 4464)
        ("KINLINE_WORKERS", "0"),
        ("KINLINE_LISTEN_BACKLOG", "0"),
        ("KINLINE_SEND_RATE", "0"),
        ("KINLINE_HEARTBEAT", "fast"),
        ("KINLINE_LOG_FORMAT", "xml"),
        ("KINLINE_LOG_LEVEL", "LOUD"),
        ("KINLINE_MAX_FRAME_BYTES", "10"),
    ],
)
def test_bad_environment_value_is_refused_naming_it(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config.load({variable: value})
    message = str(caught.value)
    assert variable in message
    assert repr(value) in message
    assert "\n" not in message


def test_bad_flag_is_refused_naming_the_flag() -> None:
    with pytest.raises(ConfigError, match=r"--port='abc'"):
        config.load({"KINLINE_PORT": "9000"}, port="abc")


def test_bad_environment_value_is_ignored_when_a_flag_overrides_it() -> None:
    assert config.load({"KINLINE_PORT": "abc"}, port=9001).port == 9001


def test_unknown_setting_is_refused() -> None:
    with pytest.raises(ConfigError, match="prot"):
        config.load({}, prot=80)


# -- origins ---------------------------------------------------------------------------------


def test_origins_derived_from_local_host_and_port() -> None:
    settings = config.load({"KINLINE_PORT": "8443"})
    assert settings.origins == {"http://127.0.0.1:8443", "http://localhost:8443"}


def test_origins_derived_from_a_public_host() -> None:
    settings = config.load({"KINLINE_HOST": "chat.example.org", "KINLINE_PORT": "8080"})
    assert settings.origins == {"http://chat.example.org:8080"}


def test_origins_omit_port_80() -> None:
    settings = config.load({"KINLINE_HOST": "chat.example.org", "KINLINE_PORT": "80"})
    assert settings.origins == {"http://chat.example.org"}


def test_allowed_origins_replace_the_derived_ones() -> None:
    settings = config.load(
        {"KINLINE_ALLOWED_ORIGINS": "https://chat.example.org", "KINLINE_PORT": "8080"}
    )
    assert settings.origins == {"https://chat.example.org"}
    assert "http://localhost:8080" not in settings.origins


@pytest.mark.parametrize(
    "origin",
    [
        "chat.example.org",  # no scheme
        "ftp://chat.example.org",  # not http(s)
        "https://chat.example.org/app",  # a path is not an origin
        "https://",  # no host
    ],
)
def test_malformed_origin_is_refused(origin: str) -> None:
    with pytest.raises(ConfigError, match="KINLINE_ALLOWED_ORIGINS"):
        config.load({"KINLINE_ALLOWED_ORIGINS": f"https://ok.example.org,{origin}"})


# -- the secret ------------------------------------------------------------------------------


def test_secret_is_generated_once_private_and_stable(tmp_path: Path) -> None:
    var = tmp_path / "var"
    first = config.with_secret(config.load({}), var)
    assert len(first.secret) >= 32
    path = var / "secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = config.with_secret(config.load({}), var)
    assert second.secret == first.secret


def test_secret_from_environment_is_kept_and_nothing_written(tmp_path: Path) -> None:
    var = tmp_path / "var"
    settings = config.with_secret(config.load({"KINLINE_SECRET": "from-env"}), var)
    assert settings.secret == "from-env"
    assert not var.exists()


# -- reaching relatives outside the page (DESIGN.md section 8) ------------------------------


def test_the_outreach_settings_are_read_from_the_environment() -> None:
    key = "k" * 43
    settings = config.load(
        {
            "KINLINE_WECHAT_APPID": "wx1",
            "KINLINE_WECHAT_SECRET": "s",
            "KINLINE_WECHAT_TOKEN": "t",
            "KINLINE_WECHAT_AES_KEY": key,
            "KINLINE_WECHAT_TEMPLATE_ID": "TPL",
            "KINLINE_WECHAT_API": "http://127.0.0.1:9000/",
            "KINLINE_WECHAT_OAUTH": "http://127.0.0.1:9000/connect/oauth2/authorize",
            "KINLINE_PUBLIC_URL": "https://kinline.example.org/",
            "KINLINE_VAPID_SUBJECT": "mailto:ops@example.org",
            "KINLINE_PUSH_ENDPOINTS": "http://127.0.0.1:9001/push/, https://push.test/",
            "KINLINE_SMS_URL": "http://127.0.0.1:9002/sms",
        }
    )
    assert settings.wechat_enabled and settings.wechat_aes_key == key
    assert (settings.wechat_api, settings.wechat_template_id) == ("http://127.0.0.1:9000", "TPL")
    assert settings.wechat_oauth == "http://127.0.0.1:9000/connect/oauth2/authorize"
    assert settings.public_base == "https://kinline.example.org"
    assert settings.vapid_subject == "mailto:ops@example.org"
    assert settings.push_endpoints == ("http://127.0.0.1:9001/push/", "https://push.test/")
    assert settings.sms_url == "http://127.0.0.1:9002/sms"
    # without all three of app id, secret and token the channel is off
    assert not config.load(
        {"KINLINE_WECHAT_APPID": "wx1", "KINLINE_WECHAT_TOKEN": "t"}
    ).wechat_enabled


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("KINLINE_WECHAT_API", "api.weixin.qq.com"),
        ("KINLINE_WECHAT_OAUTH", "ftp://open.weixin.qq.com/"),
        ("KINLINE_PUBLIC_URL", "kinline.example.org"),
        ("KINLINE_PUSH_ENDPOINTS", "http://127.0.0.1:9001/push/,localhost"),
        ("KINLINE_SMS_URL", "sms-gateway:8080"),
        ("KINLINE_WECHAT_AES_KEY", "too-short"),
        ("KINLINE_OUTBOX_MAX_ATTEMPTS", "0"),
        ("KINLINE_NOTIFY_COALESCE", "-1"),
    ],
)
def test_a_bad_outreach_setting_is_refused_naming_it(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config.load({variable: value})
    assert variable in str(caught.value)


def test_the_vapid_key_is_generated_once_private_and_stable(tmp_path: Path) -> None:
    from server.push import Push

    var = tmp_path / "var"
    first = config.with_vapid(config.load({}), var)
    path = var / "vapid.pem"
    assert first.vapid_key.startswith("-----BEGIN") and path.read_text() == first.vapid_key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = config.with_vapid(config.load({}), var)
    assert second.vapid_key == first.vapid_key  # every process pushes with the same key
    assert Push(first, first.vapid_key).public_key == Push(second, second.vapid_key).public_key
    kept = config.with_vapid(config.load({"KINLINE_VAPID_KEY": first.vapid_key}), tmp_path / "x")
    assert kept.vapid_key == first.vapid_key and not (tmp_path / "x").exists()


# -- through the CLI: one line on stderr, non-zero exit, no traceback -----------------------


def assert_one_error_line(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode != 0, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("kinline: error: "), lines[0]
    for needle in needles:
        assert needle in lines[0]
    assert result.stdout == ""


@pytest.mark.spawns
def test_cli_unknown_database_scheme(tmp_path: Path) -> None:
    result = kinline(tmp_path, "--database-url", "mysql://x", "migrate")
    assert_one_error_line(result, "mysql")


@pytest.mark.spawns
def test_cli_unknown_database_scheme_from_environment(tmp_path: Path) -> None:
    result = kinline(tmp_path, "migrate", KINLINE_DATABASE_URL="mysql://x")
    assert_one_error_line(result, "KINLINE_DATABASE_URL", "mysql")


@pytest.mark.spawns
def test_cli_unreachable_database_at_start(tmp_path: Path) -> None:
    result = kinline(tmp_path, "--database-url", "postgresql://postgres@127.0.0.1:1/x", "serve")
    assert_one_error_line(result, "database")


@pytest.mark.spawns
def test_cli_unreachable_database_for_a_command(tmp_path: Path) -> None:
    url = "postgresql://postgres@127.0.0.1:1/x"
    result = kinline(tmp_path, "prison", "add", "GM", "Gaoming", KINLINE_DATABASE_URL=url)
    assert_one_error_line(result, "database")


@pytest.mark.spawns
def test_cli_non_numeric_port_flag(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/k.db"
    result = kinline(tmp_path, "--database-url", db, "serve", "--port", "abc")
    assert_one_error_line(result, "--port", "abc")


@pytest.mark.spawns
def test_cli_non_numeric_port_environment(tmp_path: Path) -> None:
    result = kinline(tmp_path, "serve", KINLINE_PORT="abc", KINLINE_DATABASE_URL="sqlite:///k.db")
    assert_one_error_line(result, "KINLINE_PORT", "abc")


@pytest.mark.spawns
def test_cli_bad_redis_scheme(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/k.db"
    result = kinline(tmp_path, "--database-url", db, "--redis-url", "http://cache", "serve")
    assert_one_error_line(result, "--redis-url", "http")


@pytest.mark.spawns
def test_cli_several_workers_need_redis_and_postgresql(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/k.db"
    result = kinline(tmp_path, "--database-url", db, "serve", "--workers", "2")
    assert_one_error_line(result, "--workers")


@pytest.mark.spawns
def test_cli_flag_wins_over_a_bad_environment_value(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/k.db"
    result = kinline(tmp_path, "--database-url", db, "migrate", KINLINE_DATABASE_URL="mysql://x")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "k.db").exists()
