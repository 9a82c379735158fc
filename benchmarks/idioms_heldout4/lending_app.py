"""A library lending app: Django models with custom querysets and managers, lazy and
evaluated querysets, signals, views, Celery tasks and canvases, a management command."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from datetime import date, timedelta
from typing import Any

from celery import chain, group, shared_task
from django.conf import settings
from django.core.mail import send_mail, send_mass_mail
from django.core.management.base import BaseCommand, CommandParser
from django.db import models, transaction
from django.db.models import Count, F, Q
from django.db.models.signals import post_save, pre_delete
from django.dispatch import receiver
from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_POST

log = logging.getLogger(__name__)

LOAN_DAYS = 21
DAILY_FINE_CENTS = 25
MAX_ACTIVE_LOANS = 5


class LendingError(Exception):
    def __init__(self, reason: str, member_id: int) -> None:  # expect: plain
        super().__init__(f"member {member_id}: {reason}")
        self.reason = reason
        self.member_id = member_id


# -- querysets and managers ---------------------------------------------------------


class BookQuerySet(models.QuerySet):
    def available(self) -> BookQuerySet:  # expect: plain
        return self.filter(copies_available__gt=0)

    def with_loan_counts(self) -> BookQuerySet:  # expect: plain
        return self.annotate(loan_count=Count("loans"))

    def popular(self, limit: int = 10) -> list[Book]:  # expect: step
        return list(self.with_loan_counts().order_by("-loan_count")[:limit])


class LoanQuerySet(models.QuerySet):
    def active(self) -> LoanQuerySet:  # expect: plain
        return self.filter(returned_on__isnull=True)

    def overdue(self) -> LoanQuerySet:  # expect: step
        return self.active().filter(due_on__lt=timezone.now().date())

    def overdue_as_of(self, day: date) -> LoanQuerySet:  # expect: plain
        return self.active().filter(due_on__lt=day)

    def for_member(self, member_id: int) -> LoanQuerySet:  # expect: plain
        return self.filter(member_id=member_id).select_related("book")


class LoanManager(models.Manager.from_queryset(LoanQuerySet)):
    def open_loan(self, member: Member, book: Book) -> Loan:  # expect: step
        today = timezone.now().date()
        return self.create(
            member=member, book=book, borrowed_on=today, due_on=today + timedelta(days=LOAN_DAYS)
        )


# -- models -------------------------------------------------------------------------


class Author(models.Model):
    name = models.CharField(max_length=200)


class Book(models.Model):
    title = models.CharField(max_length=300)
    slug = models.SlugField(max_length=320, unique=True, blank=True)
    author = models.ForeignKey(Author, on_delete=models.PROTECT, related_name="books")
    isbn = models.CharField(max_length=13, unique=True)
    copies_total = models.PositiveIntegerField(default=1)
    copies_available = models.PositiveIntegerField(default=1)

    objects = BookQuerySet.as_manager()

    def __str__(self) -> str:  # expect: plain
        return f"{self.title} ({self.isbn})"

    def save(self, *args: Any, **kwargs: Any) -> None:  # expect: step
        if not self.slug:
            self.slug = slugify(f"{self.title}-{self.isbn}")
        super().save(*args, **kwargs)

    @property
    def display_title(self) -> str:  # expect: plain
        return self.title.strip().title()

    def author_name(self) -> str:  # expect: step
        return self.author.name


class Member(models.Model):
    card_number = models.CharField(max_length=12, unique=True)
    email = models.EmailField()
    fines_cents = models.PositiveIntegerField(default=0)
    is_suspended = models.BooleanField(default=False)

    def can_borrow(self, active_count: int) -> bool:  # expect: plain
        return not self.is_suspended and self.fines_cents == 0 and active_count < MAX_ACTIVE_LOANS

    def active_loan_count(self) -> int:  # expect: step
        return self.loans.filter(returned_on__isnull=True).count()

    def suspend(self, reason: str) -> None:  # expect: step
        log.warning("suspending member %s: %s", self.card_number, reason)
        self.is_suspended = True
        self.save(update_fields=["is_suspended"])


class Loan(models.Model):
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="loans")
    book = models.ForeignKey(Book, on_delete=models.PROTECT, related_name="loans")
    borrowed_on = models.DateField()
    due_on = models.DateField()
    returned_on = models.DateField(null=True, blank=True)

    objects = LoanManager()

    def days_overdue(self, today: date) -> int:  # expect: plain
        end = self.returned_on or today
        return max(0, (end - self.due_on).days)

    def fine_for(self, today: date) -> int:  # expect: plain
        return self.days_overdue(today) * DAILY_FINE_CENTS

    @property
    def is_overdue(self) -> bool:  # expect: step
        return self.returned_on is None and self.due_on < date.today()


# -- pure helpers -------------------------------------------------------------------


def normalise_isbn(raw: str) -> str:  # expect: plain
    digits = raw.replace("-", "").replace(" ", "").upper()
    if len(digits) not in (10, 13):
        raise ValueError(f"not an ISBN: {raw!r}")
    return digits


def search_filter(term: str) -> Q:  # expect: plain
    term = term.strip()
    return Q(title__icontains=term) | Q(author__name__icontains=term) | Q(isbn=term)


def search_books(term: str) -> BookQuerySet:  # expect: plain
    return Book.objects.filter(search_filter(term)).select_related("author").order_by("title")


def chunked(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:  # expect: plain
    for start in range(0, len(items), size):
        yield items[start : start + size]


def reminder_text(title: str, due_on: date, fine_cents: int) -> str:  # expect: plain
    lines = [f'"{title}" was due back on {due_on:%d %B %Y}.']
    if fine_cents:
        lines.append(f"The fine so far is {fine_cents // 100}.{fine_cents % 100:02d} EUR.")
    return "\n".join(lines)


# -- services -----------------------------------------------------------------------


@transaction.atomic
def borrow(member_id: int, book_id: int) -> Loan:  # expect: step
    member = Member.objects.select_for_update().get(pk=member_id)
    book = Book.objects.select_for_update().get(pk=book_id)
    if not member.can_borrow(member.active_loan_count()):
        raise LendingError("cannot borrow", member_id)
    if book.copies_available == 0:
        raise LendingError("no copy available", member_id)
    Book.objects.filter(pk=book.pk).update(copies_available=F("copies_available") - 1)
    return Loan.objects.open_loan(member, book)


def return_book(loan: Loan, today: date) -> int:  # expect: step
    fine = loan.fine_for(today)
    loan.returned_on = today
    loan.save(update_fields=["returned_on"])
    Book.objects.filter(pk=loan.book_id).update(copies_available=F("copies_available") + 1)
    return fine


def charge_fine(member_id: int, cents: int) -> None:  # expect: step
    Member.objects.filter(pk=member_id).update(fines_cents=F("fines_cents") + cents)


def settle_return(loan: Loan, today: date) -> int:  # expect: workflow
    fine = return_book(loan, today)
    if fine:
        charge_fine(loan.member_id, fine)
    return fine


def borrow_many(member_id: int, book_ids: Sequence[int]) -> list[Loan]:  # expect: workflow
    return [borrow(member_id, book_id) for book_id in book_ids]


def overdue_loan_ids() -> list[int]:  # expect: step
    return list(Loan.objects.overdue().values_list("id", flat=True))


def loans_page(member_id: int, offset: int, limit: int = 20) -> LoanQuerySet:  # expect: plain
    return Loan.objects.for_member(member_id).order_by("-borrowed_on")[offset : offset + limit]


# -- Celery tasks and canvases ------------------------------------------------------


@shared_task(bind=True, max_retries=3, default_retry_delay=60)
def send_overdue_reminder(self, loan_id: int) -> None:  # expect: step
    loan = Loan.objects.select_related("member", "book").get(pk=loan_id)
    fine = loan.fine_for(timezone.now().date())
    send_mail(
        subject="Overdue loan",
        message=reminder_text(loan.book.title, loan.due_on, fine),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[loan.member.email],
    )


@shared_task
def recompute_fines(today_iso: str) -> int:  # expect: step
    today = date.fromisoformat(today_iso)
    updated = 0
    for loan in Loan.objects.overdue_as_of(today).iterator(chunk_size=500):
        Member.objects.filter(pk=loan.member_id).update(fines_cents=loan.fine_for(today))
        updated += 1
    return updated


@shared_task
def refresh_availability(book_id: int) -> int:  # expect: step
    active = Loan.objects.active().filter(book_id=book_id).count()
    Book.objects.filter(pk=book_id).update(copies_available=F("copies_total") - active)
    return active


@shared_task
def notify_librarians(fined: int) -> None:  # expect: step
    body = f"Fines were recomputed for {fined} overdue loans."
    sender = settings.DEFAULT_FROM_EMAIL
    messages = [("Nightly lending report", body, sender, [addr]) for addr in settings.LIBRARIANS]
    send_mass_mail(messages, fail_silently=False)


def reminder_group(loan_ids: Sequence[int]):  # expect: plain
    return group(send_overdue_reminder.s(loan_id) for loan_id in loan_ids)


def nightly_pipeline(today: date):  # expect: plain
    return chain(recompute_fines.si(today.isoformat()), notify_librarians.s())


def schedule_reminders(loan_ids: Sequence[int]) -> None:  # expect: step
    reminder_group(loan_ids).apply_async(queue="mail")


def start_nightly(today: date) -> str:  # expect: step
    return nightly_pipeline(today).apply_async(countdown=5).id


def remind_overdue() -> int:  # expect: workflow
    ids = overdue_loan_ids()
    for batch in chunked(ids, 200):
        schedule_reminders(batch)
    log.info("queued reminders for %d loans", len(ids))
    return len(ids)


def nightly(today: date) -> str:  # expect: workflow
    queued = remind_overdue()
    log.info("nightly run for %s: %d reminders queued", today, queued)
    return start_nightly(today)


# -- signals ------------------------------------------------------------------------


@receiver(post_save, sender=Loan)
def loan_saved(sender: type[Loan], instance: Loan, created: bool, **kwargs: Any):  # expect: step
    if created:
        refresh_availability.delay(instance.book_id)


@receiver(pre_delete, sender=Book)
def book_deleting(sender: type[Book], instance: Book, **kwargs: Any) -> None:  # expect: step
    if instance.loans.filter(returned_on__isnull=True).exists():
        raise models.ProtectedError("book is on loan", {instance})


@receiver(post_save, sender=Member)
def member_saved(sender, instance: Member, created: bool, **kwargs: Any) -> None:  # expect: plain
    if created:
        log.info("new member %s", instance.card_number)


# -- views --------------------------------------------------------------------------


@require_POST
def borrow_view(request: HttpRequest, member_id: int, book_id: int):  # expect: workflow
    try:
        loan = borrow(member_id, book_id)
    except LendingError as exc:
        return JsonResponse({"error": exc.reason}, status=409)
    return JsonResponse({"loan": loan.pk, "due_on": loan.due_on.isoformat()}, status=201)


@require_GET
def book_detail(request: HttpRequest, slug: str) -> JsonResponse:  # expect: step
    book = get_object_or_404(Book.objects.select_related("author"), slug=slug)
    return JsonResponse({"title": book.title, "author": book.author.name, "isbn": book.isbn})


@require_GET
def popular_books(request: HttpRequest) -> JsonResponse:  # expect: workflow
    books = Book.objects.popular(limit=10)
    return JsonResponse({"books": [{"title": b.title, "loans": b.loan_count} for b in books]})


@require_GET
def librarian_dashboard(request: HttpRequest) -> JsonResponse:  # expect: workflow
    overdue = overdue_loan_ids()
    popular = Book.objects.popular(limit=5)
    return JsonResponse({"overdue": len(overdue), "popular": [b.title for b in popular]})


@require_GET
def search_view(request: HttpRequest, term: str) -> JsonResponse:  # expect: step
    books = list(search_books(term)[:20])
    return JsonResponse({"results": [{"slug": b.slug, "title": b.display_title} for b in books]})


# -- management command -------------------------------------------------------------


class Command(BaseCommand):
    help = "Queue overdue reminders and recompute fines."

    def add_arguments(self, parser: CommandParser) -> None:  # expect: plain
        parser.add_argument("--date", required=True, help="the day to fine for (YYYY-MM-DD)")

    def handle(self, *args: Any, **options: Any) -> None:  # expect: workflow
        today = date.fromisoformat(options["date"])
        reminded = remind_overdue()
        fined = recompute_fines(today.isoformat())
        log.info("queued %d reminders, recomputed %d fines", reminded, fined)
