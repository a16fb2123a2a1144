"""moto's real S3 HTTP server on loopback, reached through s3fs exactly as MinIO would be."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "test-access-key",
    "AWS_SECRET_ACCESS_KEY": "test-secret-key",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@contextmanager
def moto_s3(monkeypatch: pytest.MonkeyPatch, bucket: str | None = None) -> Iterator[str]:
    """Starts moto's threaded server, points the AWS variables at it, yields its endpoint."""
    import boto3
    import s3fs
    from moto.server import ThreadedMotoServer

    # s3fs caches filesystems with the endpoint they were created with: start from none.
    s3fs.S3FileSystem.clear_instance_cache()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    if bucket:
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(
            Bucket=bucket
        )
    try:
        yield endpoint
    finally:
        server.stop()
        s3fs.S3FileSystem.clear_instance_cache()


def env_for(endpoint: str) -> dict[str, str]:
    """The environment a subprocess needs to reach the same server."""
    return {**os.environ, **CREDENTIALS, "AWS_ENDPOINT_URL_S3": endpoint}
