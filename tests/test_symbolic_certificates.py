"""Impossibility certificates, negative controls, invariances, the index normaliser and the claim registry."""

import pytest


def test_degree_certificates_are_computed_by_sympy():
    from equivalence.symbolic.impossibility import delta_rule_degrees, lsa_witness_degree, template_degrees

    assert template_degrees()["degree"] == 4
    assert template_degrees(output_gating=False)["degree"] == 2
    assert template_degrees(input_gating=False)["degree"] == 2
    expr, deg = lsa_witness_degree()
    assert deg == 3 and str(expr) == "x[1, 0]**3"
    assert [dg for _, _, dg in delta_rule_degrees(3)] == [3, 5, 7]


@pytest.mark.parametrize(
    "cid",
    [
        "TEMPLATE-DEGREE-BOUND/v1",
        "IMPOSSIBLE-NO-OUTPUT-GATING/v1",
        "IMPOSSIBLE-NO-INPUT-GATING/v1",
        "IMPOSSIBLE-DELTA-RULE/v1",
        "IMPOSSIBLE-SOFTMAX/v1",
        "LSA-RECURRENT-FORM/v1",
    ],
)
def test_global_claims_hold_with_their_argument(cid):
    from equivalence.symbolic import run_claim

    c = run_claim(cid)
    assert c.status == "proved", c.message
    assert c.latex and "<math" in c.evidence["mathml"] and len(c.statement_digest) == 64
    if cid.startswith("IMPOSSIBLE"):
        assert c.kind == "impossibility"
    if cid in ("TEMPLATE-DEGREE-BOUND/v1", "IMPOSSIBLE-NO-OUTPUT-GATING/v1", "IMPOSSIBLE-DELTA-RULE/v1"):
        assert r"\operatorname{deg}" in c.latex


def test_negative_controls_are_refuted_with_their_argument():
    """Every negative control is refuted as expected; its IMPOSSIBLE claim rests on the certificate it
    declares when it declares one, else on a concrete counterexample (saying that no certificate applies)."""
    import constructions
    from constructions.contract import hook
    from equivalence.symbolic import run_target, variant_claim_ids

    impossible = [n for n in constructions.available() if constructions.get(n).status == "impossible"]
    assert impossible, "the registry should carry negative controls"
    declared = 0
    for name in impossible:
        v = constructions.get(name)
        assert f"{name.upper()}-IMPOSSIBLE/v1" in variant_claim_ids(v)
        for c in run_target(name, profile="dev"):
            assert c.status in ("expected-failure", "skipped"), (c.id, c.status, c.message)
            if not (c.id.endswith("-IMPOSSIBLE/v1") and c.status == "expected-failure"):
                continue
            if hook(v, "impossibility_claim") is not None:
                declared += 1
                assert c.tier == "certificate", (c.id, c.message)
                assert c.evidence["argument"] == hook(v, "impossibility_claim") and c.latex
            else:
                assert c.tier == "counterexample" and c.evidence["argument"] is None, c.id
                assert "declares no impossibility certificate" in c.evidence["certificate_not_applied"]
    assert declared >= 3  # softmax-attention, deltanet, gated-deltanet


def test_softmax_and_delta_rule_controls_get_concrete_counterexamples():
    import constructions
    from equivalence.symbolic import run_claim

    for name in ("softmax-attention", "deltanet"):
        if name not in constructions.available():
            pytest.skip(f"{name} is not registered")
        c = run_claim(f"{name.upper()}-UNROLLED/v1", profile="dev")
        assert c.status == "expected-failure", c.message
        cx = c.counterexample
        assert cx["rnn_output"] != cx["reference_output"]


@pytest.mark.parametrize("key", ["permute_neurons", "rescale_neuron", "rescale_output_branches", "conjugate"])
def test_invariances_proved_and_conforming(key):
    from equivalence.symbolic.invariance import prove_invariance

    res = prove_invariance(key)
    assert res["holds"] and res["conformance"]["conforms"]


def test_a_wrong_invariance_rule_is_rejected(monkeypatch):
    """Rescaling a neuron without compensating E must fail the readout obligation."""
    from equivalence.symbolic import invariance as inv

    good = inv.MAPS["rescale_neuron"]
    bad_rules = dict(good.rules)
    bad_rules["E"] = inv.E[inv.mm, inv.k]
    monkeypatch.setitem(
        inv.MAPS,
        "rescale_neuron",
        inv.InvarianceMap(good.key, good.title, bad_rules, good.state, good.instances, good.torch_args),
    )
    res = inv.prove_invariance("rescale_neuron")
    assert not res["holds"] and res["failed"]["obligation"] == "readout"


def test_conformance_detects_a_torch_map_that_differs(monkeypatch):
    import constructions.invariances as cinv
    from equivalence.symbolic.invariance import conformance

    real = cinv.permute_neurons
    monkeypatch.setattr(cinv, "permute_neurons", lambda rnn, perm: real(rnn, perm.flip(0)))
    assert not conformance("permute_neurons")["conforms"]


def test_normal_form_decides_index_identities():
    import sympy as sp

    from equivalence.symbolic.expressions import IDX, LSA
    from equivalence.symbolic.index import equal_every_size

    i, j, t, eta, s = (IDX[k] for k in ("i", "j", "t", "eta", "s"))
    n = sp.Symbol("n", integer=True, positive=True)
    S, q = LSA.S, LSA.q(eta, j, t)
    assert equal_every_size(sp.Sum(S[eta, i, j] * q, (j, 0, n)), sp.Sum(q * S[eta, i, j], (j, 0, n)))
    assert not equal_every_size(sp.Sum(S[eta, i, j] * q, (j, 0, n)), sp.Sum(S[eta, j, i] * q, (j, 0, n)))
    lhs = sp.Sum(sp.Sum(LSA.x[s, j] * LSA.x[t, i], (s, 1, t)), (j, 0, n))
    assert equal_every_size(lhs, sp.Sum(sp.Sum(LSA.x[s, j] * LSA.x[t, i], (j, 0, n)), (s, 1, t)))
    assert not equal_every_size(lhs, sp.Sum(sp.Sum(LSA.x[s, j] * LSA.x[t, i], (j, 0, n)), (s, 1, t - 1)))


def test_conformance_rejects_a_broken_wiring(monkeypatch):
    import constructions.lsa as L
    from equivalence.symbolic import index

    real = L.direct_weights

    def broken(W_Q, W_K, W_V, W_O=None):
        w = real(W_Q, W_K, W_V, W_O)
        C = w.C.copy()
        C[[0, 1]] = C[[1, 0]]  # gate 0 reads the wrong key-value neuron
        return w._replace(C=C)

    monkeypatch.setattr(index, "direct_weights", broken)
    ok, failing = index.direct_conformance({"heads": 1, "d": 1, "d_k": 2, "d_v": 1}, with_W_O=False)
    assert not ok and failing


def test_claim_ids_aliases_and_errors():
    from equivalence.symbolic import claim_ids, resolve_claim

    ids = claim_ids()
    assert len(ids) == len(set(ids)) and all("/v" in i for i in ids)
    assert resolve_claim("LSA-RNN-DIRECT-ALLT")[0] == "LSA-DIRECT-ALLT/v1"
    assert resolve_claim("lsa-direct-unrolled/V1")[0] == "LSA-DIRECT-UNROLLED/v1"
    with pytest.raises(KeyError, match="no claim 'NOPE'"):
        resolve_claim("NOPE")
    with pytest.raises(KeyError, match="does not exist for variant"):
        resolve_claim("LSA-DIRECT-IMPOSSIBLE/v1")


def test_bad_sizes_are_clear_errors():
    from equivalence.symbolic import run_claim

    with pytest.raises(ValueError, match="size heads must be an int >= 1"):
        run_claim("LSA-DIRECT-UNROLLED/v1", sets=[{"d": 2, "heads": 0}])
    with pytest.raises(ValueError, match="needs d"):
        run_claim("LSA-DIRECT-UNROLLED/v1", sets=[{"heads": 1}])
    with pytest.raises(ValueError, match="tier must be one of"):
        run_claim("LSA-DIRECT-UNROLLED/v1", tier="fast")


def test_statement_digest_is_stable_across_processes():
    import subprocess
    import sys

    code = (
        "from equivalence.symbolic import run_claim; "
        "print(run_claim('LSA-DIRECT-ALLT/v1', sets=[{'d': 2, 'heads': 1}]).statement_digest)"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**__import__("os").environ, "PYTHONHASHSEED": seed},
        ).stdout.strip()
        for seed in ("1", "2")
    }
    assert len(outs) == 1 and len(outs.pop()) == 64


# -- certificates are declared by the control and checked on its own reference
# ------------------------------------
def _lsa_exact(W_Q, W_K, W_V, W_O, x):
    import numpy as np

    outs = []
    for h in range(W_Q.shape[0]):
        q, k, v = ([W[h] @ xt for xt in x] for W in (W_Q, W_K, W_V))
        outs.append(
            np.array(
                [
                    sum((v[s] * (k[s] @ q[t]) for s in range(t + 1)), np.zeros(W_V.shape[1], dtype=object))
                    for t in range(len(x))
                ],
                dtype=object,
            )
        )
    y = np.concatenate(outs, axis=1)
    return y if W_O is None else np.array([W_O @ r for r in y], dtype=object)


@pytest.fixture
def lsa_called_softmax():
    """Plain LSA registered as a negative control and described with the word 'softmax'."""
    import constructions
    from constructions.registry import LSADirect

    class Declared(LSADirect):
        status = "impossible"
        description = "Negative control: causal softmax attention (gsa, delta)"
        impossibility_claim = "IMPOSSIBLE-SOFTMAX/v1"

        def symbolic_reference(self, W_Q, W_K, W_V, W_O, x):
            return _lsa_exact(W_Q, W_K, W_V, W_O, x)

    class Worded(LSADirect):
        status = "impossible"
        description = "Negative control: softmax attention with the delta rule"

    constructions.register("t-lsa-declared-softmax")(Declared)
    constructions.register("t-lsa-worded-softmax")(Worded)
    yield
    constructions.unregister("t-lsa-declared-softmax")
    constructions.unregister("t-lsa-worded-softmax")


def test_lsa_described_as_softmax_is_never_an_expected_refutation(lsa_called_softmax):
    from equivalence.symbolic import run_target

    for name in ("t-lsa-declared-softmax", "t-lsa-worded-softmax"):
        claims = run_target(name, sets=[{"d": 2, "heads": 1, "T": 2}], seed=1)
        assert {c.status for c in claims} == {"unexpected-pass"}, [
            (c.id, c.status, c.message) for c in claims
        ]
        imp = next(c for c in claims if c.id.endswith("-IMPOSSIBLE/v1"))
        assert "No impossibility certificate is attached" in imp.statement
    (imp,) = [c for c in run_target("t-lsa-declared-softmax", seed=1) if c.id.endswith("IMPOSSIBLE/v1")]
    assert "polynomial of degree 3 <= 4" in imp.evidence["certificate_not_applied"]


def test_deltanet_certificate_is_about_normalised_keys_and_checked_on_deltanet():
    import constructions
    from equivalence.symbolic import run_claim

    assert constructions.get("deltanet").impossibility_claim == "IMPOSSIBLE-DELTANET/v1"
    c = run_claim("DELTANET-IMPOSSIBLE/v1", seed=1)
    assert c.status == "expected-failure" and c.tier == "certificate", c.message
    chk = c.evidence["variant_check"]
    assert chk["applies"] and chk["kind"] == "not a polynomial" and chk["equals_family_output"]
    assert "sqrt" in chk["output"] and "IMPOSSIBLE-DELTANET/v1" == c.evidence["argument"]
    for cid in ("IMPOSSIBLE-DELTANET/v1", "IMPOSSIBLE-GATED-DELTANET/v1"):
        g = run_claim(cid, seed=1)
        assert g.status == "proved" and "fifth derivative" in g.statement, g.message


def test_a_certificate_whose_hypothesis_fails_is_not_attached():
    """The unnormalised delta rule declaring the DeltaNet (normalised) certificate: on the witness line its
    reference is a polynomial of degree 2, so the certificate does not apply; the claim falls back to a
    concrete
    counterexample of the tried construction."""
    import constructions
    from constructions.variants.controls import DeltaNet
    from constructions.variants.symbolic import delta_reference

    class Unnormalised(DeltaNet):
        def sample_params(self, *a, **k):
            return super().sample_params(*a, **k, normalize=False)

        def symbolic_reference(self, W_Q, W_K, W_V, beta, W_O, x):
            return delta_reference(W_Q, W_K, W_V, beta, W_O, x)

    class Lying(DeltaNet):  # reference() normalises, the hook does not: the hook is not this layer
        def symbolic_reference(self, W_Q, W_K, W_V, beta, W_O, x):
            return delta_reference(W_Q, W_K, W_V, beta, W_O, x)

    class Unknown(DeltaNet):
        impossibility_claim = "IMPOSSIBLE-NO-SUCH/v1"

    constructions.register("t-delta-unnormalised")(Unnormalised)
    constructions.register("t-delta-unknown-cert")(Unknown)
    constructions.register("t-delta-lying-hook")(Lying)
    try:
        from equivalence.symbolic import run_claim

        c = run_claim("T-DELTA-UNNORMALISED-IMPOSSIBLE/v1", seed=2)
        assert c.status == "expected-failure" and c.tier == "counterexample", c.message
        assert "degree 2 <= 4" in c.evidence["certificate_not_applied"] and c.counterexample["t"] >= 1
        c = run_claim("T-DELTA-UNKNOWN-CERT-IMPOSSIBLE/v1", seed=2)
        assert c.tier == "counterexample" and "not a certificate" in c.evidence["certificate_not_applied"]
        for claim in ("IMPOSSIBLE", "UNROLLED"):  # neither certificate nor counterexample rests on the hook
            c = run_claim(f"T-DELTA-LYING-HOOK-{claim}/v1", seed=2)
            assert c.status not in ("expected-failure", "refuted"), (c.status, c.message)
            assert "the hook is not the variant's reference" in c.message, c.message
    finally:
        constructions.unregister("t-delta-lying-hook")
        constructions.unregister("t-delta-unnormalised")
        constructions.unregister("t-delta-unknown-cert")


def test_the_symbolic_package_imports_one_way():
    """No import cycle among the modules of equivalence/symbolic (module-level and function-level imports)."""
    import ast
    from pathlib import Path

    import equivalence.symbolic as pkg

    root = Path(pkg.__file__).parent
    mods = {p.stem for p in root.glob("*.py")}
    graph = {}
    for m in mods:
        deps = set()
        for node in ast.walk(ast.parse((root / f"{m}.py").read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                deps |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
        graph[m] = deps & mods - {m}
    state: dict = {}

    def visit(m, path):
        state[m] = 1
        for n in graph[m]:
            assert state.get(n) != 1, f"import cycle: {' -> '.join(path + [m, n])}"
            if n not in state:
                visit(n, path + [m])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])
    assert "variant_claims" not in graph["global_claims"] and "global_claims" not in graph["variant_claims"]
