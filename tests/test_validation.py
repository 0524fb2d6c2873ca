"""The config validation (trainer/validation.py): which key, which message and which fix a config mistake gets."""

from __future__ import annotations

import types
import typing
from pathlib import Path

import pydantic
import pytest
import yaml

from tests.conftest import SMALL_CONFIG
from trainer import keys, validation
from trainer.cli import load_config
from trainer.config import Config, EarlyStopping
from trainer.errors import ConfigError
from trainer.validation import validate_config
from trainer.yamlio import Source

# SMALL_CONFIG without its optimizer section, so a test writes the one it needs.
DATA_AND_MLP = SMALL_CONFIG.split("optimizer:")[0]


def problems_of(text: str) -> dict[str, str]:
    """key -> message of each problem validate_config finds in a config written as YAML."""
    with pytest.raises(ConfigError) as caught:
        validate_config(yaml.safe_load(text))
    return {problem.key: problem.message for problem in caught.value.problems}


def load_config_text(text: str, folder: Path) -> tuple[Config, Source]:
    """trainer.cli.load_config on a config file: the schema, then the arguments against torch's signatures."""
    path = folder / "config.yaml"
    path.write_text(text)
    return load_config(str(path), [])


def with_model(model: str, rest: str = "optimizer: {name: adamw}\n") -> str:
    return SMALL_CONFIG.split("model:")[0] + f"model: {model}\n" + rest


# An argument in the wrong component section, or one the chosen class lacks


def test_an_argument_of_the_loss_under_the_optimizer_points_at_the_loss():
    found = problems_of(DATA_AND_MLP + "optimizer: {name: adam, label_smoothing: 0.1}\n")
    assert found == {
        "optimizer.label_smoothing": "unknown key; it belongs in loss: loss.label_smoothing (an argument of "
        "CrossEntropyLoss). Try: `label_smoothing: 0.1` under `loss:`"
    }


def test_an_optimizer_without_a_name_is_checked_as_the_default_adamw():
    found = problems_of(DATA_AND_MLP + "optimizer: {label_smoothing: 0.1}\n")
    assert found["optimizer.label_smoothing"].startswith("unknown key; it belongs in loss: loss.label_smoothing")


def test_an_argument_the_chosen_loss_takes_stays_with_the_loss_though_adamw_takes_it_too():
    cfg = validate_config(yaml.safe_load(SMALL_CONFIG + "loss: {name: PoissonNLLLoss, eps: 1.0e-8}\n"))
    assert cfg.loss.args == {"eps": 1e-8}


def test_an_argument_of_the_chosen_loss_under_sgd_points_at_the_loss_and_at_optimizers_taking_it():
    found = problems_of(DATA_AND_MLP + "optimizer: {name: sgd, eps: 1.0e-8}\nloss: {name: PoissonNLLLoss}\n")
    assert found == {
        "optimizer.eps": "unknown key; it belongs in loss: loss.eps (an argument of PoissonNLLLoss). "
        "Try: `eps: 1e-08` under `loss:` (or `name: RMSprop` in optimizer, which takes eps)"
    }


def test_a_key_another_scheduler_takes_names_it_after_the_key_it_may_mean():
    found = problems_of(SMALL_CONFIG + "scheduler: {name: step, patience: 2}\n")
    assert found == {
        "scheduler.patience": "unknown key; it belongs in train.early_stopping: train.early_stopping.patience. "
        "Try: `patience: 2` under `train.early_stopping:` (or `name: ReduceLROnPlateau` in scheduler, which takes "
        "patience)"
    }


@pytest.mark.parametrize(
    ("optimizer", "key", "takers", "fix"),
    [
        ("adam", "dampening", "SGD takes", "`name: sgd` to use SGD"),
        ("adam", "nesterov", "SGD, Muon take", "`name: sgd` to use SGD"),
        ("adam", "momentum", "SGD, RMSprop, Muon take", "`name: sgd` to use SGD"),
        ("sgd", "betas", "AdamW, Adam, Adamax, NAdam take", "`name: adamw` to use AdamW"),  # the first four of more
    ],
)
def test_an_argument_of_other_optimizers_names_them_and_the_first_to_choose(optimizer, key, takers, fix):
    found = problems_of(DATA_AND_MLP + f"optimizer: {{name: {optimizer}, {key}: 1}}\n")
    chosen = {"adam": "Adam", "sgd": "SGD"}[optimizer]
    assert found == {f"optimizer.{key}": f"{chosen} has no argument '{key}'; {takers} it. Try: {fix}, or remove {key}"}


def test_a_key_of_a_built_in_model_under_a_torchvision_model_names_the_model_that_has_it(write_config, run_cli):
    code, _, err = run_cli(write_config(with_model("{name: resnet18, hidden: [16]}")))
    assert code == 2
    assert (
        "config.yaml:5: model.hidden: unknown key: only model.name: mlp (yours is resnet18) has model.hidden. "
        "Try: remove it, or choose model.name: mlp" in err
    )


@pytest.mark.parametrize(
    ("name", "args"),
    [("mnasnet0_5", {"alpha": 0.5}), ("maxvit_t", {"input_size": [64, 64]})],
)
def test_an_argument_of_the_chosen_torchvision_model_is_the_models_though_another_section_has_the_name(
    name, args, tmp_path
):
    # mnasnet's alpha is its width, not RMSprop's alpha; maxvit's input_size is its own, not data.image_size
    model = yaml.safe_dump({"name": name, **args}, default_flow_style=True).strip()
    cfg, _ = load_config_text(with_model(model), tmp_path)
    assert (cfg.model.name, cfg.model.args) == (name, args)


def test_a_key_leaptrain_has_no_use_for_is_reported_once_not_again_as_an_argument_torch_lacks(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config_text(DATA_AND_MLP + "optimizer: {name: adam, verbose: true}\n", tmp_path)
    assert [(p.key, p.message) for p in caught.value.problems] == [
        ("optimizer.verbose", "unknown key: progress bars show in a terminal (log.progress). Try: remove it")
    ]


def test_a_config_of_schema_keys_alone_is_validated_without_torchs_signatures(monkeypatch):
    def no_catalog(section: str) -> None:
        raise AssertionError(f"the catalog of torch's signatures was read for {section}")

    monkeypatch.setattr(keys, "_signatures", no_catalog)
    cfg = validate_config(yaml.safe_load(SMALL_CONFIG + "loss: {name: cross_entropy}\nscheduler: {name: step}\n"))
    assert (cfg.optimizer.name, cfg.optimizer.lr, cfg.scheduler.name) == ("adamw", 1e-3, "step")


# pydantic's errors in the learner's words


def test_a_typo_in_a_cnn_key_lists_the_keys_of_the_cnn_not_of_the_mlp():
    found = problems_of(with_model("{name: cnn, chanels: [8]}"))
    assert found == {
        "model.chanels": "unknown key (did you mean 'channels'?). Keys allowed in model: name, channels, "
        "kernel_size, fc, dropout, batch_norm, activation"
    }


def test_a_typo_in_a_cifar_key_lists_the_keys_of_cifar():
    found = problems_of(SMALL_CONFIG.replace("dataset: synthetic", "dataset: cifar10\n  augmnt: [random_crop]"))
    assert found["data.augmnt"] == (
        "unknown key (did you mean 'augment'?). Keys allowed in data: batch_size, val_split, dataset, root, "
        "download, augment, crop_padding"
    )


def test_an_unknown_key_in_a_sweep_distribution_is_reported_not_a_crash():
    found = problems_of(SMALL_CONFIG + "sweep: {params: {optimizer.lr: {dist: uniform, low: 0, high: 1, step: 1}}}\n")
    [key] = [key for key in found if key.endswith(".step")]
    assert key.startswith("sweep.params.optimizer.lr.")
    assert found[key].startswith("unknown key")


def test_a_value_outside_the_choices_suggests_the_closest_and_lists_them_all():
    found = problems_of(SMALL_CONFIG + "train: {early_stopping: {mode: minimum}}\n")
    assert found == {
        "train.early_stopping.mode": "'minimum' is not one of the choices (did you mean 'min'?). "
        "Choose one of: min, max"
    }


def test_another_tools_precision_is_put_in_leaptrains_words():
    found = problems_of(SMALL_CONFIG + "train: {precision: 16-mixed}\n")
    assert found == {
        "train.precision": "'16-mixed' is another tool's spelling of fp16. Try: fp16 (one of: fp32, bf16, fp16)"
    }


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("train:", "is empty: nothing is indented under it. Try: indent its keys by two spaces, or remove the line"),
        ("train: device:cpu", "reads as the text 'device:cpu': a space is missing after ':'. Try: device: cpu"),
        ("train: device=cpu", "reads as the text 'device=cpu': YAML keys take ':', not '='. Try: device: cpu"),
        ("train: epochs = 3", "reads as the text 'epochs = 3': YAML keys take ':', not '='. Try: epochs: 3"),
        ("train: 3", "must be a section of `key: value` lines, not 3"),
    ],
)
def test_a_section_that_reads_as_a_plain_value_says_why(line, message):
    assert problems_of(SMALL_CONFIG + line + "\n") == {"train": message}


def test_a_section_missing_the_space_after_the_colon_names_its_line(write_config, run_cli):
    code, _, err = run_cli(write_config(SMALL_CONFIG + "train: device:cpu\n"))
    assert code == 2
    assert (
        "config.yaml:11: train: reads as the text 'device:cpu': a space is missing after ':'. Try: device: cpu" in err
    )


@pytest.mark.parametrize(
    ("line", "key", "message"),
    [
        (
            "train: {device: 'cuda:x'}",
            "train.device",
            "'cuda:x' is not allowed here: use auto, cpu, cuda, cuda:N or mps",
        ),
        (
            "train: {device: gpu}",
            "train.device",
            "'gpu' is another tool's spelling of cuda. Try: cuda (use auto, cpu, cuda, cuda:N or mps)",
        ),
        ("train: {device: 0}", "train.device", "0 is another tool's spelling of cuda:0. Try: cuda:0"),
        (
            "name: my run",
            "name",
            "'my run' is not allowed here: use letters, digits, '.', '_' or '-' (no spaces or slashes)",
        ),
    ],
)
def test_a_value_the_pattern_refuses_says_what_the_key_allows(line, key, message):
    text = SMALL_CONFIG.replace("name: t\n", "") + line + "\n"
    assert problems_of(text) == {key: message}


def test_list_items_without_a_space_after_the_dash_say_so(write_config, run_cli):
    code, _, err = run_cli(write_config(SMALL_CONFIG.replace("  hidden: [16]\n", "  hidden:\n    -64\n    -32\n")))
    assert code == 2
    assert (
        "config.yaml:7: model.hidden: must be a list, not '-64 -32': a list item needs a space after '-'. Try: - 64"
        in err
    )


@pytest.mark.parametrize(
    ("hidden", "message"),
    [
        ("64, 32", "input should be a valid list (got '64, 32'): a list is written in brackets. Try: [64, 32]"),
        ("64", "input should be a valid list (got 64). Try: [64] (a list of one)"),
        ("true", "input should be a valid list (got True)"),
    ],
)
def test_a_list_written_without_brackets_shows_the_brackets(hidden, message):
    assert problems_of(SMALL_CONFIG.replace("hidden: [16]", f"hidden: {hidden}")) == {"model.hidden": message}


def test_a_key_named_like_a_schema_class_is_reported_where_it_was_written():
    # `TrainConfig:` pasted from Python code: pydantic's name for the section, but a key like any other here
    found = problems_of(SMALL_CONFIG + "train: {TrainConfig: {epochs: 3}}\n")
    assert list(found) == ["train.TrainConfig"]
    assert found["train.TrainConfig"].startswith("unknown key")
    assert "Keys allowed in train: epochs, device, precision" in found["train.TrainConfig"]


# Keys that take one of several kinds of value (a union): one problem, in the key's own name, saying what it takes

IMAGE_FOLDER = "name: t\ndata: {dataset: image_folder, root: x, KEY}\nmodel: {name: cnn}\n"


def problem_list(text: str) -> list[tuple[str, str]]:
    """(key, message) of each problem, duplicates kept: a mistake reported twice shows twice."""
    with pytest.raises(ConfigError) as caught:
        validate_config(yaml.safe_load(text))
    return [(problem.key, problem.message) for problem in caught.value.problems]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("workers: many", "'many' is not allowed here: give a whole number or auto. Try: auto (the default)"),
        (
            "workers: aut",
            "'aut' is not allowed here (did you mean 'auto'?): give a whole number or auto. Try: auto (the default)",
        ),
        ("workers: 2.5", "2.5 is not allowed here: give a whole number or auto. Try: auto (the default)"),
        (
            "workers: '0,2'",
            "takes one value (a whole number or auto), not the list '0,2'. Try: one value; to train with each, "
            "python -m trainer sweep CONFIG data.workers=0,2",
        ),
    ],
)
def test_a_workers_value_of_neither_kind_is_one_problem_saying_what_workers_takes(line, message):
    assert problem_list(IMAGE_FOLDER.replace("KEY", line)) == [("data.workers", message)]


@pytest.mark.parametrize(
    ("value", "key", "message"),
    [
        (
            "big",
            "data.image_size",
            "'big' is not allowed here: give a whole number above 0 or a list of 2 whole numbers above 0. "
            "Try: 64 (the default)",
        ),
        (
            "[64]",
            "data.image_size",
            "[64] is not allowed here: give a whole number above 0 or a list of 2 whole numbers above 0. "
            "Try: 64 (the default)",
        ),
        (
            "[1, 2, 3]",
            "data.image_size",
            "[1, 2, 3] is not allowed here: give a whole number above 0 or a list of 2 whole numbers above 0. "
            "Try: 64 (the default)",
        ),
        (
            "'64, 48'",
            "data.image_size",
            "'64, 48' is not allowed here: give a whole number above 0 or a list of 2 whole numbers above 0. "
            "Try: [64, 48]",
        ),
        # a value of the right kind that is wrong itself: that kind's problem alone, at the item it is about
        ("0", "data.image_size", "input should be greater than 0 (got 0)"),
        ("[64, 0]", "data.image_size.1", "input should be greater than 0 (got 0)"),
        (
            "[64, x]",
            "data.image_size.1",
            "input should be a valid integer, unable to parse string as an integer (got 'x')",
        ),
    ],
)
def test_an_image_size_that_is_neither_a_number_nor_a_pair_is_one_problem(value, key, message):
    assert problem_list(IMAGE_FOLDER.replace("KEY", f"image_size: {value}")) == [(key, message)]


SWEEP = SMALL_CONFIG + "sweep: {params: {optimizer.lr: VALUE}}\n"


@pytest.mark.parametrize(
    ("value", "key", "message"),
    [
        (
            "{dist: uniform, low: 0, high: 1, step: 0.1}",
            "sweep.params.optimizer.lr.step",
            "unknown key. Keys allowed in sweep.params.optimizer.lr: dist, low, high",
        ),
        (
            "{dist: uniform, low: 0, high: 1, hihg: 2}",
            "sweep.params.optimizer.lr.hihg",
            "unknown key (did you mean 'high'?). Keys allowed in sweep.params.optimizer.lr: dist, low, high",
        ),
        (
            # lr is a key of the config, but not of a distribution: no `it belongs in optimizer`
            "{dist: uniform, low: 0, high: 1, lr: 2}",
            "sweep.params.optimizer.lr.lr",
            "unknown key. Keys allowed in sweep.params.optimizer.lr: dist, low, high",
        ),
        (
            "{dist: normal, low: 0, high: 1}",
            "sweep.params.optimizer.lr.dist",
            "'normal' is not one of the choices (did you mean 'uniform'?). "
            "Choose one of: uniform, log_uniform, int_uniform",
        ),
        (
            "0.1",
            "sweep.params.optimizer.lr",
            "0.1 is not allowed here: give a list of values or a distribution {dist: ..., low: ..., high: ...}. "
            "Try: [0.1] (a list of one)",
        ),
        (
            "'1e-3, 3e-3'",
            "sweep.params.optimizer.lr",
            "'1e-3, 3e-3' is not allowed here: give a list of values or a distribution {dist: ..., low: ..., "
            "high: ...}. Try: [1e-3, 3e-3]",
        ),
    ],
)
def test_a_sweep_value_is_a_list_or_a_distribution_and_its_mistake_is_reported_once(value, key, message):
    assert problem_list(SWEEP.replace("VALUE", value)) == [(key, message)]


def test_a_missing_key_of_a_distribution_is_reported_without_the_list_it_is_not():
    found = problem_list(SWEEP.replace("VALUE", "{dist: uniform, low: 0}"))
    assert found == [
        (
            "sweep.params.optimizer.lr.high",
            "is required but missing. Try: add it (trainer/config.py says what each key means)",
        )
    ]


def test_union_keys_point_at_their_own_lines_each_once(write_config, run_cli):
    text = (
        "name: t\ndata:\n  dataset: image_folder\n  root: x\n  workers: many\n  image_size: big\nmodel: {name: cnn}\n"
        "sweep:\n  params:\n    optimizer.lr: [0.1, 0.2]\n    data.batch_size: {dist: uniform, low: 0, hihg: 1}\n"
    )
    code, _, err = run_cli("check", write_config(text))
    assert code == 2
    lines = [line[line.index("config.yaml:") :] for line in err.splitlines() if "config.yaml:" in line]
    assert lines[:2] == [
        "config.yaml:5: data.workers: 'many' is not allowed here: give a whole number or auto. Try: auto (the default)",
        "config.yaml:6: data.image_size: 'big' is not allowed here: give a whole number above 0 or a list of 2 whole "
        "numbers above 0. Try: 64 (the default)",
    ]
    assert [line.split(": ", 1)[1] for line in lines[2:]] == [
        "sweep.params.data.batch_size.high: is required but missing. Try: add it (trainer/config.py says what each "
        "key means)",
        "sweep.params.data.batch_size.hihg: unknown key (did you mean 'high'?). Keys allowed in "
        "sweep.params.data.batch_size: dist, low, high",
    ]


def is_union(annotation: object) -> bool:
    kinds = [a for a in typing.get_args(annotation) if a is not type(None)]
    return typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(kinds) > 1


def union_keys() -> list[tuple[str, str]]:
    """Every key of the schema whose value may be of two or more kinds (None aside), with the choice of data set or
    model that has it: data.workers, data.image_size, each key of sweep.params (a list or a distribution), ..."""
    found = []
    for entries in keys.schema_keys().values():
        for key, condition in entries:
            spot = keys.field_at(key, keys._choosing(condition))
            annotation = spot.field.annotation if spot and spot.field and not spot.alternatives else None
            if is_union(annotation):
                found.append((key, condition))
            elif typing.get_origin(annotation) is dict and is_union(typing.get_args(annotation)[1]):
                found.append((f"{key}.optimizer.lr", condition))  # a union in a dict's values
    return sorted(found)


def test_the_schema_has_union_keys_for_the_next_test_to_check():
    keys_found = [key for key, _ in union_keys()]
    assert keys_found == ["data.image_size", "data.workers", "sweep.params.optimizer.lr", "train.compile"]


@pytest.mark.parametrize(("key", "condition"), union_keys())
def test_every_union_key_left_empty_is_one_problem_under_its_own_name_saying_what_it_takes(key, condition):
    data = yaml.safe_load(SMALL_CONFIG)
    if condition:  # the data set or model that has the key; other keys it requires are left out (and reported)
        section, _, choice = condition.partition(": ")
        data[section.split(".")[0]] = {section.split(".")[1]: choice}
    *parents, leaf = key.split(".", 2) if key.startswith("sweep.params.") else key.split(".")
    place = data
    for parent in parents:
        place = place.setdefault(parent, {})
    place[leaf] = None  # `workers:` with nothing after it: no kind the key takes
    with pytest.raises(ConfigError) as caught:
        validate_config(data)
    about = [p for p in caught.value.problems if p.key == key or p.key.startswith(f"{key}.")]
    assert [p.key for p in about] == [key]
    assert about[0].message.startswith("is empty: give ")


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        (bool, "true or false"),
        (str, "text"),
        (float, "a number"),
        (typing.Annotated[int, pydantic.Field(ge=0, lt=10)], "a whole number of 0 or more and below 10"),
        (typing.Annotated[float, pydantic.Field(le=1)], "a number of 1 or less"),
        (typing.Literal["min", "max", "auto"], "min, max or auto"),
        (list[str], "a list of texts"),
        (tuple[int, str], "a list [a whole number, text]"),
        (dict[str, int], "a section of `key: value` lines"),
        (EarlyStopping, "an early stopping {monitor: ..., mode: ..., patience: ..., min_delta: ...}"),
    ],
)
def test_the_kinds_a_future_union_key_may_take_are_named_in_the_learners_words(kind, words):
    # what `'x' is not allowed here: give ...` will say for a union member no key of today's schema has
    assert validation._words(kind) == words


@pytest.mark.parametrize(
    ("value", "message"),
    [
        # `optimizer.lr:` and nothing after: no kind it takes, and no default a sweep value has to offer
        ("", "is empty: give a list of values or a distribution {dist: ..., low: ..., high: ...}"),
        ("true", "True is not allowed here: give a list of values or a distribution {dist: ..., low: ..., high: ...}"),
    ],
)
def test_a_sweep_value_with_no_fix_to_offer_ends_without_a_try(value, message):
    assert problem_list(SWEEP.replace("VALUE", value)) == [("sweep.params.optimizer.lr", message)]


def refused(value: object, members: list[object], default: object = None) -> str:
    """The message of a future union key `data.size` of these members, with this default, refusing the value."""
    field = pydantic.Field(default=default)
    return validation._refused(value, validation.UnionKey(("data", "size"), members, members[0], field)).message


@pytest.mark.parametrize(
    ("members", "default", "message"),
    [
        # two members a learner would name alike (a plain and a strict whole number): one kind, no `or`
        (
            [int, typing.Annotated[int, pydantic.Field(strict=True)]],
            None,
            "'big' is not allowed here: give a whole number",
        ),
        (
            [int, typing.Literal["auto"], list[int]],
            None,
            "'big' is not allowed here: give a whole number, auto or a list of whole numbers. "
            "Try: [big] (a list of one)",
        ),
        (
            [int, tuple[int, int]],
            (64, 64),
            "'big' is not allowed here: give a whole number or a list of 2 whole numbers. Try: [64, 64] (the default)",
        ),
        (
            [bool, typing.Literal["auto"]],
            True,
            "'big' is not allowed here: give true or false or auto. Try: true (the default)",
        ),
    ],
)
def test_a_future_union_key_names_each_kind_it_takes_and_its_default_in_yaml(members, default, message):
    assert refused("big", members, default) == message


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        (typing.Literal["min", "max"], "min or max"),
        (typing.Literal["auto"], "auto"),
        (tuple[int, ...], "a list of whole numbers"),
        (tuple[int, int], "a list of 2 whole numbers"),
        (list[bool], "a list of true or false"),
        (list[float], "a list of numbers"),
        (type(None), "nothing"),
        (list[type(None)], "a list of nothing"),
        # a class the learner's words have no noun for is named as Python names it
        (Path, "a Path"),
        (list[Path], "a list of Paths"),
    ],
)
def test_choices_and_lists_of_any_length_are_named_in_the_learners_words(kind, words):
    assert validation._words(kind) == words


def test_a_list_of_exactly_one_item_is_named_not_a_crash():
    assert validation._words(tuple[int]).startswith("a list of 1 whole number")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("train: Device:cpu", "reads as the text 'Device:cpu': a space is missing after ':'. Try: Device: cpu"),
        ("train: Epochs=3", "reads as the text 'Epochs=3': YAML keys take ':', not '='. Try: Epochs: 3"),
    ],
)
def test_a_section_that_reads_as_a_plain_value_says_why_whatever_the_case_of_its_key(line, message):
    assert problems_of(SMALL_CONFIG + line + "\n") == {"train": message}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("type: mnist", "needs a 'dataset' key; 'type' is another tool's word for it. Try: dataset: mnist"),
        ("root: x", "needs a 'dataset' key saying which one to use"),
    ],
)
def test_a_data_section_without_a_dataset_says_which_key_chooses_it(line, message):
    assert problem_list(SMALL_CONFIG.replace("dataset: synthetic", line)) == [("data", message)]


def test_a_dataset_outside_the_choices_is_reported_at_the_dataset_key_with_the_closest():
    found = problem_list(SMALL_CONFIG.replace("dataset: synthetic", "dataset: mnistt"))
    assert found == [
        (
            "data.dataset",
            "'mnistt' is not one of the choices (did you mean 'mnist'?). "
            "Choose one of: mnist, fashion_mnist, cifar10, cifar100, image_folder, csv, synthetic",
        )
    ]


def test_a_comma_list_for_a_key_of_one_number_points_at_a_sweep():
    assert problem_list(SMALL_CONFIG + "train: {epochs: '2,3'}\n") == [
        (
            "train.epochs",
            "takes one value, not the list '2,3'. Try: one value; to train with each, "
            "python -m trainer sweep CONFIG train.epochs=2,3",
        )
    ]
