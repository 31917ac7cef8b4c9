"""The CLI's and servers' view of the JSON logs: `flows.domain.log` (the logging set-up lives at the bottom
so that every layer can log without importing `relais`)."""

from flows.domain.log import bind, bound, configure, get, unbind

__all__ = ["bind", "bound", "configure", "get", "unbind"]
