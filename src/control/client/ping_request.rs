//! Control's `PingRequest`, read as the untrusted input it is: what it asks this node to do
//! (a HEAD to prove the node alive, or pings of a peer whose results are POSTed back), or why
//! it is refused. Only requests answered over the Noise session are served: weft opens no
//! second connection to control.

use crate::control::tailcfg::PingRequest;
use crate::engine::ping::PingKind;
use std::net::IpAddr;

/// One ping control asks for: of `ip`, by `kind`, its result POSTed to `path` over Noise.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PeerPing {
    pub kind: PingKind,
    pub ip: IpAddr,
    pub path: String,
}

/// Refused type names kept for the log line; control may list any number of them.
const NAMED_REFUSALS: usize = 4;
/// Characters of a refused type name kept for the log line.
const REFUSED_NAME_CHARS: usize = 32;

/// What a request asks for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Task {
    /// Proof of life: a HEAD to this path.
    Head(String),
    /// Pings of a peer, and the types that were refused.
    Pings { pings: Vec<PeerPing>, refused: Refused },
}

/// The types of a request that were refused (`peerapi`, `c2n`, unknown ones): how many, and
/// the first few distinct names (cut short), so one request makes one short log line.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Refused {
    pub count: usize,
    pub names: Vec<String>,
}

impl Refused {
    fn add(&mut self, name: &str) {
        self.count += 1;
        let name: String = name.chars().take(REFUSED_NAME_CHARS).collect();
        if self.names.len() < NAMED_REFUSALS && !self.names.contains(&name) {
            self.names.push(name);
        }
    }
}

/// What `request` asks for, or why none of it can be served.
pub(crate) fn task(request: &PingRequest) -> Result<Task, String> {
    if !request.url_is_noise {
        return Err(
            "its URL is not to be answered over Noise, and weft has no other channel".into()
        );
    }
    let path = noise_path(&request.url)?;
    if request.types.is_empty() {
        return Ok(Task::Head(path));
    }
    let ip = request.ip.ok_or("a peer ping without an IP")?;
    let mut pings = Vec::new();
    let mut refused = Refused::default();
    for name in request.types.split(',') {
        match tailcfg_kind(name) {
            Some(kind) if !pings.iter().any(|p: &PeerPing| p.kind == kind) => {
                pings.push(PeerPing { kind, ip, path: path.clone() })
            }
            Some(_) => {}
            None => refused.add(name),
        }
    }
    Ok(Task::Pings { pings, refused })
}

/// What must hold of any `task` of any request, whatever control sent: only Noise-answered
/// requests are served; the path is one a request line can carry; at most one ping per
/// kind, all of the request's IP; the refusal names are few and short. Panics otherwise
/// (for the fuzz target and the randomized test).
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn assert_task_invariants(request: &PingRequest, task: &Result<Task, String>) {
    let path = match task {
        Err(_) => return,
        Ok(Task::Head(path)) => {
            assert!(request.types.is_empty());
            path
        }
        Ok(Task::Pings { pings, refused }) => {
            assert!(pings.len() <= 3 && refused.count <= request.types.split(',').count());
            assert!(refused.names.len() <= NAMED_REFUSALS.min(refused.count));
            assert!(refused.names.iter().all(|n| n.chars().count() <= REFUSED_NAME_CHARS));
            for (i, ping) in pings.iter().enumerate() {
                assert_eq!(Some(ping.ip), request.ip);
                assert!(pings[..i].iter().all(|other| other.kind != ping.kind));
            }
            match pings.first() {
                Some(ping) => &ping.path,
                None => return,
            }
        }
    };
    assert!(request.url_is_noise);
    assert!(path.starts_with('/') && path.bytes().all(|b| b.is_ascii_graphic()), "{path:?}");
}

/// tailcfg's ping type names, exactly as spelled there.
fn tailcfg_kind(name: &str) -> Option<PingKind> {
    match name {
        "disco" => Some(PingKind::Disco),
        "TSMP" => Some(PingKind::Tsmp),
        "ICMP" => Some(PingKind::Icmp),
        _ => None,
    }
}

/// The path and query of an `http(s)://` URL, which the Noise session's requests carry; an
/// empty path is `/`. Refused: other schemes, and any byte that is not visible ASCII (it could
/// not go into a request line or HTTP/2 header, and sending it would fail the session).
fn noise_path(url: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or("the URL is not http(s)")?;
    if !rest.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("the URL has spaces, control characters or non-ASCII bytes".into());
    }
    Ok(match rest.find('/') {
        Some(at) => rest[at..].to_string(),
        None => "/".to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(url: &str, noise: bool, types: &str, ip: Option<&str>) -> PingRequest {
        PingRequest {
            url: url.into(),
            url_is_noise: noise,
            types: types.into(),
            ip: ip.map(|s| s.parse().unwrap()),
            ..PingRequest::default()
        }
    }

    #[test]
    fn types_become_pings_to_answer_at_the_urls_path() {
        let url = "https://control.test/machine/ping/7?k=v";
        let path = "/machine/ping/7?k=v".to_string();
        let ip: IpAddr = "100.64.0.2".parse().unwrap();
        assert_eq!(task(&request(url, true, "", None)), Ok(Task::Head(path.clone())));
        let Ok(Task::Pings { pings, refused }) =
            task(&request(url, true, "disco,TSMP,peerapi,disco,ICMP", Some("100.64.0.2")))
        else {
            panic!("pings expected");
        };
        let kinds: Vec<PingKind> = pings.iter().map(|p| p.kind).collect();
        assert_eq!(kinds, [PingKind::Disco, PingKind::Tsmp, PingKind::Icmp]);
        assert!(pings.iter().all(|p| p.ip == ip && p.path == path));
        assert_eq!(refused, Refused { count: 1, names: vec!["peerapi".into()] });
        assert_eq!(
            task(&request("http://c", true, "", None)),
            Ok(Task::Head("/".into())),
            "a URL without a path is the root"
        );
    }

    /// Up to `most` strings of `from`, at random.
    fn pick<'a>(rng: &mut crate::xorshift::Rng, from: &[&'a str], most: usize) -> Vec<&'a str> {
        let n = rng.below(most + 1);
        (0..n).map(|_| from[rng.below(from.len())]).collect()
    }

    /// Requests made at random from the pieces control could send (URLs of any bytes,
    /// type lists of known, unknown and empty names): none breaks the invariants.
    #[test]
    fn random_requests_keep_the_invariants() {
        let mut rng = crate::xorshift::Rng::new(0x7069_6e67);
        let url_parts = ["https://", "http://", "ftp://", "c.test", "/", "?a=b", " ", "\r\n", "é"];
        let type_names = ["disco", "TSMP", "ICMP", "peerapi", "c2n", "", "DISCO", "x"];
        for _ in 0..5_000 {
            let mut url = pick(&mut rng, &url_parts, 5).concat();
            let noise_bytes = rng.below(3);
            url.extend(rng.bytes(noise_bytes).iter().map(|b| char::from(*b)));
            let request = PingRequest {
                url,
                url_is_noise: rng.below(4) != 0,
                types: pick(&mut rng, &type_names, 12).join(","),
                ip: (rng.below(3) != 0).then(|| IpAddr::from([100, 64, 0, 2])),
                ..PingRequest::default()
            };
            assert_task_invariants(&request, &task(&request));
        }
    }

    #[test]
    fn bad_requests_are_refused_with_a_reason() {
        let url = "https://control.test/p";
        for bad in [
            request(url, false, "disco", Some("100.64.0.2")),
            request(url, true, "disco", None),
            request("ftp://control.test/p", true, "", None),
            request("https://control.test/p q", true, "", None),
            request("https://control.test/p\r\nx: y", true, "", None),
            request("https://control.test/é", true, "", None),
        ] {
            assert!(task(&bad).is_err(), "{bad:?}");
        }
        let Ok(Task::Pings { pings, refused }) =
            task(&request(url, true, "DISCO,,x", Some("100.64.0.2")))
        else {
            panic!("a list of unknown types is refused type by type");
        };
        assert!(pings.is_empty());
        assert_eq!(
            refused,
            Refused { count: 3, names: vec!["DISCO".into(), "".into(), "x".into()] }
        );
    }
}
