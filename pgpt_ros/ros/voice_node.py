"""voice_node: speech -> `command` for perception_node, and `transcript` for the user.

A lifecycle node like perception_node. configure loads the recogniser and opens the source (a
missing microphone, model or file fails here with one clear line); activate starts one worker
thread that reads audio, cuts utterances and recognises them; deactivate stops it; cleanup frees
the engine. Every utterance is published on `transcript` (what was heard, the command it became,
confidence, alternatives, speech start/end, status); forwarded ones also on `command`.

Sources: `microphone` (PortAudio), `file` (a file or folder; waits up to FILE_WAIT_S for the
command and transcript subscribers so nothing is said into the void) and `topic` (pgpt_ros/
AudioData on `audio`). With activation push_to_talk, std_msgs/Bool on `push_to_talk` opens and
closes the microphone.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import QoSProfile
from std_msgs.msg import Bool, Header, String

from pgpt_ros.msg import AudioData, Transcript
from pgpt_ros.voice.audio import AudioError
from pgpt_ros.voice.engine import EngineConfig
from pgpt_ros.voice.listener import Listener
from pgpt_ros.voice.listener import Transcript as Heard
from pgpt_ros.voice.normalise import Normaliser
from pgpt_ros.voice.params import VoiceParams, describe
from pgpt_ros.voice.recognizers import load_engine
from pgpt_ros.voice.segmenter import Segmenter
from pgpt_ros.voice.sources import FileSource, MicrophoneSource, PushSource
from pgpt_ros.voice.vad import SileroVad
from pgpt_ros.voice.vocabulary import Vocabulary

NODE_NAME = "voice_node"
QOS = QoSProfile(depth=10)
AUDIO_QOS = QoSProfile(depth=100)
FILE_WAIT_S = 10.0


def stamp(seconds: float) -> Time:
    """Wall-clock seconds -> builtin_interfaces/Time."""
    sec = int(seconds)
    return Time(sec=sec, nanosec=int(round((seconds - sec) * 1e9)) % 1_000_000_000)


class VoiceNode(LifecycleNode):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        values = {
            name: self.declare_parameter(
                name, default, ParameterDescriptor(description=help, read_only=True)
            ).value
            for name, default, help in describe()
        }
        self.params = VoiceParams(**values).validated()
        self._listener: Listener | None = None
        self._source: Any = None
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._inputs: list[Any] = []
        self._lock = threading.Lock()  # the listener: fed by the worker, gated by push_to_talk

    # ------------------------------------------------------------------ lifecycle

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        params = self.params
        try:
            vocabulary = Vocabulary.load(params.vocabulary_file)
            engine = load_engine(
                EngineConfig(
                    engine=params.engine,
                    model_path=params.model_path,
                    bias=params.bias,
                    vocabulary=vocabulary,
                    threads=params.threads,
                    beam_size=params.beam_size,
                )  # fmt: skip
            )
            self._listener = Listener(
                engine, Segmenter(SileroVad(), params.segmenter_config()), Normaliser(vocabulary),
                min_confidence=params.min_confidence, activation=params.activation,
                wake_word=params.wake_word,
            )  # fmt: skip
            self._source = self._open_source()
        except (FileNotFoundError, ValueError, RuntimeError) as error:
            self.get_logger().error(f"cannot configure: {error}")
            self._listener = None
            return TransitionCallbackReturn.FAILURE
        self._command_pub = self.create_lifecycle_publisher(String, "command", QOS)
        self._transcript_pub = self.create_lifecycle_publisher(Transcript, "transcript", QOS)
        self.get_logger().info(f"{engine.name} ready; source {params.source}")
        return TransitionCallbackReturn.SUCCESS

    def _open_source(self) -> Any:
        params = self.params
        if params.source == "file":
            return FileSource(params.file_path, realtime=params.realtime, on_error=self._bad_audio)
        if params.source == "microphone":
            return MicrophoneSource(params.device, params.sample_rate)
        return PushSource()

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self.params.source == "topic":
            self._inputs.append(
                self.create_subscription(AudioData, "audio", self._on_audio, AUDIO_QOS)
            )
        if self.params.activation == "push_to_talk":
            self._inputs.append(
                self.create_subscription(Bool, "push_to_talk", self._on_push_to_talk, QOS)
            )
        result = super().on_activate(state)  # activates the publishers the worker uses
        self._stop.clear()
        self._worker = threading.Thread(target=self._work, name="pgpt-voice", daemon=True)
        self._worker.start()
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stop_listening()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stop_listening()
        self.release()
        return TransitionCallbackReturn.SUCCESS

    def stop_listening(self) -> None:
        """Stops the worker and the subscriptions. Idempotent."""
        for subscription in self._inputs:
            self.destroy_subscription(subscription)
        self._inputs = []
        self._stop.set()
        if self._worker is not None:
            self._worker.join()
            self._worker = None

    def release(self) -> None:
        """Closes the source, frees the engine and the publishers. Idempotent."""
        if self._source is not None:
            self._source.close()
            self._source = None
        self._listener = None
        for publisher in ("_command_pub", "_transcript_pub"):
            if hasattr(self, publisher):
                self.destroy_lifecycle_publisher(getattr(self, publisher))
                delattr(self, publisher)

    # ------------------------------------------------------------------ inputs

    def _on_audio(self, msg: AudioData) -> None:
        start_s = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        try:
            samples = np.asarray(msg.samples, np.int16)
            self._source.push(samples, msg.sample_rate, msg.channels, start_s)
        except AudioError as error:
            self._bad_audio(f"audio message from {msg.header.frame_id or '?'}: {error}")

    def _on_push_to_talk(self, msg: Bool) -> None:
        with self._lock:
            found = self._listener.set_talking(msg.data)
        for heard in found:
            self._publish(heard)

    # ------------------------------------------------------------------ the worker

    def _work(self) -> None:
        if self.params.source == "file":
            self._wait_for_subscribers()
        listener = self._listener
        for chunk in self._source.chunks(self._stop):
            with self._lock:
                found = listener.feed(chunk.samples, chunk.start_s)
                found += listener.end_stream() if chunk.end_of_stream else []
            for heard in found:
                self._publish(heard)
        if self.params.source == "file" and not self._stop.is_set():
            self.get_logger().info("file source finished")

    def _wait_for_subscribers(self) -> None:
        deadline = time.monotonic() + FILE_WAIT_S
        while time.monotonic() < deadline and not self._stop.is_set():
            if all(p.get_subscription_count() for p in (self._command_pub, self._transcript_pub)):
                return
            time.sleep(0.05)

    def _publish(self, heard: Heard) -> None:
        msg = Transcript(
            header=Header(stamp=stamp(heard.end_s), frame_id=self.params.source),
            start=stamp(heard.start_s),
            end=stamp(heard.end_s),
            text=heard.text,
            command=heard.command,
            confidence=float(heard.confidence),
            alternatives=list(heard.alternatives),
            engine=self._listener.engine.name if self._listener else "",
            processing_s=float(heard.processing_s),
            status=getattr(Transcript, heard.status),
            status_message=heard.message,
        )
        if heard.forwarded:
            self._command_pub.publish(String(data=heard.command))
            self.get_logger().info(f"heard {heard.text!r} -> command {heard.command!r}")
        else:
            self.get_logger().info(f"heard {heard.text!r}: {heard.status}: {heard.message}")
        self._transcript_pub.publish(msg)

    def _bad_audio(self, message: str) -> None:
        """An unreadable file or message: one warning and a BAD_AUDIO transcript; then go on."""
        self.get_logger().warning(f"BAD_AUDIO: {message}")
        if hasattr(self, "_transcript_pub"):
            now = stamp(time.time())
            self._transcript_pub.publish(
                Transcript(
                    header=Header(stamp=now, frame_id=self.params.source),
                    start=now,
                    end=now,
                    status=Transcript.BAD_AUDIO,
                    status_message=message,
                )  # fmt: skip
            )


def spin(node: VoiceNode) -> int:
    """Autostarts if asked, spins until shutdown, tears down. Returns the exit status."""
    executor = MultiThreadedExecutor(num_threads=2)
    executor.add_node(node)
    try:
        if node.params.autostart:
            for transition in (node.trigger_configure, node.trigger_activate):
                if transition() != TransitionCallbackReturn.SUCCESS:
                    node.get_logger().error(f"autostart failed at {transition.__name__}")
                    return 1
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.stop_listening()
        node.release()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``voice_node [--ros-args ...]``; 2 on invalid parameters."""
    rclpy.init(args=argv)
    try:
        node = VoiceNode()
    except (ValueError, ParameterException) as error:
        rclpy.logging.get_logger(NODE_NAME).error(str(error))
        rclpy.try_shutdown()
        return 2
    return spin(node)


if __name__ == "__main__":
    raise SystemExit(main())
