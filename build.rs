//! Link-time options for breakfix's binaries.
//!
//! On Linux with glibc 2.36 or newer, binaries are linked with packed
//! relative relocations (`-z pack-relative-relocs`, DT_RELR). A position-
//! independent Rust binary otherwise carries about 900 KiB of `.rela.dyn`
//! that the dynamic loader reads, page by page, at every start; packed, it is
//! a few KiB. Older glibc cannot load such a binary, so the option is only
//! used when the C library this build links against supports it (the build
//! runs on the machine it builds for: `HOST == TARGET`).

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    export_versions();
    if packed_relocations_supported() {
        for kind in ["bins", "benches"] {
            println!("cargo:rustc-link-arg-{kind}=-Wl,-z,pack-relative-relocs");
        }
    }
}

/// Pinned versions from versions.env the crate needs at compile time, as
/// `BREAKFIX_<NAME>` (read with `env!`): one source of truth with scripts/.
fn export_versions() {
    println!("cargo:rerun-if-changed=versions.env");
    let text = std::fs::read_to_string("versions.env").unwrap_or_default();
    let mut k8s = None;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("K8S_VERSION=") {
            k8s = Some(v.trim().to_string());
        }
    }
    // versions.env always has it; a copy of the crate without the file
    // still builds, rendering for the version this release was made with.
    let k8s = k8s.unwrap_or_else(|| "v1.34.4".to_string());
    println!("cargo:rustc-env=BREAKFIX_K8S_VERSION={k8s}");
}

fn packed_relocations_supported() -> bool {
    let (Ok(host), Ok(target)) = (std::env::var("HOST"), std::env::var("TARGET")) else {
        return false;
    };
    if host != target || !target.ends_with("-linux-gnu") {
        return false;
    }
    glibc_version().is_some_and(|(major, minor)| (major, minor) >= (2, 36))
}

/// The host's glibc version, from `getconf GNU_LIBC_VERSION` ("glibc 2.36").
fn glibc_version() -> Option<(u32, u32)> {
    let out = Command::new("getconf")
        .arg("GNU_LIBC_VERSION")
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let version = text.trim().strip_prefix("glibc ")?;
    let mut parts = version.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts
        .next()?
        .trim_end_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .ok()?;
    Some((major, minor))
}
