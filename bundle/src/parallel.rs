//! Work spread over scoped threads with the results in the order given: the
//! bundle's files hashed at read, the runtime's graphs parsed and optimized
//! at load.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// `f` over `items` on up to `threads` scoped threads, results in the items'
/// order. One thread (or one item) runs on the caller's.
pub fn in_parallel<T: Send, R: Send>(items: Vec<T>, threads: usize, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    if threads <= 1 || items.len() <= 1 {
        return items.into_iter().map(f).collect();
    }
    let n = items.len();
    let work: Vec<Mutex<Option<T>>> = items.into_iter().map(|t| Mutex::new(Some(t))).collect();
    let done: Vec<Mutex<Option<R>>> = (0..n).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..threads.min(n) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = work.get(i).and_then(|w| w.lock().unwrap_or_else(|p| p.into_inner()).take()) else { break };
                let r = f(item);
                *done[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
            });
        }
    });
    done.into_iter().map(|d| d.into_inner().unwrap_or_else(|p| p.into_inner()).expect("every item was run")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn parallel_work_comes_back_in_the_order_given() {
        // Later items finish first; the results keep the items' order.
        let items: Vec<u64> = (0..9).collect();
        let out = in_parallel(items, 3, |i| {
            std::thread::sleep(Duration::from_millis(9 - i));
            Err::<u64, u64>(i * 10)
        });
        assert_eq!(out, (0..9).map(|i| Err(i * 10)).collect::<Vec<_>>());
        assert_eq!(in_parallel(vec![1, 2], 1, |i| i + 1), [2, 3]);
    }
}
