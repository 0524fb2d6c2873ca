"""Every promise the README and docs/ make to a user, and the tests that check it.

    python tests/promises.py       each promise and its tests; exit 1 naming the promises no test checks

A promise is a command line of a shell code block (`python -m trainer ...`, `trainer ...`, `tensorboard ...`,
`torchrun ...`, `pip ...`), a row of a table, or a key of docs/config.md. Command lines and rows are checked by the
tests named for them in CHECKED_BY below: a new line in the docs fails tests/test_promises.py until a test is named
for it there. A key of docs/config.md is checked by the test files that set it (`key:` or `key=` in a config they
write); those are found by reading the tests. docs/troubleshooting.md is made from the gallery tests/mistakes/,
whose every case tests/test_mistakes.py runs. Only the standard library: this runs in well under a second.
"""

from __future__ import annotations

import ast
import functools
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
PROGRAMS = ("python", "trainer", "tensorboard", "torchrun", "pip", "pytest")
GENERATED = {"docs/troubleshooting.md": "made from the gallery tests/mistakes/ (every case run by test_mistakes.py)"}
RUNS_THE_README = "test_printed_commands.py::test_every_command_line_of_the_readme_runs_on_tiny_data"

# promise -> the tests that check what it says ("file.py::test_name", in tests/).
CHECKED_BY: dict[str, list[str]] = {
    # README.md: command lines
    "README.md: pip install -e .": ["test_promised_features.py::test_the_trainer_console_script_is_python_m_trainer"],
    "README.md: python -m trainer configs/mnist.yaml": [
        "test_shipped_files.py::test_config_trains_one_epoch_on_tiny_data",
        "test_data.py::test_mnist_trains_end_to_end_on_fake_files",
        RUNS_THE_README,
    ],
    'README.md: pip install -e ".[dev]"': [
        "test_promised_features.py::test_the_dev_extra_installs_every_package_the_tests_import",
    ],
    "README.md: pytest": [
        "test_promised_features.py::test_the_dev_extra_installs_every_package_the_tests_import",
        "test_promises.py::test_every_promise_of_the_docs_has_a_test",
    ],
    "README.md: python -m trainer configs/mnist.yaml optimizer.lr=3e-4 train.epochs=5": [
        "test_cli.py::test_show_prints_each_value_and_where_it_comes_from",
        "test_config_errors.py::test_overrides_reach_inside_short_form_sections",
        RUNS_THE_README,
    ],
    "README.md: python -m trainer configs/mnist.yaml model.channels=[16,32] data.root=~/datasets": [RUNS_THE_README],
    "README.md: tensorboard --logdir runs": ["test_tensorboard_server.py::test_tensorboard_serves_the_run_scalars"],
    "README.md: python -m trainer check configs/mnist.yaml": [
        "test_diagnostics.py::test_check_command_prints_the_checklist_and_exit_code",
        RUNS_THE_README,
    ],
    "README.md: python -m trainer lr-find configs/mnist.yaml": [
        "test_lr_find.py::test_lr_find_command_prints_a_suggestion_to_paste",
        RUNS_THE_README,
    ],
    "README.md: python -m trainer resume runs/mnist-cnn/<date-time> train.epochs=5": [
        "test_resume.py::test_resumed_run_gives_the_same_losses_to_the_last_bit",
        "test_resume.py::test_resuming_a_finished_run_says_how_to_train_longer",
        RUNS_THE_README,
    ],
    "README.md: python -m trainer eval runs/mnist-cnn/<date-time>": [
        "test_inference.py::test_eval_reports_the_same_test_metrics_as_training",
        RUNS_THE_README,
    ],
    "README.md: python -m trainer predict runs/mnist-cnn/<date-time> my_digit.png": [
        "test_inference.py::test_predict_labels_image_files_and_writes_a_csv",
        RUNS_THE_README,
    ],
    "README.md: python -m trainer export runs/mnist-cnn/<date-time>": [
        "test_export.py::test_an_onnx_export_runs_in_onnx_runtime_as_the_run_does_and_predict_takes_it",
        RUNS_THE_README,
    ],
    "README.md: python -m trainer report runs/mnist-cnn/<date-time>": [
        "test_report.py::test_a_run_report_holds_curves_confusion_worst_predictions_diagnosis_and_config",
        "test_report.py::test_the_report_renders_in_a_browser_with_nothing_fetched",
        RUNS_THE_README,
    ],
    "docs/getting-started.md: python -m trainer export runs/my-photos/<date-time>": [
        "test_export.py::test_an_onnx_export_runs_in_onnx_runtime_as_the_run_does_and_predict_takes_it",
    ],
    "docs/getting-started.md: python -m trainer predict runs/my-photos/<date-time>/export/model.onnx holiday.jpg": [
        "test_export.py::test_an_onnx_export_runs_in_onnx_runtime_as_the_run_does_and_predict_takes_it",
    ],
    "README.md: python -m trainer predict runs/iris/<date-time> new_rows.csv": [
        "test_tables.py::test_predict_reads_new_rows_of_a_table",
        RUNS_THE_README,
    ],
    "README.md: python -m trainer show configs/mnist.yaml": [
        "test_cli.py::test_show_prints_each_value_and_where_it_comes_from",
        RUNS_THE_README,
    ],
    "README.md: python -m trainer init --template csv -o my_table.yaml": [
        "test_cli.py::test_init_writes_a_commented_config_that_validates",
        RUNS_THE_README,
    ],
    "README.md: python -m trainer eject configs/mnist.yaml -o train_mnist.py": [
        "test_eject.py::test_an_ejected_mnist_cnn_gives_the_same_losses",
        RUNS_THE_README,
    ],
    "README.md: python -m trainer --help": [
        "test_promised_features.py::test_help_lists_every_command_with_examples_and_exits_0",
        "test_promised_features.py::test_each_command_has_its_own_help_with_debug",
    ],
    "README.md: python -m trainer sweep configs/mnist.yaml optimizer.lr=1e-3,3e-3,1e-2 "
    "model.channels=[16,32],[32,64]": [
        "test_sweep.py::test_a_two_by_two_grid_gives_four_runs_a_table_and_the_best_config",
        RUNS_THE_README,
    ],
    "README.md: python -m trainer sweep configs/spirals_sweep.yaml --jobs 2": [
        "test_sweep.py::test_trials_run_in_parallel_processes",
        RUNS_THE_README,
    ],
    "README.md: python -m trainer sweep --resume runs/spirals-sweep/sweep-<date-time>": [
        "test_sweep.py::test_a_stopped_sweep_resumes_with_only_the_missing_trials",
        RUNS_THE_README,
    ],
    "README.md: python -m trainer try configs/mnist.yaml optimizer.lr=x0.3,x3 --epochs 1": [
        "test_sweep.py::test_try_multiplies_the_configs_own_value",
        RUNS_THE_README,
    ],
    "README.md: python -m trainer runs": [
        "test_sweep.py::test_runs_lists_finished_stopped_and_failed_runs",
        "test_folders.py::test_status_tells_finished_stopped_and_failed_runs_apart",
        RUNS_THE_README,
    ],
    "README.md: python -m trainer diff runs/mnist-cnn/<A> runs/mnist-cnn/<B>": [
        "test_sweep.py::test_diff_shows_the_keys_that_differ_and_the_metrics_side_by_side",
        RUNS_THE_README,
    ],
    # README.md: tables
    "README.md: mnist, fashion_mnist": [
        "test_data.py::test_mnist_trains_end_to_end_on_fake_files",
        "test_data.py::test_fashion_mnist_reads_its_own_folder",
        "test_shipped_files.py::test_config_trains_one_epoch_on_tiny_data",
    ],
    "README.md: cifar10, cifar100": [
        "test_cifar.py::test_cifar_is_held_as_uint8_and_normalized_per_batch",
        "test_cifar.py::test_cifar_trains_from_the_cli_and_predict_names_the_classes",
    ],
    "README.md: image_folder": [
        "test_image_folder.py::test_photos_train_and_the_loss_falls_whether_cached_or_read_from_disk"
    ],
    "README.md: csv": [
        "test_tables.py::test_iris_trains_to_90_percent_test_accuracy_in_seconds",
        "test_tables.py::test_diabetes_explains_a_third_of_the_variance_in_seconds",
    ],
    "README.md: synthetic": [
        "test_data.py::test_synthetic_spirals_and_blobs_have_the_asked_shape",
        "test_promised_features.py::test_a_2d_toy_problem_shows_the_decision_regions_of_each_class",
        "test_promised_features.py::test_a_sine_run_shows_the_fitted_curve_through_the_samples",
    ],
    "README.md: config.yaml": ["test_training.py::test_rerunning_the_saved_config_reproduces_the_run"],
    "README.md: events.out.tfevents.*": ["test_training.py::test_event_files_hold_the_scalars_and_real_hparams"],
    "README.md: metrics.jsonl": [
        "test_training.py::test_run_folder_holds_every_promised_file",
        "test_training_options.py::test_best_checkpoint_follows_the_monitor",
    ],
    "README.md: summary.json": ["test_training.py::test_run_folder_holds_every_promised_file"],
    "README.md: checkpoints/last.pt, best.pt": [
        "test_training_options.py::test_best_checkpoint_follows_the_monitor",
        "test_faults.py::test_a_damaged_checkpoint_is_named_and_the_other_one_offered",
    ],
    "README.md: model.txt": ["test_promised_features.py::test_the_keys_of_the_built_in_models_shape_their_layers"],
    "README.md: diagnosis.txt": [
        "test_diagnostics.py::test_warnings_are_kept_in_diagnosis_txt_and_tensorboard",
        "test_promised_features.py::test_advice_on_the_curves_reaches_the_console_once_and_the_runs_diagnosis",
    ],
}
RECIPE_TESTS = {
    "autograd_vs_chain_rule.py": [
        "test_recipes.py::test_chain_rule_gradients_agree_with_autograd_and_the_tiny_network_trains"
    ],
    "custom_model.py": ["test_recipes.py::test_custom_model_learns_synthetic_digits"],
    "custom_loss.py": ["test_recipes.py::test_custom_loss_matches_torch_label_smoothing_and_trains"],
    "transfer_learning.py": ["test_recipes.py::test_transfer_learning_trains_only_the_new_head"],
    "regression_csv.py": [
        "test_recipes.py::test_regression_on_diabetes_explains_a_third_of_the_spread_like_least_squares"
    ],
    "autoencoder.py": ["test_recipes.py::test_autoencoder_error_falls_and_its_images_are_in_tensorboard"],
    "custom_model_and_loss.py": [
        "test_shipped_files.py::test_recipe_trains_a_custom_model_with_a_custom_loss",
        "test_recipes.py::test_custom_model_and_focal_loss_train_together_and_focal_loss_without_focus_is_cross_entropy",
    ],
}
CHECKED_BY |= {f"README.md: {recipe}": tests for recipe, tests in RECIPE_TESTS.items()}
CHECKED_BY |= {f"docs/recipes.md: {recipe}": tests for recipe, tests in RECIPE_TESTS.items()}
CHECKED_BY |= {
    # docs/getting-started.md
    "docs/getting-started.md: pip install -e .": CHECKED_BY["README.md: pip install -e ."],
    "docs/getting-started.md: python -m trainer configs/mnist.yaml": CHECKED_BY[
        "README.md: python -m trainer configs/mnist.yaml"
    ],
    "docs/getting-started.md: tensorboard --logdir runs": CHECKED_BY["README.md: tensorboard --logdir runs"],
    "docs/getting-started.md: python -m trainer configs/mnist.yaml optimizer.lr=1e-3 train.epochs=5": [
        "test_config_errors.py::test_overrides_reach_inside_short_form_sections"
    ],
    "docs/getting-started.md: python -m trainer configs/mnist.yaml model.channels=[16,32]": [RUNS_THE_README],
    "docs/getting-started.md: python -m trainer try configs/mnist.yaml optimizer.lr=x0.3,x3 --epochs 1": [
        "test_sweep.py::test_try_multiplies_the_configs_own_value"
    ],
    "docs/getting-started.md: python -m trainer show configs/mnist.yaml optimizer.lr=1e-3": [
        "test_cli.py::test_show_prints_each_value_and_where_it_comes_from"
    ],
    "docs/getting-started.md: python -m trainer eject configs/mnist.yaml -o train_mnist.py": [
        "test_eject.py::test_an_ejected_mnist_cnn_gives_the_same_losses"
    ],
    "docs/getting-started.md: python train_mnist.py": [
        "test_eject.py::test_an_ejected_mnist_cnn_gives_the_same_losses"
    ],
    "docs/getting-started.md: Custom Scalars": [
        "test_tensorboard_server.py::test_train_and_val_share_a_chart_and_hparams_shows_what_varied"
    ],
    "docs/getting-started.md: Scalars": ["test_training.py::test_event_files_hold_the_scalars_and_real_hparams"],
    "docs/getting-started.md: Images": [
        "test_training_options.py::test_classification_runs_report_top5_per_class_accuracy_and_pictures",
        "test_promised_features.py::test_a_2d_toy_problem_shows_the_decision_regions_of_each_class",
    ],
    "docs/getting-started.md: Graphs": ["test_training_options.py::test_histograms_and_graph_reach_tensorboard"],
    "docs/getting-started.md: HParams": [
        "test_training.py::test_event_files_hold_the_scalars_and_real_hparams",
        "test_tensorboard_server.py::test_train_and_val_share_a_chart_and_hparams_shows_what_varied",
    ],
    "docs/getting-started.md: Text": [
        "test_diagnostics.py::test_warnings_are_kept_in_diagnosis_txt_and_tensorboard",
        "test_tensorboard_server.py::test_train_and_val_share_a_chart_and_hparams_shows_what_varied",
    ],
    # docs/distributed.md
    "docs/distributed.md: torchrun --standalone --nproc_per_node=4 -m trainer configs/cifar10.yaml": [
        "test_distributed.py::test_two_processes_train_like_one_with_the_same_global_batch"
    ],
    "docs/distributed.md: torchrun --nnodes=2 --nproc_per_node=8 --rdzv-backend=c10d "
    "--rdzv-endpoint=HOST_OF_MACHINE_0:29500 --rdzv-id=my-run -m trainer configs/cifar10.yaml": [
        "test_distributed.py::test_processes_started_with_different_configs_stop_with_a_message"
    ],
    "docs/distributed.md: OMP_NUM_THREADS=1 torchrun --standalone --nproc_per_node=2 -m trainer "
    "configs/synthetic.yaml": ["test_distributed.py::test_two_processes_train_like_one_with_the_same_global_batch"],
    # docs/trust.md
    "docs/trust.md: python -m trainer check config.yaml model.name=os:system": [
        "test_trust.py::test_the_standard_library_is_refused_before_anything_is_imported"
    ],
    "docs/trust.md: model.name": [
        "test_trust.py::test_a_reference_of_the_wrong_kind_is_refused_before_it_is_called",
        "test_trust.py::test_the_learners_own_model_and_loss_are_accepted",
    ],
    "docs/trust.md: loss.name": [
        "test_trust.py::test_a_reference_of_the_wrong_kind_is_refused_before_it_is_called",
        "test_trust.py::test_the_learners_own_model_and_loss_are_accepted",
    ],
    "docs/config.md: sweep.jobs": ["test_sweep.py::test_trials_run_in_parallel_processes"],  # --jobs 2
    # docs/architecture.md: the hooks table
    **{
        f"docs/architecture.md: {hook}": [
            "test_callbacks.py::test_every_hook_is_called_in_order_with_what_the_contract_says"
        ]
        for hook in (
            "on_fit_start(trainer)",
            "on_step_log(trainer, step, values)",
            "on_epoch_end(trainer, epoch, metrics)",
            "on_warning(trainer, text)",
            "on_fit_end(trainer, metrics)",
        )
    },
    "docs/architecture.md: on_exception(trainer, error)": [
        "test_callbacks.py::test_a_failed_run_tells_every_callback_and_the_error_is_not_hidden"
    ],
    "docs/troubleshooting.md": [
        "test_mistakes.py::test_mistake_gives_a_message_with_place_and_fix",
        "test_mistakes.py::test_troubleshooting_page_is_generated_from_the_gallery",
    ],
}


def docs() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def code_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of every fenced code block."""
    return re.findall(r"^```(\w*)\n(.*?)^```", text, re.MULTILINE | re.DOTALL)


def command_lines(path: Path) -> list[str]:
    """The command lines of a page's shell code blocks: without their `$ ` prompt and comments, a line ending in
    a backslash joined to the next, `a && b` split in two."""
    lines = []
    for language, body in code_blocks(path.read_text()):
        if language not in ("", "sh", "bash", "console"):
            continue
        for line in body.replace("\\\n", " ").splitlines():
            for command in re.split(r"\s+#\s", line.removeprefix("$ "))[0].split(" && "):
                words = [w for w in command.split() if not re.fullmatch(r"[A-Z_]+=\S*", w)]  # VAR=1 before it
                if words and words[0] in PROGRAMS:
                    lines.append(" ".join(command.split()))
    return lines


def plain(cell: str) -> str:
    """A table cell as text: links reduced to their text, no backticks."""
    return re.sub(r"\[([^]]*)\]\([^)]*\)", r"\1", cell).replace("`", "").strip()


def table_rows(path: Path) -> list[str]:
    """The first cell of every row (not the header) of every table of a page outside its code blocks."""
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.MULTILINE | re.DOTALL)
    rows, header_seen = [], False
    for line in text.splitlines():
        if not line.startswith("|"):
            header_seen = False
            continue
        cells = line.strip().strip("|").split("|")
        if set(line) <= set("|-: "):  # the line under the header
            continue
        if header_seen:
            rows.append(plain(cells[0]))
        header_seen = True
    return rows


def config_keys() -> list[str]:
    """Every key of docs/config.md as a dotted name: `train.grad_clip`, `data.path`, `sweep.params.low`."""
    keys, section = [], ""
    for line in (REPO / "docs" / "config.md").read_text().splitlines():
        if line.startswith("## "):
            title = line[3:].strip()
            section = "" if title == "(top level)" else re.split(r"[ :(]", title)[0]
        elif line.startswith("| `"):
            key = ".".join(filter(None, [section, plain(line.split("|")[1])]))
            if key not in keys:
                keys.append(key)
    return keys


def promises() -> list[str]:
    """Every promise, named as in CHECKED_BY: 'README.md: python -m trainer runs', 'docs/config.md: seed'."""
    found = []
    for path in docs():
        name = path.relative_to(REPO).as_posix()
        if name in GENERATED:
            found.append(name)
        elif name == "docs/config.md":
            found += [f"{name}: {key}" for key in config_keys()]
        else:
            found += [f"{name}: {item}" for item in [*command_lines(path), *table_rows(path)]]
    return list(dict.fromkeys(found))


def test_functions() -> dict[str, set[str]]:
    """The test functions of every test file: {file name: {test names}}."""
    return {
        path.name: {node.name for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.FunctionDef)}
        for path in sorted(TESTS.glob("test_*.py"))
    }


@functools.cache
def configs_in_tests() -> tuple[dict[str, str], list[str]]:
    """The text of every test file ({name: text}), and of every config of the gallery tests/mistakes/."""
    texts = {path.name: path.read_text() for path in sorted(TESTS.glob("*.py"))}
    return texts, [path.read_text() for path in sorted((TESTS / "mistakes").glob("*/*.yaml"))]


def files_setting(key: str) -> list[str]:
    """The test files (and gallery cases) that write `key` into a config: `leaf:` or `leaf=`, or `section.leaf=`."""
    leaf = key.rsplit(".", 1)[-1]
    pattern = re.compile(rf"(?<![\w.-]){re.escape(leaf)}\s*[:=]|{re.escape(key)}=")
    texts, gallery = configs_in_tests()
    cases = sum(bool(pattern.search(text)) for text in gallery)
    return [name for name, text in texts.items() if pattern.search(text)] + (
        [f"mistakes/ ({cases} cases)"] if cases else []
    )


def check() -> tuple[dict[str, list[str]], list[str]]:
    """Each promise with its tests, and the problems: promises without a test, tests named that do not exist,
    entries of CHECKED_BY that name no promise any more."""
    functions = test_functions()
    found, problems = {}, []
    current = promises()
    for promise in current:
        if promise.startswith("docs/config.md: "):
            tests = [*CHECKED_BY.get(promise, []), *files_setting(promise.removeprefix("docs/config.md: "))]
        else:
            tests = CHECKED_BY.get(promise, [])
        found[promise] = tests
        if not tests:
            problems.append(f"no test checks {promise!r}: write one and name it in tests/promises.py CHECKED_BY")
        for test in tests:
            file, _, name = test.partition("::")
            if name and name not in functions.get(file, set()):
                problems.append(f"{promise!r}: {test} does not exist (renamed?): update tests/promises.py")
    problems += [f"CHECKED_BY names {p!r}, which no page says any more" for p in CHECKED_BY if p not in current]
    return found, problems


def main() -> int:
    found, problems = check()
    for promise, tests in found.items():
        print(promise)
        for test in tests:
            print(f"    {test}")
    print(f"\n{len(found)} promises, {sum(bool(t) for t in found.values())} with a test")
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
