//! Keeps webhooks away from internal networks: checked when a URL is saved and again against the
//! address actually connected to, so DNS rebinding cannot slip through.
use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
};

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why an address may not receive webhooks, if it may not.
pub fn forbidden_reason(ip: IpAddr, allow: &[IpNet]) -> Option<&'static str> {
    if allow.iter().any(|net| net.contains(&ip)) {
        return None;
    }
    match ip {
        IpAddr::V4(v4) => v4_reason(v4),
        IpAddr::V6(v6) => {
            // IPv4 embedded in IPv6 (mapped, NAT64, 6to4) is judged as the IPv4 it carries.
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_reason(IpAddr::V4(v4), allow).or(Some("IPv4-mapped IPv6 address"));
            }
            let seg = v6.segments();
            if seg[0] == 0x64 && seg[1] == 0xff9b {
                let v4 = Ipv4Addr::new((seg[6] >> 8) as u8, seg[6] as u8, (seg[7] >> 8) as u8, seg[7] as u8);
                return forbidden_reason(IpAddr::V4(v4), allow).or(Some("NAT64 address"));
            }
            if seg[0] == 0x2002 {
                let v4 = Ipv4Addr::new((seg[1] >> 8) as u8, seg[1] as u8, (seg[2] >> 8) as u8, seg[2] as u8);
                if let Some(r) = v4_reason(v4) {
                    return Some(r);
                }
            }
            v6_reason(v6)
        }
    }
}

fn v4_reason(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    Some(match o {
        _ if ip.is_loopback() => "loopback address",
        _ if ip.is_unspecified() || o[0] == 0 => "unspecified address",
        [169, 254, 169, 254] => "cloud metadata address",
        _ if ip.is_link_local() => "link-local address",
        _ if ip.is_private() => "private address",
        [100, b, ..] if (64..128).contains(&b) => "carrier-grade NAT address",
        _ if ip.is_multicast() => "multicast address",
        _ if ip.is_broadcast() => "broadcast address",
        [192, 0, 0, _] => "IETF protocol address",
        [198, 18..=19, ..] => "benchmarking address",
        [192, 0, 2, _] | [198, 51, 100, _] | [203, 0, 113, _] => "documentation address",
        [a, ..] if a >= 240 => "reserved address",
        _ => return None,
    })
}

fn v6_reason(ip: Ipv6Addr) -> Option<&'static str> {
    let seg = ip.segments();
    Some(match seg {
        _ if ip.is_loopback() => "loopback address",
        _ if ip.is_unspecified() => "unspecified address",
        _ if ip.is_multicast() => "multicast address",
        [s, ..] if s & 0xffc0 == 0xfe80 => "link-local address",
        [s, ..] if s & 0xfe00 == 0xfc00 => "private (unique local) address",
        [0x2001, 0xdb8, ..] => "documentation address",
        [0, 0, 0, 0, 0, 0, _, _] => "IPv4-compatible IPv6 address",
        _ => return None,
    })
}

/// A DNS resolver that drops forbidden addresses, so the connection can only go where the check
/// allowed. With no address left, the request fails as unresolvable.
pub struct GuardedResolver {
    pub allow: Arc<Vec<IpNet>>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| forbidden_reason(a.ip(), &allow).is_none())
                .collect();
            if addrs.is_empty() {
                return Err(format!("{host} resolves only to addresses webhooks may not reach").into());
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Checks a URL when it is saved: scheme, and every address its host resolves to.
pub async fn check_url(raw: &str, allow: &[IpNet]) -> Result<url::Url, String> {
    let url = url::Url::parse(raw).map_err(|e| format!("is not a valid URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must use http or https".into());
    }
    let host = url.host().ok_or("must name a host")?;
    let port = url.port_or_known_default().unwrap_or(80);
    let addrs: Vec<IpAddr> = match host {
        url::Host::Ipv4(ip) => vec![IpAddr::V4(ip)],
        url::Host::Ipv6(ip) => vec![IpAddr::V6(ip)],
        url::Host::Domain(d) => tokio::net::lookup_host((d, port))
            .await
            .map_err(|_| format!("host {d} does not resolve"))?
            .map(|a| a.ip())
            .collect(),
    };
    if addrs.is_empty() {
        return Err("host does not resolve".into());
    }
    for ip in addrs {
        if let Some(reason) = forbidden_reason(ip, allow) {
            return Err(format!("points to a {reason} ({ip}), which webhooks may not reach"));
        }
    }
    Ok(url)
}

/// Checks the literal host of a URL at send time (the resolver covers names).
pub fn check_literal_host(url: &url::Url, allow: &[IpNet]) -> Result<(), String> {
    let ip = match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
        _ => return Ok(()),
    };
    match forbidden_reason(ip, allow) {
        Some(reason) => Err(format!("{ip} is a {reason}")),
        None => Ok(()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn refused(url: &str) -> bool {
        let u = url::Url::parse(url).unwrap();
        check_literal_host(&u, &[]).is_err()
    }

    #[test]
    fn numeric_and_internal_forms_are_refused() {
        for url in [
            "http://127.0.0.1/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://017700000001/",
            "http://10.0.0.1/",
            "http://172.16.5.4/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://100.64.0.1/",
            "http://0.0.0.0/",
            "http://224.0.0.1/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:a9fe:a9fe]/",
            "http://[fe80::1]/",
            "http://[fd00:ec2::254]/",
            "http://[64:ff9b::7f00:1]/",
            "http://[::]/",
        ] {
            assert!(refused(url), "{url} should be refused");
        }
        assert!(!refused("http://93.184.216.34/"));
        assert!(!refused("http://[2606:4700::1111]/"));
    }

    #[test]
    fn allowlist_opens_a_network() {
        let allow: Vec<IpNet> = vec!["127.0.0.0/8".parse().unwrap()];
        assert!(forbidden_reason("127.0.0.1".parse().unwrap(), &allow).is_none());
        assert!(forbidden_reason("10.0.0.1".parse().unwrap(), &allow).is_some());
    }

    #[tokio::test]
    async fn names_resolving_inside_are_refused_at_save() {
        let err = check_url("http://localhost:9/hook", &[]).await.unwrap_err();
        assert!(err.contains("loopback"), "{err}");
        assert!(check_url("ftp://example.com/", &[]).await.is_err());
        assert!(check_url("not a url", &[]).await.is_err());
    }
}
