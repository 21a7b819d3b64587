#!/usr/bin/env bash
# Builds the Hark VMware appliance without a hypervisor and without mounts, from Debian packages:
# a Debian 12 root (debootstrap) with Node, Hark and its units (appliance/setup.sh), a GPT disk with
# a GRUB EFI system partition (mtools) and an ext4 root (mkfs.ext4 -d), then the deliverables in
# vmware/out/: hark-appliance.raw, hark-appliance.ova (OVF 1.0 + manifest + streamOptimized VMDK)
# and hark-appliance-vmware.zip (.vmx + hosted VMDK), checked by vmware/validate.ts. Run as root.
set -euo pipefail
# The whole script is one compound command, read before it runs: editing it mid-build is safe.
{

HERE="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)"
# debootstrap, mkfs, sgdisk, chroot live in sbin, which a sudo or su shell may leave off PATH.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
REPO="$(cd "$HERE/.." && pwd)"
CACHE="$HERE/.cache"
OUT="$HERE/out"
NAME=hark-appliance
SUITE=bookworm
MIRROR="${HARK_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# 16 GiB virtual (thin: the OVA carries only the used blocks); hark-growroot fills a larger disk.
DISK_GIB="${HARK_DISK_GIB:-16}"
# FAT32 needs at least 32 MiB; 64 MiB leaves room for a second boot loader later.
ESP_MIB=64
# Image packages: kernel, systemd (networkd, resolved), SSH, capture libraries (libpcap for cap and
# the ring addon, libhyperscan5 for the native matcher), the VMware guest agent, and the tools the
# growroot script and the console menu call (sfdisk, partx, resize2fs, ip, ping), and ethtool, which the
# capture.offloads warning tells the operator to run.
PACKAGES=(linux-image-amd64 systemd-sysv systemd-resolved udev dbus kmod openssh-server iproute2 iputils-ping
  libpcap0.8 libhyperscan5 tcpdump ethtool ca-certificates libcap2-bin fdisk e2fsprogs open-vm-tools less)

say() { printf 'hark vmware build: %s\n' "$*"; }
die() { printf 'hark vmware build: ERROR: %s\n' "$*" >&2; exit 1; }
T0=$(date +%s)
step() { say "[$(( $(date +%s) - T0 ))s] $*"; }

usage() {
  cat <<'EOF'
Usage: vmware/build.sh [--rebuild-base]

Builds vmware/out/hark-appliance.{raw,ova} and hark-appliance-vmware.zip (about 12 minutes the
first time, 3 with the caches in vmware/.cache). Needs root and these Debian packages:
  apt-get install debootstrap mtools dosfstools gdisk qemu-utils e2fsprogs grub-efi-amd64-bin zip
  --rebuild-base   discard the cached Debian root and run debootstrap again (packages stay cached)
Environment: HARK_DISK_GIB (virtual disk size, default 16), HARK_DEBIAN_MIRROR, HARK_NODE.
EOF
}
REBUILD_BASE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --rebuild-base) REBUILD_BASE=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option \"$1\"" ;;
  esac
done

# ---- 0. prerequisites: say exactly what is missing -----------------------------------------------
[ "$(id -u)" -eq 0 ] || die "run as root: debootstrap, chroot and the image's file owners need it (sudo npm run build:appliance)"
missing=()
need() { # need COMMAND-OR-PATH PACKAGE
  if [[ "$1" == /* ]]; then [ -e "$1" ] || missing+=("$2 (for $1)"); else command -v "$1" >/dev/null 2>&1 || missing+=("$2 (for $1)"); fi
}
need debootstrap debootstrap
need mformat mtools; need mcopy mtools; need mmd mtools
need mkfs.fat dosfstools
need sgdisk gdisk
need qemu-img qemu-utils
need mkfs.ext4 e2fsprogs
need grub-mkimage grub-common
need /usr/lib/grub/x86_64-efi/linux.mod grub-efi-amd64-bin
need zip zip
need chroot coreutils
need useradd passwd
need npm npm
if [ ${#missing[@]} -gt 0 ]; then
  printf 'hark vmware build: missing prerequisite: %s\n' "${missing[@]}" >&2
  pkgs="$(printf '%s\n' "${missing[@]}" | cut -d' ' -f1 | sort -u | tr '\n' ' ')"
  die "install them with: apt-get install $pkgs"
fi
NODE_BIN="${HARK_NODE:-$(command -v node || true)}"
[ -n "$NODE_BIN" ] && [ -x "$NODE_BIN" ] || die "no Node.js found: install Node.js 20 and run again (or set HARK_NODE=/path/to/node)"
NODE_MAJOR="$("$NODE_BIN" -p 'process.versions.node.split(".")[0]')"
[ "$NODE_MAJOR" -ge 20 ] || die "Node.js \"$NODE_BIN\" is version $NODE_MAJOR; the appliance needs 20 or newer (Debian 12's own is 18)"
[ -x "$REPO/node_modules/.bin/tsc" ] || die "no TypeScript compiler in $REPO/node_modules: run npm ci in $REPO first"
for addon in sensor/match/native/build/Release/hark_hyperscan.node sensor/capture/native/build/Release/hark_ring.node; do
  [ -f "$REPO/$addon" ] || die "the native addon $addon is not built: run npm run setup (appliance/dev-setup.sh) first"
done
mkdir -p "$CACHE/debs" "$OUT"
# debootstrap mounts /proc and /sys inside its target while it runs; after an interrupted run they
# may still be there, and deleting the old root would then walk into the host's /proc.
if leftover="$(awk -v c="$CACHE/" 'index($2, c) == 1 { print $2 }' /proc/self/mounts)" && [ -n "$leftover" ]; then
  die "mounts left under vmware/.cache by an interrupted debootstrap: $(echo $leftover); run: umount $(echo $leftover)"
fi

# ---- 1. compile Hark (and this folder's packaging code) ------------------------------------------
step "compiling TypeScript into vmware/.cache/dist"
nice -n 10 "$REPO/node_modules/.bin/tsc" -p "$REPO/tsconfig.json" --outDir "$CACHE/dist" --tsBuildInfoFile "$CACHE/dist/.tsbuildinfo" >"$CACHE/tsc.log" 2>&1 || true
[ -f "$CACHE/dist/sensor/cli/hark.js" ] && [ -f "$CACHE/dist/menu/main.js" ] || { cat "$CACHE/tsc.log" >&2; die "the TypeScript build produced no sensor/cli/hark.js or menu/main.js"; }
[ -f "$CACHE/dist/vmware/package.js" ] || die "the TypeScript build did not compile vmware/package.ts (is vmware/ in tsconfig.json's include?)"

# ---- 2. production node_modules, staged on the host (same Debian 12 + same Node = same ABI) --------
LOCK_SUM="$( (cat "$REPO/package-lock.json"; "$NODE_BIN" -v) | sha256sum | cut -c1-16)"
STAGE="$CACHE/node-modules-$LOCK_SUM"
if [ -f "$STAGE/.done" ]; then
  step "node modules: cached ($STAGE)"
else
  step "node modules: npm ci --omit=dev in a staging copy"
  rm -rf "$CACHE"/node-modules-*; mkdir -p "$STAGE"
  cp "$REPO/package.json" "$REPO/package-lock.json" "$STAGE/"
  (cd "$STAGE" && PATH="$(dirname "$NODE_BIN"):$PATH" nice -n 10 npm ci --omit=dev --no-fund --no-audit --loglevel=error) || die "npm ci --omit=dev failed in $STAGE"
  touch "$STAGE/.done"
fi

# ---- 3. the Debian base root (cached by package list) ---------------------------------------------
BASE_SUM="$(printf '%s\n' "$SUITE" "${PACKAGES[@]}" | sha256sum | cut -c1-16)"
BASE="$CACHE/base-$BASE_SUM"
[ "$REBUILD_BASE" -eq 1 ] && rm -rf "$BASE"
if [ -f "$BASE/.done" ]; then
  step "Debian base: cached ($BASE)"
else
  step "Debian base: debootstrap $SUITE (packages cached in vmware/.cache/debs)"
  rm -rf "$CACHE"/base-*
  nice -n 10 debootstrap --variant=minbase --cache-dir="$CACHE/debs" --include="$(IFS=,; echo "${PACKAGES[*]}")" \
    "$SUITE" "$BASE" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 || { tail -n 30 "$CACHE/debootstrap.log" >&2; die "debootstrap failed (log: $CACHE/debootstrap.log)"; }
  chroot "$BASE" apt-get clean
  rm -rf "$BASE"/var/lib/apt/lists/* "$BASE"/var/cache/apt/*.bin
  touch "$BASE/.done"
fi

# ---- 4. the appliance root -------------------------------------------------------------------------
WORK="$CACHE/work"
ROOT="$WORK/root"
step "appliance root: copying the base"
rm -rf "$WORK"; mkdir -p "$WORK"
cp -a "$BASE" "$ROOT"; rm -f "$ROOT/.done"

step "appliance root: appliance/setup.sh --root (Node, Hark, user, units)"
HARK_SETUP_DIST="$WORK/dist"
cp -a "$CACHE/dist" "$HARK_SETUP_DIST"; rm -rf "$HARK_SETUP_DIST/vmware" "$HARK_SETUP_DIST/.tsbuildinfo"
bash "$REPO/appliance/setup.sh" --root "$ROOT" --skip-packages --dist "$HARK_SETUP_DIST" --node "$NODE_BIN" >"$WORK/setup.log" 2>&1 \
  || { cat "$WORK/setup.log" >&2; die "appliance/setup.sh failed"; }
sed 's/^/  /' "$WORK/setup.log"
cp -a "$STAGE/node_modules" "$ROOT/opt/hark/node_modules"
cp "$ROOT/opt/hark/package-lock.json" "$ROOT/opt/hark/.installed-lock.json"
# The native addons are looked up beside their binding.gyp under /opt/hark/sensor/.
for d in sensor/match/native sensor/capture/native; do
  mkdir -p "$ROOT/opt/hark/$d/build/Release"
  cp "$REPO/$d/binding.gyp" "$ROOT/opt/hark/$d/"
  cp "$REPO/$d"/build/Release/*.node "$ROOT/opt/hark/$d/build/Release/"
done
chown -R 0:0 "$ROOT/opt/hark/node_modules" "$ROOT/opt/hark/sensor"

step "appliance root: console, network, SSH, first boot"
cp -a "$HERE/image/." "$ROOT/"
chown -R 0:0 "$ROOT/etc/systemd" "$ROOT/etc/ssh/sshd_config.d" "$ROOT/usr/local/sbin"
wants() { mkdir -p "$ROOT/etc/systemd/system/$1"; ln -sfn "$2" "$ROOT/etc/systemd/system/$1/$(basename "$3")"; }
wants multi-user.target.wants /etc/systemd/system/hark.service hark.service
wants getty.target.wants /etc/systemd/system/hark-menu.service hark-menu.service
wants multi-user.target.wants /etc/systemd/system/hark-mirror@.service hark-mirror@eth1.service
wants hark.service.wants /etc/systemd/system/hark-mirror@.service hark-mirror@eth1.service
wants local-fs.target.wants /etc/systemd/system/hark-growroot.service hark-growroot.service
wants multi-user.target.wants /etc/systemd/system/hark-boot-report.service hark-boot-report.service
wants multi-user.target.wants /lib/systemd/system/systemd-networkd.service systemd-networkd.service
wants sockets.target.wants /lib/systemd/system/systemd-networkd.socket systemd-networkd.socket
wants network-online.target.wants /lib/systemd/system/systemd-networkd-wait-online.service systemd-networkd-wait-online.service
wants multi-user.target.wants /lib/systemd/system/systemd-resolved.service systemd-resolved.service
wants multi-user.target.wants /lib/systemd/system/ssh.service ssh.service
# tty1 belongs to the menu; systemd-firstboot would prompt on the console before it.
ln -sfn /dev/null "$ROOT/etc/systemd/system/getty@tty1.service"
ln -sfn /dev/null "$ROOT/etc/systemd/system/systemd-firstboot.service"
ln -sfn /run/systemd/resolve/stub-resolv.conf "$ROOT/etc/resolv.conf"
echo hark-sensor > "$ROOT/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\thark-sensor\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$ROOT/etc/hosts"
# Each VM gets its own machine id ("uninitialized" = first boot) and SSH host keys (ssh.service drop-in).
printf 'uninitialized\n' > "$ROOT/etc/machine-id"
rm -f "$ROOT/var/lib/dbus/machine-id" "$ROOT"/etc/ssh/ssh_host_*
# Lean: no documentation (copyright files stay), manuals or translations, now and after upgrades
# (dpkg path-exclude), and no modules for hardware a VM never has (sound, radio, TV, InfiniBand).
[ -n "$ROOT" ] && [ -d "$ROOT/usr/share/doc" ] || die "internal: the image root \"$ROOT\" is not set up"
cat > "$ROOT/etc/dpkg/dpkg.cfg.d/hark-excludes" <<'EOF'
# Hark appliance (vmware/build.sh): keep documentation, manuals and translations off the disk.
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
EOF
find "$ROOT/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
find "$ROOT/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$ROOT"/usr/share/man/* "$ROOT"/usr/share/info/*
find "$ROOT/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
for kdir in "$ROOT"/usr/lib/modules/*/; do
  for sub in sound drivers/media drivers/net/wireless net/wireless net/mac80211 net/bluetooth drivers/bluetooth drivers/infiniband drivers/staging drivers/isdn; do
    rm -rf "${kdir}kernel/$sub"
  done
  chroot "$ROOT" depmod "$(basename "$kdir")"
done
# Unconfigured = no settings file: hark.service (ConditionPathExists=/etc/hark/hark.env) stays idle
# instead of restarting every 5 s until the first-boot wizard writes the file and starts it.
rm -f "$ROOT/etc/hark/hark.env"
# No usable default password: root is locked until the console menu sets one. The marker tells the
# menu that root has never had a password, so whoever first reaches the console must choose it
# before anything else (menu/console-auth.ts); the menu deletes it then. Without the marker a root
# with no password leaves the console locked: it is not a way to claim a machine set up otherwise.
chroot "$ROOT" passwd -l root >/dev/null
install -d -m 0700 -o 0 -g 0 "$ROOT/var/lib/hark-menu"
install -m 0600 -o 0 -g 0 /dev/null "$ROOT/var/lib/hark-menu/root-password-unset"
rm -rf "$ROOT"/tmp/* "$ROOT"/var/log/*.log "$ROOT"/var/cache/apt/archives/*.deb

# ---- 5. partitions: ESP (GRUB EFI, mtools) and ext4 root (mkfs.ext4 -d) ---------------------------
ROOT_UUID="$(cat /proc/sys/kernel/random/uuid)"
ESP_SERIAL="$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')"
KVER="$(basename "$(readlink -f "$ROOT/vmlinuz")")"; KVER="${KVER#vmlinuz-}"
[ -f "$ROOT/boot/vmlinuz-$KVER" ] && [ -f "$ROOT/boot/initrd.img-$KVER" ] || die "the root has no kernel and initrd for \"$KVER\" (did linux-image-amd64 install?)"
step "boot: GRUB EFI image and configuration (kernel $KVER)"
# /vmlinuz and /initrd.img follow kernel upgrades (kernel-img.conf do_symlinks), so this config stays valid.
KERNEL_ARGS="root=UUID=$ROOT_UUID ro net.ifnames=0 console=tty0 console=ttyS0,115200n8 quiet"
mkdir -p "$ROOT/boot/grub"
cat > "$ROOT/boot/grub/grub.cfg" <<EOF
# Hark appliance boot menu, written by vmware/build.sh. The EFI GRUB on the ESP reads this file.
serial --unit=0 --speed=115200
terminal_input console serial
terminal_output console serial
set timeout=2
set default=0
menuentry "Hark sensor (Debian 12)" {
  search --no-floppy --fs-uuid --set=root $ROOT_UUID
  linux /vmlinuz $KERNEL_ARGS
  initrd /initrd.img
}
menuentry "Hark sensor (previous kernel)" {
  search --no-floppy --fs-uuid --set=root $ROOT_UUID
  linux /vmlinuz.old $KERNEL_ARGS
  initrd /initrd.img.old
}
EOF
mkdir -p "$ROOT/boot/efi"
ESP_UUID="$(printf '%s-%s' "${ESP_SERIAL:0:4}" "${ESP_SERIAL:4:4}" | tr 'a-f' 'A-F')"
printf 'UUID=%s\t/\text4\terrors=remount-ro\t0\t1\nUUID=%s\t/boot/efi\tvfat\tumask=0077,nofail\t0\t2\n' "$ROOT_UUID" "$ESP_UUID" > "$ROOT/etc/fstab"

cat > "$WORK/grub-early.cfg" <<EOF
search --no-floppy --fs-uuid --set=root $ROOT_UUID
set prefix=(\$root)/boot/grub
configfile (\$root)/boot/grub/grub.cfg
EOF
grub-mkimage -O x86_64-efi -o "$WORK/BOOTX64.EFI" -p /EFI/BOOT -c "$WORK/grub-early.cfg" \
  part_gpt fat ext2 normal linux search search_fs_uuid configfile echo test all_video efi_gop serial terminal gzio sleep reboot halt
rm -f "$WORK/esp.img"
mkfs.fat -F 32 -n HARK-ESP -i "$ESP_SERIAL" -C "$WORK/esp.img" $((ESP_MIB * 1024)) >/dev/null
mmd -i "$WORK/esp.img" ::/EFI ::/EFI/BOOT
mcopy -i "$WORK/esp.img" "$WORK/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI

SECTORS=$((DISK_GIB * 1024 * 1024 * 2))
ESP_START=2048
ESP_SECTORS=$((ESP_MIB * 2048))
ROOT_START=$((ESP_START + ESP_SECTORS))
ROOT_SECTORS=$((SECTORS - ROOT_START - 2048))   # the last MiB holds the backup GPT
step "disk: GPT with the ESP and the root partition in $NAME.raw"
RAW="$OUT/$NAME.raw"
rm -f "$RAW"; truncate -s "$((SECTORS * 512))" "$RAW"
# 8304 = "Linux x86-64 root (/)" of the Discoverable Partitions Specification.
# (Not -q: sgdisk 1.0.9 quietly writes nothing with it.)
sgdisk -o \
  -n "1:$ESP_START:$((ROOT_START - 1))" -t 1:ef00 -c 1:"EFI system partition" \
  -n "2:$ROOT_START:$((ROOT_START + ROOT_SECTORS - 1))" -t 2:8304 -c 2:"hark-root" "$RAW" >"$WORK/sgdisk.log" 2>&1 \
  || { cat "$WORK/sgdisk.log" >&2; die "sgdisk could not partition $RAW"; }
[ "$(sgdisk -p "$RAW" | grep -cE '^ +[12] +[0-9]+ +[0-9]+')" -eq 2 ] || die "the GPT of $RAW does not list the two partitions"
dd if="$WORK/esp.img" of="$RAW" bs=1M seek=$((ESP_START / 2048)) conv=notrunc status=none
rm -f "$WORK/esp.img"
step "root filesystem: mkfs.ext4 -d straight into partition 2 ($((ROOT_SECTORS / 2048)) MiB)"
# -E offset writes the filesystem inside the disk file: no 16 GiB copy. nodiscard: never punch holes
# in the file (the discard range of a file at an offset is not worth trusting).
nice -n 10 mkfs.ext4 -q -F -L hark-root -U "$ROOT_UUID" -E "offset=$((ROOT_START * 512)),nodiscard,lazy_itable_init=1,lazy_journal_init=1" \
  -d "$ROOT" "$RAW" "$((ROOT_SECTORS / 2))k"
[ "$(stat -c %s "$RAW")" -eq "$((SECTORS * 512))" ] || die "mkfs.ext4 changed the size of $RAW"
sgdisk -v "$RAW" | grep -q 'No problems found' || die "sgdisk finds problems in $RAW"

# ---- 6. VMDKs, OVF, manifest, OVA, Workstation zip, validation -------------------------------------
step "VMDK: streamOptimized for the OVA, monolithicSparse for Workstation"
VMDK="$OUT/$NAME-disk1.vmdk"
BUNDLE="$WORK/$NAME-vmware"
rm -rf "$BUNDLE"; mkdir -p "$BUNDLE"
nice -n 10 qemu-img convert -f raw -O vmdk -o subformat=streamOptimized,adapter_type=lsilogic "$RAW" "$VMDK"
nice -n 10 qemu-img convert -f raw -O vmdk -o subformat=monolithicSparse,adapter_type=lsilogic "$RAW" "$BUNDLE/$NAME.vmdk"

step "OVF, manifest, OVA and .vmx"
"$NODE_BIN" "$CACHE/dist/vmware/package.js" --disk "$VMDK" --out "$OUT" --vmx-dir "$BUNDLE" --vmx-disk "$NAME.vmdk"
rm -f "$OUT/$NAME-vmware.zip"
(cd "$WORK" && nice -n 10 zip -q -r -6 "$OUT/$NAME-vmware.zip" "$NAME-vmware")
rm -rf "$BUNDLE" "$OUT/$NAME.ovf" "$OUT/$NAME.mf" "$VMDK"

step "validating"
"$NODE_BIN" "$CACHE/dist/vmware/validate.js" "$OUT/$NAME.ova" "$OUT/$NAME-vmware.zip" || die "the packages fail validation"

step "done"
for f in "$OUT/$NAME.raw" "$OUT/$NAME.ova" "$OUT/$NAME-vmware.zip"; do
  say "  $(basename "$f"): $(du -h --apparent-size "$f" | cut -f1) ($(du -h "$f" | cut -f1) on disk)"
done
exit 0
}
