"""`report` writes report.html into a run or a sweep folder: one self-contained page, checked here as text, in a
real headless Chromium (what a person sees, with no request leaving the page), and in a notebook."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import SYNTHETIC
from tests.test_notebooks import no_warning_and_no_error, run_notebook
from tests.test_tensorboard_browser import Page, find_chromium, start, stop


def mnist_run(fake_mnist: Path, write_config, run_cli, tmp_path: Path) -> tuple[Path, str]:
    text = f"data: {{dataset: mnist, root: {fake_mnist}, batch_size: 32}}\nmodel: {{name: cnn, channels: [8]}}\n"
    code, out, err = run_cli(write_config(text), "train.epochs=2", "log.dir=runs")
    assert code == 0, err
    (run_dir,) = (tmp_path / "runs" / "config").iterdir()
    return run_dir, out


def self_contained(page: str) -> None:
    """Nothing in the page is fetched: no script or style file, no picture by URL, no font."""
    assert not re.search(r"""(src|href)\s*=\s*["'](https?:)?//""", page)
    assert "<script" not in page and "<link" not in page and "@import" not in page and "url(" not in page


def test_a_run_report_holds_curves_confusion_worst_predictions_diagnosis_and_config(
    fake_mnist, write_config, run_cli, tmp_path
):
    run_dir, out = mnist_run(fake_mnist, write_config, run_cli, tmp_path)
    relative = run_dir.relative_to(tmp_path)
    assert f"one page of it to open or send: python -m trainer report {relative}" in out  # the end of the run
    code, out, err = run_cli("report", relative)
    assert code == 0, err
    assert f"report: {relative / 'report.html'}" in out
    page = (run_dir / "report.html").read_text()
    self_contained(page)
    assert 'aria-label="loss"' in page and 'aria-label="accuracy"' in page  # a chart per metric
    loss_chart = page[page.index('aria-label="loss"') :].split("</svg>")[0]
    assert ">train</text>" in loss_chart and ">val</text>" in loss_chart  # train and val on one chart
    assert 'aria-label="learning rate (at the end of each epoch)"' in page
    summary = json.loads((run_dir / "summary.json").read_text())
    assert f"on the test split ({sum(map(sum, summary['confusion_matrix']))} samples)" in page
    for name, row in zip(range(10), summary["confusion_matrix"], strict=True):  # the counts the run itself found
        shown = re.search(rf"<tr><th>{name}</th>(.*?)</tr>", page)
        assert shown is not None and re.findall(r">(\d+)</td>", shown[1])[:10] == [str(c) for c in row]
    pictures = re.findall(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]+" alt="true (\d), predicted (\d)"', page)
    assert len(pictures) == 12
    right = [true == predicted for true, predicted in pictures]
    assert right == sorted(right)  # the wrong ones first, then the right ones the model was least sure of
    assert "<h2>Diagnosis</h2>" in page and "<h2>Config</h2>" in page and "channels: [8]" in page


def test_a_table_run_report_shows_its_worst_rows_as_the_csv_had_them(write_config, run_cli, tmp_path):
    rows = ["size,colour,label"] + [
        f"{i % 7},{'red' if i % 3 else 'blue'},{'big' if (i * 7919) % 11 > 4 else 'small'}" for i in range(120)
    ]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    config = write_config("data: {dataset: csv, path: t.csv, target: label}\nmodel: {name: mlp, hidden: [8]}\n")
    assert run_cli(config, "train.epochs=2", "log.dir=runs")[0] == 0
    (run_dir,) = (tmp_path / "runs" / "config").iterdir()
    code, _, err = run_cli("report", run_dir)
    assert code == 0, err
    page = (run_dir / "report.html").read_text()
    self_contained(page)
    assert "<th>size</th><th>colour</th><th>true</th><th>predicted</th>" in page
    cells = re.findall(r"<tr><td>([\d.]+)</td><td>(red|blue)</td><td><b>(big|small)</b></td>", page)
    assert cells and all(float(size) in range(7) for size, _, _ in cells)  # the sizes of the CSV, unstandardized
    assert "<th>true \\ predicted</th><th>big</th><th>small</th>" in page


def test_a_sweep_report_ranks_the_trials_and_plots_each_swept_value(write_config, run_cli, tmp_path):
    config = write_config(SYNTHETIC)
    code, out, err = run_cli("sweep", config, "optimizer.lr=1e-3,3e-2", "model.hidden=[8],[16]", "train.epochs=1")
    assert code == 0, err
    (sweep_dir,) = (tmp_path / "runs" / "tiny").glob("sweep-*")
    assert f"python -m trainer report {sweep_dir.relative_to(tmp_path)}" in out
    code, _, err = run_cli("report", sweep_dir)
    assert code == 0, err
    page = (sweep_dir / "report.html").read_text()
    self_contained(page)
    table = (sweep_dir / "sweep_summary.csv").read_text().splitlines()
    best = table[1].split(",")[0]
    assert re.search(rf'<tr class="best"><td>{best}</td>', page)  # the sweep's own ranking, best first
    order = re.findall(r"<td>(trial-\d+)</td>", page)
    assert order == [line.split(",")[0] for line in table[1:]]
    assert 'aria-label="optimizer.lr"' in page and 'aria-label="model.hidden"' in page
    assert page.count('fill="#d62728" fill-opacity') == 2  # the best trial, marked in each of the two charts


def test_a_report_without_the_data_still_shows_the_curves_and_says_why_the_predictions_are_missing(
    fake_mnist, write_config, run_cli, tmp_path
):
    run_dir, _ = mnist_run(fake_mnist, write_config, run_cli, tmp_path)
    shutil.rmtree(fake_mnist)
    code, _, err = run_cli("report", run_dir)
    assert code == 0, err
    page = (run_dir / "report.html").read_text()
    assert "Not shown: the run&#x27;s data could not be read here" in page and 'aria-label="loss"' in page


def test_a_report_of_a_folder_that_is_no_run_names_the_runs_to_give(fake_mnist, write_config, run_cli, tmp_path):
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli("report", "empty")
    assert code == 2 and "'empty'" in err and "Try:" in err and "Traceback" not in err
    run_dir, _ = mnist_run(fake_mnist, write_config, run_cli, tmp_path)
    code, _, err = run_cli("report", "runs")  # the folder above the runs
    assert code == 2 and f"python -m trainer report {run_dir.relative_to(tmp_path)}" in err
    code, _, err = run_cli("report", "runs/nothing")
    assert code == 2 and "'runs/nothing' does not exist" in err


@pytest.mark.slow  # a browser starts
def test_the_report_renders_in_a_browser_with_nothing_fetched(fake_mnist, write_config, run_cli, tmp_path):
    pytest.importorskip("websocket", reason="websocket-client (in the dev extra) is not installed")
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no Chromium on PATH (chromium, chromium-browser or google-chrome): apt install chromium")
    run_dir, _ = mnist_run(fake_mnist, write_config, run_cli, tmp_path)
    assert run_cli("report", run_dir)[0] == 0
    command = [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-port=0"]
    command += ["--remote-allow-origins=*", f"--user-data-dir={tmp_path / 'chromium'}", "--window-size=1200,1600"]
    browser = page = None
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(lambda: stop(browser))
        cleanup.callback(lambda: page is not None and page.close())
        browser, listening = start([*command, "about:blank"], "DevTools listening on ws://")
        page = Page(listening.split()[-1])
        page.call("Network.enable")
        page.open((run_dir / "report.html").as_uri())
        seen = page.evaluate("""
            const shown = (e) => e.getBoundingClientRect().width > 0 && e.getBoundingClientRect().height > 0;
            return {
              lines: visibleLines(document.body),
              charts: [...document.querySelectorAll('svg.chart')].filter(shown).length,
              lines_drawn: [...document.querySelectorAll('svg.chart polyline')]
                .filter((e) => e.getBoundingClientRect().width > 0).length,
              pictures: [...document.querySelectorAll('img')].map((i) => i.complete && i.naturalWidth > 0 && shown(i)),
            };
        """)
        requested = [
            e["params"]["request"]["url"] for e in page.events if e.get("method") == "Network.requestWillBeSent"
        ]
    lines = seen["lines"]
    for heading in ("Results", "Learning curves", "Confusion matrix", "Worst predictions", "Diagnosis", "Config"):
        assert heading in lines, lines
    assert seen["charts"] >= 3 and seen["lines_drawn"] >= 4  # loss, accuracy (train and val each), top5, lr
    assert seen["pictures"] and all(seen["pictures"]), seen
    assert all(url.startswith(("file:", "data:")) for url in requested), requested


@pytest.mark.slow  # a kernel starts and imports torch
def test_a_report_shows_inline_in_a_notebook(fake_mnist, write_config, run_cli, tmp_path, monkeypatch):
    run_dir, _ = mnist_run(fake_mnist, write_config, run_cli, tmp_path)
    cell = f"from trainer.report import Report\nReport({str(run_dir)!r})"
    (outputs,) = run_notebook(tmp_path, monkeypatch, cell)
    no_warning_and_no_error(outputs)
    html = next(output["data"]["text/html"] for output in outputs if "text/html" in output.get("data", {}))
    assert html.startswith("<iframe srcdoc=") and "Worst predictions" in html and "&lt;svg" in html
    assert (run_dir / "report.html").is_file()  # written on the way, as the command writes it
