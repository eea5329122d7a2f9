"""The gradebook's database URL: the driver it names, and a check that it can be reached.

nbgrader keeps its gradebook in any database SQLAlchemy reaches; SQLite is the default. For
PostgreSQL the kit installs psycopg 3 (the ``postgres`` extra), while SQLAlchemy reads a plain
``postgresql://`` URL as psycopg 2. :func:`gradebook_url` names psycopg 3 in such a URL, and
:func:`check_gradebook` turns a missing driver, a bad URL or an unreachable server into one line
for the instructor instead of a traceback from deep inside nbgrader.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import sqlalchemy
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

__all__ = ["GradebookUnavailable", "check_gradebook", "gradebook_url", "shown", "sqlite_path"]

#: The URL schemes that mean "PostgreSQL, with the default driver".
_PLAIN_POSTGRES = ("postgresql", "postgres")
_INSTALL_HINT = "install the driver with: pip install 'backprop-course[postgres]' (psycopg 3)"


class GradebookUnavailable(Exception):
    """The gradebook's database cannot be used; the message is one line for the instructor."""


def gradebook_url(url: str) -> str:
    """``url`` with PostgreSQL's driver named: ``postgresql://…`` becomes ``postgresql+psycopg://…``.

    Any other URL (SQLite, ``postgresql+psycopg2://``, another database) is returned unchanged.
    """
    scheme, sep, rest = url.partition("://")
    if sep and scheme.lower() in _PLAIN_POSTGRES:
        return f"postgresql+psycopg://{rest}"
    return url


def sqlite_path(url: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL; None for another database."""
    return Path(url[len("sqlite:///") :]) if url.startswith("sqlite:///") else None


def shown(url: str) -> str:
    """``url`` as it may be printed: without its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<not a database URL>"


def check_gradebook(url: str, *, timeout: int = 10) -> None:
    """Raise :class:`GradebookUnavailable` unless the database at ``url`` can be connected to.

    SQLite needs no server and is not opened here (nbgrader creates the file). For a server,
    one connection is opened and closed, waiting at most ``timeout`` seconds.
    """
    try:
        parsed: URL = make_url(url)
    except ArgumentError:
        raise GradebookUnavailable(f"not a database URL: {url!r} (expected e.g. postgresql://user@host/db)") from None
    if parsed.get_backend_name() == "sqlite":
        return
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() == "psycopg":
        if importlib.util.find_spec("psycopg") is None:
            raise GradebookUnavailable(f"the gradebook {shown(url)} needs PostgreSQL's driver: {_INSTALL_HINT}")
    connect_args = {"connect_timeout": timeout} if parsed.get_backend_name() == "postgresql" else {}
    try:
        engine = sqlalchemy.create_engine(parsed, connect_args=connect_args)
    except (NoSuchModuleError, ModuleNotFoundError) as exc:
        raise GradebookUnavailable(f"the gradebook {shown(url)} needs a driver that is not installed: {exc}") from None
    try:
        with engine.connect():
            pass
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        raise GradebookUnavailable(
            f"cannot reach the gradebook {shown(url)}: {reason[0] if reason else type(exc).__name__}"
        ) from None
    finally:
        engine.dispose()
