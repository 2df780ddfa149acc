//! Independent CPU work spread over every core: serializing and signing the
//! bins of a big import, hashing the files of a directory; and freeing big
//! values off the caller's path.

use std::sync::OnceLock;

/// `f` applied to each of `items`, in order, on every core: the items are
/// split into one contiguous part per core, the first part done on the
/// calling thread.
pub(crate) fn map_on_every_core<T: Send, R: Send>(
    items: Vec<T>,
    f: impl Fn(T) -> R + Sync,
) -> Vec<R> {
    map_parts_on_every_core(items, 2, |part| {
        part.into_iter().map(&f).collect::<Vec<R>>()
    })
    .into_iter()
    .flatten()
    .collect()
}

/// `f` applied to the parts of `items` (one contiguous part per core, the
/// first done on the calling thread), for work that keeps state across the
/// items of a part; one result per part, in order. A thread costs about a
/// millisecond to start, end and give its first memory: fewer than
/// `min_part` items a core are done right here, in one part.
pub(crate) fn map_parts_on_every_core<T: Send, R: Send>(
    items: Vec<T>,
    min_part: usize,
    f: impl Fn(Vec<T>) -> R + Sync,
) -> Vec<R> {
    let cores = cores();
    if cores == 1 || items.len() < min_part.max(1) * cores {
        return vec![f(items)];
    }
    let chunk = items.len().div_ceil(cores);
    let mut items = items.into_iter();
    let mut parts: Vec<Vec<T>> = Vec::new();
    loop {
        let part: Vec<T> = items.by_ref().take(chunk).collect();
        if part.is_empty() {
            break;
        }
        parts.push(part);
    }
    let f = &f;
    let mut parts = parts.into_iter();
    let first = parts.next().unwrap_or_default();
    std::thread::scope(|scope| {
        let others: Vec<_> = parts.map(|part| scope.spawn(move || f(part))).collect();
        let mut out = vec![f(first)];
        for other in others {
            match other.join() {
                Ok(done) => out.push(done),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        out
    })
}

/// Drop `value` on a thread of the blocking pool (in a tokio runtime), off
/// the caller's path: freeing a state of tens of thousands of targets takes
/// a fraction of a millisecond nobody need wait for.
pub(crate) fn drop_in_background<T: Send + 'static>(value: T) {
    drop(tokio::task::spawn_blocking(move || drop(value)));
}

/// How many cores this process may use (read once: finding out reads the
/// cgroup files).
fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_order_of_the_items() {
        for n in [0, 1, 2, 3, 7, 100] {
            let items: Vec<u32> = (0..n).collect();
            let doubled = map_on_every_core(items, |i| i * 2);
            assert_eq!(doubled, (0..n).map(|i| i * 2).collect::<Vec<_>>());
            let items: Vec<u32> = (0..n).collect();
            let parts = map_parts_on_every_core(items, 2, |part| part);
            assert!(!parts.is_empty() && parts.len() <= cores());
            assert_eq!(parts.concat(), (0..n).collect::<Vec<_>>());
        }
    }
}
