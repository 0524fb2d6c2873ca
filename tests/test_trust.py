"""Only the learner's own code runs: a reference must name the kind of thing its section needs before anything calls
it, and a run or checkpoint (perhaps someone else's) imports nothing but the learner's files found here."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
import yaml

from trainer.checkpoint import load_checkpoint, save_checkpoint
from trainer.cli import main
from trainer.components.resolve import LOSS, MODEL, load_reference
from trainer.errors import UserError

SYNTHETIC = """
data: {dataset: synthetic, samples: 200, test_samples: 50, classes: 3, batch_size: 32}
model: {name: mlp}
train: {epochs: 1}
"""

NET = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, num_classes, input_shape):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(int(torch.tensor(input_shape).prod()), num_classes))

    def forward(self, x):
        return self.body(x)
"""


def cli(folder: Path, capfd, monkeypatch, *args: object) -> tuple[int, str]:
    """`python -m trainer ARGS` run from `folder`: the exit code and everything printed, read from the file
    descriptors (capfd), so that a traceback written to the real stderr is seen too."""
    monkeypatch.chdir(folder)
    code = main([str(a) for a in args])
    out, err = capfd.readouterr()
    return code, out + err


@pytest.mark.parametrize(
    "override",
    [
        "model={name: 'os:system', command: 'touch pwned'}",
        "model={name: 'subprocess:Popen', args: [touch, pwned]}",
        "loss={name: 'builtins:eval', source: \"open('pwned', 'w')\"}",
        "loss={name: 'os:system', command: 'touch pwned'}",
    ],
)
@pytest.mark.parametrize("command", ["check", "train"])
def test_a_config_naming_a_command_runs_nothing_and_says_what_the_section_needs(
    override, command, tmp_path, capfd, monkeypatch
):
    (tmp_path / "config.yaml").write_text(SYNTHETIC)
    code, said = cli(tmp_path, capfd, monkeypatch, command, "config.yaml", override)
    key = override.partition("=")[0]
    assert code == 2 and not (tmp_path / "pwned").exists()
    assert f"{key}.name" in said and "standard library" in said and "torch.nn.Module" in said
    assert "Try:" in said and "Traceback" not in said


# Names that Python can import, of the wrong kind for their section: each would run code if it were called.
WRONG_KINDS = [
    ("model", "torch:save", "is a function"),
    ("model", "torch.utils.data:DataLoader", "is the class torch.utils.data.dataloader.DataLoader"),
    ("model", "net.py:Net", "is a function"),  # a learner's function, read off the file without running it
    ("model", "made.py:Net", "is a function"),  # one the file makes as it runs: seen once imported
    ("model", "made.py:instance", "is an object of type Linear"),
    ("loss", "plain.py:Loss", "is the class Loss, not a torch.nn.Module"),  # a class, but no nn.Module
]


@pytest.mark.parametrize(("section", "reference", "what"), WRONG_KINDS)
def test_a_reference_of_the_wrong_kind_is_refused_before_it_is_called(
    section, reference, what, tmp_path, capfd, monkeypatch
):
    (tmp_path / "config.yaml").write_text(SYNTHETIC)
    (tmp_path / "net.py").write_text("def Net(num_classes):\n    open('called', 'w').close()\n")
    (tmp_path / "made.py").write_text(
        textwrap.dedent(
            """
            from torch import nn


            def make():
                def Net(num_classes):
                    open('called', 'w').close()

                return Net


            Net = make()
            instance = nn.Linear(2, 3)
            """
        )
    )
    (tmp_path / "plain.py").write_text(
        "class Loss:\n    def __init__(self):\n        open('called', 'w').close()\n\n"
        "    def __call__(self, logits, targets):\n        return 0\n"
    )
    code, said = cli(tmp_path, capfd, monkeypatch, "train", "config.yaml", f"{section}.name={reference}")
    kind = MODEL if section == "model" else LOSS
    assert code == 2 and not (tmp_path / "called").exists()
    assert f"{section}.name: '{reference}' {what}" in said
    assert kind.needs in said and "Try:" in said and "Traceback" not in said


def test_the_standard_library_is_refused_before_anything_is_imported(monkeypatch):
    monkeypatch.delitem(__import__("sys").modules, "antigravity", raising=False)
    with pytest.raises(UserError, match="standard library") as refused:
        load_reference("antigravity:fly", "model.name", MODEL)  # importing it would open a web browser
    assert refused.value.key == "model.name" and "antigravity" not in __import__("sys").modules


def test_the_learners_own_model_and_loss_are_accepted(tmp_path, capfd, monkeypatch):
    (tmp_path / "config.yaml").write_text(SYNTHETIC)
    (tmp_path / "net.py").write_text(NET)
    (tmp_path / "code.py").write_text(NET)  # a file named like a module of the standard library is still the learner's
    code, said = cli(tmp_path, capfd, monkeypatch, "check", "config.yaml", "model.name=code.py:Net")
    assert code == 0, said
    (tmp_path / "my_loss.py").write_text(
        "import torch.nn.functional as F\n\n\ndef ce(logits, targets):\n    return F.cross_entropy(logits, targets)\n"
    )
    code, said = cli(
        tmp_path, capfd, monkeypatch, "check", "config.yaml", "model.name=net.py:Net", "loss=my_loss.py:ce"
    )
    assert code == 0, said
    code, said = cli(
        tmp_path, capfd, monkeypatch, "check", "config.yaml", "model.name=net.py:Net", "loss=torch.nn:MSELoss"
    )
    assert "loss.name" not in said  # a loss module of a package, named by the user's own config


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A learner's folder: net.py, tiny MNIST-like images, and a run of one epoch that used net.py:Net."""
    from conftest import make_fake_mnist

    folder = tmp_path_factory.mktemp("learner")
    make_fake_mnist(folder / "data", train=64, test=32)
    (folder / "net.py").write_text(NET)
    (folder / "config.yaml").write_text(
        "data: {dataset: mnist, root: data, batch_size: 32, val_split: 0.25}\nmodel: {name: net.py:Net}\n"
        "train: {epochs: 1}\n"
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        assert main(["train", "config.yaml"]) == 0
    return folder


def learners_folder(trained: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the learner's folder (so each test may edit its run) and its run folder, relative to it."""
    folder = tmp_path / "learner"
    shutil.copytree(trained, folder)
    (run,) = (folder / "runs" / "config").iterdir()
    (folder / "digit.png").write_bytes(make_png())
    return folder, run.relative_to(folder)


def make_png() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (28, 28), 0).save(buffer, format="PNG")
    return buffer.getvalue()


def name_in_saved_config(run: Path, reference: str, **args: object) -> None:
    """What someone could hand over: the run's checkpoints (still passing weights_only) and its config.yaml, with
    model.name edited."""
    for name in ("best.pt", "last.pt"):
        path = run / "checkpoints" / name
        checkpoint = load_checkpoint(path)
        checkpoint["config"]["model"] = {"name": reference, **args}
        path.unlink()  # best.pt may share its data with last.pt
        save_checkpoint(path, checkpoint)
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["model"] = {"name": reference, **args}
    (run / "config.yaml").write_text(yaml.safe_dump(config))


def commands(run: Path) -> dict[str, list[object]]:
    return {
        "eval": ["eval", run],
        "predict": ["predict", run, "digit.png"],
        "resume": ["resume", run, "train.epochs=2"],
    }


HOSTILE = [
    ("os:system", {"command": "touch pwned"}),
    ("subprocess:Popen", {"args": ["touch", "pwned"]}),
]


@pytest.mark.parametrize(("reference", "args"), HOSTILE)
@pytest.mark.parametrize("command", ["eval", "predict", "resume"])
def test_a_checkpoint_whose_config_names_a_command_runs_nothing(
    reference, args, command, trained, tmp_path, capfd, monkeypatch
):
    folder, run = learners_folder(trained, tmp_path)
    name_in_saved_config(folder / run, reference, **args)
    code, said = cli(folder, capfd, monkeypatch, *commands(run)[command])
    assert code == 2 and not (folder / "pwned").exists()
    assert "model.name" in said and "standard library" in said and "torch.nn.Module" in said
    assert "importing" not in said and "Traceback" not in said


@pytest.mark.parametrize("command", ["eval", "predict", "resume"])
def test_a_package_named_by_a_checkpoint_is_not_imported_unless_the_user_allows_it(
    command, trained, tmp_path, capfd, monkeypatch
):
    folder, run = learners_folder(trained, tmp_path)
    name = f"shared_nets_{command}"  # a package installed, say, but not the user's choice for this run
    (tmp_path / "site" / name).mkdir(parents=True)
    (tmp_path / "site" / name / "__init__.py").write_text("open('imported', 'w').close()\n" + NET)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    name_in_saved_config(folder / run, f"{name}:Net")
    code, said = cli(folder, capfd, monkeypatch, *commands(run)[command])
    assert code == 2 and not (folder / "imported").exists()
    assert f"model.name: the run's config names the package module '{name}'" in said
    allow = f"LEAPTRAIN_ALLOW_IMPORT={name}" if command == "predict" else f"model.name={name}:Net"
    assert f"Try: if you trust '{name}', allow it yourself: " in said and allow in said
    # Typed by the user, it is the user's own choice.
    if command == "predict":
        monkeypatch.setenv("LEAPTRAIN_ALLOW_IMPORT", name)
        code, said = cli(folder, capfd, monkeypatch, *commands(run)[command])
    else:
        code, said = cli(folder, capfd, monkeypatch, *commands(run)[command], f"model.name={name}:Net")
    assert code == 0, said
    assert (folder / "imported").exists() and "note: importing" not in said


@pytest.mark.parametrize("command", ["eval", "predict", "resume"])
def test_the_learners_own_file_beside_the_run_is_imported_and_named(command, trained, tmp_path, capfd, monkeypatch):
    folder, run = learners_folder(trained, tmp_path)
    code, said = cli(folder, capfd, monkeypatch, *commands(run)[command])
    assert code == 0, said
    assert "note: importing net.py (named by the run's config: model.name)" in said


def test_a_file_outside_the_current_folder_is_not_imported(trained, tmp_path, capfd, monkeypatch):
    folder, run = learners_folder(trained, tmp_path)
    elsewhere = tmp_path / "elsewhere.py"
    elsewhere.write_text("open('imported', 'w').close()\n" + NET)
    for reference in (f"{elsewhere}:Net", "../elsewhere.py:Net"):
        name_in_saved_config(folder / run, reference)
        code, said = cli(folder, capfd, monkeypatch, "eval", run)
        assert code == 2 and not (folder / "imported").exists() and not (tmp_path / "imported").exists()
        assert "outside the current folder" in said and f"model.name={reference}" in said


def test_a_run_evaluated_from_another_folder_says_where_its_file_is(trained, tmp_path, capfd, monkeypatch):
    folder, run = learners_folder(trained, tmp_path)
    code, said = cli(tmp_path, capfd, monkeypatch, "eval", folder / run)
    assert code == 2 and "'net.py', which is not in the current folder" in said and f"cd {folder}" in said


def test_a_sweep_folder_whose_config_names_a_command_runs_nothing_on_resume(tmp_path, capfd, monkeypatch):
    import json

    (tmp_path / "config.yaml").write_text(SYNTHETIC)
    code, _ = cli(tmp_path, capfd, monkeypatch, "sweep", "config.yaml", "optimizer.lr=1e-2,2e-2")
    assert code == 0
    (sweep,) = (tmp_path / "runs" / "config").glob("sweep-*")
    plan = json.loads((sweep / "sweep.json").read_text())
    plan["base"]["model"] = {"name": "os:system", "command": "touch pwned"}
    (sweep / "sweep.json").write_text(json.dumps(plan))
    (sweep / "trial-001" / "summary.json").unlink()  # one trial left to train
    code, said = cli(tmp_path, capfd, monkeypatch, "sweep", "--resume", sweep)
    assert code == 2 and not (tmp_path / "pwned").exists()
    assert "model.name" in said and "standard library" in said and "Traceback" not in said
