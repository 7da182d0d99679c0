"""Errors raised by the knowledge base."""


class KnowledgeBaseError(Exception):
    """The knowledge base or its index cannot be read, written or searched."""
