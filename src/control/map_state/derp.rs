//! Merging an incremental DERPMap (capver 65) into the current one.

use crate::control::tailcfg;
use crate::netmap::DerpMap;

/// Null parts of `update` keep what `current` had; regions sent as null are dropped (headscale
/// has been seen sending them).
pub(super) fn merge(current: &mut Option<DerpMap>, update: tailcfg::DerpMap) {
    let map = current.get_or_insert_with(DerpMap::default);
    if let Some(regions) = update.regions {
        map.regions = regions.into_iter().filter_map(|(id, region)| Some((id, region?))).collect();
    }
    if let Some(scores) = update.home_params.and_then(|p| p.region_score) {
        map.region_score = scores;
    }
    map.omit_default_regions = update.omit_default_regions;
}
