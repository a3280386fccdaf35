"""dvc.yaml's outputs are where finlora.layout says they are, for every stage: the CLI, the report
and `finlora compare` read them through the layout, so the two cannot drift apart."""

import yaml

from conftest import REPO
from finlora import layout

GROUP, SEED, SHOTS, BENCHMARK = "sentiment", 7, 3, "mmlu"


def declared_outs() -> dict[str, list[str]]:
    """Each stage's outs with its foreach key or matrix item filled in."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    outs = {}
    for name, stage in stages.items():
        body = stage.get("do", stage)
        paths = [next(iter(out)) if isinstance(out, dict) else out for out in body["outs"]]
        outs[name] = [path.replace("${key}", GROUP).replace("${item.group}", GROUP).replace("${item.seed}", str(SEED))
                        .replace("${item.shots}", str(SHOTS)).replace("${item.benchmark}", BENCHMARK)
                      for path in paths]
    return outs


def test_every_stage_writes_where_the_layout_says():
    expected = {
        "download": [layout.RAW / GROUP],
        "base_model": [layout.BASE],
        "preprocess": [layout.PREPARED / GROUP],
        "train": [layout.adapter(GROUP, SEED), layout.train_metrics(GROUP, SEED), layout.train_live(GROUP, SEED)],
        "evaluate_base": [layout.predictions("base", GROUP, SEED), layout.eval_metrics("base", GROUP, SEED),
                          layout.confusion("base", GROUP, SEED)],
        "evaluate": [layout.predictions("lora", GROUP, SEED), layout.eval_metrics("lora", GROUP, SEED),
                     layout.confusion("lora", GROUP, SEED)],
        "evaluate_few_shot": [layout.predictions("few_shot", GROUP, SHOTS), layout.eval_metrics("few_shot", GROUP, SHOTS),
                              layout.confusion("few_shot", GROUP, SHOTS)],
        "forgetting_base": [layout.forgetting(BENCHMARK)],
        "forgetting": [layout.forgetting(BENCHMARK, GROUP, SEED)],
        "report": [layout.REPORT, layout.SUMMARY, layout.TASK_METRICS, layout.PLOTS],
    }
    assert declared_outs() == {name: [str(path) for path in paths] for name, paths in expected.items()}


def test_a_base_model_run_is_its_groups_and_an_adapter_its_seeds():
    assert str(layout.predictions("base", GROUP, SEED)) == "data/predictions/base/sentiment"
    assert str(layout.adapter(GROUP, SEED)) == "models/adapters/sentiment/seed-7"
