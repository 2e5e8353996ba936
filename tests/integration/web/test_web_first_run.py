"""First run as a new user meets it: ``tradetrail init`` gives the demo user a random password and prints it
once with the sign-in URL (never a default, never again), and ``tradetrail users set-password`` changes it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tradetrail.services.accounts.users import LoginRefused, check_password_login

BIN = Path(sys.executable).with_name("tradetrail")
PRINTED = re.compile(r"sign in at (http://\S+/login) as demo with the password (\S+)")


def tt(env, *args) -> str:
    proc = subprocess.run([str(BIN), *args], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.once  # what is tested (queues, processes, the CLI) is the same on either backend
def test_init_prints_a_random_password_once_and_set_password_changes_it(app, cli_env):
    first = tt({**cli_env, "TRADETRAIL_PORT": "8123"}, "init")
    url, password = PRINTED.search(first).groups()
    assert url == "http://127.0.0.1:8123/login" and len(password) >= 20
    assert "shown only this once" in first and "tradetrail users set-password demo" in first
    assert check_password_login(app, "demo", password, "test").username == "demo"

    again = tt(cli_env, "init")
    assert "ready: user demo" in again and password not in again  # never printed (nor changed) again
    assert PRINTED.search(again) is None
    assert "sign in at http://127.0.0.1:8000/login as demo (the password is the one the first init printed" in again
    assert "tradetrail users set-password demo" in again
    assert check_password_login(app, "demo", password, "test").username == "demo"

    tt(cli_env, "users", "set-password", "demo", "--password", "a brand new passphrase")
    with pytest.raises(LoginRefused):
        check_password_login(app, "demo", password, "test")
    assert check_password_login(app, "demo", "a brand new passphrase", "test").username == "demo"


@pytest.mark.once  # what is tested (queues, processes, the CLI) is the same on either backend
def test_a_second_install_gets_a_different_password(app, cli_env, tmp_path):
    password = PRINTED.search(tt(cli_env, "init")).group(2)
    with app.Session() as s:  # the same as a fresh database: the demo user without a password
        from sqlalchemy import update

        from tradetrail.db.models import User

        s.execute(update(User).where(User.username == "demo").values(password_hash=None))
        s.commit()
    other = PRINTED.search(tt(cli_env, "init")).group(2)
    assert other != password
