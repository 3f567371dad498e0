"""Power control: the BMC side (status, on, off, reset, cycle, diag) and the identity it reports."""
