"""The containment register: which devices are isolated now, why, since when, until when, and by whom."""
