"""``scripts/teams-playground``: the MDE simulator, the bot on SQLite and Microsoft's Agents Playground on
loopback (``stack``), and the headless browser check that drives the Playground's page (``check``)."""
