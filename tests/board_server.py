"""A real TensorBoard server for the tests, started on a free localhost port."""

from __future__ import annotations

import contextlib
import queue
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def tensorboard(logdir: Path) -> Iterator[str]:
    """A tensorboard server for `logdir`; yields its address once it listens."""
    port = free_port()
    # blocking reload: the server reads every event file before it starts serving, so no waiting is needed
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--host", "127.0.0.1"]
    command += ["--port", str(port), "--load_fast", "false", "--reload_task", "blocking", "--reload_interval", "0"]
    server = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in server.stderr], daemon=True).start()
    try:
        seen: list[str] = []
        while not any(f"localhost:{port}" in line or f"127.0.0.1:{port}" in line for line in seen):
            seen.append(lines.get(timeout=60))  # the line TensorBoard prints once it is listening
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)
