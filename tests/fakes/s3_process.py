"""moto's S3 server as a separate process that can die mid-save and come back with its data.

moto keeps objects in memory, so a killed server would forget everything, which real S3 never
does. Here moto's own request recorder (``MOTO_ENABLE_RECORDING``) appends every request it
receives to a file before handling it; a restarted server replays that file
(``/moto-api/recorder/replay-recording``) and so holds every object written before the crash:
the durable store S3 is. A request that dies with the server before moto received it is not in
the file and is lost, as on S3, where an unacknowledged PUT may or may not have happened.

Run as a script, it serves on ``--port`` and SIGKILLs itself at the ``--nth`` request whose
method is ``--method`` and whose path (``/<bucket>/<key>``) matches ``--path`` (a regular
expression; replayed requests do not count): ``--when before`` dies before moto sees the
request, ``--when after`` once moto has stored it but before the client gets the answer.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "test-access-key",
    "AWS_SECRET_ACCESS_KEY": "test-secret-key",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _dying(app, method: str, path: str, nth: int, when: str):
    pattern = re.compile(path)
    seen = [0]
    lock = threading.Lock()

    replaying = threading.Event()

    def middleware(environ, start_response):
        path_info = environ.get("PATH_INFO", "")
        if path_info.endswith("/moto-api/recorder/replay-recording"):
            # The replayed requests are the stored past: they do not count towards ``nth``.
            replaying.set()
            try:
                return list(app(environ, start_response))
            finally:
                replaying.clear()
        due = False
        if (
            not replaying.is_set()
            and environ.get("REQUEST_METHOD") == method
            and pattern.search(path_info)
        ):
            with lock:
                seen[0] += 1
                due = seen[0] == nth
        if due and when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        answer = app(environ, start_response)
        if due:
            # Let moto finish storing the request, then die before the client hears back.
            body = b"".join(answer)
            os.kill(os.getpid(), signal.SIGKILL)
            return [body]
        return answer

    return middleware


def serve(port: int, method: str, path: str, nth: int, when: str) -> None:
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    app = DomainDispatcherApplication(create_backend_app)
    if method:
        app = _dying(app, method, path, nth, when)
    # Threaded: a replay is the server sending the recorded requests to itself.
    server = make_server("127.0.0.1", port, app, True, request_handler=MotoRequestHandler)
    server.serve_forever()


class S3Process:
    """One S3 endpoint (fixed port) whose server process can be killed and restarted."""

    def __init__(self, folder: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.recording = folder / "s3-requests.jsonl"
        self.log = folder / "s3-server.log"
        self.process: subprocess.Popen | None = None

    def env(self) -> dict[str, str]:
        """The environment of a client of this endpoint (this process or a subprocess)."""
        return {
            **CREDENTIALS,
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "NO_PROXY": "127.0.0.1,localhost",
        }

    def start(self, die_on: tuple[str, str, int, str] | None = None, replay: bool = False) -> None:
        """Starts the server (``die_on``: method, path pattern, nth, before|after), and with
        ``replay`` restores every object the recording holds."""
        command = [sys.executable, __file__, "--port", str(self.port)]
        if die_on:
            method, path, nth, when = die_on
            command += ["--method", method, "--path", path, "--nth", str(nth), "--when", when]
        env = {
            **os.environ,
            "MOTO_ENABLE_RECORDING": "true",
            "MOTO_RECORDER_FILEPATH": str(self.recording),
        }
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command, env=env, stdout=log, stderr=log, start_new_session=True
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the S3 server exited: {self.log.read_text()[-2000:]}")
            try:
                requests.get(f"{self.endpoint}/moto-api/", timeout=2)
                break
            except requests.ConnectionError:
                time.sleep(0.2)
        else:
            raise AssertionError("the S3 server did not start")
        if replay and self.recording.exists():
            url = f"{self.endpoint}/moto-api/recorder/replay-recording"
            requests.post(url, timeout=300).raise_for_status()

    def died(self) -> bool:
        return self.process is not None and self.process.poll() == -signal.SIGKILL

    def kill(self) -> None:
        """SIGKILL the server's process group (no-op when it is already gone)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def restart(self, die_on: tuple[str, str, int, str] | None = None) -> None:
        """A fresh server on the same port holding what was stored before the crash (and, with
        ``die_on``, dying again at the nth such request after the replay)."""
        self.kill()
        self.start(die_on, replay=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--method", default="")
    parser.add_argument("--path", default="")
    parser.add_argument("--nth", type=int, default=1)
    parser.add_argument("--when", choices=("before", "after"), default="before")
    args = parser.parse_args()
    serve(args.port, args.method, args.path, args.nth, args.when)


if __name__ == "__main__":
    main()
