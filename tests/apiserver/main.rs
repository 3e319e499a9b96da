//! The fast tier: breakfix's own logic against a real kube-apiserver, etcd
//! and kube-controller-manager (no nodes), one control plane per binary.
//! Run with `just test` (needs Docker and the image `just images` builds).

mod baseline;
mod detection;
mod journal;
mod rbac;
mod support;
