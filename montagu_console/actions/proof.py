"""Proof of a nightly copy: science.verify and science.rpo_sql against the copy replayed in a
temporary container, recorded in ``state_dir/proofs.jsonl`` and, for the nightly recover, in
the copy itself (``.montagu-proof.json`` beside ``.barman-last-restore``, so it travels with
the copy to the starport).

The record's fields are :data:`montagu_console.probes.proofs.FIELDS`; it is cleaned and
redacted before it is written anywhere, and proofs.jsonl is appended with one fsynced write.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import posixpath
import secrets
import tarfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from ..clock import parse_iso, rfc3339_ns, utc_now
from ..config import Config
from ..errors import ConsoleError
from ..probes.proofs import PROOFS_FILE
from ..redact import redact_data
from ..snapshot import Proof
from ..text import MAX_LINE_CHARS, clean, clean_data, one_line
from . import files, plans, verify
from .runs import Run
from .steps import Cancelled, StepFailed, StepRunner

PROOF_FILE = ".montagu-proof.json"  # in the copy, beside .barman-last-restore
HOW = ("nightly-recover", "prove-nightly")  # the actions whose replay proves the copy
SCRATCH_LABEL = "montagu-console.prove-nightly"  # on the scratch volume: the run that made it


def wanted(config: Config) -> bool:
    """Whether there is anything to prove a copy with (science.verify or science.rpo_sql)."""
    return bool(config.science.verify or config.science.rpo_sql)


def prove(
    config: Config,
    container: Any,
    write: Callable[[str], None],
    *,
    run_id: str | None,
    how: str,
    copy_restored_at: datetime | None,
) -> Proof:
    """Run science.verify and science.rpo_sql in ``container`` (the copy, answering) and judge them."""
    results = verify.run_verify(config, container, write)
    checks = tuple({k: r[k] for k in ("name", "value", "expect", "passed")} for r in results)
    reasons = []
    if bad := verify.failed(results):
        reasons.append("verification failed: " + ", ".join(bad))
    newest = None
    try:
        newest = verify.newest_data(config, container)
    except verify.NoTimestamp as e:
        reasons.append(str(e))
    if newest is not None:
        write(f"newest committed data in the copy: {newest.isoformat()}\n")
    now = utc_now()
    return Proof(
        proof_id=f"{now:%Y%m%dT%H%M%SZ}-{how}-{secrets.token_hex(2)}",
        run_id=run_id,
        proven_at=now,
        outcome="failed" if reasons else "passed",
        copy_restored_at=copy_restored_at,
        data_newest=newest,
        checks=checks,
        reason="; ".join(reasons) or None,
        how=how,
    )


def record_json(proof: Proof) -> dict:
    """The proof as it is written: clean strings, no secret."""
    return redact_data(clean_data(proof.to_dict()))


def append(state_dir: Path, proof: Proof) -> None:
    """Append the proof to ``state_dir/proofs.jsonl`` (one line, one write, fsynced)."""
    files.ensure_dir(Path(state_dir))
    files.append_line(Path(state_dir) / PROOFS_FILE, json.dumps(record_json(proof), sort_keys=False) + "\n")


def put_in_copy(container: Any, data_dir: str, proof: Proof) -> None:
    """Write :data:`PROOF_FILE` into the copy's directory through ``container`` (the replay, which
    mounts the copy at ``data_dir``): a tar stream through the Docker API, no shell."""
    body = (json.dumps(record_json(proof), indent=2) + "\n").encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(PROOF_FILE)
        info.size, info.mode, info.mtime = len(body), 0o644, int(time.time())
        tar.addfile(info, io.BytesIO(body))
    if not container.put_archive(data_dir, buffer.getvalue()):
        raise OSError(f"docker refused to write {PROOF_FILE} into {data_dir} of {container.name}")


def summary(proof: Proof) -> str:
    """One line for the run log: the outcome and what failed."""
    if proof.outcome == "passed":
        newest = proof.data_newest.isoformat() if proof.data_newest else "not measured"
        return f"proof {proof.proof_id}: PASSED ({len(proof.checks)} checks; newest data {newest})"
    return f"proof {proof.proof_id}: FAILED: {proof.why_failed()}"


class ProofRunner(StepRunner):
    """StepRunner of the nightly recover and of prove-nightly: once the replayed copy answers,
    the replay step proves it. A nightly recover's copy then gets the stamp its proof names (the
    timestamp step writes it); prove-nightly proves a scratch copy of the current copy, read
    through a read-only mount, and removes the scratch volume whatever happens."""

    def __init__(self, run: Run, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.runrec = run
        self.how = str(run.plan().get("action"))
        self.proven_stamp: str | None = None  # nightly recover: the stamp a passed proof named
        self.source_stamp: str | None = None  # prove-nightly: the copy's stamp, read before the copy

    def copy_stamp(self) -> str:
        return self.proven_stamp or super().copy_stamp()

    def _replay(self, step: dict) -> None:
        try:
            container = self.start_replay(step)
            try:
                self._until_ready(container, step["ready_command"], step["timeout"])
                self._prove(container, step)
            finally:
                self.stop_replay(container)
        finally:
            if step.get("scratch"):
                self._remove_scratch(step, quiet=True)

    def _prove(self, container: Any, step: dict) -> None:
        if not wanted(self.config):
            self.write("no proof: neither science.verify nor science.rpo_sql is set\n")
            return
        if self.how == "prove-nightly":
            copy_at = parse_iso(self.source_stamp) if self.source_stamp else None
            stamp = None
        else:
            stamp = rfc3339_ns(utc_now())
            copy_at = parse_iso(stamp)
        p = prove(self.config, container, self.write, run_id=self.runrec.id, how=self.how, copy_restored_at=copy_at)
        if p.outcome == "failed" and stamp is not None:
            p = dataclasses.replace(p, copy_restored_at=None)  # the copy gets no stamp: not to be used
        try:
            append(self.config.state_dir, p)
        except ConsoleError as e:
            raise StepFailed(f"the proof was not recorded: {e}") from None
        self.write(summary(p) + f" (recorded in {Path(self.config.state_dir) / PROOFS_FILE})\n")
        if stamp is not None:  # the nightly recover's copy carries its proof to the starport
            try:
                put_in_copy(container, step["data_dir"], p)
            except Exception as e:
                raise StepFailed(f"cannot write {PROOF_FILE} into the copy: {one_line(str(e))}") from None
            self.write(f"wrote {PROOF_FILE} into the copy\n")
        if p.outcome == "failed":
            raise StepFailed(f"the copy is not proven restorable: {p.why_failed()}")
        self.proven_stamp = stamp

    # -- prove-nightly's scratch copy -------------------------------------------------------------

    def _scratch_copy(self, step: dict) -> None:
        """Copy the nightly copy (mounted read-only) into a fresh scratch volume, its stamp read
        before and after: a copy that changed meanwhile is not proven."""
        import docker.errors

        client = self._docker(step["host"])
        self._remove_scratch(step, quiet=False)  # what an earlier proof may have left
        try:
            client.volumes.create(name=step["volume"], labels={SCRATCH_LABEL: self.runrec.id})
            before = self._stamp(step)
            self.write(f"the copy's {step['timestamp_file']}: {before}\n")
            rc, out = self._helper(step, ["cp", "-a", "/from/.", "/to/"])
            if rc != 0:
                raise StepFailed(f"copying volume {step['source']} into {step['volume']} failed ({rc}): {out}")
            after = self._stamp(step)
            if after != before:
                raise StepFailed(f"the nightly copy changed while it was copied ({before} then {after})")
            self.source_stamp = before
            self.write(f"copied volume {step['source']} into {step['volume']}\n")
        except docker.errors.DockerException as e:
            self._remove_scratch(step, quiet=True)
            raise StepFailed(f"{step['host']}: docker: {one_line(str(e))}") from None
        except BaseException:
            self._remove_scratch(step, quiet=True)
            raise

    def _stamp(self, step: dict) -> str:
        rc, out = self._helper(step, ["cat", posixpath.join("/from", step["timestamp_file"])])
        try:
            if rc != 0:
                raise ValueError(out)
            parse_iso(out)
        except ValueError:
            raise StepFailed(
                f"the nightly copy has no readable {step['timestamp_file']} ({one_line(out, limit=80)!r}): "
                "it is not a usable copy, so there is nothing to prove"
            ) from None
        return out.strip()

    def _helper(self, step: dict, argv: list[str]) -> tuple[int, str]:
        """Run ``argv`` in a short-lived container of the replay image, as root, the nightly copy
        at /from read-only and the scratch volume at /to, no network; (exit code, its output)."""
        client = self._docker(step["host"])
        try:
            environment = plans.env_values(self.config.nightly.replay.env, list(step.get("env_names") or []))
        except KeyError as e:
            raise StepFailed(f"nightly.replay.env no longer sets {e.args[0]}") from None
        container = client.containers.run(
            step["image"],
            argv[1:],
            name=f"{plans.PROVE_CONTAINER}-copy",
            detach=True,
            user="0",
            network_mode="none",
            environment=environment,
            entrypoint=argv[:1],  # the program itself, not the image's entrypoint
            volumes=[f"{step['source']}:/from:ro", f"{step['volume']}:/to:rw", *(step.get("mounts") or [])],
        )
        try:
            deadline = time.monotonic() + float(step["timeout"])
            while True:
                container.reload()
                if container.status in ("exited", "dead"):
                    break
                if self.cancelled():
                    raise Cancelled()
                if time.monotonic() > deadline:
                    raise StepFailed(f"`{' '.join(argv)}` did not end in {step['timeout']} s")
                time.sleep(0.5)
            rc = int(container.attrs.get("State", {}).get("ExitCode", -1))
            return rc, clean(container.logs(), limit=MAX_LINE_CHARS * 20).strip()
        finally:
            with contextlib.suppress(Exception):
                container.remove(force=True)

    def _remove_scratch(self, step: dict, *, quiet: bool) -> None:
        """Remove the scratch volume (and a helper left by a crash); quiet: a failure is a warning."""
        import docker.errors

        client = self._docker(step["host"])
        for name in (f"{plans.PROVE_CONTAINER}-copy",):
            with contextlib.suppress(docker.errors.NotFound):
                client.containers.get(name).remove(force=True)
        try:
            client.volumes.get(step["volume"]).remove(force=True)
            self.write(f"removed the scratch volume {step['volume']}\n")
        except docker.errors.NotFound:
            pass
        except docker.errors.DockerException as e:
            if not quiet:
                raise StepFailed(f"cannot remove the scratch volume {step['volume']}: {one_line(str(e))}") from None
            self.write(f"warning: could not remove the scratch volume {step['volume']}: {one_line(str(e))}\n")
