"""A report people can open: figures/<profile>/index.html, one page that links the scorecard, every figure and
table, and the executed notebooks rendered to HTML — all relative links, so it works from the file system (open
the file in a browser; no server).

Written at the end of `./run_all.sh` (and by `python -m amuro_utils.figures.report --profile P`). The executed notebooks
(results/<profile>/notebooks/*.ipynb) are rendered into figures/<profile>/notebooks/ so that the figures folder is
self-contained.
"""

from __future__ import annotations

import argparse
import html
import re
from pathlib import Path

from ..config.paths import figures_dir, results_dir
from ..store import artifacts
from ..study import stages

# Which figure and table files belong to which notebook, by their stems' prefixes (one section per notebook).
# The report's sections: one per stage of the study, in run order (amuro_utils.study.stages: its title and the stems of
# what it writes), then the folders no stage writes.
OTHER_SECTIONS = (
    ("Real ladders: Pythia's published evaluations (B1 across 16 ladders, what depends on size)", ("ladders_",)),
)
OTHER = "Other figures and tables"
STYLE = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
img{max-width:100%;border:1px solid #ddd;margin:.5em 0}table{border-collapse:collapse;font-size:.85em}
td,th{border:1px solid #ccc;padding:.2em .4em;vertical-align:top}h2{border-bottom:1px solid #ccc}
.note{color:#555}code{background:#f4f4f4;padding:0 .2em}"""


# Pages beside the scorecard, linked where written: the claims on continuous readings and their calibration.
EXTRA_PAGES = (("claims_readings", "The same claims on continuous readings"),
               ("calibration_readings", "Calibration of the claims on the answer-text reading"),
               ("calibration_readings_discrimination", "Calibration of the claims on the discrimination reading"))

def _markdown(text: str) -> str:
    import mistune

    return mistune.create_markdown(plugins=["table"])(text)


def _page(title: str, body: str) -> str:
    return (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>\n{body}\n</body></html>\n")


def render_notebooks(profile_name: str, out: Path) -> list[Path]:
    """Every executed notebook of the profile as HTML under `out`/notebooks/ (its embedded figures included)."""
    from nbconvert import HTMLExporter

    source = results_dir(profile_name) / "notebooks"
    target = out / "notebooks"
    written = []
    exporter = HTMLExporter(template_name="lab")
    for path in sorted(source.glob("*.ipynb")):
        body, _ = exporter.from_filename(str(path))
        target.mkdir(parents=True, exist_ok=True)
        written.append(target / f"{path.stem}.html")
        artifacts.atomic_write(written[-1], body)
    return written


def sections() -> list[str]:
    """The report's section titles in order: the stages', the other folders', then the rest."""
    return [stage.title for stage in stages.STAGES] + [title for title, _ in OTHER_SECTIONS] + [OTHER]


def section_of(stem: str) -> str:
    """The section a figure or table file belongs to: the stage that writes its stem (or a method's variant of it)."""
    for stage in stages.STAGES:
        if any(stem == name or stem.startswith(name + "_") for name in stage.stems):
            return stage.title
    for title, prefixes in OTHER_SECTIONS:
        if stem.startswith(prefixes):
            return title
    return OTHER


def write_report(profile_name: str, *, notebooks: bool = True, scorecard: bool = True) -> Path:
    """Write figures/<profile>/index.html (and claims.html, notebooks/*.html); returns the index's path.
    `scorecard=False` for a folder that has none by design (figures/pythia_ladders/: amuro_utils.verdicts.pythia_suite)."""
    out = figures_dir(profile_name)
    out.mkdir(parents=True, exist_ok=True)
    rendered = render_notebooks(profile_name, out) if notebooks else []
    parts = [f"<h1>Amuro &amp; Char — profile <code>{html.escape(profile_name)}</code></h1>"]
    claims_md = out / "claims.md"
    if claims_md.is_file():
        text = claims_md.read_text(encoding="utf-8")
        artifacts.atomic_write(out / "claims.html", _page(f"Scorecard — {profile_name}", _markdown(text)))
        headline = re.search(r"^Verdicts: .*$", text, flags=re.MULTILINE)
        parts.append("<h2>The scorecard</h2>")
        if headline:
            parts.append(f"<p>{html.escape(headline.group(0))}</p>")
        parts.append('<p><a href="claims.html">Every claim of both papers, judged</a> (also '
                     '<a href="claims.csv">claims.csv</a>)</p>')
        calibration = out / "calibration.md"
        if calibration.is_file():
            text = calibration.read_text(encoding="utf-8")
            artifacts.atomic_write(out / "calibration.html", _page(f"Calibration — {profile_name}", _markdown(text)))
            verdict = re.search(r"^A rule is calibrated when .*$", text, flags=re.MULTILINE)
            parts.append('<p><a href="calibration.html">How often each verdict rule is wrong at its boundary</a> '
                         '(simulated with this source\'s noise; also <a href="calibration.csv">calibration.csv</a>)'
                         + (f": {html.escape(verdict.group(0))}" if verdict else "") + "</p>")
        for stem, what in EXTRA_PAGES:
            page = out / f"{stem}.md"
            if page.is_file():
                artifacts.atomic_write(out / f"{stem}.html", _page(f"{what} — {profile_name}",
                                                                   _markdown(page.read_text(encoding="utf-8"))))
                parts.append(f'<p><a href="{stem}.html">{html.escape(what)}</a> (also <a href="{stem}.csv">'
                             f'{stem}.csv</a>)</p>')
    elif scorecard:
        parts.append('<p class="note">No scorecard yet: it is written by the last notebook of the run.</p>')
    groups: dict[str, list[str]] = {}
    for png in sorted(out.glob("*.png")):
        groups.setdefault(section_of(png.stem), []).append(
            f'<figure><img src="{html.escape(png.name)}" alt="{html.escape(png.stem)}">'
            f'<figcaption><a href="{html.escape(png.with_suffix(".pdf").name)}">{html.escape(png.stem)}.pdf</a>'
            "</figcaption></figure>" if png.with_suffix(".pdf").is_file() else
            f'<figure><img src="{html.escape(png.name)}" alt="{html.escape(png.stem)}"></figure>')
    for table in sorted(out.glob("*.md")):
        if table.stem.startswith(("claims", "calibration")):
            continue
        section = section_of(table.stem)
        text = table.read_text(encoding="utf-8")
        if text.startswith(f"## {section}\n"):  # a page that opens with its section's own title (beyond.md)
            text = text[len(section) + 4:]
        groups.setdefault(section, []).append(
            f"<h3>{html.escape(table.stem)}</h3>{_markdown(text)}"
            + (f'<p><a href="{html.escape(table.stem)}.csv">{html.escape(table.stem)}.csv</a></p>'
               if (out / f"{table.stem}.csv").is_file() else ""))
    for title in sections():
        if title in groups:
            parts.append(f"<h2>{html.escape(title)}</h2>" + "\n".join(groups[title]))
    if rendered:
        parts.append("<h2>Executed notebooks</h2><ul>" + "".join(
            f'<li><a href="notebooks/{html.escape(p.name)}">{html.escape(p.stem)}</a></li>' for p in rendered)
            + "</ul>")
    index = out / "index.html"
    artifacts.atomic_write(index, _page(f"Amuro & Char — {profile_name}", "\n".join(parts)))
    return index


def main(argv=None) -> None:
    """`python -m amuro_utils.figures.report --profile P`: write figures/<P>/index.html."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="tiny")
    parser.add_argument("--no-notebooks", action="store_true", help="link the figures only (faster)")
    args = parser.parse_args(argv)
    print(write_report(args.profile, notebooks=not args.no_notebooks))


if __name__ == "__main__":
    main()
