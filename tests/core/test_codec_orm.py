"""The codec records SQLAlchemy-mapped instances: their loaded columns, back detached."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from autodurable._core._codec import Codec
from autodurable._errors import DecodeError


class Base(DeclarativeBase):
    pass


class Invoice(Base):
    __tablename__ = "invoices"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str]
    cents: Mapped[int]
    paid: Mapped[bool] = mapped_column(default=False)


def _rows() -> list[Invoice]:
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add_all([Invoice(number="A-1", cents=500), Invoice(number="A-2", cents=7)])
        session.commit()
        rows = list(session.scalars(select(Invoice).order_by(Invoice.id)))
        for row in rows:
            assert row.number  # loaded
        return rows


def test_mapped_instances_round_trip_as_detached_instances_of_their_class() -> None:
    codec = Codec()
    text = codec.encode(_rows())
    back = codec.decode(text)
    assert [type(row) for row in back] == [Invoice, Invoice]
    assert [(r.id, r.number, r.cents, r.paid) for r in back] == [
        (1, "A-1", 500, False),
        (2, "A-2", 7, False),
    ]
    assert '"~":"orm"' in text and f"{__name__}:Invoice" in text


def test_expired_columns_are_not_loaded_to_be_recorded() -> None:
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add(Invoice(number="B-1", cents=1))
        session.commit()  # expires every attribute: reading one would be a query
        row = session.scalars(select(Invoice)).one()
        session.expire(row, ["cents"])
        queries: list[str] = []
        from sqlalchemy import event

        event.listen(engine, "before_cursor_execute", lambda *a: queries.append(a[2]))
        text = Codec().encode(row)
        assert queries == []
    assert '"cents"' not in text and '"number":"B-1"' in text


def test_a_recorded_orm_class_must_be_mapped() -> None:
    forged = '{"~":"orm","c":"collections:OrderedDict","v":{}}'
    with pytest.raises(DecodeError, match="not a class of the recorded kind"):
        Codec().decode(forged)


def test_decoding_in_a_fresh_process_configures_the_mappers_first(tmp_path) -> None:
    import subprocess
    import sys
    import textwrap

    (tmp_path / "models.py").write_text(
        textwrap.dedent(
            """
            from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

            class Base(DeclarativeBase):
                pass

            class Row(Base):
                __tablename__ = "rows"
                id: Mapped[int] = mapped_column(primary_key=True)
                name: Mapped[str]
            """
        )
    )
    code = (
        "import models\n"
        "from autodurable._core._codec import Codec\n"
        'row = Codec().decode(\'{"~":"orm","c":"models:Row","v":{"id":3,"name":"x"}}\')\n'
        "print(type(row).__name__, row.id, row.name)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Row 3 x\n"
