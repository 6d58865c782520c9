"""Fault runs: a whole deployment as processes, with faults injected and
servers killed and restarted while a job runs."""
