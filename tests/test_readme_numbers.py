"""The numbers the README's tour prints are the numbers it states: its Python snippet is run as written and
each ``print`` line's output is compared with the comment on that line (integers exactly, ``~X`` to within a
factor of 10: the same order of magnitude)."""

import math
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_NUMBER = re.compile(r"~?-?\d+(?:\.\d+)?(?:e-?\d+)?")


def _tour() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    tour = text[text.index("## A short tour") :]
    return re.search(r"```python\n(.*?)```", tour, re.S).group(1)


def _stated(code: str) -> list[list[str]]:
    """The numbers stated in the comment of each ``print(...)`` line, in order."""
    out = []
    for line in code.splitlines():
        if line.startswith("print(") and "#" in line:
            comment = line.split("#", 1)[1]
            out.append(_NUMBER.findall(comment.split("(")[0].split(":")[0]))
    return out


def _agrees(stated: str, printed: str) -> bool:
    value = float(printed)
    if stated.startswith("~"):
        want = float(stated[1:])
        return value != 0 and abs(math.log10(abs(value) / want)) <= 1
    return float(stated) == value


def test_the_checker_rejects_a_wrong_number():
    """Power check: a stated order of magnitude off by 10x or more, or a wrong integer, is caught."""
    assert _agrees("~4e-12", "3.638e-12") and _agrees("30", "30")
    assert not _agrees("~1e-13", "3.638e-12") and not _agrees("30", "31")
    assert _stated('print(a, b)  # 30, ~4e-12 (float64)\nx = 1\nprint(c)  # 2: heads\n') == [
        ["30", "~4e-12"],
        ["2"],
    ]


def test_readme_tour_prints_the_numbers_it_states():
    code = _tour()
    stated = _stated(code)
    assert stated, "the README's tour states no printed numbers"
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=ROOT, timeout=600
    )
    assert r.returncode == 0, r.stderr
    printed = [_NUMBER.findall(line) for line in r.stdout.strip().splitlines()]
    assert len(printed) == len(stated), (printed, stated)
    for want, got in zip(stated, printed, strict=True):
        assert len(got) >= len(want), (want, got)
        for s, p in zip(want, got, strict=False):
            assert _agrees(s, p), f"the README states {s}, the snippet prints {p} (line {got})"


def _variant_rows() -> dict[str, tuple[str, int]]:
    """``name -> (status, neurons)`` of the README's gating-variants table (backticked single names)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Gating variants") :]
    rows = {}
    for m in re.finditer(r"^\| `([a-z0-9-]+)` \| ([a-z ()]+?) \| (\d+) \|", section, re.M):
        rows[m.group(1)] = (m.group(2).strip(), int(m.group(3)))
    return rows


def test_the_readme_variant_table_matches_the_registry():
    """Every registered variant that is not one of the fla-family controls (summarised in one row) has a row
    with its registered status and neuron count at d=4, H=2 (``constructions.registry.summary()``); no row
    names a variant that is not registered."""
    import constructions
    from constructions.registry import summary
    from constructions.variants.fla_controls import CONTROL_NAMES

    rows = _variant_rows()
    want = {r["name"]: (r["status"], r["neurons"]) for r in summary() if r["name"] not in CONTROL_NAMES}
    assert set(rows) <= set(constructions.available()), set(rows) - set(constructions.available())
    assert rows == want
    assert f"| {len(CONTROL_NAMES)} fla-family controls |" in (ROOT / "README.md").read_text(encoding="utf-8")
