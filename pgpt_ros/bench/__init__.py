"""Benchmarks behind ``pgpt-bench`` that run without ROS: head backends, the decoding path, the
physical floor, a training step, speech recognition (those that start nodes are in ``pgpt_ros.ros``)."""
