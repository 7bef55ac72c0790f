"""Joining Ray (the optional `parables[ray]` extra) for the engines that scale out: the audit,
corpus generation and dedup. `import ray` happens only through here, and only when asked."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from parables.errors import ParablesError

__all__ = ["connect", "import_ray", "quiet_ray_data"]


def import_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as e:
        raise ParablesError("--engine ray: Ray is not installed; pip install "
                            "'parables[ray]' (or use --engine local)") from e
    return ray


def connect(ray: Any, address: str | None, num_cpus: int | None = None) -> bool:
    """Join the cluster at `address`, or start a local runtime (of `num_cpus`); True when this
    call started the runtime (and so shuts it down). An already initialised Ray is used as it
    is."""
    _reachable(address)  # also when a runtime is up: the user asked for that address
    if ray.is_initialized():
        return False
    local = {"num_cpus": num_cpus} if address is None else {}
    try:
        ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING,
                 log_to_driver=False, **local)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise ParablesError(f"--address {address}: cannot connect to a Ray cluster ({e}); "
                            "start one with `ray start --head`, or leave --address out for a "
                            "local runtime") from e
    return True


def _reachable(address: str | None) -> None:
    """A `host:port` nobody listens on fails here in seconds (Ray itself retries for many
    minutes); `auto`, `local` and `ray://` addresses are left to Ray."""
    import socket

    if not address or address in ("auto", "local") or "://" in address:
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        with socket.create_connection((host, int(port)), timeout=5):
            pass
    except OSError as e:
        raise ParablesError(f"--address {address}: no Ray cluster answers there ({e}); start "
                            "one with `ray start --head`, or leave --address out for a local "
                            "runtime") from e


@contextmanager
def quiet_ray_data(ray: Any) -> Iterator[None]:
    """Ray Data without its own progress bars and per-run info lines (parables draws its
    own bar; Ray's lines would break it)."""
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    log = logging.getLogger("ray.data")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)
