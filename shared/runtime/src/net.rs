//! Which addresses an outbound call to a user-given URL may reach: public unicast only.
//! Loopback, private, link-local (the instance metadata service at 169.254.169.254
//! among them), unique-local (fd00:ec2::254, its IPv6 form), shared (CGNAT), multicast,
//! documentation and unspecified addresses are refused, also when written as an
//! IPv4-mapped or NAT64 IPv6 address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address may not be called, or `None` if it may.
pub fn refusal(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refusal_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return refusal_v4(v4);
            }
            let segments = v6.segments();
            // NAT64 (64:ff9b::/96) reaches the IPv4 address in its last 32 bits.
            if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [a, b] = segments[6].to_be_bytes();
                let [c, d] = segments[7].to_be_bytes();
                return refusal_v4(Ipv4Addr::new(a, b, c, d));
            }
            refusal_v6(v6)
        }
    }
}

fn refusal_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    Some(if ip.is_loopback() {
        "loopback"
    } else if ip.is_private() {
        "private"
    } else if ip.is_link_local() {
        "link-local (instance metadata)"
    } else if a == 100 && (64..128).contains(&b) {
        "shared address space"
    } else if a == 0 || ip.is_unspecified() {
        "unspecified"
    } else if ip.is_broadcast() || ip.is_multicast() || a >= 240 {
        "not unicast"
    } else if ip.is_documentation() || (a == 198 && (18..20).contains(&b)) {
        "reserved"
    } else {
        return None;
    })
}

fn refusal_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    Some(if ip.is_loopback() {
        "loopback"
    } else if ip.is_unspecified() {
        "unspecified"
    } else if first & 0xfe00 == 0xfc00 {
        "unique-local (private)"
    } else if first & 0xffc0 == 0xfe80 {
        "link-local"
    } else if ip.is_multicast() {
        "not unicast"
    } else if first == 0x2001 && ip.segments()[1] == 0x0db8 {
        "reserved"
    } else {
        return None;
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_refused_and_public_ones_pass() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
        ] {
            let ip: IpAddr = internal.parse().unwrap();
            assert!(refusal(ip).is_some(), "{internal} passed");
        }
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            let ip: IpAddr = public.parse().unwrap();
            assert_eq!(refusal(ip), None, "{public}");
        }
    }
}
