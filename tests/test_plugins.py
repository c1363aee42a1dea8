"""Plugin discovery: entry points, the load restriction variable, and throwaway plugins at run time."""

import ast
import json
import os
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from gateway import normalize
from gateway.plugins import get_provider, get_providers, pm
from gateway.provider import Capabilities, DemoSettings, Provider
from gateway.server.run import demo_config
from gateway.states import CanonicalStatus, State
from support.plugins import registered

ROOT = Path(__file__).resolve().parents[1]
BUILTIN = {"datafold", "camb", "segment_qa", "doc_translator"}
#: every provider entry point of this environment: the built-ins, and any third-party plugin installed beside
#: them (`make test` installs the example plugin), which the suite must tolerate
INSTALLED = {ep.name for ep in entry_points(group="gateway.providers")}


class EchoProvider(Provider):
    name = "echo_test"
    display_name = "Echo (test)"
    capabilities = Capabilities(input_kinds=["native"])
    mapping = {"ok": State.SUCCEEDED}

    def normalize(self, body):
        status = body.get("status") if isinstance(body, dict) else None
        state = self.mapping.get(status, State.UNKNOWN) if isinstance(status, str) else State.UNKNOWN
        return CanonicalStatus(state=state, vendor_status=status if isinstance(status, str) else None)


@pytest.fixture
def echo_plugin():
    with registered(EchoProvider(), name="echo-test") as plugin:
        yield plugin


def test_throwaway_plugin_registers_and_unregisters(echo_plugin):
    assert "echo_test" in get_providers()
    assert normalize("echo_test", {"status": "ok"}).state is State.SUCCEEDED
    pm.unregister(name="echo-test")
    assert "echo_test" not in get_providers()
    pm.register(echo_plugin, name="echo-test")  # the fixture unregisters it again


def test_unknown_provider_name_raises_lookup_error():
    with pytest.raises(LookupError, match="no provider named 'nope'"):
        normalize("nope", {"status": "x"})
    with pytest.raises(LookupError):
        get_provider("nope")


def test_a_provider_that_raises_still_gives_unknown(echo_plugin, monkeypatch):
    monkeypatch.setattr(EchoProvider, "normalize", lambda self, body: 1 / 0)
    assert normalize("echo_test", {"status": "ok"}).state is State.UNKNOWN


def test_registering_something_that_is_not_a_provider_is_refused():
    with registered(object(), name="bad-test"), pytest.raises(TypeError, match=r"not a gateway\.provider\.Provider"):
        get_providers()


def test_duplicate_provider_names_are_refused(echo_plugin):
    with (
        registered(EchoProvider(), name="twin-test"),
        pytest.raises(ValueError, match="two plugins register a provider named 'echo_test'"),
    ):
        get_providers()


def test_builtin_providers_are_declared_as_entry_points():
    eps = {ep.name: ep.value for ep in entry_points(group="gateway.providers")}
    assert BUILTIN <= set(eps)
    for name in BUILTIN:
        assert eps[name] == f"providers.{name}.plugin"
    assert BUILTIN <= set(get_providers())


def test_core_never_imports_the_builtin_providers_by_name():
    for path in (ROOT / "gateway").rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            assert not any(n == "providers" or n.startswith("providers.") for n in names), path


def _providers_json(env_extra, extra_path=None):
    env = {k: v for k, v in os.environ.items() if k != "GATEWAY_LOAD_PLUGINS"}
    env.update(env_extra)
    if extra_path:
        env["PYTHONPATH"] = os.pathsep.join([str(extra_path), env.get("PYTHONPATH", "")])
    out = subprocess.run(
        [sys.executable, "-m", "gateway", "providers", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        cwd=ROOT,
    )
    return {p["name"] for p in json.loads(out.stdout)["providers"]}


def test_load_restriction_variable_loads_only_named_entry_points():
    assert _providers_json({"GATEWAY_LOAD_PLUGINS": "camb,doc_translator"}) == {"camb", "doc_translator"}
    assert _providers_json({"GATEWAY_LOAD_PLUGINS": ""}) == set()
    assert _providers_json({}) == INSTALLED >= BUILTIN


def test_a_third_party_package_is_discovered_through_the_entry_point_group(tmp_path):
    """An installed distribution (a dist-info with entry_points.txt) adds a provider with no core change."""
    (tmp_path / "acme_gateway_plugin.py").write_text(
        textwrap.dedent("""
        from gateway.hookspecs import hookimpl
        from gateway.provider import Provider
        from gateway.states import CanonicalStatus, State

        class AcmeProvider(Provider):
            name = "acme"
            display_name = "Acme"
            mapping = {"DONE": State.SUCCEEDED}

            def normalize(self, body):
                return CanonicalStatus(state=State.UNKNOWN)

        @hookimpl
        def register_providers(register):
            register(AcmeProvider())
    """)
    )
    dist = tmp_path / "acme_gateway_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-gateway-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[gateway.providers]\nacme = acme_gateway_plugin\n")
    assert _providers_json({}, extra_path=tmp_path) == INSTALLED | {"acme"}
    assert _providers_json({"GATEWAY_LOAD_PLUGINS": "acme,camb"}, extra_path=tmp_path) == {"acme", "camb"}


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def test_core_code_names_no_builtin_provider_or_vendor_setting():
    """Vendor knowledge lives in the providers: no string in the core's code (docstrings aside) names one."""
    banned = (*BUILTIN, "project_id")
    for path in (ROOT / "gateway").rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        docs = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
                assert not any(name in node.value for name in banned), (path, node.lineno, node.value)


def test_the_demo_config_comes_from_each_providers_demo_settings(echo_plugin, monkeypatch):
    monkeypatch.setattr(EchoProvider, "sim_prefix", "/echo", raising=False)
    settings = DemoSettings(config={"timeout_s": 3}, routes={"text": 15, "echo": 1})
    monkeypatch.setattr(EchoProvider, "demo_settings", lambda self: settings)
    config = demo_config("http://127.0.0.1:9")
    assert config["providers"]["echo_test"]["base_url"] == "http://127.0.0.1:9/echo"
    assert config["providers"]["echo_test"]["timeout_s"] == 3
    assert config["providers"]["echo_test"]["api_key_env"] == "GATEWAY_DEMO_VENDOR_KEY"
    assert config["providers"]["datafold"]["project_id"] == 1  # Datafold's own demo_settings
    assert config["routes"]["text"]["providers"] == ["segment_qa", "echo_test", "camb"]  # by each one's place
    assert config["routes"]["echo"]["providers"] == ["echo_test"]
    monkeypatch.setattr(EchoProvider, "demo_settings", lambda self: None)
    assert "echo_test" not in demo_config("http://127.0.0.1:9")["providers"]
