"""What can go wrong on the student path, each with its HTTP status and code."""

from examplatform.errors import Conflict, DomainError, NotFound, Unprocessable


class SessionNotFound(NotFound):
    code = "session_not_found"
    default_detail = "Session not found."


class QuestionNotInSession(NotFound):
    code = "question_not_in_session"
    default_detail = "This question is not part of this session."


class QuestionInactive(Conflict):
    code = "question_inactive"
    default_detail = "This question has been withdrawn."


class InvalidOption(DomainError):
    code = "invalid_option"
    default_detail = "This option does not belong to the question."


class NoQuestions(DomainError):
    code = "no_questions"
    default_detail = "No active questions match this block and themes."


class InvalidFilter(DomainError):
    code = "invalid_filter"
    default_detail = "Unknown block or theme, or a theme outside the block."


class SessionSubmitted(Conflict):
    code = "session_submitted"
    default_detail = "This session has been submitted; it can no longer change."


class DeadlinePassed(Conflict):
    code = "deadline_passed"
    default_detail = "The time limit of this session has passed; it was graded with the saved answers."


class SessionNotSubmitted(Conflict):
    code = "session_active"
    default_detail = "The review is available once the session is submitted."


class IdempotencyKeyReused(Unprocessable):
    code = "idempotency_key_reused"
    default_detail = "This Idempotency-Key was already used with a different request body."
