"""Secrets and signatures never leave: not in logs at any level, reprs, errors, tracebacks
or CLI output. Plain http and unverified TLS are opt-in only."""

from __future__ import annotations

import logging
import re
import ssl
import traceback

import pytest

from bingx_assets import (
    AssetsClient,
    AssetsPool,
    BingXError,
    ConfigurationError,
    Credentials,
    RateLimiter,
)
from bingx_assets._cli import main
from bingx_assets.testing import BingXSimulator, Fault, LoopClock

SIGNATURE = re.compile(r"signature=([0-9a-f]{64})")


def signatures_sent(sim: BingXSimulator) -> set[str]:
    return {m.group(1) for r in sim.requests if (m := SIGNATURE.search(r.query))}


async def test_nothing_secret_anywhere_through_a_run_full_of_failures(
    caplog: pytest.LogCaptureFixture, clock: LoopClock
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, every level: httpx and httpcore too
    sim = BingXSimulator(clock=clock)
    keys = [sim.add_key(uid=1), sim.add_key(uid=2), sim.add_key(uid=3)]
    wrong = Credentials(keys[2].api_key, "W" * 64, "wrong-secret", "3")
    credentials = [
        Credentials(k.api_key, k.secret_key, f"k{n}", str(k.uid)) for n, k in enumerate(keys[:2])
    ]
    sim.inject(Fault.reset(), Fault.http(503), Fault.body(b"<html>x</html>"), Fault.rate_limited())
    texts: list[str] = []
    async with AssetsPool([*credentials, wrong], http_client=sim.http_client(),
                          limiter=RateLimiter(clock=clock), max_retries=1) as pool:  # fmt: skip
        results = await pool.gather()
        texts += [repr(pool), repr(results), *map(repr, pool.credentials)]
    for result in results:
        if result.error is not None:
            texts.append(str(result.error))
            texts.append("".join(traceback.format_exception(result.error)))
    texts.append(caplog.text)
    texts += [r.getMessage() for r in caplog.records]
    everything = "\n".join(texts)
    assert "signature=***" in caplog.text  # httpx did log request lines, redacted
    secrets = [k.secret_key for k in keys] + ["W" * 64]
    assert signatures_sent(sim)
    for secret in [*secrets, *signatures_sent(sim)]:
        assert secret not in everything
    assert all(k.api_key not in everything for k in keys)


async def test_reprs_of_clients_and_credentials(clock: LoopClock) -> None:
    sim = BingXSimulator(clock=clock)
    key = sim.add_key(uid=1)
    client = AssetsClient(key.api_key, key.secret_key, http_client=sim.http_client())
    shown = repr(client) + repr(Credentials(key.api_key, key.secret_key)) + repr(key)
    assert key.secret_key not in shown
    assert key.api_key not in repr(client)


def test_cli_output_never_shows_the_secret(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BINGX_API_KEY", "K" * 64)
    monkeypatch.setenv("BINGX_SECRET_KEY", "SECRETVALUE" * 4)
    monkeypatch.setenv("BINGX_API_KEY_SECOND", "bad key with spaces")
    monkeypatch.setenv("BINGX_SECRET_KEY_SECOND", "SECRETVALUE" * 4)
    code = main(["balances", "-v"])
    out, err = capsys.readouterr()
    assert code == 2
    assert "SECRETVALUE" not in out + err
    assert "Traceback" not in err


@pytest.mark.parametrize("url", ["http://open-api.bingx.com", "http://10.0.0.5:8080"])
def test_plain_http_off_loopback_is_refused_unless_allowed(url: str) -> None:
    with pytest.raises(ConfigurationError, match="in clear"):
        AssetsClient("k" * 64, "s" * 64, base_url=url)
    allowed = AssetsClient("k" * 64, "s" * 64, base_url=url, allow_insecure_http=True)
    assert allowed.base_url == url


async def test_tls_is_verified_by_default() -> None:
    async with AssetsClient("k" * 64, "s" * 64) as client:
        context: ssl.SSLContext = client._transport.session.connector._ssl  # type: ignore[attr-defined]
        assert context.verify_mode == ssl.CERT_REQUIRED
        assert context.check_hostname


def test_errors_raised_for_bad_secrets_do_not_echo_them() -> None:
    with pytest.raises(BingXError) as caught:
        AssetsClient("k" * 64, "secret\twith-tab")
    assert "secret\twith-tab" not in str(caught.value)
