"""Training PerceptionGPT: the objective (losses, training-only heads), data, checkpoints, loop.

pgpt-train --config configs/default.yaml --out pgpt_ros/default_model   # see training/train.py
"""
