"""The built-in simulated server: a console that boots, answers SysRq and offers a login.

It only ever listens on loopback and its hosts carry their own console hostnames,
so nothing aimed at it can be mistaken for a real machine.
"""
