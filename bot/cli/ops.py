"""Commands that run or look after the bot: run, backup, doctor."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bot.config import Config
from bot.errors import BriefbotError
from bot.logs import redact, setup_logging

if TYPE_CHECKING:
    pass

from bot.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    TOKEN_REJECTED,
    CliError,
)


def _not_invalid_token(record: logging.LogRecord) -> bool:
    from telegram.error import InvalidToken

    error = record.exc_info[1] if record.exc_info else None
    return not isinstance(error, InvalidToken) and "Invalid token" not in record.getMessage()


def cmd_run(args: argparse.Namespace, config: Config) -> int:
    """The real bot. Synchronous: python-telegram-bot owns the event loop."""
    from telegram.error import InvalidToken

    from bot.telegram.app import run

    token = config.token()
    secrets = [token, config.telegram.webhook.secret_token or ""]
    setup_logging(args.log_level or config.log_level, secrets, args.log_format)
    # PTB logs a rejected token with a traceback before raising it; the line below says it.
    logging.getLogger("telegram.ext").addFilter(_not_invalid_token)
    try:
        run(config, token)
    except InvalidToken:
        raise CliError(TOKEN_REJECTED, EXIT_USAGE) from None
    except BriefbotError:
        raise
    except Exception as err:
        # Start-up failed (post_shutdown has closed what was opened): one line, not a
        # traceback, and no secret in it.
        raise CliError(f"cannot start: {redact(f'{type(err).__name__}: {err}', secrets)}") from None
    return EXIT_OK


async def cmd_backup(args: argparse.Namespace, config: Config) -> int:
    """A consistent copy of the database, safe while the bot runs (docs/operations-backup.md)."""
    from bot.db.backup import BackupError, backup

    try:
        summary = await backup(config.storage_path, Path(args.file), force=args.force)
    except BackupError as err:
        raise CliError(str(err)) from None
    print(summary.line())
    return EXIT_OK


async def cmd_doctor(args: argparse.Namespace) -> int:
    """Loads the config itself: a config that does not load is its first FAIL line."""
    from bot.doctor import run_checks

    return await run_checks(args.config, sys.stdout)


# -- parser ------------------------------------------------------------------------------
