"""A local console chat, like the shell adapters of Hubot and errbot: the whole flow with no credentials."""
