"""The built-in simulated site: Deleuze, Mire and Outpost behind consoles and BMCs, on loopback only.

Modules, one job each:

- ``config``: options (scenarios, faults, candidate passwords) and host profiles from the lab-* inventory;
- ``platforms``: Debian releases (kernel, SysRq wording, LSB style) and the boot templates in data/boots;
- ``machine``: one host: power, boot, kernel messages, SysRq, getty/login, the console tty;
- ``shell``: the command language; ``commands``: the programs (bos, sv, init scripts, systemctl, ps, ...);
- ``services``: service and process state; ``afs``: Deleuze's fileserver and salvager;
- ``sysrq``: the kernel's SysRq answers; ``site``: what hosts see of each other;
- ``frontends``: the IP-KVM menu and the service processor CLI; ``server``: telnet/raw/stdio serving;
- ``bmc``: the BMC control channel; ``sshshell``: ``--shell``, the SSH path without a console.

Nothing typed at a simulated shell is ever executed on the machine running the simulator. Its hosts
carry their own console hostnames (``*-sim``) and BMC GUIDs, so nothing aimed at them can be mistaken
for a real server.
"""
