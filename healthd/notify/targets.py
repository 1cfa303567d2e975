"""What `notifications add` decides about a new target before it is stored: its format
(an http(s) URL is a webhook in one of the HTTP formats; any other URL is Apprise's, and
must be one Apprise can use), and whether its secret fits. Errors are ConfigErrors naming
the option, never quoting the URL.
"""

from __future__ import annotations

from healthd.core.errors import ConfigError
from healthd.notify import formats

APPRISE = "apprise"


def decide(
    url: str | None, fmt: str | None, url_field: str, signed: bool, by_reference: bool
) -> str:
    """The format of a target whose URL is ``url`` (None: given by a reference the CLI
    cannot read; the daemon reads it at send time). ``url_field`` names where the URL came
    from (URL, --url-env, --url-file) in errors."""
    if fmt is not None and fmt not in formats.FORMATS:
        raise ConfigError(
            "--format", f"unknown format {fmt!r} (known: {', '.join(formats.FORMATS)})"
        )
    if url is None:
        if fmt is None:
            raise ConfigError(
                "--format",
                f"the URL of {url_field} cannot be read here to tell its kind: give --format"
                f" ({APPRISE} for an Apprise URL, {'/'.join(formats.HTTP_FORMATS)} for a webhook)",
            )
        chosen = fmt
    elif url.startswith(("http://", "https://")):
        if fmt == APPRISE:
            raise ConfigError(
                "--format",
                "an http(s) URL is a webhook (formats: "
                f"{', '.join(formats.HTTP_FORMATS)}); Apprise's JSON hook is json://",
            )
        chosen = fmt or formats.DEFAULT
    else:
        scheme = url.partition("://")[0].lower() if "://" in url else ""
        if fmt is not None and fmt != APPRISE:
            raise ConfigError(url_field, f"must start with http:// or https:// for --format {fmt}")
        # Apprise (a fifth of a second to import, a second to load its plugins) only here:
        # every other command of the CLI goes without it
        from healthd.notify import apprise_target

        try:
            apprise_target.check(url)
        except apprise_target.Refused as exc:
            problem = str(exc)
            if exc.unknown:
                problem = "must start with http:// or https://, or be a URL Apprise knows"
                problem += f" (no Apprise service speaks {scheme}://)" if scheme else ""
            raise ConfigError(url_field, problem) from None
        chosen = APPRISE
    target = formats.FORMATS[chosen]
    if target.transport == APPRISE and signed:
        raise ConfigError(
            "--secret-env",
            "an Apprise target is not signed: its token goes in its URL (--url-env or --url-file"
            " keep it out of the table)",
        )
    if target.needs_secret and not signed:
        raise ConfigError(
            "--format", f"{chosen} needs {target.needs_secret} (--secret-env or --secret-file)"
        )
    return chosen
