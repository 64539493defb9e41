"""Turn a target expression into a frozen device set, with every exclusion explained."""
