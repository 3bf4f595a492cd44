"""ClientOptions: every option checked once, in one place, for the client and the pool alike."""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bingx_assets import (
    AssetsClient,
    AssetsPool,
    ClientOptions,
    ConfigurationError,
    Credentials,
    RateLimits,
)
from bingx_assets._constants import (
    DEFAULT_BASE_URL,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_WAIT,
    DEFAULT_RECV_WINDOW_MS,
    DEFAULT_TIMEOUT,
)
from bingx_assets._options import ClientOptionArgs
from bingx_assets.testing import BingXSimulator

KEY, SECRET = "k" * 64, "s" * 64

# Every way to build something that takes the options; each must check them the same way.
BUILDERS: dict[str, Callable[..., object]] = {
    "ClientOptions": lambda **o: ClientOptions(**o),
    "AssetsClient": lambda **o: AssetsClient(KEY, SECRET, **o),
    "AssetsPool": lambda **o: AssetsPool([Credentials(KEY, SECRET)], **o),
}

NAN, INF = math.nan, math.inf
BAD_VALUES: dict[str, list[object]] = {
    "base_url": [
        None,
        b"https://x.example",
        42,
        "",
        "open-api.bingx.com",
        "ftp://x.example",
        "https://",
        "https://x.example/?x=1",
        "https://x.example/?",
        "https://x.example/#f",
        "https://x.example#",
        "https://u:p@x.example",
        "https://u@x.example",
        "https://x.example/a/../b",
        "https://x.example/./",
        "https://x.example/%2e%2e/",
        "https://x.example/a b",
        "https://x.example/a;b",
        "https://x.example//",
        "http://10.0.0.5",
        "https://x.example:99999",
    ],
    "timeout": [
        True,
        False,
        0,
        -1,
        NAN,
        INF,
        "5",
        None,
        [5],
        10**400,
        httpx.Timeout(5.0, connect=NAN),
        httpx.Timeout(5.0, pool=10**400),
        httpx.Timeout(5.0, read=-1),
        httpx.Timeout(5.0, write=True),  # type: ignore[arg-type]
        httpx.Timeout(None),  # httpx's "no limit": a call could hang for ever
        httpx.Timeout(5.0, connect=None),
        httpx.Timeout(5.0, pool=None),
    ],
    "max_retries": [True, False, -1, 1.0, 2.5, NAN, INF, "3", None],
    "max_wait": [True, False, -1, -0.5, NAN, INF, 10**400, "60", None, [60]],
    "recv_window": [True, False, 0, -1, 60_001, 5000.0, NAN, INF, "5000", None],
    "allow_insecure_http": [1, 0, "yes", "False", None],
    "verify_uids": [1, 0, "yes", "False", None],
    "uid_cache": [None, 0, 1, 2.5, "", b"/tmp/uids.json", "a\0b", ".", [], Path("/")],
}


def test_every_option_has_bad_values_in_the_table() -> None:
    assert set(BAD_VALUES) == {f.name for f in dataclasses.fields(ClientOptions)}


@pytest.mark.parametrize("builder", BUILDERS)
@pytest.mark.parametrize(
    ("option", "value"),
    [(option, value) for option, values in BAD_VALUES.items() for value in values],
    ids=lambda v: repr(v)[:30],
)
def test_bad_values_raise_configuration_error_naming_the_option(
    builder: str, option: str, value: object
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        BUILDERS[builder](**{option: value})
    assert option in str(caught.value)


ANYTHING = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**300, max_value=10**400),
    st.floats(),
    st.text(max_size=30),
    st.binary(max_size=10),
    st.decimals(allow_nan=True),
    st.lists(st.integers(), max_size=2),
    st.builds(httpx.Timeout, st.floats() | st.none()),
    st.sampled_from(["https://x.example", "https://x.example/p", "http://127.0.0.1:1"]),
)


@given(option=st.sampled_from(sorted(BAD_VALUES)), value=ANYTHING)
def test_any_value_is_taken_with_its_own_type_or_refused_by_name(option: str, value: Any) -> None:
    try:
        options = ClientOptions(**{option: value})
    except ConfigurationError as exc:
        refusal = str(exc)
    else:
        refusal = ""
    if refusal:
        assert option in refusal
        return
    kept = getattr(options, option)
    expected = {
        "base_url": str,
        "timeout": httpx.Timeout,
        "max_retries": int,
        "max_wait": float,
        "recv_window": int,
        "allow_insecure_http": bool,
        "verify_uids": bool,
        "uid_cache": bool if isinstance(value, bool) else type(Path()),
    }[option]
    assert type(kept) is expected


def test_defaults_come_from_the_constants() -> None:
    options = ClientOptions()
    assert options.base_url == DEFAULT_BASE_URL
    assert options.timeout == DEFAULT_TIMEOUT
    assert options.max_retries == DEFAULT_MAX_RETRIES
    assert options.max_wait == DEFAULT_MAX_WAIT
    assert options.recv_window == DEFAULT_RECV_WINDOW_MS
    assert options.allow_insecure_http is False
    assert options.verify_uids is True
    assert options.uid_cache is True


def test_a_uid_cache_path_is_kept_as_a_path(tmp_path: Path) -> None:
    assert ClientOptions(uid_cache=str(tmp_path / "u.json")).uid_cache == tmp_path / "u.json"
    assert ClientOptions(uid_cache=tmp_path / "u.json").uid_cache == tmp_path / "u.json"
    assert ClientOptions(uid_cache=False).uid_cache is False
    with pytest.raises(ConfigurationError, match="uid_cache must name a file, not the directory"):
        ClientOptions(uid_cache=tmp_path)


def test_good_values_are_normalised() -> None:
    options = ClientOptions(timeout=5, max_wait=30, base_url="https://proxy.example/bingx/")
    assert options.timeout == httpx.Timeout(5.0)
    assert options.max_wait == 30.0 and type(options.max_wait) is float
    assert options.base_url == "https://proxy.example/bingx"
    kept = httpx.Timeout(10.0, connect=3.0)
    assert ClientOptions(timeout=kept).timeout is kept


def test_the_keywords_and_the_fields_list_the_same_options_with_the_same_types() -> None:
    # Adding an option means a field and its keyword; forgetting either fails here.
    fields = typing.get_type_hints(ClientOptions)
    keywords = typing.get_type_hints(ClientOptionArgs)
    assert fields == keywords


def test_plain_keywords_reach_the_client() -> None:
    client = AssetsClient(KEY, SECRET, timeout=5, max_retries=2, max_wait=1, recv_window=9000)
    assert client.options == ClientOptions(timeout=5, max_retries=2, max_wait=1, recv_window=9000)
    assert (client.timeout, client.max_retries, client.max_wait, client.recv_window) == (
        httpx.Timeout(5.0),
        2,
        1.0,
        9000,
    )


def test_keywords_given_with_options_override_them() -> None:
    shared = ClientOptions(max_retries=5, max_wait=10)
    assert AssetsClient(KEY, SECRET, options=shared).options is shared
    client = AssetsClient(KEY, SECRET, options=shared, max_wait=2)
    assert (client.options.max_retries, client.options.max_wait) == (5, 2.0)
    with pytest.raises(ConfigurationError, match="max_wait"):
        AssetsClient(KEY, SECRET, options=shared, max_wait=True)


def test_options_must_be_client_options() -> None:
    with pytest.raises(ConfigurationError, match="options must be a ClientOptions"):
        AssetsClient(KEY, SECRET, options={"max_wait": 1})  # type: ignore[arg-type]


@pytest.mark.parametrize("builder", ["AssetsClient", "AssetsPool"])
def test_a_misspelt_option_is_a_configuration_error_with_a_hint(builder: str) -> None:
    with pytest.raises(ConfigurationError, match="unknown option 'max_retry'; did you mean max_"):
        BUILDERS[builder](max_retry=2)
    with pytest.raises(ConfigurationError, match="options are base_url, timeout"):
        BUILDERS[builder](colour="blue")


def test_the_pool_hands_its_one_validated_options_to_every_client() -> None:
    creds = [Credentials(f"{n}" * 16, SECRET, uid=n) for n in range(1, 4)]
    pool = AssetsPool(creds, concurrency=8, base_url="https://proxy.example", max_wait=5)
    assert pool.options == ClientOptions(base_url="https://proxy.example", max_wait=5)
    assert all(client.options is pool.options for client in pool._clients)


@pytest.mark.parametrize("limiter", ["x", 5, object(), RateLimits()])
def test_a_limiter_that_is_not_a_rate_limiter_is_a_configuration_error(limiter: Any) -> None:
    with pytest.raises(ConfigurationError, match="limiter must be a RateLimiter"):
        AssetsClient(KEY, SECRET, uid=1, limiter=limiter)
    with pytest.raises(ConfigurationError, match="limiter must be a RateLimiter"):
        AssetsPool([Credentials(KEY, SECRET, "k", 1)], limiter=limiter)


@pytest.mark.parametrize("concurrency", [True, False, 0, -1, 2.0, NAN, "8", None])
def test_concurrency_is_a_whole_number_of_at_least_one(concurrency: object) -> None:
    with pytest.raises(ConfigurationError, match="concurrency"):
        AssetsPool([Credentials(KEY, SECRET)], concurrency=concurrency)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "url",
    [
        "https://x.example/?x=1",
        "https://x.example/#f",
        "https://u:p@x.example",
        "https://x.example/.",
    ],
)
async def test_a_bad_base_url_is_refused_before_anything_is_sent(
    sim: BingXSimulator, url: str
) -> None:
    key = sim.add_key(uid=1)
    async with sim.http_client() as http:
        with pytest.raises(ConfigurationError, match="base_url"):
            AssetsClient(key.api_key, key.secret_key, base_url=url, http_client=http)
        with pytest.raises(ConfigurationError, match="base_url"):
            AssetsPool([Credentials(key.api_key, key.secret_key)], base_url=url, http_client=http)
    assert sim.requests == []


def test_a_proxy_path_prefix_is_kept() -> None:
    client = AssetsClient(KEY, SECRET, base_url="https://proxy.example/bingx-api/v_1/")
    assert client.base_url == "https://proxy.example/bingx-api/v_1"


def test_the_options_appear_in_the_signature_users_see() -> None:
    # IDEs and mypy read **option_args through this TypedDict: it must name every option.
    # aiohttp is named only for type checkers (never imported unless a session is given).
    import aiohttp

    for constructor in (AssetsClient.__init__, AssetsPool.__init__):
        hints = typing.get_type_hints(
            constructor, localns={"aiohttp": aiohttp}, include_extras=True
        )
        assert typing.get_args(hints["option_args"])[0] is ClientOptionArgs


def test_client_options_hash_and_compare_by_value() -> None:
    a, b = ClientOptions(timeout=5), ClientOptions(timeout=httpx.Timeout(5.0))
    assert a == b and hash(a) == hash(b)
    assert ClientOptions(max_wait=1) != ClientOptions(max_wait=2)
