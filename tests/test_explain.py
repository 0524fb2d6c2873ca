"""The translator of errors raised in the learner's own code: its fallbacks, the rerun of a failed batch, and the
Trainer's use of it. (The gallery in tests/mistakes/ holds the learner-level cases.)"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from trainer import explain as translator_module
from trainer import torch_errors
from trainer.errors import UserError
from trainer.explain import explain, explain_batch_failure
from trainer.loop import Options, Trainer


def learner_module(tmp_path: Path, source: str, name: str = "net"):
    """Import `source` as the learner's own file (outside the package, so its frames count as theirs)."""
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(source).lstrip())
    spec = importlib.util.spec_from_file_location(f"learner_{name}_{abs(hash(path))}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_an_error_no_rule_knows_still_names_the_line_the_values_and_a_fix(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    net = learner_module(
        tmp_path,
        """
        from torch import nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 2)

            def forward(self, x):
                scale = 0
                return self.fc(x) / (1 // scale)
        """,
    )
    model = net.Net()
    with pytest.raises(ZeroDivisionError) as caught:
        model(torch.randn(3, 4))
    error = explain(caught.value, model=model)
    assert "ZeroDivisionError" in error.message and "net.py:10" in error.message
    assert "return self.fc(x) / (1 // scale)" in error.message  # the learner's line itself
    assert "divisor is zero" in error.fix


def test_a_rule_that_fails_falls_back_to_the_raw_message_and_the_place(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def broken(failure, match):
        raise KeyError("a bug in the translator")

    monkeypatch.setattr(torch_errors, "RULES", [(None, re.compile("shapes cannot be multiplied"), broken)])
    net = learner_module(tmp_path, "def forward(x, w):\n    return x @ w\n")
    with pytest.raises(RuntimeError) as caught:
        net.forward(torch.randn(2, 3), torch.randn(4, 5))
    error = explain(caught.value)
    assert "mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)" in error.message
    assert "net.py:2" in error.message and error.fix


def test_a_rule_must_take_the_failure_and_the_match():
    with pytest.raises(TypeError, match="takes \\(failure, match\\)"):
        torch_errors.rule("anything", lambda text: None)


def test_a_failed_backward_is_traced_to_the_forward_line_and_the_in_place_change(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    net = learner_module(
        tmp_path,
        """
        import torch
        from torch import nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 3)

            def forward(self, x):
                y = torch.sigmoid(self.fc(x))
                y += 1
                return y
        """,
    )
    model, inputs, targets = net.Net(), torch.randn(5, 4), torch.randint(0, 3, (5,))
    with pytest.raises(RuntimeError) as caught:
        nn.functional.cross_entropy(model(inputs), targets).backward()
    error = explain_batch_failure(caught.value, model, nn.CrossEntropyLoss(), inputs, targets)
    assert "net.py:10" in error.message and "net.py:11: y += 1" in error.message
    assert "y = y + 1" in error.fix
    assert all(p.grad is None for p in model.parameters())  # the rerun leaves no gradients behind


def test_a_step_that_fails_after_the_preflight_names_the_layer_and_closes_the_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    net = learner_module(
        tmp_path,
        """
        from torch import nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 8)
                self.norm = nn.BatchNorm1d(8)
                self.out = nn.Linear(8, 2)

            def forward(self, x):
                return self.out(self.norm(self.fc(x)))
        """,
    )
    model = net.Net()
    batches = [(torch.randn(8, 4), torch.randint(0, 2, (8,))), (torch.randn(1, 4), torch.randint(0, 2, (1,)))]
    trainer = Trainer(
        model,
        nn.CrossEntropyLoss(),
        torch.optim.SGD(model.parameters(), lr=0.1),
        epochs=1,
        out_dir=tmp_path / "run",
        options=Options(progress=False),
    )
    with pytest.raises(UserError) as caught:
        trainer.fit(batches)
    assert "layer 'norm' (BatchNorm1d)" in caught.value.message and "[1, 8]" in caught.value.message
    assert "net.py:11" in caught.value.message and caught.value.key == "data.batch_size"
    assert trainer.logger.writer is None  # TensorBoard's writer was closed with the run


def test_loading_the_translator_does_not_load_torch():
    code = "import sys, trainer.explain; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_a_translator_that_fails_itself_still_says_the_error_and_where(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(translator_module, "details", lambda failure: 1 / 0)  # any part of the translation
    net = learner_module(tmp_path, "def forward(x):\n    return x.view(-1, 7)\n")
    with pytest.raises(RuntimeError) as caught:
        net.forward(torch.randn(2, 3))
    error = explain(caught.value)
    assert error.message.startswith("RuntimeError at net.py:2: shape '[-1, 7]' is invalid for input of size 6")
    assert error.fix
