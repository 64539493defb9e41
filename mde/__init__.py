"""Microsoft Defender for Endpoint: a typed async client and a faithful local simulator."""
