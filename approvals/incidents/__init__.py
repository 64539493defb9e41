"""Incident notifications (Sentinel, Defender XDR / Graph): store, rules, war-room threads, proposals."""
