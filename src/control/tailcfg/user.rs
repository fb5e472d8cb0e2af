//! `tailcfg.UserProfile`: who owns nodes, for display.

use super::json::nullable;
use super::UserId;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct UserProfile {
    #[serde(rename = "ID")]
    pub id: UserId,
    #[serde(rename = "LoginName")]
    pub login_name: String,
    #[serde(rename = "DisplayName")]
    pub display_name: String,
    #[serde(rename = "ProfilePicURL")]
    pub profile_pic_url: String,
    #[serde(rename = "Groups", deserialize_with = "nullable")]
    pub groups: Vec<String>,
}
