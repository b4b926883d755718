//! The address a request is attributed to: the TCP peer's, or, when the peer is a proxy
//! the operator trusts (`[limits] trusted_proxies`), the client address it forwarded.
//! The per-address login backoff and the per-client upload session cap key on it: behind
//! nginx or Cloudflare every peer is the proxy, so without this one client's wrong
//! passwords would lock every client out, and one client's sessions fill everyone's cap.
//!
//! From a trusted peer, `X-Forwarded-For` is read right to left: each proxy appended the
//! address it saw, so the first address that is not a trusted proxy is the client, and
//! anything left of it may be the client's own invention. With no such address,
//! `CF-Connecting-IP` (which Cloudflare sets) is used, else the peer. Headers from an
//! untrusted peer are never read: anyone can write them.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use axum::http::{Extensions, HeaderMap};
use ipnet::IpNet;

/// The address a request is attributed to, in its extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// The client address of a request, which `server.rs` records as [`ClientIp`] (a router
/// called in-process has none).
pub fn of(extensions: &Extensions) -> Option<IpAddr> {
    extensions.get::<ClientIp>().map(|c| c.0)
}

/// The proxies whose forwarding headers are believed; empty: none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses networks (`10.0.0.0/8`, `::1/128`) or single addresses (`127.0.0.1`).
    pub fn parse(list: &[String]) -> anyhow::Result<Self> {
        list.iter()
            .map(|s| {
                let s = s.trim();
                IpNet::from_str(s)
                    .or_else(|_| IpAddr::from_str(s).map(IpNet::from))
                    .map_err(|_| {
                        anyhow::anyhow!("trusted_proxies: {s:?} is not an address or a network")
                    })
            })
            .collect::<anyhow::Result<Vec<_>>>()
            .map(Self)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The client's address for a request from `peer` with `headers`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect();
        for hop in hops.iter().rev() {
            match parse_hop(hop) {
                Some(ip) if self.trusts(ip) => continue,
                Some(ip) => return ip,
                // Not an address: written by no proxy of ours. What lies to its left
                // cannot be believed; the last trusted hop is all that is known.
                None => return peer,
            }
        }
        headers
            .get("cf-connecting-ip")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_hop)
            .unwrap_or(peer)
    }
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:5`,
/// `[::1]:5`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    IpAddr::from_str(hop)
        .ok()
        .or_else(|| SocketAddr::from_str(hop).ok().map(|s| s.ip()))
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().expect("header value"));
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    /// Trust, peer, headers, the client address expected.
    type Case<'a> = (
        &'a TrustedProxies,
        &'a str,
        &'a [(&'static str, &'a str)],
        &'a str,
    );

    #[test]
    fn forwarded_addresses_are_believed_only_from_trusted_peers() -> anyhow::Result<()> {
        let t = TrustedProxies::parse(&["127.0.0.1".into(), "10.0.0.0/8".into()])?;
        let none = TrustedProxies::default();
        let cases: &[Case<'_>] = &[
            // No trust configured, or an untrusted peer: headers ignored.
            (
                &none,
                "127.0.0.1",
                &[("x-forwarded-for", "9.9.9.9")],
                "127.0.0.1",
            ),
            (&t, "8.8.8.8", &[("x-forwarded-for", "9.9.9.9")], "8.8.8.8"),
            (&t, "8.8.8.8", &[("cf-connecting-ip", "9.9.9.9")], "8.8.8.8"),
            // nginx in front: the one hop it appended.
            (
                &t,
                "127.0.0.1",
                &[("x-forwarded-for", "203.0.113.7")],
                "203.0.113.7",
            ),
            // A client's forged entries left of the real one are not believed.
            (
                &t,
                "127.0.0.1",
                &[("x-forwarded-for", "1.1.1.1, 203.0.113.7")],
                "203.0.113.7",
            ),
            // Several trusted proxies: skipped, right to left; two headers are one list.
            (
                &t,
                "127.0.0.1",
                &[
                    ("x-forwarded-for", "1.1.1.1, 203.0.113.7"),
                    ("x-forwarded-for", "10.1.2.3"),
                ],
                "203.0.113.7",
            ),
            // Ports and IPv6, and IPv4-mapped IPv6 peers.
            (
                &t,
                "::ffff:127.0.0.1",
                &[("x-forwarded-for", "[2001:db8::1]:443")],
                "2001:db8::1",
            ),
            (
                &t,
                "127.0.0.1",
                &[("x-forwarded-for", "198.51.100.2:1234")],
                "198.51.100.2",
            ),
            // Garbage stops the walk at the last trusted hop.
            (
                &t,
                "127.0.0.1",
                &[("x-forwarded-for", "203.0.113.7, nonsense")],
                "127.0.0.1",
            ),
            // Cloudflare's header when no forwarded hop names an outside address.
            (
                &t,
                "10.0.0.5",
                &[("cf-connecting-ip", "198.51.100.9")],
                "198.51.100.9",
            ),
            (
                &t,
                "10.0.0.5",
                &[
                    ("x-forwarded-for", "10.0.0.9"),
                    ("cf-connecting-ip", "198.51.100.9"),
                ],
                "198.51.100.9",
            ),
            (&t, "10.0.0.5", &[], "10.0.0.5"),
        ];
        for (trusted, peer, hs, want) in cases {
            assert_eq!(
                trusted.client(ip(peer), &headers(hs)),
                ip(want),
                "peer {peer}, headers {hs:?}"
            );
        }
        Ok(())
    }

    #[test]
    fn a_bad_entry_is_a_configuration_error() {
        let e = TrustedProxies::parse(&["10.0.0.0/33".into()]).expect_err("refused");
        assert!(e.to_string().contains("10.0.0.0/33"), "{e}");
    }
}
