"""DVC stage report: metrics/report.md, metrics/summary.json and metrics/tasks/ from every metrics file."""

from pathlib import Path

import typer

from finlora import layout
from finlora.config import load_params
from finlora.errors import exit_on_error
from finlora.files import atomic_dir, write_json, write_text
from finlora.report import (collect, forgetting_results, headlines, plot_files, provenance, render, significance,
                            summarize, task_metrics)


def main(metrics: Path = typer.Option(layout.METRICS, help="folder holding eval/ and train/ metrics"),
         report: Path = typer.Option(layout.REPORT, help="markdown report to write"),
         summary: Path = typer.Option(layout.SUMMARY, help="JSON of every score, spread and resource to write"),
         tasks: Path = typer.Option(layout.TASK_METRICS, help="folder of one metrics file per task to write"),
         raw: Path = typer.Option(layout.RAW, help="raw data folder: each task's source.json (provenance)"),
         plots: Path = typer.Option(layout.PLOTS, help="folder to gather the plots' data into"),
         predictions: Path = typer.Option(layout.PREDICTIONS,
                                          help="predictions of base and adapter: is each gain real?")) -> None:
    """Write the paper-style tables, the metrics files and the plots' data; print each task's headline."""
    params = load_params()
    results = collect(params, metrics)
    text = render(params, results, provenance(params, raw), significance(params, predictions),
                  significance(params, predictions, "most_common"),
                  {k: significance(params, predictions, f"shots-{k}") for k in params.few_shot.shots},
                  forgetting_results(params, metrics))
    with atomic_dir(plots) as tmp:
        for name, content in plot_files(params, metrics).items():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp / name).write_bytes(content)
    summarized = summarize(results)
    with atomic_dir(tasks) as tmp:
        for task, columns in task_metrics(params, summarized).items():
            write_json(tmp / f"{task}.json", columns)
    write_json(summary, summarized)
    write_text(report, text)
    print("\n".join([f"{report}: the report ({summary} beside it: every score, spread and resource)",
                      *headlines(summarized)]))


if __name__ == "__main__":
    exit_on_error(lambda: typer.run(main))
