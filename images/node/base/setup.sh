#!/bin/sh
# Runs inside the node root filesystem (chroot) after kind's files are copied
# in: the same steps as kind's images/base/Dockerfile, adapted to Debian's
# containerd/runc/CNI packages.
set -eu

# systemd in a container: only the units kind wants
find /lib/systemd/system/sysinit.target.wants/ -name "systemd-tmpfiles-setup.service" -delete
rm -f /lib/systemd/system/multi-user.target.wants/* \
      /etc/systemd/system/*.wants/* \
      /lib/systemd/system/local-fs.target.wants/* \
      /lib/systemd/system/sockets.target.wants/*udev* \
      /lib/systemd/system/sockets.target.wants/*initctl* \
      /lib/systemd/system/basic.target.wants/*
echo "ReadKMsg=no" >>/etc/systemd/journald.conf
ln -sf /usr/lib/systemd/systemd /sbin/init

systemctl enable kubelet.service containerd.service undo-mount-hacks.service
systemctl mask systemd-binfmt.service

mkdir -p /etc/kubernetes/manifests /etc/cni/net.d

# kind's CRI base spec: the default OCI spec plus a createContainer hook that
# gives every container its own product_name/product_uuid, without rlimits.
ctr oci spec \
  | jq '.hooks.createContainer[.hooks.createContainer | length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' \
  | jq 'del(.process.rlimits)' >/etc/containerd/cri-base.json
jq -e '.hooks.createContainer | length == 1' /etc/containerd/cri-base.json >/dev/null

# containerd looks for CNI plugins in /opt/cni/bin; Debian installs them in
# /usr/lib/cni.
mkdir -p /opt/cni/bin
for p in /usr/lib/cni/*; do ln -sf "$p" /opt/cni/bin/; done
test -x /opt/cni/bin/ptp && test -x /opt/cni/bin/host-local && test -x /opt/cni/bin/portmap && test -x /opt/cni/bin/loopback

# trim
find /usr/share/doc -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
rm -rf /usr/share/man/* /usr/share/info/* /usr/share/locale/*/ \
       /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/apt/archives/*.deb /var/log/*
: >/etc/machine-id
