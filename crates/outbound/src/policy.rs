//! Which addresses a client-chosen destination may reach: the block tables of
//! `shared/api/webhooks.md` §6.2 (Svix's list plus reelay's additions) and the operator allowlist.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), len)
}

const fn v6(s: [u16; 8], len: u8) -> Ipv6Net {
    Ipv6Net::new_assert(
        Ipv6Addr::new(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]),
        len,
    )
}

/// IPv4 rows of §6.2, in the document's order.
pub(crate) const BLOCKED_V4: &[(Ipv4Net, &str)] = &[
    (v4(0, 0, 0, 0, 8), "this network"),
    (v4(10, 0, 0, 0, 8), "private (RFC 1918)"),
    (v4(172, 16, 0, 0, 12), "private (RFC 1918)"),
    (v4(192, 168, 0, 0, 16), "private (RFC 1918)"),
    (v4(100, 64, 0, 0, 10), "shared address space (CGNAT)"),
    (v4(127, 0, 0, 0, 8), "loopback"),
    (v4(169, 254, 0, 0, 16), "link-local (cloud metadata)"),
    (v4(192, 0, 0, 0, 24), "IETF protocol assignments"),
    (v4(192, 0, 2, 0, 24), "documentation (TEST-NET-1)"),
    (v4(198, 51, 100, 0, 24), "documentation (TEST-NET-2)"),
    (v4(203, 0, 113, 0, 24), "documentation (TEST-NET-3)"),
    (v4(192, 88, 99, 0, 24), "6to4 relay anycast"),
    (v4(198, 18, 0, 0, 15), "benchmarking"),
    (v4(224, 0, 0, 0, 4), "multicast"),
    (v4(240, 0, 0, 0, 4), "reserved (class E)"),
    (v4(255, 255, 255, 255, 32), "broadcast"),
];

/// IPv6 rows of §6.2 and reelay's additions. `::ffff:0:0/96` (IPv4-mapped) has no row: such
/// addresses are canonicalized to IPv4 first and judged by the IPv4 table.
pub(crate) const BLOCKED_V6: &[(Ipv6Net, &str)] = &[
    (v6([0, 0, 0, 0, 0, 0, 0, 0], 128), "unspecified"),
    (v6([0, 0, 0, 0, 0, 0, 0, 1], 128), "loopback"),
    (v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96), "NAT64"),
    (
        v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48),
        "NAT64 (local use)",
    ),
    (v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64), "discard-only"),
    (v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), "documentation"),
    (v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20), "documentation"),
    (v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16), "6to4 (embeds IPv4)"),
    (v6([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16), "SRv6 SIDs"),
    (
        v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),
        "unique local (AWS metadata fd00:ec2::254)",
    ),
    (v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), "link-local"),
    (v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), "multicast"),
    // reelay's additions [I]
    (
        v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32),
        "Teredo (embeds IPv4)",
    ),
    (
        v6([0, 0, 0, 0, 0, 0, 0, 0], 96),
        "IPv4-compatible (deprecated)",
    ),
    (
        v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10),
        "site-local (deprecated)",
    ),
];

/// The form an address is judged in. Only IPv4-mapped addresses become IPv4: a socket connecting
/// to `::ffff:a.b.c.d` really reaches `a.b.c.d`. IPv4-compatible, NAT64, 6to4 and Teredo
/// addresses also embed an IPv4 address, but where they lead depends on translators we cannot
/// see, so they stay IPv6 and their own rows block them whatever they embed.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// The §6.2 row that blocks `ip` (after canonicalization), if any.
pub(crate) fn blocked_by(ip: IpAddr) -> Option<&'static str> {
    match canonical(ip) {
        IpAddr::V4(a) => BLOCKED_V4
            .iter()
            .find(|(net, _)| net.contains(&a))
            .map(|(_, what)| *what),
        IpAddr::V6(a) => BLOCKED_V6
            .iter()
            .find(|(net, _)| net.contains(&a))
            .map(|(_, what)| *what),
    }
}

/// Operator exemptions from the block tables (`REELAY_OUTBOUND_ALLOW_CIDRS`).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Allowlist(Vec<IpNet>);

impl Allowlist {
    /// Comma-separated CIDRs or bare addresses; blanks around entries and empty entries (a
    /// trailing comma) are tolerated so that an env var edited by hand still parses.
    pub(crate) fn parse(spec: &str) -> Result<Allowlist, String> {
        let mut nets = Vec::new();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let net = match entry.parse::<IpNet>() {
                Ok(net) => net.trunc(),
                Err(_) => match entry.parse::<IpAddr>() {
                    Ok(ip) => IpNet::from(ip),
                    Err(_) => {
                        return Err(format!(
                            "REELAY_OUTBOUND_ALLOW_CIDRS: {entry:?} is neither a CIDR (e.g. \
                             10.0.0.0/8) nor an IP address"
                        ))
                    }
                },
            };
            nets.push(net);
        }
        Ok(Allowlist(nets))
    }

    /// Matches the address as given and in canonical form, so `127.0.0.1/32` also admits
    /// `::ffff:127.0.0.1` (the same socket destination).
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        let canon = canonical(ip);
        self.0
            .iter()
            .any(|net| net.contains(&ip) || net.contains(&canon))
    }

    pub(crate) fn nets(&self) -> &[IpNet] {
        &self.0
    }
}

pub(crate) fn is_allowed(allow: &Allowlist, ip: IpAddr) -> bool {
    allow.contains(ip) || blocked_by(ip).is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(s: &str) {
        let ip: IpAddr = s.parse().unwrap();
        assert!(blocked_by(ip).is_some(), "{s} should be blocked");
        assert!(
            !is_allowed(&Allowlist::default(), ip),
            "{s} should be refused"
        );
    }

    fn allowed(s: &str) {
        let ip: IpAddr = s.parse().unwrap();
        assert_eq!(blocked_by(ip), None, "{s} should not be blocked");
        assert!(
            is_allowed(&Allowlist::default(), ip),
            "{s} should be allowed"
        );
    }

    // One test per §6.2 row: an address inside is refused, and an address just outside is not
    // blocked. Some neighbours are not routable on the Internet either (e.g. `2003::1` is
    // unassigned); they are there to pin the prefix length of the row.

    #[test]
    fn v4_this_network() {
        refused("0.0.0.0");
        refused("0.255.255.255");
        allowed("1.0.0.1");
    }

    #[test]
    fn v4_rfc1918_10() {
        refused("10.0.0.1");
        refused("10.255.255.255");
        allowed("9.255.255.255");
        allowed("11.0.0.1");
    }

    #[test]
    fn v4_rfc1918_172_16() {
        refused("172.16.0.1");
        refused("172.31.255.255");
        allowed("172.15.255.255");
        allowed("172.32.0.1");
    }

    #[test]
    fn v4_rfc1918_192_168() {
        refused("192.168.1.1");
        allowed("192.167.255.255");
        allowed("192.169.0.1");
    }

    #[test]
    fn v4_cgnat() {
        refused("100.64.0.1");
        refused("100.127.255.255");
        allowed("100.63.255.255");
        allowed("100.128.0.1");
    }

    #[test]
    fn v4_loopback() {
        refused("127.0.0.1");
        refused("127.255.255.254");
        allowed("128.0.0.1");
    }

    #[test]
    fn v4_link_local_and_metadata() {
        refused("169.254.169.254");
        refused("169.254.0.1");
        allowed("169.253.255.255");
        allowed("169.255.0.1");
    }

    #[test]
    fn v4_ietf_protocol_assignments() {
        refused("192.0.0.8");
        allowed("192.0.1.1");
    }

    #[test]
    fn v4_documentation() {
        refused("192.0.2.1");
        refused("198.51.100.7");
        refused("203.0.113.200");
        allowed("192.0.3.1");
        allowed("198.51.101.1");
        allowed("203.0.114.1");
    }

    #[test]
    fn v4_6to4_relay_anycast() {
        refused("192.88.99.1");
        allowed("192.88.98.255");
        allowed("192.88.100.1");
    }

    #[test]
    fn v4_benchmarking() {
        refused("198.18.0.1");
        refused("198.19.255.255");
        allowed("198.17.255.255");
        allowed("198.20.0.1");
    }

    #[test]
    fn v4_multicast() {
        refused("224.0.0.1");
        refused("239.255.255.250");
        allowed("223.255.255.255");
    }

    #[test]
    fn v4_reserved_class_e() {
        refused("240.0.0.1");
        refused("255.255.255.254");
    }

    #[test]
    fn v4_broadcast() {
        refused("255.255.255.255");
    }

    #[test]
    fn v4_public_examples() {
        allowed("8.8.8.8");
        allowed("93.184.216.34");
        allowed("1.1.1.1");
    }

    #[test]
    fn v6_unspecified() {
        refused("::");
        allowed("2606:4700::1111");
    }

    #[test]
    fn v6_loopback() {
        refused("::1");
    }

    #[test]
    fn v6_ipv4_mapped_follows_ipv4_rules() {
        refused("::ffff:127.0.0.1");
        refused("::ffff:169.254.169.254");
        refused("::ffff:10.0.0.1");
        allowed("::ffff:8.8.8.8");
    }

    #[test]
    fn v6_nat64() {
        refused("64:ff9b::7f00:1");
        refused("64:ff9b::808:808");
        refused("64:ff9b:1::1");
        allowed("64:ff9c::1");
    }

    #[test]
    fn v6_discard_only() {
        refused("100::1");
        allowed("100:0:0:1::1");
    }

    #[test]
    fn v6_documentation() {
        refused("2001:db8::1");
        refused("3fff::1");
        refused("3fff:fff::1");
        allowed("3fff:1000::1");
        allowed("2001:db9::1");
    }

    #[test]
    fn v6_6to4() {
        refused("2002:7f00:1::");
        refused("2002:808:808::1");
        allowed("2003::1");
    }

    #[test]
    fn v6_srv6() {
        refused("5f00::1");
        allowed("5f01::1");
    }

    #[test]
    fn v6_unique_local() {
        refused("fd00:ec2::254");
        refused("fc00::1");
        refused("fdff:ffff::1");
        allowed("fbff:ffff::1");
    }

    #[test]
    fn v6_link_local() {
        refused("fe80::1");
        refused("febf::1");
    }

    #[test]
    fn v6_multicast() {
        refused("ff02::1");
        refused("ff0e::1");
    }

    #[test]
    fn v6_teredo() {
        refused("2001::1");
        refused("2001:0:4136:e378:8000:63bf:3fff:fdd2");
        allowed("2001:4860:4860::8888");
    }

    #[test]
    fn v6_ipv4_compatible() {
        refused("::127.0.0.1");
        refused("::8.8.8.8");
        refused("::ffff");
    }

    #[test]
    fn v6_site_local() {
        refused("fec0::1");
        refused("feff::1");
    }

    #[test]
    fn v6_public_examples() {
        allowed("2606:4700::1111");
        allowed("2a00:1450:4001::200e");
    }

    #[test]
    fn allowlist_wins_and_matches_mapped_form() {
        let allow = Allowlist::parse("127.0.0.1/32, fd00::/8").unwrap();
        let ok = |s: &str| is_allowed(&allow, s.parse().unwrap());
        assert!(ok("127.0.0.1"));
        assert!(ok("::ffff:127.0.0.1"));
        assert!(ok("fd00:ec2::254"));
        assert!(!ok("127.0.0.2"));
        assert!(!ok("10.0.0.1"));
        // An IPv4 exemption does not open translators that merely embed the address.
        assert!(!ok("64:ff9b::7f00:1"));
        assert!(!ok("::127.0.0.1"));
    }

    #[test]
    fn allowlist_parsing() {
        assert_eq!(Allowlist::parse("").unwrap().nets(), &[] as &[IpNet]);
        assert_eq!(Allowlist::parse(" , ").unwrap().nets().len(), 0);
        assert_eq!(
            Allowlist::parse("127.0.0.1/32, ::1/128").unwrap().nets(),
            &[
                "127.0.0.1/32".parse::<IpNet>().unwrap(),
                "::1/128".parse().unwrap()
            ]
        );
        assert_eq!(
            Allowlist::parse("10.0.0.5").unwrap().nets(),
            &["10.0.0.5/32".parse::<IpNet>().unwrap()]
        );
        assert_eq!(
            Allowlist::parse("10.1.2.3/8").unwrap().nets(),
            &["10.0.0.0/8".parse::<IpNet>().unwrap()]
        );
        let err = Allowlist::parse("10.0.0.0/8,10.0.0.0/33").unwrap_err();
        assert!(err.contains("\"10.0.0.0/33\""), "{err}");
        let err = Allowlist::parse("nonsense").unwrap_err();
        assert!(err.contains("\"nonsense\""), "{err}");
    }

    #[test]
    fn tables_have_no_host_bits() {
        for (net, what) in BLOCKED_V4 {
            assert_eq!(*net, net.trunc(), "{what}");
        }
        for (net, what) in BLOCKED_V6 {
            assert_eq!(*net, net.trunc(), "{what}");
        }
    }
}
