"""The lab's shim around privateer 2.1.1's entry point: every container it creates uses the host network.

Run by privateer's own venv (``LAB/cache/privateer-venv/bin/python -P privateer_shim.py ARGS``;
``-P`` keeps this directory off ``sys.path``), never by the console's, and it imports nothing of
the console. It differs from privateer's ``privateer`` console script in one way only:

- The lab's dockerd runs with ``--bridge=none``, so a container on Docker's default network has
  no network at all, and privateer never sets a network mode. The shim wraps docker-py's
  ``ContainerCollection.create`` (``containers.run`` goes through it too) to set
  ``network_mode="host"`` on every container privateer creates, and drops its ``ports`` (the
  server's ``{"22/tcp": port}``), which the host network cannot publish: the lab's server image
  has sshd listen on 127.0.0.1:<port> itself (``Port`` and ``ListenAddress`` in its sshd_config).

Then it hands over to ``privateer.cli:cli`` with the arguments unchanged (options after the
subcommand, usage errors exit 2, failures exit 1 with privateer's traceback).

The wrappers ``lab up`` writes (``LAB/annex/bin/privateer``, ``LAB/science/bin/privateer``, see
privateer_lab.py) do the rest around it: ``cd`` into the side's config folder (privateer reads
``privateer.json`` and ``.privateer_identity`` from the working directory), export
``DOCKER_HOST`` (the lab's daemon; privateer calls ``docker.from_env()``) and
``PYTHONUNBUFFERED=1`` (privateer never flushes its output, and the console streams it).
"""

import sys

from docker.models.containers import ContainerCollection
from privateer.cli import cli  # type: ignore[import-not-found]  # privateer's own venv only

_create = ContainerCollection.create


def create_on_host_network(self, image, command=None, **kwargs):
    """docker-py's ``create``, on the host network and without port publishing."""
    kwargs.pop("ports", None)
    kwargs["network_mode"] = "host"
    return _create(self, image, command, **kwargs)


if __name__ == "__main__":
    ContainerCollection.create = create_on_host_network
    sys.exit(cli(prog_name="privateer"))
