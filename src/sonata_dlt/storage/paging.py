"""The one paged list query: how many rows match, and one page of them in a stable order.

Every list operation of the APIs (orders, products, bills, reports, checkpoints...) answers ``X-Total-Count`` and
one page; the count and the page are read in the same session, so they describe the same snapshot.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from sqlmodel import Session, func, select

M = TypeVar("M")


def fetch_page(
    session: Session,
    model: type[M],
    conditions: Sequence[Any],
    *,
    order_by: Sequence[Any],
    offset: int,
    limit: int,
) -> tuple[list[M], int]:
    """Rows of ``model`` matching every condition, ``offset``/``limit`` in ``order_by`` order, and their count."""
    return fetch_selection(session, select(model), model, conditions, order_by=order_by, offset=offset, limit=limit)


def fetch_selection(
    session: Session,
    selection: Any,  # a sqlmodel select of one or more columns
    count_from: type[Any],
    conditions: Sequence[Any],
    *,
    order_by: Sequence[Any],
    offset: int,
    limit: int,
) -> tuple[list[Any], int]:
    """The same for any selection (a join, a few columns); matches are counted over ``count_from``, whose rows
    the selection yields one each."""
    total = session.exec(select(func.count()).select_from(count_from).where(*conditions)).one()
    rows = session.exec(selection.where(*conditions).order_by(*order_by).offset(offset).limit(limit)).all()
    return list(rows), int(total)
