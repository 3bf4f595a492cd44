"""mutmut's results as benchmarks/results/mutation.json and the table of
docs/reliability.md's "Mutation testing": run by `nox -s mutation` after mutmut.

Results come from mutants/**/*.meta, or from the saved output of `mutmut run` given as
arguments, later ones overriding earlier (a run over survivors only leaves the meta
files holding just those). Survivors explained as equivalent are named in `EQUIVALENT`,
one line each, and so are mutants no selected test reaches when none can; any other is
listed as "to kill". A module with no results in this run keeps its entry from the
mutation.json already there, with the commit it was run on: the table says which.
"""

# ruff: noqa: E501 - one line per equivalent mutant reads better than wrapped strings

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from render_tables import main as render_tables  # type: ignore[import-not-found]

STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests"}
TIMEOUTS = {36, 24, -24, 152, 255}
EMOJI = {"🎉": "killed", "⏰": "killed", "🙁": "survived", "🫥": "no tests"}
# Keys name mutmut's numbers, which move when a function changes: check each with
# `mutmut show` when its module is run again after a change.
EQUIVALENT = {
    "_memory.xǁ_Windowǁwait__mutmut_19": "compacting whenever 17 ends have passed (`or`): only ended ends before `_head` are deleted, so the live list is the same",
    "_memory.xǁ_Windowǁwait__mutmut_20": "compacting from 16 ended ends, not 17: only ended ends are deleted, the live list is the same",
    "_memory.xǁ_Windowǁwait__mutmut_21": "compacting from 18 ended ends, not 17: only ended ends are deleted, the live list is the same",
    "_memory.xǁ_Windowǁwait__mutmut_22": "compacting almost never (`head / 2`): ended ends kept longer before `_head`, the live list is the same",
    "_memory.xǁ_Windowǁwait__mutmut_23": "compacting at a third ended, not a half: only ended ends are deleted, the live list is the same",
    "_memory.xǁ_Windowǁwait__mutmut_24": "compacting at exactly half ended too: only ended ends are deleted, the live list is the same",
    "_memory.xǁ_Windowǁtake__mutmut_7": "`<` for `<=`: an equal end is insorted after its equals, where append puts it",
    "_memory.xǁ_Windowǁtake__mutmut_14": "insort from 0, not `_head`: a new end is after now, after every end before `_head`",
    "_memory.xǁMemoryBackendǁtry_acquire__mutmut_18": 'the blocking window\'s name starting "XXXX": read only once a window is full, which sets it',
    "_memory.xǁMemoryBackendǁtry_acquire__mutmut_19": "the blocking limit starting at 1: read only once a window is full, which sets it",
    "_memory.xǁMemoryBackendǁtry_acquire__mutmut_62": "`_acquired += 2`: sweeps twice as often, and a sweep changes no answer",
    "_memory.xǁ_Windowǁ__init____mutmut_8": "`taken` starting at 1: only its differences are read",
    "_memory.xǁ_Windowǁalive__mutmut_7": "bisecting from 0, not `_head`: the ends before it are at most 1 ns past now, so the count differs only within the nanosecond `wait` forgives",
    "_memory.xǁ_Windowǁwait__mutmut_8": "`<` for `<=` after `now += 1e-9`: differs only at the float instant a slot frees",
    "_memory.xǁ_Windowǁwait__mutmut_14": "`<` for `<=` after `now += 1e-9`: differs only at the float instant a slot frees",
    "_memory.xǁ_Windowǁwait__mutmut_9": "`head = 1` for `head += 1`: the list is sorted, so the loop steps over the same ends again and stops at the same head",
    "_memory.xǁ_Windowǁawaits_answers__mutmut_6": "`at <= len`: only asked of a full window, where at most len - 1",
    "_memory.xǁ_Windowǁawaits_answers__mutmut_7": "`>=` for `>`: differs only at one float instant, 1 ns past the expiry",
    "_memory.xǁ_Windowǁidle__mutmut_7": "`<` for `<=`: a window is freed one float instant later",
    "_memory.xǁ_Windowǁ_find__mutmut_14": "bisecting from 0, not `_head`: an end found before `_head` has ended, and callers skip `at < _head` as they skip -1",
    "_memory.xǁ_Windowǁ_find__mutmut_21": "-2 for -1: both below `_head`, the only test callers make",
    "_memory.xǁ_Windowǁmove__mutmut_9": "the in-place shortcut taken less often: removal and insort give the same sorted list",
    "_memory.xǁ_Windowǁmove__mutmut_13": "the in-place shortcut taken less often (`<` for `<=`): removal and insort give the same sorted list",
    "_memory.xǁ_Windowǁmove__mutmut_18": "the in-place shortcut taken less often (`<` for `<=`): removal and insort give the same sorted list",
    "_memory.xǁ_Windowǁmove__mutmut_22": "`>=` for `>`: a slot whose horizon ends exactly now is kept one float instant",
    "_memory.xǁ_Windowǁmove__mutmut_28": "insort from 0, not `_head`: the new end is after now, after every end before `_head`",
    "_memory.xǁ_MemoryPermitǁ__init____mutmut_3": "`_settled = None`: as falsy as False, and only its truth is read",
    "_memory.xǁMemoryBackendǁ__init____mutmut_6": "`_acquired` starting at 1: the first sweep one acquire early; a sweep frees only idle windows, open gates and forgotten closures, which read as absent anyway",
    "_memory.xǁMemoryBackendǁ_sweep__mutmut_5": "`>=` for `>`: a gate opening exactly now is kept one sweep longer, and reads as open (`gate_left > 0`)",
    "_memory.xǁMemoryBackendǁ_sweep__mutmut_8": "`>=` for `>`: a closure forgotten exactly now is kept one sweep longer, and `closure` reads it as forgotten",
    "_memory.xǁMemoryBackendǁ_sweep__mutmut_10": "`_acquired` restarting at 1: the next sweep one acquire early (a sweep changes no answer)",
    "_memory.xǁMemoryBackendǁclose_gate__mutmut_11": '`float("-INF")` is `float("-inf")`',
    "_clock.xǁServerClockǁobserve__mutmut_8": "`max(1, ...)` before halving: 1 // 2 is 0",
    "_clock.xǁServerClockǁ__init____mutmut_9": "`vouched = None`: as falsy as False, and only its truth is read",
    "_clock.xǁServerClockǁforget__mutmut_6": "`vouched = None`: as falsy as False, and only its truth is read",
    "_clock.xǁServerClockǁ__init____mutmut_14": "`probe_hold = 1.0` at first: the first hold is max(2 * 1, 15) s, as from 0",
    "_clock.xǁServerClockǁobserve__mutmut_23": "`probe_hold = 1.0` once measured: the next hold is max(2 * 1, 15) s, as from 0",
    "_wire.x__decode__mutmut_3": "one-pass decoding skipped: the second pass gives the same",
    "_wire.x__decode__mutmut_97": "second pass without timestamp: only reached if one pass fails",
    "_wire.x__decode__mutmut_107": "no limit on the data error's reason: msgspec's and check_amount's reasons for these decoders are under 100 characters",
    "_wire.x__decode__mutmut_109": "no limit on the data error's reason: msgspec's and check_amount's reasons for these decoders are under 100 characters",
    "_wire.x_excerpt__mutmut_11": '`"UTF-8"` is `"utf-8"`',
    "_wire.xǁDataDecoderǁdecode__mutmut_2": "second pass without timestamp: only reached if one pass fails",
    "_wire.xǁDataDecoderǁdecode__mutmut_4": "second pass without timestamp: only reached if one pass fails",
    "_wire.xǁDataDecoderǁdecode_success__mutmut_6": "one pass misses code 0: the second pass gives the same",
    "_wire.xǁDataDecoderǁdecode_success__mutmut_7": 'one pass misses code "0": the second pass gives the same',
    "_rate_limiter.xǁRateLimiterǁacquire__mutmut_4": "`waited = retaken = None`: as falsy as False, and only their truth is read",
    "_rate_limiter.xǁRateLimiterǁacquire__mutmut_8": "`/ 4` for `// 4`: the milliseconds compared are whole, and a whole number is above n / 4 exactly when above n // 4",
    "_rate_limiter.xǁRateLimiterǁ_state__mutmut_1": "`loop = None`: the state is never renewed for a new loop, but every lock, waker and hold is dropped by its last user and asyncio.run cancels every task before its loop closes, so an ended loop left it empty",
    "_rate_limiter.xǁRateLimiterǁclose_gate__mutmut_25": "the default's reason is never read: its time is -inf",
    "_rate_limiter.xǁRateLimiterǁclosed_because__mutmut_6": "an unknown gate's default reason is empty either way",
    "_rate_limiter.xǁRateLimiterǁclosed_because__mutmut_7": "an unknown gate's default time is -inf: its reason is never returned",
    "_rate_limiter.xǁRateLimiterǁclosed_because__mutmut_10": "`>` for `>=`: differs only at one float instant, within 0.1 s of drift allowed",
    "_rate_limiter.xǁErrorBudgetFullǁ__init____mutmut_1": "internal exception's args: never shown, the client raises ErrorBudgetError from its attributes",
    "_rate_limiter.xǁRateLimiterǁscope__mutmut_1": "group 3 by default: every caller takes the default, so it is still one shared name",
    "_rate_limiter.xǁTicketǁsettle__mutmut_9": "`<=` limit: a remaining of 5 means a count of 0, which adds nothing",
    "_rate_limiter.xǁTicketǁforgive__mutmut_1": "`answered=None`: as falsy as False, and every backend reads only its truth",
    "_rate_limiter.xǁ_NamedLockǁ__init____mutmut_2": '`_queue = ""` at first: read only by `__aexit__`, after `__aenter__` set it',
    "_refusals.x_key_not_sent__mutmut_5": "`_BY_CODE.get(code, None)`: every code of NEVER_AS_IT_IS is in _BY_CODE",
    "_refusals.x_key_not_sent__mutmut_7": "`_BY_CODE.get(code)`: every code of NEVER_AS_IT_IS is in _BY_CODE",
    "_refusals.xǁKeyBackoffǁ__init____mutmut_2": '`code = ""` at first: read only while held, and `hold` sets it first',
    "_refusals.xǁKeyBackoffǁ__init____mutmut_3": "`refused_at_ms = None` at first: read only while held, and `hold` sets it first",
    "_refusals.xǁKeyBackoffǁ__init____mutmut_4": "`refused_at_ms = 1` at first: read only while held, and `hold` sets it first",
    "_refusals.xǁKeyBackoffǁ__init____mutmut_5": "`retry_at_ms = None` at first: read only while held, and `hold` sets it first",
    "_refusals.xǁKeyBackoffǁ__init____mutmut_6": "`retry_at_ms = 1` at first: read only while held, and `hold` sets it first",
    "_refusals.xǁKeyBackoffǁ__init____mutmut_11": '`float("INF")` is `float("inf")`',
    "_refusals.xǁKeyBackoffǁ__init____mutmut_13": "`_succeeded = None`: as falsy as False, and only its truth is read",
    "_refusals.xǁKeyBackoffǁhold__mutmut_27": "`_succeeded = None`: as falsy as False, and only its truth is read",
    "_refusals.xǁKeyBackoffǁsucceeded__mutmut_1": '`code = ""` on success: read only while held, and `hold` sets it first',
    "_refusals.xǁKeyBackoffǁsucceeded__mutmut_6": '`float("INF")` is `float("inf")`',
    "_backend.xǁLimiterBackendǁclose_gate__mutmut_1": "a Protocol's default, never run: each backend has its own (no test can reach it)",
    "_backend.xǁPermitǁsettle__mutmut_1": "a Protocol's default, never run: each backend has its own (no test can reach it)",
    "_backend.xǁRateǁ__post_init____mutmut_16": '`float("INF")` is `float("inf")`',
    "_host_store.xǁHostBackendǁ_fill__mutmut_1": "`< 0` for `<= 0`: filling 0 inserts no rows and counts 0 more",
    "_host_store.x__count__mutmut_3": "`taken` counted on giving back an error-budget slot: only the UID window's `taken` is ever read",
    "_host_store.xǁHostBackendǁsettle_permit__mutmut_30": "`taken` counted on giving back an error-budget slot: only the UID window's `taken` is ever read",
    "_host_store.xǁHostBackendǁsettle_permit__mutmut_34": "`taken` counted on giving back an error-budget slot: only the UID window's `taken` is ever read",
    "_host_store.xǁHostBackendǁsettle_permit__mutmut_39": "`taken` counted on giving back an error-budget slot: only the UID window's `taken` is ever read",
    "_host_store.xǁHostBackendǁsettle_permit__mutmut_37": "an error budget counted one too many on a success: a count only decides when to drop expired rows; fullness is read from the rows",
    "_host_store.xǁHostBackendǁtry_acquire__mutmut_59": "`>` for `>=`: a full window's expired rows dropped one request later; fullness is read from the rows",
    "_host_store.x__wait__mutmut_16": "`_wait` is called only on a full window: its limit-th latest row exists",
    "_host_store.x__wait__mutmut_18": "`_wait` is called only on a full window: its limit-th latest row exists",
    "_host_store.x__wait__mutmut_25": "`+ _EPSILON` for `- _EPSILON`: wakes 2 ns later, and the slot is dropped either way",
    "_host_store.x__awaits_answers__mutmut_14": "`>=` for `>`: differs only at the float instant a slot's answer is due",
    "_host_store.xǁHostBackendǁtry_acquire__mutmut_49": "the default's `taken` (index 0) is not what this line reads",
    "_host_store.xǁHostBackendǁtry_acquire__mutmut_150": "the default's `alive` (index 1) is not what this line reads",
    "_host_store.xǁHostBackendǁtry_acquire__mutmut_170": "a bet when in flight as long as its horizon: its anchor is its horizon, so settling it unanswered moves nothing",
    "_host_store.xǁHostBackendǁ_survive_a_reboot__mutmut_16": "the default for a store without a boot row: every version writes it with the offset, in one statement",
    "_host_store.xǁHostBackendǁ_survive_a_reboot__mutmut_18": "the default for a store without a boot row: every version writes it with the offset, in one statement",
    "_host_store.xǁHostBackendǁ_survive_a_reboot__mutmut_21": "the default for a store without a boot row: every version writes it with the offset, in one statement",
    "_host_store.x__boot_id__mutmut_4": "any constant boot id where there is none (not Linux): only its changing is read",
    "_host_store.xǁHostBackendǁ__init____mutmut_14": "the connection is read only once `_pid` is ours, which sets it",
    "_host_store.xǁHostBackendǁ__init____mutmut_15": "`_pid` is read only with a connection, which sets it",
    "_host_store.xǁHostBackendǁ__init____mutmut_16": "`_pid` is read only with a connection, which sets it",
    "_host_store.xǁHostBackendǁ__init____mutmut_17": "`_pid` is read only with a connection, which sets it",
    "_host_store.xǁHostBackendǁ__init____mutmut_21": "permits from 2: they only need to be distinct",
    "_host_store.xǁHostBackendǁ__init____mutmut_28": "30 random bits for the process instead of 31: permits are still distinct across processes (odds 2^-30 a pair)",
    "_host_store.xǁHostBackendǁ_connect__mutmut_25": "sqlite3's timeout: `PRAGMA busy_timeout = 0` right after sets it again",
    "_host_store.xǁHostBackendǁ_connect__mutmut_28": "sqlite3's timeout: `PRAGMA busy_timeout = 0` right after sets it again",
    "_host_store.xǁHostBackendǁ_connect__mutmut_26": "implicit transactions: every statement runs inside an explicit BEGIN IMMEDIATE, so sqlite3 never opens one",
    "_host_store.xǁHostBackendǁ_retry_while_locked__mutmut_9": "`>=` for `>` against a 5 s deadline: differs only at one float instant",
    **{
        f"_host_store.xǁHostBackendǁtry_acquire__mutmut_{n}": "`zip` strict dropped or false: the lists are always as long"
        for n in (95, 98, 99, 136, 139, 140)
    },
    **{
        f"_host_store.{name}": "SQL is case-blind: its keywords and SQLite's table and column names alike"
        for name in (
            "xǁHostBackendǁ_fill__mutmut_9",
            "xǁHostBackendǁ_fill__mutmut_10",
            "xǁHostBackendǁclose_gate__mutmut_30",
            "xǁHostBackendǁclose_gate__mutmut_31",
            "xǁHostBackendǁclose_gate__mutmut_37",
            "xǁHostBackendǁclose_gate__mutmut_38",
            "xǁHostBackendǁclosure__mutmut_10",
            "xǁHostBackendǁclosure__mutmut_11",
            "x__alive__mutmut_17",
            "x__alive__mutmut_18",
            "x__wait__mutmut_7",
            "x__wait__mutmut_8",
            "x__wait__mutmut_10",
            "x__wait__mutmut_11",
            "x__awaits_answers__mutmut_7",
            "x__awaits_answers__mutmut_8",
            "x__count__mutmut_12",
            "x__count__mutmut_13",
            "xǁHostBackendǁtry_acquire__mutmut_14",
            "xǁHostBackendǁtry_acquire__mutmut_125",
            "xǁHostBackendǁtry_acquire__mutmut_126",
            *(f"xǁHostBackendǁ_prepare__mutmut_{n}" for n in (3, 4, 15, 16, 20, 24, 27)),
            *(f"xǁHostBackendǁ_connect__mutmut_{n}" for n in (32, 33)),
            *(f"x__drop_expired__mutmut_{n}" for n in (6, 7)),
            *(f"xǁHostBackendǁ_transaction__mutmut_{n}" for n in (5, 10, 13)),
            *(
                f"xǁHostBackendǁ_survive_a_reboot__mutmut_{n}"
                for n in (
                    10,
                    11,
                    37,
                    38,
                    44,
                    45,
                    51,
                    52,
                    58,
                    59,
                    65,
                    66,
                    72,
                    73,
                    76,
                    77,
                    79,
                    80,
                    86,
                    87,
                )
            ),
        )
    },
    # _redis.py (branch mutredis2, on main's 8a1880e): the numbers are that run's.
    **{
        f"_redis.{name}": "the step of a call that sends nothing is never said: only a failure after sending names it"
        for name in (
            *(f"xǁRedisBackendǁtry_acquire__mutmut_{n}" for n in (28, 35, 36, 43, 50, 51)),
            *(f"xǁRedisBackendǁclosure__mutmut_{n}" for n in (8, 15, 16)),
            *(f"xǁRedisBackendǁgate_remaining__mutmut_{n}" for n in (5, 13, 14)),
        )
    },
    "_redis.xǁRedisBackendǁclosure__mutmut_7": "`args=None` for `[]`: redis-py sends `args or []`",
    "_redis.xǁRedisBackendǁgate_remaining__mutmut_4": "`args=None` for `[]`: redis-py sends `args or []`",
    "_redis.xǁRedisBackendǁclosure__mutmut_20": "`rpartition` for `partition`: a closure reads `seconds code`, one space, and a code of digits or nothing",
    "_redis.xǁRedisBackendǁtry_acquire__mutmut_115": "a bet when in flight as long as its horizon: its anchor is its horizon, so settling it unanswered moves nothing",
    "_redis.xǁ_RedisPermitǁsettle__mutmut_17": "`-2` for `-1` where no count was given: the script reads any count below 0 as none",
    "_redis.xǁ_RedisPermitǁsettle__mutmut_24": '`"XX0XX"` for `"0"`: the script gives the budget slot back only on `"1"`',
    **{
        f"_redis.xǁ_RedisPermitǁsettle__mutmut_{n}": "the text of a failed settle is never shown: `settle` catches it and logs its cause's type"
        for n in (45, 46, 52, 53)
    },
    **{
        f"_redis.xǁRedisBackendǁ_run_unsettled__mutmut_{n}": "the text of a failed flush is never shown: `aclose` suppresses it and the flush logs its cause's type"
        for n in (1, 2)
    },
    "_redis.xǁRedisBackendǁ_flush_if_unsettled__mutmut_2": "a flush started while one runs (`or`): each pops its own settles, none is sent twice, and one with none sends nothing",
    **{
        f"_redis.xǁRedisBackendǁ__init____mutmut_{n}": '`""` for None: the first deferral on a loop sets `_loop`, `_flush` and `_at_loop_end` before anything reads them, and `_record_what_is_left` reads `_flush` only with `_loop` the running loop'
        for n in (38, 39, 40)
    },
    "_redis.xǁRedisBackendǁ__init____mutmut_5": "`_owns_redis = None`: as falsy as False, and only its truth is read",
    "_redis.xǁRedisBackendǁ__init____mutmut_35": "40 random bits in a member instead of 32: members only need to be distinct",
    **{
        f"_redis.xǁRedisBackendǁfrom_url__mutmut_{n}": "no limit, or 201, on an unusable URL's reason: redis-py's and ours are under 200 characters (one with a user part gets our own words)"
        for n in (17, 19, 21)
    },
}
# _client.py's policy functions (mutclient's run; numbers of main at ad718ce).
EQUIVALENT |= {
    "_client.xǁAssetsClientǁ_after_refusal__mutmut_5": '`or` for `and`: `refusal_of` says "uid until its time" exactly when `unblock_at_ms` is set',
    "_client.xǁAssetsClientǁ_after_refusal__mutmut_82": "`retry_after or 1`: 1 s, like 0, is no more than a day",
    "_client.xǁAssetsClientǁ_after_refusal__mutmut_86": "`>=` for `>`: differs only when BingX's end is a day and the slack from now, to the millisecond",
    "_client.xǁAssetsClientǁ_after_refusal__mutmut_93": "`>=` for `>`: at equality it sets `unblock_at_ms` to the value it has",
    "_client.xǁAssetsClientǁ_after_refusal__mutmut_100": "`>=` for `>`: differs only when max_wait is the pause less its 10 ms slack, to the float",
    "_client.xǁAssetsClientǁ_after_refusal__mutmut_109": '`log.warning(text)` for `("%s", text)`: logging formats a message only when given arguments',
    "_client.xǁAssetsClientǁ_hold_disabled_uid__mutmut_21": "`>=` for `>`: at equality it closes the gate for the length it has",
    "_client.xǁAssetsClientǁ_seconds_until__mutmut_2": "1.0 for no unblock time: every RateLimitError `_retryable` sees has one, set by `_after_refusal` or `_not_sent`",
    "_client.xǁAssetsClientǁ_back_off__mutmut_7": "the key gate's reason: never read, a call it holds says why from its closure's code (`_key_not_sent`)",
    "_client.xǁAssetsClientǁ_back_off__mutmut_12": "the key gate's reason: never read, a call it holds says why from its closure's code (`_key_not_sent`)",
    "_client.xǁAssetsClientǁ_retryable__mutmut_8": "`<` for `<=`: differs only for a pause ending max_wait from now, to the float",
    "_client.xǁAssetsClientǁ_request__mutmut_26": "`RetryCallState(None, ...)`: its retry object is read only by its repr; the loop asks `self._retrying` itself",
    "_client.xǁAssetsClientǁ_request__mutmut_27": "the retry state's `args`: read by nothing, the loop calls no function through it",
    "_client.xǁAssetsClientǁ_request__mutmut_28": "the retry state's `kwargs`: read by nothing, the loop calls no function through it",
    "_client.xǁAssetsClientǁ_request__mutmut_34": "`type(None)` in the exception's triple: tenacity reads only the exception itself",
    **{
        f"_client.xǁAssetsClientǁ_attempt__mutmut_{n}": "the probe lock's name: a lock of this process's loop, and any other name is as much no other lock's"
        for n in (3, 4, 5)
    },
    "_client.x__wait_before_retry__mutmut_3": "`or True`: the retry loop sets the outcome before it asks for the wait",
}
LOG_FUNCTIONS = {
    "_rate_limiter.xǁTicketǁsettle__mutmut_": range(24, 33),
    "_rate_limiter.xǁRateLimiterǁ_wait_for__mutmut_": (13, 18),
    "_client.xǁAssetsClientǁ_after_refusal__mutmut_": (111,),
    "_client.xǁAssetsClientǁ_back_off__mutmut_": (29, 30, 31, 36),
    "_client.xǁAssetsClientǁ_hold_if_server_window_full__mutmut_": (11, 15),
    "_client.xǁAssetsClientǁ_hold_until_server_window_expires__mutmut_": (21, 56),
}
IMPORT_TIME = ("_wire.xǁDataDecoderǁ__init__",)
# Modules run over some of their functions only: the table names which, so that a row
# never reads as the whole module's score.
PARTS = {
    "bingx_assets/_client.py": "the retry and refusal policy: 17 functions, not `_exchange`",
}


def fate(module: str, name: str) -> str:
    for pattern, why in EQUIVALENT.items():
        if name.endswith(pattern):
            return f"equivalent: {why}"
    for prefix, numbers in LOG_FUNCTIONS.items():
        if any(name.endswith(f"{prefix}{n}") for n in numbers):
            return "log text only (what a debug or info line says)"
    if any(part in name for part in IMPORT_TIME):
        return "run at import, out of mutmut's reach: any change breaks every decode"
    return "to kill"


def results(root: Path, logs: list[Path]) -> dict[str, dict[str, str]]:
    """module path -> mutant -> killed / survived / no tests."""
    found: dict[str, dict[str, str]] = {}
    for meta in sorted((root / "mutants" / "bingx_assets").rglob("*.py.meta")):
        module = str(meta.relative_to(root / "mutants")).removesuffix(".meta")
        for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            if code is not None:
                status = "killed" if code in TIMEOUTS else STATUS.get(code, "suspicious")
                found.setdefault(module, {})[name] = status
    for log in logs:
        for line in log.read_text(errors="replace").splitlines():
            emoji, _, name = line.partition(" ")
            if emoji in EMOJI and name.startswith("bingx_assets."):
                dotted = name.split(".x", 1)[0]  # bingx_assets._limiter._memory
                module = dotted.replace(".", "/") + ".py"
                found.setdefault(module, {})[name] = EMOJI[emoji]
    return found


def main(root: Path, logs: list[Path]) -> int:
    out = root / "benchmarks" / "results" / "mutation.json"
    kept = json.loads(out.read_text())["modules"] if out.exists() else {}
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
    ).stdout.strip()
    fresh = {}
    for module, checked in sorted(results(root, logs).items()):
        killed = sum(1 for v in checked.values() if v == "killed")
        survivors = {k: fate(module, k) for k, v in checked.items() if v == "survived"}
        untested = {
            k: fate(module, k).replace("to kill", "to kill: no test reaches it")
            for k, v in checked.items()
            if v == "no tests"
        }
        fresh[module] = {
            "commit": commit,
            "checked": len(checked),
            "killed": killed,
            "survived": len(survivors),
            "no_tests": len(untested),
            "score": round(killed / len(checked), 3),
            "survivors": survivors,
            "no_tests_mutants": untested,
        }
        if module in PARTS:
            fresh[module]["part"] = PARTS[module]
    # The first runs (main at f463d33) did not record their commit.
    modules = {module: {"commit": "f463d33", **entry} for module, entry in kept.items()}
    modules = dict(sorted({**modules, **fresh}.items()))
    out.write_text(json.dumps({"tool": "mutmut 3", "modules": modules}, indent=2) + "\n")
    return render_tables([])  # docs/reliability.md's table, from the file just written


if __name__ == "__main__":
    sys.exit(main(Path(__file__).resolve().parent.parent, [Path(a) for a in sys.argv[1:]]))
