//! Redis's `pqsort`: the partial quicksort behind SORT ... BY ... LIMIT and
//! GEOSEARCH ... COUNT, ported step for step because its tie order shows in
//! replies.

use std::cmp::Ordering;

/// Orders the elements at ranks `lrange..=rrange` of `v` the way Redis 7.0
/// does, ties included; the rest end up partitioned around them in Redis's
/// order. It is NetBSD's Bentley-McIlroy quicksort that skips partitions
/// holding none of the wanted ranks, as Redis 7.0.15 ships it: without the
/// BSD original's "no swap: switch to insertion sort" shortcut (checked
/// against its GEOSEARCH and SORT replies). An explicit stack replaces the
/// recursion; the partitions are disjoint, so the order they are sorted in
/// changes nothing.
///
/// ```
/// use rampart_server::pqsort::pqsort;
/// let mut v = vec![5, 3, 9, 1, 7, 2, 8, 6, 4, 0];
/// pqsort(&mut v, &|a: &i32, b: &i32| a.cmp(b), 0, 2);
/// assert_eq!(v[..3], [0, 1, 2]);
/// ```
pub fn pqsort<T>(v: &mut [T], cmp: &impl Fn(&T, &T) -> Ordering, lrange: i64, rrange: i64) {
    let wanted = |lo: usize, n: usize| {
        let (lo, hi) = (lo as i64, (lo + n) as i64 - 1);
        !((lrange < lo && rrange < lo) || (lrange > hi && rrange > hi))
    };
    let mut stack = vec![(0usize, v.len())];
    while let Some((mut a, mut n)) = stack.pop() {
        loop {
            if n < 7 {
                insertion_sort(v, a, n, cmp);
                break;
            }
            let mut pm = a + n / 2;
            if n > 7 {
                let mut pl = a;
                let mut pn = a + n - 1;
                if n > 40 {
                    let d = n / 8;
                    pl = med3(v, pl, pl + d, pl + 2 * d, cmp);
                    pm = med3(v, pm - d, pm, pm + d, cmp);
                    pn = med3(v, pn - 2 * d, pn - d, pn, cmp);
                }
                pm = med3(v, pl, pm, pn, cmp);
            }
            v.swap(a, pm);
            let (mut pa, mut pb) = (a + 1, a + 1);
            let (mut pc, mut pd) = (a + n - 1, a + n - 1);
            loop {
                while pb <= pc {
                    let r = cmp(&v[pb], &v[a]);
                    if r == Ordering::Greater {
                        break;
                    }
                    if r == Ordering::Equal {
                        v.swap(pa, pb);
                        pa += 1;
                    }
                    pb += 1;
                }
                while pb <= pc {
                    let r = cmp(&v[pc], &v[a]);
                    if r == Ordering::Less {
                        break;
                    }
                    if r == Ordering::Equal {
                        v.swap(pc, pd);
                        pd -= 1;
                    }
                    pc -= 1;
                }
                if pb > pc {
                    break;
                }
                v.swap(pb, pc);
                pb += 1;
                pc -= 1;
            }
            let pn = a + n;
            let r = (pa - a).min(pb - pa);
            vecswap(v, a, pb - r, r);
            let r = (pd - pc).min(pn - pd - 1);
            vecswap(v, pb, pn - r, r);
            let r = pb - pa;
            if r > 1 && wanted(a, r) {
                stack.push((a, r));
            }
            let r = pd - pc;
            if r > 1 {
                a = pn - r;
                n = r;
                if wanted(a, n) {
                    continue;
                }
            }
            break;
        }
    }
}

fn med3<T>(v: &[T], a: usize, b: usize, c: usize, cmp: &impl Fn(&T, &T) -> Ordering) -> usize {
    let lt = |x: usize, y: usize| cmp(&v[x], &v[y]) == Ordering::Less;
    let gt = |x: usize, y: usize| cmp(&v[x], &v[y]) == Ordering::Greater;
    if lt(a, b) {
        if lt(b, c) {
            b
        } else if lt(a, c) {
            c
        } else {
            a
        }
    } else if gt(b, c) {
        b
    } else if lt(a, c) {
        a
    } else {
        c
    }
}

fn insertion_sort<T>(v: &mut [T], a: usize, n: usize, cmp: &impl Fn(&T, &T) -> Ordering) {
    for m in a + 1..a + n {
        let mut l = m;
        while l > a && cmp(&v[l - 1], &v[l]) == Ordering::Greater {
            v.swap(l, l - 1);
            l -= 1;
        }
    }
}

fn vecswap<T>(v: &mut [T], a: usize, b: usize, n: usize) {
    for k in 0..n {
        v.swap(a + k, b + k);
    }
}

#[cfg(test)]
mod tests {
    use super::pqsort;

    #[test]
    fn sorts_the_requested_ranks() {
        // A fixed pseudo-random sequence with many duplicates.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let cmp = |a: &u64, b: &u64| a.cmp(b);
        for n in [0usize, 1, 5, 7, 8, 40, 41, 100, 1000] {
            let v: Vec<u64> = (0..n).map(|_| next() % 50).collect();
            let mut sorted = v.clone();
            sorted.sort();
            for (l, r) in [(0, 2), (3, 9), (n as i64 / 2, n as i64 - 1), (5, 4)] {
                let mut p = v.clone();
                pqsort(&mut p, &cmp, l, r);
                let (lo, hi) = (l.max(0) as usize, (r + 1).clamp(0, n as i64) as usize);
                if lo < hi {
                    assert_eq!(p[lo..hi], sorted[lo..hi], "n={n} l={l} r={r}");
                }
                let mut all = p.clone();
                all.sort();
                assert_eq!(all, sorted);
            }
            let mut p = v.clone();
            pqsort(&mut p, &|a: &u64, b: &u64| b.cmp(a), 0, n as i64 - 1);
            sorted.reverse();
            assert_eq!(p, sorted);
        }
    }
}
