//! The KV-cache rows of earlier sequences, kept as a tree so that a prefix that sequences
//! share is held once: a branch, or a beam, takes its prefix from here instead of computing it
//! again.
//!
//! A node holds the tokens and the cache rows of the positions `start..start + tokens.len()`
//! of one sequence, whose positions before `start` are its parent's (the first `start` of the
//! parent's sequence). The least recently used leaves go first when the rows outgrow the
//! budget.

use crate::model::CacheRows;
use std::ops::Range;

struct Node<R> {
    parent: Option<usize>,
    start: usize,
    tokens: Vec<u32>,
    rows: R,
    used: u64,
}

impl<R> Node<R> {
    fn end(&self) -> usize {
        self.start + self.tokens.len()
    }
}

/// Where the longest stored prefix of a sequence ends: in `node`, after `len` positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Found {
    pub node: usize,
    pub len: usize,
}

/// The most sequences kept: autocomplete adds one a keystroke.
pub(crate) const MAX_NODES: usize = 256;

pub(crate) struct PrefixStore<R> {
    /// Removed nodes leave `None`, so that indices stay valid.
    nodes: Vec<Option<Node<R>>>,
    budget: usize,
    clock: u64,
}

impl<R: CacheRows> PrefixStore<R> {
    pub fn new(budget: usize) -> Self {
        Self { nodes: Vec::new(), budget, clock: 0 }
    }

    pub fn budget(&self) -> usize {
        self.budget
    }

    /// Sets the most bytes of rows kept (0 keeps none), dropping what no longer fits.
    pub fn set_budget(&mut self, bytes: usize) {
        self.budget = bytes;
        self.evict(None);
    }

    /// Bytes of rows held.
    pub fn bytes(&self) -> usize {
        self.live().map(|(_, n)| n.rows.bytes()).sum()
    }

    /// Positions held: each shared prefix counts once.
    pub fn positions(&self) -> usize {
        self.live().map(|(_, n)| n.tokens.len()).sum()
    }

    pub fn clear(&mut self) {
        self.nodes.clear();
    }

    fn live(&self) -> impl Iterator<Item = (usize, &Node<R>)> {
        self.nodes.iter().enumerate().filter_map(|(i, n)| Some((i, n.as_ref()?)))
    }

    fn node(&self, i: usize) -> &Node<R> {
        self.nodes[i].as_ref().expect("a live node")
    }

    /// The nodes from the root to `node`, each with the positions of the sequence it holds.
    fn path(&self, node: usize) -> Vec<(usize, Range<usize>)> {
        let mut path = Vec::new();
        let mut end = self.node(node).end();
        let mut at = Some(node);
        while let Some(i) = at {
            let n = self.node(i);
            path.push((i, n.start..end.min(n.end())));
            end = n.start;
            at = n.parent;
        }
        path.reverse();
        path
    }

    /// The longest prefix of `ids` that a stored sequence holds, at most `limit` positions.
    pub fn longest(&self, ids: &[u32], limit: usize) -> Option<Found> {
        let limit = limit.min(ids.len());
        let mut best: Option<Found> = None;
        for (i, _) in self.live() {
            let mut len = 0;
            for (j, positions) in self.path(i) {
                let n = self.node(j);
                let held = &n.tokens[positions.start - n.start..positions.end - n.start];
                let wanted = &ids[positions.start.min(limit)..positions.end.min(limit)];
                len += held.iter().zip(wanted).take_while(|(a, b)| a == b).count();
                if len < positions.end {
                    break;
                }
            }
            // A match that ends before this node's own positions belongs to an ancestor, which
            // has its own turn: a branch of it must hang there, not here.
            if len >= self.node(i).start && len > best.map_or(0, |b| b.len) {
                best = Some(Found { node: i, len });
            }
        }
        best
    }

    /// The rows of `found`'s positions from `from` on, in order: each with the range of its
    /// own positions to take. Marks them used.
    pub fn rows_from(&mut self, found: Found, from: usize) -> Vec<(&R, Range<usize>)> {
        self.clock += 1;
        let path = self.path(found.node);
        for (i, _) in &path {
            self.nodes[*i].as_mut().expect("a live node").used = self.clock;
        }
        path.into_iter()
            .filter_map(|(i, positions)| {
                let n = self.node(i);
                let (a, b) = (positions.start.max(from), positions.end.min(found.len));
                (a < b).then(|| (&n.rows, a - n.start..b - n.start))
            })
            .collect()
    }

    /// Keeps `rows`, the positions `start..` of the sequence `ids` (its positions before
    /// `start` are `parent`'s, as [`longest`](Self::longest) found them), then drops the least
    /// recently used leaves that the budget has no room for.
    pub fn insert(&mut self, parent: Option<Found>, ids: &[u32], rows: R) {
        let start = rows.start();
        debug_assert_eq!(parent.map_or(0, |p| p.len), start);
        self.clock += 1;
        let node = Node { parent: parent.map(|p| p.node), start, tokens: ids[start..start + rows.positions()].to_vec(), rows, used: self.clock };
        let free = self.nodes.iter().position(Option::is_none);
        let index = match free {
            Some(i) => {
                self.nodes[i] = Some(node);
                i
            }
            None => {
                self.nodes.push(Some(node));
                self.nodes.len() - 1
            }
        };
        self.evict(Some(index));
    }

    /// Drops leaves, least recently used first, until the rows fit the budget and the nodes
    /// [`MAX_NODES`]; `keep` last.
    fn evict(&mut self, keep: Option<usize>) {
        while self.bytes() > self.budget || self.live().count() > MAX_NODES {
            let parents: Vec<usize> = self.live().filter_map(|(_, n)| n.parent).collect();
            let leaves = self.live().filter(|(i, _)| !parents.contains(i));
            let victim = leaves.min_by_key(|(i, n)| (Some(*i) == keep, n.used)).map(|(i, _)| i);
            match victim {
                Some(i) => self.nodes[i] = None,
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Rows(Range<usize>);

    impl CacheRows for Rows {
        fn start(&self) -> usize {
            self.0.start
        }
        fn positions(&self) -> usize {
            self.0.len()
        }
        fn bytes(&self) -> usize {
            self.0.len() * 10
        }
    }

    fn ranges(store: &mut PrefixStore<Rows>, found: Found, from: usize) -> Vec<Range<usize>> {
        store.rows_from(found, from).into_iter().map(|(rows, r)| rows.0.start + r.start..rows.0.start + r.end).collect()
    }

    #[test]
    fn a_branch_holds_only_what_follows_its_shared_prefix() {
        let mut store = PrefixStore::new(1000);
        let run = [1, 2, 3, 4, 5, 6];
        store.insert(None, &run, Rows(0..6));
        let branch = [1, 2, 3, 9, 9];
        let found = store.longest(&branch, 5).unwrap();
        assert_eq!(found.len, 3);
        store.insert(Some(found), &branch, Rows(3..5));
        assert_eq!(store.positions(), 8);
        // The branch's sequence comes from both nodes, the run's from its own.
        let in_branch = store.longest(&[1, 2, 3, 9, 9, 7], 6).unwrap();
        assert_eq!(in_branch.len, 5);
        assert_eq!(ranges(&mut store, in_branch, 0), [0..3, 3..5]);
        assert_eq!(ranges(&mut store, in_branch, 4).last(), Some(&(4..5)));
        let in_run = store.longest(&[1, 2, 3, 4, 5, 6, 7], 6).unwrap();
        assert_eq!((in_run.len, ranges(&mut store, in_run, 2).pop()), (6, Some(2..6)));
        // A limit stops the match short.
        assert_eq!(store.longest(&run, 2).unwrap().len, 2);
        assert_eq!(store.longest(&[7, 1], 2), None);
    }

    #[test]
    fn the_least_recently_used_leaf_goes_first_and_a_parent_stays() {
        let mut store = PrefixStore::new(90);
        store.insert(None, &[1, 2, 3, 4], Rows(0..4));
        let found = store.longest(&[1, 2, 8, 8], 3).unwrap();
        store.insert(Some(found), &[1, 2, 8, 8], Rows(2..4));
        let found = store.longest(&[1, 2, 3, 7], 3).unwrap();
        store.insert(Some(found), &[1, 2, 3, 7], Rows(3..4));
        assert_eq!(store.bytes(), 70);
        // Use the first branch, then go over budget: the other branch is the oldest leaf.
        let first = store.longest(&[1, 2, 8, 8], 4).unwrap();
        store.rows_from(first, 0);
        let found = store.longest(&[1, 2, 8, 8, 5, 5, 5], 7).unwrap();
        store.insert(Some(found), &[1, 2, 8, 8, 5, 5, 5], Rows(4..7));
        assert_eq!(store.bytes(), 90);
        assert_eq!(store.longest(&[1, 2, 3, 7], 4).unwrap().len, 3);
        assert_eq!(store.longest(&[1, 2, 8, 8, 5, 5, 5], 7).unwrap().len, 7);
        store.set_budget(0);
        assert_eq!((store.bytes(), store.longest(&[1], 1)), (0, None));
    }

    #[test]
    fn a_match_that_ends_in_an_ancestor_is_the_ancestors() {
        // A branch stored in a slot before its parent's: found first, but the match ends in
        // the parent's positions.
        let mut store = PrefixStore::new(100);
        store.insert(None, &[5, 5], Rows(0..2));
        let run = store.longest(&[1, 2, 3, 4], 4);
        store.insert(run, &[1, 2, 3, 4], Rows(0..4));
        store.set_budget(50); // the oldest leaf, [5, 5], goes: its slot is free
        let at = store.longest(&[1, 2, 8], 2).unwrap();
        store.insert(Some(at), &[1, 2, 8], Rows(2..3));
        assert_eq!(store.nodes[0].as_ref().map(|n| n.start), Some(2), "the branch took the first slot");
        let found = store.longest(&[1, 9], 2).unwrap();
        assert_eq!((found.len, store.node(found.node).start), (1, 0));
        store.insert(Some(found), &[1, 9], Rows(1..2));
        let branch = store.longest(&[1, 9], 2).unwrap();
        assert_eq!(ranges(&mut store, branch, 0), [0..1, 1..2]);
    }

    #[test]
    fn a_long_chain_of_small_sequences_stops_at_the_node_cap() {
        let mut store = PrefixStore::new(usize::MAX);
        let ids: Vec<u32> = (0..MAX_NODES as u32 + 10).collect();
        for end in 1..=ids.len() {
            let found = store.longest(&ids[..end], end);
            store.insert(found, &ids[..end], Rows(found.map_or(0, |f| f.len)..end));
        }
        // A chain: each node is its predecessor's only child, so the newest leaf goes first and
        // the store keeps the oldest prefix.
        assert_eq!(store.live().count(), MAX_NODES);
        assert_eq!(store.longest(&ids, ids.len()).unwrap().len, MAX_NODES);
    }
}
