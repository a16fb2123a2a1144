"""A failed run alerts: a log line, and a POST to the webhook of STOCK_MLOPS_ALERT_WEBHOOK_URL."""

from __future__ import annotations

import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import dagster as dg
import pytest

from stock_mlops.orchestration import alerts


class _Webhook(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        length = int(self.headers["Content-Length"])
        _Webhook.received.append(
            {"type": self.headers["Content-Type"], "body": json.loads(self.rfile.read(length))}
        )
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def webhook():
    _Webhook.received = []
    server = HTTPServer(("127.0.0.1", 0), _Webhook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hooks/stock-mlops", _Webhook.received
    server.shutdown()
    server.server_close()


def _failed_run(instance: dg.DagsterInstance):
    @dg.op
    def submit_orders() -> None:
        raise RuntimeError("broker unreachable\nTraceback lines the alert leaves out")

    @dg.job(name="red_daily", tags={"dagster/partition": "2023-07-03"})
    def red_daily() -> None:
        submit_orders()

    result = red_daily.execute_in_process(instance=instance, raise_on_error=False)
    return red_daily, result


def test_a_failed_run_is_logged_and_posted_once(webhook, monkeypatch, caplog):
    url, received = webhook
    monkeypatch.setenv(alerts.WEBHOOK_ENV_VAR, url)
    with dg.instance_for_test() as instance:
        job, result = _failed_run(instance)
        assert not result.success
        context = dg.build_run_status_sensor_context(
            sensor_name="red_run_failure_alert",
            dagster_instance=instance,
            dagster_run=result.dagster_run,
            dagster_event=result.get_run_failure_event(),
        ).for_run_failure()
        with caplog.at_level(logging.ERROR, logger=alerts.__name__):
            alerts.failure_alert("red", [job])(context)

    [posted] = received
    assert posted["type"] == "application/json"
    text = posted["body"]["text"]
    assert text.startswith("[stock-mlops] red_daily failed for session 2023-07-03 (run ")
    assert result.dagster_run.run_id in text
    assert "\n" not in text
    assert [r.getMessage() for r in caplog.records if r.name == alerts.__name__] == [text]


def test_the_sensor_watches_the_location_jobs():
    @dg.op
    def noop() -> None:
        pass

    @dg.job(name="blue_daily")
    def blue_daily() -> None:
        noop()

    sensor = alerts.failure_alert("blue", [blue_daily])
    assert sensor.name == "blue_run_failure_alert"
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING


def test_without_a_webhook_the_alert_is_a_log_line(monkeypatch, caplog):
    monkeypatch.setenv(alerts.WEBHOOK_ENV_VAR, "")  # as a .env copied from .env.example
    with caplog.at_level(logging.ERROR, logger=alerts.__name__):
        assert alerts.post_alert("[stock-mlops] red_daily failed") is False
    assert [r.getMessage() for r in caplog.records] == ["[stock-mlops] red_daily failed"]


def test_an_unreachable_webhook_is_logged_without_its_url_and_never_raises(caplog):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/T000/B000/secret-token"
    with caplog.at_level(logging.ERROR, logger=alerts.__name__):
        assert alerts.post_alert("[stock-mlops] red_daily failed", url=url) is False
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == "[stock-mlops] red_daily failed"
    assert "did not accept the alert" in messages[1]
    assert "secret-token" not in " ".join(messages)
