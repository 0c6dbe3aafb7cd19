"""Reach the configured hosts: commands and files (local or SSH) and their Docker daemons.

paramiko and the docker SDK are imported on first use, keeping start-up cheap.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING

from montagu_console.config import HostConfig
from montagu_console.errors import TransportError
from montagu_console.transports.base import CommandResult, FileMissing, Transport
from montagu_console.transports.local import LocalTransport

if TYPE_CHECKING:
    from montagu_console.transports.docker import ContainerState, DockerEndpoint, VolumeMount
    from montagu_console.transports.ssh import SSHTransport

__all__ = [
    "CommandResult",
    "ContainerState",
    "DockerEndpoint",
    "FileMissing",
    "HostPool",
    "LocalTransport",
    "SSHTransport",
    "Transport",
    "VolumeMount",
]

_LAZY = {"SSHTransport": "ssh", "DockerEndpoint": "docker", "ContainerState": "docker", "VolumeMount": "docker"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class HostPool:
    """One transport and one Docker endpoint per configured host, created on first use."""

    def __init__(self, hosts: Mapping[str, HostConfig], *, command_timeout: float):
        self.hosts = dict(hosts)
        self.command_timeout = command_timeout
        self._transports: dict[str, Transport] = {}
        self._dockers: dict[str, DockerEndpoint] = {}

    def transport(self, name: str) -> Transport:
        """The host's LocalTransport or SSHTransport (cached)."""
        if name not in self._transports:
            config = self._config(name)
            if config.transport == "local":
                self._transports[name] = LocalTransport(name)
            elif config.transport == "ssh":
                from montagu_console.transports.ssh import SSHTransport

                self._transports[name] = SSHTransport(config)
            else:
                raise TransportError(name, "config", f"unknown transport {config.transport!r} (hosts.{name}.transport)")
        return self._transports[name]

    def docker(self, name: str) -> DockerEndpoint:
        """The host's Docker endpoint (cached); TransportError if it has none."""
        if name not in self._dockers:
            config = self._config(name)
            if not config.docker:
                raise TransportError(name, "docker", f"no docker endpoint configured (hosts.{name}.docker)")
            from montagu_console.transports.docker import DockerEndpoint

            self._dockers[name] = DockerEndpoint(name, config.docker, self.command_timeout)
        return self._dockers[name]

    async def close(self) -> None:
        """Close every transport and endpoint created so far."""
        closers = [t.close() for t in self._transports.values()] + [d.close() for d in self._dockers.values()]
        self._transports.clear()
        self._dockers.clear()
        await asyncio.gather(*closers, return_exceptions=True)

    def _config(self, name: str) -> HostConfig:
        try:
            return self.hosts[name]
        except KeyError:
            raise TransportError(name, "config", f"no such host (hosts.{name} is not configured)") from None
