"""The control plane's building blocks: Cedar policies, guardrails, the credential vault, the
audit ledger and governed SQL. The tool gate composes them; each is usable on its own."""
