//! Pareto fronts: the designs no other design beats in every objective.
//!
//! An objective is a figure with a direction ([`Direction`]). Design `a` *dominates* `b` when
//! `a` is at least as good as `b` in every objective and better in one. [`front`] marks the
//! designs no design dominates, by a sort-and-cull pass (a design can only be dominated by one
//! before it in lexicographic order of the objectives turned to minimisation, and, by
//! transitivity, then by one already on the front).

/// Whether an objective is to be made small or large.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Smaller is better (time, energy, area, EDP).
    Minimize,
    /// Larger is better (accuracy, TOPS/W, GOPS).
    Maximize,
}

/// Whether `a` dominates `b` (each a list of objective values, `dirs` their directions).
pub fn dominates(a: &[f64], b: &[f64], dirs: &[Direction]) -> bool {
    let mut better = false;
    for ((x, y), d) in a.iter().zip(b).zip(dirs) {
        let (x, y) = match d {
            Direction::Minimize => (*x, *y),
            Direction::Maximize => (-*x, -*y),
        };
        if x > y {
            return false;
        }
        if x < y {
            better = true;
        }
    }
    better
}

/// For each point (a list of objective values, finite), whether no other point dominates it.
pub fn front(points: &[Vec<f64>], dirs: &[Direction]) -> Vec<bool> {
    let key = |p: &Vec<f64>| -> Vec<f64> {
        p.iter()
            .zip(dirs)
            .map(|(x, d)| match d {
                Direction::Minimize => *x,
                Direction::Maximize => -*x,
            })
            .collect()
    };
    let keys: Vec<Vec<f64>> = points.iter().map(key).collect();
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by(|&a, &b| {
        keys[a]
            .iter()
            .zip(&keys[b])
            .map(|(x, y)| x.total_cmp(y))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let all_min = vec![Direction::Minimize; dirs.len()];
    let mut on: Vec<usize> = Vec::new();
    let mut out = vec![false; points.len()];
    for i in order {
        if !on.iter().any(|&j| dominates(&keys[j], &keys[i], &all_min)) {
            on.push(i);
            out[i] = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn brute(points: &[Vec<f64>], dirs: &[Direction]) -> Vec<bool> {
        (0..points.len())
            .map(|i| !(0..points.len()).any(|j| j != i && dominates(&points[j], &points[i], dirs)))
            .collect()
    }

    #[test]
    fn a_small_front() {
        use Direction::*;
        // (time, accuracy): minimise time, maximise accuracy.
        let p = vec![
            vec![1.0, 0.5],
            vec![2.0, 0.9],
            vec![2.0, 0.8],
            vec![3.0, 0.9],
            vec![0.5, 0.1],
            vec![1.0, 0.5],
        ];
        let f = front(&p, &[Minimize, Maximize]);
        assert_eq!(f, [true, true, false, false, true, true]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn the_front_is_what_brute_force_finds(
            // Few distinct values, so ties and duplicates are common.
            pts in prop::collection::vec(prop::collection::vec(0u8..6, 3), 0..40),
            dirs in prop::collection::vec(any::<bool>(), 3),
            k in 1usize..=3,
        ) {
            let points: Vec<Vec<f64>> =
                pts.iter().map(|p| p[..k].iter().map(|&x| f64::from(x) * 0.25).collect()).collect();
            let dirs: Vec<Direction> = dirs[..k]
                .iter()
                .map(|&m| if m { Direction::Maximize } else { Direction::Minimize })
                .collect();
            prop_assert_eq!(front(&points, &dirs), brute(&points, &dirs));
        }
    }
}
