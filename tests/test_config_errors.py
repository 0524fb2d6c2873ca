"""Every config mistake ends in `file:line: key: what is wrong` with a fix, exit code 2 and no traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import SMALL_CONFIG, SYNTHETIC

BASE = SMALL_CONFIG


def test_typo_in_a_key_names_its_line_and_suggests_the_key(write_config, run_cli):
    path = write_config(BASE.replace("batch_size", "batch_sise"))
    code, out, err = run_cli(path)
    assert code == 2
    assert "config.yaml:4: data.batch_sise: unknown key (did you mean 'batch_size'?)" in err
    assert "Traceback" not in err + out


def test_typo_in_optimizer_name_suggests_adamw(write_config, run_cli):
    code, _, err = run_cli(write_config(BASE.replace("name: adamw", "name: adamww")))
    assert code == 2
    assert "config.yaml:9: optimizer.name: unknown optimizer 'adamww' (did you mean 'adamw'?)" in err


def test_unknown_optimizer_argument_is_checked_against_torch_signature(write_config, run_cli):
    code, _, err = run_cli(write_config(BASE + "  weight_decy: 0.1\n"))
    assert code == 2
    assert (
        "config.yaml:11: optimizer.weight_decy: AdamW has no argument 'weight_decy' (did you mean 'weight_decay'?)"
        in err
    )


def test_value_torch_rejects_is_reported_before_training(write_config, run_cli):
    code, _, err = run_cli(write_config(BASE + "  betas: [0.9, 1.5]\n"))
    assert code == 2
    assert "config.yaml:11: optimizer.betas: [0.9, 1.5] holds 1.5 as beta2" in err
    assert "Try: optimizer.betas=[0.9, 0.999]" in err


def test_typo_in_an_override_names_the_override_and_suggests_lr(write_config, run_cli):
    code, _, err = run_cli(write_config(BASE), "optimizer.lrr=1")
    assert code == 2
    assert "command line 'optimizer.lrr=1': optimizer.lrr: AdamW has no argument 'lrr' (did you mean 'lr'?)" in err


def test_every_problem_is_reported_at_once_in_line_order(write_config, run_cli):
    text = BASE.replace("batch_size: 32", "batch_size: -1").replace("hidden", "hiden") + "trian: {epochs: 2}\n"
    code, _, err = run_cli(write_config(text), "train.epochs=0")
    assert code == 2
    lines = [line.strip() for line in err.splitlines() if line.startswith("  ")]
    assert (
        "config.yaml:4: data.batch_size: -1 is not a count of at least 1: batch_size counts samples per step. Try: 32"
        in lines[0]
    )
    assert "config.yaml:7: model.hiden: unknown key (did you mean 'hidden'?)" in lines[1]
    assert "config.yaml:11: trian: unknown key (did you mean 'train'?)" in lines[2]
    assert "command line 'train.epochs=0': train.epochs: 0 is not a count of at least 1" in lines[3]
    assert len(lines) == 4


def test_unknown_data_set_lists_the_choices(write_config, run_cli):
    code, _, err = run_cli(write_config(BASE.replace("dataset: synthetic", "dataset: mnsit")))
    assert code == 2
    assert "config.yaml:3: data.dataset: 'mnsit' is not one of the choices (did you mean 'mnist'?)" in err
    assert "fashion_mnist" in err


def test_missing_required_section_says_so(write_config, run_cli):
    code, _, err = run_cli(write_config("data: {dataset: synthetic}\n"))
    assert code == 2
    assert "model: is required but missing" in err


def test_wrong_type_says_what_was_given(write_config, run_cli):
    code, _, err = run_cli(write_config(BASE), "train.epochs=three")
    assert code == 2
    assert "train.epochs: input should be a valid integer" in err and "'three'" in err


def test_bad_device_lists_what_is_allowed(write_config, run_cli):
    code, _, err = run_cli(write_config(BASE), "train.device=gpu")
    assert code == 2
    assert "train.device: 'gpu' is another tool's spelling of cuda. Try: cuda (use auto, cpu, cuda, cuda:N or" in err


def test_scheduler_and_loss_names_get_suggestions(write_config, run_cli):
    code, _, err = run_cli(write_config(BASE + "loss: cross_entropi\nscheduler: {name: cosin}\n"))
    assert code == 2
    assert "config.yaml:11: loss.name: unknown loss 'cross_entropi' (did you mean 'cross_entropy'?)" in err
    assert "config.yaml:12: scheduler.name: unknown scheduler 'cosin' (did you mean 'cosine'?)" in err


def test_unknown_loss_argument_suggests_the_right_one(write_config, run_cli):
    code, _, err = run_cli(write_config(BASE + "loss: {name: cross_entropy, label_smothing: 0.1}\n"))
    assert code == 2
    assert (
        "loss.label_smothing: CrossEntropyLoss has no argument 'label_smothing' (did you mean 'label_smoothing'?)"
        in err
    )


def test_required_scheduler_argument_is_named(write_config, run_cli):
    code, _, err = run_cli(write_config(BASE + "scheduler: {name: MultiStepLR}\n"))
    assert code == 2
    assert "scheduler: MultiStepLR needs the argument 'milestones'" in err


def test_arguments_leaptrain_fills_in_are_refused(write_config, run_cli):
    code, _, err = run_cli(write_config(BASE + "scheduler: {name: one_cycle, optimizer: sgd}\n"))
    assert code == 2
    assert "scheduler.optimizer: leaptrain sets 'optimizer' itself" in err


def test_tabs_in_yaml_point_at_the_line(write_config, run_cli):
    code, _, err = run_cli(write_config("data:\n  dataset: mnist\n\tbatch_size: 3\n"))
    assert code == 2
    assert "config.yaml:3: line 3 is indented with a tab" in err and "spaces, not tabs" in err


def test_a_key_written_twice_is_an_error(write_config, run_cli):
    code, _, err = run_cli(write_config("data:\n  dataset: mnist\n  batch_size: 3\n  batch_size: 4\n"))
    assert code == 2
    assert "config.yaml:4: data.batch_size: appears twice (first on line 3)" in err


def test_missing_config_file(run_cli):
    code, _, err = run_cli("configs/nope.yaml")
    assert code == 2
    assert "configs/nope.yaml: cannot read the config: no such file" in err


def test_override_without_equals_sign_shows_the_form(write_config, run_cli):
    code, _, err = run_cli(write_config(BASE), "optimizer.lr")
    assert code == 2
    assert "an override must look like key=value" in err


def test_fp16_on_cpu_suggests_bf16(write_config, run_cli):
    code, _, err = run_cli(write_config(BASE), "train.precision=fp16", "train.device=cpu")
    assert code == 2
    assert "train.precision: fp16 needs a CUDA GPU. Try: bf16" in err


def test_run_name_with_a_slash_is_refused(write_config, run_cli):
    code, _, err = run_cli(write_config(BASE), "name=a/b")
    assert code == 2
    assert "name: 'a/b' is not allowed here" in err


def test_cli_exits_2_without_traceback_and_debug_shows_it(write_config):
    path = write_config(SYNTHETIC.replace("hidden", "hiden"))
    plain = subprocess.run([sys.executable, "-m", "trainer", str(path)], capture_output=True, text=True)
    assert plain.returncode == 2
    assert "model.hiden: unknown key (did you mean 'hidden'?)" in plain.stderr
    assert "Traceback" not in plain.stderr
    debug = subprocess.run([sys.executable, "-m", "trainer", str(path), "--debug"], capture_output=True, text=True)
    assert debug.returncode != 0 and "Traceback" in debug.stderr


@pytest.mark.parametrize("text", ["lr: 1e-3", "lr: 3e-4", "lr: 1E-3", "lr: -2.5e+1", "lr: .5e-2"])
def test_exponents_without_a_dot_are_numbers(text):
    from trainer.yamlio import parse_value

    assert isinstance(parse_value(text.split(": ")[1]), float)


def test_schema_and_argument_problems_are_reported_together(write_config, run_cli):
    text = BASE.replace("batch_size", "batch_sise") + "  weight_decy: 0.1\nloss: {name: cross_entropi}\n"
    code, _, err = run_cli(write_config(text))
    assert code == 2
    assert err.count("config.yaml:") == 3
    assert "data.batch_sise: unknown key" in err
    assert "optimizer.weight_decy: AdamW has no argument 'weight_decy'" in err
    assert "loss.name: unknown loss 'cross_entropi'" in err


def test_overrides_reach_inside_short_form_sections():
    cfg, _ = load_config_text("optimizer: sgd\nloss: nll\n", ["optimizer.momentum=0.9", "loss.reduction=sum"])
    assert cfg.optimizer.name == "sgd" and cfg.optimizer.args == {"momentum": 0.9}
    assert cfg.loss.name == "nll" and cfg.loss.args == {"reduction": "sum"}


def test_renaming_the_optimizer_keeps_the_learning_rate_only():
    cfg, _ = load_config_text("optimizer: {name: adamw, lr: 0.003, weight_decay: 0.1}\n", ["optimizer=sgd"])
    assert cfg.optimizer.name == "sgd" and cfg.optimizer.lr == 0.003 and cfg.optimizer.args == {}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.dataset.kind=1", "data.dataset holds a value, not a section"),
        ("model.hidden.5=16", "model.hidden has 1 items (0 to 0)"),
        ("data.batch_size=", "has no value after '='"),
    ],
)
def test_overrides_that_cannot_apply_say_why(override, message):
    from trainer.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        load_config_text("", [override])
    assert message in caught.value.problems[0].message


def test_yaml_words_on_and_no_stay_words_but_booleans_still_work():
    cfg, _ = load_config_text("name: on\nmodel: {name: cnn, batch_norm: no}\n", [])
    assert cfg.name == "on" and cfg.model.batch_norm is False


def load_config_text(extra: str, overrides: list[str]):
    import tempfile
    from pathlib import Path

    from trainer.cli import load_config

    text = "data: {dataset: synthetic}\nmodel: {name: mlp, hidden: [8]}\n" + extra
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "c.yaml"
        path.write_text(text if "model:" not in extra else text.replace("model: {name: mlp, hidden: [8]}\n", ""))
        return load_config(str(path), overrides)


BROKEN_FORWARD = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, num_classes, input_shape):
        super().__init__()
        self.layer = nn.Linear(input_shape[0], num_classes)

    def forward(self, x):
        return self.layer(x) @ torch.ones(5, 5)
"""


def write_png(path) -> None:
    from PIL import Image

    Image.new("RGB", (4, 4)).save(path)


# One mistake of each family, as the real command meets it: (files to write, arguments, what stderr must say).
REAL_COMMAND_MISTAKES = {
    "a key typo": ({"config.yaml": BASE.replace("batch_size", "batch_sise")}, [], "data.batch_sise: unknown key"),
    "a picture given as the config": ({"photo.png": write_png}, ["check", "photo.png"], "a PNG image, not a YAML"),
    "an empty config": ({"empty.yaml": ""}, ["check", "empty.yaml"], "model: is required but missing"),
    "missing CIFAR files": (
        {"config.yaml": "data: {dataset: cifar10, root: nothing, download: false}\nmodel: {name: cnn}\n"},
        [],
        "cifar-10-batches-py/ lacks data_batch_1",
    ),
    "a model naming a command": (
        {"config.yaml": SYNTHETIC},
        ["check", "config.yaml", "model={name: 'os:system', command: 'touch pwned'}"],
        "'os:system' is in Python's standard library",
    ),
    "an error in the learner's forward": (
        {"config.yaml": SYNTHETIC.replace("{name: mlp, hidden: [16]}", "net.py:Net"), "net.py": BROKEN_FORWARD},
        [],
        "(at net.py:12)",
    ),
}


TORCH_NEEDED = {"missing CIFAR files", "an error in the learner's forward"}  # these import torch: seconds each


@pytest.mark.parametrize(
    "mistake",
    [pytest.param(name, marks=[pytest.mark.slow] if name in TORCH_NEEDED else []) for name in REAL_COMMAND_MISTAKES],
)
def test_the_real_command_exits_2_with_the_message_and_no_traceback(tmp_path, mistake):
    """`python -m trainer` in its own process: what a learner's terminal shows and the exit code a script sees.
    (In-process, a traceback Python would print at exit, or one printed to the real stderr, goes unseen.)"""
    files, args, expected = REAL_COMMAND_MISTAKES[mistake]
    for name, content in files.items():
        content(tmp_path / name) if callable(content) else (tmp_path / name).write_text(content)
    args = args or ["config.yaml"]
    done = subprocess.run(
        [sys.executable, "-m", "trainer", *args], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: ") and expected in done.stderr, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert not (tmp_path / "pwned").exists()


def test_a_near_miss_of_an_argument_leaptrain_fills_says_so(write_config, run_cli):
    config = write_config(SYNTHETIC.replace("{name: mlp, hidden: [16]}", "{name: resnet18, num_class: 3}"))
    code, _, err = run_cli("check", config)
    assert code == 2
    assert "model.num_class: ResNet has no argument 'num_class' (did you mean 'num_classes'?)" in err
    assert "leaptrain sets 'num_classes' itself. Try: remove this key" in err
