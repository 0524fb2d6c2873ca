"""Commands that help write configs: show (each value and its origin) and init (a starter config)."""

from __future__ import annotations

import pytest

from tests.conftest import SYNTHETIC


def test_show_prints_each_value_and_where_it_comes_from(write_config, run_cli):
    config = write_config("data: {dataset: synthetic}\nmodel: {name: mlp}\nloss: cross_entropy\n")
    code, out, _ = run_cli("show", config, "optimizer.lr=0.05")
    assert code == 0
    rows = {line.split()[0]: line for line in out.splitlines()[2:]}
    assert rows["data.dataset"].split()[1:] == ['"synthetic"', f"{config}:1"]
    assert rows["loss.name"].endswith(f"{config}:3")  # the shorthand line names the loss
    assert rows["optimizer.lr"].endswith("command line 'optimizer.lr=0.05'")
    assert rows["train.epochs"].split()[1:] == ["3", "default"]
    assert rows["name"].split()[1:] == ['"config"', "the", "file's", "name"]


@pytest.mark.parametrize("template", ["mnist", "cifar10", "image_folder", "csv", "synthetic"])
def test_init_writes_a_commented_config_that_validates(template, run_cli, tmp_path):
    from trainer.cli import load_config
    from trainer.run import check_components

    code, out, _ = run_cli("init", "--template", template, "-o", "starter.yaml")
    assert code == 0 and "python -m trainer check starter.yaml" in out
    text = (tmp_path / "starter.yaml").read_text()
    keys = [line for line in text.splitlines() if not line.startswith("#")]
    assert keys and all("  # " in line for line in keys)  # a comment on every key
    cfg, _ = load_config(str(tmp_path / "starter.yaml"), [])
    check_components(cfg)
    assert cfg.name == "starter" and cfg.data.dataset == template


def test_init_says_what_each_component_sections_other_keys_do_with_an_example_of_that_section(run_cli, tmp_path):
    run_cli("init", "--template", "mnist", "-o", "starter.yaml")
    names = {}
    section = ""
    for line in (tmp_path / "starter.yaml").read_text().splitlines():
        if not line.startswith(" "):
            section = line.partition(":")[0]
        elif line.strip().startswith("name:"):
            names[section] = line
    assert "(e.g. label_smoothing for cross_entropy)" in names["loss"]
    assert "(e.g. weight_decay for adamw)" in names["optimizer"]
    assert "(e.g. step_size for step)" in names["scheduler"]
    assert "other keys" not in names["model"]  # the cnn's keys are all listed: none are passed on


def test_init_refuses_to_overwrite_and_unknown_templates(run_cli, tmp_path):
    (tmp_path / "my_config.yaml").write_text("keep me")
    code, _, err = run_cli("init")
    assert code == 2 and "exists already" in err and (tmp_path / "my_config.yaml").read_text() == "keep me"
    code, _, err = run_cli("init", "--template", "mnsit", "-o", "x.yaml")
    assert code == 2 and "did you mean 'mnist'" in err


def test_a_command_missing_its_argument_says_so_with_an_example(run_cli, capfd):
    with pytest.raises(SystemExit) as stopped:
        run_cli("eval")
    err = capfd.readouterr().err
    assert stopped.value.code == 2
    assert "error: python -m trainer eval: the following arguments are required: RUN_OR_CHECKPOINT\n" in err
    assert "Try: python -m trainer runs  (lists the run folders), then: python -m trainer eval RUN_OR_CHECKPOINT" in err
    assert "usage:" not in err


def test_a_failed_check_says_to_check_again_not_to_train(write_config, run_cli):
    config = write_config(SYNTHETIC)
    code, out, _ = run_cli("check", config, "loss=mse")
    assert code == 2 and "[FAIL] loss vs targets" in out
    assert "Train with" not in out
    assert out.rstrip().endswith(
        f"1 problem(s) to fix first, then check again: python -m trainer check {config} loss=mse"
    )
    code, out, _ = run_cli("check", config)
    assert code == 0 and out.rstrip().endswith(f"checks: ready to train. Train with: python -m trainer {config}")


def test_a_run_folder_under_a_file_names_the_file_and_a_log_dir_that_works(write_config, run_cli, tmp_path):
    from trainer.errors import UserError
    from trainer.logger import new_run_dir

    (tmp_path / "notes.txt").write_text("keep me")
    code, _, err = run_cli(write_config(SYNTHETIC), "log.dir=notes.txt/runs")
    assert code == 2
    assert "command line 'log.dir=notes.txt/runs': log.dir: cannot make the run folder notes.txt/runs/tiny/" in err
    assert "notes.txt is a file, not a folder\n  Try: log.dir=runs (a folder, or a path not yet there)" in err
    with pytest.raises(UserError) as refused:  # said by leaptrain itself, before mkdir fails with "Not a directory"
        new_run_dir(tmp_path / "notes.txt" / "runs", "tiny")
    assert refused.value.key == "log.dir" and f"{tmp_path / 'notes.txt'} is a file" in refused.value.message
    assert (tmp_path / "notes.txt").read_text() == "keep me"
