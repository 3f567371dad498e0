"""The session over a transport (expect/send) and its transcript."""
