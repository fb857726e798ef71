#!/usr/bin/env python3
"""Make the README's pictures from a real demo sweep, so that they can be made again.

    .venv/bin/python images/make_images.py                              # runs the demo sweep (2-3 minutes)
    .venv/bin/python images/make_images.py --results-dir DIR            # ... and keeps its results in DIR
    .venv/bin/python images/make_images.py --results-dir DIR --skip-sweep   # reuses the results in DIR

Needs the repository's .venv with ML-Agents 1.1.0 and TensorBoard (make install) and Debian's
chromium, run headless (apt-get install chromium: /usr/bin/chromium; --chromium PATH for another).
Standard library, plus Pillow from the .venv (it comes with ML-Agents) to crop and check the pictures.

It runs examples/MoveToTarget/sweep.yaml with --num-repetitions 2 (4 combinations x 2 = 8 runs, two
at a time, the slow learners stopped early by opt_stop) into a temporary results folder, starts a
TensorBoard of its own on the results and writes, in this folder:
  tensorboard_rewards.png  TensorBoard's scalars dashboard with the Environment/Cumulative Reward curves
  hparams_table.png        TensorBoard's HParams tab, as the sweep's own TensorBoard shows it: a row per
                           combination (its two repetitions), its values, status, start, end and mean reward
  summary_table.png        the sweep's summary.md (runs best first, combinations by their mean, and
                           its "Best settings:" line)
  console.png              the sweep's timestamped console lines (only when the sweep ran here, or
                           its console was saved in DIR by an earlier run of this script)
Paths under the results folder are shown as "results/...", as in a sweep with the default --results-dir.

TensorBoard's picture: its legacy SCALARS dashboard (the TIME SERIES one draws its charts only now
and then in headless Chromium), opened as
    /?darkMode=false#scalars&tagFilter=Cumulative%20Reward&_smoothingWeight=0
through a small loopback proxy of this script that first turns "Ignore outliers in chart scaling"
off (a localStorage setting, see SettingsProxy), in a 1200x760 window at 1.5x, then cropped to the
runs and the chart (the same chart again below it, in the Environment group, is painted over in the
page's grey).  Chromium: --headless --no-sandbox --disable-gpu --disable-quic --no-first-run
--disable-background-networking --disable-component-update --disable-sync, a fresh --user-data-dir,
--run-all-compositor-stages-before-draw --virtual-time-budget=15000 (more if the chart is not drawn).
"""

from __future__ import annotations

import argparse
import html
import importlib.util
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from PIL import Image, ImageChops

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
VENV_BIN = REPO / ".venv" / "bin"
CHROMIUM = "/usr/bin/chromium"
TAG = "Environment/Cumulative Reward"
CONSOLE_FILE = "make_images_console.txt"  # saved in the sweep folder, for a later --skip-sweep
SCALE = 1.5  # device pixels per CSS pixel: sharp text on high-density screens, still small files
REPETITIONS = 2  # each combination trains twice: the summary ranks the combinations by their mean
HPARAMS_WINDOW = (1600, 560)  # the HParams tab's table view of 4 rows (8 runs), at this window size

# TensorBoard 2.20's legacy scalars dashboard at a 1200x760 window: the left column (settings and
# runs) is 310 CSS pixels wide and ends about 650 pixels down; the tag filter's chart card starts
# at x=310 and its chart ends about x=665.  The picture keeps the left 700 x 655 pixels.
TB_WINDOW = (1200, 760)
TB_CROP = (0, 0, 700, 655)
TB_LEFT_COLUMN = 300  # the left column's content ends before this (cards start at 310, their shadows a bit left)


def px(css_pixels: float) -> int:
    """Device pixels of the screenshots."""
    return round(css_pixels * SCALE)


def say(text: str) -> None:
    print(f"[make_images {time.strftime('%H:%M:%S')}] {text}", flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stop_group(process: subprocess.Popen, grace: float = 10.0) -> None:
    """End a process started with start_new_session=True, and whatever it left in its group."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def http_json(url: str, timeout: float = 5.0) -> object:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never a proxy
    with opener.open(url, timeout=timeout) as reply:
        return json.load(reply)


# ---------------------------------------------------------------------------
# The sweep
# ---------------------------------------------------------------------------

def run_sweep(results_dir: Path, run_id: str) -> str:
    """Run the example sweep into results_dir; return its console, the command line first."""
    command = [str(VENV_BIN / "python"), "mlagents-learn.py", "examples/MoveToTarget/sweep.yaml",
               "--env=.venv/bin/MoveToTarget", "--num-envs", "2", "--num-repetitions", str(REPETITIONS),
               "--trainer", ".venv/bin/mlagents-learn", "--run-id", run_id,
               "--results-dir", str(results_dir),
               "--tensorboard-url", f"http://127.0.0.1:{free_port()}", "--poll-interval", "5"]
    shown = [".venv/bin/python", *command[1:]]
    say("$ " + " ".join(shown))
    lines = ["$ " + " ".join(shown)]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, bufsize=1)
    try:
        for line in process.stdout or ():
            print("    " + line, end="", flush=True)
            lines.append(line.rstrip("\n"))
        code = process.wait()
    finally:
        if process.poll() is None:  # interrupted here: the sweep got the same Ctrl-C and stops its runs
            try:
                process.wait(120)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    if code != 0:
        raise SystemExit(f"make_images: the sweep failed (exit {code}); see the lines above")
    console = "\n".join(lines) + "\n"
    (results_dir / f"{run_id}-sweep" / CONSOLE_FILE).write_text(console, encoding="utf-8")
    return console


def started_runs(sweep_dir: Path) -> list[str]:
    state = json.loads((sweep_dir / "sweep_state.json").read_text(encoding="utf-8"))
    runs = [run["run_id"] for run in state["runs"] if run.get("sessions")]
    if not runs:
        raise SystemExit(f"make_images: no run of {sweep_dir} was started")
    return runs


# ---------------------------------------------------------------------------
# TensorBoard
# ---------------------------------------------------------------------------

def start_tensorboard(results_dir: Path, work: Path) -> tuple[subprocess.Popen, str]:
    """A TensorBoard of our own on the results; its sidebar names the log folder "results"."""
    (work / "tb").mkdir()
    (work / "tb" / "results").symlink_to(results_dir.resolve(), target_is_directory=True)
    port = free_port()
    with open(work / "tensorboard.log", "wb") as log:  # the process keeps its own copy of the file
        process = subprocess.Popen([str(VENV_BIN / "tensorboard"), "--logdir", "results", "--host", "127.0.0.1",
                                    "--port", str(port)], cwd=work / "tb", stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    return process, f"http://127.0.0.1:{port}"


def wait_for_tensorboard(process: subprocess.Popen, url: str, runs: list[str], work: Path,
                         timeout: float = 90.0) -> None:
    """Wait until TensorBoard has the tag of every run and its points no longer change."""
    deadline = time.monotonic() + timeout
    previous = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            tags = http_json(f"{url}/data/plugin/scalars/tags")
            names = sorted(name for name, run_tags in tags.items() if TAG in run_tags)
            have = {name.split("/", 1)[0] for name in names}
            if have >= set(runs):
                query = urllib.parse.urlencode([("tag", TAG)] + [("runs", name) for name in names], doseq=True)
                request = urllib.request.Request(f"{url}/data/plugin/scalars/scalars_multirun", data=query.encode())
                opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
                with opener.open(request, timeout=5) as reply:
                    points = json.load(reply)
                lengths = {name: len(points.get(name, [])) for name in names}
                if lengths == previous:
                    say(f"TensorBoard has {TAG} of {len(names)} runs: "
                        + ", ".join(f"{name} {count} points" for name, count in lengths.items()))
                    return
                previous = lengths
        except (OSError, ValueError, urllib.error.URLError):
            pass
        time.sleep(2)
    log = (work / "tensorboard.log").read_text(errors="replace")[-2000:]
    raise SystemExit(f"make_images: TensorBoard at {url} did not show {TAG} of {', '.join(runs)}\n{log}")


class SettingsProxy(http.server.ThreadingHTTPServer):
    """TensorBoard behind a loopback port of ours, plus one page that presets its settings.

    The legacy scalars dashboard keeps "Ignore outliers in chart scaling" (on by default, and it
    cuts off the top 5% of the values: the best run's last points) in localStorage, not in the
    URL.  Only a page of the same origin can change it, so Chromium opens PRIME_PATH here, which
    sets it and goes on to TensorBoard's page; every other request goes to TensorBoard unchanged.
    """

    PRIME_PATH = "/make_images_prime"
    daemon_threads = True

    def __init__(self, upstream: str, settings: dict[str, str], target: str) -> None:
        super().__init__(("127.0.0.1", 0), ProxyHandler)
        self.upstream = upstream
        script = "".join(f"localStorage.setItem({json.dumps(key)}, {json.dumps(value)});"
                         for key, value in settings.items())
        self.prime_page = (f"<!DOCTYPE html><script>{script}location.replace({json.dumps(target)});"
                           "</script>").encode()
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join()


class ProxyHandler(http.server.BaseHTTPRequestHandler):
    server: SettingsProxy

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        self.forward()

    def do_POST(self) -> None:  # noqa: N802
        self.forward()

    def forward(self) -> None:
        if self.path == SettingsProxy.PRIME_PATH:
            self.answer(200, {"Content-Type": "text/html; charset=utf-8"}, self.server.prime_page)
            return
        length = int(self.headers.get("Content-Length") or 0)
        request = urllib.request.Request(self.server.upstream + self.path, method=self.command,
                                         data=self.rfile.read(length) if length else None)
        if self.headers.get("Content-Type"):
            request.add_header("Content-Type", self.headers["Content-Type"])
        try:
            with self.server.opener.open(request, timeout=30) as reply:
                status, headers, body = reply.status, reply.headers, reply.read()
        except urllib.error.HTTPError as error:
            status, headers, body = error.code, error.headers, error.read()
        except OSError:
            status, headers, body = 502, {}, b""
        self.answer(status, {name: headers[name] for name in ("Content-Type", "Content-Encoding")
                             if headers.get(name)}, body)

    def answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


# ---------------------------------------------------------------------------
# Chromium
# ---------------------------------------------------------------------------

def screenshot(chromium: str, url: str, png: Path, size: tuple[int, int], work: Path,
               budget_ms: int = 0) -> Image.Image:
    """Headless Chromium's picture of url in a window of size CSS pixels, at SCALE."""
    profile = Path(tempfile.mkdtemp(prefix="chromium-", dir=work))
    png.unlink(missing_ok=True)
    command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-dev-shm-usage", "--hide-scrollbars", f"--user-data-dir={profile}",
               f"--window-size={size[0]},{size[1]}", f"--force-device-scale-factor={SCALE}",
               "--run-all-compositor-stages-before-draw"]
    if budget_ms:
        command.append(f"--virtual-time-budget={budget_ms}")
    command += [f"--screenshot={png}", url]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        output = b"(timed out after 120 s)"
    finally:
        stop_group(process, grace=2)
        shutil.rmtree(profile, ignore_errors=True)
    if not png.is_file():
        raise SystemExit(f"make_images: chromium made no picture of {url}\n"
                         + output.decode(errors="replace")[-2000:])
    with Image.open(png) as image:
        return image.convert("RGB")


def save_png(image: Image.Image, path: Path, limit_kb: int = 300) -> None:
    """Save as an optimized PNG; with a 256-colour palette if it would be larger than limit_kb."""
    image.save(path, optimize=True)
    if path.stat().st_size > limit_kb * 1024:
        image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(path, optimize=True)
    shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path
    say(f"wrote {shown} ({image.width}x{image.height}, {path.stat().st_size // 1024} KB)")


def colored_pixels(image: Image.Image, box: tuple[int, int, int, int]) -> int:
    """How many pixels in box are clearly colored (chart lines), not white or grey."""
    _, saturation, value = image.crop(box).convert("HSV").split()
    colored = ImageChops.multiply(saturation.point(lambda level: 255 if level > 120 else 0),
                                  value.point(lambda level: 255 if level > 80 else 0))
    return colored.histogram()[255]


def shoot_dashboard(chromium: str, url: str, work: Path) -> Image.Image:
    """TensorBoard's page, again with more virtual time while its chart is not drawn."""
    chart = (px(330), px(230), px(670), px(480))
    for budget in (15000, 30000, 60000):
        image = screenshot(chromium, url, work / "tensorboard.png", TB_WINDOW, work, budget_ms=budget)
        if colored_pixels(image, chart) > px(400):
            return image
        say(f"the chart was not drawn within a virtual time budget of {budget} ms; again with more")
    raise SystemExit("make_images: TensorBoard's chart stayed empty (--keep-work keeps the shot to look at)")


def shoot_tensorboard(chromium: str, url: str, out: Path, work: Path) -> None:
    # The tag filter is a regular expression; among the scalars only TAG ends in "Cumulative Reward".
    page = f"/?darkMode=false#scalars&tagFilter={urllib.parse.quote(TAG.split('/')[-1])}&_smoothingWeight=0"
    say(f"TensorBoard page: {url}{page} (with Ignore outliers in chart scaling off)")
    proxy = SettingsProxy(url, {"_ignoreYOutliers": "false"}, page)
    try:
        image = shoot_dashboard(chromium, proxy.url + SettingsProxy.PRIME_PATH, work)
    finally:
        proxy.close()
    image = image.crop(tuple(px(value) for value in TB_CROP))
    # Below the tag filter's card the same chart comes again, in its "Environment" group, beside
    # the runs: paint that part of the right column in the page's background colour instead.
    column = px(TB_CROP[2] - 10)
    top = px(230)
    bottom = next((y for y in range(top, image.height) if min(image.getpixel((column, y))) < 250), None)
    if bottom is not None:
        background = image.getpixel((px(5), px(250)))  # the left column's grey
        image.paste(background, (px(TB_LEFT_COLUMN), bottom + px(3), image.width, image.height))
    save_png(image, out / "tensorboard_rewards.png")


def sweep_view(results_dir: Path, sweep_dir: Path, run_id: str, work: Path) -> Path:
    """What the sweep's own TensorBoard read while it ran (it is gone with the sweep): a folder of links to
    the sweep's runs and its HParams experiment, made again with the sweep's own code."""
    spec = importlib.util.spec_from_file_location("mlagents_sweep", REPO / "mlagents-learn.py")
    sweep = importlib.util.module_from_spec(spec)
    sys.modules["mlagents_sweep"] = sweep  # its dataclasses look their module up
    spec.loader.exec_module(sweep)
    view = sweep.SweepView(results_dir, work / "view")
    for run in started_runs(sweep_dir):
        view.show(run)
    plan = sweep.SweepPlan(sweep.parse_config((REPO / "examples/MoveToTarget/sweep.yaml").read_text()), run_id)
    runs = [plan.make_run(spec) for spec in plan.grid(REPETITIONS)]
    settings = argparse.Namespace(run_id=run_id, sweep_dir=sweep_dir)
    writer = sweep.HParamsWriter(settings, sweep.Results(results_dir), sweep.hparams_groups(runs), view)
    writer.experiment(runs, [(behavior, TAG) for behavior in runs[0].behaviors], time.time())
    return view.folder


def start_view_tensorboard(view: Path, work: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    with open(work / "tensorboard-view.log", "wb") as log:
        process = subprocess.Popen([str(VENV_BIN / "tensorboard"), "--logdir", str(view), "--host", "127.0.0.1",
                                    "--port", str(port)], stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    return process, f"http://127.0.0.1:{port}"


def wait_for_rows(url: str, count: int, timeout: float = 90.0) -> None:
    """Wait until the HParams tab has every row with its reward."""
    request = {"experimentName": "", "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE",
                                                         "STATUS_RUNNING"], "colParams": [], "startIndex": 0, "sliceSize": 100}
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            post = urllib.request.Request(f"{url}/data/plugin/hparams/session_groups", data=json.dumps(request).encode(),
                                          headers={"Content-Type": "application/json"})
            with opener.open(post, timeout=5) as reply:
                groups = json.load(reply).get("sessionGroups", [])
            if len(groups) == count and all(group.get("metricValues") for group in groups):
                return
        except (OSError, ValueError):
            pass
        time.sleep(2)
    raise SystemExit(f"make_images: the HParams tab at {url} did not show {count} rows")


def shoot_hparams(chromium: str, url: str, out: Path, work: Path) -> None:
    """TensorBoard's HParams tab, its table view: every run with its values, status and reward."""
    page = f"{url}/?darkMode=false#hparams"
    say(f"TensorBoard page: {page}")
    save_png(screenshot(chromium, page, work / "hparams.png", HPARAMS_WINDOW, work, budget_ms=30000),
             out / "hparams_table.png")


# ---------------------------------------------------------------------------
# Summary table and console, as small HTML pages
# ---------------------------------------------------------------------------

PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><style>
html, body {{ margin: 0; background: #ffffff; }}
body {{ font: 14px/1.45 "DejaVu Sans", "Liberation Sans", Arial, sans-serif; color: #1f2328; padding: 16px; }}
{style}
</style></head><body>
{body}
</body></html>
"""

SUMMARY_STYLE = """
.card { display: inline-block; border: 1px solid #d0d7de; border-radius: 8px; padding: 14px 18px 12px; }
h1 { font-size: 17px; margin: 0 0 10px; font-weight: 600; }
h2 { font-size: 14px; margin: 14px 0 8px; font-weight: 600; }
h1 .file { font: 12px "DejaVu Sans Mono", monospace; color: #59636e; font-weight: normal; margin-left: 8px; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #d0d7de; padding: 5px 9px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; font-weight: 600; vertical-align: bottom; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.col-run, td.col-values { font-family: "DejaVu Sans Mono", monospace; font-size: 12px; white-space: nowrap; }
td.col-note { color: #59636e; font-size: 12px; min-width: 260px; max-width: 300px; }
tr.best td { background: #f0fff4; }
.status { display: inline-block; border-radius: 10px; padding: 0 8px; font-size: 12px; white-space: nowrap; }
.finished { background: #dafbe1; color: #1a7f37; }
.stopped { background: #fff1c2; color: #7d4e00; }
.failed { background: #ffebe9; color: #cf222e; }
.other { background: #eaeef2; color: #424a53; }
p.best { margin: 10px 0 0; font-size: 13px; }
p.best code { white-space: nowrap; font: 12px "DejaVu Sans Mono", monospace; background: #f6f8fa;
              padding: 1px 4px; border-radius: 4px; }
"""

CONSOLE_STYLE = """
.term { display: inline-block; background: #1e1e1e; border-radius: 8px; overflow: hidden;
        box-shadow: 0 1px 4px rgba(0, 0, 0, 0.25); max-width: 1080px; }
.bar { background: #3a3a3a; padding: 7px 12px; font-size: 0; }
.bar span { display: inline-block; width: 11px; height: 11px; border-radius: 50%; margin-right: 7px; }
pre { margin: 0; padding: 12px 16px 14px; color: #d4d4d4; white-space: pre-wrap; word-break: break-word;
      font: 12px/1.5 "DejaVu Sans Mono", "Liberation Mono", monospace; }
.prompt { color: #8ae234; }
.cmd { color: #ffffff; }
.time { color: #808080; }
.good { color: #8ae234; }
.stop { color: #fce94f; }
.bad { color: #ef2929; }
.tb { color: #729fcf; }
"""


def shown_path(text: str, results_dir: Path) -> str:
    """Paths under the results folder as "results/...", as with the default --results-dir."""
    for prefix in {str(results_dir.resolve()), str(results_dir)}:
        text = text.replace(prefix + os.sep, "results/").replace(prefix, "results")
    return text


def parse_summary(markdown: str) -> tuple[str, list[tuple[str, list[str], list[list[str]]]], str]:
    """summary.md as its title, its tables (heading, header, rows: the runs', then with repetitions
    the combinations') and its "Best ..." line."""
    title, tables, best, heading = "", [], "", ""
    rows: list[list[str]] = []
    for line in [*markdown.splitlines(), ""]:
        if line.startswith("|"):
            cells = re.split(r"(?<!\\)\|", line.strip()[1:-1])
            rows.append([cell.strip().replace("\\|", "|") for cell in cells])
            continue
        if rows:
            tables.append((heading, rows[0], rows[2:]))
            rows = []
        if line.startswith("# "):
            title = line[2:].strip()
        elif line.startswith("## "):
            heading = line[3:].strip()
        elif line.startswith("Best "):
            best = line.strip()
    if not tables:
        raise SystemExit("make_images: summary.md has no table")
    return title, tables, best


def table_html(header: list[str], rows: list[list[str]], best: bool) -> str:
    numeric = {"exit", "duration", "last step", "runs", "scored", "std", "min", "max"} | {
        name for name in header if "/" in name}
    classes = ["num" if name in numeric else "col-" + name.replace(" ", "-") for name in header]
    # a long tag may break after its slashes
    head = "".join(f'<th class="{css}">{html.escape(name).replace("/", "/<wbr>")}</th>'
                   for name, css in zip(header, classes))
    body = []
    for index, row in enumerate(rows):
        cells = []
        for name, css, cell in zip(header, classes, row):
            text = html.escape(cell)
            if name == "status":
                kind = {"finished": "finished", "stopped early": "stopped", "failed": "failed"}.get(cell, "other")
                text = f'<span class="status {kind}">{text}</span>'
            cells.append(f'<td class="{css}">{text}</td>')
        body.append(f'<tr class="{"best" if index == 0 and best else ""}">{"".join(cells)}</tr>')
    return f'<table><tr>{head}</tr>{"".join(body)}</table>'


def summary_html(markdown: str, results_dir: Path, sweep_dir: Path) -> str:
    title, tables, best = parse_summary(shown_path(markdown, results_dir))
    parts = []
    for index, (heading, header, rows) in enumerate(tables):
        if heading:
            parts.append(f"<h2>{html.escape(heading)}</h2>")
        # The best line names the best combination when there are repetitions: mark that table's first row.
        parts.append(table_html(header, rows, bool(best) and index == len(tables) - 1))
    best_html = ""
    if best:
        best_html = html.escape(best)
        best_html = re.sub(r"its config: (\S+)$", r"its config: <code>\1</code>", best_html)
        best_html = f'<p class="best">{best_html}</p>'
    where = shown_path(str(sweep_dir / "summary.md"), results_dir)
    content = (f'<div class="card"><h1>{html.escape(title)}<span class="file">{html.escape(where)}</span></h1>'
               f'{"".join(parts)}{best_html}</div>')
    return PAGE.format(style=SUMMARY_STYLE, body=content)


def shell_lines(command: str, width: int = 100) -> list[str]:
    """A long command line as a shell would take it over several lines: flags kept with their values."""
    words, groups = command.split(" "), []
    for word in words:
        if groups and not word.startswith("-") and groups[-1].startswith("-") and "=" not in groups[-1] \
                and " " not in groups[-1]:
            groups[-1] += " " + word
        else:
            groups.append(word)
    lines = [""]
    for group in groups:
        if lines[-1] and len(lines[-1]) + 1 + len(group) > width - 2:
            lines[-1] += " \\"
            lines.append("    ")
        lines[-1] += ("" if lines[-1].strip() == "" else " ") + group
    return lines


def console_html(console: str, results_dir: Path) -> str:
    lines = []
    for line in shown_path(console, results_dir).splitlines():
        if line.startswith("$ "):
            command = shell_lines(line[2:])
            lines.append('<span class="prompt">$</span> <span class="cmd">'
                         + html.escape("\n".join(command)) + "</span>")
            continue
        match = re.match(r"(\[\d\d:\d\d:\d\d\]) (.*)", line)
        if not match:
            continue  # the summary table and its notes: summary_table.png shows them
        stamp, text = match.groups()
        css = ("bad" if text.startswith(("warning", "FAILED", "failed", "killing", "interrupted")) else
               "good" if text.startswith("finished") else
               "stop" if text.startswith(("stopping", "stopped")) else
               "tb" if text.startswith("TensorBoard") else "")
        text = html.escape(text)
        lines.append(f'<span class="time">{stamp}</span> ' + (f'<span class="{css}">{text}</span>' if css else text))
    dots = "".join(f'<span style="background:{color}"></span>' for color in ("#ff5f56", "#ffbd2e", "#27c93f"))
    return PAGE.format(style=CONSOLE_STYLE, body=f'<div class="term"><div class="bar">{dots}</div>'
                                                  f'<pre>{chr(10).join(lines)}</pre></div>')


def shoot_page(chromium: str, page: str, out_png: Path, work: Path, width: int) -> None:
    """Picture of an HTML page, trimmed to its content plus a margin."""
    source = work / (out_png.stem + ".html")
    source.write_text(page, encoding="utf-8")
    image = screenshot(chromium, source.as_uri(), work / out_png.name, (width, 1400), work)
    box = ImageChops.difference(image, Image.new("RGB", image.size, (255, 255, 255))).getbbox()
    if box is None:
        raise SystemExit(f"make_images: the picture of {source} is empty")
    margin = round(12 * SCALE)
    if box[3] + margin >= image.height:
        raise SystemExit(f"make_images: {source} is taller than the window; make the window taller")
    box = (max(box[0] - margin, 0), max(box[1] - margin, 0), min(box[2] + margin, image.width), box[3] + margin)
    save_png(image.crop(box), out_png)


# ---------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results-dir", type=Path, metavar="DIR",
                        help="the sweep's results folder (default: a temporary one, removed at the end)")
    parser.add_argument("--skip-sweep", action="store_true", help="reuse the results in --results-dir")
    parser.add_argument("--run-id", default="demo", help="the sweep's run id (default demo)")
    parser.add_argument("--chromium", default=CHROMIUM, help=f"Chromium to run headless (default {CHROMIUM})")
    parser.add_argument("--out", type=Path, default=HERE, help="where the pictures go (default: beside this script)")
    parser.add_argument("--keep-work", action="store_true", help="keep the temporary folder (HTML pages, raw shots)")
    args = parser.parse_args()
    if args.skip_sweep and args.results_dir is None:
        parser.error("--skip-sweep needs --results-dir")
    if shutil.which(args.chromium) is None:
        parser.error(f"no chromium at {args.chromium} (Debian: apt-get install chromium)")
    for program in ("python", "tensorboard", "mlagents-learn"):
        if not (VENV_BIN / program).exists():
            parser.error(f"no {VENV_BIN / program}: install ML-Agents first (make install)")

    began = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="make_images-"))
    tensorboard = None
    try:
        results_dir = (args.results_dir or work / "results").resolve()
        sweep_dir = results_dir / f"{args.run_id}-sweep"
        if args.skip_sweep:
            console_file = sweep_dir / CONSOLE_FILE
            console = console_file.read_text(encoding="utf-8") if console_file.is_file() else None
        else:
            results_dir.mkdir(parents=True, exist_ok=True)
            console = run_sweep(results_dir, args.run_id)
            say(f"the sweep took {time.monotonic() - began:.0f} s")
        if not (sweep_dir / "summary.md").is_file():
            raise SystemExit(f"make_images: no {sweep_dir / 'summary.md'}")
        args.out.mkdir(parents=True, exist_ok=True)

        tensorboard, url = start_tensorboard(results_dir, work)
        wait_for_tensorboard(tensorboard, url, started_runs(sweep_dir), work)
        shoot_tensorboard(args.chromium, url, args.out, work)
        stop_group(tensorboard)
        tensorboard, url = start_view_tensorboard(sweep_view(results_dir, sweep_dir, args.run_id, work), work)
        wait_for_rows(url, len(started_runs(sweep_dir)) // REPETITIONS)
        shoot_hparams(args.chromium, url, args.out, work)
        stop_group(tensorboard)
        tensorboard = None

        markdown = (sweep_dir / "summary.md").read_text(encoding="utf-8")
        shoot_page(args.chromium, summary_html(markdown, results_dir, sweep_dir), args.out / "summary_table.png",
                   work, width=1200)
        if console is None:
            say(f"no console saved in {sweep_dir}: console.png left as it is")
        else:
            shoot_page(args.chromium, console_html(console, results_dir), args.out / "console.png", work, width=1100)
        say(f"done in {time.monotonic() - began:.0f} s")
        return 0
    finally:
        if tensorboard is not None:
            stop_group(tensorboard)
        if args.keep_work:
            say(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
