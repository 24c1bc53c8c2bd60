//! "Did you mean" suggestions for misspelt field names, references and enum values.

/// The candidate closest to `word`, if it is close enough to be a likely typo: an edit
/// distance of at most a third of the word's length (and at least 1), or the same word in
/// another case.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .filter(|c| *c != word)
        .map(|c| {
            let d = if c.eq_ignore_ascii_case(word) {
                0
            } else {
                distance(word, c)
            };
            (d, c)
        })
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, c)| (*d, *c))
        .map(|(_, c)| c)
}

/// Levenshtein distance over characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let fields = ["network", "name", "region", "zones"];
        assert_eq!(did_you_mean("netwrok", fields), Some("network"));
        assert_eq!(did_you_mean("Network", fields), Some("network"));
        assert_eq!(did_you_mean("zone", fields), Some("zones"));
        assert_eq!(did_you_mean("completely", fields), None);
        assert_eq!(distance("kitten", "sitting"), 3);
    }
}
