"""gRPC: the standard health protocol's Check (``grpc.health.v1.Health``), over a fresh
channel per probe. grpcio's asyncio API and the grpcio-health-checking stubs, from the
``grpc`` extra.

A fresh channel each time, as the http plugin takes a fresh connection: a channel kept
open would ride an established HTTP/2 connection and not notice a listener that stopped
accepting; grpc's own reconnecting would also hide what this probe is for.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from healthd.core.errors import ConfigError
from healthd.plugins.base import Field, Plugin, ProbeResult, elapsed_ms, needs_extra

_METHOD = "/grpc.health.v1.Health/Check"


class GrpcPlugin(Plugin):
    name = "grpc"
    description = "gRPC health protocol: grpc.health.v1 Check must answer SERVING"
    extra = "grpc"
    extra_modules = ("grpc", "grpc_health")
    fields = {
        "target": Field("str", required=True, help="host:port"),
        "service": Field("str", default="", help='the service asked about ("": the server)'),
        "tls": Field("bool", default=False, help="a TLS channel, the certificate verified"),
        "ca_file": Field("str", help="CA bundle for tls (default: the system's)"),
    }

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        target = self.config["target"]
        host, _, port = target.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError("config.target", "must be host:port")
        if self.config.get("ca_file") and not self.config["tls"]:
            raise ConfigError("config.ca_file", "needs tls = true")

    async def check(self, timeout: float) -> ProbeResult:
        missing = needs_extra(self)
        if missing is not None:
            return missing
        import grpc
        from grpc_health.v1 import health_pb2

        cfg = self.resolved()
        service: str = cfg["service"]
        started = time.perf_counter()
        try:
            channel = _channel(cfg)
        except OSError:
            return ProbeResult.error("cannot read ca_file")
        try:
            check = channel.unary_unary(
                _METHOD,
                request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
                response_deserializer=health_pb2.HealthCheckResponse.FromString,
            )
            answer = await check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            return _refusal(exc, cfg, timeout, elapsed_ms(started))
        finally:
            await channel.close()
        word = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
        about = f"service {service!r}" if service else "the server"
        if answer.status == health_pb2.HealthCheckResponse.SERVING:
            return ProbeResult.connected(f"{about} is SERVING", elapsed_ms(started))
        return ProbeResult.error(f"{about} is {word}", elapsed_ms(started))


def _channel(cfg: dict[str, Any]) -> Any:
    import grpc

    # no retries and no waiting for a connection: one attempt is what a probe measures
    options = [("grpc.enable_retries", 0), ("grpc.max_reconnect_backoff_ms", 1000)]
    if not cfg["tls"]:
        return grpc.aio.insecure_channel(cfg["target"], options=options)
    roots = Path(cfg["ca_file"]).read_bytes() if cfg.get("ca_file") else None
    creds = grpc.ssl_channel_credentials(root_certificates=roots)
    return grpc.aio.secure_channel(cfg["target"], creds, options=options)


def _refusal(exc: Any, cfg: dict[str, Any], timeout: float, latency: float) -> ProbeResult:
    """An RPC that failed: not reaching the server is ``disconnected``; a server that
    answered (no health service, an unknown service, refused credentials) is ``error``."""
    import grpc

    code = exc.code()
    where = cfg["target"]
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return ProbeResult.disconnected(f"timed out after {timeout:g} s ({where})")
    if code == grpc.StatusCode.UNAVAILABLE:
        return ProbeResult.disconnected(f"unavailable: {_details(exc)} ({where})", latency)
    if code == grpc.StatusCode.NOT_FOUND:
        return ProbeResult.error(f"service {cfg['service']!r} is SERVICE_UNKNOWN", latency)
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return ProbeResult.error(f"no grpc.health.v1 health service ({where})", latency)
    return ProbeResult.error(f"{code.name}: {_details(exc)} ({where})", latency)


def _details(exc: Any) -> str:
    """grpc's details, short: they run on with the resolver's and the socket's words."""
    text = str(exc.details() or "").strip()
    lower = text.lower()
    if "connection refused" in lower:
        return "connection refused"
    if "dns resolution failed" in lower or "name resolution" in lower:
        return "DNS lookup failed"
    if "ssl" in lower or "handshake" in lower or "certificate" in lower:
        return "TLS handshake failed"
    return text.splitlines()[0][:200] if text else "no details"
