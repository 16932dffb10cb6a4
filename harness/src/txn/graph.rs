//! Cycle search: Tarjan's strongly connected components, then one short cycle per
//! component, strongest class first (Elle §4.3: "we find strongly connected
//! components … and then search within each for a short cycle").
//!
//! For each non-trivial component `S` of the whole graph:
//! 1. **G0** — if a component of the ww-only subgraph lies in `S`: a BFS over ww edges
//!    from one of its nodes back to itself.
//! 2. **G1c** — else, if a component of the ww+wr subgraph lies in `S`, it holds a wr
//!    edge `u → v` (it has no ww cycle); a BFS `v ⇝ u` over ww+wr closes the cycle.
//! 3. **G-single** — else ww+wr restricted to `S` is acyclic. A cycle with exactly one
//!    rw edge `u → v` exists iff `v ⇝ u` over ww+wr; reachability from all rw targets
//!    is propagated along a topological order, 64 targets per pass as bits of a `u64`,
//!    then a BFS gives the path.
//! 4. **G2** — else every cycle has two or more rw edges: a BFS over all edges from any
//!    node of `S` back to itself.
//!
//! Cost: three Tarjan passes and one BFS per class and component are O(V + E); the
//! G-single reachability is O((V + E) · ⌈R/64⌉) for the R rw edges of components that
//! reach step 3 (none in a serializable history).

use std::collections::VecDeque;

use super::anomaly::EdgeKind;
use super::infer::{Edge, Graph};

/// Edge-kind masks.
pub(crate) const WW: u8 = 1 << EdgeKind::Ww as u8;
pub(crate) const WW_WR: u8 = WW | 1 << EdgeKind::Wr as u8;
pub(crate) const ALL: u8 = WW_WR | 1 << EdgeKind::Rw as u8;

/// A cycle as edges `(from, edge)`; the last edge returns to the first `from`.
pub(crate) type RawCycle = Vec<(u32, Edge)>;

/// Strongly connected components of the subgraph of edges in `mask`: `comp[v]` and
/// the size of each component.
pub(crate) struct Components {
    pub comp: Vec<u32>,
    pub size: Vec<u32>,
}

impl Components {
    fn nontrivial(&self, v: usize) -> bool {
        self.size[self.comp[v] as usize] > 1
    }
}

/// Tarjan's algorithm, iterative (a 10,000-transaction chain would overflow a
/// recursive one's stack in debug builds).
pub(crate) fn tarjan(g: &Graph, mask: u8) -> Components {
    const UNSEEN: u32 = u32::MAX;
    let n = g.out.len();
    let mut index = vec![UNSEEN; n];
    let mut low = vec![0u32; n];
    let mut on_stack = vec![false; n];
    let mut stack: Vec<u32> = Vec::new();
    let mut comp = vec![UNSEEN; n];
    let mut size = Vec::new();
    let mut next = 0u32;
    // (node, position in its out-edge list)
    let mut call: Vec<(u32, usize)> = Vec::new();
    for root in 0..n as u32 {
        if index[root as usize] != UNSEEN {
            continue;
        }
        call.push((root, 0));
        index[root as usize] = next;
        low[root as usize] = next;
        next += 1;
        stack.push(root);
        on_stack[root as usize] = true;
        while let Some(&mut (v, ref mut i)) = call.last_mut() {
            let vu = v as usize;
            if let Some(e) = g.out[vu].get(*i) {
                *i += 1;
                if e.kind.bit() & mask == 0 {
                    continue;
                }
                let w = e.to as usize;
                if index[w] == UNSEEN {
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(e.to);
                    on_stack[w] = true;
                    call.push((e.to, 0));
                } else if on_stack[w] {
                    low[vu] = low[vu].min(index[w]);
                }
                continue;
            }
            call.pop();
            if let Some(&(parent, _)) = call.last() {
                let p = parent as usize;
                low[p] = low[p].min(low[vu]);
            }
            if low[vu] == index[vu] {
                let id = size.len() as u32;
                let mut count = 0;
                loop {
                    let w = stack.pop().expect("v is on the stack");
                    on_stack[w as usize] = false;
                    comp[w as usize] = id;
                    count += 1;
                    if w == v {
                        break;
                    }
                }
                size.push(count);
            }
        }
    }
    Components { comp, size }
}

/// Shortest path `from ⇝ to` (at least one edge) over edges in `mask` whose both ends
/// satisfy `inside`.
fn bfs(
    g: &Graph,
    mask: u8,
    inside: &dyn Fn(u32) -> bool,
    from: u32,
    to: u32,
    scratch: &mut Scratch,
) -> Option<RawCycle> {
    scratch.reset();
    let mut queue = VecDeque::new();
    queue.push_back(from);
    while let Some(v) = queue.pop_front() {
        for (i, e) in g.out[v as usize].iter().enumerate() {
            if e.kind.bit() & mask == 0 || !inside(e.to) || scratch.seen(e.to) {
                continue;
            }
            scratch.visit(e.to, v, i as u32);
            if e.to == to {
                return Some(scratch.path(g, from, to));
            }
            queue.push_back(e.to);
        }
    }
    None
}

/// BFS parents, reset by touched list so each search costs what it visits.
struct Scratch {
    parent: Vec<(u32, u32)>,
    touched: Vec<u32>,
}

const NO_PARENT: (u32, u32) = (u32::MAX, u32::MAX);

impl Scratch {
    fn new(n: usize) -> Scratch {
        Scratch {
            parent: vec![NO_PARENT; n],
            touched: Vec::new(),
        }
    }
    fn reset(&mut self) {
        for v in self.touched.drain(..) {
            self.parent[v as usize] = NO_PARENT;
        }
    }
    fn seen(&self, v: u32) -> bool {
        self.parent[v as usize] != NO_PARENT
    }
    fn visit(&mut self, v: u32, parent: u32, edge: u32) {
        self.parent[v as usize] = (parent, edge);
        self.touched.push(v);
    }
    /// Walks parents back from `to`; `from` may equal `to` (a cycle).
    fn path(&self, g: &Graph, from: u32, to: u32) -> RawCycle {
        let mut out = Vec::new();
        let mut v = to;
        loop {
            let (p, i) = self.parent[v as usize];
            out.push((p, g.out[p as usize][i as usize]));
            v = p;
            if v == from {
                break;
            }
        }
        out.reverse();
        out
    }
}

/// One cycle per non-trivial component of `g`, of the strongest class it has, in
/// order of the component's smallest transaction.
pub(crate) fn find_cycles(g: &Graph) -> Vec<RawCycle> {
    let all = tarjan(g, ALL);
    let ww = tarjan(g, WW);
    let wwwr = tarjan(g, WW_WR);
    // Nodes of each non-trivial component, in ascending order.
    let mut members: Vec<Vec<u32>> = vec![Vec::new(); all.size.len()];
    let mut order = Vec::new();
    for v in 0..g.out.len() {
        if all.nontrivial(v) {
            let c = all.comp[v] as usize;
            if members[c].is_empty() {
                order.push(c);
            }
            members[c].push(v as u32);
        }
    }
    let mut scratch = Scratch::new(g.out.len());
    let mut local = vec![u32::MAX; g.out.len()];
    let mut out = Vec::new();
    for c in order {
        let s = &members[c];
        let cycle = g0(g, &ww, s, &mut scratch)
            .or_else(|| g1c(g, &wwwr, s, &mut scratch))
            .or_else(|| g_single(g, &all, s, &mut local, &mut scratch))
            .or_else(|| {
                let in_s = |w: u32| all.comp[w as usize] as usize == c;
                bfs(g, ALL, &in_s, s[0], s[0], &mut scratch)
            });
        out.push(cycle.expect("every node of a strongly connected component is on a cycle"));
    }
    out
}

fn g0(g: &Graph, ww: &Components, s: &[u32], scratch: &mut Scratch) -> Option<RawCycle> {
    let &v = s.iter().find(|&&v| ww.nontrivial(v as usize))?;
    let c = ww.comp[v as usize];
    let inside = |w: u32| ww.comp[w as usize] == c;
    bfs(g, WW, &inside, v, v, scratch)
}

fn g1c(g: &Graph, wwwr: &Components, s: &[u32], scratch: &mut Scratch) -> Option<RawCycle> {
    let &v = s.iter().find(|&&v| wwwr.nontrivial(v as usize))?;
    let c = wwwr.comp[v as usize];
    let inside = |w: u32| wwwr.comp[w as usize] == c;
    // A wr edge inside the component: with no ww cycle there, one must exist.
    let (u, e) = s
        .iter()
        .filter(|&&u| inside(u))
        .flat_map(|&u| g.out[u as usize].iter().map(move |e| (u, *e)))
        .find(|(_, e)| e.kind == EdgeKind::Wr && inside(e.to))?;
    let mut cycle = vec![(u, e)];
    cycle.extend(bfs(g, WW_WR, &inside, e.to, u, scratch)?);
    Some(cycle)
}

/// Step 3 of the module doc; `s` has no ww+wr cycle. `local` maps nodes to their
/// position in `s` (left all `u32::MAX` on return).
fn g_single(
    g: &Graph,
    all: &Components,
    s: &[u32],
    local: &mut [u32],
    scratch: &mut Scratch,
) -> Option<RawCycle> {
    let c = all.comp[s[0] as usize];
    let inside = |w: u32| all.comp[w as usize] == c;
    for (i, &v) in s.iter().enumerate() {
        local[v as usize] = i as u32;
    }
    let topo = topological(g, s, local, &inside);
    let rw: Vec<(u32, Edge)> = s
        .iter()
        .flat_map(|&u| g.out[u as usize].iter().map(move |e| (u, *e)))
        .filter(|(_, e)| e.kind == EdgeKind::Rw && inside(e.to))
        .collect();
    let mut bits = vec![0u64; s.len()];
    let mut found = None;
    for chunk in rw.chunks(64) {
        bits.iter_mut().for_each(|b| *b = 0);
        for (j, (_, e)) in chunk.iter().enumerate() {
            bits[local[e.to as usize] as usize] |= 1 << j;
        }
        for &v in &topo {
            let b = bits[local[v as usize] as usize];
            if b == 0 {
                continue;
            }
            for e in &g.out[v as usize] {
                if e.kind.bit() & WW_WR != 0 && inside(e.to) {
                    bits[local[e.to as usize] as usize] |= b;
                }
            }
        }
        found = chunk
            .iter()
            .enumerate()
            .find(|(j, (u, _))| bits[local[*u as usize] as usize] & (1 << j) != 0)
            .map(|(_, &ue)| ue);
        if found.is_some() {
            break;
        }
    }
    for &v in s {
        local[v as usize] = u32::MAX;
    }
    let (u, e) = found?;
    let mut cycle = vec![(u, e)];
    cycle.extend(bfs(g, WW_WR, &inside, e.to, u, scratch)?);
    Some(cycle)
}

/// Kahn's topological order of `s` over ww+wr edges inside it (acyclic here).
fn topological(g: &Graph, s: &[u32], local: &[u32], inside: &dyn Fn(u32) -> bool) -> Vec<u32> {
    let mut indegree = vec![0u32; s.len()];
    for &v in s {
        for e in &g.out[v as usize] {
            if e.kind.bit() & WW_WR != 0 && inside(e.to) {
                indegree[local[e.to as usize] as usize] += 1;
            }
        }
    }
    let mut ready: Vec<u32> = s
        .iter()
        .copied()
        .filter(|&v| indegree[local[v as usize] as usize] == 0)
        .collect();
    let mut topo = Vec::with_capacity(s.len());
    while let Some(v) = ready.pop() {
        topo.push(v);
        for e in &g.out[v as usize] {
            if e.kind.bit() & WW_WR != 0 && inside(e.to) {
                let d = &mut indegree[local[e.to as usize] as usize];
                *d -= 1;
                if *d == 0 {
                    ready.push(e.to);
                }
            }
        }
    }
    debug_assert_eq!(topo.len(), s.len(), "ww+wr is acyclic inside the component");
    topo
}
