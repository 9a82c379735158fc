"""Databases through ORMs: SQLAlchemy sessions, engines and connections, SQLModel, Django.

Building a statement (``select(...)``, ``Q(...)``, a lazy queryset) runs no
query; executing, iterating, counting, saving and committing do.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from decimal import Decimal

from django.db import models, transaction
from django.db.models import Count, F, Q, QuerySet, Sum
from django.utils import timezone
from sqlalchemy import Connection, Engine, create_engine, func, select, text, update
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlmodel import Field, SQLModel
from sqlmodel import Session as ModelSession
from sqlmodel import select as model_select

engine = create_engine("postgresql+psycopg://app@db/app", pool_pre_ping=True)
SessionLocal = sessionmaker(bind=engine, expire_on_commit=False)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(unique=True)
    name: Mapped[str] = mapped_column(default="")
    active: Mapped[bool] = mapped_column(default=True)
    api_token: Mapped[str | None] = mapped_column(default=None)

    def display(self) -> str:  # expect: plain
        return self.name or self.email.split("@")[0]


# --- SQLAlchemy: sessions and connections as parameters -------------------------


def get_user(session: Session, user_id: int) -> User | None:  # expect: step
    return session.get(User, user_id)


def find_by_email(session: Session, email: str) -> User | None:  # expect: step
    return session.execute(select(User).where(User.email == email)).scalar_one_or_none()


def active_users(session: Session) -> Sequence[User]:  # expect: step
    return session.scalars(select(User).where(User.active)).all()


def create_user(session: Session, email: str, name: str = "") -> User:  # expect: step
    user = User(email=email, name=name)
    session.add(user)
    session.commit()
    session.refresh(user)
    return user


def stage(session: Session, user: User) -> None:  # expect: plain
    session.add(user)


def active_query(domain: str):  # expect: plain
    return select(User).where(User.active, User.email.endswith(f"@{domain}")).order_by(User.id)


def deactivate(session, user_ids):  # expect: step
    session.execute(update(User).where(User.id.in_(user_ids)).values(active=False))
    session.commit()


def users_in_domain(session: Session, domain: str) -> list[User]:  # expect: step
    return list(session.scalars(active_query(domain)))


def count_users(conn: Connection) -> int:  # expect: step
    return conn.execute(text("SELECT count(*) FROM users")).scalar_one()


def table_sizes(engine: Engine) -> dict[str, int]:  # expect: step
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT relname, n_live_tup FROM pg_stat_user_tables"))
        return {name: count for name, count in rows}


def purge_old(engine: Engine, days: int) -> int:  # expect: step
    statement = text("DELETE FROM events WHERE created < now() - make_interval(days => :d)")
    with engine.begin() as conn:
        return conn.execute(statement, {"d": days}).rowcount


def counts_by_state(session: Session) -> dict[bool, int]:  # expect: step
    rows = session.execute(select(User.active, func.count()).group_by(User.active)).all()
    return {bool(active): n for active, n in rows}


def new_session() -> Session:  # expect: plain
    return SessionLocal()


def user_emails(ids: Iterable[int]) -> list[str]:  # expect: step
    with SessionLocal() as session:
        return [u.email for u in session.scalars(select(User).where(User.id.in_(list(ids))))]


def onboard(email: str, name: str) -> int:  # expect: workflow
    with SessionLocal() as session:
        user = find_by_email(session, email) or create_user(session, email, name)
        return user.id


def weekly_cleanup(engine: Engine) -> dict[str, int]:  # expect: workflow
    purge_old(engine, 7)
    return table_sizes(engine)


class UserRepository:
    def __init__(self, session: Session) -> None:  # expect: plain
        self.session = session

    def get(self, user_id: int) -> User | None:  # expect: step
        return self.session.get(User, user_id)

    def add(self, user: User) -> None:  # expect: plain
        self.session.add(user)

    def save(self) -> None:  # expect: step
        self.session.commit()

    def emails(self, ids: list[int]) -> list[str]:  # expect: workflow
        return [user.email for user_id in ids if (user := self.get(user_id)) is not None]

    def register(self, email: str) -> User:  # expect: workflow
        user = User(email=email)
        self.add(user)
        self.save()
        return user


# --- SQLModel ---------------------------------------------------------------------


class Hero(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str
    power: int = 0


def heroes_stronger_than(engine, power: int) -> list[Hero]:  # expect: step
    with ModelSession(engine) as session:
        return list(session.exec(model_select(Hero).where(Hero.power > power)).all())


def add_hero(session: ModelSession, name: str, power: int) -> Hero:  # expect: step
    hero = Hero(name=name, power=power)
    session.add(hero)
    session.commit()
    return hero


def hero_card(hero: Hero) -> str:  # expect: plain
    return f"{hero.name} ({hero.power})"


# --- Django -----------------------------------------------------------------------


class Customer(models.Model):
    email = models.EmailField(unique=True)
    name = models.CharField(max_length=200)
    created = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:  # expect: plain
        return f"{self.name} <{self.email}>"


class Order(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="orders")
    total = models.DecimalField(max_digits=10, decimal_places=2)
    status = models.CharField(max_length=20, default="new")
    placed_at = models.DateTimeField(auto_now_add=True)
    paid_at = models.DateTimeField(null=True)

    def mark_paid(self) -> None:  # expect: step
        self.paid_at = timezone.now()
        self.status = "paid"
        self.save(update_fields=["paid_at", "status"])

    def label(self) -> str:  # expect: plain
        return f"#{self.pk} {self.status} {self.total}"

    def customer_email(self) -> str:  # expect: step
        return self.customer.email


def find_customer(email: str) -> Customer | None:  # expect: step
    return Customer.objects.filter(email__iexact=email).first()


def register_customer(email: str, name: str) -> Customer:  # expect: step
    customer, _ = Customer.objects.get_or_create(email=email, defaults={"name": name})
    return customer


def unpaid_orders() -> QuerySet[Order]:  # expect: plain
    return Order.objects.filter(paid_at__isnull=True).select_related("customer")


def unpaid_total() -> Decimal:  # expect: step
    return unpaid_orders().aggregate(total=Sum("total"))["total"] or Decimal(0)


def recent_orders(customer: Customer, days: int = 30) -> list[Order]:  # expect: step
    since = timezone.now() - timedelta(days=days)
    return list(customer.orders.filter(placed_at__gte=since))


def add_order(customer: Customer, total: Decimal) -> Order:  # expect: step
    return customer.orders.create(total=total)


def cancel_order(order_id: int) -> int:  # expect: step
    return Order.objects.filter(pk=order_id).update(status="cancelled")


def delete_customer(customer: Customer) -> None:  # expect: step
    customer.delete()


def rename(customer, name):  # expect: step
    customer.name = name
    customer.save()


def top_customers(limit: int = 10) -> list[Customer]:  # expect: step
    return list(Customer.objects.annotate(n=Count("orders")).order_by("-n")[:limit])


def search_filter(term: str) -> Q:  # expect: plain
    return Q(name__icontains=term) | Q(email__icontains=term)


def search_customers(term: str) -> list[Customer]:  # expect: step
    return list(Customer.objects.filter(search_filter(term)))


def has_orders(customer: Customer) -> bool:  # expect: step
    return customer.orders.exists()


def bump_totals(pct: int) -> int:  # expect: step
    return Order.objects.filter(status="new").update(total=F("total") * (100 + pct) / 100)


@transaction.atomic
def transfer_orders(src: Customer, dst: Customer) -> int:  # expect: step
    return src.orders.update(customer=dst)


def order_summary(order: Order) -> dict[str, str]:  # expect: plain
    return {"id": str(order.pk), "total": str(order.total), "status": order.status}


def pay_order(order_id: int) -> Order:  # expect: step
    order = Order.objects.get(pk=order_id)
    order.mark_paid()
    return order


def settle(order_ids: Iterable[int]) -> int:  # expect: workflow
    return sum(1 for order_id in order_ids if pay_order(order_id).status == "paid")


def welcome_back(email: str, name: str) -> dict[str, int]:  # expect: workflow
    customer = find_customer(email) or register_customer(email, name)
    return {"id": customer.pk, "recent": len(recent_orders(customer))}


def merge_customers(keep: Customer, drop: Customer) -> int:  # expect: workflow
    moved = transfer_orders(drop, keep)
    delete_customer(drop)
    return moved


def summaries(order_ids: list[int]) -> list[dict[str, str]]:  # expect: workflow
    return [order_summary(pay_order(order_id)) for order_id in order_ids]
