"""docs/tutorial_add_variant.md is executable: its Python blocks run in order in an empty folder (blocks
starting with `# file: NAME` are written to that file), and its `python -m equivalence ...` command runs as
shown."""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "docs" / "tutorial_add_variant.md"


def _blocks():
    return re.findall(r"```(python|bash)\n(.*?)```", TUTORIAL.read_text(), flags=re.S)


def test_tutorial_python_blocks_run(tmp_path, monkeypatch):
    import constructions

    blocks = [(lang, code) for lang, code in _blocks() if lang == "python"]
    assert len(blocks) >= 5
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    namespace: dict = {"__name__": "tutorial"}
    try:
        for _, code in blocks:
            first = code.splitlines()[0]
            if first.startswith("# file: "):
                (tmp_path / first.removeprefix("# file: ").strip()).write_text(code)
            else:
                exec(compile(code, str(TUTORIAL), "exec"), namespace)
        assert "channel-decay" in constructions.available()
    finally:
        constructions.unregister("channel-decay")
        constructions.unregister("channel-decay-broken")
        sys.modules.pop("channel_decay", None)


def test_tutorial_verify_command_writes_a_report_with_the_variant(tmp_path):
    files = [code for lang, code in _blocks() if lang == "python" and code.startswith("# file: ")]
    for code in files:
        (tmp_path / code.splitlines()[0].removeprefix("# file: ").strip()).write_text(code)
    commands = [c.strip() for lang, c in _blocks() if lang == "bash"]
    assert commands and commands[0].startswith("python -m equivalence verify")
    argv = shlex.split(commands[0])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run(
        [sys.executable] + argv[1:] + ["--no-progress"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    report = (tmp_path / "reports" / "channel-decay" / "report.md").read_text()
    assert "CHANNEL-DECAY-NUMERIC-FLOAT64-CPU/v1" in report
