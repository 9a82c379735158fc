"""Django's models as a reader follows them (`autodurable._analysis._django`).

Custom managers and querysets are the project's own classes: a method that only
builds a query is plain (its result is a lazy queryset, which cannot be recorded
anyway), one that evaluates it is a step, and iterating what a plain one returns
is I/O where it happens. Reading a foreign key loads a row; the other side of a
relation is a manager. Each test fails with its rule taken out.
"""

from __future__ import annotations

from .test_analysis_types import analyse, assert_plain, assert_step, get, line_of, module

MODELS = """
from django.db import models
from django.db.models import Count


class BookQuerySet(models.QuerySet):
    def available(self):
        return self.filter(copies__gt=0)

    def popular(self, limit: int = 10):
        return list(self.annotate(n=Count("loans")).order_by("-n")[:limit])


class BookManager(models.Manager):
    def get_queryset(self) -> BookQuerySet:
        return BookQuerySet(self.model, using=self._db)

    def matching(self, term: str):
        return self.get_queryset().filter(title__icontains=term)


class LoanQuerySet(models.QuerySet):
    def for_member(self, member_id: int) -> "LoanQuerySet":
        return self.filter(member_id=member_id)

    def open_count(self) -> int:
        return self.filter(returned=False).count()


class LoanManager(models.Manager.from_queryset(LoanQuerySet)):
    def open_loan(self, member, book):
        return self.create(member=member, book=book)


class Author(models.Model):
    name = models.CharField(max_length=10)


class Book(models.Model):
    author = models.ForeignKey(Author, on_delete=models.CASCADE, related_name="books")
    editor = models.ForeignKey("Author", on_delete=models.CASCADE, related_name="+")
    title = models.CharField(max_length=10)
    objects = BookQuerySet.as_manager()

    def author_name(self) -> str:
        return self.author.name

    def open_loans(self):
        return self.loans.filter(returned=False)

    def loan_count(self) -> int:
        return self.loans.count()

    def label(self) -> str:
        return self.title.upper()


class Shelf(models.Model):
    objects = BookManager()


class Loan(models.Model):
    book = models.ForeignKey(Book, on_delete=models.CASCADE, related_name="loans")
    objects = LoanManager()
"""


def test_a_manager_made_from_a_queryset_class_has_its_methods():
    views = """
    from shop.models import Book, BookQuerySet, Loan, Shelf

    def page(member_id: int):
        return Loan.objects.for_member(member_id).order_by("-id")[:20]

    def book_ids(member_id: int) -> list[int]:
        return [loan.book_id for loan in page(member_id)]

    def available():
        return Book.objects.available()

    def how_many_available() -> int:
        return Book.objects.available().count()

    def find(term: str):
        return Shelf.objects.matching(term)

    def find_titles(term: str) -> list[str]:
        return [b.title for b in find(term)]

    def popular():
        return Book.objects.popular()

    def lend(member, book):
        return Loan.objects.open_loan(member, book)

    def shelf(term: str) -> BookQuerySet:
        return Book.objects.available().filter(title__icontains=term)

    def shelf_titles(term: str) -> list[str]:
        return list(shelf(term)[:10])
    """
    plan = analyse({"shop.__init__": "", "shop.models": MODELS, "shop.views": views})
    found = plan.modules["shop.views"]
    models = plan.modules["shop.models"]
    # Building a query in the project's own queryset or manager methods: plain.
    for name in ("page", "available", "find"):
        assert_plain(get(found, name))
    for name in ("BookQuerySet.available", "LoanQuerySet.for_member", "BookManager.matching"):
        assert_plain(get(models, name))
    # Evaluating one: a step where it is evaluated.
    assert_step(get(found, "book_ids"), "django.db.models.QuerySet", line_of(views, "in page("))
    assert_step(get(found, "find_titles"), "django.db.models.QuerySet", line_of(views, "in find("))
    counted = line_of(views, "available().count()")
    assert_step(get(found, "how_many_available"), "django.db.models.QuerySet.count", counted)
    # Iterating an instance of the project's own queryset class (annotated) too.
    assert_plain(get(found, "shelf"))
    assert_step(
        get(found, "shelf_titles"), "django.db.models.QuerySet", line_of(views, "shelf(term)[:10]")
    )
    assert get(models, "BookQuerySet.popular").role == "step"
    assert get(models, "LoanManager.open_loan").role == "step"
    # Calling a custom method that evaluates: the caller is workflow code around it.
    assert get(found, "popular").reason.startswith("calls step shop.models:BookQuerySet.popular")
    assert get(found, "lend").reason.startswith("calls step shop.models:LoanManager.open_loan")


def test_reading_a_foreign_key_loads_a_row_and_a_related_manager_builds_queries():
    found = module(
        MODELS
        + """

def author_of(book: Book) -> str:
    return book.author.name

def editor_of(book: Book) -> str:
    return book.editor.name

def book_title(loan: Loan) -> str:
    return loan.book.title

def loan_book_id(loan: Loan) -> int:
    return loan.book_id

def books_by(author: Author):
    return author.books.filter(title__startswith="A")
"""
    )
    read = line_of(MODELS, "return self.author.name")
    assert_step(get(found, "Book.author_name"), "mod:Book.author", read)
    assert get(found, "author_of").reason.startswith("calls mod:Book.author at line")
    assert get(found, "editor_of").reason.startswith("calls mod:Book.editor at line")
    assert get(found, "book_title").reason.startswith("calls mod:Loan.book at line")
    # The column holding the key is no read of the row; a field is a value.
    assert_plain(get(found, "loan_book_id"))
    assert_plain(get(found, "Book.label"))
    # The other side of a relation: building a query is plain, counting runs one.
    assert_plain(get(found, "Book.open_loans"))
    assert_plain(get(found, "books_by"))
    counted = line_of(MODELS, "return self.loans.count()")
    assert_step(get(found, "Book.loan_count"), "django.db.models.Manager.count", counted)


def test_a_foreign_key_read_among_calls_to_steps_makes_the_function_one_step():
    found = module(
        MODELS
        + """

def notify(email: str) -> None:
    with open("outbox.txt", "a") as outbox:
        outbox.write(email)

def notify_author(book: Book) -> None:
    notify(book.author.name)
"""
    )
    # No site can record an attribute read: inline, it would run again on replay.
    plan = get(found, "notify_author")
    assert (plan.role, plan.style) == ("step", "coarse"), plan.reason
    assert "a read of the related mod:Book.author" in plan.reason
