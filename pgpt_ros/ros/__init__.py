"""The ROS 2 side: the perception node, image <-> numpy, message building, overlay drawing, the demo
camera, the CLI client and the bringup/demo jobs. Only this package imports rclpy."""
