"""The science host: science_db_volume restored from the starport by bb8, and the montagu-db container."""

from __future__ import annotations

from . import pg_container, standin_setup
from .layout import SCIENCE_CONTAINER, SCIENCE_VOLUME, Layout


def restore(lab: Layout) -> None:
    """``bb8 restore`` on science (the stand-in): main_db_restore into science_db_volume.

    bb8 creates the volume; its files belong to root until montagu-db hands them to labpg.
    """
    standin_setup.bb8(lab, "science", "restore")


def start(lab: Layout) -> None:
    """Run montagu-db on science_db_volume and wait until it is open (not in recovery)."""
    pg_container.start(lab, SCIENCE_CONTAINER, SCIENCE_VOLUME, lab.science_port)
    pg_container.wait_open(lab, SCIENCE_CONTAINER)
