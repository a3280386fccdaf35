"""Property-based tests of every reader: whatever the input, the result is data or a FinloraError
whose message names the file (and line, where a line is to blame) or the key, and says it in one
line plus at most a hint; never another exception. A bounded number of examples per reader."""

import copy
import json
import string

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import REPO, params_with
from finlora.config import parse_params
from finlora.errors import FinloraError
from finlora.files import read_jsonl
from finlora.answers import released_record
from finlora.finer import entities
from finlora.prepare import prepare
from finlora.sources import local, released
from finlora.tasks import TASKS
from finlora.xbrl import parse_filing

BOUNDED = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
DEFAULTS = yaml.safe_load((REPO / "params.yaml").read_text())
scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 10**6), st.floats(allow_nan=False),
                    st.text(max_size=12))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                      max_leaves=6)


def assert_clean(error: FinloraError, *names: str) -> None:
    message = error.args[0]
    assert "\n" not in message, message
    assert any(name in message for name in names), (message, names)


def key_paths(node, prefix=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield prefix + (key,)
            yield from key_paths(value, prefix + (key,))


PARAM_KEYS = list(key_paths(DEFAULTS))


@BOUNDED
@given(st.sampled_from(PARAM_KEYS), values)
def test_any_params_value_is_accepted_or_named(path, value):
    raw = copy.deepcopy(DEFAULTS)
    node = raw
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    try:
        parse_params(raw, source="params.yaml")
    except FinloraError as error:
        assert_clean(error, "params.yaml")


@BOUNDED
@given(st.sampled_from(["sentiment", "xbrl"]), st.sampled_from(["lr", "epochs", "batch_size", "grad_accum", "max_seq_len"]),
       st.one_of(st.floats(), st.integers(-5, 10**9)))
def test_any_group_setting_is_accepted_or_named(group, key, value):
    """A group's own training settings: found by this test, infinity once ended in an OverflowError."""
    raw = copy.deepcopy(DEFAULTS)
    raw["train"]["by_group"] = {group: {key: value}}
    try:
        params = parse_params(raw, source="params.yaml")
    except FinloraError as error:
        assert_clean(error, f"train.by_group.{group}")
    else:  # what is accepted can train: found by this test, nan passed as a learning rate
        train = params.for_group(group).train
        assert 0 < train.lr < float("inf") and min(train.epochs, train.batch_size, train.grad_accum) >= 1


@BOUNDED
@given(st.binary(max_size=200))
def test_any_jsonl_bytes_are_rows_or_a_named_line(tmp_path_factory, content):
    path = tmp_path_factory.mktemp("jsonl") / "train.jsonl"
    path.write_bytes(content)
    try:
        rows = read_jsonl(path)
    except FinloraError as error:
        assert_clean(error, str(path))
    else:
        assert all(isinstance(row, dict) for row in rows)


@BOUNDED
@given(st.sampled_from(list(TASKS)), st.dictionaries(st.sampled_from(["context", "target", "doc_path", "x"]),
                                                     scalars, max_size=4))
def test_any_released_record_is_checked_or_refused(task, row):
    try:
        record = released_record(TASKS[task], row)
    except FinloraError as error:
        assert_clean(error, "context", "target")
    else:
        assert record["context"] == row["context"] and record["target"]


@BOUNDED
@given(st.lists(st.one_of(st.text(max_size=40), st.builds(json.dumps, st.dictionaries(
    st.sampled_from(["context", "target"]), scalars, max_size=2))), min_size=1, max_size=5))
def test_any_released_test_file_loads_or_names_its_line(tmp_path_factory, lines):
    folder = tmp_path_factory.mktemp("finlora")
    (folder / "test").mkdir()
    path = folder / "test" / "fpb_test.jsonl"
    path.write_text("\n".join(line.replace("\n", " ") for line in lines) + "\n")
    try:
        data = params_with({"data": {"source": "finlora", "local_dir": str(folder), "seed": 1}}).data
        loaded = released.load(TASKS["fpb"], data)
    except FinloraError as error:
        assert_clean(error, str(path))
    else:
        assert loaded["splits"]["test"]


@BOUNDED
@given(st.text(alphabet=string.printable, max_size=120))
def test_any_csv_is_rows_or_a_named_file(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("csv") / "train.csv"
    path.write_text(text)
    try:
        rows = local.read_rows(path)
    except FinloraError as error:
        assert_clean(error, str(path))
    else:
        assert isinstance(rows, list)


@BOUNDED
@given(st.one_of(st.binary(max_size=120), st.text(max_size=80).map(
    lambda body: f'<xbrl xmlns:us-gaap="http://fasb.org/us-gaap/2023"><context id="c">{body}</context></xbrl>')))
def test_any_filing_parses_or_names_the_file(tmp_path_factory, content):
    path = tmp_path_factory.mktemp("xbrl") / "filing.xml"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    try:
        parse_filing(path)
    except FinloraError as error:
        assert_clean(error, str(path))


TAGS = ["Revenues", "LongTermDebt"]


@BOUNDED
@given(st.lists(st.text(max_size=5), max_size=6),
       st.lists(st.one_of(st.sampled_from(["O", "B-Revenues", "I-Revenues", "B-LongTermDebt", "B-Other", "X"]),
                          st.integers()), max_size=6))
def test_any_finer_row_gives_entities_or_a_clear_error(tokens, tags):
    try:
        found = entities(tokens, tags, TAGS)
    except FinloraError as error:
        assert_clean(error, "tokens", "ner_tags", "tag")
    else:
        assert all(tag in TAGS for _, tag in found)


@BOUNDED
@given(st.lists(st.dictionaries(st.sampled_from(["sentence", "label", "id"]), scalars, max_size=3), max_size=4))
def test_any_raw_rows_are_prepared_or_name_their_line(tmp_path_factory, rows):
    params = params_with({"tasks": {"s": ["fpb"]}})
    path = tmp_path_factory.mktemp("raw") / "train.jsonl"
    try:
        prepared = prepare(TASKS["fpb"], rows, path, params)
    except FinloraError as error:
        assert_clean(error, f"{path}:")
    else:
        assert len(prepared.records) == len(rows)
