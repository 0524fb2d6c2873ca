"""A real TensorBoard server, started on a free localhost port, serves a run's scalars over its HTTP API."""

from __future__ import annotations

import json
import queue
import socket
import subprocess
import sys
import threading
import urllib.request

import pytest

from tests.conftest import SYNTHETIC


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_tensorboard_serves_the_run_scalars(write_config, run_cli, tmp_path):
    assert run_cli(write_config(SYNTHETIC))[0] == 0
    port = free_port()
    # blocking reload: the server reads every event file before it starts serving, so no waiting is needed
    command = [
        sys.executable,
        "-m",
        "tensorboard.main",
        "--logdir",
        str(tmp_path / "runs"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--load_fast",
        "false",
        "--reload_task",
        "blocking",
        "--reload_interval",
        "0",
    ]
    server = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in server.stderr], daemon=True).start()
    try:
        seen = []
        while not any(f"localhost:{port}" in line or f"127.0.0.1:{port}" in line for line in seen):
            seen.append(lines.get(timeout=60))  # the line TensorBoard prints once it is listening
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/data/plugin/scalars/tags", timeout=30) as response:
            tags = json.load(response)
    finally:
        server.terminate()
        server.wait(timeout=30)
    ((run, run_tags),) = tags.items()
    assert run.startswith("tiny/")
    assert {"train/loss", "val/loss", "val/accuracy", "test/accuracy", "lr"} <= set(run_tags)
