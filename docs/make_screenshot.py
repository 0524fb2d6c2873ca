"""Make docs/tensorboard.png, the README's picture: TensorBoard showing a real run, captured by headless Chromium.

    python -m trainer configs/mnist.yaml data.root=PATH/TO/DATA log.dir=/tmp/shot   # a real run to show
    python docs/make_screenshot.py /tmp/shot                                        # writes docs/tensorboard.png

Needs the `tensorboard` command (installed with leaptrain) and Chromium (Debian: apt install chromium).
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

OUT = Path(__file__).resolve().parent / "tensorboard.png"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_serving(url: str, seconds: float = 60) -> None:
    """TensorBoard takes a few seconds to load the event files; ask until it answers."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                sys.exit(f"TensorBoard did not answer at {url} within {seconds:.0f} s")
            time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("logdir", help="the runs to show (log.dir of a real run)")
    parser.add_argument(
        "--tab",
        default="custom_scalars&_smoothingWeight=0",
        help="TensorBoard tab and filter, as after # in its address",
    )
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if chromium is None:
        sys.exit("no Chromium found: apt install chromium (or put chromium on PATH)")
    port = free_port()
    board = [sys.executable, "-m", "tensorboard.main", "--logdir", args.logdir, "--port", str(port)]
    server = subprocess.Popen([*board, "--reload_task", "blocking"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_until_serving(url + "data/runs")
        shot = [
            chromium,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1400,1000",
            "--virtual-time-budget=20000",  # let the page's scripts load the charts before the picture is taken
            f"--screenshot={Path(args.out).resolve()}",
            f"{url}#{args.tab}",
        ]
        subprocess.run(shot, check=True, capture_output=True, timeout=120)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
