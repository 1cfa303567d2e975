"""The `healthd` command: parse, call, print. No SQL and no probing live here.

One module per command group; `cli_entry` (the console script) wraps the click group in
the one-line error policy.
"""

from __future__ import annotations

import click

from healthd.cli.common import fail
from healthd.cli.notifications import notifications, webhooks
from healthd.cli.operations import maintenance, prune
from healthd.cli.root import main
from healthd.cli.sources import sources
from healthd.core.errors import HealthdError

for _command in (sources, notifications, webhooks, maintenance, prune):
    main.add_command(_command)

__all__ = ["cli_entry", "main"]


def cli_entry() -> None:
    """Entry point with the one-line error policy: no traceback reaches a user."""
    try:
        main.main(standalone_mode=False)
    except click.exceptions.Abort:
        fail("aborted", 130)
    except click.ClickException as exc:
        fail(exc.format_message(), exc.exit_code)
    except HealthdError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except SystemExit:
        raise
    except Exception as exc:  # noqa: BLE001 - last resort: one line, never a traceback
        from healthd.core.secrets import strip_url_credentials

        fail(f"internal error: {type(exc).__name__}: {strip_url_credentials(str(exc))}")
