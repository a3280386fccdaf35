"""DVC stage report: metrics/report.md and metrics/summary.json from every metrics file."""

from pathlib import Path

import typer

from finlora.config import load_params
from finlora.errors import exit_on_error
from finlora.files import write_json, write_text
from finlora.report import collect, provenance, render, summarize


def main(metrics: Path = typer.Option(Path("metrics"), help="folder holding eval/ and train/ metrics"),
         report: Path = typer.Option(Path("metrics/report.md"), help="markdown report to write"),
         summary: Path = typer.Option(Path("metrics/summary.json"), help="summary metrics JSON to write"),
         raw: Path = typer.Option(Path("data/raw"), help="raw data folder: each task's source.json (provenance)")) -> None:
    """Write the paper-style tables and the summary metrics file."""
    params = load_params()
    results = collect(params, metrics)
    text = render(params, results, provenance(params, raw))
    write_json(summary, summarize(results))
    write_text(report, text)
    print(text)


if __name__ == "__main__":
    exit_on_error(lambda: typer.run(main))
