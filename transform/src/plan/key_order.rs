//! The order a batch's activity winners are decided in: the keys' own
//! order, computed mostly on integers.

use schemas::Id;

/// `items` sorted by key, as the `(&Id, &Id)` keys compare, mostly on
/// integers: each string's first 16 bytes, big-endian and zero-padded,
/// order like the string (an identifier holds no NUL, so a string that
/// ends compares lower, as it does in full); the strings themselves are
/// compared only where those tie and one is longer. Sorting a batch's
/// winners on the strings was a third of the plan's time.
pub(super) fn in_key_order<'k, V>(items: Vec<((&'k Id, &'k Id), V)>) -> Vec<((&'k Id, &'k Id), V)> {
    fn prefix(s: &str) -> u128 {
        let mut b = [0u8; 16];
        let n = s.len().min(16);
        b[..n].copy_from_slice(&s.as_bytes()[..n]);
        u128::from_be_bytes(b)
    }
    fn rest(a: &str, b: &str) -> std::cmp::Ordering {
        if a.len() <= 16 && b.len() <= 16 {
            std::cmp::Ordering::Equal
        } else {
            a.cmp(b)
        }
    }
    let mut keyed: Vec<_> = items
        .into_iter()
        .map(|(k, v)| ((prefix(k.0), prefix(k.1)), k, v))
        .collect();
    keyed.sort_unstable_by(|(pa, a, _), (pb, b, _)| {
        (pa.0.cmp(&pb.0))
            .then_with(|| rest(a.0, b.0))
            .then(pa.1.cmp(&pb.1))
            .then_with(|| rest(a.1, b.1))
    });
    keyed.into_iter().map(|(_, k, v)| (k, v)).collect()
}

#[cfg(test)]
mod tests {
    use super::in_key_order;
    use schemas::Id;

    /// The integer-prefix order equals the strings' own order, for
    /// identifiers of every length around the 16-byte prefix.
    #[test]
    fn key_order_is_the_strings_order() {
        let alphabet = b"abz09.-_:";
        let mut x: u64 = 7;
        let mut next = |n: u64| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) % n
        };
        let strings: Vec<Id> = (0..400)
            .map(|_| {
                let len = 1 + next(40) as usize;
                let common = next(3) as usize * 8; // shared prefixes of 0, 8 or 16 bytes
                let s: String = (0..len)
                    .map(|i| {
                        if i < common {
                            'a'
                        } else {
                            alphabet[next(9) as usize] as char
                        }
                    })
                    .collect();
                Id::parse(&s).unwrap()
            })
            .collect();
        let keys: Vec<(&Id, &Id)> = (0..2000)
            .map(|_| (&strings[next(20) as usize], &strings[next(400) as usize]))
            .collect();
        let mut expected = keys.clone();
        expected.sort();
        let got: Vec<_> = in_key_order(keys.into_iter().map(|k| (k, ())).collect())
            .into_iter()
            .map(|(k, ())| k)
            .collect();
        assert_eq!(got, expected);
    }
}
