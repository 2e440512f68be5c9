"""Errors the domain raises. Each message says what is wrong and how to fix it."""


class DomainError(ValueError):
    """A value or a request the domain refuses."""


class InvalidNumber(DomainError):
    """A number that is NaN, infinite, negative, zero where it must be positive, or not a number."""


class BelowMinimum(DomainError):
    """A quantity or price that would round to less than one step or tick."""


class IllegalTransition(DomainError):
    """A lifecycle change the state machine does not allow."""
