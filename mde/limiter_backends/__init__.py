"""Rate-limit backends, one per module behind ``base.LimiterBackend``: ``memory`` (this process), ``postgres``
and ``redis`` (every replica shares one MDE budget, through ``shared``); ``from_url`` reads ``MDE_LIMITER_URL``."""
