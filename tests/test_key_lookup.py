"""One lookup for keys: a key in the wrong place, under another tool's name, or typed as a flag gets its home."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import SMALL_CONFIG
from trainer import keys
from trainer.config import CNNModel, ImageFolderData, MLPModel, OtherModel, ResNetModel
from trainer.errors import ConfigError
from trainer.validation import validate_config
from trainer.yamlio import Source, apply_overrides, yaml_problem

ROOT = Path(__file__).resolve().parents[1]
BASE = SMALL_CONFIG + "train:\n  epochs: 1\n"


def config(**sections: dict) -> dict:
    data = yaml.safe_load(BASE)
    for name, values in sections.items():
        data[name] = {**(data.get(name) or {}), **values} if isinstance(values, dict) else values
    return data


def problems_of(data: dict) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        validate_config(data)
    return {p.key: p.message for p in caught.value.problems}


def test_a_train_key_under_the_optimizer_belongs_in_train_not_a_typo_of_eps():
    found = problems_of(config(optimizer={"epochs": 5}))
    assert found["optimizer.epochs"].startswith("unknown key; it belongs in train: train.epochs")
    assert "eps" not in found["optimizer.epochs"]


def test_other_tools_names_are_translated_with_their_values():
    found = problems_of(config(train={"max_epochs": 5, "gpus": 0}))
    assert "here it is called train.epochs" in found["train.max_epochs"]
    assert "PyTorch Lightning" in found["train.max_epochs"]
    assert "Try: `device: cpu` under `train:`" in found["train.gpus"]  # 0 GPUs is the CPU


def test_a_whole_section_from_lightning_is_translated_key_by_key():
    data = config()
    data.pop("train")
    data["trainer"] = {"max_epochs": 3, "accelerator": "gpu"}
    assert "Try: `train: {epochs: 3, device: cuda}` at the top level" in problems_of(data)["trainer"]


def test_an_argument_of_the_chosen_optimizer_points_at_the_optimizer():
    found = problems_of(config(optimizer={"name": "sgd"}, train={"momentum": 0.9}))
    assert "it belongs in optimizer: optimizer.momentum (an argument of SGD)" in found["train.momentum"]


def test_an_argument_of_another_optimizer_says_which_one_takes_it():
    found = problems_of(config(train={"momentum": 0.9}))
    assert "an argument of SGD" in found["train.momentum"] and "not of your optimizer adamw" in found["train.momentum"]
    found = problems_of(config(optimizer={"name": "adam", "momentum": 0.9}))
    assert found["optimizer.momentum"].startswith("Adam has no argument 'momentum'; SGD")


def test_arguments_the_class_really_takes_stay_valid():
    validate_config(config(scheduler={"name": "one_cycle", "epochs": 2, "steps_per_epoch": 10}))
    validate_config(config(scheduler={"name": "plateau", "patience": 2, "mode": "min"}))
    validate_config(config(optimizer={"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4}))


def test_a_key_of_another_data_set_names_the_data_set_that_has_it():
    found = problems_of(config(data={"image_size": 32}))
    assert "only data.dataset: image_folder (yours is synthetic) has data.image_size" in found["data.image_size"]


def test_plain_typos_keep_did_you_mean():
    assert "did you mean 'batch_size'" in problems_of(config(data={"batch_sise": 3}))["data.batch_sise"]
    assert "did you mean 'epochs'?" in problems_of(config(train={"eopchs": 3}))["train.eopchs"]
    assert "did you mean train.epochs?" in problems_of(config(data={"eopchs": 3}))["data.eopchs"]


def test_values_in_another_tools_spelling_are_translated():
    found = problems_of(config(train={"precision": 16, "device": "gpu"}))
    assert "another tool's spelling of fp16" in found["train.precision"]
    assert "another tool's spelling of cuda" in found["train.device"]


def test_overrides_in_the_wrong_section_get_the_override_to_type():
    data = config()
    with pytest.raises(ConfigError) as caught:
        apply_overrides(data, ["train.lr=0.1", "trainer.max_epochs=3"], Source("c.yaml"))
    messages = [p.message for p in caught.value.problems]
    assert messages[0].endswith("Try: optimizer.lr=0.1") and messages[1].endswith("Try: train.epochs=3")


def test_overrides_set_in_any_order_are_checked_against_the_final_config():
    data = config()
    apply_overrides(data, ["data.path=t.csv", "data.target=y", "data.dataset=csv"], Source("c.yaml"))
    assert data["data"]["dataset"] == "csv"


@pytest.mark.parametrize("words", [["optimizer.lr", "0.1"], ["optimizer.lr:0.1"], ["optimizer.lr:", "0.1"]])
def test_overrides_typed_with_a_space_or_a_colon_get_the_word_to_type(words):
    with pytest.raises(ConfigError) as caught:
        apply_overrides(config(), words, Source("c.yaml"))
    assert caught.value.problems[0].message.endswith("Try: optimizer.lr=0.1")


YAML_CASES = {
    "bracket": ("a: 1\nb: [1, 2\nc: 3\n", 2, "the '[' opened on line 2 is never closed (the parser gave up on line 3)"),
    "brace": ("a: 1\nopt: {name: sgd\nc: 3\n", 2, "the '{' opened on line 2 is never closed"),
    "quote": ("a: 1\nb: 'hello\nc: 3\n", 2, "the quote ' opened on line 2 is never closed"),
    "no space": ("train:\n  epochs: 3\n  device:cpu\n", 3, "line 3 needs a space after ':'"),
    "tab": ("train:\n\tepochs: 3\n", 2, "indented with a tab"),
    "deeper": ("train:\n  epochs: 3\n   device: cpu\n", 3, "indented more than the key above it (line 2)"),
    "shallower": ("train:\n    epochs: 3\n  device: cpu\n", 3, "indented differently from the key above it"),
    "list item": ("model:\n  name: mlp\n  - 64\n", 3, "starts a list item ('- ')"),
    "two colons": ("a: b: c\n", 1, "Try: put the value in quotes: a: 'b: c'"),
    "equals": ("train:\n  epochs=3\n  device: cpu\n", 2, "uses '='"),
}


@pytest.mark.parametrize("name", YAML_CASES)
def test_yaml_mistakes_name_the_construct_and_the_line_it_began_on(name):
    text, line, words = YAML_CASES[name]
    with pytest.raises(yaml.MarkedYAMLError) as caught:
        yaml.safe_load(text)
    found_line, message = yaml_problem(caught.value, text.splitlines())
    assert (found_line, words in message, "Try:" in message) == (line, True, True), message


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["c.yaml", "--lr", "0.01"], "Try: python -m trainer c.yaml optimizer.lr=0.01"),
        (["c.yaml", "--max_epochs=3"], "Try: python -m trainer c.yaml train.epochs=3"),
        (["--config", "c.yaml", "--gpus", "1"], "Try: python -m trainer c.yaml train.device=cuda"),
        (["check", "-c", "c.yaml"], "Try: python -m trainer check c.yaml"),
        (["c.yaml", "--trainer.max_epochs=3"], "Try: python -m trainer c.yaml train.epochs=3"),
        (["c.yaml", "--momentum", "0.9"], "Try: python -m trainer c.yaml optimizer.name=sgd optimizer.momentum=0.9"),
        (["chek", "c.yaml"], "did you mean 'check'?"),
        (["fit", "c.yaml"], "Try: python -m trainer train c.yaml"),
        (["train.epochs=2", "c.yaml"], "Try: python -m trainer c.yaml train.epochs=2"),
        (["c.yaml", "--split", "val"], "is an option of eval, not of train"),
        (["c.yaml", "--frobnicate"], "its options: --debug, --resume"),
    ],
)
def test_command_lines_from_other_tools_get_the_command_to_type(write_config, run_cli, args, words):
    write_config(BASE, "c.yaml")
    code, _, err = run_cli(*args)
    assert code == 2 and words in err, err
    assert "usage:" not in err


def test_swept_keys_are_looked_up_like_the_configs_own(write_config, run_cli):
    write_config(BASE + "sweep:\n  params:\n    lr: [1e-3, 3e-3]\n", "c.yaml")
    code, _, err = run_cli("sweep", "c.yaml")
    assert code == 2 and "c.yaml:15: sweep.params.lr: is not a config key; it belongs in optimizer" in err
    write_config(BASE, "c.yaml")
    code, _, err = run_cli("sweep", "c.yaml", "lr=1e-3,3e-3")
    assert code == 2 and "Try: sweep optimizer.lr=0.001,0.003 instead" in err


def test_try_looks_up_a_key_the_config_does_not_hold(write_config, run_cli):
    write_config(BASE, "c.yaml")
    code, _, err = run_cli("try", "c.yaml", "lr=x0.3,x3")
    assert code == 2 and "Try: python -m trainer try c.yaml optimizer.lr=x0.3,x3" in err
    code, _, err = run_cli("try", "c.yaml", "optimizer.lrr=x0.3,x3")
    assert code == 2 and "did you mean 'optimizer.lr'?" in err


def test_every_home_in_the_table_of_other_tools_names_a_key_of_the_schema():
    known = {key for entries in keys.schema_keys().values() for key, _ in entries}
    known |= {f"optimizer.{name}" for name in keys.component_arguments("optimizer", "adamw") or []}
    homes = {home for home, _, _ in keys.FOREIGN.values()}
    assert homes <= known, sorted(homes - known)


def test_other_config_systems_words_for_the_class_become_name():
    data = config(optimizer={"_target_": "torch.optim.SGD"}, scheduler={"class_path": "StepLR", "init_args": {}})
    data["optimizer"].pop("name")
    data["data"] = {"type": "synthetic"}
    found = problems_of(data)
    assert "Try: `name: SGD` under `optimizer:`" in found["optimizer._target_"]
    assert "here it is called scheduler.name" in found["scheduler.class_path"]
    assert "move them up into scheduler:" in found["scheduler.init_args"]
    assert "Try: dataset: synthetic" in found["data"]


def test_devices_written_as_numbers_or_gpu_n_are_translated():
    assert "spelling of cuda:0. Try: cuda:0" in problems_of(config(train={"device": 0}))["train.device"]
    assert "spelling of cuda:1" in problems_of(config(train={"device": "gpu:1"}))["train.device"]


def test_a_windows_path_in_double_quotes_names_the_escape():
    text = 'data: {dataset: synthetic, root: "C:\\data"}\n'
    with pytest.raises(yaml.MarkedYAMLError) as caught:
        yaml.safe_load(text)
    _, message = yaml_problem(caught.value, text.splitlines())
    assert "'\\d' is none" in message and "forward slashes" in message


@pytest.mark.parametrize("override", ["+train.epochs=3", "++train.epochs=3"])
def test_hydras_plus_is_not_needed(override):
    with pytest.raises(ConfigError) as caught:
        apply_overrides(config(), [override], Source("c.yaml"))
    assert caught.value.problems[0].message.endswith("Try: train.epochs=3")


def test_two_keys_on_one_line_get_the_braces_to_write():
    text = "optimizer: adamw lr: 0.001\n"
    with pytest.raises(yaml.MarkedYAMLError) as caught:
        yaml.safe_load(text)
    _, message = yaml_problem(caught.value, text.splitlines())
    assert "two keys, `optimizer` and `lr`" in message and "optimizer: {name: adamw, lr: 0.001}" in message


def test_a_number_where_a_list_is_meant_and_a_list_where_a_number_is_meant():
    found = problems_of(config(model={"hidden": 64}, optimizer={"lr": "1e-3,3e-3"}))
    assert found["model.hidden"].endswith("Try: [64] (a list of one)")
    assert "python -m trainer sweep CONFIG optimizer.lr=1e-3,3e-3" in found["optimizer.lr"]


def test_a_command_after_the_config_and_options_before_the_command(write_config, run_cli):
    write_config(BASE, "c.yaml")
    code, _, err = run_cli("c.yaml", "check")
    assert code == 2 and "Try: python -m trainer check c.yaml" in err
    with pytest.raises(ConfigError):  # --debug before the command reaches it: the error is raised, not printed
        run_cli("--debug", "c.yaml", "train.epochs=0")


def test_a_key_lands_on_the_field_of_the_data_set_and_model_the_config_chose():
    image_size = ImageFolderData.model_fields["image_size"]
    assert keys.field_at("data.image_size", {"data": {"dataset": "image_folder"}}).field is image_size
    assert keys.field_at("data.image_size", {"data": {"dataset": "mnist"}}) is None
    assert keys.field_at("model.channels", {"model": {"name": "resnet"}}).field is ResNetModel.model_fields["channels"]
    assert keys.field_at("model.channels", {}).field is CNNModel.model_fields["channels"]  # no choice: first with it
    assert keys.field_at(("model", "hidden", 0), {}).field is MLPModel.model_fields["hidden"]  # inside the list
    assert keys.field_at("model", {"model": {"name": "resnet18"}}).model is OtherModel
    assert keys.field_at("optimizer.momentum", {}).argument  # passed to the optimizer's class; torch decides
    assert keys.field_at("train.momentum", {}) is None


def test_a_config_of_schema_keys_is_validated_without_importing_torch_or_making_the_catalog(tmp_path):
    # validate_config is behind sweep, try and show too: a first run there must not wait for torch's signatures.
    cache = tmp_path / "cache"
    cache.mkdir()
    script = (
        "import sys, yaml\n"
        "from trainer.validation import validate_config\n"
        f"validate_config(yaml.safe_load(open({str(ROOT / 'configs' / 'blobs.yaml')!r})))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision')))\n"
    )
    env = {**os.environ, "LEAPTRAIN_CACHE_DIR": str(cache)}
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert list(cache.iterdir()) == []
