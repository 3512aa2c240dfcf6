"""config.py: DATABASE_URL normalisation and validation, secrets in production."""

import pytest

from config import Config, ConfigError, normalize_database_url


@pytest.mark.parametrize(
    "url",
    [
        "postgres://u:p@db.example.com/app",
        "postgresql://u:p@db.example.com/app",
        "postgresql+psycopg2://u:p@db.example.com/app",
        "postgresql+asyncpg://u:p@db.example.com/app",
        "POSTGRESQL://u:p@db.example.com/app",
    ],
)
def test_every_postgres_form_is_driven_by_psycopg2(url):
    assert normalize_database_url(url) == "postgresql+psycopg2://u:p@db.example.com/app"


def test_libpq_parameters_pass_through():
    url = "postgresql://u:p@ep-x-pooler.neon.tech/app?sslmode=require&channel_binding=require"
    assert normalize_database_url(url).endswith("/app?sslmode=require&channel_binding=require")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (None, "DATABASE_URL is not set"),
        ("", "DATABASE_URL is not set"),
        ("sqlite:///app.db", "SQLite"),
        ("sqlite+pysqlite:///:memory:", "SQLite"),
        ("mysql://u:p@h/db", "not PostgreSQL"),
        ("just-a-path", "not a URL"),
    ],
)
def test_bad_database_urls_are_refused_by_name(url, message):
    with pytest.raises(ConfigError, match=message):
        normalize_database_url(url)


@pytest.fixture
def production_env(monkeypatch):
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@localhost/app")
    monkeypatch.setenv("SECRET_KEY", "s" * 32)
    monkeypatch.setenv("JWT_SECRET_KEY", "j" * 32)


def test_production_config_reads_pool_settings(production_env, monkeypatch):
    monkeypatch.setenv("DB_POOL_SIZE", "3")
    monkeypatch.setenv("DB_CONNECT_TIMEOUT", "7")
    options = Config().SQLALCHEMY_ENGINE_OPTIONS
    assert options["pool_pre_ping"] is True
    assert (options["pool_size"], options["max_overflow"], options["pool_recycle"]) == (3, 10, 3600)
    assert options["connect_args"]["connect_timeout"] == 7


@pytest.mark.parametrize("name", ["SECRET_KEY", "JWT_SECRET_KEY"])
def test_production_requires_each_secret(production_env, monkeypatch, name):
    monkeypatch.delenv(name)
    with pytest.raises(ConfigError, match=f"{name} is not set"):
        Config()
    monkeypatch.setenv(name, "too-short")
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        Config()


@pytest.mark.parametrize(("name", "value"), [("DB_POOL_SIZE", "many"), ("APP_ENV", "staging")])
def test_malformed_settings_are_named(production_env, monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        Config()
