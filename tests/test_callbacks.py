"""The Trainer's hooks: callbacks from Python and from YAML, mistakes in them said before training, failures in
them named with their place, and the Trainer's own observers built on the same hooks."""

from __future__ import annotations

import inspect
import json
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional

from tests.conftest import SYNTHETIC
from trainer import Trainer
from trainer.callbacks import HOOKS, Callback, EarlyStopping, StopAt
from trainer.loop import Options

RECORDER = """
import json


class Recorder:
    def __init__(self, path, every=1):
        self.path = path
        with open(path + ".made", "a") as f:  # each object made: a run makes its callbacks once
            f.write("made\\n")

    def on_epoch_end(self, trainer, epoch, metrics):
        with open(self.path, "a") as f:
            f.write(json.dumps({"epoch": epoch, **metrics}) + "\\n")
"""


def with_callbacks(callbacks: str) -> str:
    return SYNTHETIC + textwrap.dedent(callbacks)


def batches(n: int = 4, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    return [(torch.randn(8, 3, generator=generator), torch.randint(0, 3, (8,), generator=generator)) for _ in range(n)]


def quiet_trainer(model: nn.Module, **settings) -> Trainer:
    options = Options(preflight=False, progress=False)
    return Trainer(
        model, nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=0.1), options=options, **settings
    )


def test_a_callback_named_in_yaml_is_called_every_epoch_with_the_metrics(write_config, run_cli, tmp_path):
    (tmp_path / "recorder.py").write_text(RECORDER)
    config = write_config(with_callbacks("callbacks:\n  - {name: recorder.py:Recorder, path: seen.txt}\n"))
    code, _, err = run_cli(config)
    assert code == 0, err
    rows = [json.loads(line) for line in (tmp_path / "seen.txt").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1, 2]
    assert (tmp_path / "seen.txt.made").read_text() == "made\n"  # checked and used as one object, not made twice
    (run_dir,) = (tmp_path / "runs" / "tiny").iterdir()
    logged = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    for row, kept in zip(rows, logged, strict=True):  # the very metrics the run keeps
        assert row["val/loss"] == kept["val/loss"] and row["train/accuracy"] == kept["train/accuracy"]


def test_a_callbacks_arguments_are_checked_against_its_init_with_the_line(write_config, run_cli, tmp_path):
    (tmp_path / "recorder.py").write_text(RECORDER)
    config = write_config(with_callbacks("callbacks:\n  - {name: recorder.py:Recorder, pth: seen.txt}\n"))
    code, _, err = run_cli(config)
    assert code == 2 and "Traceback" not in err
    assert "config.yaml:8: callbacks.0.pth: Recorder has no argument 'pth' (did you mean 'path'?)" in err
    assert "callbacks.0: Recorder needs the argument 'path'" in err
    assert not (tmp_path / "runs").exists()  # said before any run folder is made


def test_a_method_named_almost_like_a_hook_is_refused_with_the_hook_meant(write_config, run_cli, tmp_path):
    source = RECORDER.replace("def on_epoch_end(", "def on_epoch_ends(")
    (tmp_path / "recorder.py").write_text(source)
    config = write_config(with_callbacks("callbacks:\n  - {name: recorder.py:Recorder, path: seen.txt}\n"))
    code, _, err = run_cli(config)
    line = source.splitlines().index("    def on_epoch_ends(self, trainer, epoch, metrics):") + 1
    assert code == 2 and "Traceback" not in err
    assert f"callbacks.0.name: recorder.py:{line}: the callback Recorder has a method on_epoch_ends()" in err
    assert "(did you mean 'on_epoch_end'?)" in err and "Try: rename it on_epoch_end" in err


def test_a_hook_with_the_wrong_arguments_is_refused_with_the_signature_to_write():
    class TooFew:
        def on_step_log(self, trainer, values):
            pass

    with pytest.raises(
        ValueError,
        match=r"on_step_log\(trainer, values\) takes other arguments .* "
        r"def on_step_log\(self, trainer, step, values\)",
    ):
        quiet_trainer(nn.Linear(3, 3), callbacks=[TooFew()])


def test_a_callback_that_raises_stops_the_run_with_its_place_and_hook_and_keeps_the_last_checkpoint(
    write_config, run_cli, tmp_path
):
    source = "class Fails:\n    def on_epoch_end(self, trainer, epoch, metrics):\n"
    source += "        if epoch == 2:\n            raise KeyError('val/acc')\n"
    (tmp_path / "fails.py").write_text(source)
    config = write_config(with_callbacks("callbacks: [fails.py:Fails]\n"))
    code, _, err = run_cli(config)
    (run_dir,) = (tmp_path / "runs" / "tiny").iterdir()
    assert code == 2 and "Traceback" not in err
    assert "fails.py:4: KeyError in the callback Fails.on_epoch_end(): 'val/acc'" in err
    assert f"the last checkpoint is kept: python -m trainer resume {run_dir.relative_to(tmp_path)}" in err
    assert torch.load(run_dir / "checkpoints" / "last.pt", weights_only=False)["state"]["epoch"] == 1


def test_built_in_callbacks_by_name_and_an_unknown_one_with_a_suggestion(write_config, run_cli, tmp_path):
    config = write_config(with_callbacks("callbacks: [{name: stop_at, metric: train/loss, value: 100.0}]\n"))
    code, out, err = run_cli(config, "train.epochs=5")
    assert code == 0, err
    assert "stopped: train/loss reached 100" in out and "epoch 2/5" not in out  # the first epoch reached it
    config = write_config(with_callbacks("callbacks: [{name: stop_at, metric: val/acuracy, value: 0.9}]\n"))
    code, _, err = run_cli(config)
    assert code == 2 and "Traceback" not in err
    assert "stop_at: 'val/acuracy' is not a metric of this run (did you mean 'val/accuracy'?)" in err
    config = write_config(with_callbacks("callbacks: [early_stoping]\n"))
    code, out, err = run_cli(config)
    assert code == 2 and "callbacks.0.name: no callback 'early_stoping' (did you mean 'early_stopping'?)" in err


def test_every_hook_is_called_in_order_with_what_the_contract_says(tmp_path):
    calls = []

    class Spy(Callback):
        def on_fit_start(self, trainer):
            calls.append(("on_fit_start", trainer.state.step))

        def on_step_log(self, trainer, step, values):
            calls.append(("on_step_log", step, sorted(values)))

        def on_epoch_end(self, trainer, epoch, metrics):
            calls.append(("on_epoch_end", epoch, sorted(metrics)))

        def on_warning(self, trainer, text):
            calls.append(("on_warning", text))

        def on_fit_end(self, trainer, metrics):
            calls.append(("on_fit_end", sorted(metrics), trainer.summary["status"]))

    trainer = quiet_trainer(nn.Linear(3, 3), epochs=2, log_every=2, callbacks=[Spy()])
    trainer.warn("look at this")
    trainer.fit(batches(4), batches(2, seed=1), batches(1, seed=2))
    assert calls[0] == ("on_warning", "look at this") and calls[1] == ("on_fit_start", 0)
    assert calls[2] == ("on_step_log", 2, ["lr", "train/accuracy", "train/loss"])
    epoch_metrics = ["lr", "train/accuracy", "train/loss", "val/accuracy", "val/loss"]
    assert calls[4] == ("on_epoch_end", 1, epoch_metrics) and calls[7] == ("on_epoch_end", 2, epoch_metrics)
    assert calls[-1][0] == "on_fit_end" and "test/accuracy" in calls[-1][1] and calls[-1][2] == "finished"
    assert [c[0] for c in calls].count("on_step_log") == 4


def test_a_failed_run_tells_every_callback_and_the_error_is_not_hidden():
    seen = []

    class Closes:
        def on_exception(self, trainer, error):
            seen.append(type(error).__name__)
            raise RuntimeError("closing failed too")

    def broken_loss(outputs, targets):
        raise ZeroDivisionError("in the loss")

    trainer = Trainer(
        nn.Linear(3, 3),
        broken_loss,
        torch.optim.SGD(nn.Linear(3, 3).parameters(), lr=0.1),
        callbacks=[Closes()],
        options=Options(preflight=False, progress=False),
    )
    with pytest.raises(Exception, match=r"ZeroDivisionError|in the loss"):
        trainer.fit(batches(2))
    assert seen == ["UserError"]


def test_early_stopping_and_stop_at_as_python_callbacks():
    flat = quiet_trainer(nn.Linear(3, 3), epochs=6, callbacks=[EarlyStopping(1)])
    flat.optimizer.param_groups[0]["lr"] = 0.0  # nothing moves: the val loss never improves
    flat.fit(batches(2), batches(1, seed=1))
    assert flat.state.epoch == 2 and flat.stop_reason == "early stop: val/loss has not improved for 1 epoch"
    reached = quiet_trainer(nn.Linear(3, 3), epochs=6, callbacks=[StopAt("val/accuracy", 0.0)])
    reached.fit(batches(2), batches(1, seed=1))
    assert reached.state.epoch == 1 and reached.stop_reason == "stopped: val/accuracy reached 0"
    with pytest.raises(ValueError, match="patience counts epochs"):
        EarlyStopping(0)


def test_the_trainer_takes_at_most_14_parameters_and_evaluates_without_an_optimizer():
    parameters = [p for p in inspect.signature(Trainer.__init__).parameters if p != "self"]
    assert len(parameters) <= 14
    model = nn.Linear(3, 3)
    trainer = Trainer(model, nn.CrossEntropyLoss(), device="cpu", options=Options(progress=False))
    metrics = trainer.evaluate(batches(2), "test")
    assert set(metrics) >= {"test/loss", "test/accuracy"}
    with pytest.raises(ValueError, match="fit needs an optimizer"):
        trainer.fit(batches(2))


def test_torchs_class_index_loss_functions_make_a_classification_run():
    for loss in (functional.cross_entropy, functional.nll_loss, nn.CrossEntropyLoss(), nn.NLLLoss()):
        trainer = Trainer(nn.Linear(3, 3), loss, device="cpu")
        assert trainer.classification, loss
    assert not Trainer(nn.Linear(3, 1), functional.mse_loss, device="cpu").classification


def test_options_are_checked_when_made():
    with pytest.raises(ValueError, match="accumulate"):
        Options(accumulate=0)
    with pytest.raises(ValueError, match="grad_clip"):
        Options(grad_clip=0.0)


def test_the_hooks_are_the_documented_ones():
    documented = Path("docs/architecture.md").read_text()
    assert all(f"`{hook}(" in documented for hook in HOOKS)
