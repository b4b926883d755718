//! The mirror's part of the nginx include `cargohold nginx-auth` writes (infra/nginx/):
//!
//! - `$cargohold_ns`: per `?ns=` value, the upstream name a containerd request's path is
//!   prefixed with (`""`: not a mirror's);
//! - `$cargohold_mirror_ttl`: per `$oci_name`, the tag TTL in seconds of the upstream a
//!   repository is mirrored from (`""`: not mirrored). nginx serves a mirrored tag itself
//!   while its file is younger than that, and hands every miss of a mirrored repository
//!   to the API, which fetches it.

use std::fmt::Write;

use super::settings::MirrorSettings;

/// The maps for `mirror` (`None`: no upstreams, both maps empty).
pub fn include(mirror: Option<&MirrorSettings>) -> String {
    let upstreams = mirror.map(|m| m.upstreams.as_slice()).unwrap_or_default();
    if upstreams.is_empty() {
        return "# No [[mirror.upstream]]: nothing is mirrored.\n\
                map $host $cargohold_ns { default \"\"; }\n\
                map $host $cargohold_mirror_ttl { default \"\"; }\n"
            .to_owned();
    }
    let mut out = String::from(
        "# The mirrored upstreams (docs/mirror.md): `ns` values and name prefixes.\n\
         map $arg_ns $cargohold_ns {\n    default \"\";\n",
    );
    // Names and aliases are repository-name components or host names: nothing nginx reads
    // specially.
    for u in upstreams {
        for ns in std::iter::once(&u.name).chain(&u.aliases) {
            let _ = writeln!(out, "    \"{ns}\" \"{}\";", u.name);
        }
    }
    out.push_str("}\nmap $oci_name $cargohold_mirror_ttl {\n    default \"\";\n");
    // Sync-only upstreams: their repositories are served like any other, misses are 404.
    for u in upstreams.iter().filter(|u| u.pull_through) {
        let _ = writeln!(
            out,
            "    \"~^{}/\" {};",
            u.name.replace('.', "\\."),
            u.tag_ttl.as_secs().max(1)
        );
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_name_every_upstream() -> anyhow::Result<()> {
        let settings = toml::from_str::<super::super::settings::FileMirror>(
            "[[upstream]]\nname = \"docker.io\"\nurl = \"http://x\"\naliases = [\"registry-1.docker.io\"]\ntag_ttl = \"2s\"",
        )?
        .validate()?;
        let text = include(settings.as_ref());
        assert!(
            text.contains("\"registry-1.docker.io\" \"docker.io\";"),
            "{text}"
        );
        assert!(text.contains("\"~^docker\\.io/\" 2;"), "{text}");
        assert!(include(None).contains("$cargohold_ns { default \"\"; }"));
        Ok(())
    }
}
