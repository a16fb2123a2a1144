"""Each team's runs use that team's own keys, never another team's."""

from __future__ import annotations

import os

import pytest
from helpers import PROJECT

from stock_mlops.hooks import TeamCredentialsHook


def _context(env: str):
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(PROJECT)
    return KedroSession.create(project_path=PROJECT, env=env)


@pytest.fixture
def keys(monkeypatch):
    for name in ("ALPACA_API_KEY", "ALPACA_SECRET_KEY", "AWS_ACCESS_KEY_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ALPACA_API_KEY_RED", "red-key")
    monkeypatch.setenv("ALPACA_SECRET_KEY_RED", "red-secret")
    monkeypatch.setenv("ALPACA_API_KEY_BLUE", "blue-key")
    monkeypatch.setenv("ALPACA_SECRET_KEY_BLUE", "blue-secret")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "shared-storage-key")


class _Context:
    def __init__(self, team: str) -> None:
        self.config_loader = {"parameters": {"team": team}}


def test_a_team_gets_its_own_keys_and_the_next_team_never_sees_them(keys):
    hook = TeamCredentialsHook()
    hook.after_context_created(_Context("red"))
    assert os.environ["ALPACA_API_KEY"] == "red-key"
    assert os.environ["ALPACA_SECRET_KEY"] == "red-secret"
    assert os.environ["AWS_ACCESS_KEY_ID"] == "shared-storage-key"  # no red one: the shared one
    hook.after_context_created(_Context("blue"))
    assert os.environ["ALPACA_API_KEY"] == "blue-key"
    hook.after_context_created(_Context("base"))  # a team without keys: none, not blue's
    assert "ALPACA_API_KEY" not in os.environ


@pytest.mark.slow
def test_the_project_registers_the_hook_for_real_runs(keys):
    with _context("red") as session:
        session.load_context()
        assert os.environ["ALPACA_API_KEY"] == "red-key"
    with _context("blue") as session:
        session.load_context()
        assert os.environ["ALPACA_API_KEY"] == "blue-key"
