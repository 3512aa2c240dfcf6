"""Every configuration variable is in `.env.example` (with a comment) and in README's table."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# shared/API.md's Configuration table (MAIL_* and SMTP_* spelled out as its Mail section names them).
CONTRACT_VARIABLES = [
    "DATABASE_URL",
    "APP_ENV",
    "SECRET_KEY",
    "JWT_SECRET_KEY",
    "DB_POOL_SIZE",
    "DB_MAX_OVERFLOW",
    "DB_POOL_RECYCLE",
    "DB_POOL_TIMEOUT",
    "DB_CONNECT_TIMEOUT",
    "CORS_ORIGINS",
    "RATELIMIT_STORAGE_URI",
    "RATELIMIT_AUTH",
    "RATELIMIT_ENABLED",
    "MAIL_BACKEND",
    "MAIL_OUTBOX_DIR",
    "MAIL_FROM",
    "SMTP_HOST",
    "SMTP_PORT",
    "SMTP_USERNAME",
    "SMTP_PASSWORD",
    "SMTP_STARTTLS",
    "PASSWORD_RESET_URL",
    "PASSWORD_RESET_TTL",
    "JWT_ACCESS_TTL",
    "JWT_REFRESH_TTL",
    "JWT_LEEWAY",
    "SYNC_RETENTION",
    "METRICS_ENABLED",
]
# How config.py and gunicorn.conf.py read a variable.
_READS = re.compile(r"""(?:env(?:iron)?\.get|_int|_bool)\(\s*["']([A-Z][A-Z0-9_]+)["']""")


def read_variables() -> set[str]:
    sources = (ROOT / "config.py", ROOT / "gunicorn.conf.py")
    return {name for path in sources for name in _READS.findall(path.read_text())} - {"TEST_DATABASE_URL"}


def env_example_blocks() -> dict[str, list[str]]:
    """Each variable of .env.example, with the block of lines (between blank lines) it is in."""
    blocks = {}
    for block in (ROOT / ".env.example").read_text().split("\n\n"):
        lines = block.strip().splitlines()
        for line in lines:
            if match := re.match(r"([A-Z][A-Z0-9_]*)=", line):
                blocks[match.group(1)] = lines
    return blocks


def readme_table_variables() -> set[str]:
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Configuration", 1)[1].split("\n\n")[2]
    return set(re.findall(r"`([A-Z][A-Z0-9_]+)`", "\n".join(row.split("|")[1] for row in table.splitlines())))


def test_the_reader_finds_the_variables():
    assert {"DATABASE_URL", "JWT_LEEWAY", "PORT", "WEB_CONCURRENCY"} <= read_variables()


@pytest.mark.parametrize("name", sorted(set(CONTRACT_VARIABLES) | read_variables()))
def test_each_variable_is_in_env_example_with_a_comment(name):
    blocks = env_example_blocks()
    assert name in blocks, f"{name} missing from .env.example"
    assert blocks[name][0].startswith("#"), f"{name} has no comment in .env.example"


@pytest.mark.parametrize("name", sorted(set(CONTRACT_VARIABLES) | read_variables()))
def test_each_variable_is_in_the_readme_table(name):
    assert name in readme_table_variables()
