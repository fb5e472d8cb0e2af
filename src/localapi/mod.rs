//! The local API: JSON over HTTP/1.1 on a Unix socket, between `weftd` and the `weft` CLI.
//! The paths follow tailscale's LocalAPI (`/localapi/v0/status`, `/localapi/v0/ping`).

pub mod client;
pub mod server;

pub const STATUS_PATH: &str = "/localapi/v0/status";
pub const PING_PATH: &str = "/localapi/v0/ping";
/// `weft up`: JSON `{"LoginServer", "AuthKey", "Hostname"}`, all optional.
pub const START_PATH: &str = "/localapi/v0/start";
/// `weft down` (weft's own: tailscale patches its prefs instead).
pub const DOWN_PATH: &str = "/localapi/v0/down";
pub const LOGOUT_PATH: &str = "/localapi/v0/logout";
pub const DEFAULT_SOCKET: &str = "/var/run/weft/weftd.sock";

/// The body of every non-200 answer.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct ErrorBody {
    pub error: String,
}
