"""``--ray [ADDRESS]``: the batch's files on a Ray cluster, one task per file, the ledger on the driver.

Ray Core actors each hold a ``FileWorker`` (the models loaded once per actor) and run one file per
call, decoding and encoding inside the actor from and to the shared file system, so frames never
cross the object store; only the job (two paths) goes out and the ``FileResult`` comes back.
Each actor asks for a GPU or a share of one (``num_gpus`` 1, or 0.25 so four files share a
device); on a cluster without GPUs for ``num_cpus``. An actor that dies (a node lost, the OOM
killer) is restarted by Ray (``max_restarts``); its call fails at once (no hidden retries, so
``max_task_retries`` stays 0) and the driver puts the file back in the queue, counting the
attempt in the ledger like any other failure, so a file that kills its worker every time ends
failed instead of looping.

The outputs are those of a local run with the same settings, byte for byte: the worker is the
same code, the restorer's batches do not depend on timing (``settings.batch_config``), each actor
runs torch with the driver's number of CPU threads (Ray would set one per CPU it grants, and
torch's CPU kernels split their sums by thread: other threads, other last bits), and x264
is deterministic for a given thread count (its threads follow the machine's cores, as locally;
outputs made on machines of other core counts differ in their bytes, not in their frames).
Ray is imported only here, and only when ``--ray`` is given (the ``ray`` extra).
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from panini_video.batch.worker import FileJob, FileResult, FileWorker
from panini_video.config import RunConfig
from panini_video.errors import ProcessingError, UsageError

log = logging.getLogger(__name__)

MAX_RESTARTS = 4  # restarts of one actor before Ray gives it up (its files go to the others)


class _BatchActor:
    """The actor's body: one ``FileWorker`` for the actor's life."""

    def __init__(self, config: RunConfig, torch_threads: int) -> None:
        import torch

        torch.set_num_threads(torch_threads)  # the driver's count: CPU kernels sum in the same order
        self.worker = FileWorker(config, name=f"ray:{os.uname().nodename}:{os.getpid()}")
        self.worker.load()

    def pid(self) -> int:
        return os.getpid()

    def process(self, job: FileJob) -> FileResult:
        return self.worker.process(job)


def import_ray() -> Any:
    try:
        import ray
    except ImportError as e:
        raise UsageError("--ray needs Ray: pip install 'panini-video[ray]'") from e
    return ray


class RayExecutor:
    """Files on Ray actors (see the module doc); ``jobs``: actors on a CPU-only cluster (else one per GPU share)."""

    name = "ray"

    def __init__(
        self,
        config: RunConfig,
        *,
        address: str | None = None,
        jobs: int = 1,
        gpus: float | None = None,
        num_cpus: float | None = None,
    ) -> None:
        ray = import_ray()
        self._ray = ray
        self._owns = not ray.is_initialized()
        if self._owns:
            ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING)
        resources = ray.cluster_resources()
        total_gpus = float(resources.get("GPU", 0.0))
        wants_gpu = (config.restore.device or "").startswith("cuda") or (config.restore.device is None and total_gpus)
        if wants_gpu:
            share = gpus if gpus is not None else 1.0
            if not 0 < share <= 1:
                raise UsageError(f"--gpus-per-file {share}: give a share of one GPU, above 0 and at most 1")
            count = max(1, int(total_gpus / share + 1e-9)) * max(1, jobs if share == 1.0 else 1)
            options: dict[str, Any] = {"num_gpus": share, "num_cpus": num_cpus or 1}
        else:
            count = max(1, jobs)
            cpus = num_cpus or max(1.0, float(resources.get("CPU", 1.0)) // count)
            options = {"num_cpus": cpus}
        actor_class = ray.remote(max_restarts=MAX_RESTARTS, max_task_retries=0, **options)(_BatchActor)
        import torch

        threads = torch.get_num_threads()
        self._actors = [actor_class.remote(config, threads) for _ in range(count)]
        # asked now: a busy actor answers only once its file is done (its calls run one at a time)
        self._pids: dict[Any, int] = dict(
            zip(self._actors, ray.get([a.pid.remote() for a in self._actors]), strict=True)
        )
        self._idle = list(self._actors)
        self._running: dict[Any, tuple[FileJob, Any]] = {}  # ObjectRef -> (job, actor)
        self._recovering: dict[Any, Any] = {}  # ObjectRef of pid() -> an actor restarting after a loss
        log.info("Ray: %d actor(s), each %s", count, options)

    @property
    def slots(self) -> int:
        """Actors ready or busy; one restarting after a loss counts again once it answers."""
        return len(self._idle) + len(self._running)

    def running(self) -> dict[str, int]:
        """The files in progress and the process id of the actor running each (tests kill one)."""
        out = {}
        for job, actor in list(self._running.values()):
            if actor not in self._pids:
                self._pids[actor] = self._ray.get(actor.pid.remote(), timeout=60)
            out[job.input] = self._pids[actor]
        return out

    def submit(self, job: FileJob) -> None:
        actor = self._idle.pop(0)
        self._running[actor.process.remote(job)] = (job, actor)

    def poll(self, timeout: float) -> list[FileResult]:
        waiting = [*self._running, *self._recovering]
        if not waiting:
            raise ProcessingError("every Ray actor was lost (restarts used up); see the Ray logs")
        ready, _ = self._ray.wait(waiting, num_returns=len(waiting), timeout=timeout)
        results = []
        for ref in ready:
            if ref in self._recovering:  # a restarted actor answers again: it takes files again
                actor = self._recovering.pop(ref)
                try:
                    self._pids[actor] = self._ray.get(ref)
                    self._idle.append(actor)
                except self._ray.exceptions.ActorUnavailableError:  # still restarting: ask again soon
                    time.sleep(0.1)
                    self._recovering[actor.pid.remote()] = actor
                except Exception as exc:  # gone for good (its restarts used up)
                    log.warning("a Ray actor is gone for good: %s", exc)
                continue
            job, actor = self._running.pop(ref)
            try:
                results.append(self._ray.get(ref))
                self._idle.append(actor)
            except Exception as exc:  # the actor died (RayActorError) or the call broke: retried by the driver
                self._pids.pop(actor, None)  # a restarted actor has another process
                self._recovering[actor.pid.remote()] = actor  # no file for it until it is back
                log.warning("%s: the Ray worker failed: %s", job.input, exc)
                self._remove_temps_of(job)
                name = type(exc).__name__
                results.append(FileResult(job, False, error=f"the Ray worker was lost ({name})", worker="ray"))
        return results

    def _remove_temps_of(self, job: FileJob) -> None:
        """The dead actor's temporary files, when its process was on this machine (a one-node cluster).

        Temporary names carry a process id, not a host: on a cluster of several nodes an id that
        is not alive here may be alive there, so the next run's start (no actor alive) removes them.
        """
        if len(self._ray.nodes()) == 1:
            from pathlib import Path

            from panini_video import outputs

            outputs.remove_stale_temps([Path(job.output).parent])

    def stop(self, grace: float) -> list[FileResult]:
        """Kill the busy actors (their temporary files are left to the next run, which removes them)."""
        out = []
        for job, actor in list(self._running.values()):
            self._ray.kill(actor, no_restart=True)
            out.append(FileResult(job, False, error="interrupted", interrupted=True, worker="ray"))
        self._running.clear()
        return out

    def close(self) -> None:
        for actor in self._actors:
            try:
                self._ray.kill(actor, no_restart=True)
            except Exception as exc:  # already gone
                log.debug("ray.kill: %s", exc)
        self._actors.clear()
        if self._owns:
            self._ray.shutdown()
