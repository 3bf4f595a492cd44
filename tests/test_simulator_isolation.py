"""The in-process simulator never reads or writes the user's cache, state or store, and
BINGX_BASE_URL aims a client like the credentials do (the explicit option wins)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from bingx_assets import AssetsClient, AssetsPool, ConfigurationError, Credentials, RateLimiter
from bingx_assets._cli._main import _simulated_keys
from bingx_assets._limiter import MemoryBackend
from bingx_assets._uid_cache import default_uid_cache_path
from bingx_assets.testing import BingXSimulator, SimulatorServer

from .conftest import run_cli


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HOME and every XDG directory in one temporary directory, empty to start."""
    root = tmp_path / "home"
    root.mkdir()
    monkeypatch.setenv("HOME", str(root))
    for name in ("XDG_CACHE_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.setenv(name, str(root / name.lower()))
    return root


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


async def test_a_client_on_the_simulators_http_client_keeps_nothing_on_disk(home: Path) -> None:
    sim = BingXSimulator()
    key = sim.add_key(uid=4242, balances={"sopt": "1"})
    async with (
        sim.http_client() as http,
        AssetsClient(key.api_key, key.secret_key, http_client=http) as client,
    ):
        assert await client.uid() == "4242"  # looked up, and remembered nowhere
        assert (await client.asset_overview())["spot"] == 1
        assert client.limiter is not RateLimiter.default()
        assert isinstance(client.limiter.backend, MemoryBackend)
        assert client.options.uid_cache is False
    assert files_under(home) == []


async def test_a_pool_aimed_at_a_simulator_server_in_this_process_keeps_nothing(
    home: Path,
) -> None:
    sim = BingXSimulator()
    keys = [sim.add_key(uid=7000 + n % 2) for n in range(3)]
    credentials = [Credentials(k.api_key, k.secret_key, f"k{n}") for n, k in enumerate(keys)]
    async with SimulatorServer(sim) as server:
        async with AssetsPool(credentials, base_url=server.url) as pool:
            results = await pool.gather()
        assert all(r.ok for r in results)
        assert isinstance(pool.limiter.backend, MemoryBackend)
    assert files_under(home) == []
    # Once the server is gone, its address is an ordinary one again.
    assert AssetsClient("a" * 64, "b" * 64, base_url=server.url).options.uid_cache is True


async def test_an_unmarked_transport_does_write_the_uid_cache(home: Path) -> None:
    """The control: the same lookup through a transport the simulator did not make."""
    sim = BingXSimulator()
    key = sim.add_key(uid=4243)
    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(sim.handle)) as http,
        AssetsClient(key.api_key, key.secret_key, http_client=http) as client,
    ):
        assert await client.uid() == "4243"
    assert default_uid_cache_path().is_file()
    assert default_uid_cache_path().is_relative_to(home)


async def test_each_server_has_a_uid_cache_of_its_own(home: Path) -> None:
    """Found in the #20 re-review: a simulator served by another process (which this
    one cannot recognise) wrote its keys' UIDs into BingX's cache, and a later simulator
    drawing the same keys over other UIDs was scheduled by them: refused, disabled."""
    sim = BingXSimulator()
    key = sim.add_key(uid=4245)
    elsewhere = "http://127.0.0.1:8765"
    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(sim.handle)) as http,
        AssetsClient(key.api_key, key.secret_key, http_client=http, base_url=elsewhere) as c,
    ):
        assert await c.uid() == "4245"
    theirs = default_uid_cache_path(elsewhere)
    assert theirs.is_file() and theirs.name.startswith("uids-")
    assert theirs.parent == default_uid_cache_path().parent
    assert not default_uid_cache_path().exists()  # BingX's own never heard of the key
    assert default_uid_cache_path().name == "uids.sqlite3"  # as before caches were per server


async def test_an_explicit_uid_cache_file_is_still_used_with_the_simulator(
    home: Path, tmp_path: Path
) -> None:
    sim = BingXSimulator()
    key = sim.add_key(uid=4244)
    cache = tmp_path / "mine.sqlite3"
    async with (
        sim.http_client() as http,
        AssetsClient(key.api_key, key.secret_key, http_client=http, uid_cache=cache) as client,
    ):
        await client.uid()
    assert cache.is_file() and files_under(home) == []


def test_balances_simulate_keeps_nothing_on_disk(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(capsys, "balances", "--simulate", "--simulated-keys", "2")
    assert code == 0 and "sim-2" in out
    assert files_under(home) == []


def test_bingx_base_url_is_the_default_and_the_option_wins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BINGX_BASE_URL", "http://127.0.0.1:9/")
    assert AssetsClient("a" * 64, "b" * 64).base_url == "http://127.0.0.1:9"
    given = AssetsClient("a" * 64, "b" * 64, base_url="https://example.test")
    assert given.base_url == "https://example.test"
    monkeypatch.setenv("BINGX_BASE_URL", "")
    assert AssetsClient("a" * 64, "b" * 64).base_url == "https://open-api.bingx.com"


def test_a_bad_bingx_base_url_says_where_it_came_from(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINGX_BASE_URL", "ftp://example.test")
    with pytest.raises(ConfigurationError, match=r"https:// URL .*\(from BINGX_BASE_URL\)"):
        AssetsClient("a" * 64, "b" * 64)


def test_a_served_simulator_s_key_names_one_uid_in_every_run() -> None:
    """Found in the #20 re-review: `simulate` made the same keys whatever
    --simulated-uids said, and a client of a served simulator keeps its UID cache as
    against BingX. After a run of 2 keys over 2 UIDs, a run over 1 UID was scheduled by
    the cached UID 10001 ("BingX says it belongs to UID 10001") while the simulator
    counted the key in 10000: a watch was refused and both UIDs disabled for 300 s."""
    uid_of: dict[str, str | None] = {}
    for keys, uids in [(2, 1), (2, 2), (6, 2), (6, 3), (4, 4), (100, 7)]:
        for made in _simulated_keys(BingXSimulator(), keys, uids):
            assert uid_of.setdefault(made.api_key, made.uid) == made.uid
    # Other keys for each number of UIDs; more keys over as many UIDs extend the same list.
    assert len(uid_of) == 2 + 6 + 6 + 4 + 100
    again = [c.api_key for c in _simulated_keys(BingXSimulator(), 6, 2)]
    assert again == [c.api_key for c in _simulated_keys(BingXSimulator(), 6, 2)]
