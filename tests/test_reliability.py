"""A small slice of the reliability study (docs/reliability.md) in CI: no false alarms on correct cases,
mutants caught, and the table script runs end to end. The full table: python -m benchmarks.reliability."""

import json

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)  # small cases: intra-op threads only contend
    yield
    torch.set_num_threads(old)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_no_false_alarms_on_correct_cases(dtype):
    from benchmarks.reliability import FAMILIES, false_alarms

    stats = false_alarms(dtype, 40, seed=11, progress=False)
    assert set(stats) == set(FAMILIES)
    for fam, s in stats.items():
        assert s.cases >= 1 and s.failures == [] and s.overflows == [], (fam, s.failures)
        assert s.worst < 1.0, (fam, s.worst, s.worst_case)
    assert max(s.worst for s in stats.values()) > 1e-4  # the bound is rigorous but not vacuous


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_model_has_no_false_alarms(dtype):
    """fp16/bf16 under the low-precision model (docs/tolerance.md), step loop and parallel path, including a
    long (T >= 1024) case: the old relative model false-alarmed on exactly those (step loop, long and
    one-hot inputs)."""
    from benchmarks.reliability import false_alarms

    stats = false_alarms(dtype, 16, seed=3, progress=False)
    assert "all, parallel (summary)" in stats and "all, step loop (summary)" in stats
    assert stats["long"].cases >= 1
    for fam, s in stats.items():
        assert s.failures == [], (fam, s.failures)
        assert s.worst == s.worst and s.worst < 1.0  # never NaN (0/0 is 0: exact where the candidate is)
    assert max(s.worst for s in stats.values()) > 1e-2  # rigorous but not vacuous


def test_low_precision_exact_tier_is_exact_and_catches_100u():
    """The small-integer cases are computed exactly by both constructions at fp16/bf16 (no false alarm without
    a tolerance), and a weight perturbed by 100u of the dtype is then visible."""
    from benchmarks.reliability import _cast, small_integer_case
    from constructions import lsa_to_rnn
    from constructions.tolerance import unit_roundoff
    from properties.mutations import mutate_spec

    for dtype in (torch.bfloat16, torch.float16):
        g = torch.Generator().manual_seed(1)
        caught = 0
        for i in range(6):
            p, x = small_integer_case(g, dtype)
            ref = p.lsa()(x)
            for method in ("direct", "compressed"):
                rnn = lsa_to_rnn(_cast(p, dtype).lsa(), method)
                for mode in ("loop", "auto"):
                    assert torch.equal(rnn(x.to(dtype), mode=mode).double(), ref), (dtype, i, method, mode)
            layer, _, _ = mutate_spec(rnn, "weight", g, 100 * unit_roundoff(dtype))
            caught += not torch.equal(layer(x.to(dtype)).double(), ref)
        assert caught >= 5, (dtype, caught)


def test_mutants_are_caught():
    from benchmarks.reliability import detection
    from properties.mutations import KINDS, mutate

    rows = {
        (r["kind"], r["eps"]): r
        for r in detection(torch.float64, 3, seed=5, progress=False, prover_mutants=0)
    }
    for kind in ("swap-wiring", "drop-input-branch", "drop-output-branch", "causal-lag", "causal-lead"):
        assert rows[(kind, None)]["numeric"] == 1.0, rows[(kind, None)]
    assert rows[("weight", 1e-2)]["numeric"] == 1.0
    assert rows[("weight", 1.1e-14)]["exact"] >= 2 / 3  # ~100 u: only the exact-integer tier sees it
    assert {k for k, _ in rows} == set(KINDS)
    low = {(r["kind"], r["eps"]): r for r in detection(torch.bfloat16, 2, seed=5, progress=False)}
    assert {k for k, _ in low} == set(KINDS) and all(r["prover"] is None for r in low.values())
    assert low[("causal-lead", None)]["exact"] == 1.0 and low[("weight", 1.0)]["exact"] == 1.0
    from constructions import LinearSelfAttention, lsa_to_rnn

    lsa = LinearSelfAttention(*(torch.ones(1, 1, 1, dtype=torch.float64) for _ in range(3)))
    with pytest.raises(ValueError, match="kind must be one of"):
        mutate(lsa_to_rnn(lsa), "cosmic-ray", torch.Generator())


def test_table_script_end_to_end(tmp_path):
    from benchmarks.reliability import main

    md, js = tmp_path / "t.md", tmp_path / "t.json"
    rc = main(
        [
            "--quick",
            "--cases",
            "24",
            "--low-precision-cases",
            "8",
            "--mutants",
            "1",
            "--prover-mutants",
            "0",
            "--no-progress",
            "--out",
            str(md),
            "--json",
            str(js),
        ]
    )
    assert rc == 0
    text = md.read_text()
    assert "| **float64** | **all** |" in text and "### Detection power" in text and "causal-lag" in text
    assert (
        "| **bfloat16** | **all** |" in text
        and "| bfloat16 | weight |" in text
        and "| float16 | weight |" in text
    )
    raw = json.loads(js.read_text())
    assert raw["meta"]["seed"] == 0 and len(raw["detection"]) > 40
    with pytest.raises(SystemExit):
        main(["--cases", "0"])


def test_prover_column_refutes_mutants_and_accepts_the_construction():
    pytest.importorskip("equivalence.symbolic.engine", reason="the symbolic engine is not present")
    from benchmarks.reliability import _integer_case, prover_refutes
    from constructions import lsa_to_rnn
    from properties.mutations import mutate_spec

    g = torch.Generator().manual_seed(2)
    params, _ = _integer_case(g)
    for method in ("direct", "compressed"):
        rnn = lsa_to_rnn(params.lsa(), method)
        correct = {
            "w": {k: v.detach() for k, v in rnn.weights()._asdict().items()},
            "shift": 0,
            "drop_output": None,
        }
        assert not prover_refutes(correct, params)  # no false alarm: the construction is an exact identity
        for kind, eps in (("causal-lag", 0.0), ("weight", 1e-15)):
            _, _, spec = mutate_spec(rnn, kind, g, eps)
            assert prover_refutes(spec, params), kind


def test_variant_summary_counts_false_alarms_and_vacuous_cases():
    from benchmarks.reliability import summarise_variants

    DTS = ("float64", "float32", "bfloat16", "float16")
    st = {"cases": 3, "sequences": 6, "worst": 0.5, "failures": [], "overflows": 1}
    bad = dict(st, worst=2.0, failures=["x"], overflows=[])  # older lines list the overflows
    row = {
        "variant": "v",
        "vacuous": {"float64": 0, "float32": 0, "bfloat16": 4, "float16": 1},
        "stats": {dt: {"ordinary": st, "extreme-input": bad} for dt in DTS},
    }
    table = summarise_variants([row, row])
    assert "| `v` | 10/10/10/10 | 0/0/8/2 | 2/2/2/2 | 2/2/2/2 | 2/2/2/2 | 2/2/2/2 |" in table, table


def test_batched_variant_cases_are_decided_as_compare_decides_each_case_alone():
    """A group of cases shares one parameter draw and one batched forward; each case's error/bound is
    compare's on that case alone (bit for bit), and replaying a case from its seed, group and index in a
    fresh evaluation gives the same decision."""
    from benchmarks.reliability import (
        VARIANT_DTYPES,
        _case_ratios,
        _cast_params,
        _forward_cases,
        _round_params,
        _variant,
        replay_variant_case,
        variant_group,
    )
    from constructions.tolerance import compare, magnitude_at

    for name in ("gla", "lsa-compressed"):
        v = _variant(name)
        for j in (0, 2, 3):  # ordinary, chunk-boundary, extreme-input
            _, params, xs, _ = variant_group(name, 5, j, 3)
            x = torch.cat(xs)
            p64, x64 = _round_params(params, torch.float32), x.to(torch.float32).double()
            ref, n = v.reference(p64, x64), v.path_length(p64, x64.shape[1])
            for dt in VARIANT_DTYPES[0][1]:
                M = magnitude_at(v, p64, x64, dt)  # at the working dtype, as the sweep and verify use it
                y, errors = _forward_cases(v.construct(_cast_params(p64, dt)), x64.to(dt), 3)
                assert errors == {}
                ratios, finite = _case_ratios(y, ref, M, n, dt, 3)
                for i in range(3):
                    sl = slice(2 * i, 2 * i + 2)
                    alone = compare(y[sl], ref[sl], M[sl], n=n, dtype=dt)
                    assert finite[i] and ratios[i] == alone.ratio, (name, j, i, dt)
                assert replay_variant_case(name, 5, j, i, dt).ratio == alone.ratio  # the last case, alone


def test_variant_sweep_has_no_false_alarm_and_counts_a_broken_twin(monkeypatch):
    """A small slice of every stratum of ``variants``: 0 false alarms on a correct variant; the same sweep
    over a construction whose output is off by 1e-3 (relative) reports it in every float64 stratum."""
    import benchmarks.reliability as R

    res = R.variant_false_alarms("gla", 8, seed=3, group=2)
    for dt, by in res["stats"].items():
        assert all(st.failures == [] for st in by.values()), dt
        assert sum(st.cases for st in by.values()) + res["vacuous"][dt] == 8
    assert max(st.worst for st in res["stats"]["float64"].values()) > 1e-4  # not vacuous

    good = R._variant("gla")

    class Broken:
        def __getattr__(self, k):
            return getattr(good, k)

        def construct(self, params):
            rnn = good.construct(params)
            return lambda x: rnn(x) * (1 + 1e-3)

    monkeypatch.setattr(R, "_variant", lambda name: Broken())
    bad = R.variant_false_alarms("gla", 8, seed=3, group=2)["stats"]["float64"]
    assert all(len(st.failures) == st.cases == 2 for st in bad.values()), bad
    assert "EXCEEDS the error bound" in bad["long"].failures[0] and "seed 3 group" in bad["long"].failures[0]


def test_variants_cli_refuses_bad_arguments(capsys):
    from benchmarks.reliability import variants_main

    for argv in (
        ["--cases", "0"],
        ["--group", "0"],
        ["--variant", "no-such-variant"],
        ["--until-compared", "0"],
    ):
        with pytest.raises(SystemExit) as e:
            variants_main([*argv, "--jsonl", "/nonexistent/x.jsonl"])
        assert e.value.code == 2
    assert "unknown or not exact/partial" in capsys.readouterr().err


def test_until_compared_draws_rounds_until_enough_cases_are_compared(tmp_path):
    """``--until-compared N`` keeps drawing rounds for a variant until every selected dtype has N cases
    compared (vacuous ones do not count), and stops at ``--rounds``."""
    from benchmarks.reliability import variants_main

    out = tmp_path / "v.jsonl"
    argv = ["--cases", "16", "--variant", "lsa-direct", "--dtype", "bfloat16", "--jsonl", str(out)]
    assert variants_main([*argv, "--rounds", "50", "--until-compared", "20"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]

    def compared(row):
        return sum(st["cases"] - st["overflows"] for st in row["stats"]["bfloat16"].values())

    counts = [compared(r) for r in rows]
    assert sum(counts) >= 20 and sum(counts[:-1]) < 20  # stopped at the first round that reached 20
    assert [r["round"] for r in rows] == list(range(len(rows)))
    out.unlink()
    assert variants_main([*argv, "--rounds", "2", "--until-compared", "1000000"]) == 0
    assert len(out.read_text().splitlines()) == 2  # bounded by --rounds


def test_long_stratum_finds_a_state_lost_past_chunk_4_of_64():
    """The dev profile's generated examples (no pinned edge case) draw T just past 256 often enough to see a
    state lost at the start of chunk 4 of 64 tokens (first wrong at T = 257)."""
    from benchmarks.reliability import chunk_detection
    from properties.strategies import lengths, past_boundary_lengths

    assert past_boundary_lengths(520) == (257, 385, 513) and past_boundary_lengths(160) == (129,)
    assert past_boundary_lengths(100) == () and lengths(1, 96, None).validate() is None
    (row,) = chunk_detection(chunks=(64,), indices=(4,), seeds=2)
    assert row["caught"] == 2, row
