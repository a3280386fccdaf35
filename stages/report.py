"""DVC stage report: metrics/report.md and metrics/summary.json from every metrics file."""

from pathlib import Path

import typer

from finlora import layout
from finlora.config import load_params
from finlora.errors import exit_on_error
from finlora.files import atomic_dir, write_json, write_text
from finlora.report import collect, plot_files, provenance, render, significance, summarize


def main(metrics: Path = typer.Option(layout.METRICS, help="folder holding eval/ and train/ metrics"),
         report: Path = typer.Option(layout.REPORT, help="markdown report to write"),
         summary: Path = typer.Option(layout.SUMMARY, help="summary metrics JSON to write"),
         raw: Path = typer.Option(layout.RAW, help="raw data folder: each task's source.json (provenance)"),
         plots: Path = typer.Option(layout.PLOTS, help="folder to gather the plots' data into"),
         predictions: Path = typer.Option(layout.PREDICTIONS,
                                          help="predictions of base and adapter: is each gain real?")) -> None:
    """Write the paper-style tables, the summary metrics file and the plots' data."""
    params = load_params()
    results = collect(params, metrics)
    text = render(params, results, provenance(params, raw), significance(params, predictions),
                  significance(params, predictions, "most_common"))
    with atomic_dir(plots) as tmp:
        for name, content in plot_files(params, metrics).items():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp / name).write_bytes(content)
    write_json(summary, summarize(results))
    write_text(report, text)
    print(text)


if __name__ == "__main__":
    exit_on_error(lambda: typer.run(main))
