"""Errors a generator raises; the worker records their type and message on the job."""


class GenerationError(Exception):
    """Base of every error raised by models/."""


class ModelLoadError(GenerationError):
    """The model's files could not be found or loaded."""


class InvalidInput(GenerationError):
    """The model rejects this input (e.g. a prompt longer than its context); retrying won't help."""


class GenerationCanceled(GenerationError):
    """should_cancel() turned true between steps."""
