"""The real lab: QEMU guests (marked ``lab``)."""
