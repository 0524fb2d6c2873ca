"""A config's mistakes in names and arguments are reported in full without importing torch, from a catalog of
torch's signatures made once per torch version (trainer/components/catalog.py)."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
import torchvision

from trainer.components.catalog import build_catalog, cache_file, load_catalog
from trainer.components.resolve import (
    check_reference,
    definition_in_file,
    load_reference,
    signature_in_file,
    signature_of,
)
from trainer.errors import ConfigError
from trainer.run import check_components
from trainer.validation import validate_config

# A child process that runs the command line and says whether torch was imported on the way.
CHILD = (
    "import sys; from trainer.cli import main; code = main(sys.argv[1:]); "
    "print('torch imported:', 'torch' in sys.modules); sys.exit(code)"
)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty catalog folder of this test's own."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("LEAPTRAIN_CACHE_DIR", str(folder))
    return folder


def run_child(tmp_path, text: str) -> tuple[int, str, bool]:
    (tmp_path / "config.yaml").write_text(textwrap.dedent(text))
    done = subprocess.run(
        [sys.executable, "-c", CHILD, "config.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    return done.returncode, done.stderr, "torch imported: True" in done.stdout


MISTAKES = {
    "optimizer name and a schema key": (
        """
        data: {dataset: synthetic, batch_sise: 32}
        model: {name: mlp}
        optimizer: {name: adamww}
        """,
        [
            "config.yaml:2: data.batch_sise: unknown key (did you mean 'batch_size'?)",
            "config.yaml:4: optimizer.name: unknown optimizer 'adamww' (did you mean 'adamw'?)",
        ],
    ),
    "loss, scheduler and model names": (
        """
        data: {dataset: synthetic}
        model: {name: resnet81}
        loss: cross_entropi
        scheduler: {name: one_cylce}
        """,
        [
            "config.yaml:3: model.name: unknown model 'resnet81' (did you mean 'resnet18'?)",
            "config.yaml:4: loss.name: unknown loss 'cross_entropi' (did you mean 'cross_entropy'?)",
            "config.yaml:5: scheduler.name: unknown scheduler 'one_cylce' (did you mean 'one_cycle'?)",
        ],
    ),
    "arguments of each component": (
        """
        data: {dataset: synthetic}
        model: {name: resnet18, zero_init_residul: true}
        loss: {name: cross_entropy, label_smothing: 0.1}
        optimizer: {name: adamw, weight_decy: 0.1}
        scheduler: {name: cosine, T_maxx: 3}
        """,
        [
            "model.zero_init_residul: ResNet has no argument 'zero_init_residul' (did you mean 'zero_init_residual'?)",
            "loss.label_smothing: CrossEntropyLoss has no argument 'label_smothing' (did you mean 'label_smoothing'?)",
            "optimizer.weight_decy: AdamW has no argument 'weight_decy' (did you mean 'weight_decay'?)",
            "scheduler.T_maxx: CosineAnnealingLR has no argument 'T_maxx' (did you mean 'T_max'?)",
        ],
    ),
    "data set name": (
        """
        data: {dataset: mnsit}
        model: {name: cnn}
        optimizer: {name: sgdd}
        """,
        ["data.dataset: 'mnsit' is not one of the choices (did you mean 'mnist'?)", "optimizer.name: unknown"],
    ),
    "a number that makes no sense": (
        """
        data: {dataset: synthetic}
        model: {name: mlp}
        optimizer: {name: adam, betas: [0.9, 1.5]}
        """,
        ["config.yaml:4: optimizer.betas:"],
    ),
    "a class missing from the learner's file": (
        """
        data: {dataset: synthetic}
        model: {name: net.py:Nett}
        """,
        ["model.name: 'net.py' has no 'Nett' (did you mean 'Net'?)"],
    ),
}

NET = """
import torch
from torch import nn

open("imported", "w").close()  # leaves a trace when the file runs


class Net(nn.Module):
    def __init__(self, num_classes, width=8):
        super().__init__()
        self.layer = nn.Linear(2, num_classes)
"""


@pytest.mark.parametrize("mistake", MISTAKES, ids=list(MISTAKES))
def test_mistakes_in_names_are_all_reported_without_importing_torch(tmp_path, cache, mistake):
    load_catalog()  # made here, as the first run would
    (tmp_path / "net.py").write_text(NET)
    text, expected = MISTAKES[mistake]
    code, err, imported_torch = run_child(tmp_path, text)
    assert code == 2, err
    for line in expected:
        assert line in err
    assert "Traceback" not in err
    assert not imported_torch
    assert not (tmp_path / "imported").exists()  # the learner's file imports torch: it is not run


def test_a_config_whose_names_pass_goes_on_to_the_checks_that_need_torch(tmp_path, cache):
    load_catalog()
    code, err, imported_torch = run_child(
        tmp_path,
        """
        data: {dataset: synthetic}
        model: {name: mlp}
        optimizer: {name: sgd, nesterov: true}
        """,
    )
    assert code == 2 and "optimizer: torch rejects these arguments: Nesterov momentum requires a momentum" in err
    assert imported_torch  # only torch knows this rule: it is asked once the names pass


def test_the_first_run_makes_the_catalog_and_still_reports_everything(tmp_path, cache):
    code, err, imported_torch = run_child(tmp_path, MISTAKES["optimizer name and a schema key"][0])
    assert code == 2 and "unknown optimizer 'adamww'" in err and "data.batch_sise" in err
    assert imported_torch  # once, to make the catalog
    assert cache_file().is_file()
    code, err, imported_torch = run_child(tmp_path, MISTAKES["optimizer name and a schema key"][0])
    assert code == 2 and "unknown optimizer 'adamww'" in err and not imported_torch


def test_the_catalog_is_made_when_a_run_imports_torch_anyway(cache):
    assert not cache_file().exists()
    check_components(validate_config({"data": {"dataset": "synthetic"}, "model": {"name": "mlp"}}))
    assert cache_file().is_file()


@pytest.mark.parametrize(
    "damage",
    [
        "{ not json",
        "",
        '{"stamp": {"format": 1, "torch": "1.0", "torchvision": "0.1", "code": "x"}, "optimizers": {}}',
        "the right versions, but damaged",
    ],
)
def test_a_stale_or_damaged_catalog_is_made_again(cache, damage):
    good = build_catalog()
    path = cache_file()
    path.parent.mkdir(parents=True)
    if damage.startswith("the right versions"):
        load_catalog()
        data = json.loads(path.read_text())
        del data["optimizers"]["AdamW"], data["losses"]
        damage = json.dumps(data)
    path.write_text(damage)
    assert load_catalog() == good
    assert json.loads(path.read_text())["optimizers"]["AdamW"]["name"] == "AdamW"  # written again, whole
    assert load_catalog() == good


def test_the_catalog_says_what_torch_says(cache):
    load_catalog()
    catalog = load_catalog()  # read back from its file
    torch_version, _, torchvision_version = cache_file().stem.removeprefix("catalog-torch").partition("-tv")
    assert torch.__version__.startswith(torch_version) and torchvision.__version__.startswith(torchvision_version)

    def same(signature, cls) -> None:
        parameters = inspect.signature(cls).parameters.values()
        named = [p for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        assert signature.name == cls.__name__
        assert list(signature.args) == [p.name for p in named]
        assert list(signature.required) == [p.name for p in named if p.default is p.empty]
        assert signature.takes_any == any(p.kind == p.VAR_KEYWORD for p in parameters)

    optimizers = {
        n: c for n, c in vars(torch.optim).items() if isinstance(c, type) and issubclass(c, torch.optim.Optimizer)
    }
    assert set(catalog.optimizers) == set(optimizers) - {"Optimizer"}
    for name, signature in catalog.optimizers.items():
        same(signature, optimizers[name])
    losses = {n: c for n, c in vars(torch.nn).items() if n.endswith("Loss") and isinstance(c, type)}
    assert set(catalog.losses) == set(losses)
    for name, signature in catalog.losses.items():
        same(signature, losses[name])
    for name, signature in catalog.schedulers.items():
        same(signature, getattr(torch.optim.lr_scheduler, name))
    assert {"StepLR", "OneCycleLR", "CosineAnnealingLR", "ReduceLROnPlateau"} <= set(catalog.schedulers)
    assert list(catalog.models) == torchvision.models.list_models(module=torchvision.models)
    same(catalog.models["resnet18"], torchvision.models.ResNet)
    same(catalog.models["vit_b_16"], torchvision.models.VisionTransformer)


@pytest.mark.parametrize(
    "section",
    [
        {"optimizer": {"name": "adamww"}},
        {"optimizer": {"name": "SGD", "momentun": 0.9}},
        {"optimizer": {"name": "AdamW", "lr": 0.1, "params": []}},
        {"scheduler": {"name": "step", "step_sise": 2}},
        {"scheduler": {"name": "none", "gamma": 0.5}},
        {"scheduler": {"name": "MultiStepLR"}},  # its milestones are required
        {"loss": {"name": "huber", "delt": 1.0}},
        {"loss": {"name": "kl_divv"}},
        {"loss": {"name": "CrossEntropyLoss", "ignore_indx": 1}},
        {"model": {"name": "vit_b_16", "image_sise": 32}},
        {"model": {"name": "efficientnet_b9"}},
    ],
    ids=str,
)
def test_the_quick_check_says_what_the_check_with_torch_says(cache, section):
    from trainer.components import losses, models, optim

    cfg = validate_config({"data": {"dataset": "synthetic"}, "model": {"name": "mlp"}, **section})
    catalog = load_catalog()
    quick = [
        *models.check_model_names(cfg.model, catalog.models),
        *losses.check_loss_names(cfg.loss, catalog.losses),
        *optim.check_optimizer_names(cfg.optimizer, catalog.optimizers),
        *optim.check_scheduler_names(cfg.scheduler, catalog.schedulers),
    ]
    full = [
        *models.check_model(cfg.model),
        *losses.check_loss(cfg.loss),
        *optim.check_optimizer(cfg.optimizer),
        *optim.check_scheduler(cfg.scheduler),
    ]
    assert quick and quick == full


def test_the_modules_that_check_names_do_not_import_torch():
    code = "import sys, trainer.cli, trainer.components.catalog; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr


def test_a_cache_folder_that_cannot_be_written_still_checks(tmp_path, monkeypatch):
    (tmp_path / "a_file").write_text("")
    monkeypatch.setenv("LEAPTRAIN_CACHE_DIR", str(tmp_path / "a_file"))
    assert "AdamW" in load_catalog().optimizers


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("class Net:\n    pass\n", []),
        ("from torch.nn import *\n", []),  # names that cannot be read off: left to the import
        ("import sys\nif sys.platform:\n    Net = 1\n", []),
        ("for Net in [1]:\n    pass\n", []),
        ("class Nett:\n    pass\n", ["'net.py' has no 'Net' (did you mean 'Nett'?)"]),
        ("class Net(\n", ["net.py:1: Python cannot read this line"]),
    ],
)
def test_the_learners_file_is_read_without_running_it(tmp_path, monkeypatch, source, found):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.py").write_text(source)
    problems = check_reference("net.py:Net", "model.name")
    assert [p.key for p in problems] == ["model.name"] * len(found)
    for problem, text in zip(problems, found, strict=True):
        assert text in problem.message


@pytest.mark.parametrize(
    "source",
    [
        "class Net:\n    def __init__(self, num_classes, width=8, *, depth, scale=1.0, **extra):\n        pass\n",
        "class Net(object):\n    def __init__(self, /, a, b=2):\n        pass\n",
        "def Net(logits, targets, gamma=2.0, *rest, smooth):\n    pass\n",
        "def Net(logits, /, targets, weight=None):\n    pass\n",
    ],
)
def test_arguments_read_off_the_file_are_the_ones_python_sees_when_it_runs(tmp_path, monkeypatch, source):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.py").write_text("import math\n\n" + source)
    node = definition_in_file("net.py:Net")
    assert node is not None
    assert signature_in_file(node) == signature_of(load_reference("net.py:Net", "model.name"))


@pytest.mark.parametrize(
    "source",
    [
        "class Base:\n    def __init__(self, width):\n        pass\n\n\nclass Net(Base):\n    pass\n",  # inherited
        "import functools\n\n\n@functools.cache\ndef Net(width):\n    pass\n",  # a decorator may change it
        "def Net(width):\n    pass\n\n\nNet = dict\n",  # bound twice
        "import sys\nif sys.platform:\n    def Net(a):\n        pass\n",  # not at the top level
    ],
)
def test_arguments_are_left_to_the_import_when_the_file_does_not_say_them_surely(tmp_path, monkeypatch, source):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.py").write_text(source)
    assert definition_in_file("net.py:Net") is None


def test_arguments_of_the_learners_model_and_loss_are_checked_without_running_their_files(tmp_path, cache):
    load_catalog()
    (tmp_path / "net.py").write_text(NET)
    (tmp_path / "focal.py").write_text(
        "import torch\nopen('imported', 'w').close()\n\n\ndef focal(logits, targets, gamma=2.0):\n    return 0\n"
    )
    code, err, imported_torch = run_child(
        tmp_path,
        """
        data: {dataset: synthetic}
        model: {name: net.py:Net, widht: 4}
        loss: {name: focal.py:focal, gama: 1}
        """,
    )
    assert code == 2
    assert "config.yaml:3: model.widht: Net has no argument 'widht' (did you mean 'width'?)" in err
    assert "config.yaml:4: loss.gama: focal has no argument 'gama' (did you mean 'gamma'?)" in err
    assert not imported_torch and not (tmp_path / "imported").exists()


def test_a_missing_file_is_named_before_anything_is_imported(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    [problem] = check_reference("models/nte.py:Net", "model.name")
    assert "the file 'models/nte.py' does not exist" in problem.message and "Try:" in problem.message


def test_tests_never_touch_the_real_cache():
    assert os.environ["LEAPTRAIN_CACHE_DIR"] != ""
    assert not str(cache_file()).startswith(os.path.expanduser("~/.cache"))


def test_the_catalog_is_read_once_per_cache_folder(tmp_path, monkeypatch, cache):
    from trainer.components import catalog as catalog_module

    load_catalog()  # made and written
    first = load_catalog()  # read back from its file
    monkeypatch.setattr(catalog_module, "_from_json", lambda *_: pytest.fail("read again"))
    assert load_catalog() is first  # the same file, unchanged: not read again
    monkeypatch.undo()
    monkeypatch.setenv("LEAPTRAIN_CACHE_DIR", str(tmp_path / "elsewhere"))
    assert load_catalog() == first and cache_file().is_file()  # another folder: its own file


def test_checking_one_torchvision_model_without_the_catalog_looks_at_that_model_only(monkeypatch):
    from trainer.components import models

    cfg = validate_config({"data": {"dataset": "synthetic"}, "model": {"name": "vit_b_16", "image_sise": 32}})
    looked_at = []
    model_class = models.model_class
    monkeypatch.setattr(models, "model_class", lambda name: looked_at.append(name) or model_class(name))
    assert [p.key for p in models.check_model(cfg.model)] == ["model.image_sise"]
    assert looked_at == ["vit_b_16"]


def test_the_check_before_building_reads_signatures_from_the_catalog(cache, monkeypatch):
    from trainer.components import losses, models, optim

    load_catalog()
    for module, name in [(optim, "optimizer_signatures"), (optim, "scheduler_signatures"), (losses, "loss_signatures")]:
        monkeypatch.setattr(module, name, lambda: pytest.fail("asked torch for every signature"))
    monkeypatch.setattr(models, "model_class", lambda name: pytest.fail("looked at a torchvision builder"))
    sections = {"data": {"dataset": "synthetic"}, "model": {"name": "resnet18"}, "scheduler": {"name": "step"}}
    check_components(validate_config(sections))
    with pytest.raises(ConfigError, match="unknown optimizer 'adamww'"):
        check_components(validate_config({**sections, "optimizer": {"name": "adamww"}}))


@pytest.mark.parametrize("command", ["sweep", "try"])
def test_a_sweeps_mistake_is_said_once_for_all_its_trials_without_importing_torch(tmp_path, cache, command):
    load_catalog()
    config = "data: {dataset: synthetic}\nmodel: {name: mlp}\noptimizer: {name: adamw, lr: 1.0e-2, weight_decy: 0.1}\n"
    (tmp_path / "config.yaml").write_text(config)
    swept = "optimizer.lr=1e-3,1e-2" if command == "sweep" else "optimizer.lr=x0.3"
    done = subprocess.run(
        [sys.executable, "-c", CHILD, command, "config.yaml", swept],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "torch imported: False" in done.stdout
    assert done.stderr.count("has no argument 'weight_decy'") == 1, done.stderr
    assert "(did you mean 'weight_decay'?)" in done.stderr and "(in all 2 trials)" in done.stderr
