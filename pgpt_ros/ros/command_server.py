"""Accepted commands -> a bounded queue -> one worker thread -> exactly one answer per command.

Callbacks never run the model: ``submit`` queues a job or answers it at once (BUSY when the
queue is full, STOPPING once the server stops). The worker answers queued jobs in order with
``answer(job)``; an exception becomes an INTERNAL_ERROR answer, never a dead worker. When the
queue is empty, the worker asks ``idle()`` for a job of its own (the standing command's next
answer): one-shot commands always go first. ``stop``
answers every job still waiting, and the one being computed, with STOPPING, so no caller waits
for an answer that will never come; the worker's late result for that job is dropped
(``Job.finish`` keeps the first answer). Plain threading, no rclpy: tested on its own.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from pgpt_ros.msg import DetectionArray
from pgpt_ros.ros.records import Job

log = logging.getLogger(__name__)

# A status answer for a job: (job, status code, message) -> message.
StatusMaker = Callable[[Job, int, str], DetectionArray]
IDLE_POLL_S = 0.01  # how often an idle worker looks for the standing command's next answer


class CommandServer:
    """The node's command queue and its worker.

    Arguments:
        answer: computes a job's answer on the worker thread (any exception is reported); None
            means the job asks for no answer (it is not a command).
        deliver: finishes the job with an answer and publishes it if that finished it (a job
            answered STOPPING meanwhile is neither finished nor published again).
        status: builds a status answer for a job.
        queue_size (int): jobs that may wait; more are answered BUSY.
        idle: returns a job to do when none waits, or None.
    """

    def __init__(
        self,
        answer: Callable[[Job], DetectionArray | None],
        deliver: Callable[[Job, DetectionArray], None],
        status: StatusMaker,
        queue_size: int,
        idle: Callable[[], Job | None] = lambda: None,
    ) -> None:
        self._answer = answer
        self._idle = idle
        self._deliver = deliver
        self._status = status
        self._jobs: queue.Queue[Job] = queue.Queue(maxsize=queue_size)
        self._queue_size = queue_size
        self._stopping = threading.Event()
        self._current: Job | None = None
        self._lock = threading.Lock()  # guards _current and the stop/submit race
        self._worker = threading.Thread(target=self._work, name="pgpt-inference", daemon=True)

    @property
    def waiting(self) -> int:
        return self._jobs.qsize()

    def start(self) -> None:
        self._worker.start()

    def submit(self, job: Job) -> bool:
        """Queues ``job``, or answers it now (BUSY, STOPPING); True when it was queued."""
        with self._lock:
            if self._stopping.is_set():
                reason = "the node is stopping"
                self._deliver(job, self._status(job, DetectionArray.STOPPING, reason))
                return False
            try:
                self._jobs.put_nowait(job)
                return True
            except queue.Full:
                pass
        message = f"{self._queue_size} commands are already waiting"
        self._deliver(job, self._status(job, DetectionArray.BUSY, message))
        return False

    def stop(self, reason: str, timeout_s: float = 2.0) -> None:
        """Answers everything not yet answered with STOPPING (``reason``), stops the worker and
        waits up to ``timeout_s`` for it to leave the model. Idempotent."""
        with self._lock:
            self._stopping.set()
            pending = [self._current] if self._current is not None else []
            while not self._jobs.empty():
                pending.append(self._jobs.get_nowait())
        for job in pending:
            self._deliver(job, self._status(job, DetectionArray.STOPPING, reason))
        if self._worker.is_alive() and threading.current_thread() is not self._worker:
            self._worker.join(timeout_s)
            if self._worker.is_alive():
                log.warning("the worker is still in the model after %.1f s; leaving it", timeout_s)

    def _work(self) -> None:
        while not self._stopping.is_set():
            try:
                job = self._jobs.get(timeout=IDLE_POLL_S)
            except queue.Empty:
                job = self._idle()
                if job is None:
                    continue
            with self._lock:
                if self._stopping.is_set():
                    return  # stop() answers it
                self._current = job
            try:
                result = self._answer(job)
            except Exception as error:  # the model is third-party code: report, keep serving
                result = self._status(job, DetectionArray.INTERNAL_ERROR,
                                      f"{type(error).__name__}: {error}")  # fmt: skip
            with self._lock:
                self._current = None
            if result is not None:
                self._deliver(job, result)  # a no-op when stop() answered the job meanwhile
