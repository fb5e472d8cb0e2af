//! The packet filter as a set of named rule lists (capver 81). The legacy single
//! `PacketFilter` is the list named "base".

use crate::control::tailcfg::FilterRule;
use std::collections::BTreeMap;

const BASE: &str = "base";
/// `"*": null` in PacketFilters clears every list before the others are applied.
const CLEAR_ALL: &str = "*";

/// Until control sends a filter there are no lists, which — like an explicit empty list —
/// admits nothing: deny is the safe default for a control-managed node.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct NamedFilters {
    lists: BTreeMap<String, Vec<FilterRule>>,
}

impl NamedFilters {
    /// Applies a response's `PacketFilter` then `PacketFilters`; true if either was present.
    pub(super) fn apply(
        &mut self,
        base: Option<Vec<FilterRule>>,
        named: Option<BTreeMap<String, Option<Vec<FilterRule>>>>,
    ) -> bool {
        let touched = base.is_some() || named.is_some();
        if let Some(rules) = base {
            self.lists.insert(BASE.to_string(), rules);
        }
        if let Some(mut named) = named {
            if named.get(CLEAR_ALL) == Some(&None) {
                named.remove(CLEAR_ALL);
                self.lists.clear();
            }
            for (name, rules) in named {
                match rules {
                    Some(rules) => self.lists.insert(name, rules),
                    None => self.lists.remove(&name),
                };
            }
        }
        touched
    }

    /// All rules, the lists concatenated in name order (order does not change what a rule
    /// set admits).
    pub(super) fn effective(&self) -> Vec<FilterRule> {
        self.lists.values().flatten().cloned().collect()
    }
}
