"""API credentials: one key pair with its label, from code, a TOML file or the environment."""

from __future__ import annotations

import logging
import os
import stat
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._constants import API_KEY_ENV, SECRET_KEY_ENV
from ._exceptions import ConfigurationError
from ._files import read_regular_file
from ._printable import printable

__all__ = ["Credentials", "check_credential", "check_uid", "check_unique", "mask"]

log = logging.getLogger("bingx_assets")

MAX_KEYS_FILE_BYTES = 10 << 20


def mask(api_key: str) -> str:
    """An API key as shown in reprs, logs and tables: its last four characters."""
    return f"…{api_key[-4:]}" if len(api_key) > 8 else "…"


def check_credential(value: Any, name: str, env: str) -> str:
    if value is None or value == "":
        raise ConfigurationError(f"no {name}: pass {name}= or set {env}")
    if not isinstance(value, str):
        raise ConfigurationError(f"{name} must be a str, not {type(value).__name__}")
    if len(value) > _MOST_CREDENTIAL_CHARS:  # it is sent in a header on every request
        raise ConfigurationError(
            f"{name} is {len(value)} characters long: BingX's are 64, a few hundred at most "
            f"are taken ({_MOST_CREDENTIAL_CHARS})"
        )
    if not value.isascii() or not value.isprintable() or any(c.isspace() for c in value):
        raise ConfigurationError(f"{name} has spaces or non-printable characters")
    return value


_MOST_CREDENTIAL_CHARS = 512


_UID_DIGITS = 19  # an int64: BingX's UIDs are far shorter


def check_uid(uid: Any) -> str | None:
    """A UID in its one spelling, the decimal string of a positive int: `3000001`,
    `"03000001"`, `" 3000001 "` and the same in full-width digits are all `"3000001"`.
    The limiter budgets by this string, so two spellings must never make two budgets."""
    if uid is None:
        return None
    if isinstance(uid, str) and uid.strip().isdecimal() and len(uid.strip()) <= _UID_DIGITS:
        number = int(uid.strip())  # int() reads any script's decimal digits
    elif isinstance(uid, int) and not isinstance(uid, bool):
        number = uid
    else:
        raise ConfigurationError(f"uid must be BingX's numeric UID, not {uid!r}")
    if not 0 < number < 10**_UID_DIGITS:
        raise ConfigurationError(
            f"uid must be a positive number of up to {_UID_DIGITS} digits, not {uid!r}"
        )
    return str(number)


@dataclass(frozen=True, init=False)
class Credentials:
    """One API key pair. `label` names it in results and metrics; without one, a pool
    names it by its position (`key-1`, `key-2`, ...), never by anything derived from
    the key. `uid`, when known, lets keys of one UID be scheduled together from the
    start; it is a claim, checked against BingX once per machine (see `AssetsClient.uid`)
    before any request counts on it. `uid` may be an int or a string of digits; it is
    kept as the decimal string of the number (`"03000001"` and `3000001` are `"3000001"`).
    """

    api_key: str
    secret_key: str = field(repr=False)
    label: str
    uid: str | None

    def __init__(
        self, api_key: str, secret_key: str, label: str = "", uid: int | str | None = None
    ) -> None:
        where = f" (key {label!r})" if label else ""
        try:
            check_credential(api_key, "api_key", API_KEY_ENV)
            check_credential(secret_key, "secret_key", SECRET_KEY_ENV)
            canonical_uid = check_uid(uid)
        except ConfigurationError as exc:
            raise ConfigurationError(f"{exc}{where}") from None
        if not isinstance(label, str):
            raise ConfigurationError(f"label must be a str, not {type(label).__name__}")
        object.__setattr__(self, "api_key", api_key)
        object.__setattr__(self, "secret_key", secret_key)
        object.__setattr__(self, "label", label)
        object.__setattr__(self, "uid", canonical_uid)

    def __repr__(self) -> str:
        key = mask(self.api_key)
        return f"Credentials(label={self.label!r}, api_key={key!r}, uid={self.uid!r})"

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> list[Credentials]:
        """Read a TOML file of keys:

        ```toml
        [[keys]]
        label = "main"        # optional: key-1, key-2, ... by position
        api_key = "..."
        secret_key = "..."
        uid = 16844999        # optional
        ```

        A file others can read is warned about: it holds secrets. Anything but a regular
        file (a FIFO, a device, a directory), or one larger than 10 MiB (a million keys
        take less), is a `ConfigurationError` at once, before it is read.
        """
        file = Path(path)
        try:
            text = read_regular_file(file, limit=MAX_KEYS_FILE_BYTES).decode("utf-8")
            document = tomllib.loads(text)
        except OSError as exc:
            shown = printable(str(file))  # a path is anyone's text too
            raise ConfigurationError(f"cannot read {shown}: {exc.strerror}") from None
        except ValueError as exc:  # TOMLDecodeError, UnicodeDecodeError, and tomllib's
            # int() of a number past Python's 4,300 digits
            raise ConfigurationError(f"{file} is not valid TOML: {exc}") from None
        except RecursionError:  # tomllib parses nested arrays and tables recursively
            raise ConfigurationError(f"{file} is not a keys file: nested too deeply") from None
        entries = document.get("keys")
        if not isinstance(entries, list) or not entries:
            raise ConfigurationError(f"{file}: expected one or more [[keys]] tables")
        _warn_if_readable_by_others(file)  # only once it holds keys: an empty file holds none
        return [cls._from_table(entry, file, n) for n, entry in enumerate(entries, 1)]

    @classmethod
    def _from_table(cls, entry: object, file: Path, n: int) -> Credentials:
        where = f"{file}, key #{n}"
        if not isinstance(entry, Mapping):
            raise ConfigurationError(f"{where}: expected a table with api_key and secret_key")
        unknown = set(entry) - {"label", "api_key", "secret_key", "uid"}
        if unknown:
            raise ConfigurationError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        label = entry.get("label", "")
        if not isinstance(label, str):
            raise ConfigurationError(f"{where}: label must be a string")
        missing = [name for name in ("api_key", "secret_key") if entry.get(name) in (None, "")]
        if missing:
            named = f" ({label!r})" if label else ""
            raise ConfigurationError(f"{where}{named} has no {' and no '.join(missing)}")
        label = label or f"key-{n}"
        try:
            return cls(entry.get("api_key"), entry.get("secret_key"), label, entry.get("uid"))  # type: ignore[arg-type]
        except ConfigurationError as exc:
            raise ConfigurationError(f"{where}: {exc}") from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> list[Credentials]:
        """`BINGX_API_KEY` / `BINGX_SECRET_KEY`, and any `BINGX_API_KEY_<LABEL>` /
        `BINGX_SECRET_KEY_<LABEL>` pairs (labelled `<label>` in lower case; the plain
        pair is labelled `default`)."""
        env = os.environ if environ is None else environ
        found = []
        for name in sorted(env):
            if name != API_KEY_ENV and not name.startswith(API_KEY_ENV + "_"):
                continue
            suffix = name[len(API_KEY_ENV) :]
            secret_name = SECRET_KEY_ENV + suffix
            if secret_name not in env:
                raise ConfigurationError(f"{name} is set but {secret_name} is not")
            label = suffix.lstrip("_").lower() or "default"
            found.append(cls(env[name], env[secret_name], label))
        if not found:
            raise ConfigurationError(f"no keys in the environment: set {API_KEY_ENV}")
        return found


def check_unique(credentials: Iterable[Credentials]) -> list[Credentials]:
    """The credentials as a list, each unlabelled one labelled by its position (`key-N`);
    the same key or label twice is an error."""
    keys: dict[str, str] = {}
    labels: set[str] = set()
    result = []
    for n, creds in enumerate(credentials, 1):
        if not isinstance(creds, Credentials):
            raise ConfigurationError(f"expected Credentials, not {type(creds).__name__}")
        if not creds.label:
            creds = Credentials(creds.api_key, creds.secret_key, f"key-{n}", creds.uid)
        if creds.api_key in keys:
            raise ConfigurationError(
                f"the same API key is listed twice: {keys[creds.api_key]!r} and {creds.label!r}"
            )
        if creds.label in labels:
            raise ConfigurationError(f"the label {creds.label!r} is used twice")
        keys[creds.api_key] = creds.label
        labels.add(creds.label)
        result.append(creds)
    if not result:
        raise ConfigurationError("no credentials given")
    return result


def _warn_if_readable_by_others(file: Path) -> None:
    try:
        mode = file.stat().st_mode
    except OSError:
        return
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        shown = printable(str(file))
        log.warning("%s holds secrets and others can read it: chmod 600 %s", shown, shown)
