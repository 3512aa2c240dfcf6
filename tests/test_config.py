"""config.py: DATABASE_URL normalisation and validation, secrets in production."""

import warnings

import pytest
from sqlalchemy import create_engine, make_url

from config import Config, ConfigError, DatabaseUrlWarning, normalize_database_url


def connect_args(url: str) -> dict:
    """The keyword arguments SQLAlchemy hands psycopg2.connect() for a normalized URL."""
    engine = create_engine(url)
    try:
        return engine.dialect.create_connect_args(make_url(url))[1]
    finally:
        engine.dispose()


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


@pytest.mark.parametrize(
    ("provider", "url", "expected"),
    [
        (
            "Heroku",
            "postgres://uabc:pdef@ec2-1-2-3-4.compute-1.amazonaws.com:5432/d9x",
            {"host": "ec2-1-2-3-4.compute-1.amazonaws.com", "port": 5432, "dbname": "d9x"},
        ),
        (
            "Render",
            "postgresql://todo_user:pw@dpg-abc123-a.oregon-postgres.render.com/todo_db?sslmode=require",
            {"host": "dpg-abc123-a.oregon-postgres.render.com", "sslmode": "require"},
        ),
        (
            "Railway",
            "postgresql://postgres:pw@postgres.railway.internal:5432/railway",
            {"host": "postgres.railway.internal", "dbname": "railway"},
        ),
        (
            "Supabase pooler",
            "postgres://postgres.abcd:pw@aws-0-eu-central-1.pooler.supabase.com:6543/postgres?sslmode=require",
            {"user": "postgres.abcd", "port": 6543, "sslmode": "require"},
        ),
        (
            "Neon",
            "postgresql://alex:pw@ep-cool-darkness-123456-pooler.us-east-2.aws.neon.tech/dbname"
            "?sslmode=require&channel_binding=require&options=endpoint%3Dep-cool-darkness-123456",
            {
                "host": "ep-cool-darkness-123456-pooler.us-east-2.aws.neon.tech",
                "sslmode": "require",
                "channel_binding": "require",
                "options": "endpoint=ep-cool-darkness-123456",
            },
        ),
        (
            "libpq extras",
            "postgresql://u:pw@h/db?target_session_attrs=read-write&application_name=x&sslrootcert=/ca.pem"
            "&host=h2&host=h3",
            {"target_session_attrs": "read-write", "application_name": "x", "sslrootcert": "/ca.pem"},
        ),
    ],
)
def test_provider_urls_reach_psycopg2_whole(provider, url, expected):
    args = connect_args(normalize_database_url(url))
    assert args["password"] == "pw" or provider == "Heroku"
    assert expected.items() <= args.items(), args


def test_percent_encoded_passwords_survive():
    url = normalize_database_url("postgresql+asyncpg://us%40er:p%40ss%2Fw%3Frd%25%20x@h:6543/db?ssl=true")
    args = connect_args(url)
    assert (args["user"], args["password"], args["sslmode"]) == ("us@er", "p@ss/w?rd% x", "require")


@pytest.mark.parametrize(
    ("ssl", "sslmode"),
    [
        ("require", "require"),
        ("verify-ca", "verify-ca"),
        ("verify-full", "verify-full"),
        ("prefer", "prefer"),
        ("allow", "allow"),
        ("disable", "disable"),
        ("true", "require"),
        ("True", "require"),
        ("false", "disable"),
    ],
)
def test_asyncpg_ssl_becomes_libpq_sslmode(ssl, sslmode):
    args = connect_args(normalize_database_url(f"postgresql+asyncpg://u:p@h/db?ssl={ssl}"))
    assert args["sslmode"] == sslmode
    assert "ssl" not in args


def test_ssl_agreeing_with_sslmode_is_accepted():
    url = normalize_database_url("postgresql+asyncpg://u:p@h/db?ssl=true&sslmode=require")
    assert connect_args(url)["sslmode"] == "require"


def test_asyncpg_tuning_keys_are_dropped_with_one_warning_naming_them():
    url = (
        "postgresql+asyncpg://u:p@h/db?ssl=require&prepared_statement_cache_size=0"
        "&statement_cache_size=0&command_timeout=30"
    )
    with pytest.warns(DatabaseUrlWarning) as caught:
        args = connect_args(normalize_database_url(url))
    assert len(caught) == 1
    message = str(caught[0].message)
    for key in ("prepared_statement_cache_size", "statement_cache_size", "command_timeout"):
        assert key in message
        assert key not in args
    assert args["sslmode"] == "require"


def test_a_libpq_only_url_warns_about_nothing():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        normalize_database_url("postgresql://u:p@h/db?sslmode=require&connect_timeout=3")


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("ssl=maybe", "ssl=maybe"),
        ("ssl=1", "ssl=1"),
        ("ssl=require&sslmode=disable", "ssl and sslmode disagree"),
        ("ssl=false&sslmode=require", "ssl and sslmode disagree"),
        ("ssl=require&ssl=disable", "ssl and sslmode disagree"),
        ("pgbouncer=true", "parameter pgbouncer is"),
        ("sslmode=require&search_path=app", "parameter search_path is"),
        ("colour=blue&flavour=mint", "parameters colour, flavour are"),
    ],
)
def test_bad_query_keys_stop_start_up_naming_them(query, named):
    with pytest.raises(ConfigError, match=named) as raised:
        normalize_database_url(f"postgresql+asyncpg://u:secret-pw@h/db?{query}")
    message = str(raised.value)
    assert "\n" not in message
    assert "secret-pw" not in message


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (None, "DATABASE_URL is not set"),
        ("", "DATABASE_URL is not set"),
        ("sqlite:///app.db", "SQLite"),
        ("sqlite+pysqlite:///:memory:", "SQLite"),
        ("mysql://u:p@h/db", "not PostgreSQL"),
        ("just-a-path", "not a URL"),
        ("postgresql://u:p@h:port/db", "not a URL"),
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
