"""Usage that follows identity, on SQLite and PostgreSQL: records carry the caller's stable
identity and the configured claims (`accounting.dimensions`), and `/admin/usage?by=` groups by
them: a caller in two groups counts under each."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from rolegate.config.model import DatabaseConfig
from rolegate.storage.database import Database
from rolegate.storage.tables import usage_dimensions
from tests.integration.test_identity_limits import caller, identity_config, rule, statuses
from tests.integration.test_usage_accounting import _settled_rows

DIMENSIONS = ["tid", "groups", "department"]


def usage_config(upstream_url: str, database: dict[str, Any]) -> dict[str, Any]:
    return identity_config(upstream_url, [
        rule("users", "user"),
        {"name": "admins", "when": {"roles": ["rolegate.admin"]}, "allow": {"routes": ["admin"]}},
    ], database=database, accounting={"flush_interval": 0.05, "dimensions": DIMENSIONS})


async def dimension_rows(database: dict[str, Any]) -> list[tuple[int, str, str]]:
    store = Database(DatabaseConfig.model_validate(database))
    try:
        async with store.engine.connect() as connection:
            rows = await connection.execute(select(usage_dimensions).order_by(
                usage_dimensions.c.record_id, usage_dimensions.c.name, usage_dimensions.c.value))
            return [(row.record_id, row.name, row.value) for row in rows]
    finally:
        await store.close()


async def test_records_carry_the_stable_identity_and_the_configured_claims(
        gateway_for, settings_from, database, upstream, dev_issuer):
    gateway = await gateway_for(settings_from(usage_config(upstream.url, database)))
    claims = {"tid": "t-1", "groups": ["finance", "data-science"], "department": "Research",
              "title": "not a dimension"}
    # two tokens of the same person (a refresh): new jti, same identity
    first, second = (caller(dev_issuer, "oid-alice", **claims) for _ in range(2))

    assert await statuses(gateway, first, second) == [200, 200]
    rows = await _settled_rows(database, 2)
    dimensions = await dimension_rows(database)

    assert [(row["issuer"], row["subject"]) for row in rows] == [("dev", "oid-alice")] * 2
    expected = [("department", "Research"), ("groups", "data-science"), ("groups", "finance"),
                ("tid", "t-1")]
    assert dimensions == [(row["id"], name, value) for row in rows for name, value in expected]


async def test_usage_totals_group_by_each_dimension(
        gateway_for, settings_from, database, upstream, dev_issuer, admin):
    gateway = await gateway_for(settings_from(usage_config(upstream.url, database)))
    alice = caller(dev_issuer, "alice", tid="t-1", groups=["finance", "data-science"],
                   department="Research")
    bob = caller(dev_issuer, "bob", tid="t-1", groups=["finance"], department="Sales")
    carol = caller(dev_issuer, "carol", tid="t-2")  # no groups, no department

    assert await statuses(gateway, alice, alice, bob, carol) == [200] * 4
    await _settled_rows(database, 4)

    def grouped(report: dict[str, Any]) -> dict[str | None, tuple[int, int]]:
        return {row["value"]: (row["requests"], row["total_tokens"]) for row in report["data"]}
    reports = {by: (await gateway.get(f"/admin/usage?by={by}", headers=admin)).json()
               for by in DIMENSIONS}

    assert grouped(reports["department"]) == {"Research": (2, 10), "Sales": (1, 5),
                                              None: (1, 5)}
    assert grouped(reports["groups"]) == {"data-science": (2, 10), "finance": (3, 15),
                                          None: (1, 5)}
    assert grouped(reports["tid"]) == {"t-1": (3, 15), "t-2": (1, 5)}
    assert reports["tid"]["by"] == "tid"


async def test_usage_by_an_unconfigured_dimension_is_a_400(
        gateway_for, settings_from, database, upstream, admin):
    gateway = await gateway_for(settings_from(usage_config(upstream.url, database)))

    response = await gateway.get("/admin/usage?by=title", headers=admin)

    assert response.status_code == 400
    assert response.json()["error"]["param"] == "by"
    assert "department" in response.json()["error"]["message"]


async def test_odd_claim_values_are_stored_bounded_and_printable(
        gateway_for, settings_from, database, upstream, dev_issuer):
    gateway = await gateway_for(settings_from(usage_config(upstream.url, database)))
    long = "x" * 5000
    odd = caller(dev_issuer, "odd", tid=42, groups=["a\x00b\nc", long, "\ud800", True, {"x": 1}],
                 department="\x1b[31mred")

    assert await statuses(gateway, odd) == [200]
    await _settled_rows(database, 1)
    values = {(name, value) for _, name, value in await dimension_rows(database)}

    assert ("tid", "42") in values
    assert ("groups", "abc") in values and ("department", "[31mred") in values
    fitted = [value for name, value in values if value.startswith("xxx")]
    assert len(fitted) == 1 and len(fitted[0]) == 200 and "~" in fitted[0]
    assert len(values) == 4  # the lone surrogate, true and the object are no values
