"""The Slack surface: slack-bolt's AsyncApp on the project's aiohttp server, Block Kit cards."""
