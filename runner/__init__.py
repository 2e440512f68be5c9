"""The thin runner: parse, wire, start. No trading logic lives here."""
