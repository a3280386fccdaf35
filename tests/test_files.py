import pytest

from finlora.errors import FinloraError
from finlora.files import atomic_dir, read_jsonl, write_jsonl


def test_malformed_jsonl_line_names_file_and_line(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text('{"a": 1}\n{"a": 2\n')
    with pytest.raises(FinloraError, match=r"train\.jsonl:2: malformed JSON line"):
        read_jsonl(path)


def test_non_object_line_and_missing_and_unreadable_files(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text("[1, 2]\n")
    with pytest.raises(FinloraError, match=r"x\.jsonl:1: expected a JSON object"):
        read_jsonl(path)
    with pytest.raises(FinloraError, match="file not found"):
        read_jsonl(tmp_path / "missing.jsonl")
    binary = tmp_path / "b.jsonl"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(FinloraError, match="cannot read"):
        read_jsonl(binary)


def test_atomic_dir_keeps_the_old_output_when_the_work_fails(tmp_path):
    out = tmp_path / "out"
    with atomic_dir(out) as tmp:
        write_jsonl(tmp / "a.jsonl", [{"x": 1}])
    with pytest.raises(RuntimeError):
        with atomic_dir(out) as tmp:
            write_jsonl(tmp / "a.jsonl", [{"x": 2}])
            raise RuntimeError("interrupted")
    assert read_jsonl(out / "a.jsonl") == [{"x": 1}]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_leftovers_of_a_killed_write_are_removed_by_the_next_one(tmp_path):
    from finlora.files import atomic_dir, write_text

    (tmp_path / ".out.abc123.tmp").mkdir()  # what SIGKILL inside atomic_dir leaves
    (tmp_path / ".m.json.xyz.tmp").write_text("{")  # ... and inside write_text
    with atomic_dir(tmp_path / "out") as tmp:
        (tmp / "a").write_text("a")
    write_text(tmp_path / "m.json", "{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "out"]


def test_written_files_get_the_usual_permissions(tmp_path):
    import os
    import stat

    from finlora.files import UMASK, write_text

    from finlora.files import atomic_dir

    write_text(tmp_path / "m.json", "{}")
    assert stat.S_IMODE(os.stat(tmp_path / "m.json").st_mode) == 0o666 & ~UMASK
    with atomic_dir(tmp_path / "out") as tmp:
        write_text(tmp / "a.json", "{}")
    assert stat.S_IMODE(os.stat(tmp_path / "out").st_mode) == 0o777 & ~UMASK
