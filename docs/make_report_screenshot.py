"""Make docs/report.png, the README's picture of a report: the top of report.html of a real run, as headless
Chromium shows it.

    python -m trainer configs/mnist.yaml data.root=PATH/TO/DATA log.dir=/tmp/shot   # a real run to show
    python docs/make_report_screenshot.py /tmp/shot/mnist-cnn/<date-time>             # writes docs/report.png

Needs Chromium (Debian: apt install chromium).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "report.png"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a run folder")
    parser.add_argument("--height", type=int, default=1500, help="how much of the page to show, in pixels")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if chromium is None:
        sys.exit("no Chromium on PATH: apt install chromium")
    subprocess.run([sys.executable, "-m", "trainer", "report", str(args.run)], check=True)
    page = (args.run / "report.html").resolve().as_uri()
    command = [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    command += [f"--window-size=1040,{args.height}", f"--screenshot={OUT}", page]
    subprocess.run(command, check=True, capture_output=True)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
