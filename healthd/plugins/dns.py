"""DNS: resolve a name (any record type), optionally at a given server."""

from __future__ import annotations

import time

import dns.asyncresolver
import dns.exception
import dns.resolver

from healthd.plugins.base import Field, Plugin, ProbeResult, elapsed_ms


class DnsPlugin(Plugin):
    name = "dns"
    description = (
        "DNS lookup: the name must resolve (optionally at one server, optionally to a value)"
    )
    fields = {
        "name": Field("str", required=True),
        "record_type": Field("str", default="A"),
        "server": Field("str", help="server address, optionally with :port; default: the system's"),
        "expect": Field("str", help="one answer must equal this"),
    }

    async def check(self, timeout: float) -> ProbeResult:
        cfg = self.resolved()
        resolver = dns.asyncresolver.Resolver(configure=not cfg.get("server"))
        if cfg.get("server"):
            host, _, port = (
                str(cfg["server"]).rpartition(":")
                if _has_port(cfg["server"])
                else (cfg["server"], "", "")
            )
            resolver.nameservers = [host]
            if port:
                resolver.port = int(port)
        resolver.lifetime = timeout
        started = time.perf_counter()
        name, rtype = cfg["name"], cfg["record_type"]
        try:
            answer = await resolver.resolve(name, rtype)
        except dns.resolver.NXDOMAIN:
            return ProbeResult.error(f"{name}: no such domain (NXDOMAIN)", elapsed_ms(started))
        except dns.resolver.NoAnswer:
            return ProbeResult.error(f"{name}: no {rtype} record", elapsed_ms(started))
        except dns.resolver.NoNameservers:
            return ProbeResult.error(
                f"{name}: every server refused or failed (SERVFAIL)", elapsed_ms(started)
            )
        except dns.exception.Timeout:
            return ProbeResult.disconnected(
                f"timed out after {timeout:g} s resolving {name}", elapsed_ms(started)
            )
        except (dns.exception.DNSException, ValueError) as exc:
            return ProbeResult.error(f"{name}: {type(exc).__name__}", elapsed_ms(started))
        values = [r.to_text() for r in answer]
        expect = cfg.get("expect")
        if expect and expect not in values:
            return ProbeResult.error(
                f"{name} {rtype} is {', '.join(values)}, expected {expect}", elapsed_ms(started)
            )
        return ProbeResult.connected(f"{name} {rtype} {', '.join(values[:3])}", elapsed_ms(started))


def _has_port(server: str) -> bool:
    # 127.0.0.1:5353 has a port; ::1 (an IPv6 address) does not
    return server.count(":") == 1
