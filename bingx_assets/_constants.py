"""Defaults and the fixed facts of BingX's API that the client is built on."""

from __future__ import annotations

import httpx

DEFAULT_BASE_URL = "https://open-api.bingx.com"
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
# httpx's own default; a pool sizes its connections to its concurrency instead.
DEFAULT_HTTP_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)
DEFAULT_MAX_RETRIES = 3
# BingX's own default; some pages cap recvWindow at 5000 ms, others at 60000 ms.
DEFAULT_RECV_WINDOW_MS = 5000
MAX_RECV_WINDOW_MS = 60_000

API_KEY_ENV = "BINGX_API_KEY"
BASE_URL_ENV = "BINGX_BASE_URL"
SECRET_KEY_ENV = "BINGX_SECRET_KEY"  # noqa: S105 - the variable's name, not a secret
API_KEY_HEADER = "X-BX-APIKEY"
# Documented by BingX with no format; read only when they hold plain numbers.
RATE_REMAIN_HEADER = "X-RateLimit-Requests-Remain"
RATE_EXPIRE_HEADER = "X-RateLimit-Requests-Expire"

ASSET_OVERVIEW_PATH = "/openApi/account/v1/allAccountBalance"
UID_PATH = "/openApi/account/v1/uid"
SERVER_TIME_PATH = "/openApi/swap/v2/server/time"

USER_AGENT = "bingx-assets"

# A UID's disabled period longer than this raises RateLimitError instead of waiting.
DEFAULT_MAX_WAIT = 60.0
# BingX's web firewall (HTTP 403) and IP bans (418) usually last five minutes.
FIREWALL_BAN_SECONDS = 300.0
# The longest pause any answer is believed: a Retry-After or unblock time beyond a day is
# garbled (or hostile), and honouring it would stall a UID or IP for good.
LONGEST_SERVER_PAUSE_SECONDS = 86_400.0
# Wake this long after a gate opens, so the first request lands after it on the server.
GATE_SLACK_SECONDS = 0.01
# Keys read at once by a pool; the limiter, not this, decides how fast.
DEFAULT_CONCURRENCY = 32
