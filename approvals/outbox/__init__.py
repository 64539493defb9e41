"""The stored event feed chat surfaces consume, their cursors, and where each card was posted."""
