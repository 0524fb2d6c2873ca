"""Which section a model's keys are read by: the built-in networks have their own keys, any other model its class's."""

from __future__ import annotations

import pytest

from trainer.config import CNNModel, Config, MLPModel, OtherModel, ResNetModel, model_kind

DATA = {"dataset": "synthetic"}


@pytest.mark.parametrize(
    "model, section",
    [
        ({"name": "mlp", "hidden": [8]}, MLPModel),
        ({"name": "cnn", "channels": [4]}, CNNModel),
        ({"name": "resnet", "stem": 8}, ResNetModel),
        ({"name": "resnet18"}, OtherModel),  # a torchvision builder, not the built-in resnet
        ({"name": "net.py:Net", "width": 3}, OtherModel),
    ],
)
def test_each_model_name_is_read_by_its_own_section(model, section):
    parsed = Config.model_validate({"data": DATA, "model": model}).model
    assert type(parsed) is section
    assert parsed.model_dump(exclude_unset=True) == model


@pytest.mark.parametrize("name", ["mlp", "cnn", "resnet"])
def test_a_built_in_model_keeps_its_kind_when_validated_again(name):
    """A parsed section (not a dict) goes through the same choice, e.g. when a sweep copies a config."""
    config = Config.model_validate({"data": DATA, "model": {"name": name}})
    again = Config.model_validate({"data": DATA, "model": config.model})
    assert type(again.model) is type(config.model) and model_kind(config.model) == name
    assert model_kind(OtherModel(name="resnet18")) == "other" and model_kind(object()) == "other"


def test_a_misspelt_key_of_a_built_in_model_is_refused_by_its_section():
    with pytest.raises(ValueError, match="hiden"):
        Config.model_validate({"data": DATA, "model": {"name": "mlp", "hiden": [8]}})
    # another model's keys are its class's arguments, checked against its __init__ when it is built
    assert Config.model_validate({"data": DATA, "model": {"name": "resnet18", "hiden": 1}}).model.args == {"hiden": 1}
