//! Locality patterns (`region/zone/subzone`, one trailing `*`), with Istio's own syntax and
//! overlap checks (`pkg/config/validation/agent/validation.go`, `validateLocalities`) and
//! matching against the topology's locality catalogue.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::Catalogue;

/// A parsed locality pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locality {
    /// The segments, `*` included (`us-west1/*` is `["us-west1", "*"]`).
    pub segments: Vec<String>,
}

/// What is wrong with a locality pattern's syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyntaxError {
    /// More than one `*`, or a `*` that is not the last character.
    Wildcard,
    /// An empty region, zone or subzone (`a//b`, a leading or trailing `/`).
    EmptySegment,
}

/// Parses a locality pattern as Istio does (at most three segments; the third keeps any
/// further `/`).
pub fn parse_locality(s: &str) -> Result<Locality, SyntaxError> {
    let stars = s.matches('*').count();
    if stars > 1 || (stars == 1 && !s.ends_with('*')) {
        return Err(SyntaxError::Wildcard);
    }
    let segments: Vec<String> = s.splitn(3, '/').map(str::to_string).collect();
    if segments.iter().any(String::is_empty) {
        return Err(SyntaxError::EmptySegment);
    }
    Ok(Locality { segments })
}

/// Istio's overlap check over one list, in order: the indices of the entries that overlap an
/// earlier one. Entries that do not parse are skipped (their syntax error is reported apart).
pub fn overlaps(list: &[&str]) -> Vec<usize> {
    // region -> zone -> subzones; "*" marks "everything below".
    let mut seen: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    let mut out = Vec::new();
    for (i, raw) in list.iter().enumerate() {
        let Ok(loc) = parse_locality(raw) else {
            continue;
        };
        if seen.contains_key("*") {
            out.push(i);
            continue;
        }
        let region = loc.segments[0].clone();
        let overlap = match loc.segments.len() {
            1 => match seen.entry(region) {
                std::collections::btree_map::Entry::Occupied(_) => true,
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(BTreeMap::from([("*".into(), BTreeSet::from(["*".into()]))]));
                    false
                }
            },
            2 => {
                let zone = loc.segments[1].clone();
                let zones = seen.entry(region).or_default();
                if zones.contains_key("*") || zones.contains_key(&zone) {
                    true
                } else {
                    zones.insert(zone, BTreeSet::from(["*".into()]));
                    false
                }
            }
            _ => {
                let zone = loc.segments[1].clone();
                let sub = loc.segments[2].clone();
                let zones = seen.entry(region).or_default();
                if zones.contains_key("*") {
                    true
                } else {
                    let subs = zones.entry(zone).or_default();
                    if subs.contains("*") || subs.contains(&sub) {
                        true
                    } else {
                        subs.insert(sub);
                        false
                    }
                }
            }
        };
        if overlap {
            out.push(i);
        }
    }
    out
}

impl Locality {
    /// Whether the pattern matches a concrete `region` / optional `zone` (subzones are not in
    /// the catalogue: a subzone pattern matches when its zone does).
    pub fn matches(&self, region: &str, zone: Option<&str>) -> bool {
        let seg = |i: usize| self.segments.get(i).map(String::as_str);
        match seg(0) {
            Some("*") => return true,
            Some(r) if r == region => {}
            _ => return false,
        }
        match (seg(1), zone) {
            (None | Some("*"), _) => true,
            (Some(z), Some(zone)) => z == zone,
            (Some(_), None) => false,
        }
    }

    /// Whether the pattern matches any locality of the catalogue.
    pub fn matches_catalogue(&self, cat: &Catalogue) -> bool {
        cat.regions.iter().any(|r| {
            self.matches(&r.name, None) || r.zones.iter().any(|z| self.matches(&r.name, Some(z)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Region;

    #[test]
    fn syntax_as_istio() {
        assert!(parse_locality("us-west/*").is_ok());
        assert!(parse_locality("*").is_ok());
        assert_eq!(parse_locality("us-*/z"), Err(SyntaxError::Wildcard));
        assert_eq!(parse_locality("*/*"), Err(SyntaxError::Wildcard));
        assert_eq!(parse_locality("a//b"), Err(SyntaxError::EmptySegment));
        assert_eq!(parse_locality("a/"), Err(SyntaxError::EmptySegment));
        assert_eq!(parse_locality("a/b/c/d").map(|l| l.segments.len()), Ok(3));
    }

    #[test]
    fn overlaps_follow_istio_order_rules() {
        assert_eq!(overlaps(&["us-west", "us-west/*"]), vec![1]);
        assert_eq!(overlaps(&["us-west", "us-west"]), vec![1]);
        assert_eq!(overlaps(&["*", "us-west"]), vec![1]);
        assert_eq!(overlaps(&["a/z1", "a/z1/s1"]), vec![1]);
        assert_eq!(overlaps(&["a/z1/s1", "a/z1/s1"]), vec![1]);
        // Istio only sees a zone-level overlap in this order, not the other way round.
        assert!(overlaps(&["a/z1", "a/*"]).is_empty());
        assert_eq!(overlaps(&["a/*", "a/z1"]), vec![1]);
        assert!(overlaps(&["us-west/*", "us-central/*"]).is_empty());
    }

    #[test]
    fn matching_against_the_catalogue() {
        let cat = Catalogue {
            regions: vec![Region {
                name: "us-west1".into(),
                zones: vec!["us-west1-a".into()],
            }],
        };
        let m = |s: &str| parse_locality(s).expect("valid").matches_catalogue(&cat);
        assert!(m("*") && m("us-west1") && m("us-west1/*") && m("us-west1/us-west1-a"));
        assert!(m("us-west1/us-west1-a/rack1"));
        assert!(!m("us-east1/*") && !m("us-west1/us-west1-b"));
    }
}
