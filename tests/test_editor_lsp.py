"""What an editor shows: the real yaml-language-server (npm), spoken to over LSP on stdio, reads the shipped
schema and flags what the CLI would refuse; a correct config gets no diagnostic."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from trainer.schema import SCHEMA_FILE

ROOT = Path(__file__).resolve().parents[1]
SERVER = shutil.which("yaml-language-server")
pytestmark = pytest.mark.skipif(
    SERVER is None, reason="yaml-language-server missing: npm install -g yaml-language-server"
)
GOOD = "data:\n  dataset: mnist\nmodel:\n  name: cnn\noptimizer:\n  name: adamw\n  lr: 0.001\n  weight_decay: 0.01\n"


class Server:
    def __init__(self) -> None:
        self.process = subprocess.Popen([SERVER, "--stdio"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.next_id = 0

    def send(self, method: str, params: dict, request: bool = False) -> None:
        message = {"jsonrpc": "2.0", "method": method, "params": params}
        if request:
            self.next_id += 1
            message["id"] = self.next_id
        body = json.dumps(message).encode()
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.process.stdin.flush()

    def read(self) -> dict:
        length = 0
        while (line := self.process.stdout.readline().strip()) != b"":
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        return json.loads(self.process.stdout.read(length))

    def diagnostics(self, uri: str) -> list[dict]:
        """Read messages until the server publishes the diagnostics of `uri` (answering its requests on the way)."""
        while True:
            message = self.read()
            if "id" in message and "method" in message:  # a request of the server's (configuration, ...)
                body = json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": [None]}).encode()
                self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
                self.process.stdin.flush()
            elif message.get("method") == "textDocument/publishDiagnostics" and message["params"]["uri"] == uri:
                return message["params"]["diagnostics"]


@pytest.fixture(scope="module")
def server():
    found = Server()
    found.send("initialize", {"processId": None, "rootUri": ROOT.as_uri(), "capabilities": {}}, request=True)
    while "result" not in found.read():
        pass
    found.send("initialized", {})
    schema = (ROOT / "configs" / SCHEMA_FILE).as_uri()
    found.send(
        "workspace/didChangeConfiguration", {"settings": {"yaml": {"validate": True, "schemas": {schema: "*.yaml"}}}}
    )
    yield found
    found.process.kill()
    found.process.wait()


def messages(server, text: str, name: str) -> list[str]:
    uri = f"file:///tmp/leaptrain-lsp/{name}.yaml"
    text = f"# yaml-language-server: $schema={(ROOT / 'configs' / SCHEMA_FILE).as_uri()}\n" + text  # as configs do
    server.send(
        "textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "yaml", "version": 1, "text": text}}
    )
    return [d["message"] for d in server.diagnostics(uri)]


def test_a_correct_config_is_clean(server):
    assert messages(server, GOOD, "good") == []


def test_a_misspelled_optimizer_name_is_flagged(server):
    found = messages(server, GOOD.replace("name: adamw", "name: adamm"), "optimizer_name")
    assert found and any("adamw" in m for m in found), found


def test_a_misspelled_optimizer_argument_is_flagged(server):
    found = messages(server, GOOD.replace("weight_decay", "weight_decy"), "optimizer_argument")
    assert any("weight_decy" in m for m in found), found


def test_a_wrong_dataset_lists_every_choice(server):
    found = messages(server, GOOD.replace("dataset: mnist", "dataset: mnistt"), "dataset")
    text = " ".join(found)
    for dataset in ("mnist", "fashion_mnist", "cifar10", "cifar100", "image_folder", "csv", "synthetic"):
        assert dataset in text, found


def test_a_missing_target_is_flagged(server):
    found = messages(server, "data:\n  dataset: csv\n  path: t.csv\nmodel: mlp\n", "target")
    assert any("target" in m for m in found), found


def test_a_misspelled_loss_scheduler_and_model_name_are_flagged(server):
    for name, text in {
        "loss": GOOD + "loss: cross_entropyy\n",
        "scheduler": GOOD + "scheduler: cosinee\n",
        "model": GOOD.replace("name: cnn", "name: resnet1888"),
    }.items():
        assert messages(server, text, name), name
    assert messages(server, GOOD + "loss: my_loss.py:focal\nscheduler: one_cycle\n", "references") == []
