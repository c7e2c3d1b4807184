"""Tools a user runs: the command line, the demo and the CRM simulator (the top layer)."""
