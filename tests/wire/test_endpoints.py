"""endpoints.py: forward tokens, credentials from the environment, URLs."""

from __future__ import annotations

import base64
import json

import pytest

from lavabench.errors import ConfigError, CredentialsError
from lavabench.wire.endpoints import (
    EndpointSettings,
    build_forward_token,
    decode_forward_token,
    lava_metadata,
    resolve_endpoint,
)

KEY = "aks_live_" + "0123456789abcdef"


def test_forward_token_worked_example() -> None:
    # api-facts.md: base64('{"secret_key":"aks_live_..."}'), standard alphabet.
    token = build_forward_token("aks_live_abc")
    assert token == base64.b64encode(b'{"secret_key":"aks_live_abc"}').decode()
    assert token == "eyJzZWNyZXRfa2V5IjoiYWtzX2xpdmVfYWJjIn0="
    byok = build_forward_token("aks_live_abc", provider_key="fw_XYZ")
    assert json.loads(base64.b64decode(byok)) == {
        "secret_key": "aks_live_abc",
        "provider_key": "fw_XYZ",
    }
    assert decode_forward_token(byok) == {"secret_key": "aks_live_abc", "provider_key": "fw_XYZ"}
    assert decode_forward_token(KEY) is None


def test_lava_managed_uses_secret_key_and_forward_url() -> None:
    ep = resolve_endpoint(
        EndpointSettings(kind="lava", base_url="https://api.lava.so"), {"LAVA_SECRET_KEY": KEY}
    )
    assert ep.credential == KEY
    assert ep.url.startswith("https://api.lava.so/v1/forward?u=https%3A%2F%2Fapi.fireworks.ai")
    headers = ep.headers_for(run_id="r1", model="glm-5", dataset="demo")
    assert headers["authorization"] == f"Bearer {KEY}"
    assert json.loads(headers["x-lava-metadata"]) == {
        "dataset": "demo",
        "model": "glm-5",
        "run_id": "r1",
    }
    assert KEY not in repr(ep)


def test_lava_reads_the_variables_its_config_names() -> None:
    """`endpoint.secret_key_env` is the variable read (the name --cfg shows), not a label."""
    settings = EndpointSettings(kind="lava", base_url="https://g", secret_key_env="TEAM_LAVA_KEY")
    assert resolve_endpoint(settings, {"TEAM_LAVA_KEY": KEY}).credential == KEY
    with pytest.raises(CredentialsError, match="TEAM_LAVA_KEY"):
        resolve_endpoint(settings, {"LAVA_SECRET_KEY": KEY})


def test_lava_byok_wraps_provider_key_in_token() -> None:
    env = {"LAVA_SECRET_KEY": KEY, "FIREWORKS_API_KEY": "fw_provider_key_123456"}
    ep = resolve_endpoint(EndpointSettings(kind="lava", base_url="https://g", byok=True), env)
    assert decode_forward_token(ep.credential or "") == {
        "secret_key": KEY,
        "provider_key": "fw_provider_key_123456",
    }


def test_lava_forward_token_env_is_used_as_is() -> None:
    token = build_forward_token(KEY, customer_id="cus_1", meter_slug="m")
    ep = resolve_endpoint(
        EndpointSettings(kind="lava", base_url="https://g"), {"LAVA_FORWARD_TOKEN": token}
    )
    assert ep.credential == token


@pytest.mark.parametrize(
    ("settings", "env", "names"),
    [
        (EndpointSettings(kind="lava", base_url="https://g"), {}, ["LAVA_SECRET_KEY", "LAVA_FORWARD_TOKEN"]),
        (EndpointSettings(kind="lava", base_url="https://g", byok=True), {"LAVA_SECRET_KEY": KEY}, ["FIREWORKS_API_KEY"]),
        (EndpointSettings(kind="lava", base_url="https://g", byok=True),
         {"LAVA_FORWARD_TOKEN": build_forward_token(KEY)}, ["provider_key"]),
        (EndpointSettings(kind="direct", route="openai", base_url="https://d", api_key_env="MY_KEY"), {}, ["MY_KEY"]),
    ],
)  # fmt: skip
def test_missing_credentials_name_the_variables(settings, env, names) -> None:
    with pytest.raises(CredentialsError) as err:
        resolve_endpoint(settings, env)
    for name in names:
        assert name in str(err.value)
    assert "Nothing was sent" in str(err.value) or "provider_key" in str(err.value)


def test_direct_route_and_optional_key() -> None:
    settings = EndpointSettings(
        kind="direct", route="openai", base_url="http://127.0.0.1:1/inference/v1"
    )
    ep = resolve_endpoint(settings, {})
    assert ep.url == "http://127.0.0.1:1/inference/v1/chat/completions"
    assert "authorization" not in ep.base_headers()


def test_sim_gets_a_throwaway_well_formed_key_and_needs_a_base_url() -> None:
    ep = resolve_endpoint(
        EndpointSettings(kind="sim"), {"LAVA_SECRET_KEY": KEY}, base_url="http://127.0.0.1:5"
    )
    assert ep.credential and ep.credential.startswith("aks_test_sim") and ep.credential != KEY
    with pytest.raises(ConfigError, match=r"endpoint.base_url"):
        resolve_endpoint(EndpointSettings(kind="lava", base_url=None), {"LAVA_SECRET_KEY": KEY})


def test_bad_kind_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"endpoint.kind"):
        EndpointSettings(kind="openrouter")


def test_metadata_values_are_capped_and_keys_plain() -> None:
    meta = json.loads(lava_metadata(run_id="x" * 300, model="m"))
    assert len(meta["run_id"]) == 255 and set(meta) == {"run_id", "model"}
