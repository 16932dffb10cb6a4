//! The entry lists of the search, as index arrays (no pointers, no unsafe).
//!
//! Node 0 heads the main list: call and return entries of ok ops, by time.
//! Node 1 heads the info list: call entries of info ops, by time (they have
//! no return). Op `i` owns nodes `2 + 2i` (call) and `3 + 2i` (return).

/// End of a list.
pub(crate) const NIL: u32 = u32::MAX;
/// Head of the ok-op list.
pub(crate) const HEAD_MAIN: u32 = 0;
/// Head of the info-op list.
pub(crate) const HEAD_INFO: u32 = 1;

/// Call entry of op `i`.
pub(crate) fn call_node(i: u32) -> u32 {
    2 + 2 * i
}

/// Return entry of op `i`.
pub(crate) fn ret_node(i: u32) -> u32 {
    3 + 2 * i
}

/// The op owning a (non-head) node.
pub(crate) fn op_of(node: u32) -> u32 {
    (node - 2) / 2
}

/// Whether a node is a return entry.
pub(crate) fn is_ret(node: u32) -> bool {
    node % 2 == 1
}

/// Doubly linked lists over node ids.
pub(crate) struct Links {
    next: Vec<u32>,
    prev: Vec<u32>,
}

impl Links {
    /// Builds both lists. `ops` yields (call, return) times per op, with
    /// `None` as the return of an info op.
    pub(crate) fn build(ops: impl ExactSizeIterator<Item = (u64, Option<u64>)>) -> Self {
        let nodes = 2 + 2 * ops.len();
        let mut links = Links {
            next: vec![NIL; nodes],
            prev: vec![NIL; nodes],
        };
        let mut main: Vec<(u64, u32)> = Vec::with_capacity(2 * ops.len());
        let mut info: Vec<(u64, u32)> = Vec::new();
        for (i, (call, ret)) in (0u32..).zip(ops) {
            match ret {
                None => info.push((call, call_node(i))),
                Some(ret) => {
                    main.push((call, call_node(i)));
                    main.push((ret, ret_node(i)));
                }
            }
        }
        // Times are distinct lines; on a tie a call sorts before a return
        // (call nodes are even), i.e. equal times count as concurrent.
        main.sort_unstable_by_key(|&(t, n)| (t, n % 2, n));
        info.sort_unstable();
        for (head, list) in [(HEAD_MAIN, &main), (HEAD_INFO, &info)] {
            let mut last = head;
            for &(_, n) in list.iter() {
                links.next[last as usize] = n;
                links.prev[n as usize] = last;
                last = n;
            }
        }
        links
    }

    /// The node after `n`.
    #[inline]
    pub(crate) fn next(&self, n: u32) -> u32 {
        self.next[n as usize]
    }

    /// Takes `n` out of its list; its own links are kept for `relink`.
    #[inline]
    pub(crate) fn unlink(&mut self, n: u32) {
        let (p, x) = (self.prev[n as usize], self.next[n as usize]);
        self.next[p as usize] = x;
        if x != NIL {
            self.prev[x as usize] = p;
        }
    }

    /// Puts `n` back where it was. Valid because unlinks are undone in
    /// exactly reverse order (dancing links).
    #[inline]
    pub(crate) fn relink(&mut self, n: u32) {
        let (p, x) = (self.prev[n as usize], self.next[n as usize]);
        self.next[p as usize] = n;
        if x != NIL {
            self.prev[x as usize] = n;
        }
    }
}
