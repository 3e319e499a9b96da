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
    if packed_relocations_supported() {
        for kind in ["bins", "benches"] {
            println!("cargo:rustc-link-arg-{kind}=-Wl,-z,pack-relative-relocs");
        }
    }
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
