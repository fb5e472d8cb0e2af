//! The control client against an in-memory server: the happy path, and every malformed
//! answer ending in a clean reset and a retry with backoff — never a panic, a hang or lost state.

use super::fake_server::FakeServer;
use super::*;
use crate::control::http2::frame::Frame;
use crate::control::mapstream::encode_frame;
use crate::control::tailcfg::EndpointType;
use crate::xorshift::Rng;

const AUTH_KEY: &str = "tskey-auth-test";

struct Harness {
    client: ControlClient,
    server: Option<FakeServer>,
    now: Instant,
    events: Vec<Event>,
    connects: usize,
    /// Every byte the client sent, and every wake-up it asked for, in order.
    sent: Vec<u8>,
    wakes: Vec<Option<Instant>>,
}

fn new_identity() -> Identity {
    Identity {
        machine_key: PrivateKey::generate().unwrap(),
        node_key: PrivateKey::generate().unwrap(),
    }
}

/// What a driver would read from the OS, made from `seed` instead; the wall clock reads the
/// real time at `now` so expiry times written with `SystemTime::now()` mean what they say.
fn environment(seed: u64, now: Instant, wall: SystemTime) -> Environment {
    let mut entropy = Rng::new(seed ^ 0x6b65_7973);
    Environment {
        jitter_seed: seed,
        clock: WallClock::new(now, wall),
        disco_key: PrivateKey([0x22; 32]).public_key(),
        key_entropy: Box::new(move |bytes| {
            bytes.copy_from_slice(&entropy.bytes(32));
            Ok(())
        }),
    }
}

impl Harness {
    fn new() -> Harness {
        let now = Instant::now();
        Harness::with(new_identity(), environment(1, now, SystemTime::now()), now)
    }

    fn with(identity: Identity, environment: Environment, now: Instant) -> Harness {
        let server = ServerUrl::parse("http://control.test").unwrap();
        let auth_key = Some(AUTH_KEY.into());
        let client = ControlClient::new(server, identity, "box".into(), auth_key, environment, now);
        let mut h = Harness {
            client,
            server: None,
            now,
            events: Vec::new(),
            connects: 0,
            sent: Vec::new(),
            wakes: Vec::new(),
        };
        h.advance(Duration::ZERO);
        h
    }

    /// Moves bytes and actions until nobody has anything more to say.
    fn run(&mut self) {
        for _ in 0..1000 {
            if !self.step() {
                return;
            }
        }
        panic!("client and server never went quiet");
    }

    fn step(&mut self) -> bool {
        if let Some(action) = self.client.poll_action() {
            match action {
                Action::Connect { .. } => {
                    self.connects += 1;
                    self.server = Some(FakeServer::new());
                }
                Action::Disconnect => self.server = None,
            }
            return true;
        }
        let mut out = Vec::new();
        self.client.poll_output(self.now, &mut out);
        if !out.is_empty() {
            self.sent.extend_from_slice(&out);
            if let Some(server) = &mut self.server {
                server.receive(&out);
            }
            return true;
        }
        if let Some(server) = &mut self.server {
            if !server.to_client.is_empty() {
                let bytes = std::mem::take(&mut server.to_client);
                self.client.handle_input(self.now, &bytes);
                return true;
            }
            if server.closed {
                self.server = None;
                self.client.handle_closed(self.now, closed_by_server());
                return true;
            }
        }
        match self.client.poll_event() {
            Some(event) => {
                self.events.push(event);
                true
            }
            None => false,
        }
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
        self.client.handle_timeout(self.now);
        self.run();
        self.wakes.push(self.client.poll_timeout());
    }

    /// The connection drops; the client's next wake-up is returned.
    fn lose_connection(&mut self) -> Instant {
        self.server = None;
        self.client.handle_closed(self.now, LinkFailure::Network("reset by peer".into()));
        self.run();
        self.client.poll_timeout().expect("a retry is scheduled")
    }

    fn server(&mut self) -> &mut FakeServer {
        self.server.as_mut().expect("connected")
    }

    /// Answers the pending register request with `json`.
    fn answer_register(&mut self, json: &str) -> fake_server::Request {
        let request = self.server().take_request("/machine/register").expect("a register request");
        self.server().respond_head(request.stream, 200, false);
        self.server().respond_data(request.stream, json.as_bytes(), true);
        self.run();
        request
    }

    /// Waits out the backoff after a failure, up to the next connection's first requests.
    fn reconnect(&mut self) {
        let wake = self.client.poll_timeout().expect("a retry is scheduled");
        assert!(self.server.is_none(), "the old connection is closed");
        self.advance(wake.saturating_duration_since(self.now));
        assert!(self.server.is_some(), "reconnected");
    }

    /// Answers the map poll of a new session with 200 and a full netmap; returns its stream.
    fn resume_map_poll(&mut self) -> StreamId {
        let map = self.server().take_request("/machine/map").expect("a map poll");
        let body: serde_json::Value = serde_json::from_slice(&map.body).unwrap();
        assert_eq!(body["Stream"], true, "the long poll, not a lite update");
        self.server().respond_head(map.stream, 200, false);
        let me = self.client.identity().node_key.public_key();
        self.send_map(map.stream, &full_map(&me));
        map.stream
    }

    /// A server whose auth key was single-use (or testcontrol with `--authkey`, which wants
    /// the key in every register): any register after the first is refused.
    fn refuse_a_second_register(&mut self) {
        if let Some(request) = self.server().take_request("/machine/register") {
            self.server().respond_head(request.stream, 200, false);
            self.server().respond_data(request.stream, br#"{"Error":"invalid authkey"}"#, true);
            self.run();
        }
    }

    fn registrations(&self) -> usize {
        self.events.iter().filter(|e| matches!(e, Event::Registered)).count()
    }

    /// Logs in, loses the connection and reconnects: the new session's map poll, which
    /// comes without a register (the node is still registered), unanswered.
    fn map_poll_after_a_reconnect(&mut self) -> fake_server::Request {
        let _map = self.logged_in();
        self.lose_connection();
        self.reconnect();
        assert!(self.server().take_request("/machine/register").is_none(), "still registered");
        self.server().take_request("/machine/map").expect("a map poll")
    }

    /// Registers and opens the map stream; returns the map stream.
    fn logged_in(&mut self) -> StreamId {
        self.answer_register(r#"{"MachineAuthorized":true,"User":{"ID":1}}"#);
        let map = self.server().take_request("/machine/map").expect("a map request");
        self.server().respond_head(map.stream, 200, false);
        map.stream
    }

    fn send_map(&mut self, stream: StreamId, json: &str) {
        self.server().respond_data(stream, &encode_frame(json.as_bytes()), false);
        self.run();
    }

    /// The netmap as it stood after each netmap or peer-delta event, the deltas applied in
    /// turn as the daemon's engine applies them.
    fn netmaps(&self) -> Vec<Netmap> {
        let mut netmaps: Vec<Netmap> = Vec::new();
        for event in &self.events {
            match event {
                Event::Netmap(netmap) => netmaps.push((**netmap).clone()),
                Event::PeerDelta(delta) => {
                    let mut netmap = netmaps.last().expect("a delta after a netmap").clone();
                    let replaced = |key: &PublicKey| {
                        delta.remove.contains(key)
                            || delta.upsert.iter().any(|p| p.public_key == *key)
                    };
                    netmap.peers.retain(|p| !replaced(&p.public_key));
                    netmap.peers.extend(delta.upsert.iter().cloned());
                    netmap.peers.sort_by_key(|p| p.public_key);
                    netmaps.push(netmap);
                }
                _ => {}
            }
        }
        netmaps
    }

    /// The client dropped the connection and will come back after a backoff, not at once.
    fn assert_reset_with_backoff(&mut self) {
        assert!(self.server.is_none(), "connection closed");
        let wake = self.client.poll_timeout().expect("a retry is scheduled");
        assert!(wake > self.now, "backoff, not an instant retry");
        assert!(self.client.last_error().is_some());
        let before = self.connects;
        self.advance(wake - self.now);
        assert!(self.connects > before, "reconnected after the backoff");
    }
}

fn closed_by_server() -> LinkFailure {
    LinkFailure::Network("closed by server".into())
}

fn login_failure(events: &[Event]) -> Option<&ControlError> {
    events.iter().find_map(|e| if let Event::LoginFailed(why) = e { Some(why) } else { None })
}

fn nodekey(byte: u8) -> String {
    format!("nodekey:{}", format!("{byte:02x}").repeat(32))
}

fn full_map(self_key: &PublicKey) -> String {
    format!(
        r#"{{"Node":{{"ID":1,"Key":"{me}","Name":"box.tail.example.","Addresses":["100.64.0.1/32"],"MachineAuthorized":true,"User":1}},
            "Peers":[{{"ID":2,"Key":"{peer}","Name":"peer.tail.example.","Addresses":["100.64.0.2/32"],"AllowedIPs":["100.64.0.2/32"],
                       "DiscoKey":"discokey:{disco}","Endpoints":["192.0.2.2:41641"],"Hostinfo":{{"OS":"linux","Hostname":"peer"}},"Online":true,"SomeFutureField":[1]}}],
            "Domain":"tail.example","UserProfiles":[{{"ID":1,"LoginName":"alice@example.com","DisplayName":"Alice"}}]}}"#,
        me = self_key.to_nodekey(),
        peer = nodekey(0x22),
        disco = "33".repeat(32)
    )
}

#[test]
fn registers_with_an_auth_key_and_streams_the_netmap() {
    let mut h = Harness::new();
    assert_eq!(h.connects, 2, "one connection for /key, one for ts2021");
    let register = h.answer_register(r#"{"MachineAuthorized":true}"#);
    let body: serde_json::Value = serde_json::from_slice(&register.body).unwrap();
    assert_eq!(body["Auth"]["AuthKey"], AUTH_KEY);
    assert_eq!(body["Version"], 138);
    assert_eq!(body["NodeKey"], h.client.identity().node_key.public_key().to_nodekey());
    assert!(matches!(h.events[0], Event::Registered));

    let map = h.server().take_request("/machine/map").unwrap();
    let request: serde_json::Value = serde_json::from_slice(&map.body).unwrap();
    assert_eq!(
        (request["Stream"].as_bool(), request["KeepAlive"].as_bool()),
        (Some(true), Some(true))
    );
    assert!(request.get("Compress").is_none(), "no compression requested");
    h.server().respond_head(map.stream, 200, false);
    let me = h.client.identity().node_key.public_key();
    h.send_map(map.stream, &full_map(&me));
    let netmaps = h.netmaps();
    assert_eq!(netmaps.len(), 1);
    let netmap = &netmaps[0];
    assert_eq!(netmap.self_node.addresses, vec!["100.64.0.1/32".parse().unwrap()]);
    assert_eq!(netmap.peers.len(), 1);
    assert_eq!(netmap.peers[0].public_key.to_nodekey(), nodekey(0x22));
    assert_eq!(netmap.peers[0].endpoints, vec!["192.0.2.2:41641".parse().unwrap()]);
    assert_eq!(h.client.state(), BackendState::Running);
    assert!(h.client.is_connected());

    // A delta removing the peer, handed on as a delta.
    h.send_map(map.stream, r#"{"PeersRemoved":[2]}"#);
    assert!(h.netmaps().last().unwrap().peers.is_empty());
    match h.events.last() {
        Some(Event::PeerDelta(delta)) => assert_eq!(delta.remove, vec![PublicKey([0x22; 32])]),
        other => panic!("expected a peer delta, got {other:?}"),
    }
    // Keep-alives change nothing but feed the watchdog.
    let count = h.netmaps().len();
    h.send_map(map.stream, r#"{"KeepAlive":true}"#);
    assert_eq!(h.netmaps().len(), count);
}

#[test]
fn shields_up_is_told_in_every_hostinfo() {
    let mut h = Harness::new();
    // The harness has sent the register request already; what follows carries the change.
    h.client.set_shields_up(true);
    h.answer_register(r#"{"MachineAuthorized":true}"#);
    let map = h.server().take_request("/machine/map").unwrap();
    let request: serde_json::Value = serde_json::from_slice(&map.body).unwrap();
    assert_eq!(request["Hostinfo"]["ShieldsUp"], true);
    assert_eq!(request["Hostinfo"]["Hostname"], "box");
    // Down: left out, as tailscaled leaves a false field out.
    let mut h = Harness::new();
    let register = h.answer_register(r#"{"MachineAuthorized":true}"#);
    let body: serde_json::Value = serde_json::from_slice(&register.body).unwrap();
    assert!(body["Hostinfo"].get("ShieldsUp").is_none());
}

#[test]
fn endpoints_go_out_as_a_lite_update() {
    let mut h = Harness::new();
    let _map = h.logged_in();
    let now = h.now;
    let endpoints = vec![
        Endpoint { addr: "203.0.113.5:40000".parse().unwrap(), kind: EndpointType::Stun },
        Endpoint { addr: "192.0.2.9:41641".parse().unwrap(), kind: EndpointType::Local },
    ];
    h.client.set_endpoints(now, endpoints.clone());
    h.run();
    let lite = h.server().take_request("/machine/map").expect("lite update");
    let body: serde_json::Value = serde_json::from_slice(&lite.body).unwrap();
    assert_eq!(body["Stream"], false);
    assert_eq!(body["OmitPeers"], true);
    assert_eq!(body["Endpoints"], serde_json::json!(["203.0.113.5:40000", "192.0.2.9:41641"]));
    assert_eq!(body["EndpointTypes"], serde_json::json!([2, 1]));
    // The same endpoints again are no news.
    h.client.set_endpoints(now, endpoints);
    h.run();
    assert!(h.server().take_request("/machine/map").is_none());
}

#[test]
fn net_info_goes_out_in_the_hostinfo_of_a_lite_update_when_it_changes() {
    let mut h = Harness::new();
    let _map = h.logged_in();
    let now = h.now;
    let mut net_info = NetInfo {
        working_udp: Some(true),
        mapping_varies_by_dest_ip: Some(false),
        preferred_derp: 7,
        ..NetInfo::default()
    };
    net_info.derp_latency.insert("7-v4".into(), 0.012);
    h.client.set_net_info(now, net_info.clone());
    h.run();
    let lite = h.server().take_request("/machine/map").expect("lite update");
    let body: serde_json::Value = serde_json::from_slice(&lite.body).unwrap();
    let sent = &body["Hostinfo"]["NetInfo"];
    assert_eq!(sent["PreferredDERP"], 7);
    assert_eq!(sent["WorkingUDP"], true);
    assert_eq!(sent["MappingVariesByDestIP"], false);
    assert_eq!(sent["DERPLatency"]["7-v4"], 0.012);
    // Unchanged, or only new latencies (as tailscale's NetInfo.BasicallyEqual): nothing; a
    // new home region: another update.
    h.client.set_net_info(now, net_info.clone());
    net_info.derp_latency.insert("7-v4".into(), 0.015);
    h.client.set_net_info(now, net_info.clone());
    h.run();
    assert!(h.server().take_request("/machine/map").is_none());
    h.server().respond_head(lite.stream, 200, true);
    h.run();
    assert!(h.server().take_request("/machine/map").is_none(), "new latencies alone are no news");
    net_info.preferred_derp = 8;
    h.client.set_net_info(now, net_info);
    h.run();
    let lite = h.server().take_request("/machine/map").expect("second lite update");
    let body: serde_json::Value = serde_json::from_slice(&lite.body).unwrap();
    assert_eq!(body["Hostinfo"]["NetInfo"]["PreferredDERP"], 8);
}

fn tcp_service(port: u16) -> Service {
    Service { proto: "tcp".into(), port, description: String::new() }
}

/// The `Hostinfo.Services` of the next lite update, if one went out.
fn lite_services(h: &mut Harness) -> Option<(StreamId, serde_json::Value)> {
    let lite = h.server().take_request("/machine/map")?;
    let body: serde_json::Value = serde_json::from_slice(&lite.body).unwrap();
    assert_eq!(body["Stream"], false, "a lite update");
    Some((lite.stream, body["Hostinfo"]["Services"].clone()))
}

#[test]
fn services_go_out_in_a_lite_update_only_while_control_collects_them() {
    let mut h = Harness::new();
    let map = h.logged_in();
    let me = h.client.identity().node_key.public_key();
    h.send_map(map, &full_map(&me));
    let now = h.now;
    h.client.set_services(now, vec![tcp_service(22)]);
    h.run();
    assert!(!h.client.wants_services());
    assert!(lite_services(&mut h).is_none(), "control did not ask: nothing sent");
    // Control asks: the services known already go out at once.
    h.send_map(map, r#"{"CollectServices":true}"#);
    assert!(h.client.wants_services());
    let (lite, services) = lite_services(&mut h).expect("a lite update once control asks");
    assert_eq!(services, serde_json::json!([{"Proto":"tcp","Port":22}]));
    h.server().respond_head(lite, 200, true);
    h.run();
    // The same list again is no news; a new one is.
    h.client.set_services(now, vec![tcp_service(22)]);
    h.run();
    assert!(lite_services(&mut h).is_none(), "an unchanged list sends nothing");
    h.client.set_services(now, vec![tcp_service(22), tcp_service(8080)]);
    h.run();
    let (lite, services) = lite_services(&mut h).expect("a lite update for the change");
    assert_eq!(
        services,
        serde_json::json!([{"Proto":"tcp","Port":22},{"Proto":"tcp","Port":8080}])
    );
    h.server().respond_head(lite, 200, true);
    h.run();
    // Control stops asking: a change is kept to ourselves, and other updates leave it out.
    h.send_map(map, r#"{"CollectServices":false}"#);
    h.client.set_services(now, vec![tcp_service(443)]);
    h.run();
    assert!(lite_services(&mut h).is_none());
    let endpoint = Endpoint { addr: "192.0.2.9:41641".parse().unwrap(), kind: EndpointType::Local };
    h.client.set_endpoints(now, vec![endpoint]);
    h.run();
    let (_, services) = lite_services(&mut h).expect("the endpoints' lite update");
    assert!(services.is_null(), "no services while control does not collect them: {services}");
}

#[test]
fn shields_up_keeps_the_services_from_control() {
    let mut h = Harness::new();
    h.client.set_shields_up(true);
    let map = h.logged_in();
    let me = h.client.identity().node_key.public_key();
    h.send_map(map, &full_map(&me).replacen('{', r#"{"CollectServices":true,"#, 1));
    assert!(!h.client.wants_services(), "shields up: no services whatever control asks");
    let now = h.now;
    h.client.set_services(now, vec![tcp_service(22)]);
    h.run();
    assert!(lite_services(&mut h).is_none());
}

#[test]
fn every_map_request_carries_the_daemons_disco_key() {
    let now = Instant::now();
    let mut environment = environment(1, now, SystemTime::now());
    environment.disco_key = PrivateKey([0x44; 32]).public_key();
    let mut h = Harness::with(new_identity(), environment, now);
    let _map = h.logged_in();
    let local = Endpoint { addr: "192.0.2.9:41641".parse().unwrap(), kind: EndpointType::Local };
    h.client.set_endpoints(now, vec![local]);
    h.run();
    let expected = PrivateKey([0x44; 32]).public_key().to_prefixed_hex("discokey:");
    let lite = h.server().take_request("/machine/map").expect("lite update");
    let body: serde_json::Value = serde_json::from_slice(&lite.body).unwrap();
    assert_eq!(body["DiscoKey"], expected.as_str());
}

#[test]
fn a_refused_auth_key_fails_the_login_without_retrying() {
    let mut h = Harness::new();
    h.answer_register(r#"{"Error":"invalid authkey"}"#);
    let why = login_failure(&h.events).expect("the login failed");
    assert_eq!(why, &ControlError::Login(LoginError::Refused("invalid authkey".into())));
    assert_eq!(why.to_string(), "login failed: invalid authkey");
    assert_eq!(h.client.state(), BackendState::NeedsLogin);
    assert!(h.server.is_none());
    assert_eq!(h.client.poll_timeout(), None, "no retry until the user acts");
    assert!(!h.events.iter().any(|e| matches!(e, Event::Registered)), "nothing to persist");
}

#[test]
fn an_http_error_on_register_fails_the_login() {
    let mut h = Harness::new();
    let request = h.server().take_request("/machine/register").unwrap();
    h.server().respond_head(request.stream, 401, false);
    h.server().respond_data(request.stream, b"unauthorized\n", true);
    h.run();
    let why = login_failure(&h.events).expect("the login failed");
    assert!(
        matches!(why, ControlError::Refused(r) if r.status == 401 && r.text == "unauthorized"),
        "{why:?}"
    );
    assert_eq!(why.to_string(), "control server answered register with HTTP 401: unauthorized");
    assert_eq!(h.client.last_error(), Some(why));
    assert_eq!(h.client.poll_timeout(), None, "no retry until the user acts");
    assert!(h.server.is_none());
    let connects = h.connects;
    h.advance(Duration::from_secs(3600));
    assert_eq!(h.connects, connects, "gave up: no reconnect, however long we wait");
}

#[test]
fn the_auth_key_never_shows_in_an_error() {
    let mut h = Harness::new();
    h.answer_register(&format!(r#"{{"Error":"invalid authkey {AUTH_KEY}"}}"#));
    let why = login_failure(&h.events).expect("the login failed").to_string();
    assert!(!why.contains(AUTH_KEY), "{why}");
    assert!(why.contains("invalid authkey"), "{why}");

    let mut h = Harness::new();
    let request = h.server().take_request("/machine/register").unwrap();
    h.server().respond_head(request.stream, 403, false);
    h.server().respond_data(request.stream, format!("bad key {AUTH_KEY}").as_bytes(), true);
    h.run();
    let why = h.client.last_error().expect("refused").to_string();
    assert!(!why.contains(AUTH_KEY) && why.contains("403"), "{why}");
}

#[test]
fn a_server_error_on_register_retries_instead_of_giving_up() {
    let mut h = Harness::new();
    let request = h.server().take_request("/machine/register").unwrap();
    h.server().respond_head(request.stream, 502, false);
    h.server().respond_data(request.stream, b"bad gateway", true);
    h.run();
    assert!(login_failure(&h.events).is_none());
    assert!(matches!(h.client.last_error(), Some(ControlError::Refused(r)) if r.status == 502));
    h.assert_reset_with_backoff();
}

#[test]
fn interactive_login_shows_the_url_then_follows_up() {
    let mut h = Harness::new();
    h.answer_register(r#"{"AuthURL":"http://control.test/register/abc"}"#);
    assert_eq!(h.client.state(), BackendState::NeedsLogin);
    assert_eq!(h.client.auth_url(), "http://control.test/register/abc");
    let followup = h.server().take_request("/machine/register").expect("follow-up request");
    let body: serde_json::Value = serde_json::from_slice(&followup.body).unwrap();
    assert_eq!(body["Followup"], "http://control.test/register/abc");
    assert_eq!(
        h.client.poll_timeout(),
        None,
        "the follow-up may wait for the user as long as it takes"
    );
    h.server().respond_head(followup.stream, 200, false);
    h.server().respond_data(followup.stream, br#"{"MachineAuthorized":true}"#, true);
    h.run();
    assert!(h.events.iter().any(|e| matches!(e, Event::Registered)));
    assert_eq!(h.client.auth_url(), "");
}

#[test]
fn a_reconnect_resumes_the_map_poll_without_registering_again() {
    let mut h = Harness::new();
    let map = h.logged_in();
    let me = h.client.identity().node_key.public_key();
    h.send_map(map, &full_map(&me));
    assert!(h.client.auth_key.is_none(), "the accepted auth key is dropped");
    h.lose_connection();
    h.reconnect();
    assert!(h.server().take_request("/machine/register").is_none(), "no second register");
    h.resume_map_poll();
    assert_eq!(h.netmaps().len(), 2);
    assert_eq!(h.client.state(), BackendState::Running);
    assert!(h.client.is_connected());
    assert_eq!(h.registrations(), 1);
}

/// Every way a map poll's connection breaks, other than a refusal of the node itself, ends
/// in a new map poll; a server that takes its auth key once keeps the node.
#[test]
fn a_single_use_auth_key_keeps_the_node_in_the_tailnet_across_reconnects() {
    let mut h = Harness::new();
    let mut map = h.logged_in();
    let me = h.client.identity().node_key.public_key();
    h.send_map(map, &full_map(&me));
    type BreakIt = fn(&mut Harness, StreamId);
    let breaks: [(&str, BreakIt); 5] = [
        ("connection lost", |h, _| {
            h.lose_connection();
        }),
        ("map stream ended", |h, map| h.server().respond_data(map, &[], true)),
        ("GOAWAY", |h, _| {
            // Length 8, type 7 (GOAWAY), stream 0; last stream 0, NO_ERROR.
            let go_away = [0, 0, 8, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
            h.server().send_plaintext(&go_away)
        }),
        ("watchdog", |h, _| h.advance(MAP_WATCHDOG + Duration::from_secs(1))),
        ("server error on the map poll", |h, _| {
            h.lose_connection();
            h.reconnect();
            h.refuse_a_second_register();
            let map = h.server().take_request("/machine/map").expect("a map poll");
            h.server().respond_head(map.stream, 502, true);
        }),
    ];
    for (how, break_it) in breaks {
        break_it(&mut h, map);
        h.run();
        h.reconnect();
        h.refuse_a_second_register();
        assert!(login_failure(&h.events).is_none(), "after {how}: {:?}", h.client.last_error());
        map = h.resume_map_poll();
        assert_eq!(h.client.state(), BackendState::Running, "after {how}");
    }
    assert_eq!(h.registrations(), 1);
    assert_eq!(h.netmaps().len(), 1 + breaks.len());
}

#[test]
fn a_map_poll_refused_for_the_node_registers_again_and_only_then() {
    let mut h = Harness::new();
    // testcontrol answers 400 "node not found", headscale 404, when it no longer knows the
    // node key: the login is gone, and only a register can tell what is needed now.
    let map = h.map_poll_after_a_reconnect();
    h.server().respond_head(map.stream, 404, false);
    h.server().respond_data(map.stream, b"node not found", true);
    h.run();
    assert!(login_failure(&h.events).is_none(), "not the user's problem yet");
    h.reconnect();
    let register = h.answer_register(r#"{"MachineAuthorized":true}"#);
    let body: serde_json::Value = serde_json::from_slice(&register.body).unwrap();
    assert!(body.get("Auth").is_none(), "the used auth key is gone");
    assert_eq!(body["NodeKey"], h.client.identity().node_key.public_key().to_nodekey());
    assert_eq!(h.registrations(), 2);
    h.resume_map_poll();
    assert_eq!(h.client.state(), BackendState::Running);
    // Registered again: the next reconnect goes straight to the map poll.
    h.lose_connection();
    h.reconnect();
    assert!(h.server().take_request("/machine/register").is_none());
    h.resume_map_poll();
}

#[test]
fn a_rate_limited_map_poll_waits_as_the_server_asks_and_resumes_without_registering() {
    let mut h = Harness::new();
    let map = h.map_poll_after_a_reconnect();
    h.server().respond_head_with(map.stream, 429, &[("retry-after", "40")], true);
    h.run();
    assert!(h.server.is_none(), "the connection is closed");
    assert_eq!(h.client.poll_timeout(), Some(h.now + Duration::from_secs(40)));
    assert!(login_failure(&h.events).is_none(), "429 only asks us to slow down");
    h.reconnect();
    assert!(h.server().take_request("/machine/register").is_none(), "still registered");
    h.resume_map_poll();
    assert_eq!(h.registrations(), 1);
}

#[test]
fn a_map_poll_refused_after_a_re_register_is_told_to_the_user() {
    let mut h = Harness::new();
    let map = h.map_poll_after_a_reconnect();
    h.server().respond_head(map.stream, 401, true);
    h.run();
    h.reconnect();
    // The server forgot the node and wants a login: the user must act.
    h.answer_register(r#"{"AuthURL":"http://control.test/register/xyz"}"#);
    assert_eq!(h.client.state(), BackendState::NeedsLogin);
    assert_eq!(h.client.auth_url(), "http://control.test/register/xyz");
}

#[test]
fn logout_after_a_reconnect_still_expires_the_key() {
    let mut h = Harness::new();
    let _map = h.logged_in();
    h.lose_connection();
    h.reconnect();
    h.resume_map_poll();
    let now = h.now;
    h.client.logout(now);
    h.run();
    let request = h.answer_register(r#"{}"#);
    let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body["Expiry"], "1970-01-01T00:02:03Z");
    assert!(matches!(h.events.last(), Some(Event::LoggedOut)));
}

#[test]
fn a_refused_login_drops_the_auth_key() {
    let mut h = Harness::new();
    h.answer_register(r#"{"Error":"invalid authkey"}"#);
    assert!(login_failure(&h.events).is_some());
    assert!(h.client.auth_key.is_none(), "a parked client never sends it again");
}

#[test]
fn a_bad_handshake_reply_resets_and_retries() {
    let mut h = Harness::new();
    // Drop the session; the next one (the server key is cached) gets a corrupted reply.
    h.now = h.lose_connection();
    h.client.handle_timeout(h.now);
    // Deliver the upgrade request, then flip a byte of the Noise response.
    while h.server.as_ref().is_none_or(|s| s.to_client.is_empty()) {
        assert!(h.step(), "the server should answer the upgrade");
    }
    let reply = &mut h.server().to_client;
    let last = reply.len() - 30;
    reply[last] ^= 0x55;
    h.run();
    assert!(
        matches!(h.client.last_error(), Some(ControlError::ServerKey(_))),
        "{:?}",
        h.client.last_error()
    );
    let before = h.connects;
    h.assert_reset_with_backoff();
    assert_eq!(h.connects, before + 2, "the server's key is fetched again before the next session");
}

#[test]
fn a_connection_lost_after_noise_opened_keeps_the_server_key() {
    let mut h = Harness::new();
    let _map = h.logged_in();
    h.now = h.lose_connection();
    assert!(matches!(
        h.client.last_error(),
        Some(ControlError::Network(NetworkError::Closed { during: Step::Session, .. }))
    ));
    let before = h.connects;
    h.advance(Duration::ZERO);
    assert_eq!(h.connects, before + 1, "straight to the session: the key is still good");
    assert!(h.server().take_request("/machine/map").is_some());
}

#[test]
fn a_close_after_giving_up_keeps_the_real_reason() {
    let mut h = Harness::new();
    h.server().to_client.extend_from_slice(&[0x04, 0xff, 0xff]);
    h.server().to_client.extend_from_slice(&[0u8; 64]);
    h.run();
    let why = h.client.last_error().unwrap().clone();
    let wake = h.client.poll_timeout();
    h.client.handle_closed(h.now, closed_by_server());
    assert_eq!(h.client.last_error(), Some(&why));
    assert_eq!(h.client.poll_timeout(), wake, "no second step of backoff");
}

#[test]
fn a_failed_key_fetch_reports_why_the_connection_closed() {
    let now = Instant::now();
    let url = ServerUrl::parse("https://control.test").unwrap();
    let environment = environment(1, now, SystemTime::now());
    let mut client = ControlClient::new(url, new_identity(), "box".into(), None, environment, now);
    client.handle_timeout(now);
    assert!(matches!(client.poll_action(), Some(Action::Connect { tls: true, .. })));
    let reason = "invalid peer certificate: UnknownIssuer";
    client.handle_closed(now, LinkFailure::Network(reason.into()));
    let why = client.last_error().unwrap();
    assert_eq!(why.to_string(), format!("fetching the control server's key: {reason}"));
    assert_eq!(why.remedy(), Remedy::Retry);
}

#[test]
fn an_oversized_noise_record_resets() {
    let mut h = Harness::new();
    h.server().to_client.extend_from_slice(&[0x04, 0xff, 0xff]);
    h.server().to_client.extend_from_slice(&[0u8; 64]);
    h.run();
    h.assert_reset_with_backoff();
}

#[test]
fn hpack_garbage_resets() {
    let mut h = Harness::new();
    let request = h.server().take_request("/machine/register").unwrap();
    let garbage = Frame::Headers {
        stream: request.stream,
        end_stream: false,
        end_headers: true,
        padding: None,
        priority: None,
        fragment: vec![0xff, 0xff, 0xff, 0xff, 0x7f],
    };
    h.server().send_frames(&[garbage]);
    h.run();
    h.assert_reset_with_backoff();
}

#[test]
fn a_flow_control_violation_resets() {
    let mut h = Harness::new();
    let map = h.logged_in();
    // 5 MiB in one burst: more than the 4 MiB stream window we advertised.
    let flood = vec![b' '; 5 << 20];
    let frames: Vec<Frame> = flood
        .chunks(16_384)
        .map(|c| Frame::Data { stream: map, end_stream: false, padding: None, data: c.to_vec() })
        .collect();
    h.server().send_frames(&frames);
    h.run();
    h.assert_reset_with_backoff();
}

#[test]
fn malformed_map_json_resets_and_the_next_session_resynchronises() {
    let mut h = Harness::new();
    let map = h.logged_in();
    let me = h.client.identity().node_key.public_key();
    h.send_map(map, &full_map(&me));
    assert_eq!(h.netmaps().len(), 1);
    h.send_map(map, r#"{"Peers": [{"ID": "not a number"#);
    assert_eq!(h.netmaps().len(), 1, "no netmap from a broken frame");
    h.assert_reset_with_backoff();
    // The new session polls the map afresh.
    let map = h.server().take_request("/machine/map").unwrap();
    h.server().respond_head(map.stream, 200, false);
    h.send_map(map.stream, &full_map(&me));
    assert_eq!(h.netmaps().len(), 2);
    assert_eq!(h.netmaps()[1].peers.len(), 1);
}

#[test]
fn a_length_prefix_past_the_end_of_the_stream_resets() {
    let mut h = Harness::new();
    let map = h.logged_in();
    let mut partial = 100u32.to_le_bytes().to_vec();
    partial.extend_from_slice(b"{\"KeepAlive\"");
    h.server().respond_data(map, &partial, true);
    h.run();
    h.assert_reset_with_backoff();
}

#[test]
fn an_absurd_length_prefix_resets() {
    let mut h = Harness::new();
    let map = h.logged_in();
    h.server().respond_data(map, &u32::MAX.to_le_bytes(), false);
    h.run();
    h.assert_reset_with_backoff();
}

#[test]
fn the_watchdog_reconnects_after_120_seconds_of_silence() {
    let mut h = Harness::new();
    let map = h.logged_in();
    h.send_map(map, r#"{"KeepAlive":true}"#);
    h.advance(Duration::from_secs(119));
    assert!(h.server.is_some(), "still within the watchdog");
    h.advance(Duration::from_secs(2));
    h.assert_reset_with_backoff();
}

#[test]
fn logout_expires_the_key_and_reports_it() {
    let mut h = Harness::new();
    let _map = h.logged_in();
    let now = h.now;
    h.client.logout(now);
    h.run();
    let request = h.answer_register(r#"{}"#);
    let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body["Expiry"], "1970-01-01T00:02:03Z");
    assert!(matches!(h.events.last(), Some(Event::LoggedOut)));
    assert_eq!(h.client.poll_timeout(), None);
}

#[test]
fn shaken_server_bytes_never_panic() {
    // A real transcript of the server's side of a login, then corrupted many ways.
    let mut h = Harness::new();
    let me = h.client.identity().node_key.public_key();
    let map = h.logged_in();
    h.server().respond_data(map, &encode_frame(full_map(&me).as_bytes()), false);
    let transcript = h.server().to_client.clone();
    crate::testing::shake(17, 300, &transcript, |bytes| {
        let mut fresh = Harness::new();
        let _ = fresh.logged_in();
        fresh.client.handle_input(fresh.now, bytes);
        fresh.run();
    });
}

#[test]
fn rate_limited_register_waits_as_the_server_asks() {
    let mut h = Harness::new();
    let request = h.server().take_request("/machine/register").unwrap();
    h.server().respond_head_with(request.stream, 429, &[("retry-after", "7")], true);
    h.run();
    assert!(h.server.is_none());
    assert_eq!(h.client.poll_timeout(), Some(h.now + Duration::from_secs(7)));
    assert!(!h.events.iter().any(|e| matches!(e, Event::LoginFailed(_))), "429 is not a refusal");
    assert!(matches!(
        h.client.last_error(),
        Some(ControlError::Refused(r)) if r.retry_after == Some(Duration::from_secs(7))
    ));
}

#[test]
fn rate_limited_register_without_retry_after_pauses_five_to_ten_seconds() {
    let mut h = Harness::new();
    let request = h.server().take_request("/machine/register").unwrap();
    h.server().respond_head(request.stream, 429, true);
    h.run();
    let wait = h.client.poll_timeout().unwrap() - h.now;
    assert!((Duration::from_secs(5)..Duration::from_secs(10)).contains(&wait), "{wait:?}");
    assert!(login_failure(&h.events).is_none());
}

/// Drives a client through a login and a run of lost connections, recording everything it
/// sent and every wake-up it asked for.
fn scripted_run(seed: u64, identity: Identity, t0: Instant) -> (Vec<u8>, Vec<Option<Instant>>) {
    let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let mut h = Harness::with(identity, environment(seed, t0, wall), t0);
    let _map = h.logged_in();
    h.run();
    for _ in 0..6 {
        let wake = h.lose_connection();
        h.wakes.push(Some(wake));
        h.advance(wake - h.now);
    }
    (h.sent, h.wakes)
}

#[test]
fn the_same_seed_and_clock_replay_the_same_requests_and_backoff() {
    let identity = new_identity();
    let t0 = Instant::now();
    let (sent, wakes) = scripted_run(42, identity.clone(), t0);
    assert_eq!(scripted_run(42, identity.clone(), t0), (sent.clone(), wakes.clone()));
    let (other_sent, other_wakes) = scripted_run(43, identity, t0);
    assert_ne!(other_wakes, wakes, "another seed, another backoff schedule");
    assert_ne!(other_sent, sent, "another seed, other Noise ephemeral keys");
}

#[test]
fn a_ping_request_over_noise_is_answered_with_a_head() {
    let mut h = Harness::new();
    let map = h.logged_in();
    h.send_map(map, r#"{"KeepAlive":true,"PingRequest":{"URL":"https://control.test/machine/ping/42?x=1","URLIsNoise":true}}"#);
    let head = h.server().take_request("/machine/ping/42?x=1").expect("HEAD sent");
    assert_eq!(head.method, "HEAD");
    // Its answer, whatever it is, doesn't disturb the session.
    h.server().respond_head(head.stream, 404, true);
    h.run();
    assert!(h.server.is_some() && h.client.is_connected());
}

#[test]
fn a_peer_ping_request_becomes_an_event_and_its_result_is_posted_over_noise() {
    let mut h = Harness::new();
    let map = h.logged_in();
    let request = r#"{"KeepAlive":true,"PingRequest":{"URL":"https://control.test/machine/ping/9","URLIsNoise":true,"Types":"disco,peerapi","IP":"100.64.0.2"}}"#;
    h.send_map(map, request);
    // The same request again (control may repeat itself) is served once.
    h.send_map(map, request);
    let pings: Vec<&PeerPing> = h
        .events
        .iter()
        .filter_map(|e| match e {
            Event::PingPeer(p) => Some(p),
            _ => None,
        })
        .collect();
    let want = PeerPing {
        kind: crate::engine::ping::PingKind::Disco,
        ip: "100.64.0.2".parse().unwrap(),
        path: "/machine/ping/9".into(),
    };
    assert_eq!(pings, [&want], "peerapi is refused, disco asked for once");
    let now = h.now;
    h.client.post_ping_result(now, &want.path, br#"{"Type":"disco","Endpoint":"192.0.2.4:41641"}"#);
    h.run();
    let post = h.server().take_request("/machine/ping/9").expect("the result POSTed");
    assert_eq!(post.method, "POST");
    assert_eq!(post.body, br#"{"Type":"disco","Endpoint":"192.0.2.4:41641"}"#);
    h.server().respond_head(post.stream, 200, true);
    h.run();
    assert!(h.client.is_connected());
}

#[test]
fn bad_ping_requests_are_refused_and_the_session_carries_on() {
    let mut h = Harness::new();
    let map = h.logged_in();
    for ping in [
        r#"{"URL":"https://control.test/p1","URLIsNoise":false,"Types":"disco","IP":"100.64.0.2"}"#,
        r#"{"URL":"https://control.test/p2","URLIsNoise":true,"Types":"TSMP"}"#,
        r#"{"URL":"https://control.test/p 3\r\n","URLIsNoise":true}"#,
        r#"{"URL":"gopher://control.test/p4","URLIsNoise":true,"Types":"ICMP","IP":"100.64.0.2"}"#,
        r#"{"URL":"https://control.test/p5","URLIsNoise":true,"Types":"c2n,nonsense","IP":"100.64.0.2"}"#,
    ] {
        h.send_map(map, &format!(r#"{{"KeepAlive":true,"PingRequest":{ping}}}"#));
        assert!(h.server.is_some(), "{ping} {:?}", h.client.last_error());
    }
    assert!(!h.events.iter().any(|e| matches!(e, Event::PingPeer(_))), "{:?}", h.events);
    assert!(h.server().take_request("/p").is_none());
    assert_eq!(h.client.refused_ping_requests, 5, "one refusal (one log line) per request");
    assert!(h.server.is_some() && h.client.is_connected());
}

/// Control can ask for a proof of life (or a ping) in every message and never answer our
/// HEADs and POSTs: the streams they leave open are bounded, the requests beyond refused.
#[test]
fn ping_answers_control_leaves_unanswered_are_bounded() {
    let mut h = Harness::new();
    let map = h.logged_in();
    let asked = 200;
    for i in 0..asked {
        let url = format!("https://control.test/machine/ping/{i}");
        let ping = format!(r#"{{"URL":"{url}","URLIsNoise":true}}"#);
        h.send_map(map, &format!(r#"{{"KeepAlive":true,"PingRequest":{ping}}}"#));
    }
    let answered = (0..asked)
        .filter(|i| h.server().take_request(&format!("/machine/ping/{i}")).is_some())
        .count();
    assert!(answered > 0 && answered <= MAX_OPEN_STREAMS, "{answered} HEADs left open");
    assert_eq!(h.client.refused_ping_requests, (asked - answered) as u64);
    assert!(h.client.is_connected(), "{:?}", h.client.last_error());
}

/// Control can send a request to refuse in every message: the log tells the first ones
/// and then ever more rarely, with the count, not one line per message.
#[test]
fn refused_ping_requests_do_not_flood_the_log() {
    let mut h = Harness::new();
    let map = h.logged_in();
    let asked = 1000;
    let ((), lines) = crate::log_capture::capture_logs(|| {
        for i in 0..asked {
            let ping = format!(r#"{{"URL":"https://control.test/p{i}","URLIsNoise":false}}"#);
            h.send_map(map, &format!(r#"{{"KeepAlive":true,"PingRequest":{ping}}}"#));
        }
    });
    assert_eq!(h.client.refused_ping_requests, asked);
    let told: Vec<&String> = lines.iter().filter(|l| l.contains("ping request")).collect();
    assert!(!told.is_empty() && told.len() <= 11, "{} lines: {:?}", told.len(), told.first());
    assert!(told.last().unwrap().contains("512 so far"), "{told:?}");
}

#[test]
fn a_request_of_thousands_of_unknown_types_is_one_refusal() {
    let mut h = Harness::new();
    let map = h.logged_in();
    let types: Vec<String> = (0..10_000).map(|i| format!("x{i}")).collect();
    let ping = format!(
        r#"{{"URL":"https://control.test/p","URLIsNoise":true,"Types":"disco,{}","IP":"100.64.0.2"}}"#,
        types.join(",")
    );
    h.send_map(map, &format!(r#"{{"KeepAlive":true,"PingRequest":{ping}}}"#));
    assert_eq!(h.client.refused_ping_requests, 1, "not one log line per type");
    let pings = h.events.iter().filter(|e| matches!(e, Event::PingPeer(_))).count();
    assert_eq!(pings, 1, "the known type is still served");
}

#[test]
fn a_peer_key_expiring_between_messages_takes_the_peer_off_the_netmap() {
    let mut h = Harness::new();
    let map = h.logged_in();
    let me = h.client.identity().node_key.public_key();
    let expiry =
        crate::control::tailcfg::go_time::format(SystemTime::now() + Duration::from_secs(60));
    let json = full_map(&me)
        .replace(r#""Online":true"#, &format!(r#""Online":true,"KeyExpiry":"{expiry}""#));
    h.send_map(map, &json);
    assert!(!h.netmaps().last().unwrap().peers[0].allowed_ips.is_empty());
    let count = h.netmaps().len();
    assert!(h.client.poll_timeout().unwrap() <= h.now + Duration::from_secs(61));
    h.advance(Duration::from_secs(61));
    assert_eq!(h.netmaps().len(), count + 1, "a new netmap at the expiry, with no message");
    let netmaps = h.netmaps();
    let peer = &netmaps.last().unwrap().peers[0];
    assert!(peer.key_expired && peer.allowed_ips.is_empty());
}
