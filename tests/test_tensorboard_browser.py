"""What a learner sees in TensorBoard after a run: a real headless Chromium, driven over the Chrome DevTools
Protocol, opens a real TensorBoard server and reads the text the page shows, through the dashboards' shadow roots.

The Custom Scalars tab shows the category "train and val" with the loss chart ahead of the accuracy chart, and the
loss chart draws both the train and the val loss; the Text tab shows the resolved config and the diagnosis.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import queue
import shutil
import subprocess
import threading
import time
from typing import Any

import pytest

from tests.board_server import tensorboard
from tests.conftest import SYNTHETIC
from trainer.board import diagnosis_text

SECONDS = 20  # how long a tab may take to show what is asked, after the page has loaded

# The text a person can see, line by line: every text node whose element is rendered (not display: none, not
# hidden, with a box), in document order, each component's shadow root before its light (slotted) children.
VISIBLE_LINES = """
const visibleLines = (root) => {
  const lines = [];
  const visit = (node) => {
    if (node.nodeType === Node.TEXT_NODE) {
      const parent = node.parentElement;
      if (parent && parent.checkVisibility({visibilityProperty: true}) && parent.getClientRects().length) {
        lines.push(...node.textContent.split('\\n').map((line) => line.trim()).filter((line) => line));
      }
      return;
    }
    if (node.nodeType === Node.ELEMENT_NODE && /^(SCRIPT|STYLE|TEMPLATE)$/.test(node.tagName)) return;
    if (node.shadowRoot) visit(node.shadowRoot);
    for (const child of node.childNodes) visit(child);
  };
  visit(root);
  return lines;
};
const deepFind = (root, test) => {
  const found = [];
  const visit = (node) => {
    if (node.nodeType === Node.ELEMENT_NODE && test(node)) found.push(node);
    if (node.shadowRoot) visit(node.shadowRoot);
    for (const child of node.childNodes) visit(child);
  };
  visit(root);
  return found;
};
// A Custom Scalars chart, found by the title a person reads on it (its first visible line).
const chartCard = (title) => deepFind(document.documentElement,
  (node) => node.tagName === 'TF-CUSTOM-SCALAR-MULTI-LINE-CHART-CARD' && visibleLines(node)[0] === title)[0];
"""


def find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def start(command: list[str], ready: str, seconds: float = 60) -> tuple[subprocess.Popen[str], str]:
    """Start `command` and return it with the first line of its stderr that contains `ready`. A thread keeps reading
    stderr, so a chatty process never blocks on a full pipe."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stderr or ()], daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + seconds
    while not seen or ready not in seen[-1]:
        try:
            seen.append(lines.get(timeout=max(deadline - time.monotonic(), 0.1)))
        except queue.Empty:
            stop(process)
            pytest.fail(
                f"{command[0]} printed no line with {ready!r} within {seconds:.0f} s; it printed:\n{''.join(seen)}"
            )
    return process, seen[-1]


def stop(process: subprocess.Popen[str] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=30)


class Page:
    """One Chromium tab over the DevTools websocket: commands answered by id, events kept until asked for."""

    def __init__(self, browser_url: str) -> None:
        import websocket

        self.socket = websocket.create_connection(browser_url, timeout=SECONDS + 10)
        self.ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []
        self.session: str | None = None
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call("Page.enable")

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        message: dict[str, Any] = {"id": next(self.ids), "method": method, "params": params}
        if self.session:
            message["sessionId"] = self.session
        self.socket.send(json.dumps(message))
        while True:
            answer = json.loads(self.socket.recv())
            if answer.get("id") == message["id"]:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer["result"]
            self.events.append(answer)

    def wait_for_event(self, method: str) -> None:
        """Read messages until the event `method` arrives (the socket's timeout bounds each read)."""
        while not any(event.get("method") == method for event in self.events):
            self.events.append(json.loads(self.socket.recv()))
        self.events.clear()

    def open(self, url: str) -> None:
        self.call("Page.navigate", url=url)
        self.wait_for_event("Page.loadEventFired")

    def evaluate(self, body: str) -> Any:
        """Run `body` (an async function's body, with VISIBLE_LINES' helpers in scope) and return what it returns."""
        expression = f"(async () => {{ {VISIBLE_LINES}\n{body} }})()"
        result = self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"the page's JavaScript failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, condition: str, seen: str = "visibleLines(document.documentElement)") -> Any:
        """Poll in the page until the JavaScript `condition` about `seen` (by default the visible lines) holds or
        SECONDS pass; return `seen` as last seen either way, so that a failed assertion shows what the page showed."""
        return self.evaluate(f"""
            const deadline = Date.now() + {SECONDS * 1000};
            for (;;) {{
              const seen = {seen};
              if (({condition}) || Date.now() > deadline) return seen;
              await new Promise((resolve) => setTimeout(resolve, 100));
            }}
        """)

    def click(self, selector_body: str) -> None:
        """Click with the mouse, as a person does, at the middle of the element that `selector_body` returns."""
        box = self.evaluate(f"""
            const element = {selector_body};
            element.scrollIntoView({{block: 'center'}});
            const rect = element.getBoundingClientRect();
            return {{x: rect.x + rect.width / 2, y: rect.y + rect.height / 2}};
        """)
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, button="left", clickCount=1, **box)

    def close(self) -> None:
        self.socket.close()


def shown(lines: list[str]) -> str:
    return "\n".join(lines)


@pytest.mark.slow
def test_tensorboard_shows_train_and_val_charts_and_the_config_in_a_browser(write_config, run_cli, tmp_path):
    pytest.importorskip("websocket", reason="websocket-client (in the dev extra) is not installed")
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no Chromium on PATH (chromium, chromium-browser or google-chrome): apt install chromium")
    code, out, err = run_cli(write_config(SYNTHETIC))
    assert code == 0, out + err
    (run_dir,) = (tmp_path / "runs" / "tiny").iterdir()
    diagnosis = run_dir / "diagnosis.txt"
    warnings = [line[2:] for line in diagnosis.read_text().splitlines()] if diagnosis.exists() else []

    browser_command = [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-port=0"]
    browser_command += ["--remote-allow-origins=*"]  # newer Chromium refuses DevTools sockets without it
    browser_command += [f"--user-data-dir={tmp_path / 'chromium'}", "--window-size=1400,1600", "about:blank"]
    browser = page = None
    with contextlib.ExitStack() as cleanup:
        server = cleanup.enter_context(tensorboard(tmp_path / "runs"))
        cleanup.callback(lambda: stop(browser))
        cleanup.callback(lambda: page is not None and page.close())
        browser, listening = start(browser_command, "DevTools listening on ws://")
        page = Page(listening.split()[-1])

        page.open(f"{server}/#custom_scalars")
        # each chart first shows "Matches (0)", and its count once the tags of the runs have come
        scalars = page.wait_for(
            "seen.includes('accuracy') && seen.some((line) => line.startsWith('Matches ('))"
            " && !seen.includes('Matches (0)')"
        )
        assert "train and val" in scalars, (
            f"the Custom Scalars tab showed no category 'train and val':\n{shown(scalars)}"
        )
        charts = scalars[scalars.index("train and val") :]
        assert {"loss", "accuracy", "schedule"} <= set(charts), f"the category 'train and val' showed:\n{shown(charts)}"
        assert charts.index("loss") < charts.index("accuracy") < charts.index("schedule"), shown(scalars)
        # under each chart, how many curves its regular expressions matched
        assert charts[charts.index("loss") : charts.index("accuracy")][-1] == "Matches (2)", shown(scalars)

        loss_chart = "chartCard('loss')"
        page.click(f"{loss_chart}.shadowRoot.querySelector('.toggle-matches-button')")
        # the list under the chart, one entry per curve: "tag (run)", e.g. "loss (tiny/20260101-120000/train)"
        matches = page.wait_for(
            "seen.length >= 2",
            seen=f"deepFind({loss_chart}, (node) => node.matches('.match-list-entry'))"
            ".map((entry) => visibleLines(entry).join(' ')).filter((entry) => entry)",
        )
        run = f"tiny/{run_dir.name}"
        listed = f"the loss chart listed:\n{shown(matches)}"
        assert len(matches) == 2 and all("loss" in entry and run in entry for entry in matches), listed
        assert any("train" in entry for entry in matches) and any("val" in entry for entry in matches), listed
        # the chart draws its curves (SVG paths) once its data has come, a moment after the list of matches
        drawn = page.wait_for(
            "seen >= 2",
            seen=f"deepFind({loss_chart}, (node) => node.matches('path.line') && node.getAttribute('d')).length",
        )
        assert drawn >= 2, f"the loss chart drew {drawn} curves (SVG paths), not the train and the val loss"

        page.open("about:blank")  # a new hash alone loads nothing (no load event): open the Text tab afresh
        page.open(f"{server}/#text")
        text = page.wait_for("seen.includes('diagnosis') && seen.some((line) => line.startsWith('optimizer:'))")
        assert "The resolved config of this run, defaults included:" in text, f"the Text tab showed:\n{shown(text)}"
        assert any(line.startswith("optimizer:") for line in text), shown(text)
        assert "config" in text and "diagnosis" in text, shown(text)  # the two tags, as headings of their cards
        # the first warning up to its first Markdown mark (a `name` is a text node of its own), or the no-warnings line
        said = (warnings[0].split("`")[0].split("*")[0].strip() or warnings[0]) if warnings else diagnosis_text([])
        below = text[text.index("diagnosis") :]
        assert any(line.startswith(said) for line in below), f"the Text tab's diagnosis showed:\n{shown(below)}"
