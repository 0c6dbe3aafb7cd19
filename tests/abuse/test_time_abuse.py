"""Finding 7: a timestamp in the future is not fresh. A backup "ending" in 2099 used to read as
OK, "0 seconds ago", forever; now it is a WARNING that names the fact and says "clock skew?"."""

from __future__ import annotations

import json

import pytest

from tests.abuse.conftest import add_target, chown_tree
from tests.conftest import config_variant, run_check

pytestmark = pytest.mark.lab


def test_starport_copy_dated_2099_is_a_warning_not_fresh(lab, lab_config, starport_copy, tmp_path):
    add_target(
        starport_copy,
        "from_the_future",
        json.dumps({"last_backup": "2099-01-01T00:00:00+00:00", "instance_guid": "x"}).encode(),
    )
    chown_tree(starport_copy, lab.sci_user)
    config = config_variant(
        lab_config,
        tmp_path,
        lambda c: c["starport"].update(path=str(starport_copy), targets=["barman_to_starport", "from_the_future"]),
    )
    rc, doc, err = run_check(config, "--json", "--panel", "starport")
    assert isinstance(doc, dict), err
    starport = doc["panels"]["starport"]
    assert starport["status"] in ("WARNING", "CRITICAL"), starport
    assert "from_the_future is" in starport["summary"] and "in the future: clock skew?" in starport["summary"]
    target = next(t for t in starport["facts"]["targets"] if t["name"] == "from_the_future")
    assert target["age_seconds"] < 0  # reported as measured, never clamped to "0 seconds ago"
    assert rc in (1, 2)
