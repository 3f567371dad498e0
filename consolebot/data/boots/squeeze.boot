@@# Debian 6.0 (squeeze), sysvinit 2.88, Linux 2.6.32: the boot part of crash_boot_salvage_nowait.log.
@@# '@@crash:' lines (ext4/ext3 journal recovery) only after an unclean shutdown.
[0m[2J[01;01H[0;37;40mInitializing firmware interfaces...

[1;1H[2JLoading Linux 2.6.32-5-amd64 ...
Loading initial ramdisk ...
[    0.000000] Initializing cgroup subsys cpuset
[    0.000000] Initializing cgroup subsys cpu
[    0.000000] Linux version 2.6.32-5-amd64 (Debian 2.6.32-48squeeze6) (jmm@debian.org) (gcc version 4.3.5 (Debian 4.3.5-4) ) #1 SMP Tue May 13 16:34:35 UTC 2014
[    0.000000] Command line: BOOT_IMAGE=/boot/vmlinuz-2.6.32-5-amd64 root=UUID=0b0c9a4e-3c4d-4f1e-8a53-6f3a9d2b8c71 ro console=tty0 console=ttyS1,115200n8
[    0.000000] KERNEL supported cpus:
[    0.000000]   Intel GenuineIntel
[    0.000000]   AMD AuthenticAMD
[    0.000000]   Centaur CentaurHauls
[    0.000000] BIOS-provided physical RAM map:
[    0.000000]  BIOS-e820: 0000000000000000 - 000000000009c000 (usable)
[    0.000000]  BIOS-e820: 000000000009c000 - 00000000000a0000 (reserved)
[    0.000000]  BIOS-e820: 0000000000100000 - 00000000cf379000 (usable)
[    0.000000] DMI 2.6 present.
[    0.000000] Kernel command line: BOOT_IMAGE=/boot/vmlinuz-2.6.32-5-amd64 root=UUID=0b0c9a4e-3c4d-4f1e-8a53-6f3a9d2b8c71 ro console=tty0 console=ttyS1,115200n8
[    0.000000] console [tty0] enabled
[    0.000000] console [ttyS1] enabled
[    0.544812] Booting processor 1 APIC 0x2 ip 0x6000
[    1.102230] serial8250: ttyS1 at I/O 0x2f8 (irq = 3) is a 16550A
[    1.410977] Freeing unused kernel memory: 580k freed
Loading, please wait...
[    2.204417] sd 0:0:0:0: [sda] 488397168 512-byte logical blocks: (250 GB/232 GiB)
[    2.219872]  sda: sda1 sda2 sda3
[    2.230051] sd 0:0:1:0: [sdb] 3904897024 512-byte logical blocks: (1.99 TB/1.81 TiB)
[    2.251104]  sdb: sdb1
@@crash:[    3.117365] EXT4-fs (sda1): INFO: recovery required on readonly filesystem
@@crash:[    3.117393] EXT4-fs (sda1): write access will be enabled during recovery
@@crash:[    3.644185] EXT4-fs (sda1): recovery complete
[    3.648810] EXT4-fs (sda1): mounted filesystem with ordered data mode
INIT: version 2.88 booting
Using makefile-style concurrent boot in runlevel S.
Starting the hotplug events dispatcher: udevd.
Synthesizing the initial hotplug events...done.
Waiting for /dev to be fully populated...done.
Activating swap...done.
Checking root file system...fsck from util-linux-ng 2.17.2
/dev/sda1: clean, 61234/1220608 files, 1048012/4882432 blocks
done.
Loading kernel modules...done.
Checking file systems...fsck from util-linux-ng 2.17.2
@@crash:/dev/sdb1: recovering journal
/dev/sdb1: clean, 412871/122068992 files, 301377118/488112128 blocks
done.
Mounting local filesystems...done.
Activating swapfile swap...done.
Configuring network interfaces...done.
[   10.288104] EXT3-fs: barriers not enabled
[   10.301556] EXT3-fs (sdb1): using internal journal
[   10.301562] EXT3-fs (sdb1): mounted filesystem with ordered data mode
INIT: Entering runlevel: 2
Using makefile-style concurrent boot in runlevel 2.
@@services
