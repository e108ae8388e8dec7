"""The report of a real run: the whole suite once (runs=1) and the audit
on this machine, rendered as HTML, Markdown and JSON, and the HTML opened
in a real headless Chromium.

The rendered files are also copied to reports/ at the top of the
checkout (git-ignored), with a full-page screenshot, so a person can look
at what the last run produced.
"""

import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

pytestmark = [pytest.mark.root, pytest.mark.docker]

REPO = Path(__file__).resolve().parents[2]
REPORTS = REPO / "reports"
SECTIONS = ("startup", "io", "network", "memory", "cpu")
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def _unmet(reason):
    # As tests/conftest.py does for root and docker: under CI a missing
    # browser is a broken setup, not a reason to skip.
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def real(tmp_path_factory, busybox_image, bigfiles_image):
    from dockertrace.report import build_report, run, write_report

    out = tmp_path_factory.mktemp("report")
    t0 = time.monotonic()
    suite = run.run_suite(runs=1)
    t_suite = time.monotonic() - t0
    audit = run.run_audit()
    t_audit = time.monotonic() - t0 - t_suite
    rep = build_report(suite, audit,
                       command="sudo dockertrace report --runs 1")
    files = {}
    t1 = time.monotonic()
    for fmt in ("html", "md", "json"):
        files[fmt] = write_report(rep, fmt, str(out / f"report.{fmt}"))
    t_render = time.monotonic() - t1

    # A copy for people: the last real report stays at reports/.
    REPORTS.mkdir(exist_ok=True)
    shutil.copy(out / "report.html", REPORTS / "report.html")
    shutil.copy(out / "report.json", REPORTS / "report.json")
    shutil.copy(out / "report.md", REPORTS / "report.md")
    shutil.rmtree(REPORTS / "report_plots", ignore_errors=True)
    shutil.copytree(out / "report_plots", REPORTS / "report_plots")
    print(f"\nsuite {t_suite:.1f} s, audit {t_audit:.1f} s, "
          f"render {t_render:.1f} s; written to {REPORTS}")
    return SimpleNamespace(report=rep, suite=suite, audit=audit, out=out,
                           files=files)


def test_every_section_is_filled_from_measurements(real):
    suite = real.suite
    assert [s.name for s in suite.sections] == list(SECTIONS)
    for s in suite.sections:
        assert not s.error, f"{s.name}: {s.error}"
        assert s.figures, s.name
        for f in s.figures:
            assert math.isfinite(f.value), f
            assert f.unit or f.key.endswith("count"), f
        assert s.series, s.name
        assert s.explanation, s.name
        # Reproducible: each section says how to rerun it.
        assert "dockertrace" in s.rerun and s.name in s.rerun, s.rerun

    env = suite.environment
    assert env.kernel == platform.release()
    assert env.docker_version and env.runc_version and env.cpus >= 1
    assert env.cpu_model

    # Every threshold reads a figure the suite produced; the audit ran.
    missing = [(v.threshold.measure, v.note) for v in real.report.verdicts
               if v.grade == "not measured"]
    assert missing == []
    assert real.audit.available, real.audit.reason


def test_html_renders_in_headless_chromium_without_network(real):
    if not (os.access(CHROMIUM, os.X_OK)
            and os.access(CHROMEDRIVER, os.X_OK)):
        _unmet("chromium and chromium-driver are not installed "
               "(scripts/setup.sh installs them)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _unmet("selenium is not installed (scripts/setup.sh installs it)")

    page = real.out / "report.html"
    opts = webdriver.ChromeOptions()
    # Both paths given: selenium then has nothing to look up or download.
    opts.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="dt-chromium-")
    for arg in ("--headless", "--no-sandbox", "--disable-gpu",
                "--disable-quic", "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                f"--user-data-dir={profile}", "--window-size=1000,1200"):
        opts.add_argument(arg)
    # The DevTools network events of the page: every request it makes.
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        driver.get(page.as_uri())
        driver.execute_script("return document.readyState")
        images = driver.execute_script(
            "return Array.from(document.images).map(i => ({"
            "key: i.dataset.key, complete: i.complete,"
            "w: i.naturalWidth, h: i.naturalHeight,"
            "scheme: i.src.split(':')[0]}))")
        resources = driver.execute_script(
            "return performance.getEntriesByType('resource')"
            ".map(e => e.name)")
        log = driver.get_log("performance")
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": _page_clip(driver)})
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)

    import base64
    (REPORTS / "report.png").write_bytes(base64.b64decode(shot["data"]))

    # Every plot of every section is an image the browser decoded.
    n_series = sum(len(s.series) for s in real.suite.sections)
    assert len(images) == n_series
    for img in images:
        assert img["complete"] and img["w"] > 0 and img["h"] > 0, img
        assert img["scheme"] == "data", img

    # No request left the file: the page itself is the only URL that is
    # not a data: URI, and nothing at all went over the network.
    requests = []
    for entry in log:
        msg = json.loads(entry["message"])["message"]
        if msg["method"] == "Network.requestWillBeSent":
            p = msg["params"]
            requests.append((p["request"]["url"], p.get("documentURL")))
    ours = [u for u, doc in requests if doc == page.as_uri()]
    assert ours, "the page's own load was not seen"
    assert {u.split(":")[0] for u in ours} <= {"file", "data"}
    assert not [u for u, _ in requests
                if re.match(r"(https?|wss?|ftp):", u)]
    assert resources == []


def _page_clip(driver):
    size = driver.execute_script(
        "return [document.documentElement.scrollWidth,"
        " document.documentElement.scrollHeight]")
    return {"x": 0, "y": 0, "width": size[0], "height": size[1],
            "scale": 1}


def test_markdown_links_its_plots(real):
    md = real.out / "report.md"
    text = md.read_text()
    links = re.findall(r"!\[[^]]*\]\(([^)]+)\)", text)
    assert len(links) == sum(len(s.series) for s in real.suite.sections)
    for link in links:
        assert not link.startswith(("/", "http")), link
        assert (md.parent / link).stat().st_size > 1000, link
    for s in real.suite.sections:
        assert f"## {s.title}" in text
        assert s.rerun in text


def test_saved_json_renders_again_from_the_cli(real, tmp_path):
    out = tmp_path / "again.html"
    proc = subprocess.run(
        [sys.executable, "-m", "dockertrace", "report", "--from-json",
         str(real.out / "report.json"), "-o", str(out)],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    again = out.read_text()
    first = (real.out / "report.html").read_text()
    # Same plots, same verdicts; only the generation time differs.
    assert again.count("<img ") == first.count("<img ")
    verdicts = re.compile(r'<span class="grade [a-z]+">[a-z ]+</span>')
    assert verdicts.findall(again) == verdicts.findall(first)
