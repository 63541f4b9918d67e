"""``s3://`` catalogs, anonymous as IRSA's bucket is, against a real local S3-compatible server
(moto's server mode over HTTP on 127.0.0.1 — the same protocol s3fs speaks to AWS), and
``https://``-style catalogs from a local web server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sedscale.testing.catalogs import add_sky_positions, write_hats_catalog
from tests.catalog.catalogs import clean_columns

BUCKET = "public-survey"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def _upload(endpoint: str, local: Path, prefix: str) -> None:
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    # public read, as IRSA's bucket is: anonymous clients may list and get
    try:
        client.create_bucket(Bucket=BUCKET, ACL="public-read")
    except client.exceptions.BucketAlreadyOwnedByYou:
        pass
    files = [local] if local.is_file() else [p for p in local.rglob("*") if p.is_file()]
    for path in files:
        key = f"{prefix}/{path.relative_to(local.parent if local.is_file() else local)}"
        client.upload_file(str(path), BUCKET, key, ExtraArgs={"ACL": "public-read"})


def _env(endpoint: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_ENDPOINT_URL": endpoint, "AWS_DEFAULT_REGION": "us-east-1"})
    return env


def _validate(spec: str, env: dict[str, str]) -> dict[str, object]:
    proc = subprocess.run([sys.executable, "-m", "sedscale", "validate", spec, "--json"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result: dict[str, object] = json.loads(proc.stdout)
    return result


def _table(n: int) -> pa.Table:
    return add_sky_positions(pa.table(clean_columns(n, seed=4)), seed=2, radius_deg=1.0)


@pytest.mark.slow
def test_s3_parquet_and_hats_read_anonymously(s3_endpoint: str, tmp_path: Path) -> None:
    flat = tmp_path / "flat.parquet"
    pq.write_table(_table(300), flat)
    _upload(s3_endpoint, flat, "flat")
    hats_root = write_hats_catalog(_table(600), tmp_path / "hats", catalog_name="cat", pixel_threshold=200)
    _upload(s3_endpoint, hats_root, "hats/cat")
    env = _env(s3_endpoint)

    flat_result = _validate(f"s3://{BUCKET}/flat/flat.parquet", env)
    assert flat_result["rows_total"] == 300 and flat_result["rows_valid"] == 300
    hats_result = _validate(f"s3://{BUCKET}/hats/cat", env)
    assert hats_result["rows_total"] == 600 and hats_result["rows_valid"] == 600
    assert all(str(f).startswith(f"s3://{BUCKET}/hats/cat/dataset/Norder=") for f in hats_result["files"])  # type: ignore[union-attr]


@pytest.mark.slow
def test_s3_missing_object_is_named(s3_endpoint: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "sedscale", "validate", f"s3://{BUCKET}/nothing/here.parquet"],
                          capture_output=True, text=True, env=_env(s3_endpoint), timeout=300)
    assert proc.returncode == 3
    assert f"s3://{BUCKET}/nothing/here.parquet" in proc.stderr and "no such file" in proc.stderr


@pytest.fixture()
def http_root(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A directory served over HTTP by Python's own web server (what an archive's https:// is)."""
    import functools
    import http.server
    import threading

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_https_hats_catalog_is_read_from_its_metadata(http_root: tuple[Path, str]) -> None:
    local, url = http_root
    write_hats_catalog(_table(400), local, catalog_name="cat", pixel_threshold=150)
    result = _validate(f"{url}/cat", dict(os.environ))
    assert result["rows_total"] == 400 and result["rows_valid"] == 400
    assert all(str(f).startswith(f"{url}/cat/dataset/Norder=") for f in result["files"])  # type: ignore[union-attr]
