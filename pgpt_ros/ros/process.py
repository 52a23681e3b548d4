"""Running a serving lifecycle node as its own process: autostart, spin, and a graceful stop.

rclpy's default signal handler shuts the context down at once: every pending service call is then
lost, a response sent a moment later hits a destroyed handle, and a worker thread in the model can
keep the process alive. Here SIGINT and SIGTERM (and the node's own lifecycle ``shutdown``) only
ask the spin loop to stop; the loop then has the node answer everything pending
(``stop_serving``), keeps spinning until those answers have gone out (at most
``DRAIN_TIMEOUT_S``), frees the model, destroys the node and the ROS context, and ends the
process with ``os._exit``: after that explicit cleanup, the interpreter's own finalization (module
teardown, the thread pools' atexit joins) has nothing left to release but took 1.5-2 s on a busy
2-core machine, which would make one signal feel ignored. One signal, a few hundred milliseconds.

rclpy's ``LifecycleNode.destroy_node`` (rclpy 9) leaves the node's C++ lifecycle state machine,
which holds the node's handle and with it the DDS participant: its shared-memory segments under
/dev/shm (4 files, 34 MB each) stayed after every run, as ``os._exit`` skips the collection that
would free them, and a worker thread stuck in the model keeps the node from being collected at
all. ``serve`` destroys the state machine with the node, so a robot that restarts its node does
not fill /dev/shm.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from typing import NoReturn, Protocol

import rclpy
from rclpy.executors import MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.signals import SignalHandlerOptions

DRAIN_TIMEOUT_S = 1.0
SPIN_PERIOD_S = 0.05


class ServingNode(Protocol):
    """What a node run by ``serve`` provides besides being a LifecycleNode."""

    exit_requested: threading.Event

    def stop_serving(self, reason: str, wait_s: float) -> None: ...

    def release(self) -> None: ...

    def calls_in_flight(self) -> int: ...


def init(argv: list[str] | None) -> None:
    """rclpy without its signal handler: ``serve`` installs its own."""
    rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)


def serve(node: LifecycleNode, *, autostart: bool, threads: int = 4) -> int:
    """Spins ``node`` until a signal or its lifecycle shutdown; returns the exit status (1 when
    autostart could not configure or activate it: the node logged why)."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    executor = MultiThreadedExecutor(num_threads=threads)
    executor.add_node(node)
    status = 0
    try:
        if autostart:
            for transition in (node.trigger_configure, node.trigger_activate):
                if transition() != TransitionCallbackReturn.SUCCESS:
                    node.get_logger().error(f"autostart stopped at {transition.__name__}")
                    status = 1
                    break
        while status == 0 and not stop.is_set() and not node.exit_requested.is_set():
            executor.spin_once(timeout_sec=SPIN_PERIOD_S)
        # The process is ending: a worker still in the model is not waited for (it is a daemon
        # thread, and the command it computes is answered STOPPING like every other).
        node.stop_serving("the node is shutting down", wait_s=0.1)
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while node.calls_in_flight() and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=SPIN_PERIOD_S)
        for _ in range(3):  # the responses of the last calls are sent by the executor's tasks
            executor.spin_once(timeout_sec=SPIN_PERIOD_S)
    finally:
        node.release()
        executor.shutdown(timeout_sec=1.0)
        node.destroy_node()
        node._state_machine.destroy_when_not_in_use()  # see the module docstring
        rclpy.try_shutdown()
        rclpy.get_default_context().destroy()
    return status


def exit_now(status: int) -> NoReturn:
    """Ends the process after ``serve``'s cleanup without the interpreter's slow finalization
    (see the module docstring); output is flushed first."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(status)
