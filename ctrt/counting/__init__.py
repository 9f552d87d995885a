"""Counting: lines crossed and zones entered and left, per camera, by the tracks of a run or a session."""
