"""Organisations before anyone has written a config: provisional ones, and a suggested config.

A database imported without an organisation config still has its organisation accounts (discovered
in the data). Until a config names organisations, each such account is estimated as its own
*provisional* organisation (id from the handle), so import → estimate → estimates → report works with
no file written by hand; every output marks them provisional. `suggest_config` writes a config
skeleton from what was discovered, grouping the accounts that look like one brand, for the analyst to
correct and attach with `maturity orgs apply` (pipeline.config.apply_config replaces the provisional
organisations).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from pipeline.config import ROLES

# Words brands put around their name on support and department accounts (AmazonHelp, AskAmex,
# SpotifyCares, Uber_Support, TeamYouTube, BBCNews), with the role each suggests; what is left is the
# brand the accounts share. Longest first, so "helps" is not read as "help" + "s".
_PREFIX_ROLES = {"ask": "support", "team": "community"}
_SUFFIX_ROLES = dict(sorted({
    "support": "support", "service": "support", "helps": "support", "help": "support", "cares": "support",
    "care": "support", "helpers": "support", "assist": "support", "desk": "support", "news": "news", "jobs": "careers",
    "careers": "careers", "hq": "corporate",
}.items(), key=lambda item: -len(item[0])))
_MIN_BRAND_LETTERS = 2
KNOWN_IDS_SHOWN = 15   # organisation ids an "unknown organisation" error lists before saying how many more


def all_org_ids(store) -> list[str]:
    """Every organisation id stored (configured or provisional), sorted."""
    return [o for (o,) in store.con.execute("select org_id from organisations order by 1").fetchall()]


def unknown_organisations_error(store, names) -> str | None:
    """The error for those of `names` that are no stored organisation (unknown_organisations); None
    when every one is."""
    known = all_org_ids(store)
    unknown = sorted(set(names) - set(known))
    return unknown_organisations(unknown, known) if unknown else None


def unknown_organisations(names: list[str], known: list[str]) -> str:
    """The error for names that are no organisation: each name, then the known ids (the first
    KNOWN_IDS_SHOWN and how many more)."""
    shown = ", ".join(known[:KNOWN_IDS_SHOWN]) or "none configured"
    more = f", … and {len(known) - KNOWN_IDS_SHOWN} more" if len(known) > KNOWN_IDS_SHOWN else ""
    return (f"unknown organisation{'s' if len(names) > 1 else ''} {', '.join(repr(n) for n in names)} "
            f"(known: {shown}{more})")


def brand_of(handle: str) -> tuple[str, str]:
    """(brand key, role guess) of an account handle: `AmazonHelp` → ("amazon", "support"),
    `Amazon` → ("amazon", "brand"), `AskPlayStation` → ("playstation", "support")."""
    key = re.sub(r"[^a-z0-9]", "", handle.lower()) or handle.lower()
    role = "brand"
    for prefix, prefix_role in _PREFIX_ROLES.items():
        if key.startswith(prefix) and len(key) - len(prefix) >= _MIN_BRAND_LETTERS:
            key, role = key[len(prefix):], prefix_role
            break
    for suffix, suffix_role in _SUFFIX_ROLES.items():
        if key.endswith(suffix) and len(key) - len(suffix) >= _MIN_BRAND_LETTERS:
            key, role = key[:-len(suffix)], suffix_role
            break
    return key, role


def has_configured_orgs(store) -> bool:
    return store.con.execute("select count(*) from organisations where not provisional").fetchone()[0] > 0


def assign_provisional_orgs(store) -> int:
    """Without configured organisations, make every discovered account without one its own provisional
    organisation (id: the lower-cased handle, with the platform added when two platforms share it).
    Returns how many were added; does nothing once a config names organisations."""
    if has_configured_orgs(store):
        return 0
    unassigned = store.con.execute(
        "select platform, handle_key, handle from accounts where org_id is null order by handle_key, platform"
    ).fetchall()
    if not unassigned:
        return 0
    taken = {org for (org,) in store.con.execute("select org_id from organisations").fetchall()}
    handle_platforms: dict[str, int] = {}
    for _, key, _ in unassigned:
        handle_platforms[key] = handle_platforms.get(key, 0) + 1
    with store.transaction() as con:
        for platform, key, handle in unassigned:
            org_id = key if handle_platforms[key] == 1 and key not in taken else f"{key}-{platform}"
            taken.add(org_id)
            con.execute("insert into organisations (org_id, name, provisional) values (?, ?, true) "
                        "on conflict do nothing", [org_id, handle])
            con.execute("update accounts set org_id = ? where platform = ? and handle_key = ?",
                        [org_id, platform, key])
    return len(unassigned)


def provisional_org_ids(store) -> set[str]:
    return {org for (org,) in store.con.execute(
        "select org_id from organisations where provisional").fetchall()}


@dataclass
class _SuggestedOrg:
    id: str
    name: str
    sector: str | None = None
    timezone: str = "UTC"
    business_hours: str = "09:00-17:00"
    configured: bool = False
    accounts: list[tuple[str, str, str, int]] = field(default_factory=list)  # platform, handle, role, posts


_HEADER = """\
# Organisation config suggested by `maturity orgs suggest` from the {accounts} organisation accounts
# found in {db}.
#
# Edit it, then:
#   maturity config-check orgs.toml        # every mistake at once, as file:line: key: what is wrong
#   maturity orgs apply orgs.toml          # attach it to the database (no re-import)
#   maturity estimate                      # stages for the organisations named here
#
# What to check:
# - Grouping is a guess from the handles (AmazonHelp and Amazon -> amazon): move an account to the
#   [[org]] it belongs to, or give it its own block. Accounts left out stay unassigned.
# - id names the organisation in every table and in `maturity explain ID`; name is shown in the report.
# - sector is the competitor group (`maturity report --group SECTOR` compares one): fill it in,
#   e.g. "airlines", "telecom", "retail"; organisations without one are compared with everyone.
# - timezone (IANA, e.g. "Europe/London") and business_hours are where and when the team works: the
#   business-hours signals are read in them.
# - role per account: {roles}.
"""


def suggest_config(store) -> str:
    """A config skeleton (TOML accepted by `maturity config-check`) for every account in the store:
    accounts of a configured organisation keep it; the others are grouped by brand (`brand_of`)."""
    rows = store.con.execute(
        """
        select a.platform, a.handle, a.role, o.org_id, o.name, o.sector, o.timezone,
               left(o.business_start::varchar, 5) || '-' || left(o.business_end::varchar, 5),
               coalesce(o.provisional, true) as provisional,
               (select count(*) from posts p where p.platform = a.platform and p.author_key = a.handle_key) as posts
        from accounts a left join organisations o on o.org_id = a.org_id
        order by a.handle_key, a.platform
        """).fetchall()
    suggested: dict[str, _SuggestedOrg] = {}
    for platform, handle, role, org_id, name, sector, tz, hours, provisional, posts in rows:
        if not provisional:
            org = suggested.setdefault(org_id, _SuggestedOrg(org_id, name, sector, tz, hours, configured=True))
            org.accounts.append((platform, handle, role or "other", posts))
            continue
        brand, guessed_role = brand_of(handle)
        org = suggested.get(brand)
        if org is None or org.configured:
            brand = brand if org is None else f"{brand}-suggested"
            org = suggested.setdefault(brand, _SuggestedOrg(brand, handle))
        org.accounts.append((platform, handle, guessed_role, posts))
        # the account whose handle is the bare brand names the organisation (Amazon, not AmazonHelp)
        if guessed_role == "brand" and len(handle) <= len(org.name):
            org.name = handle
    lines = [_HEADER.format(accounts=len(rows), db=store.path, roles=", ".join(sorted(ROLES)))]
    for org in sorted(suggested.values(), key=lambda o: o.id):
        lines += ["", "[[org]]", f"id = {_toml(org.id)}", f"name = {_toml(org.name)}",
                  f"sector = {_toml(org.sector or '')}" + ("" if org.sector else
                                                           "        # competitor group: fill in"),
                  f"timezone = {_toml(org.timezone)}", f"business_hours = {_toml(org.business_hours)}",
                  "accounts = ["]
        for platform, handle, role, posts in org.accounts:
            lines.append(f"    {{ platform = {_toml(platform)}, handle = {_toml(handle)}, role = {_toml(role)} }},"
                         f"  # {posts:,} post{'' if posts == 1 else 's'} stored")
        lines.append("]")
    return "\n".join(lines) + "\n"


def _toml(value: str) -> str:
    # a JSON string is a valid TOML basic string (same escapes)
    return json.dumps(value, ensure_ascii=False)
