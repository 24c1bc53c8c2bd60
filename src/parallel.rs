//! Work over many items on every core, with results in the items' order.
//!
//! A build of 200 clusters renders, checks and writes thousands of independent files; the
//! machine it runs on (a laptop, a CI runner) has a few cores. [`map`] is the one way meshc
//! spreads such work: threads take the next item as they finish one, so a run of expensive
//! items (the primaries, which come first) does not leave a core idle, and the results come
//! back in the items' order, so nothing meshc writes depends on the number of cores or on
//! which thread was faster.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Stack for the worker threads: verbatim Istio specs may nest as deep as the parser allows
/// (64 levels), and rendering, serializing and checking them recurse per level.
const STACK_BYTES: usize = 64 * 1024 * 1024;

/// `each` over `items` on every core; the results in `items`' order, or the first error in
/// that order. With one core, one item, or no thread to be had, on this thread.
pub fn map<T: Sync, R: Send, E: Send>(
    items: &[T],
    each: impl Fn(&T) -> Result<R, E> + Sync,
) -> Result<Vec<R>, E> {
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(items.len());
    if threads <= 1 {
        return items.iter().map(&each).collect();
    }
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    // Items are taken in order, so once one has failed, every item before it has been taken
    // and will finish: stopping there still finds the first error in order.
    let run = || {
        let mut done = Vec::new();
        while !failed.load(Ordering::Relaxed) {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(i) else { break };
            let result = each(item);
            if result.is_err() {
                failed.store(true, Ordering::Relaxed);
            }
            done.push((i, result));
        }
        done
    };
    let mut done: Vec<(usize, Result<R, E>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .filter_map(|_| {
                std::thread::Builder::new()
                    .name("meshc-worker".into())
                    .stack_size(STACK_BYTES)
                    .spawn_scoped(scope, run)
                    .ok()
            })
            .collect();
        // No thread to be had: the items are done here.
        let mut done = if workers.is_empty() {
            run()
        } else {
            Vec::new()
        };
        for worker in workers {
            done.extend(
                worker
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            );
        }
        done
    });
    done.sort_unstable_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, result)| result).collect()
}

/// [`map`] where `each` cannot fail.
pub fn map_all<T: Sync, R: Send>(items: &[T], each: impl Fn(&T) -> R + Sync) -> Vec<R> {
    map(items, |item| Ok::<_, std::convert::Infallible>(each(item)))
        .unwrap_or_else(|never| match never {})
}

/// [`map`] when there are at least `min` items; below, on this thread, where starting threads
/// would cost more than cheap work (a `stat`, a small document) saves.
pub fn map_many<T: Sync, R: Send, E: Send>(
    items: &[T],
    min: usize,
    each: impl Fn(&T) -> Result<R, E> + Sync,
) -> Result<Vec<R>, E> {
    if items.len() < min {
        items.iter().map(each).collect()
    } else {
        map(items, each)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_the_items_order() {
        let items: Vec<u32> = (0..1_000).collect();
        let out: Result<Vec<u32>, ()> = map(&items, |&i| Ok(i * 2));
        assert_eq!(out, Ok(items.iter().map(|i| i * 2).collect()));
    }

    #[test]
    fn the_first_error_in_order_wins() {
        let items: Vec<u32> = (0..1_000).collect();
        for _ in 0..20 {
            let out: Result<Vec<u32>, u32> =
                map(&items, |&i| if i % 97 == 96 { Err(i) } else { Ok(i) });
            assert_eq!(out, Err(96));
        }
    }

    #[test]
    fn few_items_or_many_give_the_same_results_and_first_error() {
        let items: Vec<u32> = (0..100).collect();
        let each = |&i: &u32| if i >= 60 { Err(i) } else { Ok(i + 1) };
        assert_eq!(map_many(&items, 1_000, each), Err(60));
        assert_eq!(map_many(&items, 10, each), Err(60));
        assert_eq!(map_all(&items[..3], |&i| i * 3), vec![0, 3, 6]);
    }

    #[test]
    fn no_items_no_threads() {
        let out: Result<Vec<u32>, ()> = map(&[] as &[u32], |&i| Ok(i));
        assert_eq!(out, Ok(vec![]));
    }
}
