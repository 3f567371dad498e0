@@# Debian 11 (bullseye), sysvinit 2.96, Linux 5.10. '@@panic:' lines: panic_during_boot.log (root device
@@# not found); '@@nopanic:' lines: an ordinary boot, ASSUMED by analogy with the stretch/bookworm boots.
[0m[2J[01;01H[0;37;40mInitializing firmware interfaces...
[2J[01;01HLoading Linux 5.10.0-28-amd64 ...
[    0.000000] Linux version 5.10.0-28-amd64 (debian-kernel@lists.debian.org) (gcc-10 (Debian 10.2.1-6) 10.2.1 20210110, GNU ld (GNU Binutils for Debian) 2.35.2) #1 SMP Debian 5.10.209-2 (2024-01-31)
[    0.000000] Command line: BOOT_IMAGE=/boot/vmlinuz-5.10.0-28-amd64 root=UUID=5f0c4c7e-3b6a-4d57-9a8e-2d3c1b0a9e11 ro console=tty0 console=ttyS1,115200n8
[    0.000000] x86/fpu: x87 FPU will use FXSAVE
[    0.000000] BIOS-provided physical RAM map:
[    0.000000] BIOS-e820: [mem 0x0000000000000000-0x000000000009bfff] usable
[    0.000000] DMI: Dell Inc. PowerEdge R410/01V648, BIOS 1.12.0 07/30/2013
[    0.012710] Kernel command line: BOOT_IMAGE=/boot/vmlinuz-5.10.0-28-amd64 root=UUID=5f0c4c7e-3b6a-4d57-9a8e-2d3c1b0a9e11 ro console=tty0 console=ttyS1,115200n8
[    0.144113] printk: console [tty0] enabled
[    0.144131] printk: console [ttyS1] enabled
[    1.301872] 00:05: ttyS1 at I/O 0x2f8 (irq = 3, base_baud = 115200) is a 16550A
@@panic:[    1.772013] VFS: Cannot open root device "UUID=5f0c4c7e-3b6a-4d57-9a8e-2d3c1b0a9e11" or unknown-block(0,0): error -6
@@panic:[    1.782624] Please append a correct "root=" boot option; here are the available partitions:
@@panic:[    1.791331] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)
@@panic:[    1.799817] CPU: 2 PID: 1 Comm: swapper/0 Not tainted 5.10.0-28-amd64 #1
@@panic:[    1.807052] Hardware name: Dell Inc. PowerEdge R410/01V648, BIOS 1.12.0 07/30/2013
@@panic:[    1.814839] Call Trace:
@@panic:[    1.817447]  dump_stack+0x6b/0x83
@@panic:[    1.820914]  panic+0x101/0x2d7
@@panic:[    1.824033]  mount_block_root+0x2f5/0x314
@@panic:[    1.828199]  prepare_namespace+0x13b/0x16a
@@panic:[    1.832452]  kernel_init_freeable+0x21c/0x227
@@panic:[    1.836965]  ? rest_init+0xa4/0xa4
@@panic:[    1.840519]  kernel_init+0xa/0x10c
@@panic:[    1.844073]  ret_from_fork+0x22/0x30
@@panic:[    1.847826] Kernel Offset: 0x1e000000 from 0xffffffff81000000 (relocation range: 0xffffffff80000000-0xffffffffbfffffff)
@@panic:[    1.859072] ---[ end Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0) ]---
@@nopanic:[    1.772013] Freeing unused kernel image (initmem) memory: 2380K
@@nopanic:[    1.791142] Run /init as init process
@@nopanic:Loading, please wait...
@@nopanic:@@verbose:Begin: Loading essential drivers ... done.
@@nopanic:@@verbose:Begin: Running /scripts/init-premount ... done.
@@nopanic:@@verbose:Begin: Mounting root file system ... Begin: Running /scripts/local-top ... done.
@@nopanic:@@verbose:Begin: Running /scripts/local-premount ... done.
@@nopanic:@@verbose:Begin: Will now check root file system ... fsck from util-linux 2.36.1
@@nopanic:@@verbose:[/sbin/fsck.ext4 (1) -- /dev/sda1] fsck.ext4 -a -C0 /dev/sda1 
@@nopanic:@@verbose:/dev/sda1: clean, 61240/1220608 files, 1048133/4882432 blocks
@@nopanic:@@verbose:done.
@@nopanic:[    3.412776] EXT4-fs (sda1): mounted filesystem with ordered data mode. Opts: (null)
@@nopanic:@@verbose:done.
@@nopanic:@@verbose:Begin: Running /scripts/local-bottom ... done.
@@nopanic:@@verbose:Begin: Running /scripts/init-bottom ... done.
@@nopanic:INIT: version 2.96 booting
@@nopanic:
@@nopanic:[[36minfo[39;49m] Using makefile-style concurrent boot in runlevel S.
@@nopanic:[....] Starting hotplug events dispatcher: systemd-udevd[?25l[?1c7[1G[[32m ok [39;49m8[?25h[?0c.
@@nopanic:[....] Synthesizing the initial hotplug events...[?25l[?1c7[1G[[32m ok [39;49m8[?25h[?0cdone.
@@nopanic:[....] Waiting for /dev to be fully populated...[?25l[?1c7[1G[[32m ok [39;49m8[?25h[?0cdone.
@@nopanic:[....] Activating swap...[?25l[?1c7[1G[[32m ok [39;49m8[?25h[?0cdone.
@@nopanic:[....] Checking file systems...fsck from util-linux 2.36.1
@@nopanic:@@crash:/dev/sda3: recovering journal
@@nopanic:/dev/sda3: clean, 412871/122068992 files, 301377118/488112128 blocks
@@nopanic:[?25l[?1c7[1G[[32m ok [39;49m8[?25h[?0cdone.
@@nopanic:[....] Mounting local filesystems...[?25l[?1c7[1G[[32m ok [39;49m8[?25h[?0cdone.
@@nopanic:[....] Configuring network interfaces...[?25l[?1c7[1G[[32m ok [39;49m8[?25h[?0cdone.
@@nopanic:INIT: Entering runlevel: 2
@@nopanic:[[36minfo[39;49m] Using makefile-style concurrent boot in runlevel 2.
@@nopanic:@@services
