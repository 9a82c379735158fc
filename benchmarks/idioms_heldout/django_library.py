"""A lending library as a Django app: models, a queryset and its manager,
services, views, a signal, a Celery task and a management command.

A real project splits this over models.py, services.py, views.py, tasks.py and
management/commands/remind.py; it is one module here.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.management.base import BaseCommand
from django.db import models, transaction
from django.db.models import Count, F, Q
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify
from django.views import View
from django.views.decorators.http import require_POST
from django.views.generic import ListView

LOAN_DAYS = 14


class Branch(models.Model):
    name = models.CharField(max_length=120)
    slug = models.SlugField(unique=True, blank=True)
    active = models.BooleanField(default=True)

    def __str__(self) -> str:  # expect: plain
        return self.name

    def get_absolute_url(self) -> str:  # expect: plain
        return reverse("branch-detail", kwargs={"slug": self.slug})

    def save(self, *args, **kwargs) -> None:  # expect: step
        if not self.slug:
            self.slug = slugify(self.name)
        super().save(*args, **kwargs)


class BookQuerySet(models.QuerySet):
    def on_shelf(self) -> BookQuerySet:  # expect: plain
        return self.filter(on_loan=False)

    def matching(self, term: str) -> BookQuerySet:  # expect: plain
        return self.filter(Q(title__icontains=term) | Q(author__icontains=term))

    def popular(self, at_least: int = 5) -> BookQuerySet:  # expect: plain
        return self.annotate(n=Count("loans")).filter(n__gte=at_least).order_by("-n")


class BookManager(models.Manager):
    def get_queryset(self) -> BookQuerySet:  # expect: plain
        return BookQuerySet(self.model, using=self._db)

    def on_shelf(self) -> BookQuerySet:  # expect: plain
        return self.get_queryset().on_shelf()

    def shelf_count(self, branch_id: int) -> int:  # expect: step
        return self.on_shelf().filter(branch_id=branch_id).count()


class Book(models.Model):
    title = models.CharField(max_length=300)
    author = models.CharField(max_length=200)
    isbn = models.CharField(max_length=17, unique=True)
    branch = models.ForeignKey(Branch, related_name="books", on_delete=models.PROTECT)
    on_loan = models.BooleanField(default=False)

    objects = BookManager()

    def clean(self) -> None:  # expect: plain
        digits = self.isbn.replace("-", "")
        if len(digits) not in (10, 13) or not digits.isdigit():
            raise ValidationError({"isbn": "not an ISBN"})

    def branch_name(self) -> str:  # expect: step
        return self.branch.name

    def label(self) -> str:  # expect: plain
        return f"{self.title} ({self.author})"


class Member(models.Model):
    email = models.EmailField(unique=True)
    name = models.CharField(max_length=200)

    def open_loans(self) -> models.QuerySet:  # expect: plain
        return self.loans.filter(returned_at__isnull=True)

    def loans_out(self) -> int:  # expect: step
        return self.loans.filter(returned_at__isnull=True).count()


class Loan(models.Model):
    book = models.ForeignKey(Book, related_name="loans", on_delete=models.CASCADE)
    member = models.ForeignKey(Member, related_name="loans", on_delete=models.CASCADE)
    due = models.DateTimeField()
    returned_at = models.DateTimeField(null=True, blank=True)

    def is_overdue(self, now: datetime) -> bool:  # expect: plain
        return self.returned_at is None and self.due < now

    def days_late(self) -> int:  # expect: step
        return max(0, (timezone.now() - self.due).days)

    @classmethod
    def overdue(cls) -> models.QuerySet:  # expect: step
        return cls.objects.filter(returned_at__isnull=True, due__lt=timezone.now())

    @classmethod
    def overdue_as_of(cls, when: datetime) -> models.QuerySet:  # expect: plain
        return cls.objects.filter(returned_at__isnull=True, due__lt=when)


# services


def due_date(start: datetime, days: int = LOAN_DAYS) -> datetime:  # expect: plain
    return start + timedelta(days=days)


def borrow(member_id: int, book_id: int) -> Loan:  # expect: step
    with transaction.atomic():
        book = Book.objects.select_for_update().get(pk=book_id)
        if book.on_loan:
            raise ValidationError("that book is already on loan")
        book.on_loan = True
        book.save(update_fields=["on_loan"])
        return Loan.objects.create(book=book, member_id=member_id, due=due_date(timezone.now()))


def give_back(loan_id: int) -> Loan:  # expect: step
    loan = Loan.objects.get(pk=loan_id)
    loan.returned_at = timezone.now()
    loan.save(update_fields=["returned_at"])
    Book.objects.filter(pk=loan.book_id).update(on_loan=False)
    return loan


def extend_all(member_id: int, days: int) -> int:  # expect: step
    open_loans = Loan.objects.filter(member_id=member_id, returned_at__isnull=True)
    return open_loans.update(due=F("due") + timedelta(days=days))


def swap(loan_id: int, new_book_id: int) -> Loan:  # expect: step
    with transaction.atomic():
        loan = give_back(loan_id)
        return borrow(loan.member_id, new_book_id)


def reminder_text(member_name: str, title: str, due: datetime, branch: str) -> str:  # expect: plain
    return (
        f"Dear {member_name},\n\n'{title}' was due back at {branch} on "
        f"{due:%d %B %Y}. Please return or renew it.\n"
    )


def send_reminder(loan_id: int) -> None:  # expect: step
    loan = Loan.objects.select_related("member", "book__branch").get(pk=loan_id)
    body = reminder_text(loan.member.name, loan.book.title, loan.due, loan.book.branch.name)
    send_mail("Your loan is overdue", body, settings.DEFAULT_FROM_EMAIL, [loan.member.email])


def send_reminders(loan_ids: list[int]) -> int:  # expect: workflow
    for loan_id in loan_ids:
        send_reminder(loan_id)
    return len(loan_ids)


def catalogue_size() -> int:  # expect: step
    size = cache.get("catalogue-size")
    if size is None:
        size = Book.objects.count()
        cache.set("catalogue-size", size, timeout=300)
    return size


def branch_report(branch_id: int) -> dict[str, int]:  # expect: workflow
    return {"on_shelf": Book.objects.shelf_count(branch_id), "catalogue": catalogue_size()}


def search_query(term: str) -> BookQuerySet:  # expect: plain
    return Book.objects.get_queryset().matching(term).select_related("branch")


def search(term: str, limit: int = 20) -> list[dict[str, str]]:  # expect: step
    return [{"title": b.title, "branch": b.branch.name} for b in search_query(term)[:limit]]


def loan_summary(loan: Loan) -> dict[str, object]:  # expect: plain
    return {"id": loan.pk, "book": loan.book_id, "due": loan.due.isoformat()}


# views


def book_detail(request: HttpRequest, pk: int) -> JsonResponse:  # expect: step
    book = get_object_or_404(Book.objects.select_related("branch"), pk=pk)
    return JsonResponse({"title": book.title, "branch": book.branch.name})


@require_POST
def borrow_view(request: HttpRequest, member_id: int, pk: int) -> JsonResponse:  # expect: workflow
    return JsonResponse(loan_summary(borrow(member_id, pk)), status=201)


@require_POST
def return_view(request, loan_id):  # expect: workflow
    loan = give_back(loan_id)
    return JsonResponse(loan_summary(loan))


def ping(request: HttpRequest) -> HttpResponse:  # expect: plain
    return HttpResponse("pong", content_type="text/plain")


class BranchListView(ListView):
    model = Branch
    paginate_by = 25

    def get_queryset(self) -> models.QuerySet:  # expect: plain
        return Branch.objects.filter(active=True).order_by("name")

    def get_context_data(self, **kwargs):  # expect: step
        context = super().get_context_data(**kwargs)
        context["books_out"] = Book.objects.filter(on_loan=True).count()
        return context


class MemberLoansView(View):
    def get(self, request: HttpRequest, member_id: int) -> JsonResponse:  # expect: step
        member = Member.objects.get(pk=member_id)
        loans = [loan_summary(loan) for loan in member.open_loans()]
        return JsonResponse({"member": member.email, "loans": loans})

    def post(self, request: HttpRequest, member_id: int) -> JsonResponse:  # expect: workflow
        days = int(request.GET.get("days", "7"))
        return JsonResponse({"extended": extend_all(member_id, days)})


# tasks and signals


@shared_task(bind=True, max_retries=3)
def notify_branch(self, loan_id: int) -> None:  # expect: step
    loan = Loan.objects.select_related("book__branch").get(pk=loan_id)
    branch = loan.book.branch
    send_mail(
        f"New loan at {branch.name}",
        f"{loan.book.title} is out until {loan.due:%d %b}.",
        settings.DEFAULT_FROM_EMAIL,
        [f"desk+{branch.slug}@library.example.org"],
    )


@receiver(post_save, sender=Loan)
def loan_saved(sender, instance: Loan, created: bool, **kwargs) -> None:  # expect: step
    if created:
        notify_branch.delay(instance.pk)


# management command: python manage.py remind --grace-days 2


class Command(BaseCommand):
    help = "Email members whose loans are overdue."

    def add_arguments(self, parser) -> None:  # expect: plain
        parser.add_argument("--grace-days", type=int, default=0)
        parser.add_argument("--dry-run", action="store_true")

    def overdue_ids(self, grace_days: int) -> list[int]:  # expect: step
        cutoff = timezone.now() - timedelta(days=grace_days)
        return list(Loan.overdue_as_of(cutoff).values_list("pk", flat=True))

    def handle(self, *args, **options) -> str:  # expect: workflow
        ids = self.overdue_ids(options["grace_days"])
        if options["dry_run"]:
            return f"{len(ids)} reminders would be sent"
        return f"sent {send_reminders(ids)} reminders"
