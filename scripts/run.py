"""`make run`: migrate, seed and serve the API under gunicorn.

With DATABASE_URL set (Neon or any PostgreSQL) it uses that database. Without it,
it starts an embedded PostgreSQL (the pgserver wheel) whose data lives in
instance/pgdata, so accounts survive restarts. It never falls back to anything else.
"""

import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

from dotenv import dotenv_values, load_dotenv

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = ROOT / "instance"
BIN = Path(sys.executable).parent


def local_secrets() -> dict[str, str]:
    """Signing keys for the local development server, made once and kept in instance/."""
    path = INSTANCE / "dev-secrets.env"
    if not path.exists():
        path.write_text(
            "".join(f"{name}={secrets.token_hex(32)}\n" for name in ("SECRET_KEY", "JWT_SECRET_KEY"))
        )
        path.chmod(0o600)
    return {k: v for k, v in dotenv_values(path).items() if v}


def main() -> int:
    load_dotenv(ROOT / ".env")
    env = dict(os.environ, FLASK_APP="wsgi")
    env.setdefault("HOST", "127.0.0.1")
    if not env.get("DATABASE_URL"):
        import pgserver

        INSTANCE.mkdir(exist_ok=True)
        print("DATABASE_URL is not set: using the embedded PostgreSQL in instance/pgdata", flush=True)
        server = pgserver.get_server(INSTANCE / "pgdata", cleanup_mode="stop")
        env["DATABASE_URL"] = server.get_uri()
        env["APP_ENV"] = env.get("APP_ENV") or "development"
        for name, value in local_secrets().items():
            # Empty counts as unset (.env.example leaves the keys empty); every gunicorn
            # worker must sign with the same key.
            env[name] = env.get(name) or value

    for command in (["flask", "db", "upgrade"], ["flask", "seed"]):
        if subprocess.run([BIN / command[0], *command[1:]], env=env, cwd=ROOT).returncode:
            return 1
    gunicorn = subprocess.Popen([BIN / "gunicorn", "wsgi:app"], env=env, cwd=ROOT)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda received, _frame: gunicorn.send_signal(received))
    # Returning (rather than exiting on the signal) lets pgserver stop the embedded server.
    return gunicorn.wait()


if __name__ == "__main__":
    sys.exit(main())
