//! `POST /machine/register`: RegisterRequest and RegisterResponse.

use super::json::{decode, nullable, JsonError};
use super::{go_time, Hostinfo, NlKey, NodeKey, UserId};
use crate::keys::AuthKey;
use serde::{Deserialize, Serialize};
use std::time::SystemTime;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct RegisterRequest {
    /// The capability version (the same number as the Noise protocol version).
    #[serde(rename = "Version")]
    pub version: u32,
    #[serde(rename = "NodeKey")]
    pub node_key: NodeKey,
    /// The key being replaced on rotation; left out (Go's zero) otherwise.
    #[serde(rename = "OldNodeKey", skip_serializing_if = "Option::is_none")]
    pub old_node_key: Option<NodeKey>,
    #[serde(rename = "NLKey", skip_serializing_if = "Option::is_none")]
    pub nl_key: Option<NlKey>,
    #[serde(rename = "Auth", skip_serializing_if = "Option::is_none")]
    pub auth: Option<RegisterAuth>,
    /// Requested key expiry; a past time on the current key logs out. `None`: no request.
    #[serde(rename = "Expiry", with = "go_time", skip_serializing_if = "Option::is_none")]
    pub expiry: Option<SystemTime>,
    /// The AuthURL of an interactive login in progress; the server holds the request until
    /// the user finishes.
    #[serde(rename = "Followup", skip_serializing_if = "String::is_empty")]
    pub followup: String,
    #[serde(rename = "Hostinfo")]
    pub hostinfo: Hostinfo,
    #[serde(rename = "Ephemeral", skip_serializing_if = "std::ops::Not::not")]
    pub ephemeral: bool,
    #[serde(rename = "Tailnet", skip_serializing_if = "String::is_empty")]
    pub tailnet: String,
}

impl RegisterRequest {
    /// A request for `node_key` with nothing optional set: the form used on startup with a
    /// saved key; callers add `auth`, `followup`, `expiry` or `old_node_key` per login flow.
    pub(crate) fn new(node_key: NodeKey, hostinfo: Hostinfo) -> RegisterRequest {
        RegisterRequest {
            version: super::CAPABILITY_VERSION,
            node_key,
            old_node_key: None,
            nl_key: None,
            auth: None,
            expiry: None,
            followup: String::new(),
            hostinfo,
            ephemeral: false,
            tailnet: String::new(),
        }
    }

    pub(crate) fn to_json(&self) -> Vec<u8> {
        // Serializing plain structs with string keys cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// Credentials for a non-interactive login.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub(crate) struct RegisterAuth {
    #[serde(rename = "AuthKey")]
    pub auth_key: AuthKey,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct RegisterResponse {
    #[serde(rename = "User")]
    pub user: User,
    #[serde(rename = "Login")]
    pub login: Login,
    /// The node key sent is expired: make a new one and register again with OldNodeKey.
    #[serde(rename = "NodeKeyExpired")]
    pub node_key_expired: bool,
    #[serde(rename = "MachineAuthorized")]
    pub machine_authorized: bool,
    /// Non-empty: the user must visit it; then re-register with `Followup` set to it.
    #[serde(rename = "AuthURL")]
    pub auth_url: String,
    #[serde(rename = "NodeKeySignature", deserialize_with = "nullable")]
    pub node_key_signature: String,
    /// Non-empty: the registration failed and the other fields mean nothing.
    #[serde(rename = "Error")]
    pub error: String,
}

impl RegisterResponse {
    pub(crate) fn from_json(body: &[u8]) -> Result<RegisterResponse, JsonError> {
        decode(body)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct User {
    #[serde(rename = "ID")]
    pub id: UserId,
    #[serde(rename = "DisplayName")]
    pub display_name: String,
    #[serde(rename = "ProfilePicURL")]
    pub profile_pic_url: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct Login {
    #[serde(rename = "ID")]
    pub id: i64,
    #[serde(rename = "Provider")]
    pub provider: String,
    #[serde(rename = "LoginName")]
    pub login_name: String,
    #[serde(rename = "DisplayName")]
    pub display_name: String,
    #[serde(rename = "ProfilePicURL")]
    pub profile_pic_url: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::PublicKey;

    #[test]
    fn request_uses_go_names_and_omits_unset_fields() {
        let mut request = RegisterRequest::new(
            NodeKey::new(PublicKey([0xab; 32])),
            Hostinfo::for_this_host("box1"),
        );
        request.auth = Some(RegisterAuth { auth_key: "tskey-auth-k1".into() });
        let json: serde_json::Value = serde_json::from_slice(&request.to_json()).unwrap();
        assert_eq!(json["Version"], 138);
        assert_eq!(json["NodeKey"], format!("nodekey:{}", "ab".repeat(32)));
        assert_eq!(json["Auth"]["AuthKey"], "tskey-auth-k1");
        assert!(!format!("{request:?}").contains("auth-k1"), "Debug shows the auth key");
        assert_eq!(json["Hostinfo"]["Hostname"], "box1");
        assert_eq!(json["Hostinfo"]["IPNVersion"], crate::VERSION);
        assert!(json["Hostinfo"]["OS"].is_string());
        for absent in ["OldNodeKey", "Expiry", "Followup", "Ephemeral", "NLKey"] {
            assert!(json.get(absent).is_none(), "{absent}");
        }
        request.expiry = Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(123));
        let json: serde_json::Value = serde_json::from_slice(&request.to_json()).unwrap();
        assert_eq!(json["Expiry"], "1970-01-01T00:02:03Z");
    }

    #[test]
    fn reads_responses() {
        let body = br#"{"User":{"ID":5,"DisplayName":"Alice","Created":"2026-01-01T00:00:00Z"},
            "Login":{"ID":6,"LoginName":"alice@example.com"},"NodeKeyExpired":false,
            "MachineAuthorized":false,"AuthURL":"https://hs.example/register/abc",
            "NodeKeySignature":null,"Error":"","Future":true}"#;
        let response = RegisterResponse::from_json(body).unwrap();
        assert_eq!(response.user.id, 5);
        assert_eq!(response.login.login_name, "alice@example.com");
        assert_eq!(response.auth_url, "https://hs.example/register/abc");
        assert!(!response.machine_authorized);
        assert!(RegisterResponse::from_json(b"{\"User\":\"alice\"}").is_err());
        assert!(RegisterResponse::from_json(b"not json").is_err());
    }

    #[test]
    fn shaken_responses_never_panic() {
        let body = br#"{"User":{"ID":5},"MachineAuthorized":true,"AuthURL":"","Error":""}"#;
        crate::testing::shake(31, 2000, body, |bytes| {
            let _ = RegisterResponse::from_json(bytes);
        });
    }
}
