"""Actions: single verified acts on a console (SysRq, power, login, shell commands)."""
