"""The thin port every chat platform implements; see ``base.ChatSurface``."""
