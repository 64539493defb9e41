"""Microsoft Teams: the app package now; the Agents SDK surface is the next step (issue 5)."""
