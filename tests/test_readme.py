"""The README's Python examples run, in order, against the fixtures that ship; their asserts
are the results the README shows."""
import os
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent


def python_blocks(text):
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_the_readme_has_python_examples():
    assert len(python_blocks((ROOT / "README.md").read_text())) >= 1


def test_the_readme_examples_run(tmp_path, monkeypatch):
    # relative paths as from the repository's root, and what the examples write lands in a
    # temporary folder, not in the repository
    (tmp_path / "fixtures").symlink_to(ROOT / "fixtures")
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "readme"}
    for number, block in enumerate(python_blocks((ROOT / "README.md").read_text()), 1):
        exec(compile(block, f"README.md python block {number}", "exec"), namespace)  # noqa: S102
    assert sorted(os.listdir(tmp_path)) == ["fixtures", "thread-812.scap"]
