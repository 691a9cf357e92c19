"""Organisation and pipeline configuration (TOML), validated with file:line:key error messages."""
from __future__ import annotations

import re
import tomllib
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Iterator
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connectors.accounts import Account
from features.facts import refresh_facts

PLATFORMS = {"twitter", "reddit", "mastodon", "bluesky", "facebook"}
PLATFORM_ALIASES = {"x": "twitter"}
ROLES = {"support", "marketing", "news", "careers", "product", "regional", "corporate",
         "community", "investor", "brand", "other"}
ROLE_ALIASES = {"pr": "news", "hr": "careers", "customer_service": "support", "care": "support"}
# The one default of the estimation window (days of activity the stages are read from); `[settings]
# window_days` or a command's --window overrides it, and it is passed down from there.
DEFAULT_WINDOW_DAYS = 90

SOURCE_KINDS = {"twcs", "synthetic", "sp500", "facebook_pages", "x", "reddit", "mastodon", "bluesky"}

TOP_KEYS = {"include", "settings", "source", "org"}
SETTINGS_KEYS = {"database", "keep_customer_text", "window_days", "timezone", "feature_shards", "shard_dir"}
SOURCE_KEYS = {"kind", "path", "required", "seed", "orgs", "posts", "name", "fallback_for"}
ORG_KEYS = {"id", "name", "sector", "timezone", "business_hours", "accounts"}
ACCOUNT_KEYS = {"platform", "handle", "role", "instance"}


class ConfigError(ValueError):
    """One problem in a config file, as `file:line: key: what is wrong`."""

    def __init__(self, path: Path, line: int | None, key: str, message: str):
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {key}: {message}")
        self.path, self.line, self.key = path, line, key
        self.errors = [self]


class ConfigErrors(ConfigError):
    """Every problem found in a config file (one per line, in file order), so a file with seven typos
    takes one `config-check`, not seven. `path`, `line` and `key` are the first problem's."""

    def __init__(self, errors: list[ConfigError]):
        ordered = sorted(errors, key=lambda e: (str(e.path), e.line or 0))
        ValueError.__init__(self, "\n".join(str(e) for e in ordered))
        first = ordered[0]
        self.path, self.line, self.key = first.path, first.line, first.key
        self.errors = ordered


class _Problems:
    """Collects the ConfigErrors of independent parts of a file (each key, each [[org]], each account)."""

    def __init__(self):
        self.errors: list[ConfigError] = []

    def add(self, error: ConfigError) -> None:
        self.errors.extend(error.errors)

    @contextmanager
    def collect(self) -> Iterator[None]:
        try:
            yield
        except ConfigError as exc:
            self.add(exc)

    def raise_if_any(self) -> None:
        if len(self.errors) == 1:
            raise self.errors[0]
        if self.errors:
            raise ConfigErrors(self.errors)


@dataclass(frozen=True)
class Organisation:
    id: str
    name: str
    sector: str | None
    timezone: str
    business_start: time
    business_end: time
    accounts: tuple[Account, ...]


@dataclass(frozen=True)
class Source:
    kind: str
    path: Path | None = None
    required: bool = True
    seed: int | None = None
    orgs: int | None = None
    posts: int | None = None
    name: str | None = None
    fallback_for: str | None = None  # load only when the named source was not loaded (e.g. file absent)


@dataclass
class Config:
    path: Path | None = None
    organisations: list[Organisation] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    database: Path | None = None
    keep_customer_text: bool = False
    window_days: int = DEFAULT_WINDOW_DAYS
    timezone: str = "UTC"  # of the nightly schedule
    # the nightly's feature build sharded by organisation on the task runner (docs/scale-out.md);
    # 0: one build in the flow process, the fastest on one machine
    feature_shards: int = 0
    shard_dir: Path | None = None   # where shards are written (default: <database>.shards beside it)

    def org(self, org_id: str) -> Organisation:
        for org in self.organisations:
            if org.id == org_id:
                return org
        raise KeyError(org_id)


class _Locator:
    """Finds the line of a key inside the n-th [[org]] / [[source]] block (tomllib gives none)."""

    def __init__(self, text: str):
        self.lines = text.splitlines()
        self.blocks: dict[str, list[int]] = {}
        for number, line in enumerate(self.lines, start=1):
            match = re.match(r"\s*\[\[?\s*([\w.]+)\s*\]\]?", line)
            if match:
                self.blocks.setdefault(match.group(1), []).append(number)

    def find(self, key: str, block: str | None = None, index: int = 0, near: str | None = None) -> int | None:
        starts = self.blocks.get(block, []) if block else [1]
        if index >= len(starts):
            return None
        start = starts[index]
        following = sorted(n for numbers in self.blocks.values() for n in numbers if n > start)
        end = following[0] if following else len(self.lines) + 1
        pattern = re.compile(rf'(^|[\s{{,]){re.escape(key)}\s*=')
        fallback = None
        for number in range(start, end):
            text = self.lines[number - 1]
            if pattern.search(text):
                if near is None or near in text:
                    return number
                fallback = fallback or number
        return fallback or start


def _type_check(value, expected: type | tuple, path: Path, line, key: str):
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        names = expected.__name__ if isinstance(expected, type) else " or ".join(t.__name__ for t in expected)
        raise ConfigError(path, line, key, f"expected {names}, found {type(value).__name__} {value!r}")
    return value


def _unknown_keys(table: dict, allowed: set[str], path: Path, locate, what: str) -> None:
    unknown = [ConfigError(path, locate(key), key,
                           f"unknown key in {what} (expected one of: {', '.join(sorted(allowed))})")
               for key in table if key not in allowed]
    if len(unknown) == 1:
        raise unknown[0]
    if unknown:
        raise ConfigErrors(unknown)


def _check_timezone(name: str, path: Path, line) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(path, line, "timezone", f"unknown time zone {name!r}") from None
    return name


def _parse_hours(value: str, path: Path, line, key: str) -> tuple[time, time]:
    match = re.fullmatch(r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})", value.strip())
    if not match:
        raise ConfigError(path, line, key, f"expected 'HH:MM-HH:MM', found {value!r}")
    h1, m1, h2, m2 = map(int, match.groups())
    try:
        start, end = time(h1, m1), time(h2 % 24, m2)
    except ValueError as exc:
        raise ConfigError(path, line, key, f"{value!r}: {exc}") from None
    return start, end


def load_config(path: str | Path, _seen: frozenset[Path] = frozenset()) -> Config:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, None, "file", "config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, None, "file", f"cannot read config: {exc}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None)
        if line is None:
            found = re.search(r"line (\d+)", str(exc))
            line = int(found.group(1)) if found else None
        raise ConfigError(path, line, "syntax", f"invalid TOML: {exc}") from None
    where = _Locator(text)
    config = Config(path=path)
    problems = _Problems()
    with problems.collect():
        _unknown_keys(raw, TOP_KEYS, path, lambda k: where.find(k) or where.blocks.get(k, [None])[0],
                      "the top level")

    with problems.collect():
        included_from: dict[str, str] = {}      # an organisation's or account's key -> the include listing it
        for include in _type_check(raw.get("include", []), list, path, where.find("include"), "include"):
            with problems.collect():
                target = (path.parent / _type_check(include, str, path, where.find("include"), "include")).resolve()
                if target in _seen or target == path.resolve():
                    raise ConfigError(path, where.find("include"), "include", f"{include!r} includes itself")
                included = load_config(target, _seen | {path.resolve()})
                for org in included.organisations:
                    # each file is checked on its own: two included files can still list the same one
                    keys = [(f"organisation id {org.id!r}", f"org:{org.id}")] + [
                        (f"account {a.platform}:{a.handle}", f"account:{a.platform}:{a.key}") for a in org.accounts]
                    repeated = [(label, included_from[key]) for label, key in keys if key in included_from]
                    for label, other in repeated:
                        problems.add(ConfigError(path, where.find("include"), "include",
                                                 f"duplicate {label} in {include!r} (also in {other!r})"))
                    if not repeated:
                        included_from.update({key: include for _, key in keys})
                        config.organisations.append(org)
                config.sources.extend(included.sources)

    with problems.collect():
        _parse_settings(raw, config, path, where, problems)

    with problems.collect():
        for index, source in enumerate(_type_check(raw.get("source", []), list, path, where.find("source"),
                                                   "source")):
            with problems.collect():
                config.sources.append(_parse_source(source, index, path, where, problems))

    seen_org_ids = {org.id for org in config.organisations}
    seen_accounts = {(a.platform, a.key): org.id for org in config.organisations for a in org.accounts}
    with problems.collect():
        for index, org_table in enumerate(_type_check(raw.get("org", []), list, path, where.find("org"), "org")):
            # a duplicate id is reported beside the table's other problems, not only once they are fixed
            raw_id = org_table.get("id") if isinstance(org_table, dict) else None
            duplicate = isinstance(raw_id, str) and raw_id in seen_org_ids
            if duplicate:
                problems.add(ConfigError(path, where.find("id", "org", index), "id",
                                         f"duplicate organisation id {raw_id!r}"))
            if isinstance(raw_id, str):
                seen_org_ids.add(raw_id)
            with problems.collect():
                org = _parse_org(org_table, index, path, where, problems)
                if duplicate:
                    continue
                for account in org.accounts:
                    owner = seen_accounts.get((account.platform, account.key))
                    if owner is not None:
                        problems.add(ConfigError(path, where.find("handle", "org", index, near=account.handle),
                                                 "handle", f"duplicate account {account.platform}:{account.handle} "
                                                 f"(already listed under {owner!r})"))
                    seen_accounts[(account.platform, account.key)] = org.id
                config.organisations.append(org)
    problems.raise_if_any()
    return config


def _parse_settings(raw: dict, config: Config, path: Path, where: _Locator, problems: "_Problems") -> None:
    settings = _type_check(raw.get("settings", {}), dict, path, where.find("settings"), "settings")
    with problems.collect():
        _unknown_keys(settings, SETTINGS_KEYS, path, lambda k: where.find(k, "settings"), "[settings]")
    with problems.collect():
        if "database" in settings:
            db = _type_check(settings["database"], str, path, where.find("database", "settings"), "database")
            config.database = (path.parent / db) if not Path(db).is_absolute() else Path(db)
    with problems.collect():
        if "keep_customer_text" in settings:
            config.keep_customer_text = _type_check(settings["keep_customer_text"], bool, path,
                                                    where.find("keep_customer_text", "settings"),
                                                    "keep_customer_text")
    with problems.collect():
        if "window_days" in settings:
            line = where.find("window_days", "settings")
            config.window_days = _type_check(settings["window_days"], int, path, line, "window_days")
            if config.window_days < 1:
                raise ConfigError(path, line, "window_days", f"must be at least 1 day, found {config.window_days}")
    with problems.collect():
        if "timezone" in settings:
            line = where.find("timezone", "settings")
            config.timezone = _check_timezone(_type_check(settings["timezone"], str, path, line, "timezone"),
                                              path, line)
    _parse_sharding(settings, config, path, where, problems)


def _parse_sharding(settings: dict, config: Config, path: Path, where: _Locator, problems: "_Problems") -> None:
    with problems.collect():
        if "feature_shards" in settings:
            line = where.find("feature_shards", "settings")
            config.feature_shards = _type_check(settings["feature_shards"], int, path, line, "feature_shards")
            if config.feature_shards < 0:
                raise ConfigError(path, line, "feature_shards",
                                  f"must be 0 (no sharding) or a shard count, found {config.feature_shards}")
    with problems.collect():
        if "shard_dir" in settings:
            folder = Path(_type_check(settings["shard_dir"], str, path, where.find("shard_dir", "settings"), "shard_dir"))
            config.shard_dir = folder if folder.is_absolute() else path.parent / folder


def _parse_source(table, index: int, path: Path, where: _Locator, problems: "_Problems") -> Source:
    locate = lambda key: where.find(key, "source", index)  # noqa: E731
    _type_check(table, dict, path, locate("kind"), "source")
    with problems.collect():
        _unknown_keys(table, SOURCE_KEYS, path, locate, "[[source]]")
    if "kind" not in table:
        raise ConfigError(path, locate("kind"), "kind", "every [[source]] needs a kind")
    kind = _type_check(table["kind"], str, path, locate("kind"), "kind")
    if kind not in SOURCE_KINDS:
        raise ConfigError(path, locate("kind"), "kind",
                          f"unknown source kind {kind!r} (expected one of: {', '.join(sorted(SOURCE_KINDS))})")
    source_path = None
    if "path" in table:
        raw_path = Path(_type_check(table["path"], str, path, locate("path"), "path"))
        source_path = raw_path if raw_path.is_absolute() else (path.parent / raw_path)
    ints = {k: _type_check(table[k], int, path, locate(k), k) for k in ("seed", "orgs", "posts") if k in table}
    return Source(kind=kind, path=source_path,
                  required=_type_check(table.get("required", True), bool, path, locate("required"), "required"),
                  name=_type_check(table.get("name", kind), str, path, locate("name"), "name"),
                  fallback_for=_type_check(table.get("fallback_for"), (str, type(None)), path,
                                           locate("fallback_for"), "fallback_for"), **ints)


def _parse_org(table, index: int, path: Path, where: _Locator, problems: "_Problems") -> Organisation:
    """One [[org]]; every problem in it is added to `problems`, and the first one raised so the
    organisation is left out."""
    locate = lambda key: where.find(key, "org", index)  # noqa: E731
    _type_check(table, dict, path, locate("id"), "org")
    found = _Problems()
    with found.collect():
        _unknown_keys(table, ORG_KEYS, path, locate, "[[org]]")
    for required in ("id", "accounts"):
        if required not in table:
            found.add(ConfigError(path, where.blocks.get("org", [None])[index], required,
                                  f"organisation #{index + 1} is missing {required!r}"))
    org_id = name = sector = None
    tz_name, start, end, accounts = "UTC", time(9), time(17), []
    with found.collect():
        if "id" in table:
            org_id = _type_check(table["id"], str, path, locate("id"), "id")
            if not org_id.strip():
                raise ConfigError(path, locate("id"), "id", "must not be empty")
    with found.collect():
        name = _type_check(table.get("name", org_id or ""), str, path, locate("name"), "name")
    with found.collect():
        sector = _type_check(table.get("sector", None) or "", str, path, locate("sector"), "sector") or None
    with found.collect():
        tz_name = _check_timezone(_type_check(table.get("timezone", "UTC"), str, path, locate("timezone"),
                                              "timezone"), path, locate("timezone"))
    with found.collect():
        hours = _type_check(table.get("business_hours", "09:00-17:00"), str, path, locate("business_hours"),
                            "business_hours")
        start, end = _parse_hours(hours, path, locate("business_hours"), "business_hours")
    with found.collect():
        for account_table in _type_check(table.get("accounts", []), list, path, locate("accounts"), "accounts"):
            with found.collect():
                accounts.append(_parse_account(account_table, index, path, where, found))
    if found.errors:
        problems.errors.extend(found.errors[1:])
        raise found.errors[0]
    return Organisation(id=org_id, name=name, sector=sector, timezone=tz_name, business_start=start,
                        business_end=end, accounts=tuple(accounts))


def _parse_account(table, org_index: int, path: Path, where: _Locator, problems: "_Problems") -> Account:
    def locate(key: str) -> int | None:
        return where.find(key, "org", org_index, near=str(table.get("handle", "")) if isinstance(table, dict) else None)

    _type_check(table, dict, path, locate("accounts"), "accounts")
    found = _Problems()
    with found.collect():
        _unknown_keys(table, ACCOUNT_KEYS, path, locate, "an account")
    for required in ("platform", "handle"):
        if required not in table:
            found.add(ConfigError(path, locate("accounts"), required, f"account is missing {required!r}"))
    platform = handle = instance = None
    role = "other"
    with found.collect():
        if "platform" in table:
            platform = _type_check(table["platform"], str, path, locate("platform"), "platform").lower()
            platform = PLATFORM_ALIASES.get(platform, platform)
            if platform not in PLATFORMS:
                raise ConfigError(path, locate("platform"), "platform",
                                  f"unknown platform {table['platform']!r} (expected one of: "
                                  f"{', '.join(sorted(PLATFORMS))})")
    with found.collect():
        if "handle" in table:
            handle = _type_check(table["handle"], str, path, locate("handle"), "handle").strip().lstrip("@")
            if not handle:
                raise ConfigError(path, locate("handle"), "handle", "must not be empty")
    with found.collect():
        role = _type_check(table.get("role", "other"), str, path, locate("role"), "role").lower()
        role = ROLE_ALIASES.get(role, role)
        if role not in ROLES:
            raise ConfigError(path, locate("role"), "role",
                              f"unknown role {table['role']!r} (expected one of: {', '.join(sorted(ROLES))})")
    with found.collect():
        instance = table.get("instance")
        if instance is not None:
            _type_check(instance, str, path, locate("instance"), "instance")
    if found.errors:
        problems.errors.extend(found.errors[1:])
        raise found.errors[0]
    return Account(platform=platform, handle=handle, role=role, instance=instance)


def write_organisations(con, organisations: list[Organisation]) -> None:
    """Add (or refresh) organisations and claim their accounts. Caller owns the transaction."""
    for org in organisations:
        con.execute("insert or replace into organisations (org_id, name, sector, timezone, business_start, "
                    "business_end, provisional) values (?, ?, ?, ?, ?, ?, false)",
                    [org.id, org.name, org.sector, org.timezone, org.business_start, org.business_end])
        for account in org.accounts:
            con.execute(
                "insert into accounts (platform, handle_key, handle, org_id, role, configured) "
                "values (?, ?, ?, ?, ?, true) on conflict do update set handle = excluded.handle, "
                "org_id = excluded.org_id, role = excluded.role, configured = true",
                [account.platform, account.key, account.handle, org.id, account.role])


def apply_config(store, config: Config) -> None:
    """Write organisations and accounts into the store (replacing what the config owns). The
    provisional organisations of a database imported without a config go, with their estimates: they
    stood in for the organisations this config names."""
    with store.transaction() as con:
        con.execute("delete from estimates where org_id in (select org_id from organisations where provisional)")
        con.execute("delete from organisations")
        con.execute("update accounts set org_id = null, role = null, configured = false")
        write_organisations(con, config.organisations)
        store.unmask_org_handles([(a.platform, a.author_handle) for org in config.organisations for a in org.accounts])
        # a new organisation account can take mentions from another, or turn a customer's posts into its own
        refresh_facts(con)
