//! The memory budget: whether an engine may start beside the resident ones,
//! and which resident engines to stop first when it may not.
//!
//! A resident engine counts as the larger of its need (the configured
//! `memory_mb`, or once measured its workers' peak RSS) and its RSS now; the
//! daemon counts as its own measured RSS.

use std::time::Instant;

/// A resident engine as the budget sees it.
#[derive(Debug, Clone)]
pub(crate) struct Resident {
    /// Index of the engine in the host.
    pub index: usize,
    /// What it counts for, in MiB.
    pub used_mb: u64,
    /// When it last finished a request (or became ready).
    pub last_used: Instant,
}

/// What to do before starting an engine that needs `need_mb`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Plan {
    /// It fits beside everything resident.
    Fits,
    /// It cannot fit even with no other engine resident.
    TooBig,
    /// Stop resident engines, least recently used first (indices), then ask again.
    Evict(Vec<usize>),
}

/// Decides how engine needing `need_mb` can start; `budget_mb == 0` means
/// no budget.
pub(crate) fn plan(budget_mb: u64, daemon_mb: u64, need_mb: u64, residents: &[Resident]) -> Plan {
    if budget_mb == 0 {
        return Plan::Fits;
    }
    if daemon_mb + need_mb > budget_mb {
        return Plan::TooBig;
    }
    let used: u64 = daemon_mb + residents.iter().map(|r| r.used_mb).sum::<u64>();
    if used + need_mb <= budget_mb {
        return Plan::Fits;
    }
    let mut lru = residents.to_vec();
    lru.sort_by_key(|r| r.last_used);
    Plan::Evict(lru.into_iter().map(|r| r.index).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn resident(index: usize, used_mb: u64, age_s: u64) -> Resident {
        let now = Instant::now();
        Resident {
            index,
            used_mb,
            last_used: now.checked_sub(Duration::from_secs(age_s)).unwrap_or(now),
        }
    }

    #[test]
    fn no_budget_always_fits() {
        assert_eq!(plan(0, 10_000, 10_000, &[resident(0, 5000, 1)]), Plan::Fits);
    }

    #[test]
    fn fits_beside_residents() {
        assert_eq!(plan(800, 50, 250, &[resident(1, 450, 1)]), Plan::Fits);
    }

    #[test]
    fn too_big_alone() {
        assert_eq!(plan(800, 50, 751, &[]), Plan::TooBig);
    }

    #[test]
    fn evicts_least_recently_used_first() {
        let residents = [
            resident(0, 300, 5),
            resident(1, 300, 50),
            resident(2, 100, 20),
        ];
        assert_eq!(plan(800, 50, 300, &residents), Plan::Evict(vec![1, 2, 0]));
    }
}
