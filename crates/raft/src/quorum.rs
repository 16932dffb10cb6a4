//! Pure quorum arithmetic (etcd's `quorum/` package plays the same role): given what
//! each voter has acknowledged, what has a majority acknowledged?

/// Voters handled without a heap allocation; larger clusters fall back to a `Vec`.
const VOTERS_INLINE: usize = 16;

/// The largest value that at least `quorum` of `acked` reach (the `quorum`-th largest),
/// or `None` if there are fewer than `quorum` values. Used for the commit index
/// (§5.3, §5.4.2) and for ReadIndex confirmations (thesis §6.4). Runs on every
/// acknowledgement, so it avoids allocating for ordinary cluster sizes.
pub(crate) fn quorum_value<T: Ord + Copy + Default>(
    acked: impl Iterator<Item = T>,
    quorum: usize,
) -> Option<T> {
    let mut inline = [T::default(); VOTERS_INLINE];
    let mut spill = Vec::new();
    let mut n = 0;
    for v in acked {
        if n < VOTERS_INLINE {
            inline[n] = v;
        } else {
            if spill.is_empty() {
                spill.extend_from_slice(&inline);
            }
            spill.push(v);
        }
        n += 1;
    }
    if quorum == 0 || n < quorum {
        return None;
    }
    let values = if spill.is_empty() {
        &mut inline[..n]
    } else {
        &mut spill[..]
    };
    // The quorum-th largest is at position n - quorum in ascending order.
    let (_, &mut value, _) = values.select_nth_unstable(n - quorum);
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn majority_of_three_and_five() {
        assert_eq!(quorum_value([5u64, 3, 9].into_iter(), 2), Some(5));
        assert_eq!(quorum_value([1u64, 2, 3, 4, 5].into_iter(), 3), Some(3));
        assert_eq!(quorum_value([7u64].into_iter(), 1), Some(7));
        assert_eq!(quorum_value([7u64].into_iter(), 2), None);
    }

    proptest! {
        /// Agrees with the obvious definition (sort descending, take the
        /// quorum-th), including past the inline capacity.
        #[test]
        fn matches_sorting(values in prop::collection::vec(0u64..100, 1..40), q in 1usize..40) {
            let mut sorted = values.clone();
            sorted.sort_unstable_by(|a, b| b.cmp(a));
            let want = (q <= values.len()).then(|| sorted[q - 1]);
            prop_assert_eq!(quorum_value(values.into_iter(), q), want);
        }
    }
}
