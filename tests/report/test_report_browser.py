"""Opens the airlines report in the system's headless Chromium (DevTools protocol): no console errors,
no external requests, every chart decoded and visible, a screenshot that is not blank."""
from __future__ import annotations

import io

import numpy as np
import pytest

from pipeline.api import open_store
from pipeline.report import CHARTS, build_report, write_html

from chromium import Chromium, find_chromium


@pytest.fixture(scope="module")
def browser():
    executable = find_chromium()
    if executable is None:
        pytest.skip("needs Chromium (Debian: apt-get install chromium); not installed here")
    with Chromium(executable) as opened:
        yield opened


def test_airlines_report_renders_in_chromium(airlines_db, browser, tmp_path):
    with open_store(airlines_db) as mi:
        report = build_report(mi, group="airlines")
    path = write_html(report, tmp_path / "airlines.html")
    browser.open(path.as_uri())

    assert browser.errors() == []
    external = [u for u in browser.requested_urls() if not u.startswith(("file:", "data:"))]
    assert external == []
    assert browser.evaluate("document.body.dataset.ready") == "yes"      # the inline script ran
    charts = browser.evaluate("""Array.from(document.querySelectorAll('figure.chart')).map(f => {
        const img = f.querySelector('img'); const box = img.getBoundingClientRect();
        return [f.dataset.chart, img.complete, img.naturalWidth, img.naturalHeight, box.width, box.height]; })""")
    assert sorted(c[0] for c in charts) == sorted(CHARTS)
    for name, complete, nat_w, nat_h, width, height in charts:
        assert complete and nat_w > 300 and nat_h > 200, name            # decoded PNG
        assert width > 200 and height > 100, name                        # laid out visibly
    rows = browser.evaluate("document.querySelectorAll(\"table[data-table='stage-matrix'] tbody tr\").length")
    assert rows == len(report.orgs)
    assert browser.evaluate("document.querySelectorAll('.panel.missing').length") == 0

    # sorting the competitor table by a column reorders its rows (the inline script works)
    before = browser.evaluate("Array.from(document.querySelectorAll(\"table[data-table='percentiles'] tbody th\"))"
                              ".map(t => t.textContent)")
    browser.evaluate("document.querySelectorAll(\"table[data-table='percentiles'] thead th\")[3].click()")
    after = browser.evaluate("Array.from(document.querySelectorAll(\"table[data-table='percentiles'] tbody th\"))"
                             ".map(t => t.textContent)")
    assert sorted(before) == sorted(after)
    assert browser.errors() == []

    import matplotlib.image as mpimg
    shot = mpimg.imread(io.BytesIO(browser.screenshot()), format="png")
    assert shot.shape[0] > 1000 and shot.shape[1] > 500
    gray = shot[..., :3].mean(axis=2)
    assert gray.std() > 0.05                                  # not a blank page
    assert (np.abs(np.diff(gray, axis=0)) > 0.1).mean() > 0.005  # edges: text and plotted marks
    (tmp_path / "airlines.png").write_bytes(browser.screenshot())

    # at 800 px nothing is cut off: the page does not overflow, wide tables scroll inside their section
    # with the organisation column kept in view
    browser.send("Emulation.setDeviceMetricsOverride", width=800, height=1000, deviceScaleFactor=1, mobile=False)
    layout = browser.evaluate("""(() => {
        const page = document.documentElement.scrollWidth;
        const tables = Array.from(document.querySelectorAll('main table')).map(t => {
            const box = t.parentElement, section = t.closest('section').getBoundingClientRect();
            const fits = t.getBoundingClientRect().right <= section.right + 1;
            const style = getComputedStyle(box);
            const scrolls = ['auto', 'scroll'].includes(style.overflowX) && box.getBoundingClientRect().right
                            <= section.right + 1;
            const first = t.querySelector('tbody tr > *');
            return [t.dataset.table || '', fits, scrolls, first ? getComputedStyle(first).position : ''];
        });
        return [page, tables]; })()""")
    page_width, tables = layout
    assert page_width <= 800
    for name, fits, scrolls, first_position in tables:
        assert fits or scrolls, name
        if not fits:
            assert first_position == "sticky", name
    assert any(name == "percentiles" and not fits for name, fits, _, _ in tables)   # it does need to scroll
    browser.send("Emulation.clearDeviceMetricsOverride")

    # print: no nav, each section on a new page, charts within the page width; Chromium prints a PDF
    browser.send("Emulation.setEmulatedMedia", media="print")
    printed = browser.evaluate("""[getComputedStyle(document.querySelector('nav')).display,
        getComputedStyle(document.querySelector('#latency')).breakBefore,
        Math.max(...Array.from(document.querySelectorAll('figure img')).map(i => i.getBoundingClientRect().right)),
        document.querySelector('main').getBoundingClientRect().right]""")
    assert printed[0] == "none" and printed[1] == "page"
    assert printed[2] <= printed[3] + 1
    browser.send("Emulation.setEmulatedMedia", media="")
    import base64
    pdf = base64.b64decode(browser.send("Page.printToPDF", printBackground=True)["data"])
    assert pdf.startswith(b"%PDF") and pdf.count(b"/Type /Page") > len(report.sections) // 2
