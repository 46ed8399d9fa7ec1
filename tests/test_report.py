"""The report people open: figures/<profile>/index.html links the scorecard, every figure and table and the
executed notebooks; in a real (headless) browser every image loads and every link resolves to a file."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import nbformat
import pytest

from amuro_utils.config import paths
from amuro_utils.figures import report

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"  # Debian's chromium: `apt-get install -y chromium` (.ci/run installs it)


@pytest.fixture
def built(tmp_path, monkeypatch):
    """A report of the committed paper-reference figures, with one executed notebook beside them."""
    monkeypatch.setattr(paths, "FIGURES_ROOT", tmp_path / "figures")
    monkeypatch.setattr(paths, "RESULTS_ROOT", tmp_path / "results")
    shutil.copytree(REPO / "figures" / "paper_reference", tmp_path / "figures" / "paper_reference",
                    ignore=shutil.ignore_patterns("notebooks", "*.html"))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Supervised fine-tuning"),
                                         nbformat.v4.new_code_cell("1 + 1", outputs=[nbformat.v4.new_output(
                                             "execute_result", {"text/plain": "2"}, execution_count=1)])])
    (tmp_path / "results" / "paper-reference" / "notebooks").mkdir(parents=True)
    nbformat.write(nb, str(tmp_path / "results" / "paper-reference" / "notebooks" / "03_sft.ipynb"))
    return report.write_report("paper-reference")


def test_the_index_links_the_scorecard_figures_tables_and_notebooks(built):
    text = built.read_text()
    assert built.name == "index.html" and built.parent.name == "paper_reference"
    assert "Verdicts: " in text and 'href="claims.html"' in text
    assert '<img src="fig7_ood.png"' in text and '<img src="fig3b_gain_bars.png"' in text
    assert "<h2>Out-of-domain (Fig. 7)</h2>" in text and "ood_groups" in text
    assert 'href="notebooks/03_sft.html"' in text
    assert (built.parent / "notebooks" / "03_sft.html").read_text().count("Supervised fine-tuning") >= 1
    assert "<table>" in (built.parent / "claims.html").read_text()
    headings = re.findall(r"<h2>([^<]*)</h2>", text)  # one heading per section (beyond.md opens with its own title)
    assert len(headings) == len(set(headings)) and "Beyond the paper" in headings


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no chromium: `apt-get install -y chromium` (CI installs it)")
def test_in_a_browser_every_image_loads_and_every_link_resolves(built):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--headless=new"])
        page = browser.new_page()
        page.goto(built.as_uri())
        images = page.eval_on_selector_all("img", "els => els.map(e => [e.src, e.complete && e.naturalWidth > 0])")
        links = page.eval_on_selector_all("a", "els => els.map(e => e.href)")
        browser.close()
    assert len(images) >= 7 and all(ok for _, ok in images), [src for src, ok in images if not ok]
    assert len(links) >= 10
    missing = [href for href in links if not Path(unquote(urlparse(href).path)).is_file()]
    assert missing == []
