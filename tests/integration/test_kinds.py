"""The redis, mysql, grpc, smtp and tls kinds against real servers on 127.0.0.1 (see
tests/fix_kinds.py): what connected, error and disconnected mean for each, and the kept
connections of redis and mysql reconnecting, counted."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import pytest

from healthd import plugins
from healthd.core.errors import ConfigError
from healthd.local.embedded import free_port
from healthd.plugins.base import Plugin, ProbeResult
from tests.fix_kinds import SECRET, GrpcHealthServer, MariaDb, RedisServer, SmtpServers


def probe(name: str, config: dict[str, Any], timeout: float = 3.0) -> ProbeResult:
    async def once() -> ProbeResult:
        plugin = plugins.create(name, config)
        try:
            return await plugins.run_check(plugin, timeout)
        finally:
            await plugin.close()

    return asyncio.run(once())


def held(
    name: str, config: dict[str, Any], *steps: Callable[[], Any], timeout: float = 3.0
) -> tuple[list[ProbeResult], Plugin]:
    """One plugin instance probed, then after each step once more (as the daemon keeps
    one instance per source): the results, and the instance (for its counters)."""

    async def run() -> tuple[list[ProbeResult], Plugin]:
        plugin = plugins.create(name, config)
        out = [await plugins.run_check(plugin, timeout)]
        try:
            for step in steps:
                await asyncio.to_thread(step)
                out.append(await plugins.run_check(plugin, timeout))
        finally:
            await plugin.close()
        return out, plugin

    return asyncio.run(run())


# -- redis ------------------------------------------------------------------------------


def test_redis_password_right_wrong_and_missing(redis_server: RedisServer) -> None:
    r = probe("redis", {"url": redis_server.url()})
    assert (r.status, r.message) == ("connected", "PONG")
    plain = f"redis://127.0.0.1:{redis_server.port}/0"
    assert probe("redis", {"url": plain, "password": SECRET}).ok
    for config in (
        {"url": redis_server.url("wrong-password-1")},
        {"url": plain, "password": "wrong-password-2"},
        {"url": plain},  # NOAUTH
    ):
        r = probe("redis", config)
        assert (r.status, r.message) == ("error", "authentication failed"), config


def test_redis_stopped_is_disconnected_and_the_kept_connection_comes_back() -> None:
    server = RedisServer()
    try:
        results, plugin = held(
            "redis", {"url": server.url()}, server.stop, server.start, lambda: None
        )
    finally:
        server.close()
    first, stopped, restarted, steady = results
    assert first.ok and not first.reconnected
    assert stopped.status == "disconnected" and stopped.message == "connection refused"
    assert restarted.ok and restarted.reconnected
    assert steady.ok and not steady.reconnected
    assert plugin.reconnects == 1  # type: ignore[attr-defined]


def test_redis_reconnects_a_killed_connection(redis_server: RedisServer) -> None:
    import redis

    def kill() -> None:
        with redis.Redis(port=redis_server.port, password=SECRET) as admin:
            assert admin.client_kill_filter(_type="normal", skipme=True) >= 1

    (before, after, steady), plugin = held("redis", {"url": redis_server.url()}, kill, kill)
    assert before.ok and not before.reconnected
    assert after.ok and after.reconnected and steady.ok and steady.reconnected
    assert plugin.reconnects == 2  # type: ignore[attr-defined]


def test_redis_config_is_checked() -> None:
    with pytest.raises(ConfigError) as caught:
        plugins.create("redis", {"url": "http://127.0.0.1:6379"})
    assert str(caught.value) == "config.url: must start with redis://, rediss:// or unix://"


# -- MySQL / MariaDB --------------------------------------------------------------------


def test_mysql_password_right_wrong_database_and_query(mariadb: MariaDb) -> None:
    r = probe("mysql", {"dsn": mariadb.dsn()})
    assert (r.status, r.message) == ("connected", "query ok")
    assert probe("mysql", {"dsn": mariadb.dsn().replace("mysql://", "mariadb://")}).ok
    r = probe("mysql", {"dsn": mariadb.dsn(password="wrong-password-1")})
    assert (r.status, r.message) == ("error", "access denied")
    r = probe("mysql", {"dsn": mariadb.dsn(db="secret_stuff")})
    assert (r.status, r.message) == ("error", "access denied to the database")
    r = probe("mysql", {"dsn": mariadb.dsn(), "query": "SELECT * FROM no_such_table"})
    assert r.status == "error" and r.message == (
        "query failed: Table 'app.no_such_table' doesn't exist"
    )
    r = probe("mysql", {"dsn": f"mysql://healthd:{SECRET}@127.0.0.1:{free_port()}/app"})
    assert (r.status, r.message) == ("disconnected", "connection refused")


def test_mysql_stopped_is_disconnected_and_the_kept_connection_comes_back(
    mariadb: MariaDb,
) -> None:
    results, plugin = held("mysql", {"dsn": mariadb.dsn()}, mariadb.stop, mariadb.start)
    first, stopped, restarted = results
    assert first.ok and not first.reconnected
    assert stopped.status == "disconnected", stopped
    assert restarted.ok and restarted.reconnected
    assert plugin.reconnects == 1  # type: ignore[attr-defined]


def test_mysql_reconnects_a_killed_connection(mariadb: MariaDb) -> None:
    def kill() -> None:
        ids = mariadb.root_sql(
            "SELECT id FROM information_schema.processlist WHERE user = 'healthd'"
        ).split()
        assert ids
        mariadb.root_sql("; ".join(f"KILL {i}" for i in ids))

    (before, after, steady), plugin = held("mysql", {"dsn": mariadb.dsn()}, kill, lambda: None)
    assert before.ok and after.ok and after.reconnected and steady.ok and not steady.reconnected
    assert plugin.reconnects == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("dsn", "problem"),
    [
        ("postgresql://u:p@h/db", "must start with mysql:// or mariadb://"),
        ("mysql:///db", "must name a host"),
        ("mysql://u:p@h:notaport/db", "must be mysql://user:password@host:port/db"),
    ],
)
def test_mysql_dsn_is_checked_without_quoting_it(dsn: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        plugins.create("mysql", {"dsn": dsn})
    assert caught.value.field == "config.dsn" and problem in caught.value.problem
    assert "u:p" not in str(caught.value)


# -- gRPC -------------------------------------------------------------------------------


def test_grpc_health(grpc_server: GrpcHealthServer) -> None:
    r = probe("grpc", {"target": grpc_server.target})
    assert (r.status, r.message) == ("connected", "the server is SERVING")
    r = probe("grpc", {"target": grpc_server.target, "service": "billing"})
    assert (r.status, r.message) == ("error", "service 'billing' is NOT_SERVING")
    r = probe("grpc", {"target": grpc_server.target, "service": "nope"})
    assert (r.status, r.message) == ("error", "service 'nope' is SERVICE_UNKNOWN")
    port = free_port()
    r = probe("grpc", {"target": f"127.0.0.1:{port}"})
    assert r.status == "disconnected"
    assert r.message == f"unavailable: connection refused (127.0.0.1:{port})"


def test_grpc_answers_follow_the_server(grpc_server: GrpcHealthServer) -> None:
    from grpc_health.v1 import health_pb2

    grpc_server.health.set("orders", health_pb2.HealthCheckResponse.SERVING)
    assert probe("grpc", {"target": grpc_server.target, "service": "orders"}).ok
    grpc_server.health.set("orders", health_pb2.HealthCheckResponse.UNKNOWN)
    r = probe("grpc", {"target": grpc_server.target, "service": "orders"})
    assert (r.status, r.message) == ("error", "service 'orders' is UNKNOWN")


def test_grpc_against_a_server_without_the_health_service(smtp_servers: SmtpServers) -> None:
    # something that is not gRPC at all: reached, and it answered wrongly or not at all
    r = probe("grpc", {"target": f"127.0.0.1:{smtp_servers.refusing_port}"}, timeout=1.5)
    assert not r.ok


# -- SMTP -------------------------------------------------------------------------------


def test_smtp_greeting_and_ehlo(smtp_servers: SmtpServers) -> None:
    r = probe("smtp", {"host": "127.0.0.1", "port": smtp_servers.plain.port})
    assert r.ok and r.message.startswith("220 ") and r.message.endswith("; EHLO answered"), r
    r = probe("smtp", {"host": "127.0.0.1", "port": smtp_servers.refusing_port})
    assert r.status == "error"
    assert (
        r.message == f"greeting 554 5.3.2 no service here (127.0.0.1:{smtp_servers.refusing_port})"
    )
    port = free_port()
    r = probe("smtp", {"host": "127.0.0.1", "port": port})
    assert (r.status, r.message) == ("disconnected", f"connection refused (127.0.0.1:{port})")


def test_smtp_starttls(smtp_servers: SmtpServers) -> None:
    port = smtp_servers.starttls.port
    config = {"host": "127.0.0.1", "port": port, "starttls": True}
    r = probe("smtp", {**config, "ca_file": str(smtp_servers.cert)})
    assert r.ok and r.message.endswith("; STARTTLS and EHLO answered"), r
    r = probe("smtp", config)  # a self-signed certificate the system does not trust
    assert r.status == "error" and "STARTTLS certificate not accepted" in r.message, r
    r = probe("smtp", {**config, "port": smtp_servers.plain.port})
    assert r.status == "error" and r.message.startswith("STARTTLS is not offered"), r


# -- TLS --------------------------------------------------------------------------------

DATE = r"\(\d{4}-\d\d-\d\d\)"


def test_tls_days_left(tls_servers: dict[str, Any]) -> None:
    port, cert = tls_servers["sixty"]
    r = probe("tls", {"host": "127.0.0.1", "port": port, "ca_file": str(cert)})
    assert r.ok and re.fullmatch(
        rf"certificate for 127\.0\.0\.1 valid, expires in 59\.9\d* days {DATE}|"
        rf"certificate for 127\.0\.0\.1 valid, expires in 60\.0 days {DATE}",
        r.message,
    ), r
    port, cert = tls_servers["five"]
    config = {"host": "127.0.0.1", "port": port, "ca_file": str(cert)}
    r = probe("tls", config)
    assert r.status == "error", r
    assert re.fullmatch(
        rf"certificate for 127\.0\.0\.1 expires in (4\.9|5\.0) days {DATE}, under min_days 14",
        r.message,
    ), r
    assert probe("tls", {**config, "min_days": 3}).ok


def test_tls_expired_wrong_name_untrusted(tls_servers: dict[str, Any]) -> None:
    port, cert = tls_servers["expired"]
    r = probe("tls", {"host": "127.0.0.1", "port": port, "ca_file": str(cert)})
    assert r.status == "error" and re.fullmatch(
        r"certificate expired \d+\.\d days ago \(2020-02-01\)", r.message
    ), r
    r = probe("tls", {"host": "127.0.0.1", "port": port})  # expired and untrusted
    assert r.status == "error" and "self-signed" in r.message, r
    assert re.search(r"; it expired \d+\.\d days ago \(2020-02-01\)$", r.message), r
    port, cert = tls_servers["other_name"]
    r = probe("tls", {"host": "127.0.0.1", "port": port, "ca_file": str(cert)})
    assert r.status == "error" and "certificate not accepted" in r.message, r
    assert "127.0.0.1" in r.message and "(2049-12-31)" in r.message, r
    assert probe(
        "tls",
        {"host": "127.0.0.1", "port": port, "ca_file": str(cert), "server_name": "other.invalid"},
    ).ok
    port, _ = tls_servers["sixty"]
    r = probe("tls", {"host": "127.0.0.1", "port": port})  # no ca_file: self-signed
    assert r.status == "error" and "self-signed certificate" in r.message, r
    assert re.search(rf"it expires in \d+\.\d days {DATE}", r.message), r


def test_tls_unreachable_and_not_tls(
    tls_servers: dict[str, Any], smtp_servers: SmtpServers
) -> None:
    port = free_port()
    r = probe("tls", {"host": "127.0.0.1", "port": port})
    assert (r.status, r.message) == ("disconnected", f"connection refused (127.0.0.1:{port})")
    r = probe("tls", {"host": "127.0.0.1", "port": smtp_servers.refusing_port})
    assert r.status == "error" and r.message.startswith("TLS handshake failed"), r
