//! The Kubernetes versions breakfix can build and run, and which upgrades
//! between them it supports.
//!
//! The list is data: `kubernetes.versions` at the repository root, one line
//! per version with the etcd and CoreDNS versions kubeadm asks for and how
//! its kubelet treats a cgroup v1 host. The build scripts read the same file
//! (`BREAKFIX_K8S_VERSION=v1.35.4 bash scripts/cluster.sh up`), and this
//! module embeds it at compile time, so adding a patch release is one line
//! and a rebuild.
//!
//! An upgrade goes from a listed version to a newer listed one of the same
//! minor or the next (kubeadm upgrades one minor at a time), and only to a
//! version whose kubelet can run on this host's cgroups.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The file's text, as built into this binary.
const TABLE: &str = include_str!("../../kubernetes.versions");

/// Why a version or an upgrade between two versions is refused. Each
/// message is one line and says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    /// The text is not a version.
    #[error("`{text}` is not a Kubernetes version; write it as vMAJOR.MINOR.PATCH, e.g. v1.35.4")]
    Malformed {
        /// The text as given.
        text: String,
    },
    /// The version is not one of kubernetes.versions, so breakfix cannot build it.
    #[error(
        "Kubernetes {version} is not one breakfix builds (listed: {listed}); pick a listed one, or add a line for it to kubernetes.versions"
    )]
    Unknown {
        /// The version asked for.
        version: KubeVersion,
        /// The versions breakfix knows, for the message.
        listed: String,
    },
    /// An upgrade must go to a newer version.
    #[error(
        "--to {to} is not newer than --from {from}; an upgrade goes to a newer version (downgrades are not supported by kubeadm)"
    )]
    NotNewer {
        /// The version upgraded from.
        from: KubeVersion,
        /// The version asked for.
        to: KubeVersion,
    },
    /// kubeadm upgrades one minor version at a time.
    #[error(
        "{from} → {to} skips {skipped} minor version(s); kubeadm upgrades one minor at a time: upgrade to {next} first"
    )]
    SkipsMinor {
        /// The version upgraded from.
        from: KubeVersion,
        /// The version asked for.
        to: KubeVersion,
        /// How many minor versions it skips.
        skipped: u32,
        /// The version to upgrade to first.
        next: String,
    },
    /// The upgrade would change the major version.
    #[error("{from} → {to} changes the major version; breakfix knows Kubernetes 1.x only")]
    Major {
        /// The version upgraded from.
        from: KubeVersion,
        /// The version asked for.
        to: KubeVersion,
    },
    /// This host's cgroups cannot run the version's kubelet.
    #[error(
        "Kubernetes {version} cannot run on this host: its kubelet has no cgroup v1 support and this host's cgroups are v1; run it on a host with cgroup v2 (a unified /sys/fs/cgroup), or pick an older version"
    )]
    HostCannotRun {
        /// The version asked for.
        version: KubeVersion,
    },
}

/// A released Kubernetes version, `v1.35.4`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KubeVersion {
    /// The major version (1).
    pub major: u32,
    /// The minor version.
    pub minor: u32,
    /// The patch release.
    pub patch: u32,
}

impl KubeVersion {
    /// Parses `v1.35.4` (the leading `v` may be left out).
    pub fn parse(text: &str) -> Result<Self, VersionError> {
        let malformed = || VersionError::Malformed { text: text.into() };
        let t = text.trim();
        let digits = t.strip_prefix('v').unwrap_or(t);
        let mut parts = digits.split('.');
        let mut next = || -> Result<u32, VersionError> {
            let part = parts.next().ok_or_else(malformed)?;
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(malformed());
            }
            part.parse().map_err(|_| malformed())
        };
        let version = Self {
            major: next()?,
            minor: next()?,
            patch: next()?,
        };
        if parts.next().is_some() {
            return Err(malformed());
        }
        Ok(version)
    }
}

impl fmt::Display for KubeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl FromStr for KubeVersion {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for KubeVersion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for KubeVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for KubeVersion {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "KubeVersion".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^v[0-9]+\\.[0-9]+\\.[0-9]+$",
            "description": "A Kubernetes release, e.g. v1.35.4",
        })
    }
}

/// What a version's kubelet does on a cgroup v1 host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CgroupV1 {
    /// Runs, with a deprecation warning.
    Warn,
    /// Refuses unless its configuration sets `failCgroupV1: false` (every
    /// breakfix node image carries that drop-in), and kubeadm's upgrade
    /// preflight must be told to ignore its SystemVerification check.
    OptIn,
    /// Cannot run on cgroup v1 at all.
    Removed,
}

/// One line of `kubernetes.versions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SupportedVersion {
    /// The Kubernetes version.
    pub version: KubeVersion,
    /// The etcd module version kubeadm's etcd image is built from.
    pub etcd: String,
    /// The CoreDNS version its kubeadm deploys.
    pub coredns: String,
    /// What its kubelet does on a cgroup v1 host.
    pub cgroup_v1: CgroupV1,
}

impl SupportedVersion {
    /// The kind node image `scripts/node-image.sh` builds for this version.
    pub fn node_image(&self) -> String {
        format!("breakfix/node:{}", self.version)
    }
}

/// The parsed `kubernetes.versions`, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionTable {
    versions: Vec<SupportedVersion>,
}

/// The cgroup layout of the host the kind nodes run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostCgroups {
    /// cgroup v1 (or the hybrid layout).
    V1,
    /// The unified cgroup v2 hierarchy.
    V2,
}

impl HostCgroups {
    /// This host's: v2 when `/sys/fs/cgroup` is the unified hierarchy.
    pub fn detect() -> Self {
        if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
            Self::V2
        } else {
            Self::V1
        }
    }
}

/// A checked upgrade: both ends listed, one minor at most, runnable here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradePath {
    /// The version the cluster runs now.
    pub from: SupportedVersion,
    /// The version it is upgraded to.
    pub to: SupportedVersion,
}

impl UpgradePath {
    /// Whether kubeadm's SystemVerification preflight must be ignored: on a
    /// cgroup v1 host it fails for a target kubelet that refuses cgroup v1
    /// by default (kubeadm judges the next minor during an upgrade).
    pub fn ignore_system_verification(&self, host: HostCgroups) -> bool {
        host == HostCgroups::V1 && self.to.cgroup_v1 != CgroupV1::Warn
    }
}

impl VersionTable {
    /// The table built into this binary.
    pub fn builtin() -> &'static Self {
        static TABLE_PARSED: OnceLock<VersionTable> = OnceLock::new();
        TABLE_PARSED.get_or_init(|| {
            // The file is part of the source tree; a unit test parses it.
            Self::parse(TABLE).unwrap_or_else(|e| panic!("kubernetes.versions: {e}"))
        })
    }

    /// Parses the file's text: `#` comments, then `version etcd coredns
    /// cgroupv1` per line.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut versions: Vec<SupportedVersion> = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [version, etcd, coredns, cgroup] = fields[..] else {
                return Err(format!(
                    "line {}: expected `version etcd coredns cgroupv1`, found {} field(s)",
                    n + 1,
                    fields.len()
                ));
            };
            let version =
                KubeVersion::parse(version).map_err(|e| format!("line {}: {e}", n + 1))?;
            let cgroup_v1 = match cgroup {
                "warn" => CgroupV1::Warn,
                "opt-in" => CgroupV1::OptIn,
                "removed" => CgroupV1::Removed,
                other => {
                    return Err(format!(
                        "line {}: cgroupv1 `{other}`; expected warn, opt-in or removed",
                        n + 1
                    ));
                }
            };
            if versions.iter().any(|v| v.version == version) {
                return Err(format!("line {}: {version} is listed twice", n + 1));
            }
            versions.push(SupportedVersion {
                version,
                etcd: etcd.into(),
                coredns: coredns.into(),
                cgroup_v1,
            });
        }
        if versions.is_empty() {
            return Err("no versions listed".into());
        }
        Ok(Self { versions })
    }

    /// Every listed version, in file order.
    pub fn versions(&self) -> &[SupportedVersion] {
        &self.versions
    }

    /// The listed line for `version`.
    pub fn get(&self, version: KubeVersion) -> Result<&SupportedVersion, VersionError> {
        self.versions
            .iter()
            .find(|v| v.version == version)
            .ok_or_else(|| VersionError::Unknown {
                version,
                listed: self.listed(),
            })
    }

    /// The newest listed version of `minor` (of Kubernetes 1.x).
    fn newest_of_minor(&self, major: u32, minor: u32) -> Option<&SupportedVersion> {
        self.versions
            .iter()
            .filter(|v| v.version.major == major && v.version.minor == minor)
            .max_by_key(|v| v.version)
    }

    /// Checks an upgrade `from` → `to` on a host with `host` cgroups.
    ///
    /// # Errors
    ///
    /// Either end not listed, not newer, a major change, a skip of more
    /// than one minor, or a target this host cannot run.
    pub fn upgrade(
        &self,
        from: KubeVersion,
        to: KubeVersion,
        host: HostCgroups,
    ) -> Result<UpgradePath, VersionError> {
        let from_line = self.get(from)?;
        let to_line = self.get(to)?;
        if to <= from {
            return Err(VersionError::NotNewer { from, to });
        }
        if to.major != from.major {
            return Err(VersionError::Major { from, to });
        }
        if to.minor > from.minor + 1 {
            let next = self
                .newest_of_minor(from.major, from.minor + 1)
                .map_or_else(
                    || format!("a v{}.{} release", from.major, from.minor + 1),
                    |v| v.version.to_string(),
                );
            return Err(VersionError::SkipsMinor {
                from,
                to,
                skipped: to.minor - from.minor - 1,
                next,
            });
        }
        for line in [from_line, to_line] {
            if host == HostCgroups::V1 && line.cgroup_v1 == CgroupV1::Removed {
                return Err(VersionError::HostCannotRun {
                    version: line.version,
                });
            }
        }
        Ok(UpgradePath {
            from: from_line.clone(),
            to: to_line.clone(),
        })
    }

    /// The newest listed version this host can run.
    pub fn newest_runnable(&self, host: HostCgroups) -> Option<&SupportedVersion> {
        self.versions
            .iter()
            .filter(|v| host == HostCgroups::V2 || v.cgroup_v1 != CgroupV1::Removed)
            .max_by_key(|v| v.version)
    }

    fn listed(&self) -> String {
        self.versions
            .iter()
            .map(|v| v.version.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    const SAMPLE: &str = "\
# comment
v1.34.4  v3.6.5  v1.12.1  warn
v1.35.4  v3.6.6  v1.13.1  opt-in   # trailing comment
v1.36.3  v3.6.8  v1.14.2  opt-in
v1.37.2  v3.7.0  v1.14.6  removed
";

    fn v(text: &str) -> KubeVersion {
        KubeVersion::parse(text).unwrap()
    }

    #[test]
    fn the_shipped_file_parses_and_lists_the_default_version() {
        let table = VersionTable::builtin();
        assert!(table.get(v("v1.34.4")).is_ok());
        assert!(table.get(v("v1.35.4")).is_ok());
    }

    #[rstest]
    #[case("v1.35.4", Some((1, 35, 4)))]
    #[case("1.35.4", Some((1, 35, 4)))]
    #[case(" v1.9.10 ", Some((1, 9, 10)))]
    #[case("v1.35", None)]
    #[case("v1.35.4.1", None)]
    #[case("v1.35.x", None)]
    #[case("v1.35.-4", None)]
    #[case("latest", None)]
    #[case("", None)]
    fn versions_parse(#[case] text: &str, #[case] want: Option<(u32, u32, u32)>) {
        let got = KubeVersion::parse(text)
            .ok()
            .map(|k| (k.major, k.minor, k.patch));
        assert_eq!(got, want);
    }

    #[test]
    fn versions_order_numerically() {
        assert!(v("v1.9.0") < v("v1.10.0"));
        assert!(v("v1.35.10") > v("v1.35.4"));
        assert_eq!(v("v1.35.4").to_string(), "v1.35.4");
    }

    #[rstest]
    #[case("v1.34.4 v3.6.5 v1.12.1", "expected `version etcd coredns cgroupv1`")]
    #[case("v1.34.4 v3.6.5 v1.12.1 maybe", "cgroupv1 `maybe`")]
    #[case("1.34 v3.6.5 v1.12.1 warn", "not a Kubernetes version")]
    #[case("v1.34.4 a b warn\nv1.34.4 a b warn", "listed twice")]
    #[case("# nothing\n", "no versions listed")]
    fn malformed_tables_say_which_line(#[case] text: &str, #[case] want: &str) {
        let err = VersionTable::parse(text).unwrap_err();
        assert!(err.contains(want), "{err}");
    }

    #[rstest]
    #[case("v1.34.4", "v1.35.4", HostCgroups::V1, Ok(true))]
    #[case("v1.35.4", "v1.36.3", HostCgroups::V1, Ok(true))]
    #[case("v1.34.4", "v1.35.4", HostCgroups::V2, Ok(false))]
    #[case("v1.36.3", "v1.37.2", HostCgroups::V2, Ok(false))]
    #[case("v1.36.3", "v1.37.2", HostCgroups::V1, Err("cannot run on this host"))]
    #[case("v1.35.4", "v1.34.4", HostCgroups::V1, Err("not newer"))]
    #[case("v1.35.4", "v1.35.4", HostCgroups::V1, Err("not newer"))]
    #[case("v1.34.4", "v1.36.3", HostCgroups::V1, Err("upgrade to v1.35.4 first"))]
    #[case("v1.34.4", "v1.37.2", HostCgroups::V2, Err("skips 2 minor"))]
    #[case("v1.34.1", "v1.35.4", HostCgroups::V1, Err("not one breakfix builds"))]
    #[case("v1.34.4", "v1.35.9", HostCgroups::V1, Err("listed: v1.34.4, v1.35.4"))]
    fn upgrades_are_checked(
        #[case] from: &str,
        #[case] to: &str,
        #[case] host: HostCgroups,
        #[case] want: Result<bool, &str>,
    ) {
        let table = VersionTable::parse(SAMPLE).unwrap();
        let got = table.upgrade(v(from), v(to), host);
        match (got, want) {
            (Ok(path), Ok(ignore)) => {
                assert_eq!(path.ignore_system_verification(host), ignore);
            }
            (Err(e), Err(text)) => assert!(e.to_string().contains(text), "{e}"),
            (got, want) => panic!("got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn the_newest_runnable_version_depends_on_the_host() {
        let table = VersionTable::parse(SAMPLE).unwrap();
        assert_eq!(
            table.newest_runnable(HostCgroups::V1).unwrap().version,
            v("v1.36.3")
        );
        assert_eq!(
            table.newest_runnable(HostCgroups::V2).unwrap().version,
            v("v1.37.2")
        );
    }
}
