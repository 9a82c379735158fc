"""Step options: Retry policies, Options validation and merging, per-call `options(...)`."""

from __future__ import annotations

import random
import threading

import pytest

import autodurable
from autodurable import CallOptions, ConfigError, Retry
from autodurable._core._options import NO_RETRY, current_call_options

# Workflow semantics: every test runs on each store of AUTODURABLE_TEST_STORES.
pytestmark = pytest.mark.usefixtures("database")

# -- Retry validation ------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, bad",
    [
        ("max_attempts", 0),
        ("max_attempts", -1),
        ("jitter", -0.1),
        ("jitter", 1.5),
        ("backoff", 0.5),
        ("initial_interval", -1),
        ("max_interval", -1),
    ],
)
def test_invalid_retry_values_name_the_field(field, bad):
    with pytest.raises(ValueError, match=field):  # InvalidFields, a ValueError
        Retry(**{field: bad})
    with pytest.raises(ConfigError, match=rf"invalid options: retries\.{field}:"):
        autodurable.options(retries={field: bad})
    with pytest.raises(ConfigError, match=rf"invalid step options: retries\.{field}:"):
        autodurable.step(retries={field: bad})


@pytest.mark.parametrize(
    "field, ok", [("max_attempts", 1), ("jitter", 0.0), ("jitter", 1.0), ("backoff", 1.0)]
)
def test_boundary_retry_values_are_accepted(field, ok):
    assert getattr(Retry(**{field: ok}), field) == ok
    with autodurable.options(retries={field: ok}) as opts:
        assert getattr(opts.retries, field) == ok


def test_retry_rejects_unknown_fields_and_is_frozen():
    with pytest.raises(ValueError, match="max_attempt"):
        Retry(max_attempt=3)
    with pytest.raises(AttributeError, match="frozen"):
        Retry().max_attempts = 9  # type: ignore[misc]


# -- Retry.delay -----------------------------------------------------------------------------


def test_delay_is_exponential_and_capped_without_jitter():
    policy = Retry(initial_interval=0.5, backoff=3, max_interval=10, jitter=0)
    assert [policy.delay(n) for n in range(1, 6)] == [0.5, 1.5, 4.5, 10, 10]
    assert Retry(initial_interval=2, backoff=1, jitter=0).delay(7) == 2
    assert Retry(initial_interval=0, jitter=0.5).delay(3) == 0


def test_delay_jitter_stays_within_bounds_and_varies():
    policy = Retry(initial_interval=4, backoff=2, max_interval=100, jitter=0.25)
    rng = random.Random(1234)
    delays = [policy.delay(2, rng) for _ in range(500)]  # base 8, spread +/- 2
    assert all(6 <= d <= 10 for d in delays)
    assert min(delays) < 6.5 and max(delays) > 9.5  # really spread over the range
    capped = [Retry(max_interval=3, jitter=0.1).delay(20, rng) for _ in range(200)]
    assert all(2.7 <= d <= 3.3 for d in capped)  # jitter applies around the cap


def test_delay_uses_the_given_rng():
    policy = Retry(initial_interval=1, backoff=2, jitter=0.5)
    expected = 4 + random.Random(7).uniform(-2, 2)
    assert policy.delay(3, random.Random(7)) == pytest.approx(expected)
    assert policy.delay(3, random.Random(7)) == policy.delay(3, random.Random(7))


def test_full_jitter_never_goes_negative():
    policy = Retry(initial_interval=1, jitter=1.0)
    rng = random.Random(0)
    delays = [policy.delay(1, rng) for _ in range(300)]
    assert all(0 <= d <= 2 for d in delays)


def test_delay_of_a_late_attempt_is_capped_not_an_overflow():
    policy = Retry(max_attempts=2000, initial_interval=1, backoff=2, max_interval=60, jitter=0)
    assert policy.delay(1100) == 60


# -- should_retry ------------------------------------------------------------------------------


def test_should_retry_stops_at_max_attempts():
    policy = Retry(max_attempts=3)
    assert [policy.should_retry(ValueError(), n) for n in (1, 2, 3, 4)] == [
        True,
        True,
        False,
        False,
    ]
    assert not NO_RETRY.should_retry(ValueError(), 1)


def test_non_retryable_types_fail_at_once_including_subclasses():
    policy = Retry(max_attempts=5, non_retryable=(LookupError, PermissionError))
    assert not policy.should_retry(KeyError("k"), 1)
    assert not policy.should_retry(PermissionError(), 1)
    assert policy.should_retry(ValueError(), 1)
    assert policy.should_retry(OSError(), 1)  # a superclass is not excluded


def test_retry_if_predicate_decides():
    seen = []

    def transient(exc):
        seen.append(exc)
        return "transient" in str(exc)

    policy = Retry(max_attempts=5, retry_if=transient)
    assert policy.should_retry(RuntimeError("transient glitch"), 1)
    assert not policy.should_retry(RuntimeError("fatal"), 1)
    assert not policy.should_retry(RuntimeError("transient"), 5)  # attempts win
    assert [str(e) for e in seen] == ["transient glitch", "fatal"]
    assert Retry(retry_if=lambda e: 1).should_retry(ValueError(), 1) is True


# -- Options -------------------------------------------------------------------------------------


@pytest.mark.parametrize("retries, attempts", [(0, 1), (1, 2), (5, 6)])
def test_int_retries_count_retries_after_the_first_attempt(retries, attempts):
    opts = CallOptions(retries=retries)
    assert opts.retries is not None
    assert opts.retries.max_attempts == attempts
    assert opts.retry_policy.max_attempts == attempts
    defaults = Retry()
    assert (opts.retries.backoff, opts.retries.jitter) == (defaults.backoff, defaults.jitter)


@pytest.mark.parametrize("bad", [True, False, -1, "3"])
def test_bad_retries_are_rejected(bad):
    with pytest.raises(ConfigError, match="retries"):
        autodurable.options(retries=bad)
    with pytest.raises(ConfigError, match="retries"):
        autodurable.step(retries=bad)


def test_bad_retries_messages_explain():
    with pytest.raises(ConfigError, match="not a bool"):
        autodurable.options(retries=True)
    with pytest.raises(ConfigError, match="retries: must be >= 0"):
        autodurable.options(retries=-1)


@pytest.mark.parametrize("bad", [0, -1, "soon"])
def test_timeout_must_be_positive(bad):
    with pytest.raises(ConfigError, match=r"timeout.*got"):
        autodurable.options(timeout=bad)
    with pytest.raises(ConfigError, match="invalid step options: timeout"):
        autodurable.step(timeout=bad)


def test_other_option_fields_are_validated():
    assert CallOptions(timeout=0.01).timeout == 0.01
    with pytest.raises(ConfigError, match="name"):
        autodurable.options(name="")
    with pytest.raises(ConfigError, match="workflow_id"):
        autodurable.options(workflow_id="x" * 513)
    with pytest.raises(ConfigError, match="retry"):
        autodurable.options(retry=3)  # misspelled: unknown fields are refused


def test_unset_options_mean_no_retries():
    assert CallOptions().retry_policy is NO_RETRY
    assert NO_RETRY.max_attempts == 1


def test_merged_overrides_only_explicit_fields():
    base = CallOptions(retries=2, timeout=5, name="base")
    merged = base.merged(CallOptions(timeout=9))
    assert merged.timeout == 9 and merged.name == "base"
    assert merged.retries is not None and merged.retries.max_attempts == 3
    assert merged.fields_set == {"retries", "timeout", "name"}
    # an explicit None is explicit: it clears the lower layer's value
    assert base.merged(CallOptions(timeout=None)).timeout is None
    assert base.merged(CallOptions()) is base
    assert base.merged(None) is base
    over = CallOptions(workflow_id="w")
    assert CallOptions().merged(over) is over


def test_merged_layers_chain():
    defaults = CallOptions(retries=1, timeout=30)
    decorator = CallOptions(timeout=10)
    call = CallOptions(name="charge")
    result = defaults.merged(decorator).merged(call)
    assert (result.retry_policy.max_attempts, result.timeout, result.name) == (2, 10, "charge")
    assert result.workflow_id is None


# -- options(...) as a context manager and a wrapper ---------------------------------------


def test_options_block_sets_the_call_layer_and_restores_it():
    assert current_call_options() is None
    with autodurable.options(retries=5) as opts:
        assert opts == CallOptions(retries=5)
        assert current_call_options() == CallOptions(retries=5)
    assert current_call_options() is None


def test_options_blocks_nest():
    with autodurable.options(retries=5, timeout=30):
        outer = current_call_options()
        with autodurable.options(timeout=3):
            inner = current_call_options()
            assert inner is not None and inner.timeout == 3
            assert inner.retry_policy.max_attempts == 6  # inherited from the outer block
            with autodurable.options(retries=0, name="x"):
                innermost = current_call_options()
                assert innermost is not None
                assert (innermost.retry_policy.max_attempts, innermost.timeout) == (1, 3)
                assert innermost.name == "x"
            assert current_call_options() is inner
        assert current_call_options() is outer
    assert current_call_options() is None


def test_options_block_restores_after_an_exception():
    with pytest.raises(KeyError, match="boom"), autodurable.options(timeout=1):
        raise KeyError("boom")
    assert current_call_options() is None


def test_same_scope_object_can_be_reentered():
    scope = autodurable.options(timeout=2)
    with scope:
        with scope:
            assert current_call_options() == CallOptions(timeout=2)
        assert current_call_options() == CallOptions(timeout=2)
    assert current_call_options() is None


def test_options_wrapper_calls_fn_with_the_layer_active():
    seen = []

    def fn(a, *, b):
        seen.append(current_call_options())
        return a + b

    wrapped = autodurable.options(fn, retries=2)
    assert wrapped.__wrapped__ is fn
    assert wrapped(1, b=2) == 3
    assert seen[0] is not None and seen[0].retry_policy.max_attempts == 3
    assert current_call_options() is None
    with autodurable.options(timeout=4):
        assert wrapped(0, b=0) == 0
    assert (seen[1].retry_policy.max_attempts, seen[1].timeout) == (3, 4)


def test_options_wrapper_restores_after_an_exception():
    def fails():
        raise ValueError("x")

    with pytest.raises(ValueError, match=r"^x$"):
        autodurable.options(fails, timeout=1)()
    assert current_call_options() is None


def test_calling_a_scope_without_fn_is_a_type_error():
    with pytest.raises(TypeError, match="context manager"):
        autodurable.options(retries=2)()


@pytest.mark.parametrize("not_callable", [42, "fn", 3.5])
def test_options_of_a_non_callable_is_a_type_error(not_callable):
    with pytest.raises(TypeError, match=type(not_callable).__name__):
        autodurable.options(not_callable)
    assert autodurable.options(None, timeout=1).__wrapped__ is None  # None: no function


def test_invalid_options_fail_before_the_wrapper_is_built():
    called = []
    with pytest.raises(ConfigError, match="timeout"):
        autodurable.options(called.append, timeout=-1)
    assert called == []


def test_one_wrapper_can_be_called_from_two_threads_at_once():
    a_inside, b_inside = threading.Event(), threading.Event()

    def fn(who):
        if who == "a":
            a_inside.set()
            assert b_inside.wait(5)  # a leaves while b is still inside
        else:
            b_inside.set()
            threading.Event().wait(0.3)
        return current_call_options()

    wrapped = autodurable.options(fn, timeout=7)
    results, errors = {}, []

    def run(who):
        try:
            results[who] = wrapped(who)
        except Exception as exc:
            errors.append(exc)

    thread_a = threading.Thread(target=run, args=("a",))
    thread_a.start()
    assert a_inside.wait(5)
    thread_b = threading.Thread(target=run, args=("b",))
    thread_b.start()
    thread_a.join(10)
    thread_b.join(10)
    assert errors == []
    assert results == {"a": CallOptions(timeout=7), "b": CallOptions(timeout=7)}
