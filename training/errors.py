"""Errors raised by training and model loading."""


class ModelError(Exception):
    """A model directory is missing, broken or incompatible, or training cannot proceed."""


class DataError(ModelError):
    """Training or evaluation data is missing or malformed; the message names the file and line."""
