"""The gateway's logging: the shared service logging of :mod:`rvcloud.backends.logs`."""

from rvcloud.backends.logs import JsonFormatter, TextFormatter, bind, current_fields, scope, setup_logging

__all__ = ["JsonFormatter", "TextFormatter", "bind", "current_fields", "scope", "setup_logging"]
