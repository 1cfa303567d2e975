"""One attempt at an Apprise target (email, chat, push: any URL Apprise speaks), for the
sender (healthd/notify/sender.py) and `healthd notifications test`.

Apprise's sends block, so they run on a small pool of threads of their own, never on the
daemon's event loop: at most POOL_SIZE at once, each cut at its timeout (the attempt then
counts as failed and the outbox retries it). A cut send's thread cannot be killed; the
plugin's own socket timeouts are lowered to the attempt's so that it ends soon after, and
its pool slot stays taken until it does, so hanging targets never add threads.

Apprise's logging can quote a URL, a payload or a token: its logger is taken off the root
(nothing of it reaches healthd's log), and the lines of one attempt are captured per
thread and returned scrubbed of every part of the URL but its scheme and host.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple
from urllib.parse import unquote

import apprise

from healthd.core.secrets import strip_url_credentials
from healthd.core.words import CONNECTED, FLAPPING_STARTED, FLAPPING_STOPPED, TRANSITION
from healthd.notify import message
from healthd.notify.urls import authority, names_a_host

POOL_SIZE = 4
ANSWER_CHARS = 500
# Apprise's own masking of a secret in a URL ("t...3"): still a secret's first and last
_MASKED = re.compile(r"(?<![\w.])\w\.\.\.\w(?![\w.])")


class Outcome(NamedTuple):
    ok: bool
    answer: str  # what the target (or Apprise about it) said, scrubbed


class Refused(ValueError):
    """A URL Apprise cannot use; the message names its scheme, never the URL. ``unknown``:
    no Apprise service has that scheme (or it is no URL at all)."""

    def __init__(self, problem: str, unknown: bool = False) -> None:
        super().__init__(problem)
        self.unknown = unknown


class _Capture(logging.Handler):
    """Apprise's log lines, kept only for the threads that asked (record.thread is the
    emitting thread's ident)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self._lines: dict[int, list[tuple[int, str]]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        lines = self._lines.get(record.thread or 0)
        if lines is not None and len(lines) < 20:
            with contextlib.suppress(Exception):
                lines.append((record.levelno, record.getMessage()))

    @contextlib.contextmanager
    def capture(self) -> Iterator[list[tuple[int, str]]]:
        ident = threading.get_ident()
        lines: list[tuple[int, str]] = []
        self._lines[ident] = lines
        try:
            yield lines
        finally:
            self._lines.pop(ident, None)


_CAPTURE = _Capture()
_APPRISE_LOG = logging.getLogger("apprise")
_APPRISE_LOG.handlers[:] = [_CAPTURE]
_APPRISE_LOG.propagate = False
# DEBUG and TRACE carry payloads and request details: not even formatted
_APPRISE_LOG.setLevel(logging.INFO)

_ASSET = apprise.AppriseAsset(app_id="healthd", app_desc="healthd", storage_mode="memory")


def secrets_of(url: str) -> list[str]:
    """Every part of ``url`` that may be a credential: all but its scheme, a host that
    names a host, and its port; decoded too. Short parts are left (they would blank out
    ordinary words of a message and are no credential)."""
    found = authority(url)
    rest = url.partition("://")[2]
    netloc, _, tail = rest.partition("/") if "/" in rest else (rest, "", "")
    pieces = [url]
    userinfo, at, hostport = netloc.rpartition("@")
    always = userinfo.split(":", 1) if at else []  # a user name or password of any length
    if found is not None and not names_a_host(found[1]):
        pieces.append(hostport)
        pieces += hostport.split(":")
    path, _, query = tail.partition("?")
    if "?" in netloc:
        query = netloc.partition("?")[2]
    pieces += path.split("/")
    for pair in re.split(r"[&;]", query):
        pieces.append(pair.partition("=")[2])
    kept = [p for p in pieces if len(p) >= 4] + [p for p in always if p]
    out = set(kept) | {unquote(p) for p in kept}
    return sorted(out, key=len, reverse=True)


def scrub(text: str, url: str) -> str:
    for secret in secrets_of(url):
        if len(secret) < 4:  # a short user name or password: where it stands as a word
            text = re.sub(rf"(?<![^\W_]){re.escape(secret)}(?![^\W_])", "***", text)
        else:
            text = text.replace(secret, "***")
    text = _MASKED.sub("***", text)
    return strip_url_credentials(text)


def _answer(lines: list[tuple[int, str]], url: str, failed: bool) -> str:
    chosen = [m for lv, m in lines if lv >= logging.WARNING] if failed else []
    chosen = chosen or [m for _, m in lines]
    text = scrub(" ".join(" ".join(chosen).split()), url)
    return text[:ANSWER_CHARS]


_LOADED = threading.Lock()
_loaded = False


def _load_plugins() -> None:
    """Load Apprise's plugins once per process (about a second), before any send: its
    email plugin imports a module Python deprecates (imghdr, through PGPy), a warning that
    is Apprise's to fix and no concern of an operator's."""
    global _loaded
    with _LOADED:
        if _loaded:
            return
        from apprise.manager_plugins import NotificationManager

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            NotificationManager().load_modules()  # type: ignore[no-untyped-call]
        _loaded = True


def _instance(url: str, lines: list[tuple[int, str]]) -> apprise.NotifyBase:
    scheme = url.partition("://")[0].lower()
    _load_plugins()
    plugin = apprise.Apprise.instantiate(url, asset=_ASSET)
    if plugin is None:
        if not _known(scheme):
            raise Refused(f"no Apprise service speaks {scheme}://", unknown=True)
        why = _answer(lines, url, failed=True)
        raise Refused(f"Apprise cannot use this {scheme}:// URL" + (f": {why}" if why else ""))
    return plugin


def _known(scheme: str) -> bool:
    from apprise.manager_plugins import NotificationManager

    # the plugin registry, a singleton (untyped in Apprise 2.x)
    return scheme in NotificationManager()  # type: ignore[no-untyped-call]


def check(url: str) -> None:
    """Raise Refused when Apprise does not know ``url``'s scheme or cannot use the URL."""
    if "://" not in url:
        raise Refused("is not a URL (scheme://...)", unknown=True)
    with _CAPTURE.capture() as lines:
        _instance(url, lines)


def notify_type(payload: dict[str, object]) -> str:
    """How Apprise colours the message (an email's or a chat's badge, a push's priority)."""
    event = payload.get("event")
    if event in (FLAPPING_STARTED, FLAPPING_STOPPED):
        return str(apprise.NotifyType.WARNING.value)
    if event == TRANSITION:
        good = payload.get("to") == CONNECTED
        return str((apprise.NotifyType.SUCCESS if good else apprise.NotifyType.FAILURE).value)
    return str(apprise.NotifyType.INFO.value)


def send_blocking(url: str, msg: message.Message, kind: str, timeout: float) -> Outcome:
    """One send, in the calling thread; never raises."""
    with _CAPTURE.capture() as lines:
        try:
            plugin = _instance(url, lines)
        except Refused as exc:
            return Outcome(False, str(exc))
        for attr in ("socket_connect_timeout", "socket_read_timeout"):
            current = getattr(plugin, attr, None)
            if isinstance(current, int | float):
                setattr(plugin, attr, min(float(current), timeout))
        try:
            ok = bool(
                plugin.notify(
                    body=msg.body,
                    title=msg.title,
                    notify_type=kind,
                    body_format=apprise.NotifyFormat.TEXT,
                )
            )
        except Exception as exc:  # noqa: BLE001 - a plugin's bug is a failed attempt, not a crash
            return Outcome(False, f"Apprise failed: {type(exc).__name__}")
        answer = _answer(lines, url, failed=not ok)
        return Outcome(ok, answer or ("accepted" if ok else "refused (Apprise said no more)"))


_POOL = ThreadPoolExecutor(max_workers=POOL_SIZE, thread_name_prefix="healthd-apprise")
_slots: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}


async def send(url: str, msg: message.Message, kind: str, timeout: float) -> Outcome:
    """One send off the event loop: waits at most ``timeout`` for a free slot, then at most
    ``timeout`` for the target."""
    loop = asyncio.get_running_loop()
    if not _loaded:
        # loading Apprise's plugins (once, about a second) is not the target's time
        await loop.run_in_executor(_POOL, _load_plugins)
    slots = _slots.setdefault(loop, asyncio.Semaphore(POOL_SIZE))
    try:
        await asyncio.wait_for(slots.acquire(), timeout)
    except TimeoutError:
        return Outcome(False, f"not sent: {POOL_SIZE} Apprise sends busy for {timeout:g} s")
    future = loop.run_in_executor(_POOL, send_blocking, url, msg, kind, timeout)
    # the slot is the thread's: freed when the send ends, even one no longer waited for
    future.add_done_callback(lambda _: slots.release())
    try:
        return await asyncio.wait_for(asyncio.shield(future), timeout)
    except TimeoutError:
        return Outcome(False, f"timed out after {timeout:g} s")
