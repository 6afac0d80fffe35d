"""Benchmark against aws s3 sync, s5cmd and rclone: `python bench/run.py`."""
