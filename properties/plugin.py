"""pytest plugin: run the property suite against your own layer (``pytest --pyargs properties --lsa-layer
...``).

Registered through the ``pytest11`` entry point of this distribution, so it is active wherever the package
is installed (or load it explicitly with ``-p properties.plugin``). It only adds options, an ini key and the
parametrisation of the suite's ``lsa_target`` / ``variant_name`` arguments; it imports the project's
packages lazily, inside hooks, so installing it costs nothing to unrelated test runs.

Usage (``docs/properties.md``)::

    pytest --pyargs properties --lsa-layer mymodule:make_layer          # make_layer(lsa) -> layer
    pytest --pyargs properties --lsa-layer mymodule:layer --lsa-reference mymodule:lsa
    pytest --pyargs properties                                           # the paper's constructions

Modelled on array-api-tests: the module under test is named in the report header, and every failure
carries Hypothesis's reproducer (``@reproduce_failure`` blob and the drawn seeds).
"""

import importlib
import importlib.util
import os
import sys
from pathlib import Path

import pytest

DTYPES = ("float64", "float32")
PROFILES = ("dev", "ci", "thorough")


def pytest_addoption(parser):
    group = parser.getgroup(
        "properties", "property suite for layers claimed to implement linear self-attention"
    )
    group.addoption(
        "--lsa-layer",
        default=None,
        metavar="MODULE:ATTR",
        help="your layer factory: ATTR(lsa) -> layer, a callable [B,T,d] -> [B,T,d_out] claimed to "
        "compute the given LinearSelfAttention. MODULE is a dotted module (imported from the "
        "current directory or sys.path) or a path to a .py file. With --lsa-reference, ATTR is "
        "the layer itself.",
    )
    group.addoption(
        "--lsa-reference",
        default=None,
        metavar="MODULE:ATTR",
        help="the one LinearSelfAttention (or a zero-argument function returning it) that the "
        "--lsa-layer layer implements; then only inputs are drawn",
    )
    group.addoption(
        "--lsa-dtype",
        default=None,
        choices=DTYPES,
        help="dtype of the weights and inputs handed to your layer (default float64); outputs are "
        "judged against a float64 reference with this dtype's unit roundoff",
    )
    group.addoption("--lsa-device", default=None, help="device for your layer: cpu (default) or cuda[:N]")
    group.addoption(
        "--lsa-exact",
        action="store_true",
        default=None,
        help="also require exact equality on small-integer weights and inputs (true of the paper's "
        "constructions; a layer that rescales internally may legitimately fail it)",
    )
    group.addoption(
        "--lsa-variant",
        action="append",
        default=None,
        metavar="NAME",
        help="registered variant(s) whose construction the suite checks against its reference "
        "(repeatable; 'all' = every registered variant; default: all, unless --lsa-layer)",
    )
    group.addoption(
        "--lsa-import",
        action="append",
        default=[],
        metavar="MODULE_OR_FILE",
        help="import a module or .py file first (e.g. one that registers variants)",
    )
    group.addoption(
        "--lsa-profile",
        default=None,
        choices=PROFILES,
        help="Hypothesis profile: dev (25 examples), ci (100, derandomized), thorough (2000); "
        "default: ci when CI is set, else dev",
    )
    group.addoption(
        "--lsa-counterexamples",
        default=None,
        metavar="DIR",
        help="where each failure writes its exact weights and inputs (a JSON file that "
        "'python -m equivalence replay FILE' replays; default: lsa-counterexamples/ in the "
        "pytest root directory, or $LSA_COUNTEREXAMPLES)",
    )
    parser.addini("lsa_layer", "default for --lsa-layer (MODULE:ATTR)", default="")
    parser.addini("lsa_reference", "default for --lsa-reference (MODULE:ATTR)", default="")


def _opt(config, name: str):
    value = config.getoption(f"--lsa-{name}")
    if value is None and name in ("layer", "reference"):
        value = config.getini(f"lsa_{name}") or None
    return value


def load_object(spec: str, what: str):
    """Resolve ``MODULE:ATTR`` (``MODULE`` dotted or a ``.py`` path; ``ATTR`` may be dotted)."""
    if not isinstance(spec, str) or ":" not in spec:
        raise pytest.UsageError(f"{what} must look like MODULE:ATTR (e.g. mymodule:make_layer); got {spec!r}")
    mod_name, attr = spec.rsplit(":", 1)
    try:
        if mod_name.endswith(".py") or os.sep in mod_name:
            path = Path(mod_name)
            if not path.is_file():
                raise pytest.UsageError(f"{what} {spec!r}: no such file {path}")
            name = f"_lsa_user_{path.stem}"
            mspec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(mspec)
            sys.modules[name] = module
            mspec.loader.exec_module(module)
        else:
            if os.getcwd() not in sys.path:
                sys.path.insert(0, os.getcwd())
            module = importlib.import_module(mod_name)
    except ImportError as e:
        raise pytest.UsageError(f"{what} {spec!r}: cannot import {mod_name!r} ({e})") from None
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise pytest.UsageError(f"{what} {spec!r}: module {mod_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def _register_profiles() -> None:
    # lazy: the plugin loads in every pytest run; the project's packages only when used
    from hypothesis import HealthCheck, settings
    from hypothesis.errors import InvalidArgument  # lazy: as above

    try:
        settings.get_profile("thorough")
        return  # the project's conftest (or someone) already registered them
    except InvalidArgument:
        pass
    settings.register_profile("dev", max_examples=25, deadline=None, print_blob=True)
    settings.register_profile(
        "ci",
        parent=settings.get_profile("ci"),
        max_examples=100,
        deadline=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
    settings.register_profile(
        "thorough",
        max_examples=2000,
        deadline=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow],
    )


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs CUDA (skipped without it)")
    profile = config.getoption("--lsa-profile")
    user_profile = config.getoption("--hypothesis-profile", default=None)
    if profile is not None or (_opt(config, "layer") and user_profile is None):
        # lazy: the plugin loads in every pytest run; the project's packages only when used
        from hypothesis import settings

        _register_profiles()
        settings.load_profile(profile or ("ci" if os.environ.get("CI") else "dev"))
    config._lsa_targets = None
    # lazy: the plugin loads in every pytest run; the project's packages only when used
    from .counterexamples import set_counterexample_dir

    if (
        config.getoption("--lsa-counterexamples")
        or _opt(config, "layer")
        or any(
            str(a) == "properties" or str(a).startswith("properties::") or "test_lsa_layer" in str(a)
            for a in config.args
        )
    ):  # a property-suite session (not the project's own tests)
        set_counterexample_dir(
            config.getoption("--lsa-counterexamples") or Path(str(config.rootpath)) / "lsa-counterexamples"
        )


def _targets(config):
    """The targets of this session (built once, lazily)."""
    if getattr(config, "_lsa_targets", None) is not None:
        return config._lsa_targets
    # lazy: the plugin loads in every pytest run; the project's packages only when used
    import torch

    from . import suite  # lazy: as above

    for spec in config.getoption("--lsa-import"):
        if spec.endswith(".py"):
            load_object(f"{spec}:__name__", "--lsa-import")
        else:
            try:
                importlib.import_module(spec)
            except ImportError as e:
                raise pytest.UsageError(f"--lsa-import {spec!r}: {e}") from None
    dtype = getattr(torch, _opt(config, "dtype") or "float64")
    device = _opt(config, "device") or "cpu"
    if not (device == "cpu" or device.startswith("cuda")):
        raise pytest.UsageError(f"--lsa-device must be cpu or cuda[:N]; got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise pytest.UsageError(f"--lsa-device {device} requested but CUDA is not available")
    layer_spec, ref_spec = _opt(config, "layer"), _opt(config, "reference")
    if ref_spec and not layer_spec:
        raise pytest.UsageError("--lsa-reference needs --lsa-layer (the layer that implements it)")
    if layer_spec:
        obj = load_object(layer_spec, "--lsa-layer")
        if not callable(obj):
            raise pytest.UsageError(f"--lsa-layer {layer_spec!r} is a {type(obj).__name__}, not callable")
        fixed = None
        if ref_spec:
            # lazy: the plugin loads in every pytest run; the project's packages only when used
            from constructions import LinearSelfAttention

            fixed = load_object(ref_spec, "--lsa-reference")
            if not isinstance(fixed, LinearSelfAttention) and callable(fixed):
                fixed = fixed()
            if not isinstance(fixed, LinearSelfAttention):
                raise pytest.UsageError(
                    f"--lsa-reference {ref_spec!r} must be a LinearSelfAttention (or return one); "
                    f"got {type(fixed).__name__}"
                )
            # lazy: the plugin loads in every pytest run; the project's packages only when used
            from .magnitudes import cast_lsa

            fixed = cast_lsa(fixed, torch.float64, "cpu")  # the reference stays float64 on CPU

            def build(lsa, _layer=obj):
                return _layer
        else:
            build = obj
        targets = [
            suite.user_target(
                build,
                name=f"--lsa-layer {layer_spec}",
                dtype=dtype,
                device=device,
                fixed_lsa=fixed,
                exact=bool(config.getoption("--lsa-exact")),
                info={"layer": layer_spec},
            )
        ]
    else:  # the paper's constructions; with --lsa-variant, only the ones named (lsa-direct, lsa-compressed)
        names = config.getoption("--lsa-variant")
        methods = [
            m for m in ("direct", "compressed") if names is None or "all" in names or f"lsa-{m}" in names
        ]
        targets = [suite.construction_target(m, dtype=dtype, device=device, mode="both") for m in methods]
    config._lsa_targets = targets
    return targets


def _variants(config) -> list[str]:
    # lazy: the plugin loads in every pytest run; the project's packages only when used
    import constructions

    names = config.getoption("--lsa-variant")
    if names is None:
        return [] if _opt(config, "layer") else constructions.available()
    if "all" in names:
        return constructions.available()
    for n in names:
        constructions.get(n)  # KeyError lists the available names
    return names


def pytest_generate_tests(metafunc):
    if "lsa_target" in metafunc.fixturenames:
        targets = _targets(metafunc.config)
        metafunc.parametrize("lsa_target", targets, ids=[t.name for t in targets], scope="session")
    if "variant_name" in metafunc.fixturenames:
        try:
            names = _variants(metafunc.config)
        except KeyError as e:
            raise pytest.UsageError(str(e.args[0])) from None
        metafunc.parametrize("variant_name", names, scope="session")


def _variant_only(config) -> bool:
    """``--lsa-variant X`` without ``--lsa-layer`` (and not ``all``): run X only."""
    names = config.getoption("--lsa-variant")
    return bool(names) and "all" not in names and not _opt(config, "layer")


def pytest_collection_modifyitems(config, items):
    """With ``--lsa-variant X``: deselect the suite's tests that are not about X (the paper constructions
    unless X is one of them, the template self-test), instead of running or skipping them."""
    if not _variant_only(config):
        return
    keep, drop = [], []
    for item in items:
        module = getattr(getattr(item, "module", None), "__name__", "")
        params = getattr(getattr(item, "callspec", None), "params", {})
        about_x = (
            "variant_name" in item.fixturenames or type(params.get("lsa_target")).__name__ == "LayerTarget"
        )
        (keep if module != "properties.test_lsa_layer" or about_x else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def lsa_user_layer(pytestconfig) -> bool:
    """True when the session tests a user's layer (``--lsa-layer``) rather than the paper's constructions."""
    return bool(_opt(pytestconfig, "layer"))


def pytest_report_header(config):
    layer = _opt(config, "layer")
    if not layer and not any("properties" in str(a) for a in config.args):
        return None
    lines = [
        f"properties: target {'--lsa-layer ' + layer if layer else 'the paper constructions (lsa_to_rnn)'}"
    ]
    if layer:
        _targets(config)  # load the user's module now: a bad --lsa-layer is reported before collection
        mod_name = layer.rsplit(":", 1)[0]
        if mod_name.endswith(".py") or os.sep in mod_name:
            mod_name = f"_lsa_user_{Path(mod_name).stem}"
        mod = sys.modules.get(mod_name)
        if mod is not None:
            lines.append(
                f"properties: module {mod_name} from {getattr(mod, '__file__', '?')}, "
                f"version {getattr(mod, '__version__', 'unknown')}"
            )
    else:
        # lazy: the plugin loads in every pytest run; the project's packages only when used
        import constructions

        lines.append(f"properties: module constructions from {constructions.__file__}, version {_version()}")
    ref = _opt(config, "reference")
    lines.append(
        f"properties: dtype {_opt(config, 'dtype') or 'float64'}, device {_opt(config, 'device') or 'cpu'}"
        + (f", reference {ref}" if ref else "")
    )
    names = config.getoption("--lsa-variant")
    if names:
        lines.append(f"properties: variants {', '.join(names)}" + (" only" if _variant_only(config) else ""))
    lines.append(f"properties: {_profile_line()}")
    # lazy: the plugin loads in every pytest run; the project's packages only when used
    from .counterexamples import counterexample_dir

    lines.append(f"properties: failures write their exact weights and inputs to {counterexample_dir()}/")
    return lines


def _version() -> str:
    # lazy: the plugin loads in every pytest run; the project's packages only when used
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("attention-rnn-equivalence")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _profile_line() -> str:
    """The active Hypothesis profile, named, with the settings that decide what is drawn."""
    # lazy: the plugin loads in every pytest run; the project's packages only when used
    from hypothesis import settings

    cur = settings.default
    name = getattr(settings, "_current_profile", None) or "unknown"
    return (
        f"Hypothesis profile {name!r} (max_examples={cur.max_examples}, derandomize={cur.derandomize}, "
        f"database={'on' if cur.database is not None else 'off'})"
    )


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """After a passing run at a precision below float64: say how much finer a float64 run would look."""
    targets = getattr(config, "_lsa_targets", None)
    if exitstatus != 0 or not targets:
        return
    # lazy: the plugin loads in every pytest run; the project's packages only when used
    import torch

    from .suite import sensitivity_hint  # lazy: as above

    for dt in sorted({t.dtype for t in targets if t.dtype != torch.float64}, key=str):
        hint = sensitivity_hint(dt)
        if hint:
            terminalreporter.write_line(f"properties: passed; {hint}")
