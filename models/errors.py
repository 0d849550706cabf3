"""Errors a generator raises. Each carries the stable code the worker records on the job
(the same codes as aigc.errors.ErrorCode; models/ imports nothing of ours)."""

from typing import ClassVar


class GenerationError(Exception):
    """Base of every error raised by models/."""

    code: ClassVar[str] = "generation_failed"


class ModelLoadError(GenerationError):
    """The model's files could not be found or loaded."""

    code = "model_load_failed"


class InvalidInput(GenerationError):
    """The model rejects this input (e.g. a prompt longer than its context); retrying won't help."""

    code = "invalid_input"


class GenerationCanceled(GenerationError):
    """should_cancel() turned true between steps."""

    code = "canceled"
