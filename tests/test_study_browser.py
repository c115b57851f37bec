"""The study report in a real browser: headless Chromium (Debian's ``chromium``) loads
``report.html`` offline at 1,400 px, with no console errors; every figure decodes and is shown at
its own size (no figure is scaled down, no part of the page is wider than the window), and every
link of the table of contents and the key findings lands on a heading.

The page itself has no script and a Content-Security-Policy that forbids any. The test loads
a *copy* whose policy also allows one appended inline script that records, after the load event,
how many images decoded under the page's own image rule (``naturalWidth > 0``), how many are shown
narrower than they are, the page's width and the links without a target; ``--dump-dom`` returns
that record. ``.ci/run`` installs chromium; elsewhere the test skips with a reason.
"""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

import ticketlab
from ticketlab.study import Study

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium here (Debian: apt-get install chromium)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0"]
WIDTH = 1400  # the width at which a reader looks at the page
PROBE = """<script>window.addEventListener("load", () => {
  const imgs = [...document.images];
  const ok = imgs.filter(i => i.complete && i.naturalWidth > 0).length;
  const shrunk = imgs.filter(i => i.naturalWidth > i.clientWidth + 1).length;
  const links = [...document.querySelectorAll('a[href^="#"]')];
  const lost = links.filter(a => !document.getElementById(a.getAttribute("href").slice(1))).length;
  const wide = document.documentElement.scrollWidth;
  document.body.setAttribute("data-probe", [ok, imgs.length, shrunk, links.length, lost, wide].join("/"));
});</script>"""


def _chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp / 'profile'}", *args],
                          capture_output=True, text=True, timeout=120)


def test_report_html_loads_offline_with_every_figure(tmp_path):
    study = Study.from_dict({"name": "browser", "model": "lenet_300_100", "dataset": "digits", "seeds": [0, 1],
                             "densities": [0.2, 0.05], "methods": ["random", "synflow", "magnitude_init"],
                             "method": {"synflow": {"rounds": 2}}}, tmp_path / "study")
    study.run()
    paths = study.report()
    html = Path(paths["html"])
    text = html.read_text()
    n_imgs = len(re.findall(r"<img\b", text))
    n_figures = sum(1 for k in paths if k.startswith("figure:"))
    assert n_imgs >= n_figures >= 3
    assert "src=\"http" not in text and "src='http" not in text  # self-contained: nothing fetched

    shot = tmp_path / "report.png"
    res = _chromium(tmp_path, f"--screenshot={shot}", f"--window-size={WIDTH},4000", html.as_uri())
    assert shot.is_file() and shot.stat().st_size > 10_000, res.stderr[-2000:]
    assert int.from_bytes(shot.read_bytes()[16:20], "big") == WIDTH  # (the PNG header's width)
    console = [line for line in res.stderr.splitlines() if ":CONSOLE" in line]
    assert not console, console

    probe = tmp_path / "probe.html"
    # the copy's policy also allows inline script (the probe); images keep the page's own rule
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', text)
    assert csp and "default-src 'none'" in csp.group(1)
    probed = text.replace(csp.group(0), csp.group(0)[:-1] + "; script-src 'unsafe-inline'\"")
    probe.write_text(probed.replace("</body>", PROBE + "</body>"))
    res = _chromium(tmp_path, "--dump-dom", "--virtual-time-budget=10000", f"--window-size={WIDTH},1000",
                    probe.as_uri())
    m = re.search(r'data-probe="([\d/]+)"', res.stdout)
    assert m, res.stderr[-2000:]
    decoded, images, shrunk, links, lost, wide = (int(v) for v in m.group(1).split("/"))
    assert decoded == images == n_imgs  # every figure decoded and shown
    assert shrunk == 0  # ... at its own size: text in figures is as large as it was drawn
    assert links > 10 and lost == 0  # the contents and the findings link to headings of the page
    assert wide <= WIDTH  # no table or figure makes the page wider than the window
    assert "<script" not in text  # the report itself runs no script
    assert ticketlab.load(next((tmp_path / "study" / "tickets").glob("*.h5"))).kept > 0
