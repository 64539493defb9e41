"""Chat surfaces (Slack, Teams, console), the aiohttp web server and the command line."""
