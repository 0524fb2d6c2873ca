"""Components by name: short names, torch class names, torchvision models and the user's own code."""

from __future__ import annotations

import pytest
import torch

from trainer.components.losses import build_loss, check_loss
from trainer.components.models import build_model, check_model
from trainer.components.optim import build_optimizer, build_scheduler, check_optimizer, check_scheduler
from trainer.config import LossConfig, OptimizerConfig, OtherModel, SchedulerConfig
from trainer.errors import ConfigError
from trainer.validation import validate_config


def model_config(name: str, **args):
    return validate_config({"data": {"dataset": "synthetic"}, "model": {"name": name, **args}}).model


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("sgd", torch.optim.SGD),
        ("adam", torch.optim.Adam),
        ("adamw", torch.optim.AdamW),
        ("rmsprop", torch.optim.RMSprop),
        ("Adagrad", torch.optim.Adagrad),
        ("nadam", torch.optim.NAdam),
    ],
)
def test_optimizers_by_short_or_class_name(name, cls):
    cfg = OptimizerConfig(name=name, lr=0.01)
    assert check_optimizer(cfg) == []
    assert type(build_optimizer(cfg, [torch.zeros(2, requires_grad=True)])) is cls


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("cross_entropy", torch.nn.CrossEntropyLoss),
        ("mse", torch.nn.MSELoss),
        ("l1", torch.nn.L1Loss),
        ("smooth_l1", torch.nn.SmoothL1Loss),
        ("bce_with_logits", torch.nn.BCEWithLogitsLoss),
        ("nll", torch.nn.NLLLoss),
        ("HuberLoss", torch.nn.HuberLoss),
        ("kl_div", torch.nn.KLDivLoss),
    ],
)
def test_losses_by_short_or_class_name(name, cls):
    assert check_loss(LossConfig(name=name)) == []
    assert type(build_loss(LossConfig(name=name))) is cls


def test_loss_arguments_reach_the_loss():
    loss = build_loss(LossConfig(name="cross_entropy", label_smoothing=0.1))
    assert loss.label_smoothing == 0.1


def test_one_cycle_gets_its_length_from_the_run():
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.5)
    scheduler = build_scheduler(SchedulerConfig(name="one_cycle"), optimizer, epochs=3, steps_per_epoch=10)
    assert scheduler.total_steps == 30
    assert max(group["max_lr"] for group in optimizer.param_groups) == 0.5
    assert check_scheduler(SchedulerConfig(name="none")) == []
    assert build_scheduler(SchedulerConfig(name="none"), optimizer, 3, 10) is None


def test_torchvision_model_is_fitted_to_grey_images_and_ten_classes():
    cfg = model_config("resnet18")
    assert check_model(cfg) == []
    model = build_model(cfg, (1, 28, 28), 10)
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_torchvision_model_arguments_are_checked_against_the_model_class():
    problems = check_model(model_config("resnet18", zero_init_residul=True))
    assert [p.key for p in problems] == ["model.zero_init_residul"]
    assert "did you mean 'zero_init_residual'?" in problems[0].message
    assert check_model(model_config("resnet18", zero_init_residual=True)) == []


def test_pretrained_weights_are_for_torchvision_models_and_the_built_in_ones_refuse_them_with_the_way():
    assert check_model(model_config("resnet18", weights="DEFAULT")) == []  # checked against the meta: no download
    with pytest.raises(ConfigError) as caught:  # the schema's key lookup refuses it, before any torch check
        model_config("cnn", weights="DEFAULT")
    said = str(caught.value)
    assert "only model.name: resnet18 (or another torchvision model) (yours is cnn) has model.weights" in said
    assert "Try: remove it, or choose model.name: resnet18" in said


def test_built_in_cnn_and_mlp_fit_the_data():
    assert build_model(model_config("cnn"), (1, 28, 28), 10)(torch.randn(3, 1, 28, 28)).shape == (3, 10)
    assert build_model(model_config("mlp", hidden=[8]), (5,), 4)(torch.randn(3, 5)).shape == (3, 4)
    assert build_model(model_config("mlp"), (3, 8, 8), 2)(torch.randn(3, 3, 8, 8)).shape == (3, 2)


def test_cnn_with_too_many_blocks_for_the_image_says_how_many_fit():
    from trainer.errors import UserError

    with pytest.raises(UserError, match="6 conv blocks each halve the image") as caught:
        build_model(model_config("cnn", channels=[8] * 6), (1, 28, 28), 10)
    assert caught.value.key == "model.channels" and caught.value.fix == "use at most 4 entries in model.channels"


MODEL_FILE = """
import torch
from torch import nn

class Net(nn.Module):
    def __init__(self, num_classes, width=8):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(2, width), nn.ReLU(), nn.Linear(width, num_classes))

    def forward(self, x):
        return self.body(x)
"""


def test_custom_model_file_gets_its_arguments_and_num_classes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my_model.py").write_text(MODEL_FILE)
    cfg = model_config("my_model.py:Net", width=4)
    assert isinstance(cfg, OtherModel) and check_model(cfg) == []
    model = build_model(cfg, (2,), 3)
    assert model.body[1].out_features == 4 and model(torch.randn(5, 2)).shape == (5, 3)


def test_custom_model_mistakes_are_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my_model.py").write_text(MODEL_FILE)
    (missing_file,) = check_model(model_config("models/nope.py:Net"))
    assert "the file 'models/nope.py' does not exist" in missing_file.message
    (missing_class,) = check_model(model_config("my_model.py:Nett"))
    assert "'my_model.py' has no 'Nett' (did you mean 'Net'?)" in missing_class.message
    (bad_argument,) = check_model(model_config("my_model.py:Net", widht=4))
    assert bad_argument.key == "model.widht" and "did you mean 'width'?" in bad_argument.message
