"""Tag schedules: a hunting query run on a cadence, tagging every device it finds (issue 7)."""
